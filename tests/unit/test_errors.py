"""errors.py: one clear sentence per token error (real AADSTS body shapes), Graph error parsing, scrubbing."""
import pytest

from idsync_testlib import aadsts_body, make_jwt
from ansible_collections.idsync.entra.plugins.module_utils.errors import (
    AuthError, ConfigError, GraphError, IdsyncError, register_secret, scrub,
)

CTX = {"tenant_id": "contoso.onmicrosoft.com", "client_id": "11111111-1111-1111-1111-111111111111",
       "environment": "azure_global", "authority_host": "login.microsoftonline.com",
       "thumbprint": "3A5F0C1D2E4B6A7980ABCDEF0123456789ABCDEF"}

CASES = [
    (90002, "invalid_tenant", "Tenant 'contoso.onmicrosoft.com' not found. Check to make sure you have the correct "
     "tenant ID and are signing into the correct cloud.",
     "Tenant 'contoso.onmicrosoft.com' was not found in azure_global (login.microsoftonline.com): check tenant_id"),
    (700016, "unauthorized_client", "Application with identifier '11111111-1111-1111-1111-111111111111' was not "
     "found in the directory 'contoso.onmicrosoft.com'.",
     "Application '11111111-1111-1111-1111-111111111111' was not found in tenant 'contoso.onmicrosoft.com': check "
     "client_id"),
    (7000215, "invalid_client", "Invalid client secret provided. Ensure the secret being sent in the request is the "
     "client secret value, not the client secret ID.",
     "The client secret for application 11111111-1111-1111-1111-111111111111 in tenant contoso.onmicrosoft.com is "
     "not valid: pass the secret's Value (not its Secret ID)"),
    (7000222, "invalid_client", "The provided client secret keys for app '1111' are expired.",
     "has expired: create a new client secret under Certificates & secrets and update client_secret."),
    (700027, "invalid_client", "The certificate with identifier used to sign the client assertion is not registered "
     "on application.",
     "The certificate with thumbprint 3A5F0C1D2E4B6A7980ABCDEF0123456789ABCDEF is not registered on application "
     "11111111-1111-1111-1111-111111111111 in tenant contoso.onmicrosoft.com: upload it under Certificates & "
     "secrets, or pass the thumbprint of a certificate that is."),
    (50126, "invalid_grant", "Error validating credentials due to invalid username or password.",
     "The user name or password is incorrect for tenant contoso.onmicrosoft.com"),
    (70016, "authorization_pending", "OAuth 2.0 device flow error. Authorization is pending.",
     "The device code sign-in was not completed"),
    (500011, "invalid_resource", "The resource principal named https://graph.microsoft.us was not found in the tenant "
     "named Contoso. This can happen if the application has not been installed by the administrator of the tenant or "
     "consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
     "Tenant contoso.onmicrosoft.com has no resource named https://graph.microsoft.us, so tenant_environment "
     "(azure_global) is probably wrong for this tenant: set it to the cloud the tenant lives in"),
]


@pytest.mark.parametrize("code, error, text, expected", CASES, ids=[str(c[0]) for c in CASES])
def test_aadsts_mapping(code, error, text, expected):
    exc = AuthError.from_response(aadsts_body(code, error, text), CTX, status=400)
    assert expected in exc.msg
    # one sentence: no line breaks, no trace noise in the message
    assert "\n" not in exc.msg and "Trace ID" not in exc.msg
    assert exc.details["aadsts"] == "AADSTS{0}".format(code)
    assert exc.details["trace_id"] == "0f4b6e1a-1111-4c2b-9d3e-5f6a7b8c9d0e"
    assert exc.details["correlation_id"] == "a1b2c3d4-2222-4e5f-8a9b-0c1d2e3f4a5b"
    assert exc.details["error"] == error
    result = exc.to_result()
    assert result["code"] == "AADSTS{0}".format(code)
    assert result["message"] and "Trace ID" not in result["message"]


def test_unknown_code_falls_back_to_service_text():
    body = aadsts_body(123456, "invalid_request", "Something new happened.")
    exc = AuthError.from_response(body, CTX)
    assert exc.msg == ("Sign-in of application 11111111-1111-1111-1111-111111111111 to tenant "
                       "contoso.onmicrosoft.com failed (AADSTS123456: Something new happened).")


def test_codes_parsed_from_description_when_error_codes_missing():
    body = aadsts_body(700016, "unauthorized_client", "Application not found.")
    del body["error_codes"], body["trace_id"], body["correlation_id"]
    exc = AuthError.from_response(body, CTX)
    assert exc.details["aadsts"] == "AADSTS700016"
    assert exc.details["trace_id"] == "0f4b6e1a-1111-4c2b-9d3e-5f6a7b8c9d0e"


def test_graph_error_from_body():
    body = {"error": {"code": "Request_ResourceNotFound",
                      "message": "Resource 'abc' does not exist or one of its queried reference-property objects "
                                 "are not present.",
                      "innerError": {"date": "2025-11-27T00:00:00", "request-id": "rid-1", "client-request-id": "c1"},
                      "details": [{"target": "id", "code": "X"}]}}
    exc = GraphError.from_body(404, body, {"request-id": "rid-1"}, method="GET", path="/users/abc")
    assert exc.status == 404 and exc.code == "Request_ResourceNotFound" and exc.request_id == "rid-1"
    assert exc.date == "2025-11-27T00:00:00" and exc.error_details == [{"target": "id", "code": "X"}]
    assert exc.is_not_found and not exc.is_throttled
    assert exc.msg.startswith("Microsoft Graph returned 404 Request_ResourceNotFound for GET /users/abc: Resource")
    assert exc.msg.endswith("(request-id rid-1)")
    assert exc.details["details"] == [{"target": "id", "code": "X"}]
    assert exc.to_result()["message"].startswith("Resource 'abc'")
    assert exc.matches("queried reference-property") and exc.matches("x")
    assert isinstance(exc, IdsyncError)


def test_graph_error_non_json_body():
    exc = GraphError.from_body(502, "<html>Bad gateway</html>", {}, method="GET", path="/users")
    assert exc.code == "HTTP502" and "Bad gateway" in exc.msg


def test_scrub_removes_secrets_tokens_keys():
    token = make_jwt()
    register_secret("s3cr3t~value.with.dots")
    text = ("secret s3cr3t~value.with.dots token {0} Authorization: Bearer abcdefghijklmnop "
            "client_secret=abc123&x=1 -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----").format(token)
    clean = scrub(text)
    for leaked in ("s3cr3t~value.with.dots", token, "abcdefghijklmnop", "abc123", "MIIE"):
        assert leaked not in clean
    exc = ConfigError("bad s3cr3t~value.with.dots", details={"nested": ["s3cr3t~value.with.dots"]})
    assert "s3cr3t" not in exc.msg and "s3cr3t" not in str(exc.details)
