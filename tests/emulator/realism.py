"""Realism switches of the tenant emulator: settings, throttling, injected faults and request statistics.

Throttling follows Microsoft Learn "Microsoft Graph service-specific throttling limits", section "Identity and
access service limits" (https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits):

| Limit type              | Resource unit quota                                  | Write quota                    |
| application+tenant pair | S 3,500 / M 5,000 / L 8,000 ResourceUnits per 10 s    | 3,000 requests per 2 min 30 s  |
| application             | 150,000 ResourceUnits per 20 s                       | 35,000 requests per 5 min      |
| tenant                  | Not applicable                                       | 18,000 requests per 5 min      |

S/M/L = under 50 / 50-500 / above 500 users. "Throttling is based on a token bucket algorithm", so every limit is a
token bucket here: capacity = the quota, refilled continuously at quota / period. The emulator holds one tenant, so
the application-wide limits (which add up an app's traffic across tenants) can never bind before the
application+tenant ones and are not modelled. A rejected request consumes nothing.

Injected faults live in faults.py. This module imports nothing else from the emulator, so tests can drive it
in-process with a fake clock.
"""
import math
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from urllib.parse import parse_qs

from faults import FAULT_ERRORS, FaultInjector, Rejection

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

RU_PERIOD_S = 10
RU_QUOTA_BY_TENANT_SIZE = ((50, 3_500), (501, 5_000), (math.inf, 8_000))  # (users below, quota)
APP_WRITE_QUOTA, APP_WRITE_PERIOD_S = 3_000, 150
TENANT_WRITE_QUOTA, TENANT_WRITE_PERIOD_S = 18_000, 300
TENANT_SIZE_REFRESH_S = 1.0  # user_count() is asked at most once a second: accounting sits on every request

# Base costs (ResourceUnits, write cost) from the same page; every other identity path costs 1 RU, and 1 write
# for POST/PATCH/PUT/DELETE. "{id}" stands for a key segment; a "me/..." cost also applies to "users/{id}/...".
BASE_COSTS = {
    ("GET", "applications"): (2, 0),
    ("GET", "applications/{id}/extensionProperties"): (2, 0),
    ("GET", "contracts"): (3, 0),
    ("POST", "directoryObjects/getByIds"): (5, 0),
    ("GET", "domains/{id}/domainNameReferences"): (4, 0),
    ("POST", "getObjectsById"): (5, 0),
    ("GET", "groups/{id}/members"): (3, 0),
    ("GET", "groups/{id}/transitiveMembers"): (5, 0),
    ("POST", "isMemberOf"): (4, 0),
    ("POST", "me/checkMemberGroups"): (4, 0),
    ("POST", "me/checkMemberObjects"): (4, 0),
    ("POST", "me/getMemberGroups"): (2, 0),
    ("POST", "me/getMemberObjects"): (2, 0),
    ("GET", "me/licenseDetails"): (2, 0),
    ("GET", "me/memberOf"): (2, 0),
    ("GET", "me/ownedObjects"): (2, 0),
    ("GET", "me/transitiveMemberOf"): (2, 0),
    ("GET", "oauth2PermissionGrants"): (2, 0),
    ("GET", "oauth2PermissionGrants/{id}"): (2, 0),
    ("GET", "servicePrincipals/{id}/appRoleAssignments"): (2, 0),
    ("GET", "subscribedSkus"): (3, 0),
    ("GET", "users"): (2, 0),
}
_BASE_COSTS_LOWER = {(method, path.lower()): cost for (method, path), cost in BASE_COSTS.items()}
_COST_PATTERNS = {}
for _method, _path in BASE_COSTS:
    _parts = tuple(_path.lower().split("/"))
    _COST_PATTERNS.setdefault(len(_parts), set()).add(_parts)
# "Using $select for directoryObjects/getByIds and getObjectsById results in 2 ResourceUnits."
SELECT_FLAT_COST_PATHS = frozenset({"directoryobjects/getbyids", "getobjectsbyid"})
_KEY_SEGMENT = re.compile(r"^([^()]+)\((.*)\)$")  # applications(appId='...') = applications/{id}


# ---------------------------------------------------------------------------------------------------------------
# Settings


