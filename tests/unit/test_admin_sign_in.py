"""plugin_utils/admin_sign_in.py: the device code sign-in the app_registration action plugins run on the controller."""
import pytest

import idsync_testlib  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.idsync.entra.plugins.module_utils import clouds
from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError
from ansible_collections.idsync.entra.plugins.plugin_utils import admin_sign_in


@pytest.mark.parametrize("environment, host", [
    ("azure_global", "graph.microsoft.com"),
    ("azure_gcc", "graph.microsoft.com"),
    ("azure_gcc_high", "graph.microsoft.us"),
    ("azure_dod", "dod-graph.microsoft.us"),
    ("azure_china", "microsoftgraph.chinacloudapi.cn"),
])
def test_delegated_scopes_name_the_clouds_graph(environment, host):
    endpoints = clouds.resolve_endpoints(environment, "organizations", graph_endpoint="https://127.0.0.1:8443")
    assert admin_sign_in.delegated_scopes(endpoints) == [
        "https://%s/%s" % (host, name) for name in (
            "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "RoleManagement.ReadWrite.Directory",
            "Directory.Read.All")]


def test_device_code_uses_overrides_and_the_ca_path_session(monkeypatch, tmp_path):
    seen = {}

    class FakeCredential(object):
        def __init__(self, endpoints, session, client_id=None, scopes=None, prompt=None, timeout=None):
            seen.update(endpoints=endpoints, session=session, client_id=client_id, scopes=scopes, timeout=timeout)
            self.prompt = prompt

        def get_token(self):
            self.prompt("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter "
                        "the code ABCD1234 to authenticate.")
            return "header.eyJ0aWQiOiJ0LTEifQ.sig"

    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    monkeypatch.setattr(admin_sign_in.credentials, "DeviceCodeCredential", FakeCredential)
    messages = []
    token, claims = admin_sign_in.sign_in_with_device_code(
        {"authority_host": "https://127.0.0.1:8443", "graph_endpoint": "https://127.0.0.1:8443",
         "ca_path": str(ca), "tenant_environment": "azure_gcc_high", "device_code_timeout": 60},
        messages.append, environ={})
    assert token == "header.eyJ0aWQiOiJ0LTEifQ.sig"
    assert claims == {"tid": "t-1"}
    assert "ABCD1234" in messages[0]
    assert seen["endpoints"].authority == "https://127.0.0.1:8443/organizations"
    assert seen["client_id"] == admin_sign_in.DEFAULT_CLIENT_ID
    assert seen["scopes"][0] == "https://graph.microsoft.us/Application.ReadWrite.All"
    assert seen["session"].ca_path == str(ca)
    assert seen["timeout"] == 60


def test_bad_tenant_is_a_clear_error():
    with pytest.raises(IdsyncError, match="tenant_id 'not a tenant!'"):
        admin_sign_in.sign_in_with_device_code({"tenant_id": "not a tenant!"}, print, environ={})
