"""Conformance of JSON batching, delta queries and replication delay in the emulated Graph.

"Right" comes from Microsoft Learn ("Combine multiple HTTP requests using JSON batching", "Use delta query to
track changes", "Get incremental changes for users/groups", the 2020-07-03 devblog on delta token lifetime) and
REFERENCE.md (eventual consistency).
"""
import time

import pytest

STRONG_PASSWORD = "Xq7!mP2#vL9s"


@pytest.fixture
def graph(entra):
    token = entra.app_token()
    return lambda method, path, **kwargs: entra.graph(method, path, token, **kwargs)


@pytest.fixture
def domain(graph):
    return graph("GET", "/v1.0/organization").json()["value"][0]["verifiedDomains"][0]["name"]


def user_body(domain, nickname, **extra):
    return {"accountEnabled": True, "displayName": nickname.title(), "mailNickname": nickname,
            "userPrincipalName": f"{nickname}@{domain}", "passwordProfile": {"password": STRONG_PASSWORD}, **extra}


def follow(entra, link):
    """All pages of a delta round: (items, deltaLink)."""
    token, items = entra.app_token(), []
    for _ in range(2000):
        page = entra.graph("GET", link.replace(entra.base_url, ""), token)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"]
        link = body["@odata.nextLink"]
    raise AssertionError("delta round did not end")


# ---------------------------------------------------------------------- $batch
def test_batch_runs_items_through_graph(graph, domain):
    """Learn json-batching: 200 envelope, one response per id with its own status, headers and body; relative
    URLs with or without a leading slash; unknown item properties are ignored."""
    body = {"requests": [
        {"id": "create", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
         "body": user_body(domain, "batched")},
        {"id": "find", "method": "GET", "dependsOn": ["create"], "comment": "ignored",
         "url": f"users?$filter=userPrincipalName eq 'batched@{domain}'&$select=id"},
        {"id": "missing", "method": "GET", "url": "/groups/00000000-0000-4000-8000-000000000000"},
    ]}
    response = graph("POST", "/v1.0/$batch", json=body)
    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert by_id["create"]["status"] == 201 and by_id["create"]["headers"]["Content-Type"].startswith(
        "application/json")
    assert by_id["find"]["status"] == 200 and by_id["find"]["body"]["value"] == [{"id": by_id["create"]["body"]["id"]}]
    assert by_id["missing"]["status"] == 404
    assert by_id["missing"]["body"]["error"]["code"] == "Request_ResourceNotFound"


def test_failed_dependency_is_424(graph):
    """Learn json-batching: "If an individual request fails, any request that depends on that request fails with
    status code 424 (Failed Dependency)"."""
    body = {"requests": [
        {"id": "1", "method": "GET", "url": "/users/nobody@nowhere.example"},
        {"id": "2", "method": "GET", "url": "/organization", "dependsOn": ["1"]},
    ]}
    statuses = {r["id"]: r["status"] for r in graph("POST", "/v1.0/$batch", json=body).json()["responses"]}
    assert statuses == {"1": 404, "2": 424}


@pytest.mark.parametrize("requests_", [
    [{"id": str(n), "method": "GET", "url": "/organization"} for n in range(21)],
    [{"id": "a", "method": "GET", "url": "/organization"}, {"id": "A", "method": "GET", "url": "/users"}],
    [{"id": "1", "method": "PATCH", "url": "/organization", "body": {}}],
], ids=["more-than-20", "duplicate-ids", "body-without-content-type"])
def test_malformed_batches_are_400(graph, entra, requests_):
    entra.assert_graph_error(graph("POST", "/v1.0/$batch", json={"requests": requests_}), 400, "BadRequest")


def test_batch_items_are_throttled_individually(graph, entra):
    """Learn json-batching: each item is evaluated against throttling; a 429 is that item's response, with
    Retry-After in its headers."""
    entra.emulator.admin("POST", "faults", {"path": "/v1.0/groups", "status": 429, "count": 1, "retry_after": 7})
    body = {"requests": [{"id": "1", "method": "GET", "url": "/groups"},
                         {"id": "2", "method": "GET", "url": "/organization"}]}
    response = graph("POST", "/v1.0/$batch", json=body)
    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert by_id["1"]["status"] == 429 and by_id["1"]["headers"]["Retry-After"] == "7"
    assert by_id["2"]["status"] == 200


