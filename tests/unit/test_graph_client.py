"""graph.py against a real local HTTP server: retries (429/5xx/connection), bounds, paging, $batch, stats."""
import json
import re
import threading
import time
import uuid

import pytest

from idsync_testlib import DROP, Reply, ScriptedServer, graph_error, make_jwt
from ansible_collections.idsync.entra.plugins.module_utils.clouds import Endpoints
from ansible_collections.idsync.entra.plugins.module_utils.credentials import AccessTokenCredential, Credential
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError, TransportError
from ansible_collections.idsync.entra.plugins.module_utils.graph import (
    BatchResult, GraphClient, RetryPolicy, parse_retry_after,
)
from ansible_collections.idsync.entra.plugins.module_utils.transport import build_session


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def endpoints_for(url):
    return Endpoints("azure_global", "https://login.microsoftonline.com/t", url + "/v1.0",
                     "https://graph.microsoft.com/.default", "https://outlook.office365.com/.default", "t",
                     "https://login.microsoftonline.com", "https://outlook.office365.com", False)


def client_for(server, retry=None, token=None, session=None, events=None, credential=None):
    return GraphClient(endpoints_for(server.url), credential or AccessTokenCredential(token or make_jwt()),
                       session or build_session(), retry=retry or RetryPolicy(max_attempts=4, max_total_seconds=30,
                                                                              backoff=0.05),
                       on_retry=events.append if events is not None else None)


def test_get_json_and_headers(server):
    server.route("GET", "^/v1.0/organization$", Reply(200, {"value": [{"id": "o1"}]}))
    graph = client_for(server)
    assert graph.get("/organization") == {"value": [{"id": "o1"}]}
    req = server.calls()[0]
    assert req.headers["authorization"].startswith("Bearer ey")
    assert str(uuid.UUID(req.headers["client-request-id"])) == req.headers["client-request-id"]
    assert req.headers["user-agent"].startswith("idsync.entra/")
    assert graph.stats == {"requests": 1, "writes": 0, "retries": 0, "throttled": 0, "batches": 0}


def test_no_content_and_write_counting(server):
    server.route("PATCH", "^/v1.0/users/u1$", Reply(204))
    server.route("POST", "^/v1.0/users$", Reply(201, {"id": "u2"}))
    graph = client_for(server)
    assert graph.patch("/users/u1", json={"displayName": "x"}) is None
    assert graph.post("users", json={"displayName": "y"}) == {"id": "u2"}
    assert server.calls("PATCH")[0].json == {"displayName": "x"}
    assert server.calls("PATCH")[0].headers["content-type"] == "application/json"
    assert graph.stats["writes"] == 2 and graph.stats["requests"] == 2


def test_query_encoding(server):
    server.route("GET", "^/v1.0/users$", Reply(200, {"value": []}))
    graph = client_for(server)
    graph.get("/users", params={"$filter": "displayName eq 'O''Brien + Co'", "$select": "id,displayName",
                                "$count": True, "$top": 5})
    raw = server.calls()[0].raw_query
    assert "%20eq%20'O''Brien%20%2B%20Co'" in raw and "$select=id,displayName" in raw and "$count=true" in raw
    assert server.calls()[0].query["$filter"] == "displayName eq 'O''Brien + Co'"


def test_429_honours_retry_after(server):
    server.route("GET", "^/v1.0/users$",
                 graph_error(429, "TooManyRequests", "Please retry again later."),
                 Reply(200, {"value": [1]}))
    server.routes[-1][2][0].headers["Retry-After"] = "1"
    events = []
    graph = client_for(server, events=events)
    start = time.monotonic()
    assert graph.get("/users") == {"value": [1]}
    assert time.monotonic() - start >= 0.95
    assert graph.stats["retries"] == 1 and graph.stats["throttled"] == 1 and graph.stats["requests"] == 2
    assert events[0]["status"] == 429 and events[0]["delay"] == 1.0 and events[0]["reason"] == "throttled"
    # the same client-request-id across the retry of one logical request
    ids = [r.headers["client-request-id"] for r in server.calls()]
    assert ids[0] == ids[1]


def test_5xx_retried_for_get(server):
    server.route("GET", "^/v1.0/groups$", Reply(503, {"error": {"code": "serviceNotAvailable", "message": "x"}}),
                 Reply(502, b"bad gateway"), Reply(504), Reply(200, {"value": []}))
    graph = client_for(server, retry=RetryPolicy(max_attempts=5, backoff=0.01))
    assert graph.get("/groups") == {"value": []}
    assert graph.stats["retries"] == 3


