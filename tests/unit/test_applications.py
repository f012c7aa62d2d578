"""applications.py: certificate and thumbprint handling, name resolution with close matches, and the plan/apply
logic against an in-memory fake Graph client (the integration tests run it against the emulator)."""
import base64
import binascii
import datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from idsync_testlib import cert_pem as _cert_pem, key_pem, make_cert, write
from ansible_collections.idsync.entra.plugins.module_utils import app_certificates, app_directory, applications
from ansible_collections.idsync.entra.plugins.module_utils.app_certificates import (
    credential_thumbprint, load_public_certificate,
)
from ansible_collections.idsync.entra.plugins.module_utils.app_directory import close_matches
from ansible_collections.idsync.entra.plugins.module_utils.applications import AppRegistration
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError

GRAPH = "00000003-0000-0000-c000-000000000000"
GRAPH_SP = "11111111-1111-1111-1111-111111111111"
ROLES = {
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Group.ReadWrite.All": "62a82d76-70ea-41e2-9197-370581804d09",
    "Organization.Read.All": "498476ce-e0fe-48b0-b801-37ba7e2685c6",
}


def cert_pem(cert):
    pem = _cert_pem(cert)
    return pem.decode() if isinstance(pem, bytes) else pem


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def thumb(cert):
    return binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode().upper()


# ------------------------------------------------------------------------------------------------ certificates

def test_thumbprint_from_key_or_custom_key_identifier():
    cert = make_cert("a")[0]
    tp = thumb(cert)
    assert credential_thumbprint({"key": base64.b64encode(der(cert)).decode()}) == tp
    # Some tools register base64 of the PEM text (terraform's "pem" encoding).
    assert credential_thumbprint({"key": base64.b64encode(cert_pem(cert).encode()).decode()}) == tp
    assert credential_thumbprint({"customKeyIdentifier": tp.lower()}) == tp
    assert credential_thumbprint({"customKeyIdentifier": base64.b64encode(binascii.unhexlify(tp)).decode()}) == tp
    assert credential_thumbprint({"customKeyIdentifier": base64.b64encode(tp.encode()).decode()}) == tp
    assert credential_thumbprint({"customKeyIdentifier": "bm90IGEgdGh1bWJwcmludA=="}) is None
    assert credential_thumbprint({}) is None


def test_load_public_certificate_from_text_and_files(tmp_path):
    cert, key = make_cert("connector")
    from_text = load_public_certificate(cert_pem(cert))
    assert from_text.thumbprint == thumb(cert)
    assert from_text.subject == "CN=connector"
    credential = from_text.key_credential()
    assert credential["type"] == "AsymmetricX509Cert" and credential["usage"] == "Verify"
    assert base64.b64decode(credential["key"]) == der(cert)
    assert "keyId" not in credential and "customKeyIdentifier" not in credential

    # A combined key + certificate PEM: only the certificate is ever used.
    combined = write(tmp_path / "both.pem", key_pem(key) + _cert_pem(cert))
    loaded = load_public_certificate(str(combined))
    assert loaded.thumbprint == thumb(cert)
    assert b"PRIVATE" not in base64.b64decode(loaded.key_credential()["key"])

    der_file = tmp_path / "c.cer"
    der_file.write_bytes(der(cert))
    assert load_public_certificate(str(der_file)).thumbprint == thumb(cert)

    only_key = write(tmp_path / "key.pem", key_pem(key))
    with pytest.raises(ConfigError, match="holds no CERTIFICATE block"):
        load_public_certificate(str(only_key))
    with pytest.raises(ConfigError, match="does not exist on the managed node"):
        load_public_certificate(str(tmp_path / "missing.pem"))

    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=40)
    expired = make_cert("old", not_before=old, days=10)[0]
    with pytest.raises(ConfigError, match="expired on"):
        load_public_certificate(cert_pem(expired))


# ------------------------------------------------------------------------------------------------ names

def test_close_matches():
    values = sorted(ROLES)
    assert close_matches("User.ReadWrite.Al", values)[0] == "User.ReadWrite.All"
    assert "Group.ReadWrite.All" in close_matches("group.readwrite.all", values)
    assert close_matches("Mail.Send", values) == []


class FakeGraph:
    """Just enough of GraphClient: canned GETs (exact path + params), recorded writes."""

    base_url = "https://graph.example/v1.0"

    def __init__(self):
        self.objects = {}
        self.lists = {}
        self.writes = []

    def get(self, path, params=None):
        key = (path, tuple(sorted((params or {}).items())))
        if key in self.objects:
            return self.objects[key]
        if path in self.objects:
            return self.objects[path]
        raise GraphError(404, "Request_ResourceNotFound", "Resource '%s' does not exist." % path)

    def iter_items(self, path, params=None):
        key = (path, (params or {}).get("$filter"))
        return iter(self.lists.get(key, self.lists.get(path, [])))

    def post(self, path, json=None, **kwargs):
        self.writes.append(("POST", path, json))
        return {"id": "new-object", "appId": "22222222-2222-2222-2222-222222222222"}

    def patch(self, path, json=None, **kwargs):
        self.writes.append(("PATCH", path, json))

    def delete(self, path, **kwargs):
        self.writes.append(("DELETE", path, None))


