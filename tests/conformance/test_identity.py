"""Conformance of the emulated Microsoft identity platform, checked with plain requests and Microsoft's msal.

What "right" means comes from Microsoft Learn (v2-oauth2-client-creds-grant-flow, certificate-credentials,
v2-oauth2-device-code, reference-error-codes) and REFERENCE.md.
"""
import base64
import time
import uuid

import jwt
import msal
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

GRAPH_CLI = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def confidential_app(entra, credential, *, authority=None, http_client=None, **kwargs):
    return msal.ConfidentialClientApplication(
        entra.admin_app["client_id"],
        client_credential=credential,
        authority=authority or f"{entra.base_url}/{entra.tenant_id}",
        http_client=http_client or entra.session(),
        instance_discovery=kwargs.pop("instance_discovery", False),
        **kwargs,
    )


def signed_assertion(entra, certificate, **overrides):
    """A client assertion built by hand (certificate-credentials), RS256 + x5t unless overridden."""
    now = int(time.time())
    claims = {"aud": entra.token_endpoint(), "iss": entra.admin_app["client_id"], "sub": entra.admin_app["client_id"],
              "jti": str(uuid.uuid4()), "iat": now, "exp": now + 600}
    claims.update(overrides.pop("claims", {}))
    headers = {"x5t": base64.urlsafe_b64encode(bytes.fromhex(certificate.sha1_hex)).decode()}
    key = overrides.pop("key", certificate.key)
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def assertion_grant(entra, assertion, **extra):
    return entra.post_token({
        "grant_type": "client_credentials",
        "client_id": entra.admin_app["client_id"],
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": "https://graph.microsoft.com/.default",
        **extra,
    })


