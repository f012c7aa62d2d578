# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Credentials: certificate / client secret / ready access token / device code -> msal -> access token.

msal is always handed the shared :func:`transport.build_session` session as ``http_client``, so the token
requests verify TLS against ``ca_path`` whatever ``REQUESTS_CA_BUNDLE`` says.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import json
import os
import sys
import threading
import time
import traceback

MSAL_IMPORT_ERROR = None
try:
    import msal
    HAS_MSAL = True
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    HAS_MSAL = False
    MSAL_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.idsync.entra.plugins.module_utils import certs
from ansible_collections.idsync.entra.plugins.module_utils.errors import (
    AuthError, ConfigError, IdsyncError, register_secret,
)
from ansible_collections.idsync.entra.plugins.module_utils.transport import (
    describe_transport_error, is_tls_error, is_transport_error,
)

# "Microsoft Graph Command Line Tools": a Microsoft first-party public client, present in every tenant.
DEVICE_CODE_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"

# Refresh a cached token this many seconds before it expires.
REFRESH_MARGIN = 300

# Environment variables each auth option falls back to, first found wins: azure-identity's names, then those of
# AWX's built-in "Microsoft Azure Resource Manager" credential (AZURE_TENANT, AZURE_SECRET), then this collection's
# own for what neither has (the certificate and key as content, injected by extensions/awx's credential type).
ENV_FALLBACKS = {
    "tenant_id": ["AZURE_TENANT_ID", "AZURE_TENANT"],
    "client_id": ["AZURE_CLIENT_ID"],
    "certificate_path": ["AZURE_CLIENT_CERTIFICATE_PATH"],
    "certificate_content": ["IDSYNC_CLIENT_CERTIFICATE"],
    "private_key_content": ["IDSYNC_CLIENT_PRIVATE_KEY"],
    "client_secret": ["AZURE_CLIENT_SECRET", "AZURE_SECRET"],
    "private_key_passphrase": ["AZURE_CLIENT_CERTIFICATE_PASSWORD"],
    "client_assertion_file": ["AZURE_FEDERATED_TOKEN_FILE"],
    "authority_host": ["AZURE_AUTHORITY_HOST"],
}
ENV_VARS = dict((option, names[0]) for option, names in ENV_FALLBACKS.items())

CREDENTIAL_OPTIONS = ("certificate_path", "certificate_content", "client_secret", "access_token", "client_assertion",
                      "client_assertion_file", "managed_identity")
SECRETLESS = ("client_assertion", "client_assertion_file", "managed_identity")


def environment_value(option, environ=None):
    """The value ``option`` takes from the environment (ENV_FALLBACKS), or None."""
    environ = os.environ if environ is None else environ
    for name in ENV_FALLBACKS.get(option, ()):
        if environ.get(name):
            return environ[name]
    return None


def _require_msal():
    if not HAS_MSAL:
        raise ConfigError("The Python library 'msal' is required on the managed node to sign in.")


