# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Errors raised by the idsync.entra client layer.

Every error carries ``msg``: one sentence a person can act on, and ``details``: a dict of
machine-readable facts (codes, request ids) that ``IdsyncModule.fail_from()`` returns as ``error``.
No message or detail ever contains a secret, a token, a private key or a password: everything
that ends up in one goes through ``scrub()``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re


_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_PEM_KEY_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_FORM_SECRET_RE = re.compile(r"(?i)((?:client_secret|client_assertion|password|access_token|refresh_token)=)[^&\s]+")
_SECRETS = set()


def register_secret(value):
    """Remember a secret value so that ``scrub()`` removes it from any message (defence in depth:
    AnsibleModule also masks no_log values in its output)."""
    if value and isinstance(value, str) and len(value) >= 4:
        _SECRETS.add(value)


def scrub(text):
    """Return ``text`` with tokens, private keys, form-encoded secrets and registered secrets removed."""
    if text is None:
        return None
    text = str(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "********")
    text = _PEM_KEY_RE.sub("<private key removed>", text)
    text = _JWT_RE.sub("<token removed>", text)
    text = _BEARER_RE.sub(r"\1<token removed>", text)
    text = _FORM_SECRET_RE.sub(r"\1********", text)
    return text


def _scrub_value(value):
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return dict((k, _scrub_value(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v) for v in value]
    return value


def probe_verdict(result, problems):
    """Close a "Test connection" result: ``ok`` when nothing is wrong, else every problem in one sentence."""
    if problems:
        text = "; ".join(problems)
        result["error"] = text[0].upper() + text[1:] + "."
    else:
        result["ok"] = True
    return result


class IdsyncError(Exception):
    """Base class: ``msg`` is one clear sentence, ``details`` a dict (always JSON-serialisable)."""

    def __init__(self, msg, details=None):
        self.msg = scrub(msg)
        self.details = _scrub_value(dict(details or {}))
        super(IdsyncError, self).__init__(self.msg)

    def __str__(self):
        return self.msg

    def to_result(self):
        """The ``error`` dict a module returns: ``code`` and ``message`` (the service's own text when there
        is one, else ``msg``), then the other details."""
        result = {
            "code": self.details.get("code") or type(self).__name__,
            "message": self.details.get("message") or self.msg,
        }
        for key, value in self.details.items():
            if value is not None and key not in result:
                result[key] = value
        return result


class ConfigError(IdsyncError):
    """A module option (or a file it names) is wrong; nothing was sent to the service."""

    def __init__(self, msg, details=None, option=None):
        details = dict(details or {})
        details.setdefault("code", "ConfigError")
        if option:
            details.setdefault("option", option)
        super(ConfigError, self).__init__(msg, details)


class TransportError(IdsyncError):
    """The HTTPS exchange itself failed (TLS verification, DNS, refused or dropped connection, timeout)."""

    def __init__(self, msg, details=None):
        details = dict(details or {})
        details.setdefault("code", "TransportError")
        super(TransportError, self).__init__(msg, details)


class ConsistencyTimeout(IdsyncError):
    """An object did not become consistently readable (or gone) within the replication timeout."""

    def __init__(self, msg, details=None):
        details = dict(details or {})
        details.setdefault("code", "ConsistencyTimeout")
        super(ConsistencyTimeout, self).__init__(msg, details)


# --------------------------------------------------------------------------------------------------
# Identity platform (token endpoint) errors
# --------------------------------------------------------------------------------------------------

_AADSTS_RE = re.compile(r"AADSTS(\d+)")
_TRACE_RE = re.compile(r"Trace ID:\s*([0-9a-fA-F-]+)")
_CORRELATION_RE = re.compile(r"Correlation ID:\s*([0-9a-fA-F-]+)")
_TIMESTAMP_RE = re.compile(r"Timestamp:\s*([0-9T:.Z -]+)")


def _first_line(description):
    text = (description or "").replace("\r\n", "\n").split("\n")[0].strip()
    text = _AADSTS_RE.sub("", text, count=1).lstrip(": ").strip()
    return text


def _app(ctx):
    return ctx.get("client_id") or "(unknown client_id)"


def _tenant(ctx):
    return ctx.get("tenant_id") or "(unknown tenant)"


_RESOURCE_RE = re.compile(r"resource principal named (\S+) was not found")


def _resource(description):
    """The resource an AADSTS500011 names ("The resource principal named https://graph.microsoft.us was ...")."""
    match = _RESOURCE_RE.search(description or "")
    return match.group(1) if match else "(the requested resource)"


def _env(ctx):
    env = ctx.get("environment") or "azure_global"
    host = ctx.get("authority_host")
    return "{0} ({1})".format(env, host) if host else env


# AADSTS code -> function(context, first line of the service's description) -> one sentence naming the fix.
_AADSTS_MESSAGES = {
    90002: lambda c, d: (
        "Tenant '{0}' was not found in {1}: check tenant_id (the Directory (tenant) ID GUID or a verified domain "
        "of the tenant) and tenant_environment.".format(_tenant(c), _env(c))),
    900023: lambda c, d: (
        "tenant_id '{0}' is neither a tenant GUID nor a valid domain name: pass the Directory (tenant) ID "
        "shown on the app registration's Overview page.".format(_tenant(c))),
    90072: lambda c, d: (
        "The account is not in tenant '{0}': sign in with an account of that tenant, or pass the tenant_id "
        "of the account's home tenant.".format(_tenant(c))),
    700016: lambda c, d: (
        "Application '{0}' was not found in tenant '{1}': check client_id (the Application (client) ID of the "
        "app registration) and that the application exists in, or was consented to, that tenant."
        .format(_app(c), _tenant(c))),
    700027: lambda c, d: (
        "The certificate with thumbprint {0} is not registered on application {1} in tenant {2}: upload it under "
        "Certificates & secrets, or pass the thumbprint of a certificate that is.".format(
            c.get("thumbprint") or "(unknown)", _app(c), _tenant(c))),
    700024: lambda c, d: (
        "The client assertion signed with the certificate is outside its valid time range: correct the clock of "
        "the machine that runs the module (it must be within 5 minutes of real time)."),
    7000215: lambda c, d: (
        "The client secret for application {0} in tenant {1} is not valid: pass the secret's Value (not its "
        "Secret ID) from Certificates & secrets, or create a new client secret.".format(_app(c), _tenant(c))),
    7000222: lambda c, d: (
        "The client secret for application {0} in tenant {1} has expired: create a new client secret under "
        "Certificates & secrets and update client_secret.".format(_app(c), _tenant(c))),
    7000112: lambda c, d: (
        "Application {0} is disabled in tenant {1}: enable its service principal (Enterprise applications, "
        "Properties, Enabled for users to sign-in) or use another application.".format(_app(c), _tenant(c))),
    7000229: lambda c, d: (
        "Application {0} has no service principal in tenant {1}: grant admin consent for it (or create its "
        "enterprise application) in that tenant.".format(_app(c), _tenant(c))),
    7000218: lambda c, d: (
        "The token request for application {0} carried no credential: pass certificate_path, client_secret "
        "or access_token.".format(_app(c))),
    700025: lambda c, d: (
        "Application {0} is a public client, which cannot use a client secret or certificate: use a confidential "
        "application registration, or turn off 'Allow public client flows'.".format(_app(c))),
    # A tenant has service principals only for its own national cloud's resources, so asking for another cloud's
    # Graph (https://graph.microsoft.us from a global tenant, ...) is the usual cause.
    500011: lambda c, d: (
        "Tenant {0} has no resource named {1}, so tenant_environment ({2}) is probably wrong for this tenant: set it "
        "to the cloud the tenant lives in (azure_global, azure_gcc, azure_gcc_high, azure_dod or azure_china)."
        .format(_tenant(c), _resource(d), c.get("environment") or "azure_global")),
    70011: lambda c, d: (
        "The scope requested for application {0} is not valid: check tenant_environment and graph_endpoint "
        "(the scope must be the cloud's Graph resource followed by /.default).".format(_app(c))),
    50126: lambda c, d: (
        "The user name or password is incorrect for tenant {0}: check the account's credentials.".format(_tenant(c))),
    50034: lambda c, d: (
        "The user account does not exist in tenant {0}: sign in with an account of that tenant.".format(_tenant(c))),
    50053: lambda c, d: "The account is locked after too many failed sign-ins: wait, or ask an administrator to unlock it.",
    50057: lambda c, d: "The account is disabled: ask an administrator to enable it, or sign in with another account.",
    50055: lambda c, d: "The account's password has expired: change it, then run again.",
    50076: lambda c, d: (
        "The account must complete multi-factor authentication: use the device code sign-in, which supports it."),
    50079: lambda c, d: (
        "The account must register for multi-factor authentication: complete the registration, then run again."),
    53003: lambda c, d: (
        "A Conditional Access policy in tenant {0} blocked the sign-in: ask an administrator to exclude "
        "this application or sign-in from the policy.".format(_tenant(c))),
    65001: lambda c, d: (
        "Application {0} has not been consented to in tenant {1}: grant admin consent for its API permissions."
        .format(_app(c), _tenant(c))),
    70016: lambda c, d: (
        "The device code sign-in was not completed: open the verification page, enter the code and sign in "
        "before it expires."),
    70019: lambda c, d: "The device code expired before the sign-in completed: run again and sign in within its lifetime.",
    70020: lambda c, d: "The device code expired before the sign-in completed: run again and sign in within its lifetime.",
    65004: lambda c, d: "The user declined the consent prompt: run again and accept it, or ask an administrator to consent.",
    50058: lambda c, d: "No signed-in user session was found: run the device code sign-in again.",
    50173: lambda c, d: "The sign-in session was revoked (password changed or session revoked): sign in again.",
    700082: lambda c, d: "The refresh token expired because it was inactive: sign in again.",
}

_OAUTH_ERROR_MESSAGES = {
    "authorization_pending": _AADSTS_MESSAGES[70016],
    "expired_token": _AADSTS_MESSAGES[70019],
    "authorization_declined": _AADSTS_MESSAGES[65004],
    "access_denied": _AADSTS_MESSAGES[65004],
}


class AuthError(IdsyncError):
    """The identity platform refused to issue a token (or could not be reached to ask)."""

    def __init__(self, msg, details=None):
        details = dict(details or {})
        details.setdefault("code", details.get("aadsts") or details.get("error") or "AuthError")
        super(AuthError, self).__init__(msg, details)

    @property
    def aadsts(self):
        return self.details.get("aadsts")

    @classmethod
    def from_response(cls, body, context=None, status=None):
        """Build the error from a token endpoint error body (or msal's result dict with the same keys).

        ``context`` may hold ``tenant_id``, ``client_id``, ``thumbprint``, ``environment`` and
        ``authority_host``: they name what to fix in the one-sentence message.
        """
        context = dict(context or {})
        body = dict(body or {})
        description = body.get("error_description") or ""
        codes = body.get("error_codes") or []
        code_number = None
        if codes:
            try:
                code_number = int(codes[0])
            except (TypeError, ValueError):
                code_number = None
        if code_number is None:
            match = _AADSTS_RE.search(description)
            if match:
                code_number = int(match.group(1))
        trace_id = body.get("trace_id")
        correlation_id = body.get("correlation_id")
        if not trace_id:
            match = _TRACE_RE.search(description)
            trace_id = match.group(1) if match else None
        if not correlation_id:
            match = _CORRELATION_RE.search(description)
            correlation_id = match.group(1) if match else None
        first = _first_line(description)
        oauth_error = body.get("error")
        builder = _AADSTS_MESSAGES.get(code_number) if code_number is not None else None
        if builder is None and oauth_error in _OAUTH_ERROR_MESSAGES:
            builder = _OAUTH_ERROR_MESSAGES[oauth_error]
        if builder is not None:
            msg = builder(context, first)
        else:
            what = "AADSTS{0}: ".format(code_number) if code_number is not None else ""
            reason = first or oauth_error or "no reason given"
            msg = "Sign-in of application {0} to tenant {1} failed ({2}{3}).".format(
                _app(context), _tenant(context), what, reason.rstrip("."))
        details = {
            "aadsts": "AADSTS{0}".format(code_number) if code_number is not None else None,
            "error": oauth_error,
            "error_codes": codes or None,
            "message": first or None,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "timestamp": body.get("timestamp"),
            "status": status,
            "tenant_id": context.get("tenant_id"),
            "client_id": context.get("client_id"),
        }
        if context.get("thumbprint"):
            details["thumbprint"] = context["thumbprint"]
        return cls(msg, dict((k, v) for k, v in details.items() if v is not None))


# --------------------------------------------------------------------------------------------------
# Microsoft Graph errors
# --------------------------------------------------------------------------------------------------

_NOT_FOUND_CODES = ("Request_ResourceNotFound", "ResourceNotFound", "itemNotFound", "NotFound")


class GraphError(IdsyncError):
    """Microsoft Graph answered 4xx/5xx (after any retries).

    Attributes: ``status`` (HTTP status), ``code`` (Graph's ``error.code``), ``message`` (Graph's
    ``error.message``), ``request_id`` (the service's ``request-id``), ``client_request_id``, ``date``,
    ``error_details`` (Graph's ``error.details`` list), ``method`` and ``path``. ``details`` is the dict
    form of all of them (the base class contract), with Graph's list under ``details["details"]``.
    """

    def __init__(self, status, code=None, message=None, request_id=None, date=None, details=None,
                 method=None, path=None, client_request_id=None, hint=None, retry_after=None):
        self.status = status
        self.code = code or ("HTTP{0}".format(status) if status else "GraphError")
        self.message = scrub(message) if message else None
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.date = date
        self.error_details = list(details or [])
        self.method = method
        self.path = path
        self.retry_after = retry_after
        where = " for {0} {1}".format(method, path) if method and path else ""
        text = (self.message or "no message").strip()
        if text and text[-1] not in ".!?":
            text += "."
        msg = "Microsoft Graph returned {0} {1}{2}: {3}".format(status, self.code, where, text)
        if hint:
            msg = "{0} {1}".format(msg, hint)
        if request_id:
            msg = "{0} (request-id {1})".format(msg, request_id)
        super(GraphError, self).__init__(msg, {
            "status": status,
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
            "client_request_id": client_request_id,
            "date": date,
            "details": self.error_details or None,
            "method": method,
            "path": path,
        })

    @classmethod
    def from_body(cls, status, body, headers=None, method=None, path=None, hint=None):
        """Parse Graph's error envelope ``{"error": {"code", "message", "innerError": {...}, "details"}}``."""
        headers = dict((k.lower(), v) for k, v in (headers or {}).items())
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
            if isinstance(body, str) and body.strip():
                error["message"] = body.strip()[:300]
        inner = error.get("innerError") or error.get("innererror") or {}
        retry_after = headers.get("retry-after")
        return cls(
            status,
            code=error.get("code"),
            message=error.get("message"),
            request_id=headers.get("request-id") or inner.get("request-id"),
            date=inner.get("date") or headers.get("date"),
            details=error.get("details"),
            method=method,
            path=path,
            client_request_id=headers.get("client-request-id") or inner.get("client-request-id"),
            hint=hint,
            retry_after=retry_after,
        )

    @property
    def is_not_found(self):
        return self.status == 404 or (self.code in _NOT_FOUND_CODES and self.status in (None, 404))

    @property
    def is_throttled(self):
        return self.status == 429

    def matches(self, *needles):
        """True when the code, the message or a details entry contains any of ``needles`` (case-insensitive)."""
        haystack = [self.code or "", self.message or ""]
        for entry in self.error_details:
            if isinstance(entry, dict):
                haystack.extend(str(v) for v in entry.values())
        haystack = " ".join(haystack).lower()
        return any(n.lower() in haystack for n in needles)
