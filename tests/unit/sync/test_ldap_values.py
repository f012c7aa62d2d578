"""Unit tests of the LDAP connector's pure parts: RFC 4514 DNs, RFC 4515 filter values, GUIDs, value conversion,
settings validation, and the engine hooks it uses (comparison keys, escaped template values)."""
import uuid

import pytest

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import AttributeSpec
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap import names, schema
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.settings import validate_settings
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.sync.config import validate_workflow, Workflow
from ansible_collections.idsync.entra.plugins.module_utils.sync.values import normalize


@pytest.mark.parametrize("value,escaped", [
    ("Smith, John", "Smith\\, John"),
    ("a+b=c", "a\\+b\\=c"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\slash", "back\\\\slash"),
    ("<tag>;", "\\<tag\\>\\;"),
    ("#first", "\\#first"),
    (" padded ", "\\ padded\\ "),
    ("mid # and space", "mid # and space"),
    ("nul\x00", "nul\\00"),
    ("Zoë", "Zoë"),
])
def test_dn_values_are_escaped_per_rfc4514(value, escaped):
    assert names.escape_dn_value(value) == escaped
    assert names.parse_dn("CN=%s,DC=x" % escaped)[0] == [("CN", value)]


def test_parse_dn_handles_hex_escapes_spaces_and_multi_valued_rdns():
    assert names.parse_dn("CN=Smith\\2C John + UID=js , OU=People,DC=example") == [
        [("CN", "Smith, John"), ("UID", "js")], [("OU", "People")], [("DC", "example")]]
    assert names.parse_dn("cn=Caf\\C3\\A9,dc=x")[0] == [("cn", "Café")]
    for bad in ("CN=a,", "CN", "CN=a,=b", "CN=a\\", "CN=a=b"):
        with pytest.raises(names.DnError):
            names.parse_dn(bad)


def test_canonical_dn_compares_every_spelling_of_one_name():
    a = names.canonical_dn("CN=Smith\\, John,OU=People,DC=Example,DC=com")
    assert a == names.canonical_dn("cn=smith\\2c john, ou=people ,dc=example,dc=COM")
    assert a != names.canonical_dn("CN=Smith\\, Jon,OU=People,DC=Example,DC=com")
    assert names.is_within("CN=a,OU=People,DC=x", "ou=people,dc=X")
    assert not names.is_within("CN=a,OU=Sub,OU=People,DC=x", "OU=People,DC=x", "one")
    assert not names.is_within("CN=a,OU=Other,DC=x", "OU=People,DC=x")


@pytest.mark.parametrize("value,escaped", [
    ("*)(objectClass=*", "\\2a\\29\\28objectClass=\\2a"),
    ("a\\b", "a\\5cb"),
    ("nul\x00", "nul\\00"),
    ("Zoë", "Zoë"),
    (b"\x01\xff", "\\01\\ff"),
])
def test_filter_values_are_escaped_per_rfc4515(value, escaped):
    assert names.escape_filter_value(value) == escaped


def test_configured_filters_must_be_one_balanced_filter():
    assert names.check_filter(" (department=Sales) ", "f") == "(department=Sales)"
    for bad in ("department=Sales", "(a=1)(b=2)", "(&(a=1)", "(a=\\29"):
        with pytest.raises(ValueError):
            names.check_filter(bad, "search.user.filter")


def test_object_guid_string_form_is_little_endian_in_its_first_fields():
    raw = bytes(range(16))
    text = names.guid_from_bytes(raw)
    assert text == "03020100-0504-0706-0809-0a0b0c0d0e0f"             # MS-DTYP 2.3.4.2
    assert names.guid_to_bytes(text) == raw
    assert names.escape_filter_value(names.guid_to_bytes(text)).startswith("\\00\\01\\02")


def test_values_convert_from_raw_ldap():
    dialect = schema.Dialect("active_directory")
    guid = uuid.uuid4()
    raw = {"objectGUID": [guid.bytes_le], "userAccountControl": [b"514"], "displayName": ["Zo\u00eb".encode()],
           "proxyAddresses": [b"SMTP:a@x", b"smtp:b@x"], "whenCreated": [b"20250102103000.0Z"],
           "memberOf": [b"CN=Sales staff,OU=G,DC=x", b"CN=A\\, B,OU=G,DC=x"]}
    names_ = ["enabled", "displayName", "proxyAddresses", "whenCreated", "memberOfNames", "userAccountControl"]
    obj = schema.convert_entry(dialect, "user", "CN=z,DC=x", raw, lambda a: raw.get(a, []), names_)
    assert obj == {"dn": "CN=z,DC=x", "enabled": False, "displayName": "Zoë", "proxyAddresses": ["SMTP:a@x", "smtp:b@x"],
                   "whenCreated": "2025-01-02T10:30:00Z", "memberOfNames": ["A, B", "Sales staff"],
                   "userAccountControl": 514}
    assert schema.anchor_of(dialect, raw) == str(guid)
    assert dialect.ldap_attributes("user", ["enabled", "memberOfNames", "dn", "sn"]) == \
        ["memberOf", "objectGUID", "sn", "userAccountControl"]


def test_sam_account_name_and_password_encoding():
    assert schema.sam_account_name("zoë.ærøskøbing-lindqvist@x") == "zoe.aeroskobing-lind"
    assert len(schema.sam_account_name("a" * 40)) == 20
    assert schema.sam_account_name('bad"/\\[]:;|=,+*?<> name') == "badname"
    assert schema.ad_password_value("Pw1!") == '"Pw1!"'.encode("utf-16-le")


def test_case_insensitive_values_compare_folded_but_keep_their_case():
    mail = AttributeSpec("mail", case_insensitive=True)
    assert normalize("Zoe@Contoso.example", mail) == normalize("zoe@contoso.example", mail)
    assert str(normalize("Zoe@Contoso.example", mail)) == "Zoe@Contoso.example"       # written as given
    dn = schema.AD_USER["dn"]
    assert normalize("CN=a\\, b,OU=People,DC=x", dn) == normalize("cn=A\\2C B, ou=people,dc=X", dn)
    assert normalize("CN=a,OU=Sales,DC=x", dn) != normalize("CN=a,OU=IT,DC=x", dn)
    multi = AttributeSpec("m", multi_valued=True, case_insensitive=True)
    assert normalize(["B", "a"], multi) == normalize(["A", "b"], multi)


def test_dn_rules_escape_the_values_they_interpolate():
    wf = Workflow.from_params({
        "name": "w", "source": {"connection": "s", "object_type": "row"},
        "target": {"connection": "t", "object_type": "user"},
        "match": [{"source": "Id", "target": "employeeID"}],
        "steps": {"update": {"attributes": {"dn": "CN=<< Name >>,OU=<< Dept >>,DC=x", "title": "<< Name >>"}}}})
    source = {"Id": AttributeSpec("Id"), "Name": AttributeSpec("Name"), "Dept": AttributeSpec("Dept")}
    validate_workflow(wf, source, schema.AD_USER, "src", "dst")
    person = {"Name": "Smith, John", "Dept": "R+D", "Id": "1"}
    assert wf.update["dn"].evaluate(person) == "CN=Smith\\, John,OU=R\\+D,DC=x"
    assert wf.update["title"].evaluate(person) == "Smith, John"                   # only the DN escapes


def test_settings_refuse_plain_ldap_unless_asked_and_never_hold_a_password():
    base = {"servers": ["dc1.corp.example"], "bind_dn": "svc@corp.example", "base_dn": "DC=corp, DC=example"}
    settings = validate_settings(dict(base), "active_directory")
    assert settings["servers"] == ["ldaps://dc1.corp.example:636"] and settings["base_dn"] == "DC=corp,DC=example"
    assert validate_settings(dict(base, tls="starttls"), "active_directory")["servers"] == ["ldap://dc1.corp.example:389"]
    with pytest.raises(ConfigError, match="ldap:// URI but tls is ldaps"):
        validate_settings(dict(base, servers=["ldap://dc1"]), "active_directory")
    assert validate_settings(dict(base, servers=["ldap://dc1"], tls="none"), "active_directory")["tls"] == "none"
    with pytest.raises(ConfigError, match="is not a DN"):
        validate_settings(dict(base, bind_dn="svc@corp.example"), "ldap")
    with pytest.raises(ConfigError, match="search.user.filter must be an LDAP filter"):
        validate_settings(dict(base, search={"user": {"filter": "department=Sales"}}), "active_directory")
    assert "password" not in " ".join(validate_settings(dict(base, bind_password="x"), "active_directory"))