def graph_sp():
    roles = [{"id": rid, "value": name, "isEnabled": True, "allowedMemberTypes": ["Application"]}
             for name, rid in ROLES.items()]
    roles.append({"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "value": "User.Read", "isEnabled": True,
                  "allowedMemberTypes": ["User"]})
    return {"id": GRAPH_SP, "appId": GRAPH, "displayName": "Microsoft Graph", "appRoles": roles,
            "oauth2PermissionScopes": [{"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "value": "Mail.Read"}]}


@pytest.fixture
def fake():
    graph = FakeGraph()
    graph.objects["/servicePrincipals(appId='%s')" % GRAPH] = graph_sp()
    return graph


def test_resolve_permissions(fake):
    logic = AppRegistration(fake)
    resolved = logic.resolve_api_permissions({"Microsoft Graph": ["User.ReadWrite.All", "organization.read.all",
                                                                  ROLES["Group.ReadWrite.All"]]})
    assert set(resolved[GRAPH]["roles"]) == {ROLES["User.ReadWrite.All"], ROLES["Organization.Read.All"],
                                             ROLES["Group.ReadWrite.All"]}
    assert logic.resolve_api_permissions({GRAPH: "User.Read.All"})[GRAPH]["roles"] == {
        ROLES["User.Read.All"]: "User.Read.All"}

    with pytest.raises(ConfigError) as info:
        logic.resolve_api_permissions({"Microsoft Graph": ["User.ReadWrite.Al", "Grup.ReadWrite.All"]})
    assert "'User.ReadWrite.Al'" in info.value.msg and "did you mean 'User.ReadWrite.All'" in info.value.msg
    assert "'Group.ReadWrite.All'" in info.value.msg
    # A delegated-only name says so; a user-only app role is not an application permission.
    with pytest.raises(ConfigError, match="it is a delegated permission"):
        logic.resolve_api_permissions({"Microsoft Graph": ["Mail.Read"]})
    with pytest.raises(ConfigError, match="Unknown application permission 'User.Read'"):
        logic.resolve_api_permissions({"Microsoft Graph": ["User.Read"]})


def test_required_resource_access_keeps_delegated_entries():
    app = {"requiredResourceAccess": [{"resourceAppId": GRAPH, "resourceAccess": [
        {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"},
        {"id": ROLES["User.Read.All"], "type": "Role"}]}]}
    wanted = {GRAPH: {"resource": graph_sp(), "roles": {ROLES["Organization.Read.All"]: "Organization.Read.All"}}}
    result = AppRegistration._required_resource_access(app, wanted)
    assert result == [{"resourceAppId": GRAPH, "resourceAccess": [
        {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"},
        {"id": ROLES["Organization.Read.All"], "type": "Role"}]}]


def test_duplicate_names_are_a_clear_error(fake):
    fake.lists[("/applications", "displayName eq 'twin'")] = [
        {"id": "o1", "appId": "aaaaaaaa-0000-0000-0000-000000000001", "displayName": "twin", "createdDateTime": "2024"},
        {"id": "o2", "appId": "aaaaaaaa-0000-0000-0000-000000000002", "displayName": "twin", "createdDateTime": "2025"},
    ]
    with pytest.raises(ConfigError) as info:
        AppRegistration(fake).find_application(display_name="twin")
    assert "2 applications are named 'twin'" in info.value.msg
    assert "aaaaaaaa-0000-0000-0000-000000000001" in info.value.msg
    assert "aaaaaaaa-0000-0000-0000-000000000002" in info.value.msg
    assert info.value.details["app_ids"] == ["aaaaaaaa-0000-0000-0000-000000000001",
                                             "aaaaaaaa-0000-0000-0000-000000000002"]


def test_odata_quoting_of_names(fake):
    fake.lists[("/applications", "displayName eq 'O''Brien app'")] = []
    assert AppRegistration(fake).find_application(display_name="O'Brien app") is None


def test_check_mode_on_nothing_writes_nothing(fake):
    cert = make_cert("connector")[0]
    logic = AppRegistration(fake, check_mode=True)
    changed, result, diff = logic.ensure_present({
        "display_name": "new app", "certificates": [cert_pem(cert)], "certificate_mode": "add",
        "api_permissions": {"Microsoft Graph": ["User.Read.All"]}, "admin_consent": True})
    assert changed is True
    assert fake.writes == []
    assert result["app_id"] is None
    assert result["certificate_thumbprints"] == [thumb(cert)]
    assert diff["before"] == {"state": "absent"}
    assert diff["after"]["consented_permissions"] == {"Microsoft Graph": ["User.Read.All"]}
    assert logic.changes[0] == "create application 'new app'"


def test_key_payload_keeps_existing_keys_with_their_key(fake):
    old = make_cert("old")[0]
    new = make_cert("new")[0]
    listed = {"keyId": "k1", "type": "AsymmetricX509Cert", "usage": "Verify", "key": None,
              "customKeyIdentifier": thumb(old), "displayName": "CN=old"}
    full = dict(listed, key=base64.b64encode(der(old)).decode())
    fake.objects[("/applications/o1", (("$select", "keyCredentials"),))] = {"keyCredentials": [full]}
    payload = AppRegistration(fake)._key_payload("o1", [listed], [load_public_certificate(cert_pem(new))])
    assert payload[0] == full
    assert base64.b64decode(payload[1]["key"]) == der(new)
    assert fake.writes == []


def test_module_utils_has_no_controller_only_imports():
    for module in (applications, app_certificates, app_directory):
        source = open(module.__file__).read()
        assert "ansible.plugins" not in source and "ansible.utils.display" not in source