# -- discovery ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["tenant_id", "domain"])
def test_openid_configuration_by_tenant_id_or_domain(entra, emulator, which):
    tenant = emulator.tenant_id if which == "tenant_id" else emulator.endpoints["tenant_domain"]
    response = entra.get(f"/{tenant}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    config = response.json()
    base = f"{entra.base_url}/{emulator.tenant_id}"
    assert config["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert config["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert config["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
    assert config["issuer"] == f"{base}/v2.0"
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]


@pytest.mark.parametrize("tenant", ["common", "organizations"])
def test_openid_configuration_for_multi_tenant_authorities(entra, tenant):
    config = entra.get(f"/{tenant}/v2.0/.well-known/openid-configuration").json()
    assert config["issuer"] == f"{entra.base_url}/{{tenantid}}/v2.0"
    assert config["token_endpoint"] == f"{entra.base_url}/{tenant}/oauth2/v2.0/token"


def test_unknown_tenant_is_aadsts90002(entra):
    response = entra.get("/contoso-not-here.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    body = entra.assert_aad_error(response, 400, "invalid_tenant", 90002)
    assert "Tenant 'contoso-not-here.onmicrosoft.com' not found" in body["error_description"]


def test_jwks_verifies_issued_tokens(entra):
    config = entra.get(f"/{entra.tenant_id}/v2.0/.well-known/openid-configuration").json()
    keys = requests.get(config["jwks_uri"], verify=entra.ca_path, timeout=30).json()["keys"]
    token = entra.app_token()
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(key for key in keys if key["kid"] == kid)
    claims = jwt.decode(token, RSAAlgorithm.from_jwk(jwk), algorithms=["RS256"], audience="https://graph.microsoft.com")
    assert claims["tid"] == entra.tenant_id


def test_instance_discovery_shape(entra):
    response = entra.get("/common/discovery/instance", params={
        "api-version": "1.1", "authorization_endpoint": "https://login.microsoftonline.us/common/oauth2/authorize"})
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_discovery_endpoint"] == "https://login.microsoftonline.us/common/v2.0/.well-known/openid-configuration"
    aliases = {alias for entry in body["metadata"] for alias in entry["aliases"]}
    assert {"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn",
            "login.partner.microsoftonline.cn", "login.windows.net"} <= aliases
    assert all({"preferred_network", "preferred_cache", "aliases"} <= set(entry) for entry in body["metadata"])


def test_instance_discovery_rejects_unknown_instance(entra):
    response = entra.get("/common/discovery/instance", params={
        "api-version": "1.1", "authorization_endpoint": "https://login.example.org/common/oauth2/authorize"})
    entra.assert_aad_error(response, 400, "invalid_instance", 50049)


def test_msal_with_instance_discovery_on(entra):
    """msal validates an unknown authority at login.microsoftonline.com; routed to the emulator, it passes."""
    session = entra.session(redirect_login_hosts={"login.microsoftonline.com"})
    app = confidential_app(entra, entra.admin_app["client_secret"], http_client=session, instance_discovery=None)
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    assert any("/common/discovery/instance" in url for url in session.urls)


def test_msal_against_the_real_login_host_name(entra):
    """A client that resolves login.microsoftonline.com to the emulator (the certificate names it) just works."""
    session = entra.session(redirect_login_hosts={"login.microsoftonline.com"})
    app = confidential_app(entra, entra.admin_app["client_secret"], http_client=session,
                           authority=f"https://login.microsoftonline.com/{entra.tenant_id}", instance_discovery=None)
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    assert f"https://login.microsoftonline.com/{entra.tenant_id}/oauth2/v2.0/token" in session.urls


# -- client credentials with a secret --------------------------------------------------------------------------------


def test_secret_grant_response_and_claims(entra, emulator):
    response = entra.client_credentials()
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == ("Bearer", 3599, 3599)
    claims = entra.claims(body["access_token"])
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "RS256"
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["appid"] == claims["azp"] == emulator.admin_app["client_id"]
    assert claims["tid"] == emulator.tenant_id
    assert claims["idtyp"] == "app" and claims["ver"] == "1.0" and claims["appidacr"] == "1"
    assert claims["oid"] == claims["sub"]
    assert claims["exp"] - claims["iat"] == 3599
    # The bootstrap admin app is consented to every Graph app role the emulator knows.
    assert {"User.ReadWrite.All", "Group.ReadWrite.All", "Application.ReadWrite.All",
            "AppRoleAssignment.ReadWrite.All", "RoleManagement.ReadWrite.Directory"} <= set(claims["roles"])


def test_msal_secret_credential(entra):
    result = confidential_app(entra, entra.admin_app["client_secret"]).acquire_token_for_client(
        ["https://graph.microsoft.com/.default"])
    assert result.get("token_type") == "Bearer", result


@pytest.mark.parametrize("resource", ["https://graph.microsoft.com", "https://outlook.office365.com",
                                      "00000003-0000-0000-c000-000000000000"])
def test_token_audience_is_the_requested_resource(entra, resource):
    """The default emulator is a global-cloud tenant: its Graph and Exchange resources (other clouds: test_national_clouds)."""
    response = entra.client_credentials(f"{resource}/.default")
    assert response.status_code == 200, response.text
    assert entra.claims(response.json()["access_token"])["aud"] == resource


def test_emulator_base_url_is_a_resource(entra):
    response = entra.client_credentials(f"{entra.base_url}/.default")
    assert response.status_code == 200, response.text
    assert entra.claims(response.json()["access_token"])["aud"] == entra.base_url


def test_exchange_token_carries_exchange_roles(entra):
    claims = entra.claims(entra.app_token("https://outlook.office365.com/.default"))
    assert "Exchange.ManageAsApp" in claims["roles"]
    assert "User.ReadWrite.All" not in claims["roles"]


def test_unknown_resource_is_aadsts500011(entra):
    response = entra.client_credentials("https://management.example.org/.default")
    entra.assert_aad_error(response, 400, "invalid_resource", 500011)


def test_client_credentials_scope_must_be_dot_default(entra):
    response = entra.client_credentials("https://graph.microsoft.com/User.Read.All")
    entra.assert_aad_error(response, 400, "invalid_scope", 1002012)


def test_unknown_application_is_aadsts700016(entra):
    client_id = str(uuid.uuid4())
    body = entra.assert_aad_error(entra.client_credentials(client_id=client_id), 400, "unauthorized_client", 700016)
    assert f"Application with identifier '{client_id}' was not found in the directory" in body["error_description"]


def test_bad_secret_is_aadsts7000215(entra):
    entra.assert_aad_error(entra.client_credentials(client_secret="not-the-secret"), 401, "invalid_client", 7000215)


def test_no_credential_is_aadsts7000218(entra):
    response = entra.post_token({"grant_type": "client_credentials", "client_id": entra.admin_app["client_id"],
                                 "scope": "https://graph.microsoft.com/.default"})
    entra.assert_aad_error(response, 401, "invalid_client", 7000218)


def test_client_credentials_need_a_tenant(entra):
    entra.assert_aad_error(entra.client_credentials(tenant="common"), 400, "invalid_request", 50059)


def test_missing_grant_type_is_aadsts900144(entra):
    entra.assert_aad_error(entra.post_token({"client_id": entra.admin_app["client_id"]}), 400, "invalid_request", 900144)


def test_token_endpoint_only_takes_post(entra):
    entra.assert_aad_error(entra.get(f"/{entra.tenant_id}/oauth2/v2.0/token"), 400, "invalid_request", 900561)


def test_unknown_extra_parameters_are_ignored(entra):
    response = entra.client_credentials(claims='{"access_token": {"xms_cc": {"values": ["CP1"]}}}', client_info="1",
                                        **{"x-client-sku": "MSAL.Python", "x-client-ver": "1.39.0"})
    assert response.status_code == 200, response.text


def test_roles_are_evaluated_at_issue_time(entra):
    """A token carries the app roles consented when it was issued; a new grant shows up in the next token."""
    admin = entra.app_token()
    app = entra.graph("POST", "/v1.0/applications", admin, json={"displayName": "idsync roles probe"})
    assert app.status_code == 201, app.text
    app_id = app.json()["appId"]
    sp = entra.graph("POST", "/v1.0/servicePrincipals", admin, json={"appId": app_id})
    assert sp.status_code == 201, sp.text
    secret = entra.graph("POST", f"/v1.0/applications/{app.json()['id']}/addPassword", admin,
                         json={"passwordCredential": {"displayName": "probe"}})
    assert secret.status_code == 200, secret.text
    secret_text = secret.json()["secretText"]
    first = entra.client_credentials(client_id=app_id, client_secret=secret_text)
    assert first.status_code == 200, first.text
    assert entra.claims(first.json()["access_token"]).get("roles", []) == []
    graph_sp = entra.graph("GET", "/v1.0/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')", admin)
    assert graph_sp.status_code == 200, graph_sp.text
    grant = entra.graph("POST", f"/v1.0/servicePrincipals/{graph_sp.json()['id']}/appRoleAssignedTo", admin, json={
        "principalId": sp.json()["id"], "resourceId": graph_sp.json()["id"],
        "appRoleId": "df021288-bdef-4463-88db-98f22de89214"})  # User.Read.All
    assert grant.status_code == 201, grant.text
    second = entra.client_credentials(client_id=app_id, client_secret=secret_text)
    assert entra.claims(second.json()["access_token"])["roles"] == ["User.Read.All"]


# -- client credentials with a certificate ------------------------------------------------------------------------------


def test_msal_rs256_assertion_with_thumbprint(entra, client_certificate):
    entra.register_certificate(client_certificate)
    credential = {"private_key": client_certificate.private_key_pem, "thumbprint": client_certificate.sha1_hex}
    result = confidential_app(entra, credential).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    claims = entra.claims(result["access_token"])
    assert claims["appidacr"] == "2"
    assert "User.ReadWrite.All" in claims["roles"]


def test_msal_ps256_assertion_from_pfx(entra, client_certificate, tmp_path):
    entra.register_certificate(client_certificate)
    credential = {"private_key_pfx_path": client_certificate.write_pfx(tmp_path / "client.pfx"), "passphrase": "idsync"}
    session = entra.session()
    result = confidential_app(entra, credential, http_client=session).acquire_token_for_client(
        ["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    header = jwt.get_unverified_header(session.forms[-1]["client_assertion"])
    assert header["alg"] == "PS256" and "x5t#S256" in header  # what msal signs from a .pfx


def test_msal_rs256_header_keeps_padded_x5t(entra, client_certificate):
    entra.register_certificate(client_certificate)
    session = entra.session()
    credential = {"private_key": client_certificate.private_key_pem, "thumbprint": client_certificate.sha1_hex}
    assert "access_token" in confidential_app(entra, credential, http_client=session).acquire_token_for_client(
        ["https://graph.microsoft.com/.default"])
    header = jwt.get_unverified_header(session.forms[-1]["client_assertion"])
    assert header["alg"] == "RS256" and header["x5t"].endswith("=")  # MSAL keeps base64 padding; we must accept it


def test_assertion_audience_may_name_the_cloud_login_host(entra, client_certificate):
    entra.register_certificate(client_certificate)
    audience = f"https://login.microsoftonline.com/{entra.emulator.endpoints['tenant_domain']}/oauth2/v2.0/token"
    response = assertion_grant(entra, signed_assertion(entra, client_certificate, claims={"aud": audience}))
    assert response.status_code == 200, response.text


def test_unregistered_certificate_is_aadsts700027(entra, client_certificate, certificate_factory):
    entra.register_certificate(client_certificate)
    stranger = certificate_factory("not registered")
    credential = {"private_key": stranger.private_key_pem, "thumbprint": stranger.sha1_hex}
    result = confidential_app(entra, credential).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert result.get("error") == "invalid_client" and result.get("error_codes") == [700027], result
    response = assertion_grant(entra, signed_assertion(entra, stranger))
    entra.assert_aad_error(response, 401, "invalid_client", 700027)


def test_forged_signature_is_aadsts700027(entra, client_certificate, certificate_factory):
    entra.register_certificate(client_certificate)
    forged = signed_assertion(entra, client_certificate, key=certificate_factory("forger").key)
    entra.assert_aad_error(assertion_grant(entra, forged), 401, "invalid_client", 700027)


def test_expired_assertion_is_aadsts700024(entra, client_certificate):
    entra.register_certificate(client_certificate)
    past = int(time.time()) - 3600
    assertion = signed_assertion(entra, client_certificate, claims={"iat": past - 600, "exp": past})
    body = entra.assert_aad_error(assertion_grant(entra, assertion), 401, "invalid_client", 700024)
    assert "Client assertion is not within its valid time range" in body["error_description"]


def test_malformed_assertion_is_aadsts50027(entra, client_certificate):
    entra.register_certificate(client_certificate)
    entra.assert_aad_error(assertion_grant(entra, "not-a-jwt"), 400, "invalid_request", 50027)


def test_assertion_audience_must_be_the_token_endpoint(entra, client_certificate):
    entra.register_certificate(client_certificate)
    assertion = signed_assertion(entra, client_certificate, claims={"aud": "https://example.org/token"})
    entra.assert_aad_error(assertion_grant(entra, assertion), 401, "invalid_client", 700023)


def test_assertion_issuer_must_be_the_client(entra, client_certificate):
    entra.register_certificate(client_certificate)
    other = str(uuid.uuid4())
    assertion = signed_assertion(entra, client_certificate, claims={"iss": other, "sub": other})
    entra.assert_aad_error(assertion_grant(entra, assertion), 401, "invalid_client", 700021)
    assertion = signed_assertion(entra, client_certificate, claims={"sub": other})
    entra.assert_aad_error(assertion_grant(entra, assertion), 401, "invalid_client", 50048)


def test_assertion_type_is_required(entra, client_certificate):
    entra.register_certificate(client_certificate)
    response = assertion_grant(entra, signed_assertion(entra, client_certificate), client_assertion_type="")
    entra.assert_aad_error(response, 400, "invalid_request", 900144)


# -- device code ----------------------------------------------------------------------------------------------------------


def public_app(entra, client_id=GRAPH_CLI):
    return msal.PublicClientApplication(client_id, authority=f"{entra.base_url}/{entra.tenant_id}",
                                        http_client=entra.session(), instance_discovery=False)


def poll(entra, flow, client_id=GRAPH_CLI):
    return entra.post_token({"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": client_id,
                             "device_code": flow["device_code"]})


def test_device_code_pending_then_approved(entra, emulator):
    app = public_app(entra)
    flow = app.initiate_device_flow(scopes=["https://graph.microsoft.com/User.Read.All",
                                            "https://graph.microsoft.com/Application.ReadWrite.All"])
    assert flow["verification_uri"] == "https://microsoft.com/devicelogin"
    assert flow["expires_in"] == 900 and flow["interval"] >= 1
    assert flow["message"] == (
        "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code "
        f"{flow['user_code']} to authenticate.")
    entra.assert_aad_error(poll(entra, flow), 400, "authorization_pending", 70016)
    emulator.admin("POST", "devicecode/approve", {"user_code": flow["user_code"],
                                                  "username": emulator.admin_app["username"],
                                                  "password": emulator.admin_app["password"]})
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    claims = entra.claims(result["access_token"])
    assert claims["idtyp"] == "user" and claims["aud"] == "https://graph.microsoft.com"
    assert {"User.Read.All", "Application.ReadWrite.All"} <= set(claims["scp"].split())
    assert claims["upn"] == emulator.admin_app["username"]
    assert GLOBAL_ADMINISTRATOR in claims["wids"]
    assert claims["appid"] == GRAPH_CLI
    assert result["id_token_claims"]["preferred_username"] == emulator.admin_app["username"]
    assert "refresh_token" in result


def test_device_code_approval_checks_the_password(entra, emulator):
    flow = public_app(entra).initiate_device_flow(scopes=["User.Read"])
    response = requests.post(f"{entra.base_url}/_emulator/devicecode/approve", verify=entra.ca_path, timeout=30,
                             headers={"X-Emulator-Key": emulator.endpoints["emulator_key"]},
                             json={"user_code": flow["user_code"], "username": emulator.admin_app["username"],
                                   "password": "wrong"})
    assert response.status_code == 400
    entra.assert_aad_error(poll(entra, flow), 400, "authorization_pending", 70016)


def test_device_code_expires(entra, emulator):
    emulator.admin("PUT", "settings", {"device_code_ttl_s": 1})
    flow = public_app(entra, AZURE_CLI).initiate_device_flow(scopes=["User.Read"])
    time.sleep(1.2)
    entra.assert_aad_error(poll(entra, flow, AZURE_CLI), 400, "expired_token", 70019)


def test_device_code_with_an_app_registration_needs_public_client_flows(entra, emulator):
    """An app registered in the tenant may run the device code flow only with "Allow public client flows"
    (isFallbackPublicClient); otherwise Entra wants a client credential (AADSTS7000218)."""
    admin = entra.app_token()
    created = entra.graph("POST", "/v1.0/applications", admin, json={"displayName": "idsync device code probe"})
    assert created.status_code == 201, created.text
    app_id = created.json()["appId"]
    approval = {"username": emulator.admin_app["username"], "password": emulator.admin_app["password"]}
    flow = public_app(entra, app_id).initiate_device_flow(scopes=["User.Read"])
    emulator.admin("POST", "devicecode/approve", {"user_code": flow["user_code"], **approval})
    entra.assert_aad_error(poll(entra, flow, app_id), 401, "invalid_client", 7000218)
    patched = entra.graph("PATCH", f"/v1.0/applications/{created.json()['id']}", admin,
                          json={"isFallbackPublicClient": True})
    assert patched.status_code == 204, patched.text
    app = public_app(entra, app_id)
    flow = app.initiate_device_flow(scopes=["User.Read"])
    emulator.admin("POST", "devicecode/approve", {"user_code": flow["user_code"], **approval})
    result = app.acquire_token_by_device_flow(flow)
    assert entra.claims(result["access_token"])["appid"] == app_id, result


def test_device_code_for_unknown_client_is_aadsts700016(entra):
    response = requests.post(f"{entra.base_url}/{entra.tenant_id}/oauth2/v2.0/devicecode", verify=entra.ca_path,
                             data={"client_id": str(uuid.uuid4()), "scope": "User.Read"}, timeout=30)
    entra.assert_aad_error(response, 400, "unauthorized_client", 700016)


def test_device_code_auto_approve(extra_emulator):
    other = extra_emulator("--auto-approve")
    app = msal.PublicClientApplication(AZURE_CLI, authority=f"{other.base_url}/organizations",
                                       instance_discovery=False, http_client=other.session())
    flow = app.initiate_device_flow(scopes=["https://graph.microsoft.com/User.Read"])
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    claims = other.claims(result["access_token"])
    assert claims["upn"] == other.admin_app["username"] and claims["tid"] == other.tenant_id


# -- Graph bearer tokens -------------------------------------------------------------------------------------------------


def emulator_signed(emulator, claims: dict) -> str:
    """A token signed with the emulator's own key (read from its state dir): only lifetime or audience is wrong."""
    key = serialization.load_pem_private_key((emulator.state_dir / "signing-key.pem").read_bytes(), password=None)
    kid = requests.get(f"{emulator.base_url}/common/discovery/v2.0/keys", verify=emulator.ca_path,
                       timeout=30).json()["keys"][0]["kid"]
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "x5t": kid})


@pytest.mark.parametrize("case", ["missing", "garbage", "expired", "forged", "wrong_audience"])
def test_graph_rejects_bad_tokens(entra, emulator, certificate_factory, case):
    good = entra.claims(entra.app_token())
    tokens = {
        "missing": None,
        "garbage": "not.a.token",
        "expired": lambda: emulator_signed(emulator, {**good, "iat": good["iat"] - 7200, "nbf": good["nbf"] - 7200,
                                                      "exp": good["exp"] - 7200}),
        "forged": lambda: jwt.encode(good, certificate_factory("forger").key, algorithm="RS256",
                                     headers={"kid": jwt.get_unverified_header(entra.app_token())["kid"]}),
        "wrong_audience": lambda: entra.app_token("https://outlook.office365.com/.default"),
    }
    token = tokens[case]() if callable(tokens[case]) else tokens[case]
    response = entra.graph("GET", "/v1.0/organization", token, headers={"client-request-id": "c0ffee00-1111-2222-3333-444455556666"})
    error = entra.assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert response.headers["client-request-id"] == "c0ffee00-1111-2222-3333-444455556666"
    assert error["innerError"]["client-request-id"] == "c0ffee00-1111-2222-3333-444455556666"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_graph_accepts_a_good_token(entra):
    response = entra.graph("GET", "/v1.0/organization", entra.app_token())
    assert response.status_code == 200, response.text


def test_restart_keeps_tenant_and_credentials(extra_emulator, tmp_path):
    first = extra_emulator(state_dir=tmp_path / "state")
    ca_before = (tmp_path / "state" / "ca.pem").read_bytes()
    first.emulator.process.terminate()
    assert first.emulator.process.wait(timeout=10) == 0  # SIGTERM is a clean shutdown
    second = extra_emulator(state_dir=tmp_path / "state")
    assert (second.tenant_id, second.admin_app) == (first.tenant_id, first.admin_app)
    assert second.emulator.endpoints["emulator_key"] == first.emulator.endpoints["emulator_key"]
    assert (tmp_path / "state" / "ca.pem").read_bytes() == ca_before
    assert second.client_credentials().status_code == 200
