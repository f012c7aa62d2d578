"""Conformance of the emulator's realism switches and admin API: latency, throttling (Microsoft Learn
"Microsoft Graph service-specific throttling limits", identity and access), injected faults, path normalisation,
statistics. Over HTTP with plain requests, plus in-process checks of the token-bucket arithmetic."""
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emulator"))
import realism  # noqa: E402  (the emulator's own module, driven in-process with a fake clock)

EXPENSIVE_GET = "/groups/00000000-0000-0000-0000-000000000001/transitiveMembers?$expand=members"  # 5 + 1 RU


def admin_request(entra, method, path, headers=None, **kwargs):
    return requests.request(method, f"{entra.base_url}/_emulator/{path}", headers=headers or {},
                            verify=entra.ca_path, timeout=30, **kwargs)


def key_header(emulator):
    return {"X-Emulator-Key": emulator.endpoints["emulator_key"]}


def batch(entra, token, items, version="v1.0"):
    body = {"requests": [{"id": str(index), "method": method, "url": url}
                         for index, (method, url) in enumerate(items, start=1)]}
    response = entra.graph("POST", f"/{version}/$batch", token, json=body)
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["responses"]}


def drain_until_throttled(entra, token, max_envelopes=80):
    """Spend resource units through $batch (20 expensive items per HTTP request) until an item gets 429."""
    for _ in range(max_envelopes):
        items = batch(entra, token, [("GET", EXPENSIVE_GET)] * 20)
        throttled = [item for item in items.values() if item["status"] == 429]
        if throttled:
            return throttled[0]
    return None


def top_level_until_throttled(entra, token, max_requests=200):
    """Top-level requests while another thread keeps the app's bucket empty through $batch (one client alone cannot
    outpace the 350 RU/s refill of a small tenant over TLS). Returns the first 429 response, else the last one."""
    stop = threading.Event()

    def keep_draining():
        for _ in range(200):
            if stop.is_set():
                return
            batch(entra, token, [("GET", EXPENSIVE_GET)] * 20)

    drainer = threading.Thread(target=keep_draining, daemon=True)
    drainer.start()
    try:
        for _ in range(max_requests):
            response = entra.graph("GET", "/v1.0" + EXPENSIVE_GET, token)
            if response.status_code == 429:
                break
    finally:
        stop.set()
        drainer.join(timeout=30)
    return response


# -- admin API --------------------------------------------------------------------------------------------------


def test_admin_api_needs_the_emulator_key(entra, emulator):
    assert admin_request(entra, "GET", "stats").status_code == 401
    assert admin_request(entra, "GET", "stats", {"X-Emulator-Key": "guess"}).status_code == 403
    assert admin_request(entra, "GET", "stats", key_header(emulator)).status_code == 200


def test_graph_token_never_opens_the_admin_api(entra):
    bearer = {"Authorization": f"Bearer {entra.app_token()}"}
    assert admin_request(entra, "GET", "stats", bearer).status_code == 401
    assert admin_request(entra, "POST", "reset", {**bearer, "X-Emulator-Key": "guess"}).status_code == 403


def test_settings_round_trip_and_validation(entra, emulator):
    defaults = emulator.admin("GET", "settings")
    assert defaults == {"latency_ms": 0, "throttling": True, "replication_delay_ms": 0, "delta_token_ttl_s": None,
                        "device_code_ttl_s": 900, "app_write_quota": 3000, "app_write_period_s": 150}
    changed = emulator.admin("PUT", "settings", {"latency_ms": 5, "throttling": False, "replication_delay_ms": 250,
                                                 "delta_token_ttl_s": 60})
    assert changed["latency_ms"] == 5 and changed["throttling"] is False and changed["delta_token_ttl_s"] == 60
    for bad in ({"latency_ms": -1}, {"throttling": "yes"}, {"no_such_setting": 1}):
        assert admin_request(entra, "PUT", "settings", key_header(emulator), json=bad).status_code == 400
    emulator.reset()
    assert emulator.admin("GET", "settings") == defaults


