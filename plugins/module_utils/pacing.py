# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pacing writes under Microsoft Graph's write limit instead of finding it by hitting it.

Microsoft Graph allows an application 3,000 writes per 2 min 30 s in a tenant and answers the excess with 429 and
``Retry-After`` ("Identity and access service limits", https://learn.microsoft.com/graph/throttling-limits); it
counts them with a token bucket, and asks clients to back off because clients that keep hitting a limit are
throttled longer (https://learn.microsoft.com/graph/throttling#best-practices-to-handle-throttling).

``WritePacer`` mirrors that bucket on our side, per (tenant, application):

* until the service says otherwise the pace is free: a tenant without throttling (the emulator's option) or a
  load under the limit is never slowed;
* the first **throttling signal** (a 429 that names a throttle scope, ``x-ms-throttle-scope``, or a wave in which
  most writes were answered 429) switches to the documented bucket, empty: writes are then sent at the rate that
  will be accepted, after the ``Retry-After`` the service gave;
* a further 429 while paced means the real limit is lower (another app's load, a smaller tenant): the rate drops to
  what was actually accepted recently (never below a floor) and creeps back up after a clean minute, never above
  the documented rate; a lone 429 without a throttle scope among accepted writes is a transient fault, not a
  signal, and so are 503s and dropped connections;
* a **shared** pacer keeps the bucket in the idsync store, so two workflows or two ``ansible-playbook`` runs on the
  same application share one budget instead of each assuming it has it all.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import threading
import time

DOCUMENTED_WRITES = 3000          # per application per tenant ...
DOCUMENTED_PERIOD_S = 150.0       # ... per 2 min 30 s
DOCUMENTED_RATE = DOCUMENTED_WRITES / DOCUMENTED_PERIOD_S
MIN_RATE = 1.0
RECOVERY_S = 60.0                 # a minute without a 429 lets the rate climb back
MEASURE_S = 2.0                   # a lowered rate is measured over at least this long
THROTTLED_SHARE = 0.5             # an envelope with at least this share answered 429 is throttling, headers or not,
SHARE_SAMPLE = 10                 # ... when it held at least this many writes (a tail of 3 retries proves nothing)
FREE_RECHECK_S = 1.0              # while no limit is known, the shared state is re-read at most once a second


class BucketState(object):
    """The mirrored bucket: ``paced`` (a limit is known), ``rate`` (writes/s), ``tokens``, ``updated`` (epoch s),
    ``blocked_until`` (epoch s: a Retry-After), ``last_429`` (epoch s); ``accepted`` writes accepted (by every
    process sharing the bucket) since ``since``, the last time the rate changed: what the service really takes."""
    __slots__ = ("paced", "rate", "tokens", "updated", "blocked_until", "last_429", "accepted", "since")

    def __init__(self, paced=False, rate=DOCUMENTED_RATE, tokens=0.0, updated=0.0, blocked_until=0.0, last_429=0.0,
                 accepted=0, since=0.0):
        self.paced = paced
        self.rate = rate
        self.tokens = tokens
        self.updated = updated
        self.blocked_until = blocked_until
        self.last_429 = last_429
        self.accepted = accepted
        self.since = since

    @property
    def capacity(self):
        return DOCUMENTED_WRITES * self.rate / DOCUMENTED_RATE

    def refill(self, now):
        if self.updated:
            self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now

    def to_json(self):
        return json.dumps(dict((k, getattr(self, k)) for k in self.__slots__), separators=(",", ":"))

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text) if text else {}
            return cls(**dict((k, data[k]) for k in cls.__slots__ if k in data))
        except (ValueError, TypeError):
            return cls()


class MemoryBucket(object):
    """Where a pacer keeps its state when nothing is shared (one process)."""

    def __init__(self, clock=time.time):
        self._state = BucketState()
        self._clock = clock
        self._lock = threading.Lock()

    def update(self, change):
        """Apply ``change(state, now)`` atomically; returns what it returns."""
        with self._lock:
            return change(self._state, self._clock())


class StoreBucket(object):
    """The bucket in the idsync store (one row per tenant and application), changed in a store transaction, so
    every process using that application draws from one budget. It keeps a connection of its own (writes are
    sent from several threads)."""

    def __init__(self, store_location, tenant_id, application_id, clock=time.time):
        self.store_location = store_location
        self._clock = clock
        self.key = "%s/%s" % (tenant_id, application_id)
        self._store = None
        self._free_until = 0.0
        self._lock = threading.Lock()

    def update(self, change):
        with self._lock:
            now = self._clock()
            if self._free_until > now:
                # No limit known a moment ago: unless this change sets one, nothing to write (no store round trip).
                probe = BucketState()
                result = change(probe, now)
                if not probe.paced:
                    return result
            if self._store is None:
                from ansible_collections.idsync.entra.plugins.module_utils.store import Store
                self._store = Store(self.store_location, shared_between_threads=True)
            state, result = self._store.update_state("pacing:graph-writes", self.key,
                                                     lambda text: self._apply(text, change, now))
            # Another process's limit is noticed within a second.
            self._free_until = 0.0 if state.paced else now + FREE_RECHECK_S
            return result

    def close(self):
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @staticmethod
    def _apply(text, change, now):
        state = BucketState.from_json(text)
        result = change(state, now)
        return state.to_json(), (state, result)


class WritePacer(object):
    """Token bucket for writes, learning the limit from the service. ``acquire(n)`` blocks until ``n`` writes may
    be sent; ``record(accepted, throttled, retry_after, scoped)`` tells it how a wave was answered."""

    def __init__(self, bucket=None, sleep=time.sleep, clock=time.time):
        self.bucket = bucket or MemoryBucket(clock)
        self._sleep = sleep
        self._clock = clock
        self.waited_s = 0.0               # time spent waiting on the limit, for the report

    # -- asking ----------------------------------------------------------------------------------------------
    def acquire(self, count):
        """Wait until ``count`` writes fit the bucket, then take them. Free while no limit is known."""
        while True:
            wait = self.bucket.update(lambda state, now: self._take(state, now, count))
            if wait <= 0:
                return
            self.waited_s += wait
            self._sleep(wait)

    @staticmethod
    def _take(state, now, count):
        if not state.paced:
            return 0.0
        if now < state.blocked_until:
            return state.blocked_until - now
        state.refill(now)
        # A wave larger than the bucket is let through once the bucket is full (it cannot fill any further).
        need = min(float(count), state.capacity)
        if state.tokens + 1e-9 >= need:
            state.tokens -= count
            return 0.0
        return (need - state.tokens) / state.rate

    def status(self):
        """(paced, rate, seconds until the next write may go) for progress lines and reports."""
        def look(state, now):
            wait = max(0.0, state.blocked_until - now)
            return state.paced, state.rate, wait
        return self.bucket.update(look)

    # -- learning --------------------------------------------------------------------------------------------
    def record(self, accepted, throttled, retry_after=None, scoped=False):
        """How ``accepted + throttled`` writes were answered. A throttling signal switches pacing on (or lowers the
        rate when it was on); a quiet minute lets the rate climb back towards the documented one."""
        total = accepted + throttled
        signal = bool(throttled) and (scoped or (total >= SHARE_SAMPLE and throttled >= THROTTLED_SHARE * total))
        if signal:
            self.bucket.update(lambda state, now: self._throttled(state, now, accepted, retry_after))
        elif accepted:
            self.bucket.update(lambda state, now: self._accepted(state, now, accepted))
        return signal

    @staticmethod
    def _throttled(state, now, accepted, retry_after):
        state.accepted += accepted
        if not state.paced:
            state.paced = True
            state.rate = DOCUMENTED_RATE
            state.since = now
            state.accepted = 0
        elif now - state.since >= MEASURE_S:
            # Paced and still refused: the real limit is lower than ours (another app's load, a smaller tenant).
            # What every process got accepted since the rate was set is what the service takes.
            observed = state.accepted / (now - state.since)
            state.rate = max(MIN_RATE, min(state.rate * 0.9, observed))
            state.since = now
            state.accepted = 0
        state.tokens = 0.0
        state.updated = now
        state.last_429 = now
        state.blocked_until = max(state.blocked_until, now + (retry_after if retry_after is not None else 1.0))

    @staticmethod
    def _accepted(state, now, accepted):
        if not state.paced:
            return
        state.accepted += accepted
        if state.rate < DOCUMENTED_RATE and now - state.last_429 > RECOVERY_S:
            state.rate = min(DOCUMENTED_RATE, state.rate * 1.1)     # climb back in steps, never past the documented
            state.last_429 = now - RECOVERY_S / 2
            state.since = now
            state.accepted = 0