@dataclass
class Settings:
    latency_ms: int = 0
    throttling: bool = True
    replication_delay_ms: int = 0
    delta_token_ttl_s: int | None = None  # None: the directory's default
    device_code_ttl_s: int = 900  # v2-oauth2-device-code: expires_in 900
    # Writes per app per 150 s. Learn documents 3,000; a lower value models an app whose budget other load (another
    # tool on the same registration) already eats, so a client must follow the limit it meets, not the documented one.
    app_write_quota: int = APP_WRITE_QUOTA
    app_write_period_s: int = APP_WRITE_PERIOD_S

    def to_dict(self) -> dict:
        return asdict(self)

    def updated(self, changes: dict) -> "Settings":
        """A copy with `changes` applied; ValueError naming the first bad key or value."""
        known = {field.name: field for field in fields(self)}
        values = self.to_dict()
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown setting '{key}'")
            values[key] = _checked_setting(key, value)
        return Settings(**values)


def _checked_setting(key: str, value):
    if key == "throttling":
        if not isinstance(value, bool):
            raise ValueError("'throttling' must be true or false")
        return value
    if key == "delta_token_ttl_s" and value is None:
        return None
    if key in ("app_write_quota", "app_write_period_s") and (isinstance(value, bool) or not isinstance(value, int)
                                                              or value < 1):
        raise ValueError(f"'{key}' must be a positive integer")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"'{key}' must be a non-negative integer")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Request cost


def request_cost(method: str, path: str, query: dict) -> tuple:
    """(ResourceUnits, writes) of one identity request. `path` may carry /v1.0 or /beta; `query` maps names to
    values (only the presence of $select/$expand and the value of $top matter)."""
    method = method.upper()
    key = _cost_path(path)
    base_ru, writes = _BASE_COSTS_LOWER.get((method, key), (1, 1 if method in WRITE_METHODS else 0))
    if _has(query, "$select") and key in SELECT_FLAT_COST_PATHS:
        return 2, writes
    ru = base_ru - _has(query, "$select") + _has(query, "$expand") - _small_top(query)
    return max(ru, 1), writes


def _cost_path(path: str) -> str:
    """The BASE_COSTS key a request path falls under ("" when none: the default cost applies)."""
    segments = _path_segments(path)
    if segments[:1] == ["users"] and len(segments) >= 3:
        segments = ["me"] + segments[2:]  # "a cost that applies to me/ also applies to users/{id | upn}/"
    for pattern in _COST_PATTERNS.get(len(segments), ()):
        if all(part == "{id}" or part == segment.lower() for part, segment in zip(pattern, segments)):
            return "/".join(pattern)
    return ""


def _path_segments(path: str) -> list:
    """Path segments without the version; `name(key)` becomes `name`, `{id}`; a trailing $ref, $value or type cast
    is dropped (it costs what the path it qualifies costs)."""
    segments = [segment for segment in path.split("?")[0].split("/") if segment]
    if segments and segments[0].lower() in ("v1.0", "beta"):
        segments = segments[1:]
    expanded = []
    for segment in segments:
        match = _KEY_SEGMENT.match(segment)
        expanded += [match.group(1), "{id}"] if match else [segment]
    while expanded and (expanded[-1] in ("$ref", "$value") or expanded[-1].lower().startswith("microsoft.graph.")):
        expanded.pop()
    return expanded


def _has(query: dict, name: str) -> int:
    return 1 if any(key.lower() == name for key in query) else 0


def _small_top(query: dict) -> int:
    """1 when $top is below 20 ("Using $top with a value of less than 20 decreases cost by 1")."""
    for key, value in query.items():
        if key.lower() == "$top":
            value = value[0] if isinstance(value, (list, tuple)) else value
            try:
                return 1 if int(value) < 20 else 0
            except (TypeError, ValueError):
                return 0
    return 0


def parse_query(query_string: str) -> dict:
    return parse_qs(query_string or "", keep_blank_values=True)


