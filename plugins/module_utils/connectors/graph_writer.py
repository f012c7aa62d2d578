# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Sending a long stream of Graph writes so that faults cost what they must and nothing is left unknown.

* **Per-item scheduling.** Writes go out in waves of ``$batch`` envelopes. An item answered 429 or 503 (or 502/504
  when it is idempotent) waits its own ``Retry-After`` while the others keep flowing; the rate is the write
  pacer's business (``pacing``), which only real throttling changes, never a 503 or a dropped connection.
* **Uncertain writes are resolved, never abandoned.** When an envelope's connection is lost after it was sent, its
  idempotent items are sent again; a create's outcome is found out by reading the object back by its unique
  attribute, waiting out replication (Learn: "eventual consistency" of directory objects), and only a create that
  did not happen is sent again. A create refused because its unique value exists is looked up: when the object
  holds exactly what we sent, it is ours (an earlier attempt that did land) and is adopted.
* **Replication lag.** A write naming an object created moments ago may 404 while Entra replicates it: it is
  retried with backoff.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.idsync.entra.plugins.module_utils import odata
from ansible_collections.idsync.entra.plugins.module_utils.graph import IDEMPOTENT_METHODS, parse_retry_after

BATCH_SIZE = 20
THROTTLE_TIMEOUT = 3600.0
REPLICATION_RETRY_SECONDS = 90.0
# An unknown create whose sign-in name is unique in the directory is re-sent after this much absence: if it did
# land, the re-send is refused (ObjectConflict) and the object is adopted; it can never exist twice.
UNIQUE_CONFIRM_SECONDS = 8.0
MAX_UNKNOWN_RESENDS = 5


class WriteOutcome(object):
    """What ``GraphWriter.run`` learned about each request: ``errors`` {position: sentence}, ``created``
    {position: new id}, ``conflicts`` {position: attribute whose value another object holds}."""

    def __init__(self, size):
        self.errors = [None] * size
        self.created = {}
        self.conflicts = {}