def decode_jwt_claims(token):
    """The payload of a JWT, decoded but NOT verified (only for display: roles, tid, exp). {} if opaque."""
    if not token or token.count(".") != 2:
        return {}
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8"))
    except (ValueError, TypeError, UnicodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _normalize_path(value):
    if not value:
        return value
    return os.path.abspath(os.path.expanduser(os.path.expandvars(str(value))))


def select_auth_method(params, environ=None):
    """Which of certificate_path / client_secret / access_token to use.

    A value that only came from the environment (AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH) yields
    to one passed explicitly, so an exported AZURE_CLIENT_SECRET does not break a task that passes
    certificate_path. Two explicit credentials, or two from the environment and none explicit, are an error.
    """
    environ = os.environ if environ is None else environ
    given = [name for name in CREDENTIAL_OPTIONS if params.get(name)]
    explicit = []
    from_env = []
    for name in given:
        env_value = environment_value(name, environ)
        value = params.get(name)
        if name in ("certificate_path", "client_assertion_file"):
            same = env_value is not None and _normalize_path(env_value) == _normalize_path(value)
        else:
            same = env_value is not None and env_value == value
        (from_env if same else explicit).append(name)
    if len(explicit) > 1:
        raise ConfigError("{0} are mutually exclusive: pass only one credential.".format(" and ".join(explicit)),
                          option=explicit[0])
    if explicit:
        return explicit[0]
    if len(from_env) > 1:
        raise ConfigError("Both {0} are set in the environment: unset one, or pass the credential to use "
                          "explicitly.".format(" and ".join(_env_name(n, environ) for n in from_env)),
                          option=from_env[0])
    if from_env:
        return from_env[0]
    raise ConfigError("No credential was given: pass certificate_path or certificate_content (recommended), "
                      "client_assertion_file (workload identity federation), managed_identity, client_secret or "
                      "access_token, or set AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE or "
                      "AZURE_CLIENT_SECRET.", option="certificate_path")


def _env_name(option, environ):
    return next((n for n in ENV_FALLBACKS.get(option, ()) if environ.get(n)), ENV_VARS.get(option, option))


class Credential(object):
    """Base: ``get_token()`` returns a bearer token string; ``claims`` is its decoded (unverified) payload."""

    kind = None
    can_refresh = True

    def __init__(self):
        self._token = None
        self._expires_on = 0
        self._lock = threading.Lock()

    def get_token(self):
        with self._lock:
            if self._token and time.time() < self._expires_on - REFRESH_MARGIN:
                return self._token
            token, expires_in = self._acquire()
            self._token = token
            self._expires_on = time.time() + (expires_in or 3599)
            return token

    def invalidate(self):
        """Forget the cached token (after Graph said 401 InvalidAuthenticationToken)."""
        with self._lock:
            self._token = None
            self._expires_on = 0

    @property
    def claims(self):
        return decode_jwt_claims(self.get_token())

    @property
    def roles(self):
        return sorted(self.claims.get("roles") or [])

    def _acquire(self):  # pragma: no cover - abstract
        raise NotImplementedError


class AccessTokenCredential(Credential):
    """A ready bearer token (for example from ``az account get-access-token``); cannot be refreshed."""

    kind = "access_token"
    can_refresh = False

    def __init__(self, token):
        super(AccessTokenCredential, self).__init__()
        register_secret(token)
        self._static = token.strip()
        if self._static.lower().startswith("bearer "):
            self._static = self._static[7:].strip()

    def _acquire(self):
        claims = decode_jwt_claims(self._static)
        exp = claims.get("exp")
        if isinstance(exp, (int, float)):
            if exp <= time.time():
                raise AuthError("The access_token expired at {0}: pass a fresh token, or a certificate or client "
                                "secret so the module can sign in itself.".format(
                                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))),
                                {"code": "TokenExpired"})
            return self._static, max(int(exp - time.time()), 1) + REFRESH_MARGIN
        return self._static, 3600 + REFRESH_MARGIN