# ---------------------------------------------------------------------- delta
def test_users_delta_rounds(graph, domain, entra):
    """First round: every user over pages, $select carried in the tokens; later rounds: only changes, soft deletes
    as @removed changed, permanent deletes as @removed deleted."""
    entra.emulator.admin("POST", "seed", {"generate": {"users": 150, "groups": 0, "seed": 3}})
    first = graph("GET", "/v1.0/users/delta()?$select=displayName,department").json()
    assert "@odata.nextLink" in first and first["@odata.context"].endswith("#users(displayName,department)")
    assert set(first["value"][0]) == {"id", "displayName", "department"}
    items, delta_link = follow(entra, first["@odata.nextLink"])
    assert len(first["value"]) + len(items) == 151
    assert "$deltatoken=" in delta_link and delta_link.startswith(entra.base_url)
    assert follow(entra, delta_link)[0] == []

    changed = graph("POST", "/v1.0/users", json=user_body(domain, "newhire", department="Support")).json()
    someone = graph("GET", "/v1.0/users?$top=2&$select=id").json()["value"][1]["id"]
    graph("PATCH", f"/v1.0/users/{someone}", json={"mobilePhone": "+1 555 0100"})   # not selected: not tracked
    graph("DELETE", f"/v1.0/users/{changed['id']}")
    items, delta_link = follow(entra, delta_link)
    assert items == [{"id": changed["id"], "@removed": {"reason": "changed"}}]
    graph("DELETE", f"/v1.0/directory/deletedItems/{changed['id']}")
    graph("PATCH", f"/v1.0/users/{someone}", json={"department": "Legal"})
    items, _ = follow(entra, delta_link)
    assert {"id": changed["id"], "@removed": {"reason": "deleted"}} in items
    assert [item["department"] for item in items if item["id"] == someone] == ["Legal"]


def test_groups_delta_tracks_membership(graph, domain, entra):
    """Learn "Get incremental changes for groups": members@delta lists members; later, added members and removed
    ones (with @removed)."""
    alice = graph("POST", "/v1.0/users", json=user_body(domain, "alice")).json()["id"]
    bob = graph("POST", "/v1.0/users", json=user_body(domain, "bob")).json()["id"]
    group = graph("POST", "/v1.0/groups", json={
        "displayName": "Delta", "mailEnabled": False, "mailNickname": "delta", "securityEnabled": True,
        "members@odata.bind": [f"https://graph.microsoft.com/v1.0/directoryObjects/{alice}"]}).json()
    items, delta_link = follow(entra, "/v1.0/groups/delta?$select=displayName,members")
    assert items == [{"displayName": "Delta", "id": group["id"],
                      "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": alice}]}]
    graph("POST", f"/v1.0/groups/{group['id']}/members/$ref",
          json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{bob}"})
    graph("DELETE", f"/v1.0/groups/{group['id']}/members/{alice}/$ref")
    items, _ = follow(entra, delta_link)
    assert len(items) == 1 and items[0]["id"] == group["id"]
    assert sorted(items[0]["members@delta"], key=lambda m: m["id"] != alice) == [
        {"@odata.type": "#microsoft.graph.user", "id": alice, "@removed": {"reason": "deleted"}},
        {"@odata.type": "#microsoft.graph.user", "id": bob}]


def test_latest_delta_token_skips_the_initial_state(graph, entra):
    """Learn delta-query-overview: $deltatoken=latest returns a deltaLink and no data."""
    body = graph("GET", "/v1.0/users/delta?$deltatoken=latest").json()
    assert body["value"] == [] and "@odata.deltaLink" in body


def test_expired_delta_tokens_are_sync_state_not_found(graph, entra):
    """Devblog 2020-07-03: an expired delta token gives BadRequest with code syncStateNotFound."""
    _, delta_link = follow(entra, "/v1.0/users/delta?$select=id")
    entra.emulator.admin("POST", "expire-delta-tokens")
    error = entra.assert_graph_error(graph("GET", delta_link.replace(entra.base_url, "")), 400, "syncStateNotFound")
    assert error["message"] == ("The sync state generation is not found. The delta token is expired and data must "
                                "be synchronized again.")
    _, fresh_link = follow(entra, "/v1.0/users/delta?$select=id")
    entra.emulator.admin("PUT", "settings", {"delta_token_ttl_s": 0})
    time.sleep(0.05)
    entra.assert_graph_error(graph("GET", fresh_link.replace(entra.base_url, "")), 400, "syncStateNotFound")


# ---------------------------------------------------------------------- replication delay
def test_new_objects_are_invisible_during_replication(graph, domain, entra):
    """REFERENCE.md: right after a create, reads may 404 and POST /servicePrincipals fails with
    NoBackingApplicationObject; both succeed once replication caught up."""
    entra.emulator.admin("PUT", "settings", {"replication_delay_ms": 1000})
    user = graph("POST", "/v1.0/users", json=user_body(domain, "fresh")).json()
    app = graph("POST", "/v1.0/applications", json={"displayName": "fresh app"}).json()
    entra.assert_graph_error(graph("GET", f"/v1.0/users/{user['id']}"), 404, "Request_ResourceNotFound")
    assert graph("GET", f"/v1.0/users?$filter=id eq '{user['id']}'").json()["value"] == []
    error = entra.assert_graph_error(graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]}), 400,
                                     "Request_BadRequest")
    assert error["details"][0]["code"] == "NoBackingApplicationObject"
    time.sleep(1.1)
    assert graph("GET", f"/v1.0/users/{user['id']}").status_code == 200
    assert graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]}).status_code == 201