class GraphWriter(object):
    """Runs lists of ``(index, request, kind)`` through ``graph.batch``. ``lookups`` {position: (attribute, value,
    unique)} says how to find what a create made (``unique``: the directory refuses a second object with that
    value)."""

    def __init__(self, graph, max_in_flight=4, sleep=time.sleep, throttle_timeout=THROTTLE_TIMEOUT,
                 replication_retry_seconds=REPLICATION_RETRY_SECONDS, clock=time.monotonic):
        self.graph = graph
        self.clock = clock
        self.max_in_flight = max(1, int(max_in_flight))
        self.sleep = sleep
        self.throttle_timeout = throttle_timeout
        self.replication_retry_seconds = replication_retry_seconds
        self.fresh = set()                # ids created during this run (their 404s are replication lag)
        self.stats = {"retried_items": 0, "unknown_outcomes": 0, "adopted": 0, "resent_creates": 0}

    # -- scheduling ---------------------------------------------------------------------------------------------
    def send(self, batch):
        """Answers (BatchResult) for every request of ``batch``, in order, after per-item waits for 429/503."""
        answers = [None] * len(batch)
        ready_at = [0.0] * len(batch)
        attempts = [0] * len(batch)
        pending = list(range(len(batch)))
        deadline = self.clock() + self.throttle_timeout
        wave = BATCH_SIZE * self.max_in_flight
        while pending:
            now = self.clock()
            ready = [i for i in pending if ready_at[i] <= now][:wave]
            if not ready:
                self.sleep(max(0.01, min(ready_at[i] for i in pending) - now))
                continue
            results = self.graph.batch([batch[i] for i in ready], max_in_flight=self.max_in_flight, hand_back=True)
            done = set()
            for position, result in zip(ready, results):
                attempts[position] += 1
                delay = self._retry_delay(batch[position], result, attempts[position], deadline)
                if delay is None:
                    answers[position] = result
                    done.add(position)
                else:
                    ready_at[position] = self.clock() + delay
                    self.stats["retried_items"] += 1
            pending = [i for i in pending if i not in done]
        return answers

    def _retry_delay(self, request, result, attempt, deadline):
        """Seconds until ``request`` goes again, or None when ``result`` is its answer."""
        if self.clock() >= deadline:
            return None
        idempotent = request["method"] in IDEMPOTENT_METHODS
        if result.unknown:
            return _backoff(attempt) if idempotent and attempt < MAX_UNKNOWN_RESENDS else None
        if result.status in (429, 503) or (idempotent and result.status in (502, 504)):
            retry_after = parse_retry_after(result.headers)
            return retry_after if retry_after is not None else _backoff(attempt)
        return None

    # -- running ------------------------------------------------------------------------------------------------
    def run(self, requests, lookups=None, benign=None, describe=None):
        """Send ``requests`` [(index, request, kind)] until each has a final answer. ``benign(kind, error)`` says
        which errors mean the desired state already holds; ``describe(kind, error)`` turns an error into a sentence.
        Returns a WriteOutcome."""
        lookups = lookups or {}
        outcome = WriteOutcome(len(requests))
        todo = list(range(len(requests)))
        deadline = self.clock() + self.replication_retry_seconds
        delay = 1.0
        resent = {}                       # position -> times a create of unknown outcome was sent again
        while todo:
            answers = self.send([requests[i][1] for i in todo])
            retry = []
            unknown = []
            for position, answer in zip(todo, answers):
                _index, request, kind = requests[position]
                if answer.ok:
                    if kind == "create":
                        self._created(outcome, position, answer.body)
                    continue
                if answer.unknown:
                    self.stats["unknown_outcomes"] += 1
                    if kind == "create" and position in lookups:
                        unknown.append(position)
                    elif kind.startswith("members-add") or kind == "members-add-one":
                        retry.append(position)            # adding a member again is refused harmlessly
                    else:
                        outcome.errors[position] = describe(kind, answer.error())
                    continue
                error = answer.error()
                if benign is not None and benign(kind, error):
                    continue
                if kind == "create" and position in lookups and _conflict(error):
                    if position in resent and self._adopt(outcome, position, requests, lookups):
                        continue
                    outcome.conflicts[position] = _conflict(error)
                if kind.startswith("members-add") and error.status == 400 and error.matches("already exist"):
                    # members@odata.bind is all-or-nothing: one existing member rejects the chunk.
                    outcome.errors[position] = self._add_members_one_by_one(request, describe)
                    continue
                if _replication_lag(error) and self._mentions_fresh(request) and self.clock() < deadline:
                    retry.append(position)
                    continue
                outcome.errors[position] = describe(kind, error)
            if unknown:
                retry.extend(self._resolve_unknown(outcome, requests, unknown, lookups, resent))
            if not retry:
                break
            if not unknown:
                self.sleep(delay)
                delay = min(delay * 2, 10.0)
            todo = sorted(retry)
        return outcome

    def _created(self, outcome, position, body):
        new_id = (body or {}).get("id") if isinstance(body, dict) else None
        if new_id:
            outcome.created[position] = new_id
            self.fresh.add(new_id)
        else:
            outcome.errors[position] = "create returned no object id"

    # -- uncertain creates --------------------------------------------------------------------------------------
    def _resolve_unknown(self, outcome, requests, positions, lookups, resent):
        """Find out which creates of a lost envelope happened: found ones are done; the others are returned, to
        be sent again (at most MAX_UNKNOWN_RESENDS times each)."""
        found = self._find(positions, lookups, requests)
        again = []
        for position in positions:
            if found.get(position, {}).get("id"):
                outcome.created[position] = found[position]["id"]
                self.fresh.add(found[position]["id"])
                self.stats["adopted"] += 1
            elif resent.get(position, 0) < MAX_UNKNOWN_RESENDS:
                resent[position] = resent.get(position, 0) + 1
                self.stats["resent_creates"] += 1
                again.append(position)
            else:
                outcome.errors[position] = "the outcome of the create could not be found out; run again"
        return again

    def _find(self, positions, lookups, requests, window=None, select=("id",)):
        """{position: object} of the creates that exist, reading them back by their lookup attribute until
        replication settles or ``window`` seconds pass (default: ``UNIQUE_CONFIRM_SECONDS`` for a directory-unique
        value, the replication window otherwise)."""
        if window is None:
            unique = all(lookups[p][2] for p in positions)
            window = UNIQUE_CONFIRM_SECONDS if unique else self.replication_retry_seconds
        deadline = self.clock() + window
        found = {}
        todo = list(positions)
        delay = 1.0
        while todo:
            gets = [self._lookup_request(requests[p][1]["url"], lookups[p], select) for p in todo]
            for position, answer in zip(todo, self.send(gets)):
                items = (answer.body or {}).get("value") if answer.ok and isinstance(answer.body, dict) else None
                if items:
                    found[position] = items[0]
            todo = [p for p in todo if p not in found]
            if not todo or self.clock() + delay > deadline:
                break
            self.sleep(delay)
            delay = min(delay * 2, 8.0)
        return found

    @staticmethod
    def _lookup_request(collection_url, lookup, select=("id",)):
        attribute, value, _unique = lookup
        url = "%s?$filter=%s&$select=%s" % (collection_url, _encode(odata.eq(attribute, value)),
                                            ",".join(select))
        return {"method": "GET", "url": url}

    def _adopt(self, outcome, position, requests, lookups):
        """A re-sent create was refused as a duplicate: the object exists, so wait until it can be read, and adopt
        it when it holds exactly what we sent (our first attempt landed); someone else's object stays a conflict."""
        request = requests[position][1]
        body = dict((k, v) for k, v in (request.get("body") or {}).items() if not isinstance(v, (dict, list))
                    and k != "passwordProfile")
        found = self._find([position], lookups, requests, window=self.replication_retry_seconds,
                           select=["id"] + sorted(body))
        item = found.get(position)
        if item is not None and all(item.get(k) == v for k, v in body.items()):
            outcome.created[position] = item["id"]
            self.fresh.add(item["id"])
            self.stats["adopted"] += 1
            return True
        return False

    # -- members --------------------------------------------------------------------------------------------------
    def _add_members_one_by_one(self, request, describe):
        url = request["url"] + "/members/$ref"
        refs = request["body"]["members@odata.bind"]
        answers = self.send([{"method": "POST", "url": url, "body": {"@odata.id": ref}} for ref in refs])
        problems = []
        for ref, answer in zip(refs, answers):
            if answer.ok:
                continue
            error = answer.error()
            if error.status == 400 and error.matches("already exist"):
                continue
            problems.append("%s: %s" % (ref.rsplit("/", 1)[-1], error.message or error.code))
        return ("adding members failed for " + "; ".join(problems)) if problems else None

    def _mentions_fresh(self, request):
        """Does the request name an object created during the run?"""
        if not self.fresh:
            return False
        ids = set(request["url"].split("/"))
        body = request.get("body") or {}
        for ref in body.get("members@odata.bind") or []:
            ids.add(ref.rsplit("/", 1)[-1])
        if body.get("@odata.id"):
            ids.add(body["@odata.id"].rsplit("/", 1)[-1])
        return bool(ids & self.fresh)


def _backoff(attempt):
    return min(30.0, 0.5 * (2 ** max(0, attempt - 1)))


def _encode(text):
    from urllib.parse import quote
    return quote(text, safe="$,'()/:@*")


def _conflict(error):
    """The attribute whose value another object already holds ("Another object with the same value for property
    userPrincipalName already exists."; Learn: create user, ObjectConflict), or None."""
    if error is None or error.status != 400:
        return None
    for detail in error.error_details:
        if isinstance(detail, dict) and detail.get("code") == "ObjectConflict" and detail.get("target"):
            return detail["target"]
    message = error.message or ""
    marker = "same value for property "
    if marker in message and "already exists" in message:
        return message.split(marker, 1)[1].split()[0].strip(".")
    return None


def _replication_lag(error):
    if error is None:
        return False
    if error.status == 404:
        return True
    if error.status == 400 and error.matches("does not exist", "Request_ResourceNotFound",
                                             "one of its queried reference-property objects are not present"):
        return True
    return False