def test_reset_clears_faults_and_stats(entra, emulator):
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "count": 5, "status": 503})
    entra.graph("GET", "/v1.0/users", entra.app_token())
    emulator.reset()
    assert emulator.admin("GET", "faults") == {"faults": []}
    assert emulator.admin("GET", "stats")["requests"] == 0
    assert entra.graph("GET", "/v1.0/users", entra.app_token()).status_code == 200


def test_seed_generate_dump_and_expire_delta_tokens(emulator):
    before = len(emulator.admin("GET", "dump")["objects"]["user"])
    assert emulator.admin("POST", "seed", {"generate": {"users": 60, "groups": 3}})["users"] == before + 60
    assert len(emulator.admin("GET", "dump")["objects"]["user"]) == before + 60
    assert emulator.admin("POST", "expire-delta-tokens") is None
    emulator.reset()
    assert len(emulator.admin("GET", "dump")["objects"]["user"]) == before


# -- latency -----------------------------------------------------------------------------------------------------


def test_latency_delays_graph_requests(entra, emulator):
    token = entra.app_token()
    emulator.admin("PUT", "settings", {"latency_ms": 400})
    started = time.monotonic()
    assert entra.graph("GET", "/v1.0/organization", token).status_code == 200
    assert time.monotonic() - started >= 0.4


# -- faults ------------------------------------------------------------------------------------------------------


def test_fault_429_hits_matching_requests_only(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "method": "GET", "count": 2, "status": 429})
    assert entra.graph("GET", "/v1.0/groups", token).status_code == 200
    assert entra.graph("GET", "/v1.0/users/00000000-0000-0000-0000-000000000009", token).status_code == 404
    for _ in range(2):
        response = entra.graph("GET", "/v1.0/users", token)
        error = entra.assert_graph_error(response, 429, "TooManyRequests")
        assert error["message"] == "Please retry again later."
        assert int(response.headers["Retry-After"]) >= 1
    assert entra.graph("GET", "/v1.0/users", token).status_code == 200
    assert emulator.admin("GET", "stats")["faults"] == 2


def test_fault_method_filter(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "/users", "method": "POST", "count": 1, "status": 500})
    assert entra.graph("GET", "/v1.0/users", token).status_code == 200
    response = entra.graph("POST", "/v1.0/users", token, json={})
    entra.assert_graph_error(response, 500, "generalException")


def test_fault_503(entra, emulator):
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/organization", "count": 1, "status": 503})
    response = entra.graph("GET", "/v1.0/organization", entra.app_token())
    entra.assert_graph_error(response, 503, "serviceNotAvailable")


def test_fault_drop_closes_the_connection(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "count": 1, "status": "drop"})
    with pytest.raises(requests.ConnectionError):
        entra.graph("GET", "/v1.0/users", token)
    assert entra.graph("GET", "/v1.0/users", token).status_code == 200


def test_faults_apply_to_batch_items(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "count": 1, "status": 429})
    items = batch(entra, token, [("GET", "/users"), ("GET", "/users"), ("GET", "/organization")])
    statuses = sorted(item["status"] for item in items.values())
    assert statuses == [200, 200, 429]
    throttled = next(item for item in items.values() if item["status"] == 429)
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
    assert int(throttled["headers"]["Retry-After"]) >= 1


def test_delete_faults_and_validation(entra, emulator):
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "count": 3, "status": 502})
    assert admin_request(entra, "DELETE", "faults", key_header(emulator)).status_code == 204
    assert entra.graph("GET", "/v1.0/users", entra.app_token()).status_code == 200
    for bad in ({"path": "("}, {"path": "x", "status": 418}, {"path": "x", "count": 0}, {"status": 503}):
        assert admin_request(entra, "POST", "faults", key_header(emulator), json=bad).status_code == 400


# -- path normalisation ------------------------------------------------------------------------------------------


