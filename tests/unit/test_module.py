"""module.py: IdsyncModule argument spec, env fallbacks, fail_from shape, diff; tenant_info run in-process over TLS."""
import json
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from idsync_testlib import Reply, ScriptedServer, TLSPki, graph_error, make_jwt
from ansible_collections.idsync.entra.plugins.module_utils.errors import AuthError, GraphError
from ansible_collections.idsync.entra.plugins.module_utils.module import (
    AUTH_OPTIONS, CONNECTION_OPTIONS, IdsyncModule, auth_argument_spec, build_diff,
)
from ansible_collections.idsync.entra.plugins.modules import tenant_info

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def set_module_args(args):
    args = dict(args)
    args.setdefault("_ansible_remote_tmp", "/tmp")
    args.setdefault("_ansible_keep_remote_files", False)
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    try:  # ansible-core >= 2.19 profiles
        basic._ANSIBLE_PROFILE = "legacy"
    except AttributeError:
        pass


def run_module(main, args, capsys):
    set_module_args(args)
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr().out
    return info.value.code, json.loads(out)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
                 "AZURE_CLIENT_CERTIFICATE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_auth_spec_matches_doc_fragment():
    import yaml
    from ansible_collections.idsync.entra.plugins.doc_fragments.auth import ModuleDocFragment
    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = auth_argument_spec()
    assert set(doc) == set(spec) == set(AUTH_OPTIONS) | set(CONNECTION_OPTIONS)
    for name, option in spec.items():
        assert doc[name]["type"] == option["type"], name
        assert doc[name].get("default") == option.get("default"), name
        assert doc[name].get("choices") == option.get("choices"), name
    assert spec["client_secret"]["no_log"] and spec["access_token"]["no_log"]


def test_build_diff():
    assert build_diff({"a": 1, "b": 2, "c": [1]}, {"a": 1, "b": 3, "d": 4}) == {
        "before": {"b": 2, "c": [1]}, "after": {"b": 3, "d": 4}}
    assert build_diff(None, {"a": 1}) == {"before": {}, "after": {"a": 1}}
    assert build_diff({"a": 1}, None) == {"before": {"a": 1}, "after": {}}
    assert IdsyncModule.diff({"x": {"y": 1}}, {"x": {"y": 1}}) == {"before": {}, "after": {}}


def _probe_main():
    module = IdsyncModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True)
    with module.fail_on_error():
        if module.params["name"] == "graph-error":
            raise GraphError(404, "Request_ResourceNotFound", "gone", request_id="rid")
        if module.params["name"] == "auth-error":
            raise AuthError("Sign-in failed.", {"aadsts": "AADSTS7000215", "trace_id": "t"})
        if module.params["name"] == "endpoints":
            module.exit_json(changed=False, authority=module.endpoints.authority, params={
                k: module.params[k] for k in ("tenant_id", "client_id", "tenant_environment")})
        module.credential  # noqa: B018 - build it to surface config errors
    module.exit_json(changed=False)


def test_env_fallbacks(monkeypatch, capsys):
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
    monkeypatch.setenv("AZURE_CLIENT_ID", "abc")
    rc, out = run_module(_probe_main, {"name": "endpoints", "client_secret": "s3cr3t-value"}, capsys)
    assert rc == 0
    assert out["authority"] == "https://login.microsoftonline.com/contoso.onmicrosoft.com"
    assert out["params"] == {"tenant_id": "contoso.onmicrosoft.com", "client_id": "abc",
                             "tenant_environment": "azure_global"}


def test_fail_from_shape(capsys):
    rc, out = run_module(_probe_main, {"name": "graph-error", "tenant_id": TENANT, "client_secret": "x" * 8,
                                       "client_id": "c"}, capsys)
    assert rc == 1 and out["failed"]
    assert out["msg"] == "Microsoft Graph returned 404 Request_ResourceNotFound: gone. (request-id rid)"
    assert out["error"]["code"] == "Request_ResourceNotFound" and out["error"]["request_id"] == "rid"
    assert out["error"]["message"] == "gone" and out["error"]["status"] == 404
    rc, out = run_module(_probe_main, {"name": "auth-error", "tenant_id": TENANT, "client_secret": "x" * 8,
                                       "client_id": "c"}, capsys)
    assert out["msg"] == "Sign-in failed." and out["error"]["code"] == "AADSTS7000215"


