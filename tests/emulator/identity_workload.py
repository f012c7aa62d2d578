"""Sign-in without secrets, for the tenant emulator: managed identity (the instance metadata token endpoint) and
workload identity federation (an external token presented as client_assertion).

Managed identity (Learn: "How to use managed identities for Azure resources on an Azure VM to acquire an access
token"): ``GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`` with ``Metadata: true``
answers ``{access_token, expires_in (a string), expires_on, not_before, resource, token_type}``; without the header
400 ``invalid_request`` "Required metadata header not specified"; an identity the machine does not have, 400
``invalid_request`` "Identity not found". The machine's system-assigned identity is set through the admin API
(``PUT /_emulator/managed-identity {"client_id": ...}``); ``client_id`` / ``object_id`` / ``msi_res_id`` ask for a
user-assigned one, which must be assigned too (``{"user_assigned": [client ids]}``). msal reaches it at
``$AZURE_POD_IDENTITY_AUTHORITY_HOST`` (default http://169.254.169.254).

Workload identity federation (Learn: "Workload identity federation", "Create federatedIdentityCredential"; error
wording from the service as users report it, e.g. Azure DevOps' "errors-workload-identity"): the assertion's issuer
and subject must equal those of a federated credential on the application (else AADSTS70021 "No matching federated
identity record found for presented assertion. Assertion Issuer: '...'. Assertion Subject: '...'. Assertion
Audience: '...'."), its audience one of that credential's audiences, its signature must verify with a key the
issuer publishes (``{issuer}/.well-known/openid-configuration`` -> ``jwks_uri``; unreachable: AADSTS50166
"Request to External OIDC endpoint failed."), and it must be within its lifetime (AADSTS700024).
"""
import json
import time
from datetime import datetime, timezone

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Response

from identity_keys import b64url_decode, split_jwt, verify_rsa_signature

IMDS_DOC = "https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token"
OIDC_FETCH_TIMEOUT_S = 10
KEYS_CACHE_S = 300
FEDERATION_ERROR_DOC = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"


class ManagedIdentities:
    """Which identities "this machine" has: a system-assigned one and user-assigned ones (client ids)."""

    def __init__(self):
        self.system_assigned = None
        self.user_assigned = set()

    def configure(self, body):
        self.system_assigned = body.get("client_id") or None
        self.user_assigned = set(body.get("user_assigned") or [])

    def reset(self):
        self.__init__()


def _imds_error(status, error, description):
    return Response(json.dumps({"error": error, "error_description": description}), status=status,
                    mimetype="application/json")


def managed_identity_token(platform, request):
    """GET /metadata/identity/oauth2/token: an app-only token for the machine's managed identity."""
    if request.headers.get("Metadata", "").lower() != "true":
        return _imds_error(400, "invalid_request", "Required metadata header not specified")
    resource = request.args.get("resource")
    if not resource:
        return _imds_error(400, "invalid_request", "Required audience parameter not specified")
    identities = platform.managed_identities
    wanted = request.args.get("client_id")
    if request.args.get("object_id") or request.args.get("msi_res_id") or request.args.get("mi_res_id"):
        return _imds_error(400, "invalid_request", "Identity not found")  # only client ids are modelled
    client_id = wanted if wanted in identities.user_assigned else (identities.system_assigned if not wanted else None)
    if not client_id:
        return _imds_error(400, "invalid_request", "Identity not found")
    try:
        resource = platform._known_resource(resource)
    except Exception as error:  # AadError: the resource is not known in this cloud
        return _imds_error(400, "invalid_resource", str(error))
    directory = platform._directory()
    with directory.lock:
        application = directory.application_by_app_id(client_id) or {"displayName": None}
        service_principal_id = directory.service_principal_id(client_id)
        roles = directory.app_roles_granted(client_id, platform._resource_app_id(resource))
    if service_principal_id is None:
        return _imds_error(400, "invalid_request", "Identity not found")
    claims = platform._app_claims(resource, client_id, "2", service_principal_id, roles, application)
    claims["idp"] = claims["iss"]
    now = int(time.time())
    return Response(json.dumps({
        "access_token": platform.signing_key.sign(claims), "refresh_token": "",
        "expires_in": str(claims["exp"] - now), "expires_on": str(claims["exp"]), "not_before": str(now),
        "resource": resource, "token_type": "Bearer",
    }), mimetype="application/json")