def test_post_not_retried_on_502_504(server):
    server.route("POST", "^/v1.0/users$", Reply(504, {"error": {"code": "GatewayTimeout", "message": "timeout"}}))
    graph = client_for(server)
    with pytest.raises(GraphError) as info:
        graph.post("/users", json={"displayName": "x"})
    assert info.value.status == 504 and len(server.calls()) == 1


def test_post_retried_on_429_and_503(server):
    server.route("POST", "^/v1.0/users$", Reply(503, headers={"Retry-After": "0"}),
                 graph_error(429, "TooManyRequests", "later"), Reply(201, {"id": "u"}))
    graph = client_for(server)
    assert graph.post("/users", json={}) == {"id": "u"}
    assert len(server.calls()) == 3


def test_post_idempotent_flag_allows_gateway_retry(server):
    server.route("POST", "getByIds$", Reply(502), Reply(200, {"value": []}))
    graph = client_for(server)
    assert graph.post("/directoryObjects/getByIds", json={"ids": []}, idempotent=True) == {"value": []}


def test_attempts_are_bounded(server):
    server.route("GET", "^/v1.0/users$", Reply(503, headers={"Retry-After": "0"}))
    graph = client_for(server, retry=RetryPolicy(max_attempts=3, max_total_seconds=30, backoff=0.01))
    with pytest.raises(GraphError) as info:
        graph.get("/users")
    assert info.value.status == 503 and len(server.calls()) == 3 and graph.stats["retries"] == 2


def test_total_time_is_bounded(server):
    throttled = graph_error(429, "TooManyRequests", "Please retry again later.", request_id="rid-429")
    throttled.headers["Retry-After"] = "30"
    server.route("GET", "^/v1.0/users$", throttled)
    graph = client_for(server, retry=RetryPolicy(max_attempts=10, max_total_seconds=5))
    start = time.monotonic()
    with pytest.raises(GraphError) as info:
        graph.get("/users")
    assert time.monotonic() - start < 2
    assert info.value.status == 429 and info.value.request_id == "rid-429"
    assert "kept throttling" in info.value.msg and len(server.calls()) == 1


def test_backoff_has_jitter_and_cap():
    policy = RetryPolicy(backoff=1.0, max_backoff=8.0)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        samples = [policy.delay(attempt) for _ in range(200)]
        assert all(full / 2 <= s <= full for s in samples)
        assert len(set(samples)) > 1
    assert policy.delay(3, retry_after=7) == 7.0
    assert RetryPolicy(jitter=False, backoff=0.5).delay(3) == 2.0


def test_parse_retry_after():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0"}) == 0.0
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
    assert 2 <= parse_retry_after({"Retry-After": date}) <= 6


def test_dropped_connection_retried_for_get(server):
    server.route("GET", "^/v1.0/users$", DROP, Reply(200, {"value": []}))
    graph = client_for(server)
    assert graph.get("/users") == {"value": []}
    assert graph.stats["retries"] == 1


def test_dropped_connection_not_retried_for_post(server):
    server.route("POST", "^/v1.0/users$", DROP, Reply(201, {"id": "dup"}))
    graph = client_for(server)
    with pytest.raises(TransportError) as info:
        graph.post("/users", json={"displayName": "x"})
    assert "not retried because it may have been applied" in info.value.msg
    assert len(server.calls("POST")) == 1


def test_read_timeout_retried_for_get(server):
    server.route("GET", "^/v1.0/slow$", Reply(200, {"v": 1}, delay=1.5), Reply(200, {"v": 2}))
    graph = client_for(server, session=build_session(timeout=(5, 0.5)))
    assert graph.get("/slow") == {"v": 2}


def test_connection_refused_is_retried_even_for_post_then_fails():
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    events = []
    graph = GraphClient(endpoints_for("http://127.0.0.1:{0}".format(port)), AccessTokenCredential(make_jwt()),
                        build_session(), retry=RetryPolicy(max_attempts=3, backoff=0.01), on_retry=events.append)
    with pytest.raises(TransportError) as info:
        graph.post("/users", json={})
    assert "Could not connect to http://127.0.0.1:{0}".format(port) in info.value.msg
    assert len(events) == 2 and events[0]["reason"] == "ConnectionError"


class CountingCredential(Credential):
    """A real Credential implementation whose tokens are numbered, to see re-authentication."""

    def __init__(self):
        super(CountingCredential, self).__init__()
        self.issued = 0

    def _acquire(self):
        self.issued += 1
        return make_jwt(n=self.issued), 3600


