"""One national cloud per emulator run (`serve --cloud`): tokens only for that cloud's Graph resource, Graph refuses
another cloud's audience, and other clouds' login hosts do not know the tenant. Real Entra: a tenant has service
principals only for its own cloud's resources (AADSTS500011, worded as in microsoft/store-submission#18)."""
import jwt
import msal
import pytest
import requests
from cryptography.hazmat.primitives import serialization

AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
OTHER_CLOUDS_GRAPH = ["https://graph.microsoft.us", "https://dod-graph.microsoft.us",
                      "https://microsoftgraph.chinacloudapi.cn"]


def not_found_in_tenant(body, resource):
    return body["error_description"].startswith(
        f"AADSTS500011: The resource principal named {resource} was not found in the tenant named ")


def own_key_token(emulator, claims: dict) -> str:
    """A token signed with the emulator's own signing key (from its state dir), so only the claims are at fault."""
    key = serialization.load_pem_private_key((emulator.state_dir / "signing-key.pem").read_bytes(), password=None)
    kid = requests.get(f"{emulator.base_url}/common/discovery/v2.0/keys", verify=emulator.ca_path,
                       timeout=30).json()["keys"][0]["kid"]
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "x5t": kid})


def test_the_default_emulator_is_a_global_tenant(entra, emulator):
    assert emulator.endpoints["cloud"] == "azure_global"
    config = entra.get(f"/{entra.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert config["cloud_instance_name"] == "microsoftonline.com"


@pytest.mark.parametrize("resource", OTHER_CLOUDS_GRAPH + ["https://outlook.office365.us"])
def test_another_clouds_resource_is_aadsts500011(entra, resource):
    body = entra.assert_aad_error(entra.client_credentials(f"{resource}/.default"), 400, "invalid_resource", 500011)
    assert not_found_in_tenant(body, resource), body["error_description"]


def test_another_clouds_login_host_does_not_know_the_tenant(entra):
    """Through a DNS override the request reaches the emulator with Host: login.microsoftonline.us; the real US
    Government cloud has no such tenant (AADSTS90002), while the global login host does."""
    session = entra.session(redirect_login_hosts={"login.microsoftonline.us", "login.microsoftonline.com"})
    for host, status in (("login.microsoftonline.us", 400), ("login.microsoftonline.com", 200)):
        response = session.get(f"https://{host}/{entra.tenant_id}/v2.0/.well-known/openid-configuration", timeout=30)
        assert response.status_code == status, (host, response.text)
    refused = session.get(f"https://login.microsoftonline.us/{entra.tenant_id}/v2.0/.well-known/openid-configuration",
                          timeout=30)
    entra.assert_aad_error(refused, 400, "invalid_tenant", 90002)


@pytest.fixture
def gcc_high(extra_emulator):
    return extra_emulator("--cloud", "azure_gcc_high", "--auto-approve")


def test_gcc_high_tenant(gcc_high):
    assert gcc_high.emulator.endpoints["cloud"] == "azure_gcc_high"
    token = gcc_high.app_token("https://graph.microsoft.us/.default")
    assert gcc_high.claims(token)["aud"] == "https://graph.microsoft.us"
    assert gcc_high.graph("GET", "/v1.0/organization", token).status_code == 200
    body = gcc_high.assert_aad_error(gcc_high.client_credentials("https://graph.microsoft.com/.default"), 400,
                                     "invalid_resource", 500011)
    assert not_found_in_tenant(body, "https://graph.microsoft.com")
    assert body["error_uri"] == "https://login.microsoftonline.us/error?code=500011"
    config = gcc_high.get(f"/{gcc_high.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert config["cloud_instance_name"] == "microsoftonline.us"
    session = gcc_high.session(redirect_login_hosts={"login.microsoftonline.us", "login.microsoftonline.com"})
    us = session.get(f"https://login.microsoftonline.us/{gcc_high.tenant_id}/v2.0/.well-known/openid-configuration",
                     timeout=30)
    assert us.status_code == 200 and us.json()["msgraph_host"] == "graph.microsoft.us"
    other = session.get(f"https://login.microsoftonline.com/{gcc_high.tenant_id}/v2.0/.well-known/"
                        "openid-configuration", timeout=30)
    gcc_high.assert_aad_error(other, 400, "invalid_tenant", 90002)


def test_graph_refuses_another_clouds_audience(gcc_high):
    emulator = gcc_high.emulator
    good = gcc_high.claims(gcc_high.app_token("https://graph.microsoft.us/.default"))
    wrong = own_key_token(emulator, {**good, "aud": "https://graph.microsoft.com"})
    response = gcc_high.graph("GET", "/v1.0/organization", wrong)
    error = gcc_high.assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Access token validation failure. Invalid audience."
    assert "https://login.microsoftonline.us/common/oauth2/authorize" in response.headers["WWW-Authenticate"]


def test_delegated_scopes_name_the_clouds_graph(gcc_high):
    """A bare scope means the cloud's Microsoft Graph; another cloud's Graph scope is refused at the device code
    endpoint already."""
    app = msal.PublicClientApplication(AZURE_CLI, authority=f"{gcc_high.base_url}/organizations",
                                       instance_discovery=False, http_client=gcc_high.session())
    flow = app.initiate_device_flow(scopes=["User.Read"])
    result = app.acquire_token_by_device_flow(flow)
    assert gcc_high.claims(result["access_token"])["aud"] == "https://graph.microsoft.us", result
    refused = requests.post(f"{gcc_high.base_url}/organizations/oauth2/v2.0/devicecode", verify=gcc_high.ca_path,
                            timeout=30, data={"client_id": AZURE_CLI, "scope": "https://graph.microsoft.com/User.Read"})
    gcc_high.assert_aad_error(refused, 400, "invalid_resource", 500011)


def test_serve_prints_the_playbook_variables_without_secrets(gcc_high):
    emulator = gcc_high.emulator
    endpoints = emulator.endpoints
    banner = (emulator.state_dir / "emulator.log").read_text()
    for role in ("manual_configuration", "auto_configuration"):
        assert f"{role}_tenant_environment: azure_gcc_high" in banner
        assert f"{role}_tenant_id: {endpoints['tenant_id']}" in banner
        assert f"{role}_authority_host: {endpoints['authority_host']}" in banner
        assert f"{role}_graph_endpoint: {endpoints['graph_endpoint']}" in banner
        assert f"{role}_ca_path: {endpoints['ca_path']}" in banner
    assert str(emulator.state_dir / "endpoints.json") in banner
    for secret in (endpoints["admin"]["client_secret"], endpoints["admin"]["password"], endpoints["emulator_key"]):
        assert secret not in banner

