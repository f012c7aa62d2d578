"""GraphWriter: per-item waits for 429/503 while the rest flows, uncertain creates found out (never duplicated),
idempotent writes of a lost envelope sent again."""
from ansible_collections.idsync.entra.plugins.module_utils.connectors.graph_writer import GraphWriter
from ansible_collections.idsync.entra.plugins.module_utils.graph import BatchResult


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0.0)


class ScriptedGraph:
    """A directory of users keyed by userPrincipalName behind a ``batch`` whose answers a script can replace:
    ``script(request, attempt)`` returns None (normal), "lost-before", "lost-after", or (status, headers)."""

    def __init__(self, clock, script=None):
        self.clock = clock
        self.script = script or (lambda request, attempt: None)
        self.users = {}
        self.sent = []                     # (time, method, url)
        self.attempts = {}

    def batch(self, requests, max_in_flight=1, hand_back=False):
        assert hand_back
        out = []
        for request in requests:
            key = (request["method"], request["url"], str(request.get("body")))
            self.attempts[key] = self.attempts.get(key, 0) + 1
            self.sent.append((self.clock.now, request["method"], request["url"]))
            scripted = self.script(request, self.attempts[key])
            if scripted == "lost-before":
                out.append(BatchResult(None, {}, {"error": {"code": "OutcomeUnknown"}}, unknown=True,
                                       method=request["method"], url=request["url"]))
                continue
            if isinstance(scripted, tuple):
                out.append(BatchResult(scripted[0], scripted[1], {"error": {"code": "x", "message": "later"}},
                                       method=request["method"], url=request["url"]))
                continue
            status, body = self._handle(request)
            if scripted == "lost-after":
                body, status = {"error": {"code": "OutcomeUnknown"}}, None
            out.append(BatchResult(status, {}, body, unknown=status is None, method=request["method"],
                                   url=request["url"]))
        return out

    def _handle(self, request):
        if request["method"] == "GET":
            upn = request["url"].split("eq%20'")[1].split("'")[0]
            user = self.users.get(upn.lower())
            return 200, {"value": [dict(user)] if user else []}
        if request["method"] == "POST":
            upn = request["body"]["userPrincipalName"]
            if upn.lower() in self.users:
                return 400, {"error": {"code": "Request_BadRequest", "message": "Another object with the same value "
                                       "for property userPrincipalName already exists.",
                                       "details": [{"target": "userPrincipalName", "code": "ObjectConflict"}]}}
            user = dict(request["body"], id="id-" + upn)
            self.users[upn.lower()] = user
            return 201, dict(user)
        return 204, None


def creates(*upns):
    return [(n, {"method": "POST", "url": "/users", "body": {"userPrincipalName": u, "employeeId": "E%d" % n}},
             "create") for n, u in enumerate(upns)]


def lookups(requests):
    return dict((p, ("userPrincipalName", r[1]["body"]["userPrincipalName"], True)) for p, r in enumerate(requests))


def describe(kind, error):
    return "%s failed: %s" % (kind, error.message if error is not None else "no answer")


def writer_for(graph, clock):
    return GraphWriter(graph, max_in_flight=2, sleep=clock.sleep, clock=clock)


def test_a_create_whose_answer_was_lost_is_found_and_not_sent_again():
    clock = Clock()
    graph = ScriptedGraph(clock, lambda r, n: "lost-after" if r["method"] == "POST" and n == 1 and
                          r["body"]["userPrincipalName"] == "b@x" else None)
    requests = creates("a@x", "b@x", "c@x")
    outcome = writer_for(graph, clock).run(requests, lookups(requests), describe=describe)
    assert outcome.errors == [None, None, None]
    assert outcome.created == {0: "id-a@x", 1: "id-b@x", 2: "id-c@x"}
    assert len([s for s in graph.sent if s[1] == "POST" and s[2] == "/users"]) == 3      # b: once


def test_a_create_lost_before_it_landed_is_sent_again_after_its_absence_is_confirmed():
    clock = Clock()
    graph = ScriptedGraph(clock, lambda r, n: "lost-before" if r["method"] == "POST" and n == 1 else None)
    requests = creates("a@x", "b@x")
    writer = writer_for(graph, clock)
    outcome = writer.run(requests, lookups(requests), describe=describe)
    assert outcome.created == {0: "id-a@x", 1: "id-b@x"} and outcome.errors == [None, None]
    assert writer.stats["resent_creates"] == 2 and len(graph.users) == 2


def test_a_resent_create_refused_as_a_duplicate_is_adopted_when_it_is_ours():
    clock = Clock()
    landed = {}

    def script(request, attempt):
        if request["method"] == "POST" and attempt == 1:
            landed["at"] = clock.now
            return "lost-after"                                  # it landed; the answer did not come back
        return None

    graph = ScriptedGraph(clock, script)
    handle = graph._handle

    def replicating(request):
        # reads do not see the new object for 20 s (longer than the wait before a re-send)
        if request["method"] == "GET" and clock.now - landed.get("at", -100) < 20:
            return 200, {"value": []}
        return handle(request)
    graph._handle = replicating
    requests = creates("a@x")
    writer = writer_for(graph, clock)
    outcome = writer.run(requests, lookups(requests), describe=describe)
    assert outcome.created == {0: "id-a@x"} and outcome.errors == [None]
    assert writer.stats == {"retried_items": 0, "unknown_outcomes": 1, "adopted": 1, "resent_creates": 1}
    assert len(graph.users) == 1


def test_someone_elses_object_is_a_conflict_not_ours():
    clock = Clock()
    graph = ScriptedGraph(clock)
    graph.users["a@x"] = {"id": "someone", "userPrincipalName": "a@x", "employeeId": "E99"}
    requests = creates("a@x")
    outcome = writer_for(graph, clock).run(requests, lookups(requests), describe=describe)
    assert outcome.created == {} and outcome.conflicts == {0: "userPrincipalName"}
    assert "already exists" in outcome.errors[0]


def test_one_items_retry_after_does_not_hold_back_the_others():
    clock = Clock()
    graph = ScriptedGraph(clock, lambda r, n: (429, {"Retry-After": "30"}) if r["body"]["userPrincipalName"] == "a@x"
                          and n == 1 else None)
    requests = creates(*["u%d@x" % i for i in range(100)] + ["a@x"])
    requests = [requests[-1]] + requests[:-1]
    outcome = writer_for(graph, clock).run(requests, lookups(requests), describe=describe)
    assert all(e is None for e in outcome.errors) and len(outcome.created) == 101
    others_done = max(t for t, method, url in graph.sent if method == "POST" and t < 30)
    assert others_done < 1.0                                   # the other 100 went out without waiting
    assert clock.now >= 30.0                                    # and a@x after its own Retry-After


def test_idempotent_items_of_a_lost_envelope_are_sent_again():
    clock = Clock()
    graph = ScriptedGraph(clock, lambda r, n: "lost-after" if n == 1 else None)
    requests = [(0, {"method": "PATCH", "url": "/users/1", "body": {"jobTitle": "x"}}, "update"),
                (1, {"method": "DELETE", "url": "/users/2/manager/$ref"}, "manager-remove")]
    outcome = writer_for(graph, clock).run(requests, describe=describe)
    assert outcome.errors == [None, None]
    assert len(graph.sent) == 4