def test_401_reauthenticates_once(server):
    expired = graph_error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
    server.route("GET", "^/v1.0/me$", expired, Reply(200, {"ok": True}))
    cred = CountingCredential()
    graph = client_for(server, credential=cred)
    assert graph.get("/me") == {"ok": True}
    assert cred.issued == 2
    tokens = [r.headers["authorization"] for r in server.calls()]
    assert tokens[0] != tokens[1]
    server.route("GET", "^/v1.0/me$", expired)
    with pytest.raises(GraphError) as info:
        graph.get("/me")
    assert info.value.status == 401 and cred.issued == 3


def test_static_token_not_reauthenticated(server):
    server.route("GET", "^/v1.0/me$", graph_error(401, "InvalidAuthenticationToken", "expired"))
    graph = client_for(server)
    with pytest.raises(GraphError):
        graph.get("/me")
    assert len(server.calls()) == 1


def test_graph_error_fields_and_403_hint(server):
    server.route("GET", "^/v1.0/applications$", graph_error(403, "Authorization_RequestDenied",
                                                           "Insufficient privileges to complete the operation.",
                                                           request_id="rid-403"))
    graph = client_for(server, token=make_jwt(roles=["User.Read.All"]))
    with pytest.raises(GraphError) as info:
        graph.get("/applications")
    err = info.value
    assert (err.status, err.code, err.request_id, err.date) == (403, "Authorization_RequestDenied", "rid-403",
                                                                "2025-11-27T00:00:00")
    assert err.method == "GET" and err.path == "/applications"
    assert "application permissions (User.Read.All) do not allow this call" in err.msg
    assert "eyJ" not in err.msg


def test_refuses_foreign_absolute_url(server):
    graph = client_for(server)
    with pytest.raises(ConfigError, match="Refusing to send the Graph token"):
        graph.get("https://evil.example/v1.0/users")
    assert server.calls() == []


def test_paging(server):
    base = server.url + "/v1.0"
    server.route("GET", "^/v1.0/users$", lambda req: Reply(200, {
        "value": [{"id": str(i)} for i in range(3)],
        "@odata.nextLink": base + "/users?$skiptoken=p2" if "$skiptoken" not in req.query else None}))
    server.route("GET", "^/v1.0/users$", lambda req: Reply(200, _page(req, base)))
    graph = client_for(server)
    items = list(graph.iter_items("/users", params={"$top": 3}, headers={"ConsistencyLevel": "eventual"}))
    assert [i["id"] for i in items] == [str(i) for i in range(7)]
    assert len(server.calls()) == 3
    assert all(r.headers.get("consistencylevel") == "eventual" for r in server.calls())
    pages = list(graph.iter_pages("/users"))
    assert pages[-1]["@odata.deltaLink"].endswith("delta=1")


def _page(req, base):
    token = req.query.get("$skiptoken")
    if token is None:
        return {"value": [{"id": "0"}, {"id": "1"}, {"id": "2"}], "@odata.nextLink": base + "/users?$skiptoken=p2"}
    if token == "p2":
        return {"value": [{"id": "3"}, {"id": "4"}, {"id": "5"}], "@odata.nextLink": base + "/users?$skiptoken=p3"}
    return {"value": [{"id": "6"}], "@odata.deltaLink": base + "/users?delta=1"}


def test_paging_loop_detected(server):
    base = server.url + "/v1.0"
    server.route("GET", "^/v1.0/loop$", Reply(200, {"value": [], "@odata.nextLink": base + "/loop?x=1"}))
    with pytest.raises(GraphError, match="same @odata.nextLink twice"):
        list(client_for(server).iter_pages("/loop"))


# ------------------------------------------------------------------------------------------------------
# $batch
# ------------------------------------------------------------------------------------------------------

class FakeBatchService:
    """Answers $batch envelopes item by item through ``decide(item, seen_count) -> (status, headers, body)``,
    in reverse order (Graph does not keep order), with 424 for items whose dependency failed."""

    def __init__(self, decide):
        self.decide = decide
        self.envelopes = []
        self.seen = {}
        self.lock = threading.Lock()

    def __call__(self, req):
        envelope = req.json["requests"]
        with self.lock:
            self.envelopes.append(envelope)
        ids = [e["id"] for e in envelope]
        assert len(envelope) <= 20 and len(set(ids)) == len(ids)
        status_of = {}
        responses = []
        for item in envelope:
            deps = item.get("dependsOn") or []
            assert all(d in ids for d in deps)
            if any(status_of.get(d, 200) >= 400 for d in deps):
                status_of[item["id"]] = 424
                responses.append({"id": item["id"], "status": 424, "body": {"error": {"code": "FailedDependency"}}})
                continue
            with self.lock:
                key = (item["method"], item["url"])
                self.seen[key] = self.seen.get(key, 0) + 1
                count = self.seen[key]
            status, headers, body = self.decide(item, count)
            status_of[item["id"]] = status
            responses.append({"id": item["id"], "status": status, "headers": headers, "body": body})
        return Reply(200, {"responses": list(reversed(responses))})


