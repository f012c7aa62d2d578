# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""GraphClient: Microsoft Graph calls with bounded retries, paging, JSON $batch and request statistics.

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

import email.utils
import json as jsonlib
import random
import threading
import time
import traceback
import uuid

try:
    from urllib.parse import quote, urlencode, urlsplit
except ImportError:  # pragma: no cover
    from urllib import quote, urlencode  # type: ignore
    from urlparse import urlsplit  # type: ignore

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    HAS_REQUESTS = True
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError, TransportError
from ansible_collections.idsync.entra.plugins.module_utils.transport import _before_send, describe_transport_error

IDEMPOTENT_METHODS = frozenset(["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"])
READ_METHODS = frozenset(["GET", "HEAD", "OPTIONS"])
BATCH_LIMIT = 20


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


class BatchResult(object):
    """One ``$batch`` response item, returned in the order of the input requests."""

    __slots__ = ("id", "status", "headers", "body", "method", "url", "unknown")

    def __init__(self, status, headers=None, body=None, id=None, method=None, url=None,  # pylint: disable=redefined-builtin
                 unknown=False):
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.id = id
        self.method = method
        self.url = url
        self.unknown = unknown          # the envelope was lost after it was sent: the item may have been applied

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    def error(self):
        """A GraphError for a failed item (None when it succeeded)."""
        if self.ok:
            return None
        return GraphError.from_body(self.status or 0, self.body if self.body is not None else {}, self.headers,
                                    method=self.method, path=self.url)

    def raise_for_status(self):
        error = self.error()
        if error is not None:
            raise error

    def __iter__(self):  # status, headers, body = result
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "BatchResult(id={0!r}, status={1!r})".format(self.id, self.status)


def parse_retry_after(headers):
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not headers:
        return None
    value = None
    for key, val in headers.items():
        if key.lower() == "retry-after":
            value = val
            break
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _retryable_status(status, idempotent):
    return status in (429, 503) or (idempotent and status in (502, 504))