# ---------------------------------------------------------------------- workload identity federation
def is_external_assertion(assertion, client_id, application):
    """A federated assertion: its issuer is not the client id, and it is either an issuer the application federates
    with, or a token that names no certificate (x5t / x5t#S256) the way the application's own assertions do (one
    that does is a certificate assertion with a wrong issuer: AADSTS700021 on that path)."""
    try:
        header, claims, _input, _signature = split_jwt(assertion)
    except ValueError:
        return False
    issuer = claims.get("iss")
    if issuer in (None, client_id):
        return False
    if any(c.get("issuer") == issuer for c in application.get("_federatedIdentityCredentials") or []):
        return True
    return not (header.get("x5t") or header.get("x5t#S256"))


class IssuerKeys:
    """The signing keys external issuers publish, fetched over HTTPS (verified with ``ca_bundle``), cached."""

    def __init__(self, ca_bundle=None):
        self.ca_bundle = ca_bundle
        self._cache = {}

    def keys(self, issuer):
        cached = self._cache.get(issuer)
        if cached and cached[0] > time.time():
            return cached[1]
        verify = self.ca_bundle or True
        configuration = requests.get(issuer.rstrip("/") + "/.well-known/openid-configuration", verify=verify,
                                     timeout=OIDC_FETCH_TIMEOUT_S)
        configuration.raise_for_status()
        jwks = requests.get(configuration.json()["jwks_uri"], verify=verify, timeout=OIDC_FETCH_TIMEOUT_S)
        jwks.raise_for_status()
        keys = dict((k.get("kid"), k) for k in jwks.json().get("keys") or [] if k.get("kty") == "RSA")
        self._cache[issuer] = (time.time() + KEYS_CACHE_S, keys)
        return keys


def _public_key(jwk):
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def verify_federated_assertion(platform, assertion, client_id, application, errors):
    """Raise the AadError Entra gives unless ``assertion`` is a valid token for a federated credential of the app.
    ``errors`` supplies the error constructors (invalid_client, AadError) of identity.py."""
    try:
        header, claims, signing_input, signature = split_jwt(assertion)
    except ValueError:
        raise errors.malformed() from None
    issuer, subject, audience = claims.get("iss"), claims.get("sub"), claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    candidates = [c for c in application.get("_federatedIdentityCredentials") or []
                  if c.get("issuer") == issuer and c.get("subject") == subject]
    if not candidates or not any(a in (c.get("audiences") or []) for c in candidates for a in audiences):
        raise errors.invalid_client(70021, (
            f"No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. "
            f"Assertion Subject: '{subject}'. Assertion Audience: '{','.join(str(a) for a in audiences)}'. "
            f"{FEDERATION_ERROR_DOC}"))
    try:
        keys = platform.issuer_keys.keys(issuer)
    except (requests.RequestException, ValueError, KeyError):
        raise errors.AadError(401, "invalid_client", 50166, "Request to External OIDC endpoint failed.") from None
    jwk = keys.get(header.get("kid")) if header.get("kid") else (next(iter(keys.values())) if len(keys) == 1 else None)
    if jwk is None or header.get("alg") != "RS256" or \
            not verify_rsa_signature(_public_key(jwk), "RS256", signing_input, signature):
        raise errors.invalid_client(700027, (
            "Client assertion failed signature validation. [Reason - The key used to sign the assertion was not "
            f"found among the keys the issuer '{issuer}' publishes, or the signature does not match.]"))
    now = time.time()
    try:
        expires = float(claims["exp"])
        not_before = float(claims.get("nbf", 0))
    except (KeyError, TypeError, ValueError):
        raise errors.malformed() from None
    if expires + errors.clock_skew < now or not_before - errors.clock_skew > now:
        raise errors.invalid_client(700024, (
            f"Client assertion is not within its valid time range. Current time: {_iso(now)}, assertion valid from "
            f"{_iso(not_before)}, expiry time of assertion {_iso(expires)}."))


def _iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")