def test_batch_chunks_and_order(server):
    service = FakeBatchService(lambda item, n: (200, {"Content-Type": "application/json"}, {"url": item["url"]}))
    server.route("POST", r"^/v1.0/\$batch$", service)
    graph = client_for(server)
    reqs = [{"method": "GET", "url": "/users/{0}".format(i)} for i in range(45)]
    results = graph.batch(reqs)
    assert [len(e) for e in service.envelopes] == [20, 20, 5]
    assert [r.body["url"] for r in results] == ["/users/{0}".format(i) for i in range(45)]
    assert all(isinstance(r, BatchResult) and r.ok for r in results)
    status, headers, body = results[0]
    assert status == 200
    assert graph.stats["batches"] == 3 and graph.stats["writes"] == 0 and graph.stats["requests"] == 3


def test_batch_per_item_throttling_retried(server):
    def decide(item, n):
        if item["url"].endswith(("/3", "/7")) and n == 1:
            return 429, {"Retry-After": "1"}, {"error": {"code": "TooManyRequests", "message": "later"}}
        return 201, {}, {"id": item["url"]}
    service = FakeBatchService(decide)
    server.route("POST", r"^/v1.0/\$batch$", service)
    events = []
    graph = client_for(server, events=events)
    reqs = [{"method": "POST", "url": "/groups/g/members/{0}".format(i), "body": {"x": i}} for i in range(10)]
    start = time.monotonic()
    results = graph.batch(reqs)
    assert time.monotonic() - start >= 0.95
    assert [r.status for r in results] == [201] * 10
    assert [len(e) for e in service.envelopes] == [10, 2]
    assert sorted(e["url"] for e in service.envelopes[1]) == ["/groups/g/members/3", "/groups/g/members/7"]
    assert service.envelopes[0][0]["headers"]["Content-Type"] == "application/json"
    assert graph.stats["writes"] == 10 and graph.stats["throttled"] == 2 and graph.stats["retries"] == 2
    assert events[0]["items"] == 2 and events[0]["delay"] == 1.0


def test_batch_hands_retryable_items_back_when_the_caller_schedules(server):
    def decide(item, n):
        if item["url"].endswith("/3"):
            return 429, {"Retry-After": "2"}, {"error": {"code": "TooManyRequests", "message": "later"}}
        if item["url"].endswith("/5") and n == 1:
            return 503, {"Retry-After": "0"}, {}
        return 201, {}, {"id": item["url"]}
    service = FakeBatchService(decide)
    server.route("POST", r"^/v1.0/\$batch$", service)
    graph = client_for(server)
    reqs = [{"method": "POST", "url": "/groups/g/members/{0}".format(i), "body": {"x": i}} for i in range(10)]
    results = graph.batch(reqs, hand_back=True)
    # the 429 and the 503 come back with their Retry-After for the caller; nothing is re-sent here
    assert [r.status for r in results] == [201, 201, 201, 429, 201, 503, 201, 201, 201, 201]
    assert results[3].headers["Retry-After"] == "2"
    assert [len(e) for e in service.envelopes] == [10]
    assert graph.stats["throttled"] == 1 and graph.stats["retries"] == 0


def test_batch_depends_on_kept_together_and_424_resent(server):
    def decide(item, n):
        if item["url"] == "/users/a" and n == 1:
            return 503, {"Retry-After": "0"}, {}
        return 200, {}, {"ok": item["url"]}
    service = FakeBatchService(decide)
    server.route("POST", r"^/v1.0/\$batch$", service)
    graph = client_for(server)
    reqs = [{"method": "GET", "url": "/users/{0}".format(i)} for i in range(19)]
    reqs += [{"id": "a", "method": "PATCH", "url": "/users/a", "body": {}},
             {"id": "b", "method": "PATCH", "url": "/users/b", "body": {}, "dependsOn": ["a"]}]
    results = graph.batch(reqs)
    # the a->b group does not fit after 19 items, so it moves to the next envelope together
    assert [len(e) for e in service.envelopes[:2]] == [19, 2]
    assert [r.status for r in results] == [200] * 21
    resent = service.envelopes[2]
    assert [e["id"] for e in resent] == ["a", "b"] and resent[1]["dependsOn"] == ["a"]


