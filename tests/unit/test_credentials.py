"""credentials.py with the real msal against a local HTTPS identity platform (discovery, token, device code)."""
import base64
import binascii
import json
import threading
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes

from idsync_testlib import (
    Reply, ScriptedServer, TLSPki, aadsts_body, cert_pem, key_pem, make_cert, make_jwt, openid_configuration, write,
)
from ansible_collections.idsync.entra.plugins.module_utils import credentials
from ansible_collections.idsync.entra.plugins.module_utils.clouds import resolve_endpoints
from ansible_collections.idsync.entra.plugins.module_utils.credentials import (
    AccessTokenCredential, ClientCredential, DeviceCodeCredential, build_credential, select_auth_method,
)
from ansible_collections.idsync.entra.plugins.module_utils.errors import AuthError, ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.transport import build_session

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "11111111-1111-1111-1111-111111111111"
SECRET = "Qx8~secret.VALUE-never-shown"


class Identity:
    """Enough of the identity platform for msal: discovery, client credentials, device code."""

    def __init__(self, server, cert=None):
        self.server = server
        self.base = server.url
        self.cert = cert
        self.assertions = []
        self.device_polls = 0
        self.lock = threading.Lock()
        server.route("GET", r"/v2.0/\.well-known/openid-configuration$", self.discovery)
        server.route("POST", r"/oauth2/v2.0/token$", self.token)
        server.route("POST", r"/oauth2/v2.0/devicecode$", self.devicecode)

    def discovery(self, req):
        tenant = req.path.split("/")[1]
        if tenant != TENANT:
            body = aadsts_body(90002, "invalid_tenant", "Tenant '{0}' not found. Check to make sure you have the "
                               "correct tenant ID and are signing into the correct cloud.".format(tenant))
            return Reply(400, body)
        return Reply(200, openid_configuration(self.base, TENANT))

    def token(self, req):
        form = req.form
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
            with self.lock:
                self.device_polls += 1
                polls = self.device_polls
            if polls < 2:
                return Reply(400, aadsts_body(70016, "authorization_pending", "OAuth 2.0 device flow error."))
            return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": make_jwt(
                scp="User.Read", upn="admin@contoso.onmicrosoft.com"), "refresh_token": "rt", "id_token": _id_token(),
                "client_info": _client_info()})
        client_id = form.get("client_id")
        if client_id != APP:
            return Reply(400, aadsts_body(700016, "unauthorized_client", "Application with identifier '{0}' was not "
                                          "found in the directory '{1}'.".format(client_id, TENANT)))
        if form.get("scope") != "https://graph.microsoft.com/.default":
            return Reply(400, aadsts_body(70011, "invalid_scope", "The provided value for scope is not valid."))
        secret = form.get("client_secret")
        auth = req.headers.get("authorization", "")
        if auth.startswith("Basic "):
            secret = base64.b64decode(auth[6:]).decode().split(":", 1)[1]
        if "client_assertion" in form:
            assertion = form["client_assertion"]
            self.assertions.append(assertion)
            header = pyjwt.get_unverified_header(assertion)
            expected = base64.urlsafe_b64encode(self.cert.fingerprint(hashes.SHA1())).decode()
            if header.get("x5t") != expected:
                return Reply(401, aadsts_body(700027, "invalid_client", "The certificate with identifier used to "
                                              "sign the client assertion is not registered on application."))
            pyjwt.decode(assertion, self.cert.public_key(), algorithms=["RS256", "PS256"],
                         audience=self.base + "/" + TENANT + "/oauth2/v2.0/token")
        elif secret != SECRET:
            return Reply(401, aadsts_body(7000215, "invalid_client", "Invalid client secret provided. Ensure the "
                                          "secret being sent in the request is the client secret value."))
        return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                           "access_token": make_jwt(roles=["User.ReadWrite.All", "Organization.Read.All"])})

    def devicecode(self, req):
        return Reply(200, {"user_code": "ABCD-EFGH", "device_code": "dc-secret", "verification_uri":
                           "https://microsoft.com/devicelogin", "expires_in": 900, "interval": 1,
                           "message": "To sign in, use a web browser to open the page https://microsoft.com/"
                                      "devicelogin and enter the code ABCD-EFGH to authenticate."})


def _id_token():
    return make_jwt(aud="14d82eec-204b-4c2f-b7e8-296a70dab67e", iss="https://issuer/" + TENANT + "/v2.0",
                    oid="00000000-0000-0000-0000-00000000000a", preferred_username="admin@contoso.onmicrosoft.com")


