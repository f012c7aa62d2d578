# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""JSON ``$batch`` for GraphClient (Learn: json-batching): up to 20 requests per envelope, dependency groups kept in
one envelope, concurrent envelopes, per-item retries of what Graph documents as transient, or every retryable
answer handed back to a caller that schedules a long stream of writes itself (``hand_back``)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import email.utils
import time

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover
    from urlparse import urlsplit  # type: ignore

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError, TransportError

IDEMPOTENT_METHODS = frozenset(["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"])
READ_METHODS = frozenset(["GET", "HEAD", "OPTIONS"])
BATCH_LIMIT = 20


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
    value = header_value(headers, "retry-after")
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


def retryable_status(status, idempotent):
    return status in (429, 503) or (idempotent and status in (502, 504))


def header_value(headers, name):
    """A header's value, the name compared case-insensitively (None when absent)."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


class BatchMixin(object):
    """The ``$batch`` half of GraphClient (which provides ``_send``, ``_count``, ``_notify``, ``_record_pace``)."""

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
                if status is not None and retryable_status(status, item["method"] in IDEMPOTENT_METHODS):
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
