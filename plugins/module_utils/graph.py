# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""GraphClient: Microsoft Graph calls with bounded retries, paging, JSON $batch (graph_batch) and request statistics.

What is retried (bounded by ``RetryPolicy.max_attempts`` AND ``RetryPolicy.max_total_seconds``):

- 429 Too Many Requests, any method: a throttled request was not processed. ``Retry-After`` is honoured
  exactly; when it would overrun the time budget the client gives up at once with the 429.
- 503 Service Unavailable, any method: Graph documents it as "not processed, repeat after Retry-After".
- 502 / 504 and read timeouts or connections lost after the request was sent: only for idempotent methods
  (GET, HEAD, OPTIONS, PUT, PATCH, DELETE), because a gateway error may hide a POST that was applied, and a
  re-sent ``POST /users`` would create a second user. Pass ``idempotent=True`` for a POST that is safe to
  repeat (a read-only action such as ``getByIds``); a ``$batch`` envelope is idempotent when all its items are.
- Connection failures before anything was sent (DNS failure, connection refused, connect timeout), any method.
- 401 InvalidAuthenticationToken once, after dropping the cached token (an expired token mid-run).
Everything else raises :class:`GraphError` at once. TLS verification failures are never retried.

Backoff without ``Retry-After`` is exponential with jitter: ``d = min(max_backoff, backoff * 2**(n-1))``,
sleep ``d/2 + uniform(0, d/2)``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json as jsonlib
import random
import threading
import time
import uuid

try:
    from urllib.parse import quote, urlencode, urlsplit
except ImportError:  # pragma: no cover
    from urllib import quote, urlencode  # type: ignore
    from urlparse import urlsplit  # type: ignore

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError
from ansible_collections.idsync.entra.plugins.module_utils.graph_batch import (  # noqa: F401 (BatchResult: re-exported)
    IDEMPOTENT_METHODS, READ_METHODS, BatchMixin, BatchResult, header_value, parse_retry_after, retryable_status,
)
from ansible_collections.idsync.entra.plugins.module_utils.transport import (
    _before_send, describe_transport_error, is_tls_error, is_transport_error,
)


class RetryPolicy(object):
    """How hard to try: attempts (including the first) and a total time budget, both bounding."""

    def __init__(self, max_attempts=6, max_total_seconds=180.0, backoff=1.0, max_backoff=30.0, jitter=True):
        self.max_attempts = max(1, int(max_attempts))
        self.max_total_seconds = float(max_total_seconds)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.jitter = jitter

    def delay(self, attempt, retry_after=None):
        """Seconds to wait before attempt ``attempt + 1``: ``Retry-After`` when the service gave one."""
        if retry_after is not None:
            return max(0.0, float(retry_after))
        base = min(self.max_backoff, self.backoff * (2 ** max(0, attempt - 1)))
        if not self.jitter:
            return base
        return base / 2.0 + random.uniform(0, base / 2.0)

    def __repr__(self):
        return "RetryPolicy(max_attempts={0}, max_total_seconds={1}, backoff={2})".format(
            self.max_attempts, self.max_total_seconds, self.backoff)