def test_conflicting_credentials(capsys):
    rc, out = run_module(_probe_main, {"tenant_id": TENANT, "client_id": "c", "client_secret": "zzzzzz-secret",
                                       "access_token": make_jwt()}, capsys)
    assert rc == 1 and "client_secret and access_token are mutually exclusive" in out["msg"]
    assert "zzzzzz-secret" not in json.dumps(out)


def test_required_by(capsys):
    rc, out = run_module(_probe_main, {"tenant_id": TENANT, "client_id": "c", "client_secret": "s" * 8,
                                       "certificate_thumbprint": "AB" * 20}, capsys)
    assert rc == 1 and "certificate_thumbprint" in out["msg"] and "certificate_path" in out["msg"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TLSPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def graph_server(pki, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    srv = ScriptedServer(ssl_context=pki.server_context())
    srv.route("GET", "^/v1.0/organization$", Reply(200, {"value": [{
        "id": TENANT, "displayName": "Contoso",
        "verifiedDomains": [{"name": "contoso.onmicrosoft.com", "isDefault": True, "isInitial": True}]}]}))
    yield srv
    srv.close()


def test_tenant_info_with_access_token(graph_server, pki, capsys):
    token = make_jwt(roles=["User.Read.All", "Organization.Read.All"], tid=TENANT)
    rc, out = run_module(tenant_info.main, {"access_token": token, "graph_endpoint": graph_server.url,
                                            "ca_path": pki.ca_path, "_ansible_check_mode": True}, capsys)
    assert rc == 0, out
    assert out["changed"] is False
    assert out["organization"]["displayName"] == "Contoso" and out["tenant_id"] == TENANT
    assert out["granted_permissions"] == ["Organization.Read.All", "User.Read.All"]
    assert out["endpoints"] == {"authority": "https://login.microsoftonline.com/" + TENANT,
                                "graph_url": graph_server.url + "/v1.0"}
    assert out["credential"]["type"] == "access_token"
    assert token not in json.dumps(out)
    req = graph_server.calls()[0]
    assert req.query["$select"] == "id,displayName,verifiedDomains"


def test_tenant_info_missing_permissions(graph_server, pki, capsys):
    token = make_jwt(roles=["Organization.Read.All"], tid=TENANT)
    rc, out = run_module(tenant_info.main, {"access_token": token, "graph_endpoint": graph_server.url,
                                            "ca_path": pki.ca_path,
                                            "required_permissions": ["User.ReadWrite.All", "Organization.Read.All"]},
                         capsys)
    assert rc == 1 and out["error"]["missing"] == ["User.ReadWrite.All"]
    assert "lacks the Microsoft Graph application permission(s) User.ReadWrite.All" in out["msg"]


def test_tenant_info_forbidden(graph_server, pki, capsys):
    graph_server.route("GET", "^/v1.0/organization$", graph_error(403, "Authorization_RequestDenied",
                                                                 "Insufficient privileges to complete the operation."))
    token = make_jwt(roles=["User.Read.All"], tid=TENANT)
    rc, out = run_module(tenant_info.main, {"access_token": token, "graph_endpoint": graph_server.url,
                                            "ca_path": pki.ca_path}, capsys)
    assert rc == 1
    assert out["msg"].startswith("Microsoft Graph returned 403 Authorization_RequestDenied for GET /organization")
    assert "(User.Read.All) do not allow this call" in out["msg"]
    assert out["graph_stats"]["requests"] == 1
    assert os.environ.get("AZURE_CLIENT_SECRET") is None