def test_double_slashes_are_collapsed(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/organization$", "count": 1, "status": 503})
    assert entra.graph("GET", "/v1.0//organization", token).status_code == 503  # matched as /v1.0/organization
    plain, doubled = entra.graph("GET", "/v1.0/organization", token), entra.graph("GET", "/v1.0///organization", token)
    assert plain.status_code == doubled.status_code == 200
    assert plain.json()["value"] == doubled.json()["value"]


# -- throttling --------------------------------------------------------------------------------------------------


def test_throttling_gives_429_with_retry_after(entra, emulator):
    token = entra.app_token()
    item = drain_until_throttled(entra, token)
    assert item is not None, "the resource-unit bucket never ran dry"
    assert item["body"]["error"]["code"] == "TooManyRequests"
    assert int(item["headers"]["Retry-After"]) >= 1
    # The same bucket throttles top-level requests of this app.
    response = top_level_until_throttled(entra, token)
    error = entra.assert_graph_error(response, 429, "TooManyRequests")
    assert error["message"] == "Please retry again later."
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 10
    assert response.headers["x-ms-throttle-scope"].startswith(
        f"Tenant_Application/ReadWrite/{emulator.admin_app['client_id']}/")
    assert emulator.admin("GET", "stats")["throttled"] >= 2
    time.sleep(retry_after)
    assert entra.graph("GET", "/v1.0/organization", token).status_code == 200


def test_batch_envelope_is_not_throttled(entra, emulator):
    token = entra.app_token()
    assert drain_until_throttled(entra, token) is not None
    items = batch(entra, token, [("GET", EXPENSIVE_GET)] * 20)  # the envelope still answers 200
    assert any(item["status"] == 429 for item in items.values())


def test_throttling_off(entra, emulator):
    emulator.admin("PUT", "settings", {"throttling": False})
    assert drain_until_throttled(entra, entra.app_token(), max_envelopes=35) is None  # 4,200 RU > 3,500


# -- statistics --------------------------------------------------------------------------------------------------


def test_stats_count_requests_writes_and_batch_items(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "stats/reset")
    entra.graph("GET", "/v1.0/users", token)
    entra.graph("GET", "/v1.0/groups", token)
    entra.graph("PATCH", "/v1.0/users/00000000-0000-0000-0000-000000000009", token, json={"city": "Oslo"})
    batch(entra, token, [("GET", "/users"), ("DELETE", "/groups/00000000-0000-0000-0000-000000000009"),
                         ("GET", "/organization")])
    stats = emulator.admin("GET", "stats")
    assert stats["requests"] == 4  # three top-level requests + one $batch envelope
    assert stats["batch_items"] == 3
    assert stats["writes"] == 2  # the PATCH and the batched DELETE
    assert stats["by_method"] == {"GET": 4, "PATCH": 1, "DELETE": 1}
    assert stats["throttled"] == 0 and stats["token_requests"] == 0
    entra.app_token()
    assert emulator.admin("GET", "stats")["token_requests"] == 1


def test_every_response_carries_request_ids(entra, emulator):
    sent = {"client-request-id": "0f0f0f0f-1111-2222-3333-444444444444"}
    responses = [
        entra.graph("GET", "/v1.0/organization", entra.app_token(), headers=sent),
        requests.get(f"{entra.base_url}/{entra.tenant_id}/v2.0/.well-known/openid-configuration", headers=sent,
                     verify=entra.ca_path, timeout=30),
        admin_request(entra, "GET", "stats", {**sent, **key_header(emulator)}),
    ]
    for response in responses:
        assert response.headers["client-request-id"] == sent["client-request-id"]
        assert response.headers["request-id"]


# -- token buckets, in-process -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("method, path, query, cost", [
    ("GET", "/v1.0/users", {}, (2, 0)),
    ("GET", "/v1.0/users", {"$select": ["id"]}, (1, 0)),
    ("GET", "/v1.0/users", {"$top": ["5"]}, (1, 0)),
    ("GET", "/v1.0/users/abc", {}, (1, 0)),
    ("GET", "/v1.0/applications", {"$expand": ["owners"]}, (3, 0)),
    ("GET", "/v1.0/groups/g1/members", {}, (3, 0)),
    ("GET", "/v1.0/groups/g1/members/$ref", {}, (3, 0)),
    ("GET", "/v1.0/groups/g1/transitiveMembers", {"$expand": ["x"]}, (6, 0)),
    ("GET", "/v1.0/users/u1/memberOf", {}, (2, 0)),  # "me/" costs apply to users/{id}/
    ("POST", "/v1.0/directoryObjects/getByIds", {"$select": ["id"]}, (2, 0)),
    ("POST", "/v1.0/users", {}, (1, 1)),
    ("PATCH", "/v1.0/applications(appId='x')", {"$select": ["id"]}, (1, 1)),
    ("DELETE", "/beta/groups/g1/members/u1/$ref", {}, (1, 1)),
])
def test_request_costs(method, path, query, cost):
    assert realism.request_cost(method, path, query) == cost