class GraphClient(object):
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

    def batch(self, requests_, max_in_flight=1, hand_back=False):
        """Run requests through JSON ``$batch`` (20 per envelope) and return BatchResults in input order.

        Each request is a dict ``{method, url, body?, headers?, id?, dependsOn?}`` with ``url`` relative to
        ``graph_url``. Requests linked by ``dependsOn`` are kept in one envelope (a group over 20 is a
        ValueError). Items answered 429/503 (and 502/504 for idempotent methods) are re-sent after the largest
        ``Retry-After`` among them, together with the items that failed 424 because they depended on them.
        ``max_in_flight`` envelopes are sent concurrently.

        ``hand_back=True`` is for a caller that schedules a long stream of writes itself: every item answered 429,
        503 (or 502/504 when idempotent) comes back at once instead of being re-sent here, so one item's
        ``Retry-After`` never holds back the others; and when an envelope's connection is lost after it was sent,
        its items come back with ``status None`` and ``unknown=True`` (they may have been applied) instead of the
        run failing.
        """
        items = self._normalize_batch(requests_)
        if not items:
            return []
        chunks = self._chunk(items)
        results = [None] * len(items)
        if max_in_flight and max_in_flight > 1 and len(chunks) > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=min(int(max_in_flight), len(chunks))) as pool:
                for chunk_results in pool.map(lambda chunk: self._run_chunk(chunk, hand_back), chunks):
                    for index, result in chunk_results:
                        results[index] = result
        else:
            for chunk in chunks:
                for index, result in self._run_chunk(chunk, hand_back):
                    results[index] = result
        return results

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
        scoped = any(_header(r.headers, "x-ms-throttle-scope") for r in throttled)
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
                if not HAS_REQUESTS or not isinstance(exc, requests.exceptions.RequestException):
                    raise
                if isinstance(exc, requests.exceptions.SSLError):
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
            if retry_status and _retryable_status(status, idempotent):
                retry_after = parse_retry_after(response.headers)
                delay = self.retry.delay(attempt, retry_after)
                if attempt < self.retry.max_attempts and self._clock() + delay <= deadline:
                    self._count("retries")
                    self._notify(method, url, attempt, delay, status, "throttled" if status == 429 else "unavailable")
                    self._sleep(delay)
                    continue
            raise GraphError.from_body(status, payload if payload is not None else {}, response.headers,
                                       method=method, path=self._display_path(url), hint=self._hint(status, payload))

    # -- $batch -------------------------------------------------------------------------------------------

    def _normalize_batch(self, requests_):
        items = []
        ids = set()
        for index, req in enumerate(requests_ or []):
            if not isinstance(req, dict) or not req.get("method") or not req.get("url"):
                raise ValueError("batch request #{0} needs 'method' and 'url'".format(index))
            item_id = str(req["id"]) if req.get("id") is not None else None
            items.append({
                "index": index,
                "id": item_id,
                "method": str(req["method"]).upper(),
                "url": self._relative(req["url"]),
                "body": req.get("body"),
                "headers": dict(req.get("headers") or {}),
                "dependsOn": [str(d) for d in (req.get("dependsOn") or req.get("depends_on") or [])],
            })
            if item_id is not None:
                if item_id in ids:
                    raise ValueError("batch request id '{0}' is used twice".format(item_id))
                ids.add(item_id)
        counter = 0
        for item in items:
            if item["id"] is None:
                counter += 1
                while str(counter) in ids:
                    counter += 1
                item["id"] = str(counter)
                ids.add(item["id"])
        for item in items:
            for dep in item["dependsOn"]:
                if dep not in ids:
                    raise ValueError("batch request '{0}' depends on unknown id '{1}'".format(item["id"], dep))
            if item["body"] is not None and not any(k.lower() == "content-type" for k in item["headers"]):
                item["headers"]["Content-Type"] = "application/json"
        return items

    def _relative(self, url):
        text = str(url)
        if "://" in text:
            parts = urlsplit(text)
            if (parts.scheme.lower(), parts.netloc.lower()) != self._origin:
                raise ConfigError("A batch item URL must be under graph_url {0}.".format(self.base_url))
            text = parts.path[len(self._base_path):] if parts.path.startswith(self._base_path) else parts.path
            if parts.query:
                text = "{0}?{1}".format(text, parts.query)
        return "/" + text.lstrip("/")

    @staticmethod
    def _chunk(items):
        """Pack dependency groups (connected by dependsOn) into envelopes of at most 20, in input order."""
        parent = {}

        def find(x):
            while parent.get(x, x) != x:
                x = parent[x]
            return x

        for item in items:
            parent.setdefault(item["id"], item["id"])
            for dep in item["dependsOn"]:
                parent.setdefault(dep, dep)
                parent[find(item["id"])] = find(dep)
        groups = []
        by_root = {}
        for item in items:
            root = find(item["id"])
            if root not in by_root:
                by_root[root] = []
                groups.append(by_root[root])
            by_root[root].append(item)
        chunks = []
        current = []
        for group in groups:
            if len(group) > BATCH_LIMIT:
                raise ValueError("{0} batch requests are linked by dependsOn; at most {1} fit one $batch".format(
                    len(group), BATCH_LIMIT))
            if len(current) + len(group) > BATCH_LIMIT:
                chunks.append(current)
                current = []
            current.extend(group)
        if current:
            chunks.append(current)
        return chunks

    def _run_chunk(self, chunk, hand_back=False):
        final = {}
        for item in chunk:
            if item["method"] not in READ_METHODS:
                self._count("writes")
        pending = list(chunk)
        attempt = 0
        deadline = self._clock() + self.retry.max_total_seconds
        while pending:
            attempt += 1
            pending_ids = set(i["id"] for i in pending)
            wire = []
            for item in pending:
                entry = {"id": item["id"], "method": item["method"], "url": item["url"]}
                if item["headers"]:
                    entry["headers"] = item["headers"]
                if item["body"] is not None:
                    entry["body"] = item["body"]
                deps = [d for d in item["dependsOn"] if d in pending_ids]
                if deps:
                    entry["dependsOn"] = deps
                wire.append(entry)
            envelope_idempotent = all(i["method"] in IDEMPOTENT_METHODS for i in pending)
            writes = sum(1 for i in pending if i["method"] not in READ_METHODS)
            if writes and self.pacer is not None:
                self.pacer.acquire(writes)
            self._count("batches")
            try:
                answer = self._send("POST", "$batch", body={"requests": wire}, idempotent=envelope_idempotent,
                                    count_write=False, paced=False, retry_status=not hand_back) or {}
            except GraphError as exc:
                if not hand_back or exc.status not in (429, 502, 503, 504):
                    raise
                # The envelope itself was answered 429/503 (not processed: its items wait the Retry-After while the
                # rest flows) or 502/504 (a gateway: it may have been processed, so its items' outcome is unknown).
                unknown = exc.status in (502, 504)
                headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
                for item in pending:
                    final[item["id"]] = BatchResult(None if unknown else exc.status, headers,
                                                    {"error": {"code": exc.code, "message": exc.message}},
                                                    id=item["id"], method=item["method"], url=item["url"],
                                                    unknown=unknown)
                break
            except TransportError as exc:
                if not hand_back:
                    raise
                for item in pending:      # lost after sending: the caller finds out what happened
                    final[item["id"]] = BatchResult(None, {}, {"error": {"code": "OutcomeUnknown", "message": exc.msg}},
                                                    id=item["id"], method=item["method"], url=item["url"],
                                                    unknown=True)
                break
            responses = dict((str(r.get("id")), r) for r in answer.get("responses") or [] if isinstance(r, dict))
            retry_ids = set()
            retry_after = None
            for item in pending:
                resp = responses.get(item["id"])
                if resp is None:
                    final[item["id"]] = BatchResult(None, {}, {"error": {
                        "code": "MissingBatchResponse", "message": "The $batch answer had no response for this item."}},
                        id=item["id"], method=item["method"], url=item["url"])
                    continue
                status = resp.get("status")
                try:
                    status = int(status)
                except (TypeError, ValueError):
                    status = None
                result = BatchResult(status, resp.get("headers"), resp.get("body"), id=item["id"],
                                     method=item["method"], url=item["url"])
                final[item["id"]] = result
                if status == 429:
                    self._count("throttled")
                if hand_back:
                    continue
                if status is not None and _retryable_status(status, item["method"] in IDEMPOTENT_METHODS):
                    retry_ids.add(item["id"])
                    seconds = parse_retry_after(result.headers)
                    if seconds is not None:
                        retry_after = seconds if retry_after is None else max(retry_after, seconds)
            self._record_pace([final[i["id"]] for i in pending if i["method"] not in READ_METHODS])
            # An item that failed only because something it depends on is being re-sent goes along.
            changed = bool(retry_ids)
            while changed:
                changed = False
                for item in pending:
                    if item["id"] not in retry_ids and final[item["id"]].status == 424 \
                            and any(d in retry_ids for d in item["dependsOn"]):
                        retry_ids.add(item["id"])
                        changed = True
            if not retry_ids:
                break
            delay = self.retry.delay(attempt, retry_after)
            if attempt >= self.retry.max_attempts or self._clock() + delay > deadline:
                break
            statuses = sorted(set(final[i].status for i in retry_ids if final[i].status))
            self._count("retries", len(retry_ids))
            self._notify("POST", self.base_url + "/$batch", attempt, delay, statuses[0] if statuses else None,
                         "throttled" if 429 in statuses else "unavailable", items=len(retry_ids))
            self._sleep(delay)
            pending = [i for i in pending if i["id"] in retry_ids]
        return [(item["index"], final[item["id"]]) for item in chunk]


def _header(headers, name):
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


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