class GraphClient(BatchMixin):
    """Microsoft Graph over the shared session.

    ``endpoints.graph_url`` is the base (``https://graph.microsoft.com/v1.0`` or an override);
    ``credential.get_token()`` supplies the bearer token; ``on_retry(event)`` is called before each wait with a
    dict ``{method, path, attempt, delay, status, reason, items}``.

    ``stats``: ``requests`` = HTTP requests sent (retries and $batch envelopes included); ``writes`` = write
    operations asked for, once each however often they were re-sent (each non-GET $batch item counts one);
    ``retries`` = re-sends (each re-sent $batch item counts one); ``throttled`` = 429 answers (per item in a
    $batch); ``batches`` = $batch envelopes sent.
    """

    def __init__(self, endpoints, credential, session, retry=None, on_retry=None, sleep=time.sleep,
                 clock=time.monotonic, pacer=None):
        self.endpoints = endpoints
        self.base_url = endpoints.graph_url.rstrip("/")
        base = urlsplit(self.base_url)
        self._origin = (base.scheme.lower(), base.netloc.lower())
        self._base_path = base.path.rstrip("/")
        self.credential = credential
        self.session = session
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.pacer = pacer                # a pacing.WritePacer: writes wait for the tenant's write budget
        self.stats = {"requests": 0, "writes": 0, "retries": 0, "throttled": 0, "batches": 0}

    # ------------------------------------------------------------------------------------------------
    # public API
    # ------------------------------------------------------------------------------------------------

    @property
    def token_claims(self):
        """Decoded (unverified) claims of the current token: ``roles`` lists granted application permissions."""
        return self.credential.claims

    def request(self, method, path_or_url, params=None, json=None, headers=None, idempotent=None):  # pylint: disable=redefined-outer-name
        """Send one request; return the JSON body (dict), None for 204/empty, or the text of a non-JSON body.

        ``path_or_url`` is relative to ``graph_url`` (``/users``) or an absolute URL under it (an
        ``@odata.nextLink``). Raises GraphError for 4xx/5xx after retries, TransportError for network failures.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        return self._send(method, path_or_url, params=params, body=json, headers=headers, idempotent=idempotent,
                          count_write=method not in READ_METHODS)

    def get(self, path, params=None, headers=None):
        return self.request("GET", path, params=params, headers=headers)

    def post(self, path, json=None, params=None, headers=None, idempotent=False):  # pylint: disable=redefined-outer-name
        return self.request("POST", path, params=params, json=json, headers=headers, idempotent=idempotent)

    def patch(self, path, json=None, params=None, headers=None):  # pylint: disable=redefined-outer-name
        return self.request("PATCH", path, params=params, json=json, headers=headers)

    def put(self, path, json=None, params=None, headers=None):  # pylint: disable=redefined-outer-name
        return self.request("PUT", path, params=params, json=json, headers=headers)

    def delete(self, path, params=None, headers=None):
        return self.request("DELETE", path, params=params, headers=headers)

    def iter_pages(self, path, params=None, headers=None):
        """Yield each page (the whole JSON object), following ``@odata.nextLink``; the last page of a delta
        query carries ``@odata.deltaLink``."""
        page = self.request("GET", path, params=params, headers=headers)
        yield page
        seen = set()
        while isinstance(page, dict) and page.get("@odata.nextLink"):
            link = page["@odata.nextLink"]
            if link in seen:
                raise GraphError(200, "PagingLoop", "Graph returned the same @odata.nextLink twice",
                                 method="GET", path=self._display_path(link))
            seen.add(link)
            page = self.request("GET", link, headers=headers)
            yield page

    def iter_items(self, path, params=None, headers=None):
        """Yield every item of every page's ``value``."""
        for page in self.iter_pages(path, params=params, headers=headers):
            yield from (page or {}).get("value") or []

    def list(self, path, params=None, headers=None):
        return list(self.iter_items(path, params=params, headers=headers))

    # ------------------------------------------------------------------------------------------------
    # plumbing
    # ------------------------------------------------------------------------------------------------

    def _count(self, key, n=1):
        with self._lock:
            self.stats[key] += n

    def _url(self, path_or_url, params=None):
        text = str(path_or_url)
        if "://" in text:
            parts = urlsplit(text)
            if (parts.scheme.lower(), parts.netloc.lower()) != self._origin:
                raise ConfigError("Refusing to send the Graph token to {0}://{1}, which is not graph_url {2}.".format(
                    parts.scheme, parts.netloc, self.base_url))
            url = text
        else:
            url = "{0}/{1}".format(self.base_url, text.lstrip("/"))
        if params:
            query = urlencode([(k, _param_value(v)) for k, v in params.items() if v is not None],
                              quote_via=quote, safe="$,'()/:@*")
            if query:
                url = "{0}{1}{2}".format(url, "&" if "?" in url else "?", query)
        return url

    def _display_path(self, url):
        path = urlsplit(url).path
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path):] or "/"
        return path

    def _notify(self, method, url, attempt, delay, status, reason, items=None):
        if self.on_retry is None:
            return
        try:
            self.on_retry({"method": method, "path": self._display_path(url), "attempt": attempt, "delay": delay,
                           "status": status, "reason": reason, "items": items})
        except Exception:  # pylint: disable=broad-except
            pass

    def _hint(self, status, body):
        code = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("code") or ""
        if status == 403 and code in ("Authorization_RequestDenied", "Forbidden", "AccessDenied", ""):
            try:
                roles = sorted(self.credential.claims.get("roles") or [])
            except Exception:  # pylint: disable=broad-except
                roles = None
            granted = ", ".join(roles) if roles else "none"
            if roles is not None:
                return ("The token's application permissions ({0}) do not allow this call: grant the Microsoft Graph "
                        "application permission it needs and admin consent.".format(granted))
        if status == 401:
            return "The access token was not accepted: check tenant_environment / graph_endpoint and the credential."
        if status == 429:
            return "Microsoft Graph kept throttling the requests: run again later, or lower the request rate."
        return None

    def _record_pace(self, results):
        """Tell the pacer how a set of write answers went (accepted, throttled, Retry-After, throttle scope)."""
        if self.pacer is None or not results:
            return
        throttled = [r for r in results if r.status == 429]
        accepted = sum(1 for r in results if r.ok)
        retry_after = max([parse_retry_after(r.headers) or 0.0 for r in throttled] or [0.0]) or None
        scoped = any(header_value(r.headers, "x-ms-throttle-scope") for r in throttled)
        self.pacer.record(accepted, len(throttled), retry_after, scoped)

    def _send(self, method, path_or_url, params=None, body=None, headers=None, idempotent=False, count_write=True,
              paced=True, retry_status=True):
        url = self._url(path_or_url, params)
        data = None
        send_headers = {"Accept": "application/json"}
        if body is not None:
            data = jsonlib.dumps(body, separators=(",", ":")).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        send_headers.update(headers or {})
        send_headers["client-request-id"] = str(uuid.uuid4())
        deadline = self._clock() + self.retry.max_total_seconds
        attempt = 0
        reauthenticated = False
        if count_write:
            self._count("writes")
        pace = paced and self.pacer is not None and method not in READ_METHODS
        while True:
            attempt += 1
            if pace:
                self.pacer.acquire(1)
            send_headers["Authorization"] = "Bearer " + self.credential.get_token()
            self._count("requests")
            try:
                response = self.session.request(method, url, data=data, headers=send_headers)
            except Exception as exc:  # pylint: disable=broad-except
                if not is_transport_error(exc):
                    raise
                if is_tls_error(exc):
                    raise describe_transport_error(exc, method, url, getattr(self.session, "ca_path", None))
                safe = idempotent or _before_send(exc)
                delay = self.retry.delay(attempt)
                if not safe or attempt >= self.retry.max_attempts or self._clock() + delay > deadline:
                    raise describe_transport_error(exc, method, url, getattr(self.session, "ca_path", None),
                                                   sent=None if safe else False)
                self._count("retries")
                self._notify(method, url, attempt, delay, None, type(exc).__name__)
                self._sleep(delay)
                continue

            status = response.status_code
            if pace:
                self._record_pace([BatchResult(status, response.headers)])
            if status < 400:
                return _parse_body(response)
            payload = _parse_body(response)
            if status == 401 and not reauthenticated and getattr(self.credential, "can_refresh", False) \
                    and _error_code(payload) in ("InvalidAuthenticationToken", "", None):
                reauthenticated = True
                self.credential.invalidate()
                continue
            if status == 429:
                self._count("throttled")
            if retry_status and retryable_status(status, idempotent):
                retry_after = parse_retry_after(response.headers)
                delay = self.retry.delay(attempt, retry_after)
                if attempt < self.retry.max_attempts and self._clock() + delay <= deadline:
                    self._count("retries")
                    self._notify(method, url, attempt, delay, status, "throttled" if status == 429 else "unavailable")
                    self._sleep(delay)
                    continue
            raise GraphError.from_body(status, payload if payload is not None else {}, response.headers,
                                       method=method, path=self._display_path(url), hint=self._hint(status, payload))


def _param_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _parse_body(response):
    if response.status_code == 204 or not response.content:
        return None
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type.lower():
        try:
            return response.json()
        except ValueError:
            return response.text
    text = response.text
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return jsonlib.loads(stripped)
        except ValueError:
            pass
    return text


def _error_code(payload):
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return payload["error"].get("code")
    return None
