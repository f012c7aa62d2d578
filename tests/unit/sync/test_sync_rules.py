"""Attribute rules and expressions."""
import pytest

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.sync import rules
from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import (
    ConstantRule, DirectRule, ExpressionRule, ReferenceRule, RuleError, parse_rule,
)

PERSON = {"GivenName": "Zoë", "Surname": "Ærøskøbing-Łódź", "Department": "Sales", "Title": "", "Groups": "a; b;;c",
          "Employee ID": "E 1", "Phones": ["1", "2"]}


def evaluate(text, obj=PERSON):
    return parse_rule("steps.update.attributes.x", text).evaluate(obj)


def test_plain_string_is_a_direct_rule():
    rule = parse_rule("r", "Department")
    assert isinstance(rule, DirectRule)
    assert rule.evaluate(PERSON) == "Sales"
    assert rule.source_attributes() == {"Department"}


def test_non_string_scalars_and_value_are_constants():
    assert isinstance(parse_rule("r", True), ConstantRule)
    assert parse_rule("r", True).evaluate(PERSON) is True
    assert parse_rule("r", 42).evaluate(PERSON) == 42
    assert parse_rule("r", {"value": "Contoso"}).evaluate(PERSON) == "Contoso"
    assert parse_rule("r", {"value": "Contoso"}).source_attributes() == set()


def test_attribute_key_reaches_odd_names():
    assert parse_rule("r", {"attribute": "Employee ID"}).evaluate(PERSON) == "E 1"


def test_upn_expression_from_the_issue():
    text = "<< (GivenName ~ '.' ~ Surname) | lower | strip_accents >>@contoso.example"
    rule = parse_rule("steps.create.attributes.userPrincipalName", text)
    assert isinstance(rule, ExpressionRule)
    assert rule.source_attributes() == {"GivenName", "Surname"}
    assert rule.evaluate(PERSON) == "zoe.aeroskobing-lodz@contoso.example"


def test_expression_key_without_delimiters():
    rule = parse_rule("r", {"expression": "GivenName ~ ' ' ~ Surname"})
    assert rule.evaluate({"GivenName": "A", "Surname": "B"}) == "A B"


@pytest.mark.parametrize("text,expected", [
    ("<< Department | upper >>", "SALES"),
    ("<< Department | replace('Sa', 'Ta') >>", "Tales"),
    ("<< Surname | regex_replace('[^A-Za-z]', '') >>", "rskbingd"),
    ("<< Surname | strip_accents | regex_search('^([A-Za-z]+)', 1) >>", "AEroskobing"),
    ("<< GivenName | substring(0, 2) >>", "Zo"),
    ("<< Department | substring(-3) >>", "les"),
    ("<< Surname | strip_accents | truncate(5) >>", "AEros"),
    ("<< Title | default_if_empty('Staff') >>", "Staff"),
    ("<< Department | default_if_empty('Staff') >>", "Sales"),
    ("<< Groups | split(';') >>", ["a", "b", "c"]),
    ("<< Groups | split(';') | join(',') >>", "a,b,c"),
    ("<< Phones | join('/') >>", "1/2"),
    ("<< Department | join(',') >>", "Sales"),
    ("<< Surname | mail_safe | lower >>", "aeroskobing-lodz"),
    ("<< Department == 'Sales' >>", True),
    ("<< source['Employee ID'] >>", "E 1"),
    ("<% if Title %>x<% else %>none<% endif %>", "none"),
    ("<< GivenName[:1] >>. << Surname >>", "Z. Ærøskøbing-Łódź"),
])
def test_filters(text, expected):
    assert evaluate(text) == expected


def test_source_item_counts_as_a_source_attribute():
    assert parse_rule("r", "<< source['Employee ID'] | lower >>").source_attributes() == {"Employee ID"}


def test_null_is_an_empty_string_in_expressions():
    assert evaluate("<< GivenName ~ '.' ~ Surname >>", {"GivenName": "A", "Surname": None}) == "A."


def test_bad_expression_fails_at_parse_naming_the_rule():
    with pytest.raises(ConfigError) as exc:
        parse_rule("steps.create.attributes.displayName", "<< GivenName ~ >>")
    assert "steps.create.attributes.displayName" in exc.value.msg


def test_unknown_filter_fails_at_parse_naming_the_rule():
    with pytest.raises(ConfigError) as exc:
        parse_rule("steps.update.attributes.jobTitle", "<< Title | nosuchfilter >>")
    assert "jobTitle" in exc.value.msg and "nosuchfilter" in exc.value.msg


def test_runtime_error_is_a_rule_error_for_the_object():
    rule = parse_rule("steps.update.attributes.x", "<< Missing ~ 'x' >>")
    with pytest.raises(RuleError) as exc:
        rule.evaluate({"Other": "1"})
    assert exc.value.rule == "steps.update.attributes.x"
    assert "Missing" in exc.value.message
    rule = parse_rule("r", "<< (Department | int) / 0 >>")
    with pytest.raises(RuleError):
        rule.evaluate({"Department": "1"})


def test_sandbox_blocks_unsafe_access():
    rule = parse_rule("r", "<< Department.__class__.__mro__ >>")
    with pytest.raises(RuleError):
        rule.evaluate(PERSON)


def test_ansible_delimiters_are_plain_text():
    # {{ }} is not ours: it is left as text (Ansible would have templated it before the module ran anyway)
    assert evaluate("<< Department >> {{ x }}") == "Sales {{ x }}"


def test_reference_rule():
    rule = parse_rule("steps.update.attributes.manager", {"reference": "ManagerID"})
    assert isinstance(rule, ReferenceRule)
    assert rule.evaluate({"ManagerID": " E7 "}) == ["E7"]
    assert rule.evaluate({"ManagerID": ""}) == []
    rule = parse_rule("r", {"reference": "Members", "separator": ";", "lookup": "employeeId"})
    assert rule.evaluate({"Members": "E1; E2;"}) == ["E1", "E2"]
    assert rule.describe() == {"reference": "Members", "lookup": "employeeId"}


@pytest.mark.parametrize("spec", [{"value": 1, "expression": "x"}, {"nonsense": 1}, {"by": "x"}, "", {"attribute": ""},
                                  {"value": 1, "by": "x"}])
def test_malformed_rules(spec):
    with pytest.raises(ConfigError):
        parse_rule("steps.update.attributes.x", spec)


def test_constants_only():
    rule = parse_rule("steps.deprovision.set.department", "<< Leavers >>", constants_only=True)
    assert isinstance(rule, ConstantRule) and rule.evaluate({}) == "<< Leavers >>"
    with pytest.raises(ConfigError):
        parse_rule("x", {"reference": "a"}, constants_only=True)


def test_strip_accents_specials():
    assert rules.strip_accents("Straße Øre Œuvre") == "Strasse Ore OEuvre"
