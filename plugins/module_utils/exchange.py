# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ExchangeClient: Exchange Online cmdlets over the admin REST endpoint the ExchangeOnlineManagement v3 module uses.

``POST https://<exchange host>/adminapi/beta/<tenant>/InvokeCommand`` with
``{"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {...}}}``. Microsoft does not document this API; its
shape follows public clients: CISA ScubaGear (PowerShell/ScubaGear/Modules/Providers/ProviderHelpers/
EXORestHelper.psm1) and CIPP (Modules/CIPPCore/Public/GraphHelper/New-ExoRequest.ps1): headers ``X-ResponseFormat:
json``, ``X-AnchorMailbox: APP:SystemMailbox{bb558c35-...}@<tenant id>``, ``Prefer: odata.maxpagesize=1000``, a
``client-request-id``; results in ``value``; the next page by POSTing the same body to ``@odata.nextLink``; errors as
``{"error": {"code", "message", "details": [{"message": "ErrorId|ExceptionClass|Text"}]}}``.

Everything Exchange-specific about the wire is here, so the connector can move to Microsoft's documented Admin API
later by replacing this module. Retries reuse the Graph client's ``RetryPolicy`` (bounded attempts AND time,
``Retry-After`` honoured): 429 and 503 for any cmdlet (not processed); 502/504 and lost connections only for
``Get-*`` cmdlets, since a gateway error may hide a ``New-*`` that was applied.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json as jsonlib
import threading
import time
import uuid

try:
    from urllib.parse import quote, urlsplit
except ImportError:  # pragma: no cover
    from urllib import quote  # type: ignore
    from urlparse import urlsplit  # type: ignore

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError, scrub
from ansible_collections.idsync.entra.plugins.module_utils.graph import RetryPolicy, parse_retry_after
from ansible_collections.idsync.entra.plugins.module_utils.transport import (
    _before_send, describe_transport_error, is_tls_error, is_transport_error,
)

# The system mailbox ExchangeOnlineManagement anchors app-only requests on (ScubaGear, CIPP).
ANCHOR_MAILBOX = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@%s"
PAGE_SIZE = 1000
API_PATH = "/adminapi/beta/%s/InvokeCommand"


def is_read_cmdlet(name):
    return str(name).split("-", 1)[0].lower() in ("get", "test")


class ExchangeError(IdsyncError):
    """A cmdlet failed. ``status`` (HTTP), ``code`` (``error.code``), ``exception`` (the .NET exception's short class
    name from ``details``, e.g. ``ManagementObjectNotFoundException``), ``error_id``, ``text`` (the cmdlet's own
    sentence), ``cmdlet``, ``request_id``."""

    def __init__(self, status, cmdlet, code=None, text=None, exception=None, error_id=None, request_id=None,
                 retry_after=None):
        self.status = status
        self.cmdlet = cmdlet
        self.code = code or ("HTTP%s" % status if status else "ExchangeError")
        self.text = scrub(text) if text else None
        self.exception = exception
        self.error_id = error_id
        self.request_id = request_id
        self.retry_after = retry_after
        sentence = (self.text or self.code).strip()
        if sentence and sentence[-1] not in ".!?":
            sentence += "."
        msg = "Exchange Online %s failed (%s %s): %s" % (cmdlet, status, exception or self.code, sentence)
        if request_id:
            msg += " (request-id %s)" % request_id
        super(ExchangeError, self).__init__(msg, {"status": status, "code": self.code, "cmdlet": cmdlet,
                                                  "exception": exception, "error_id": error_id,
                                                  "message": self.text, "request_id": request_id})

    @property
    def is_not_found(self):
        return self.exception == "ManagementObjectNotFoundException" or self.status == 404

    def named(self, *exceptions):
        return self.exception in exceptions

    @classmethod
    def from_response(cls, status, body, headers, cmdlet):
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {"message": body.strip()[:300]} if isinstance(body, str) and body.strip() else {}
        text, exception, error_id = error.get("message"), None, None
        for detail in error.get("details") or []:
            parts = str((detail or {}).get("message") or "").split("|", 2)
            if len(parts) == 3:         # "Ex6F9304|Microsoft.Exchange...ManagementObjectNotFoundException|Text"
                error_id, exception, text = parts[0], parts[1].rsplit(".", 1)[-1], parts[2]
                break
            if parts[0]:
                text = parts[0]
        lowered = dict((k.lower(), v) for k, v in (headers or {}).items())
        return cls(status, cmdlet, code=error.get("code"), text=text, exception=exception, error_id=error_id,
                   request_id=lowered.get("request-id"), retry_after=parse_retry_after(headers))


