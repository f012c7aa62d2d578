# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Waiting out Entra ID replication delay (after terraform-provider-azuread's helpers/consistency).

Right after a create, Graph may still answer 404 ``Request_ResourceNotFound`` for the new object, and
``POST /servicePrincipals`` may fail 400 ``NoBackingApplicationObject`` ("… does not reference a valid
application object"). The helpers here repeat a call while it fails that way, and treat an object as
there only after N consecutive good reads (one good read can come from a replica that is ahead of the
next one). Everything is bounded by a timeout; other errors are raised at once.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import random
import time

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConsistencyTimeout, GraphError

DEFAULT_TIMEOUT = 120.0
DEFAULT_CONSECUTIVE = 3

REPLICATION_CODES = ("Request_ResourceNotFound", "ResourceNotFound", "NoBackingApplicationObject")
REPLICATION_MESSAGES = (
    "does not reference a valid application object",
    "does not exist or one of its queried reference-property objects are not present",
)


def is_replication_error(error, extra_codes=(), extra_messages=()):
    """True for the errors that mean "the object you just created has not reached this replica yet"."""
    if not isinstance(error, GraphError):
        return False
    if error.status == 404:
        return error.code in REPLICATION_CODES + tuple(extra_codes) or error.matches(*REPLICATION_MESSAGES)
    if error.status == 400:
        return error.code in ("NoBackingApplicationObject",) + tuple(extra_codes) \
            or error.matches("NoBackingApplicationObject", *(REPLICATION_MESSAGES[:1] + tuple(extra_messages)))
    return False


def _interval(interval, max_interval, n):
    base = min(max_interval, interval * (1.5 ** max(0, n - 1)))
    return base * (0.8 + 0.4 * random.random())


def wait_for(fn, is_ready=None, timeout=DEFAULT_TIMEOUT, consecutive=DEFAULT_CONSECUTIVE, interval=1.0,
             max_interval=10.0, retry_on=is_replication_error, description=None, sleep=time.sleep,
             clock=time.monotonic):
    """Call ``fn()`` until ``is_ready(result)`` holds for ``consecutive`` calls in a row; return the last result.

    A call that raises an error for which ``retry_on(error)`` is true counts as "not ready" (and resets the
    run of good reads); any other exception propagates. Raises ConsistencyTimeout after ``timeout`` seconds.
    """
    is_ready = is_ready or (lambda result: True)
    consecutive = max(1, int(consecutive))
    deadline = clock() + float(timeout)
    good = 0
    attempts = 0
    waits = 0
    last_error = None
    while True:
        attempts += 1
        try:
            result = fn()
        except Exception as exc:  # pylint: disable=broad-except
            if not retry_on(exc):
                raise
            last_error = exc
            good = 0
        else:
            if is_ready(result):
                good += 1
                if good >= consecutive:
                    return result
            else:
                good = 0
        # A short pause between consecutive good reads, a growing one while still waiting.
        delay = min(interval, 1.0) if good else _interval(interval, max_interval, waits + 1)
        if not good:
            waits += 1
        if clock() + delay > deadline:
            what = description or "the object"
            details = {"attempts": attempts, "timeout": timeout, "consecutive": consecutive}
            if isinstance(last_error, GraphError):
                details.update({"last_status": last_error.status, "last_code": last_error.code,
                                "request_id": last_error.request_id})
            raise ConsistencyTimeout(
                "Waited {0:.0f} seconds for {1} to replicate across Entra ID and it was still not consistently "
                "there: run again, or raise the timeout.".format(float(timeout), what), details)
        sleep(delay)


def retry_until_consistent(fn, timeout=DEFAULT_TIMEOUT, interval=1.0, max_interval=10.0,
                           retry_on=is_replication_error, description=None, sleep=time.sleep, clock=time.monotonic):
    """Call ``fn()`` (a read, or a write the service rejected without applying, such as
    ``POST /servicePrincipals`` -> 400 NoBackingApplicationObject) until it stops failing with a replication
    error; return its result. One success is enough."""
    return wait_for(fn, timeout=timeout, consecutive=1, interval=interval, max_interval=max_interval,
                    retry_on=retry_on, description=description, sleep=sleep, clock=clock)


def wait_for_object(graph, path, params=None, timeout=DEFAULT_TIMEOUT, consecutive=DEFAULT_CONSECUTIVE,
                    is_ready=None, interval=1.0, sleep=time.sleep, clock=time.monotonic):
    """GET ``path`` until it is found (and ``is_ready(obj)``) ``consecutive`` times in a row; return the object."""
    return wait_for(lambda: graph.get(path, params=params), is_ready=is_ready, timeout=timeout,
                    consecutive=consecutive, interval=interval, description=path, sleep=sleep, clock=clock)


def wait_for_deletion(graph, path, timeout=DEFAULT_TIMEOUT, consecutive=DEFAULT_CONSECUTIVE, interval=1.0,
                      sleep=time.sleep, clock=time.monotonic):
    """GET ``path`` until it answers 404 ``consecutive`` times in a row."""
    def probe():
        try:
            graph.get(path)
        except GraphError as exc:
            if exc.is_not_found:
                return False
            raise
        return True

    wait_for(probe, is_ready=lambda exists: not exists, timeout=timeout, consecutive=consecutive,
             interval=interval, retry_on=lambda exc: False, description="the deletion of " + path,
             sleep=sleep, clock=clock)
    return True
