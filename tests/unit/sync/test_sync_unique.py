"""Unique values ({unique: [...]}), target.<attribute> in expressions, and Graph's limits checked at plan time."""
import pytest

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import Uniqueness
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.sync.config import Workflow
from ansible_collections.idsync.entra.plugins.module_utils.sync.unique import ValueChooser
from test_sync_engine import Env

UPN = Uniqueness(["userPrincipalName"], case_insensitive=True, max_length=113, local_max=64)
FIRST_LAST = "<< (GivenName ~ '.' ~ Surname) | strip_accents | mail_safe | lower >>@contoso.example"
INITIAL_LAST = "<< (GivenName[:1] ~ '.' ~ Surname) | strip_accents | mail_safe | lower >>@contoso.example"


def chooser(*taken):
    return ValueChooser(UPN, [dict((str(n), {"userPrincipalName": t}) for n, t in enumerate(taken))])


def test_first_free_candidate_wins_then_a_counter_on_the_first():
    c = chooser("John.Smith@contoso.example")
    assert c.choose(["john.smith@contoso.example", "j.smith@contoso.example"]) == "j.smith@contoso.example"
    assert c.choose(["john.smith@contoso.example", "j.smith@contoso.example"]) == "john.smith2@contoso.example"
    assert c.choose(["john.smith@contoso.example", "j.smith@contoso.example"]) == "john.smith3@contoso.example"


def test_counter_skips_values_taken_by_existing_objects_and_case_does_not_matter():
    c = chooser("a.b@x.example", "A.B2@X.EXAMPLE", "a.b3@x.example")
    assert c.choose(["a.b@x.example"]) == "a.b4@x.example"


def test_counter_and_cut_keep_the_local_part_within_its_limit():
    long_local = "a" * 63 + "." + "b" * 10
    c = chooser()
    first = c.choose([long_local + "@contoso.example"])
    assert first == "a" * 63 + "@contoso.example"                 # cut at 64, the dot left at the cut removed
    second = c.choose([long_local + "@contoso.example"])
    assert second == "a" * 63 + "2@contoso.example" and len(second.split("@")[0]) == 64
    assert c.choose(["x" * 70]) == "x" * 70                         # no "@": only max_length binds


def test_a_released_value_is_free_again():
    c = chooser()
    value = c.choose(["a@b.example"])
    c.release(value)
    assert c.choose(["a@b.example"]) == "a@b.example"


def unique_params(attributes, **extra):
    params = {
        "name": "hr_to_entra",
        "source": {"connection": "hr", "object_type": "row", "scope": "<< Status == 'Active' >>"},
        "target": {"connection": "contoso", "object_type": "user"},
        "match": [{"source": "EmployeeID", "target": "employeeId"}],
        "steps": {"create": {"attributes": dict({"displayName": "<< GivenName >> << Surname >>",
                                                 "accountEnabled": True}, **attributes),
                             "password": "generate"}},
    }
    params.update(extra)
    return params


UNIQUE_UPN = {
    "userPrincipalName": {"unique": [FIRST_LAST, INITIAL_LAST]},
    "mailNickname": "<< target.userPrincipalName.split('@')[0] >>",
    "mail": "<< target.userPrincipalName >>",
}


@pytest.fixture
def env(tmp_path, store):
    return Env(tmp_path, store)


def people(*names):
    return ["E%d,%s,%s,Sales,Rep,,Active" % (n, given, surname) for n, (given, surname) in enumerate(names, 1)]


def test_duplicate_names_get_free_sign_in_names_in_one_request_free_run(env):
    env.graph.add_user(userPrincipalName="john.smith@contoso.example", displayName="Existing")
    env.graph.add_user(userPrincipalName="x@contoso.example", proxyAddresses=["SMTP:x@contoso.example",
                                                                              "smtp:j.smith@contoso.example"])
    env.write_hr(people(("John", "Smith"), ("John", "Smith"), ("Jöhn", "Smith"), ("Jane", "Smith")))
    result = env.run(unique_params(UNIQUE_UPN), check_mode=True)
    chosen = [c["attributes"]["userPrincipalName"] for c in result["plan"]["create"]]
    # john.smith taken by a user, j.smith by another object's proxyAddresses: the counter goes on the first
    assert chosen == ["john.smith2@contoso.example", "john.smith3@contoso.example", "john.smith4@contoso.example",
                      "jane.smith@contoso.example"]
    nicknames = [c["attributes"]["mailNickname"] for c in result["plan"]["create"]]
    assert nicknames == ["john.smith2", "john.smith3", "john.smith4", "jane.smith"]
    writes = env.graph.stats["writes"]
    applied = env.run(unique_params(UNIQUE_UPN))
    assert applied["summary"]["created"] == 4 and applied["errors"] == []
    assert sorted(u["userPrincipalName"] for u in env.graph.users.values() if u.get("employeeId")) == sorted(chosen)
    assert writes == 0                                             # check mode wrote nothing


def test_the_choice_is_deterministic_and_create_only(env, tmp_path, store):
    env.write_hr(people(("Ann", "Lee"), ("Ann", "Lee")))
    first = env.run(unique_params(UNIQUE_UPN), check_mode=True)["plan"]["create"]
    again = env.run(unique_params(UNIQUE_UPN), check_mode=True)["plan"]["create"]
    assert first == again
    env.run(unique_params(UNIQUE_UPN))
    # E1 leaves the file and comes back later: E2 keeps the name it was given, nothing is renamed
    env.write_hr(people(("Ann", "Lee"), ("Ann", "Lee"))[1:])
    result = env.run(unique_params(UNIQUE_UPN))
    assert result["changed"] is False
    assert sorted(u["userPrincipalName"] for u in env.graph.users.values()) == ["a.lee@contoso.example",
                                                                                 "ann.lee@contoso.example"]