def test_batch_final_failures_and_non_idempotent_504(server):
    def decide(item, n):
        if item["url"] == "/users/bad":
            return 400, {}, {"error": {"code": "Request_BadRequest", "message": "nope"}}
        if item["url"] == "/users/gw":
            return 504, {}, {"error": {"code": "GatewayTimeout", "message": "gw"}}
        return 204, {}, None
    service = FakeBatchService(decide)
    server.route("POST", r"^/v1.0/\$batch$", service)
    graph = client_for(server)
    results = graph.batch([
        {"id": "1", "method": "POST", "url": "/users/bad", "body": {}},
        {"id": "2", "method": "PATCH", "url": "/users/ok", "body": {}, "dependsOn": ["1"]},
        {"id": "3", "method": "POST", "url": "/users/gw", "body": {}},
    ])
    assert [r.status for r in results] == [400, 424, 504]
    assert len(service.envelopes) == 1  # 400 is final, 424 depends on a final failure, POST 504 is not re-sent
    err = results[0].error()
    assert isinstance(err, GraphError) and err.code == "Request_BadRequest" and err.path == "/users/bad"
    with pytest.raises(GraphError):
        results[2].raise_for_status()


def test_batch_concurrency(server):
    service = FakeBatchService(lambda item, n: (200, {}, {}))
    server.route("POST", r"^/v1.0/\$batch$", lambda req: (time.sleep(0.3), service(req))[1])
    graph = client_for(server)
    start = time.monotonic()
    results = graph.batch([{"method": "GET", "url": "/users/{0}".format(i)} for i in range(80)], max_in_flight=4)
    assert time.monotonic() - start < 1.0  # 4 envelopes of 0.3 s each ran side by side
    assert len(results) == 80 and all(r.ok for r in results)
    assert graph.stats["batches"] == 4


def test_batch_input_validation(server):
    graph = client_for(server)
    with pytest.raises(ValueError, match="used twice"):
        graph.batch([{"id": "1", "method": "GET", "url": "/a"}, {"id": "1", "method": "GET", "url": "/b"}])
    with pytest.raises(ValueError, match="unknown id"):
        graph.batch([{"method": "GET", "url": "/a", "dependsOn": ["zz"]}])
    chain = [{"id": str(i), "method": "GET", "url": "/x", "dependsOn": [str(i - 1)] if i else []} for i in range(21)]
    with pytest.raises(ValueError, match="linked by dependsOn"):
        graph.batch(chain)
    with pytest.raises(ValueError):
        graph.batch([{"method": "GET"}])
    assert graph.batch([]) == []
    assert server.calls() == []


def test_batch_absolute_urls_made_relative(server):
    service = FakeBatchService(lambda item, n: (200, {}, {}))
    server.route("POST", r"^/v1.0/\$batch$", service)
    graph = client_for(server)
    graph.batch([{"method": "GET", "url": server.url + "/v1.0/users?$top=1"}])
    assert service.envelopes[0][0]["url"] == "/users?$top=1"
    assert re.match(r"^\d+$", service.envelopes[0][0]["id"])
    assert json.dumps(service.envelopes)  # plain JSON


def test_an_envelope_refused_as_a_whole_hands_its_items_back_at_once(server):
    server.route("POST", r"^/v1.0/\$batch$", Reply(503, {"error": {"code": "serviceNotAvailable", "message": "later"}},
                                                    headers={"Retry-After": "7"}))
    graph = client_for(server)
    results = graph.batch([{"method": "POST", "url": "/users", "body": {"n": i}} for i in range(3)], hand_back=True)
    assert [r.status for r in results] == [503, 503, 503] and results[0].headers["Retry-After"] == "7"
    assert len([r for r in server.requests if r.path.endswith("$batch")]) == 1     # not retried (nor slept on) here
    server.route("POST", r"^/v1.0/\$batch$", Reply(504, {"error": {"code": "GatewayTimeout", "message": "slow"}}))
    results = graph.batch([{"method": "POST", "url": "/users", "body": {"n": 1}}], hand_back=True)
    assert results[0].status is None and results[0].unknown                         # a gateway: maybe applied
