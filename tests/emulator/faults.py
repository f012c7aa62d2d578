"""Injected faults of the tenant emulator: HTTP errors and dropped connections on matching Graph requests.

A rule matches a path regex (and optionally a method) and fires either on the next `count` matching requests or, with
`rate`, on each matching request with that probability, drawn from the rule's own `random.Random(seed)` so a seeded
run repeats exactly. With both, `count` bounds how many faults the rule injects; a rate rule without a count stays
until the faults are cleared.

A `drop` closes the connection without an answer. Its `phase` says when: `request` (before the request is handled:
nothing happened) or `response` (after the request was handled and its effects applied: the client cannot tell
whether a write happened, as when a real network loses the answer), or `either` (50/50 from the rule's generator).
A $batch item cannot be dropped on its own: drop rules only ever drop the whole envelope.

This module imports nothing from the rest of the emulator.
"""
import datetime
import random
import re
import threading
from dataclasses import dataclass, field

FAULT_STATUSES = (429, 500, 502, 503, 504, "drop")
PHASES = ("request", "response", "either")
FIELDS = frozenset({"path", "method", "status", "count", "rate", "seed", "phase", "retry_after"})
# Every Graph path (both versions), the default of `serve --fault-path`.
ALL_GRAPH_PATHS = r"^/(v1\.0|beta)(/|$)"

# Learn graph/errors "HTTP status codes" and "Code property": the codes Graph uses for these statuses.
FAULT_ERRORS = {
    429: ("TooManyRequests", "Please retry again later."),
    500: ("generalException", "An unspecified error has occurred."),
    502: ("UnknownError", ""),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Try the request again after a delay."),
    504: ("UnknownError", ""),
}


def graph_error_body(code: str, message: str, request_id: str, client_request_id: str, details=None) -> dict:
    """Learn graph/errors: {"error": {"code", "message", "innerError": {date, request-id, ...}}}."""
    error = {
        "code": code,
        "message": message,
        "innerError": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": client_request_id,
        },
    }
    if details:
        error["details"] = details
    return {"error": error}


@dataclass
class Rejection:
    """A request the realism layer answers itself: an HTTP error, or `drop` = close the connection (before the
    request is handled, or after it when `phase` is "response")."""

    status: int | str
    headers: dict
    code: str = ""
    message: str = ""
    phase: str = "request"

    @property
    def drop(self) -> bool:
        return self.status == "drop"

    def body(self, request_id: str, client_request_id: str) -> dict:
        return graph_error_body(self.code, self.message, request_id, client_request_id)