# ---------------------------------------------------------------------------------------------------------------
# Token buckets


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, capacity: float, period_s: float, now: float):
        self.capacity = capacity
        self.rate = capacity / period_s
        self.tokens = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def resize(self, capacity: float, period_s: float) -> None:
        if capacity != self.capacity or capacity / period_s != self.rate:
            self.capacity, self.rate = capacity, capacity / period_s
            self.tokens = min(self.tokens, capacity)

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` tokens are available (0 when they are)."""
        missing = amount - self.tokens
        return 0.0 if missing <= 1e-9 else missing / self.rate  # tolerance: refills are float arithmetic


class Throttle:
    """Token buckets per app (RU, writes) and for the tenant (writes). Thread-safe; O(1) per request."""

    def __init__(self, tenant_id: str, user_count, clock=time.monotonic):
        self._tenant_id = tenant_id
        self._user_count = user_count
        self._clock = clock
        self._lock = threading.Lock()
        self._app_ru, self._app_writes = {}, {}
        self._tenant_writes = TokenBucket(TENANT_WRITE_QUOTA, TENANT_WRITE_PERIOD_S, clock())
        self._ru_quota, self._size_checked_at = None, -math.inf

    def reset(self) -> None:
        with self._lock:
            self._app_ru.clear()
            self._app_writes.clear()
            self._tenant_writes = TokenBucket(TENANT_WRITE_QUOTA, TENANT_WRITE_PERIOD_S, self._clock())
            self._ru_quota, self._size_checked_at = None, -math.inf

    def admit(self, app_id: str, ru: int, writes: int, write_quota: int = APP_WRITE_QUOTA,
              write_period_s: int = APP_WRITE_PERIOD_S) -> Rejection | None:
        """Take `ru` resource units and `writes` writes for `app_id`, or say why and for how long it must wait."""
        quota = self._tenant_ru_quota()  # before taking our lock: counting users takes the directory's lock
        with self._lock:
            now = self._clock()
            buckets = self._buckets(app_id, now, quota, ru, writes, write_quota, write_period_s)
            waits = [(bucket.wait_for(amount), scope) for bucket, amount, scope in buckets]
            longest, scope = max(waits, key=lambda wait: wait[0])
            if longest > 0:
                return self._rejection(app_id, longest, scope)
            for bucket, amount, _ in buckets:
                bucket.tokens -= amount
        return None

    def _buckets(self, app_id: str, now: float, quota: int, ru: int, writes: int,
                 write_quota: int = APP_WRITE_QUOTA, write_period_s: int = APP_WRITE_PERIOD_S) -> list:
        """(bucket, amount to take, x-ms-throttle-scope prefix) of every limit this request counts against."""
        ru_bucket = self._app_ru.get(app_id)
        if ru_bucket is None:
            ru_bucket = self._app_ru[app_id] = TokenBucket(quota, RU_PERIOD_S, now)
        ru_bucket.refill(now)
        ru_bucket.resize(quota, RU_PERIOD_S)
        buckets = [(ru_bucket, ru, "Tenant_Application/ReadWrite")]
        if writes:
            write_bucket = self._app_writes.get(app_id)
            if write_bucket is None:
                write_bucket = self._app_writes[app_id] = TokenBucket(write_quota, write_period_s, now)
            write_bucket.refill(now)
            write_bucket.resize(write_quota, write_period_s)
            self._tenant_writes.refill(now)
            buckets += [(write_bucket, writes, "Tenant_Application/Write"), (self._tenant_writes, writes, "Tenant/Write")]
        return buckets

    def _tenant_ru_quota(self) -> int:
        """S/M/L quota from the tenant's user count, re-read at most once a second (a racing refresh is harmless)."""
        now = self._clock()
        quota = self._ru_quota
        if quota is None or now - self._size_checked_at >= TENANT_SIZE_REFRESH_S:
            users = self._user_count()
            quota = next(limit for below, limit in RU_QUOTA_BY_TENANT_SIZE if users < below)
            self._ru_quota, self._size_checked_at = quota, now
        return quota

    def _rejection(self, app_id: str, wait_s: float, scope: str) -> Rejection:
        # Retry-After: whole seconds until enough budget returns, at least 1.
        retry_after = max(1, math.ceil(wait_s))
        subject = self._tenant_id
        information = "WriteLimitExceeded" if scope.endswith("/Write") else "ResourceUnitLimitExceeded"
        return Rejection(429, {
            "Retry-After": str(retry_after),
            # Learn throttling-limits "Throttled responses requests": x-ms-throttle-scope / -information.
            "x-ms-throttle-scope": f"{scope}/{app_id}/{subject}",
            "x-ms-throttle-information": information,
        }, *FAULT_ERRORS[429])


# ---------------------------------------------------------------------------------------------------------------
# Statistics


class Stats:
    """Counters the admin API reports. `requests` counts Graph HTTP requests (a $batch envelope is one);
    `by_method`, `writes` and `batch_items` count operations, i.e. batch items and top-level non-batch requests."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts, self._by_method, self._faults_by_status = self._zero(), {}, {}

    def reset(self) -> None:
        with self._lock:
            self._counts, self._by_method, self._faults_by_status = self._zero(), {}, {}

    @staticmethod
    def _zero() -> dict:
        return {"requests": 0, "writes": 0, "batch_items": 0, "throttled": 0, "faults": 0, "token_requests": 0}

    def http_request(self) -> None:
        self._add("requests")

    def operation(self, method: str, *, batch_item: bool) -> None:
        method = method.upper()
        with self._lock:
            self._by_method[method] = self._by_method.get(method, 0) + 1
            if method in WRITE_METHODS:
                self._counts["writes"] += 1
            if batch_item:
                self._counts["batch_items"] += 1

    def throttled(self) -> None:
        self._add("throttled")

    def fault(self, status) -> None:
        """One injected fault; `faults_by_status` keys are "429", "503", ... and "drop"."""
        with self._lock:
            self._counts["faults"] += 1
            self._faults_by_status[str(status)] = self._faults_by_status.get(str(status), 0) + 1

    def token_request(self) -> None:
        self._add("token_requests")

    def snapshot(self) -> dict:
        with self._lock:
            return {**self._counts, "by_method": dict(self._by_method),
                    "faults_by_status": dict(self._faults_by_status)}

    def _add(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1


# ---------------------------------------------------------------------------------------------------------------
# The realism layer as the server uses it


class Realism:
    """Settings + throttling + faults + stats behind two calls: `gate_request` (top level) and `gate_item`."""

    def __init__(self, defaults: Settings, tenant_id: str, user_count, clock=time.monotonic, default_faults=()):
        self.defaults = defaults
        self.settings = defaults
        self.stats = Stats()
        self.faults = FaultInjector()
        self.default_faults = list(default_faults)  # `serve --fault` rules: installed again (fresh seeds) on reset
        for spec in self.default_faults:
            self.faults.add(spec)
        self.throttle = Throttle(tenant_id, user_count, clock)
        self._settings_lock = threading.Lock()

    def reset(self) -> None:
        with self._settings_lock:
            self.settings = self.defaults
        self.stats.reset()
        self.faults.clear()
        for spec in self.default_faults:
            self.faults.add(spec)
        self.throttle.reset()

    def update_settings(self, changes: dict) -> Settings:
        with self._settings_lock:
            self.settings = self.settings.updated(changes)
            return self.settings

    def latency(self) -> None:
        delay_ms = self.settings.latency_ms
        if delay_ms:
            time.sleep(delay_ms / 1000)

    def gate_request(self, claims: dict, method: str, path: str, query: dict, *, is_batch: bool):
        """Faults, then throttling, for a top-level Graph request: (rejection or None, drop the connection after
        answering). The $batch envelope itself is not throttled; its items are, each on its own, through gate_item
        (Learn json-batching, "Throttling and batching"). A response-phase drop lets the request run (throttling
        included) and only loses its answer."""
        if not is_batch:
            self.stats.operation(method, batch_item=False)
        rejection = self._fault(method, path, can_drop=True)
        drop_after = rejection is not None and rejection.drop and rejection.phase == "response"
        if drop_after:
            rejection = None
        if rejection is None and not is_batch:
            rejection = self._throttle(claims, method, path, query)
        return rejection, drop_after

    def gate_item(self, claims: dict, method: str, path: str, query_string: str) -> Rejection | None:
        self.stats.operation(method, batch_item=True)
        rejection = self._fault(method, path, can_drop=False)
        if rejection is None:
            rejection = self._throttle(claims, method, path, parse_query(query_string))
        return rejection

    def _fault(self, method: str, path: str, *, can_drop: bool) -> Rejection | None:
        rejection = self.faults.take(method, path, can_drop=can_drop)
        if rejection is not None:
            self.stats.fault(rejection.status)
        return rejection

    def _throttle(self, claims: dict, method: str, path: str, query: dict) -> Rejection | None:
        if not self.settings.throttling:
            return None
        ru, writes = request_cost(method, path, query)
        rejection = self.throttle.admit(str(claims.get("appid", "")), ru, writes, self.settings.app_write_quota,
                                        self.settings.app_write_period_s)
        if rejection is not None:
            self.stats.throttled()
        return rejection


def new_request_id() -> str:
    return str(uuid.uuid4())
