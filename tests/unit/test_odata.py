"""odata.py: literal quoting and filter builders."""
import datetime
import uuid

import pytest

import idsync_testlib  # noqa: F401
from ansible_collections.idsync.entra.plugins.module_utils import odata


def test_quote_doubles_single_quotes():
    assert odata.quote("O'Brien") == "'O''Brien'"
    assert odata.quote("''") == "''''''"
    assert odata.quote("") == "''"


@pytest.mark.parametrize("value, rendered", [
    ("a b", "'a b'"),
    (5, "5"),
    (2.5, "2.5"),
    (True, "true"),
    (False, "false"),
    (None, "null"),
    (uuid.UUID("0f2ad2b2-3c1e-4b1a-9f8d-0123456789ab"), "'0f2ad2b2-3c1e-4b1a-9f8d-0123456789ab'"),
    ("0f2ad2b2-3c1e-4b1a-9f8d-0123456789ab", "'0f2ad2b2-3c1e-4b1a-9f8d-0123456789ab'"),
    (datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "2025-01-02T03:04:05Z"),
])
def test_literals(value, rendered):
    assert odata.literal(value) == rendered
    assert odata.eq("p", value) == "p eq " + rendered


def test_builders():
    assert odata.eq("userPrincipalName", "o'neil@contoso.com") == "userPrincipalName eq 'o''neil@contoso.com'"
    assert odata.in_("id", ["a", "b'c"]) == "id in ('a', 'b''c')"
    assert odata.startswith("displayName", "Sales'") == "startswith(displayName, 'Sales''')"
    assert odata.any_eq("proxyAddresses", "smtp:a@b.c") == "proxyAddresses/any(x: x eq 'smtp:a@b.c')"
    assert odata.and_(odata.eq("a", 1), odata.eq("b", True)) == "a eq 1 and b eq true"
    assert odata.and_(odata.eq("a", 1)) == "a eq 1"
    assert odata.and_(odata.eq("a", 1), None, "") == "a eq 1"


def test_nested_boolean_clauses_get_parentheses():
    either = odata.or_(odata.eq("a", 1), odata.eq("b", 2))
    assert odata.and_(either, odata.eq("c", "x and y")) == "(a eq 1 or b eq 2) and c eq 'x and y'"
    # a quoted ' and ' or a parenthesised group does not need extra parentheses
    assert odata.and_(odata.eq("c", "x and y"), odata.not_(either)) == "c eq 'x and y' and not(a eq 1 or b eq 2)"


def test_select():
    assert odata.select(["id", "displayName", "id", " mail "]) == "id,displayName,mail"
    assert odata.select("id, displayName") == "id,displayName"


@pytest.mark.parametrize("bad", ["a b", "x) or (1 eq 1", "", "a'b"])
def test_property_names_are_checked(bad):
    with pytest.raises(ValueError):
        odata.eq(bad, 1)


def test_empty_inputs_raise():
    with pytest.raises(ValueError):
        odata.in_("id", [])
    with pytest.raises(ValueError):
        odata.and_()
    with pytest.raises(ValueError):
        odata.select([])