class _MsalCredential(Credential):
    """Shared msal plumbing: construction with discovery, retries on transient failures, error mapping."""

    max_attempts = 4
    max_total_seconds = 60

    def __init__(self, endpoints, session, client_id, context=None, sleep=time.sleep):
        super(_MsalCredential, self).__init__()
        _require_msal()
        self.endpoints = endpoints
        self.session = session
        self.client_id = client_id
        self._sleep = sleep
        self.context = dict(context or {})
        self.context.setdefault("tenant_id", endpoints.tenant_id)
        self.context.setdefault("client_id", client_id)
        self.context.setdefault("environment", endpoints.environment)
        self.context.setdefault("authority_host", endpoints.authority_host.split("://", 1)[-1])
        self._app = None

    def _build_app(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def app(self):
        if self._app is None:
            self._app = self._call(self._build_app, "discover")
        return self._app

    def _call(self, fn, what):
        """Run an msal call; retry transient failures (network, 5xx, 429) a few times, bounded in time."""
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except (IdsyncError, _Retryable):
                raise
            except Exception as exc:  # pylint: disable=broad-except
                error, retry_after = self._classify(exc, what)
            elapsed = time.monotonic() - start
            if retry_after is None or attempt >= self.max_attempts or elapsed + retry_after > self.max_total_seconds:
                raise error
            self._sleep(retry_after)

    def _classify(self, exc, what):
        """Return (IdsyncError, seconds to wait before a retry or None when not retryable)."""
        url = self.endpoints.authority
        if is_tls_error(exc):
            return describe_transport_error(exc, "POST" if what == "token" else "GET", url, self.session.ca_path), None
        if is_transport_error(exc):
            return describe_transport_error(exc, "POST" if what == "token" else "GET", url, self.session.ca_path), 2
        if HAS_MSAL and isinstance(exc, msal.exceptions.MsalServiceError):
            # msal raises this for a 5xx from the authority; it throttles a repeat for Retry-After (default 5 s).
            status = getattr(self.session, "last_status", None)
            wait = _retry_after(getattr(self.session, "last_headers", None), default=5)
            return AuthError("The identity platform at {0} answered HTTP {1}: it is unavailable, try again "
                             "later.".format(self.endpoints.authority_host, status or "5xx"),
                             {"code": "AuthorityUnavailable", "status": status}), wait
        if isinstance(exc, ValueError):
            body, status = _discovery_failure_body(exc)
            if body is not None:
                return AuthError.from_response(body, self.context, status=status), None
            if what == "discover":
                return AuthError(
                    "Could not read the OpenID configuration of {0}: check tenant_id, tenant_environment and "
                    "authority_host.".format(self.endpoints.authority),
                    {"code": "DiscoveryFailed", "reason": str(exc)[:300]}), None
            return AuthError("The token endpoint of {0} did not answer with JSON: check authority_host.".format(
                self.endpoints.authority_host), {"code": "BadTokenResponse"}), None
        return AuthError("Sign-in to {0} failed: {1}: {2}".format(
            self.endpoints.authority, type(exc).__name__, str(exc)[:300]), {"code": "AuthError"}), None

    def _result_to_token(self, result):
        if result and result.get("access_token"):
            return result["access_token"], int(result.get("expires_in") or 3599)
        result = result or {}
        status = getattr(self.session, "last_status", None)
        if status == 429:
            raise _Retryable(AuthError("The identity platform throttled the sign-in of application {0} (HTTP 429): "
                                       "try again later.".format(self.client_id), {"code": "TooManyRequests"}),
                             _retry_after(getattr(self.session, "last_headers", None), default=5))
        raise AuthError.from_response(result, self.context, status=status)

    def _acquire(self):
        start = time.monotonic()
        attempt = 0
        app = self.app
        while True:
            attempt += 1
            try:
                return self._call(lambda: self._result_to_token(self._acquire_with(app)), "token")
            except _Retryable as retryable:
                elapsed = time.monotonic() - start
                if attempt >= self.max_attempts or elapsed + retryable.wait > self.max_total_seconds:
                    raise retryable.error
                self._sleep(retryable.wait)

    def _acquire_with(self, app):  # pragma: no cover - abstract
        raise NotImplementedError

    def invalidate(self):
        super(_MsalCredential, self).invalidate()
        if self._app is not None:
            cache = self._app.token_cache
            for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(entry)


class _Retryable(Exception):
    def __init__(self, error, wait):
        super(_Retryable, self).__init__(error.msg)
        self.error = error
        self.wait = wait


class ClientCredential(_MsalCredential):
    """App-only sign-in (client credentials grant) with a certificate or a client secret."""

    def __init__(self, endpoints, session, client_id, certificate=None, client_secret=None, sleep=time.sleep):
        if not client_id:
            raise ConfigError("client_id is required: pass the Application (client) ID of the app registration, or "
                              "set AZURE_CLIENT_ID.", option="client_id")
        context = {}
        if certificate is not None:
            self.kind = "certificate"
            self.certificate = certificate
            context["thumbprint"] = certificate.thumbprint_sha1
            self._client_credential = {
                "private_key": certificate.private_key_pem,
                "thumbprint": certificate.thumbprint_sha1,
            }
        elif client_secret:
            self.kind = "client_secret"
            self.certificate = None
            register_secret(client_secret)
            self._client_credential = client_secret
        else:
            raise ConfigError("A certificate or a client secret is required.", option="certificate_path")
        super(ClientCredential, self).__init__(endpoints, session, client_id, context=context, sleep=sleep)

    def _build_app(self):
        kwargs = dict(
            client_credential=self._client_credential,
            authority=self.endpoints.authority,
            http_client=self.session,
            token_cache=msal.TokenCache(),
        )
        if self.endpoints.custom_authority:
            kwargs["instance_discovery"] = False
        return msal.ConfidentialClientApplication(self.client_id, **kwargs)

    def _acquire_with(self, app):
        return app.acquire_token_for_client(scopes=[self.endpoints.scope])


class DeviceCodeCredential(_MsalCredential):
    """Delegated sign-in of a person through the device code flow (used by the auto-configuration action).

    ``prompt(message)`` is called with the identity platform's instruction ("To sign in, use a web browser to
    open the page … and enter the code …"); by default it is written to stderr. ``get_token()`` blocks until
    the person signs in, the code expires, or ``timeout`` seconds pass.
    """

    kind = "device_code"

    def __init__(self, endpoints, session, client_id=DEVICE_CODE_CLIENT_ID, scopes=None, prompt=None,
                 timeout=None, sleep=time.sleep):
        super(DeviceCodeCredential, self).__init__(endpoints, session, client_id or DEVICE_CODE_CLIENT_ID,
                                                   sleep=sleep)
        self.scopes = list(scopes or [endpoints.scope])
        self.prompt = prompt or _stderr_prompt
        self.timeout = timeout
        self.flow = None

    def _build_app(self):
        kwargs = dict(authority=self.endpoints.authority, http_client=self.session, token_cache=msal.TokenCache())
        if self.endpoints.custom_authority:
            kwargs["instance_discovery"] = False
        return msal.PublicClientApplication(self.client_id, **kwargs)

    def _acquire_with(self, app):
        accounts = app.get_accounts()
        if accounts:
            result = app.acquire_token_silent(self.scopes, account=accounts[0])
            if result and result.get("access_token"):
                return result
        flow = app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            raise AuthError.from_response(flow, self.context, status=getattr(self.session, "last_status", None))
        if self.timeout:
            flow["expires_at"] = min(flow.get("expires_at", time.time() + self.timeout), time.time() + self.timeout)
        self.flow = dict((k, v) for k, v in flow.items() if k != "device_code")
        self.prompt(flow.get("message") or "Open {0} and enter the code {1}".format(
            flow.get("verification_uri"), flow.get("user_code")))
        return app.acquire_token_by_device_flow(flow)

    @property
    def account(self):
        claims = self.claims
        return claims.get("upn") or claims.get("preferred_username") or claims.get("unique_name")


def _stderr_prompt(message):
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _retry_after(headers, default=5):
    if not headers:
        return default
    value = None
    for key, val in headers.items():
        if key.lower() == "retry-after":
            value = val
    try:
        return max(0, min(int(float(value)), 60))
    except (TypeError, ValueError):
        return default


def _discovery_failure_body(exc):
    """msal hides the OpenID discovery error body (e.g. AADSTS90002 for an unknown tenant) in the context of the
    ValueError it raises; dig it out. Returns (body dict or None, HTTP status or None)."""
    seen = 0
    item = exc
    while item is not None and seen < 5:
        text = str(item)
        marker = "Error: "
        if "HTTP status:" in text and marker in text:
            status = None
            try:
                status = int(text.split("HTTP status:", 1)[1].split(",", 1)[0].strip())
            except ValueError:
                status = None
            raw = text.split(marker, 1)[1].strip()
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if isinstance(body, dict) and (body.get("error") or body.get("error_description")):
                return body, status
            return None, status
        if text.startswith("{") and '"error' in text:
            try:
                body = json.loads(text)
                if isinstance(body, dict):
                    return body, None
            except ValueError:
                pass
        item = item.__context__ or item.__cause__
        seen += 1
    return None, None


def build_credential(params, endpoints, session, environ=None, sleep=time.sleep):
    """The credential the auth options ask for (see :func:`select_auth_method`)."""
    method = select_auth_method(params, environ)
    if method == "access_token":
        return AccessTokenCredential(params["access_token"])
    _require_msal()
    if method in SECRETLESS:
        from ansible_collections.idsync.entra.plugins.module_utils.credentials_secretless import (
            build_secretless_credential,
        )
        return build_secretless_credential(method, params, endpoints, session)
    client_id = params.get("client_id")
    if method == "client_secret":
        if params.get("certificate_thumbprint"):
            raise ConfigError("certificate_thumbprint only applies to certificate_path, not to client_secret.",
                              option="certificate_thumbprint")
        return ClientCredential(endpoints, session, client_id, client_secret=params["client_secret"], sleep=sleep)

    passphrase = params.get("private_key_passphrase")
    register_secret(passphrase)
    if method == "certificate_content":
        path = "certificate_content"
        register_secret(params.get("private_key_content"))
        info = certs.load_certificate_content(params["certificate_content"], params.get("private_key_content"),
                                              passphrase)
        if info.private_key is None:
            raise ConfigError("certificate_content holds no private key: pass private_key_content, or PEM text "
                              "holding both the certificate and its key.", option="private_key_content")
        certs.check_validity(info, path=path)
    else:
        path = _normalize_path(params["certificate_path"])
        info = certs.load_certificate(path, params.get("private_key_path"), passphrase)
        if info.private_key is None:
            raise ConfigError("'{0}' holds no private key: pass private_key_path, or a PEM or PFX file that holds "
                              "both the certificate and its key.".format(path), option="private_key_path")
        certs.check_key_file_permissions(info.key_path)
        certs.check_validity(info, path=path)
    wanted = params.get("certificate_thumbprint")
    if wanted:
        try:
            wanted_norm = certs.normalize_thumbprint(wanted)
        except ValueError as exc:
            raise ConfigError("certificate_thumbprint: {0}.".format(exc), option="certificate_thumbprint")
        computed = info.thumbprint_sha256 if len(wanted_norm) == 64 else info.thumbprint_sha1
        if wanted_norm != computed:
            raise ConfigError(
                "certificate_thumbprint {0} does not match the certificate in '{1}', whose thumbprint is {2}: pass the "
                "certificate that thumbprint names, or drop certificate_thumbprint.".format(
                    wanted_norm, path, computed),
                option="certificate_thumbprint", details={"expected": wanted_norm, "actual": computed})
    return ClientCredential(endpoints, session, client_id, certificate=info, sleep=sleep)