@dataclass
class FaultRule:
    pattern: re.Pattern
    method: str | None
    status: int | str
    retry_after: int | None
    remaining: int | None        # None: no count, the rule stays until cleared
    rate: float | None           # None: every matching request
    seed: int | None
    phase: str | None            # drop rules only
    rng: random.Random = field(repr=False, default_factory=random.Random)
    injected: int = 0

    def applies_to(self, method: str, path: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return (self.method is None or self.method == method) and bool(self.pattern.search(path))

    def fires(self) -> bool:
        return self.rate is None or self.rng.random() < self.rate

    def rejection(self) -> Rejection:
        if self.status == "drop":
            phase = self.phase
            if phase == "either":
                phase = "request" if self.rng.random() < 0.5 else "response"
            return Rejection("drop", {}, phase=phase)
        headers = {}
        retry_after = self.retry_after if self.retry_after is not None else (1 if self.status == 429 else None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return Rejection(self.status, headers, *FAULT_ERRORS[self.status])

    def describe(self) -> dict:
        return {"path": self.pattern.pattern, "method": self.method, "status": self.status, "count": self.remaining,
                "rate": self.rate, "seed": self.seed, "phase": self.phase, "retry_after": self.retry_after,
                "injected": self.injected}


class FaultInjector:
    """The fault rules of one emulator; the first matching rule that fires answers the request. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []

    def add(self, spec: dict) -> dict:
        rule = parse_fault(spec)
        with self._lock:
            self._rules.append(rule)
            return rule.describe()

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def describe(self) -> list:
        with self._lock:
            return [rule.describe() for rule in self._rules
                    if rule.remaining is None or rule.remaining > 0]

    def take(self, method: str, path: str, *, can_drop: bool) -> Rejection | None:
        """The fault for this request, if a rule fires. A batch item cannot be dropped on its own, so `drop` rules
        are skipped for batch items (no draw, nothing consumed)."""
        method = method.upper()
        with self._lock:
            for rule in self._rules:
                if not rule.applies_to(method, path) or (rule.status == "drop" and not can_drop):
                    continue
                if not rule.fires():
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.injected += 1
                return rule.rejection()
        return None


def parse_fault(spec: dict) -> FaultRule:
    """A FaultRule from an admin API body; ValueError naming the first bad field."""
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object")
    unknown = sorted(set(spec) - FIELDS)
    if unknown:
        raise ValueError(f"unknown fault field '{unknown[0]}' (known: {', '.join(sorted(FIELDS))})")
    try:
        pattern = re.compile(str(spec["path"]))
    except KeyError:
        raise ValueError("'path' (a regular expression) is required") from None
    except re.error as error:
        raise ValueError(f"'path' is not a valid regular expression: {error}") from None
    status = spec.get("status", 503)
    if status not in FAULT_STATUSES:
        raise ValueError(f"'status' must be one of {list(FAULT_STATUSES)}")
    rate = _rate(spec.get("rate"))
    count = spec.get("count", None if rate is not None else 1)
    if count is not None and not _is_int(count, minimum=1):
        raise ValueError("'count' must be a positive integer")
    seed = spec.get("seed")
    if seed is not None and not _is_int(seed, minimum=None):
        raise ValueError("'seed' must be an integer")
    retry_after = spec.get("retry_after")
    if retry_after is not None and not _is_int(retry_after, minimum=0):
        raise ValueError("'retry_after' must be a non-negative integer")
    method = spec.get("method")
    if method is not None and not (isinstance(method, str) and method.strip()):
        raise ValueError("'method' must be an HTTP method such as \"POST\"")
    return FaultRule(pattern, method.strip().upper() if method else None, status, retry_after, count, rate, seed,
                     _phase(spec, status, rate), random.Random(seed))


def _rate(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError("'rate' must be a number greater than 0 and at most 1 (a probability per request)")
    return float(value)


def _phase(spec: dict, status, rate):
    if "phase" not in spec:
        if status != "drop":
            return None
        return "either" if rate is not None else "request"  # rate rules model a lossy network: both kinds
    if status != "drop":
        raise ValueError("'phase' applies only to status 'drop'")
    if spec["phase"] not in PHASES:
        raise ValueError(f"'phase' must be one of {list(PHASES)}")
    return spec["phase"]


def _is_int(value, minimum) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and (minimum is None or value >= minimum)


# ---------------------------------------------------------------------------------------------------------------
# `serve --fault STATUS:RATE[:PHASE]`


def parse_fault_option(text: str) -> dict:
    """`429:0.05`, `503:0.03`, `drop:0.02`, `drop:0.02:response` -> {"status", "rate"[, "phase"]}; ValueError with
    the reason otherwise. The path and seed come from --fault-path and --fault-seed."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"'{text}' is not STATUS:RATE[:PHASE] (for example 429:0.05 or drop:0.02:response)")
    status_text, rate_text = parts[0].strip().lower(), parts[1].strip()
    status = "drop" if status_text == "drop" else (int(status_text) if status_text.isdigit() else status_text)
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(f"'{rate_text}' in '{text}' is not a number") from None
    spec = {"status": status, "rate": rate}
    if len(parts) == 3:
        spec["phase"] = parts[2].strip().lower()
    parse_fault({"path": ALL_GRAPH_PATHS, **spec})  # same validation and messages as the admin API
    return spec


def cli_fault_specs(faults: list, path: str, seed: int | None) -> list:
    """Admin API bodies for `--fault` options: each rule gets seed+index, so rules draw independently and a given
    --fault-seed repeats the same faults."""
    return [{**spec, "path": path, **({"seed": seed + index} if seed is not None else {})}
            for index, spec in enumerate(faults)]