def test_unique_is_create_only_and_cycles_are_configuration_errors():
    with pytest.raises(ConfigError, match="chosen once, at creation"):
        Workflow.from_params(unique_params({}, steps={"update": {"attributes": {"mail": {"unique": ["a"]}}}}))
    with pytest.raises(ConfigError, match="cannot also be kept up to date"):
        p = unique_params(UNIQUE_UPN)
        p["steps"]["update"] = {"attributes": {"userPrincipalName": "Email"}}
        Workflow.from_params(p)
    with pytest.raises(ConfigError, match="cycle: steps.create.attributes.mail -> steps.create.attributes."
                                          "mailNickname -> steps.create.attributes.mail"):
        Workflow.from_params(unique_params({"mail": "<< target.mailNickname >>",
                                            "mailNickname": "<< target.mail >>"}))
    with pytest.raises(ConfigError, match="reads target.jobTitle, which steps.create/update does not compute"):
        Workflow.from_params(unique_params({"mail": "<< target.jobTitle >>"}))


def test_a_value_graph_would_refuse_fails_that_object_in_the_plan(env):
    env.write_hr(people(("Ann", "Lee"), ("Bo", "X" * 70), ("Cy", "Ok")))
    params = unique_params({"userPrincipalName": "<< GivenName | lower >>@contoso.example",
                            "surname": "Surname", "usageLocation": {"value": "DK"}})
    params["steps"]["create"]["attributes"]["jobTitle"] = "<< 'Head of ' ~ Surname >>"
    result = env.run(params, check_mode=True)
    errors = dict((e["source"], e) for e in result["errors"])
    assert list(errors) == ["E2"]
    # the first attribute (by name) that breaks a limit is named: surname, 70 > 64
    assert errors["E2"]["rule"] == "steps.create.attributes.surname"
    assert errors["E2"]["error"].startswith("surname is 70 characters long; Microsoft Graph allows at most 64")
    assert [c["source"] for c in result["plan"]["create"]] == ["E1", "E3"]
    applied = env.run(params)
    assert applied["summary"]["created"] == 2 and len(applied["errors"]) == 1


@pytest.mark.parametrize("attributes,rule,expected", [
    ({"userPrincipalName": "<< GivenName | lower >>@fabrikam.example"}, "userPrincipalName",
     "fabrikam.example is not a verified domain of the tenant (verified: contoso.example)"),
    ({"userPrincipalName": "<< GivenName | lower >>.@contoso.example"}, "userPrincipalName",
     "a dot at the start or end of the alias"),
    ({"usageLocation": {"value": "XX"}}, "usageLocation", "'XX' is not a two-letter ISO 3166 country code"),
    ({"mailNickname": "<< GivenName >> <<Surname>>"}, "mailNickname", "holds a space"),
    ({"surname": "<< Surname * 10 >>"}, "surname", "is 90 characters long; Microsoft Graph allows at most 64"),
])
def test_each_kind_of_limit_names_the_attribute_the_rule_and_the_limit(env, attributes, rule, expected):
    env.write_hr(people(("Ann", "Leeeeeeee")))
    base = {"userPrincipalName": "<< GivenName | lower >>@contoso.example"}
    base.update(attributes)
    result = env.run(unique_params(base), check_mode=True)
    error = result["errors"][0]
    assert error["rule"] == "steps.create.attributes." + rule and expected in error["error"], error
    assert error["error"].startswith(rule + " ")


def test_updates_are_checked_only_for_the_values_they_write(env):
    env.graph.add_user(employeeId="E9", userPrincipalName="old@contoso.example", displayName="Old",
                       surname="Y" * 80)                          # already too long: not written, not checked
    env.write_hr(people(("Ann", "Lee")) + ["E9,Old,Timer,Sales,Rep,,Active"])
    params = unique_params({"userPrincipalName": "<< GivenName | lower >>@contoso.example"})
    params["steps"]["update"] = {"attributes": {"jobTitle": "<< Surname * (50 if Title == 'Boss' else 1) >>"}}
    first = env.run(params)
    assert first["summary"]["created"] == 1 and first["errors"] == []
    env.write_hr(["E1,Ann,Lee,Sales,Boss,,Active", "E9,Old,Timer,Sales,Rep,,Active"])
    result = env.run(params)
    assert [e["source"] for e in result["errors"]] == ["E1"]
    assert result["errors"][0]["rule"] == "steps.update.attributes.jobTitle"
    assert result["errors"][0]["error"].startswith("jobTitle is 150 characters long; Microsoft Graph allows at most 128")


def test_unique_reads_cost_no_request_per_person(env):
    env.write_hr(people(*[("Pat", "Doe")] * 30))
    before = env.graph.stats["requests"]
    result = env.run(unique_params(UNIQUE_UPN), check_mode=True)
    assert len(result["plan"]["create"]) == 30
    # users page + groups page (their addresses) + /organization (verified domains, once)
    assert env.graph.stats["requests"] - before <= 4
    assert len(set(c["attributes"]["userPrincipalName"].lower() for c in result["plan"]["create"])) == 30