def test_small_tenant_resource_unit_bucket():
    clock = FakeClock()
    throttle = realism.Throttle("tenant", lambda: 10, clock)
    assert all(throttle.admit("app", 2, 0) is None for _ in range(1750))  # 3,500 RU per 10 s
    rejection = throttle.admit("app", 2, 0)
    assert rejection.status == 429 and rejection.headers["Retry-After"] == "1"
    assert rejection.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert throttle.admit("other-app", 2, 0) is None  # the bucket is per app
    clock.now += 2 / 350  # refilled at 350 RU/s
    assert throttle.admit("app", 2, 0) is None


def test_retry_after_is_the_time_until_enough_budget():
    clock = FakeClock()
    throttle = realism.Throttle("tenant", lambda: 10, clock)
    assert throttle.admit("app", 3500, 0) is None
    assert throttle.admit("app", 1400, 0).headers["Retry-After"] == "4"  # 1,400 RU at 350 RU/s


@pytest.mark.parametrize("users, quota", [(49, 3500), (50, 5000), (500, 5000), (501, 8000)])
def test_quota_by_tenant_size(users, quota):
    throttle = realism.Throttle("tenant", lambda: users, FakeClock())
    assert throttle.admit("app", quota, 0) is None
    assert throttle.admit("app", 1, 0) is not None


def test_app_write_limit():
    clock = FakeClock()
    throttle = realism.Throttle("tenant", lambda: 10, clock)
    assert all(throttle.admit("app", 1, 1) is None for _ in range(3000))  # 3,000 writes per 2 min 30 s
    rejection = throttle.admit("app", 1, 1)
    assert rejection.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert rejection.headers["x-ms-throttle-scope"].startswith("Tenant_Application/Write/app/")
    assert throttle.admit("app", 1, 0) is None  # reads still pass
    clock.now += 1 / 20  # writes refill at 20 per second
    assert throttle.admit("app", 1, 1) is None


def test_tenant_write_limit_spans_apps():
    clock = FakeClock()
    throttle = realism.Throttle("tenant", lambda: 10, clock)
    for app in range(6):  # 18,000 writes per 5 min per tenant
        assert all(throttle.admit(f"app{app}", 1, 1) is None for _ in range(3000))
    rejection = throttle.admit("app6", 1, 1)
    assert rejection.headers["x-ms-throttle-scope"].startswith("Tenant/Write/")


def test_rejected_requests_consume_nothing():
    clock = FakeClock()
    throttle = realism.Throttle("tenant", lambda: 10, clock)
    assert throttle.admit("app", 3499, 0) is None
    for _ in range(100):
        assert throttle.admit("app", 2, 0) is not None
    assert throttle.admit("app", 1, 0) is None


def test_settings_validation():
    settings = realism.Settings()
    assert settings.updated({"latency_ms": 10}).latency_ms == 10
    with pytest.raises(ValueError):
        settings.updated({"latency_ms": True})


def test_a_lower_app_write_quota_is_enforced_and_validated(emulator):
    from realism import Realism, Settings
    now = [0.0]
    realism = Realism(Settings(app_write_quota=30), "tenant", lambda: 10, clock=lambda: now[0])
    claims = {"appid": "app"}
    admitted = sum(1 for _ in range(40) if realism._throttle(claims, "POST", "/v1.0/users", {}) is None)
    assert admitted == 30                                    # the bucket holds the lower quota
    now[0] += 10.0                                           # 30 per 150 s = 0.2/s: two more after 10 s
    assert sum(1 for _ in range(5) if realism._throttle(claims, "POST", "/v1.0/users", {}) is None) == 2
    with pytest.raises(ValueError):
        Settings().updated({"app_write_quota": 0})