class ExchangeClient(object):
    """Cmdlets over the admin REST endpoint. ``endpoints`` from ``clouds.resolve_endpoints`` (``exchange_url``);
    ``credential.get_token()`` for the scope ``https://<cloud exchange host>/.default``.

    ``stats``: ``requests`` (HTTP requests, retries and pages included), ``cmdlets`` (cmdlets invoked), ``writes``
    (non-Get cmdlets, once each however often re-sent), ``retries``, ``throttled`` (429 answers)."""

    def __init__(self, endpoints, credential, session, retry=None, sleep=time.sleep, clock=time.monotonic):
        self.base_url = endpoints.exchange_url.rstrip("/")
        self.url = self.base_url + API_PATH % quote(str(endpoints.tenant_id), safe="")
        self._origin = urlsplit(self.base_url)[:2]
        self.anchor = ANCHOR_MAILBOX % endpoints.tenant_id
        self.credential = credential
        self.session = session
        self.retry = retry or RetryPolicy(max_attempts=8, max_total_seconds=600.0)
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "cmdlets": 0, "writes": 0, "retries": 0, "throttled": 0}

    def _count(self, key, n=1):
        with self._lock:
            self.stats[key] += n

    def invoke(self, cmdlet, parameters=None, select=None):
        """Run one cmdlet; return every result object (all pages), a list of dicts. Raises ExchangeError."""
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": dict(parameters or {})}}
        url = self.url
        if select:
            url += "?$select=" + ",".join(select)
        self._count("cmdlets")
        if not is_read_cmdlet(cmdlet):
            self._count("writes")
        out = []
        while url:
            page = self._post(url, body, cmdlet) or {}
            value = page.get("value") if isinstance(page, dict) else None
            out.extend(value or [])
            url = page.get("@odata.nextLink") if isinstance(page, dict) else None
            if url:
                self._check_origin(url)
        return out

    def _check_origin(self, url):
        if urlsplit(url)[:2] != self._origin:
            raise ConfigError("Refusing to send the Exchange Online token to %s, which is not exchange_endpoint %s."
                              % (url.split("?", 1)[0], self.base_url))

    def _post(self, url, body, cmdlet):
        data = jsonlib.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = {"Accept": "application/json", "Content-Type": "application/json", "X-ResponseFormat": "json",
                   "X-AnchorMailbox": self.anchor, "Prefer": "odata.maxpagesize=%d" % PAGE_SIZE,
                   "client-request-id": str(uuid.uuid4())}
        idempotent = is_read_cmdlet(cmdlet)
        deadline = self._clock() + self.retry.max_total_seconds
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            headers["Authorization"] = "Bearer " + self.credential.get_token()
            self._count("requests")
            try:
                response = self.session.request("POST", url, data=data, headers=headers)
            except Exception as exc:  # pylint: disable=broad-except
                if not is_transport_error(exc):
                    raise
                if is_tls_error(exc):
                    raise describe_transport_error(exc, "POST", url, getattr(self.session, "ca_path", None))
                safe = idempotent or _before_send(exc)
                delay = self.retry.delay(attempt)
                if not safe or attempt >= self.retry.max_attempts or self._clock() + delay > deadline:
                    raise describe_transport_error(exc, "POST", url, getattr(self.session, "ca_path", None),
                                                   sent=None if safe else False)
                self._count("retries")
                self._sleep(delay)
                continue
            status = response.status_code
            payload = _parse(response)
            if status < 400:
                return payload
            if status == 401 and not reauthenticated and getattr(self.credential, "can_refresh", False) \
                    and _token_expired(payload):
                reauthenticated = True
                self.credential.invalidate()
                continue
            if status == 429:
                self._count("throttled")
            if status in (429, 503) or (idempotent and status in (502, 504)):
                delay = self.retry.delay(attempt, parse_retry_after(response.headers))
                if attempt < self.retry.max_attempts and self._clock() + delay <= deadline:
                    self._count("retries")
                    self._sleep(delay)
                    continue
            raise ExchangeError.from_response(status, payload, response.headers, cmdlet)


def _token_expired(payload):
    """A 401 about the token itself (expired mid-run), not about missing permissions or roles."""
    text = (jsonlib.dumps(payload) if isinstance(payload, dict) else str(payload or "")).lower()
    return "expired" in text or "lifetime" in text


def _parse(response):
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def exchange_client_for(record, overrides=None, session=None):
    """An ExchangeClient for a ``microsoft_365`` (or ``azure_ad``) connection record: the same app, certificate and
    tenant as the Graph client, the token scope of the cloud's Exchange Online resource."""
    from ansible_collections.idsync.entra.plugins.module_utils import clouds, connections, credentials, transport

    params = connections.auth_params(record, overrides)
    settings = record.get("settings") or {}
    endpoints = clouds.resolve_endpoints(params["tenant_environment"], params["tenant_id"],
                                         authority_host=params.get("authority_host"),
                                         graph_endpoint=params.get("graph_endpoint"),
                                         exchange_endpoint=settings.get("exchange_endpoint"))
    session = session or transport.build_session(params.get("ca_path"))
    credential = credentials.build_credential(params, endpoints._replace(scope=endpoints.exchange_scope), session)
    return ExchangeClient(endpoints, credential, session)