def _client_info():
    return base64.urlsafe_b64encode(json.dumps({"uid": "00000000-0000-0000-0000-00000000000a",
                                                "utid": TENANT}).encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TLSPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def app_cert(tmp_path):
    cert, key = make_cert("idsync-app")
    path = write(tmp_path / "app.pem", cert_pem(cert) + key_pem(key))
    return cert, path


@pytest.fixture
def idp(pki, app_cert, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    srv = ScriptedServer(ssl_context=pki.server_context())
    identity = Identity(srv, cert=app_cert[0])
    yield identity
    srv.close()


def endpoints(idp, tenant=TENANT):
    return resolve_endpoints("azure_global", tenant, authority_host=idp.base, graph_endpoint=idp.base)


def test_client_secret(idp, pki):
    cred = build_credential({"client_id": APP, "client_secret": SECRET}, endpoints(idp), build_session(pki.ca_path),
                            environ={})
    assert cred.kind == "client_secret"
    token = cred.get_token()
    assert token.startswith("eyJ")
    assert cred.roles == ["Organization.Read.All", "User.ReadWrite.All"]
    assert cred.get_token() == token  # cached
    assert len(idp.server.calls("POST", "token$")) == 1
    assert len(idp.server.calls("GET", "openid-configuration$")) == 1
    cred.invalidate()
    cred.get_token()
    assert len(idp.server.calls("POST", "token$")) == 2


def test_certificate_signs_an_assertion_the_service_can_verify(idp, pki, app_cert):
    cert, path = app_cert
    thumb = binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode()
    cred = build_credential({"client_id": APP, "certificate_path": path, "certificate_thumbprint": thumb.lower()},
                            endpoints(idp), build_session(pki.ca_path), environ={})
    assert cred.kind == "certificate" and cred.certificate.thumbprint_sha1 == thumb.upper()
    assert cred.get_token().startswith("eyJ")
    claims = pyjwt.decode(idp.assertions[0], options={"verify_signature": False})
    assert claims["iss"] == claims["sub"] == APP and "jti" in claims


@pytest.mark.parametrize("case", ["tenant", "app", "secret", "certificate"])
def test_token_errors_are_one_clear_sentence_without_secrets(idp, pki, tmp_path, case):
    session = build_session(pki.ca_path)
    params = {"client_id": APP, "client_secret": SECRET}
    ep = endpoints(idp)
    expected = None
    if case == "tenant":
        ep = endpoints(idp, tenant="nosuch.onmicrosoft.com")
        expected = "Tenant 'nosuch.onmicrosoft.com' was not found in azure_global (127.0.0.1:{0})".format(
            idp.server.port)
    elif case == "app":
        params["client_id"] = "22222222-2222-2222-2222-222222222222"
        expected = "Application '22222222-2222-2222-2222-222222222222' was not found in tenant '" + TENANT
    elif case == "secret":
        params["client_secret"] = SECRET + "-wrong"
        expected = "The client secret for application {0} in tenant {1} is not valid".format(APP, TENANT)
    else:
        other, key = make_cert("not-registered")
        path = write(tmp_path / "other.pem", cert_pem(other) + key_pem(key))
        params = {"client_id": APP, "certificate_path": path}
        thumb = binascii.hexlify(other.fingerprint(hashes.SHA1())).decode().upper()
        expected = ("The certificate with thumbprint {0} is not registered on application {1} in tenant {2}: upload "
                    "it under Certificates & secrets, or pass the thumbprint of a certificate that is.".format(
                        thumb, APP, TENANT))
    cred = build_credential(params, ep, session, environ={})
    with pytest.raises(AuthError) as info:
        cred.get_token()
    err = info.value
    assert expected in err.msg
    assert err.details["trace_id"] and err.details["correlation_id"] and err.details["aadsts"].startswith("AADSTS")
    blob = err.msg + json.dumps(err.to_result())
    assert SECRET not in blob and "PRIVATE KEY" not in blob


def test_transient_token_failure_is_retried(idp, pki):
    idp.server.route("POST", r"/oauth2/v2.0/token$", Reply(503, body=b"busy", headers={"Retry-After": "1"}), idp.token)
    slept = []
    cred = build_credential({"client_id": APP, "client_secret": SECRET}, endpoints(idp), build_session(pki.ca_path),
                            environ={}, sleep=lambda s: (slept.append(s), time.sleep(s)))
    assert cred.get_token().startswith("eyJ")
    assert slept == [1]


def test_authority_unavailable_is_bounded(idp, pki):
    idp.server.route("POST", r"/oauth2/v2.0/token$", Reply(503, body=b"busy", headers={"Retry-After": "0"}))
    cred = build_credential({"client_id": APP, "client_secret": SECRET}, endpoints(idp), build_session(pki.ca_path),
                            environ={}, sleep=lambda s: None)
    with pytest.raises(AuthError, match="answered HTTP 503: it is unavailable"):
        cred.get_token()
    assert len(idp.server.calls("POST", "token$")) <= ClientCredential.max_attempts


def test_tls_failure_to_authority(idp):
    cred = build_credential({"client_id": APP, "client_secret": SECRET}, endpoints(idp), build_session(),
                            environ={})
    with pytest.raises(Exception) as info:
        cred.get_token()
    assert "could not be verified against the system CA bundle: pass ca_path" in str(info.value)


def test_thumbprint_mismatch_names_both(app_cert, idp, pki):
    cert, path = app_cert
    actual = binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode().upper()
    with pytest.raises(ConfigError) as info:
        build_credential({"client_id": APP, "certificate_path": path, "certificate_thumbprint": "AB" * 20},
                         endpoints(idp), build_session(pki.ca_path), environ={})
    assert "certificate_thumbprint {0} does not match".format("AB" * 20) in info.value.msg
    assert "whose thumbprint is {0}".format(actual) in info.value.msg
    with pytest.raises(ConfigError, match="is not a certificate thumbprint"):
        build_credential({"client_id": APP, "certificate_path": path, "certificate_thumbprint": "nope"},
                         endpoints(idp), build_session(pki.ca_path), environ={})


def test_world_readable_key_is_refused(tmp_path, idp, pki):
    cert, key = make_cert("loose")
    path = write(tmp_path / "loose.pem", cert_pem(cert) + key_pem(key), 0o644)
    with pytest.raises(ConfigError, match="readable by others .* 'chmod 600"):
        build_credential({"client_id": APP, "certificate_path": path}, endpoints(idp), build_session(pki.ca_path),
                         environ={})


def test_certificate_without_key(tmp_path, idp, pki):
    cert, _ = make_cert("nokey")
    path = write(tmp_path / "nokey.pem", cert_pem(cert), 0o644)
    with pytest.raises(ConfigError, match="holds no private key: pass private_key_path"):
        build_credential({"client_id": APP, "certificate_path": path}, endpoints(idp), build_session(pki.ca_path),
                         environ={})


def test_client_id_required(idp, pki):
    with pytest.raises(ConfigError, match="client_id is required"):
        build_credential({"client_secret": SECRET}, endpoints(idp), build_session(pki.ca_path), environ={})


def test_device_code(idp, pki):
    prompts = []
    cred = DeviceCodeCredential(endpoints(idp), build_session(pki.ca_path), prompt=prompts.append)
    token = cred.get_token()
    assert token.startswith("eyJ")
    assert prompts and "enter the code ABCD-EFGH" in prompts[0]
    assert cred.flow["user_code"] == "ABCD-EFGH" and "device_code" not in cred.flow
    assert cred.account == "admin@contoso.onmicrosoft.com"
    form = idp.server.calls("POST", "devicecode$")[0].form
    assert form["client_id"] == credentials.DEVICE_CODE_CLIENT_ID
    assert "https://graph.microsoft.com/.default" in form["scope"]


def test_access_token_credential():
    token = make_jwt(roles=["B", "A"])
    cred = AccessTokenCredential("Bearer " + token)
    assert cred.get_token() == token and cred.roles == ["A", "B"]
    expired = AccessTokenCredential(make_jwt(exp=int(time.time()) - 10))
    with pytest.raises(AuthError, match="The access_token expired at .*: pass a fresh token"):
        expired.get_token()
    assert AccessTokenCredential("opaque-token-value").claims == {}


class TestSelectAuthMethod:
    def test_single(self):
        assert select_auth_method({"client_secret": "x"}, environ={}) == "client_secret"
        assert select_auth_method({"certificate_path": "/a.pem"}, environ={}) == "certificate_path"
        assert select_auth_method({"access_token": "t"}, environ={}) == "access_token"

    def test_none(self):
        with pytest.raises(ConfigError, match="No credential was given"):
            select_auth_method({}, environ={})

    def test_two_explicit(self):
        with pytest.raises(ConfigError, match="certificate_path and client_secret are mutually exclusive"):
            select_auth_method({"client_secret": "x", "certificate_path": "/a.pem"}, environ={})

    def test_explicit_beats_environment(self):
        env = {"AZURE_CLIENT_SECRET": "from-env"}
        params = {"client_secret": "from-env", "certificate_path": "/etc/app.pem"}
        assert select_auth_method(params, environ=env) == "certificate_path"
        env = {"AZURE_CLIENT_CERTIFICATE_PATH": "~/app.pem"}
        import os
        params = {"client_secret": "s", "certificate_path": os.path.expanduser("~/app.pem")}
        assert select_auth_method(params, environ=env) == "client_secret"

    def test_two_from_environment(self):
        env = {"AZURE_CLIENT_SECRET": "s", "AZURE_CLIENT_CERTIFICATE_PATH": "/a.pem"}
        with pytest.raises(ConfigError, match="Both AZURE_CLIENT_CERTIFICATE_PATH and AZURE_CLIENT_SECRET are set"):
            select_auth_method({"client_secret": "s", "certificate_path": "/a.pem"}, environ=env)
