"""consistency.py: replication waits are bounded, need N consecutive good reads, and only swallow replication errors."""
import pytest

from idsync_testlib import Reply, ScriptedServer, graph_error, make_jwt
from ansible_collections.idsync.entra.plugins.module_utils import consistency
from ansible_collections.idsync.entra.plugins.module_utils.credentials import AccessTokenCredential
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConsistencyTimeout, GraphError
from ansible_collections.idsync.entra.plugins.module_utils.graph import GraphClient, RetryPolicy
from ansible_collections.idsync.entra.plugins.module_utils.transport import build_session

from test_graph_client import endpoints_for

NOT_FOUND = GraphError(404, "Request_ResourceNotFound", "Resource 'x' does not exist or one of its queried "
                       "reference-property objects are not present.")
NO_BACKING = GraphError(400, "Request_BadRequest", "The appId 'abc' of the service principal does not reference a "
                        "valid application object.")
NO_BACKING_CODE = GraphError(400, "NoBackingApplicationObject", "whatever")
FORBIDDEN = GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


class Clock:
    """A manual clock so the bounded waits can be checked without sleeping."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*outcomes):
    queue = list(outcomes)

    def call():
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item
    return call


def test_is_replication_error():
    assert consistency.is_replication_error(NOT_FOUND)
    assert consistency.is_replication_error(NO_BACKING)
    assert consistency.is_replication_error(NO_BACKING_CODE)
    assert not consistency.is_replication_error(FORBIDDEN)
    assert not consistency.is_replication_error(GraphError(400, "Request_BadRequest", "Invalid value"))
    assert not consistency.is_replication_error(ValueError("x"))


def test_needs_consecutive_good_reads():
    clock = Clock()
    fn = scripted(NOT_FOUND, {"id": 1}, NOT_FOUND, {"id": 2}, {"id": 3}, {"id": 4})
    result = consistency.wait_for(fn, consecutive=3, timeout=60, sleep=clock.sleep, clock=clock)
    assert result == {"id": 4}
    assert len(clock.sleeps) == 5


def test_is_ready_predicate():
    clock = Clock()
    fn = scripted({"roles": []}, {"roles": ["a"]}, {"roles": ["a"]})
    out = consistency.wait_for(fn, is_ready=lambda r: r["roles"], consecutive=2, sleep=clock.sleep, clock=clock)
    assert out == {"roles": ["a"]}


def test_other_errors_propagate_at_once():
    clock = Clock()
    with pytest.raises(GraphError) as info:
        consistency.wait_for(scripted(NOT_FOUND, FORBIDDEN), sleep=clock.sleep, clock=clock)
    assert info.value.status == 403 and len(clock.sleeps) == 1


def test_timeout_is_bounded():
    clock = Clock()
    with pytest.raises(ConsistencyTimeout) as info:
        consistency.wait_for(scripted(NOT_FOUND), timeout=30, interval=1, max_interval=5, description="user x",
                             sleep=clock.sleep, clock=clock)
    assert clock.now <= 30
    assert "Waited 30 seconds for user x to replicate" in info.value.msg
    assert info.value.details["last_status"] == 404 and info.value.details["last_code"] == "Request_ResourceNotFound"
    assert max(clock.sleeps) <= 5 * 1.2


def test_retry_until_consistent_for_a_write():
    clock = Clock()
    fn = scripted(NO_BACKING, NO_BACKING, {"id": "sp"})
    assert consistency.retry_until_consistent(fn, sleep=clock.sleep, clock=clock) == {"id": "sp"}
    assert len(clock.sleeps) == 2


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def test_wait_for_object_and_deletion_against_a_server(server):
    missing = graph_error(404, "Request_ResourceNotFound", "Resource 'u1' does not exist or one of its queried "
                          "reference-property objects are not present.")
    server.route("GET", "^/v1.0/users/u1$", missing, missing, Reply(200, {"id": "u1"}), Reply(200, {"id": "u1"}),
                 Reply(200, {"id": "u1"}), missing)
    graph = GraphClient(endpoints_for(server.url), AccessTokenCredential(make_jwt()), build_session(),
                        retry=RetryPolicy(max_attempts=2, backoff=0.01))
    obj = consistency.wait_for_object(graph, "/users/u1", consecutive=3, interval=0.01, timeout=10)
    assert obj == {"id": "u1"} and len(server.calls()) == 5
    assert consistency.wait_for_deletion(graph, "/users/u1", consecutive=2, interval=0.01, timeout=10)
