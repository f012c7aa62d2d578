"""Conformance of the emulated Graph /users API, checked with plain requests against the running emulator.

"Right" comes from Microsoft Learn (Create/Get/Update/Delete user, List users, Assign manager, advanced query
capabilities, query parameters) and REFERENCE.md.
"""
import uuid
from urllib.parse import urlsplit

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


def create_user(graph, domain, nickname, **extra):
    response = graph("POST", "/v1.0/users", json=user_body(domain, nickname, **extra))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_the_default_property_set_without_password(graph, domain):
    """Learn "Create user": 201 with the new user; passwordProfile is never returned."""
    created = create_user(graph, domain, "adele", department="Sales")
    assert uuid.UUID(created["id"])
    assert created["userPrincipalName"] == f"adele@{domain}"
    assert created["@odata.context"].endswith("/$metadata#users/$entity")
    assert "passwordProfile" not in created and "department" not in created
    assert created["businessPhones"] == []


@pytest.mark.parametrize("change, status, code, message", [
    ({"passwordProfile": {"password": "password"}}, 400, "Request_BadRequest",
     "The specified password does not comply with password complexity requirements. Please provide a different "
     "password."),
    ({"passwordProfile": None}, 400, "Request_BadRequest", "A password must be specified to create a new user."),
    ({"shoeSize": 42}, 400, "Request_BadRequest", "Invalid property 'shoeSize'."),
    ({"id": str(uuid.uuid4())}, 400, "Request_BadRequest", "Property 'id' is read-only and cannot be set."),
    ({"accountEnabled": "yes"}, 400, "Request_BadRequest",
     "Invalid value specified for property 'accountEnabled' of resource 'User'."),
])
def test_create_rejects_invalid_users(graph, domain, entra, change, status, code, message):
    """Learn "Create user" and Entra password policy (8+ characters, three of four character classes)."""
    body = {k: v for k, v in {**user_body(domain, "newcomer"), **change}.items() if v is not None}
    error = entra.assert_graph_error(graph("POST", "/v1.0/users", json=body), status, code)
    assert error["message"] == message


def test_duplicate_upn_is_an_object_conflict(graph, domain, entra):
    """REFERENCE.md: 400 naming userPrincipalName, details target userPrincipalName / code ObjectConflict.
    UPNs are unique regardless of case."""
    create_user(graph, domain, "twin")
    body = user_body(domain, "twin")
    body["userPrincipalName"] = body["userPrincipalName"].upper()
    error = entra.assert_graph_error(graph("POST", "/v1.0/users", json=body), 400, "Request_BadRequest")
    assert error["message"] == "Another object with the same value for property userPrincipalName already exists."
    assert error["details"] == [{"target": "userPrincipalName", "code": "ObjectConflict"}]


def test_upn_must_use_a_verified_domain(graph, domain, entra):
    body = user_body(domain, "outsider")
    body["userPrincipalName"] = "outsider@not-a-tenant-domain.example"
    entra.assert_graph_error(graph("POST", "/v1.0/users", json=body), 400, "Request_BadRequest")


def test_get_by_id_or_upn_and_select(graph, domain):
    created = create_user(graph, domain, "megan", department="Legal")
    by_upn = graph("GET", f"/v1.0/users/{created['userPrincipalName']}?$select=id,department")
    assert by_upn.status_code == 200
    assert by_upn.json()["@odata.context"].endswith("#users(id,department)/$entity")
    assert {k: v for k, v in by_upn.json().items() if not k.startswith("@")} == {"id": created["id"],
                                                                                 "department": "Legal"}
    assert graph("GET", f"/v1.0/users/{created['id']}").json()["userPrincipalName"] == created["userPrincipalName"]


def test_unknown_user_is_resource_not_found(graph, entra):
    missing = str(uuid.uuid4())
    error = entra.assert_graph_error(graph("GET", f"/v1.0/users/{missing}"), 404, "Request_ResourceNotFound")
    assert error["message"] == (f"Resource '{missing}' does not exist or one of its queried reference-property "
                                "objects are not present.")


def test_unknown_select_property_is_bad_request(graph, entra):
    error = entra.assert_graph_error(graph("GET", "/v1.0/users?$select=id,shoeSize"), 400, "BadRequest")
    assert "shoeSize" in error["message"]


def test_patch_is_204_and_changes_the_user(graph, domain, entra):
    """Learn "Update user": 204 No Content; unknown properties are rejected."""
    created = create_user(graph, domain, "patti")
    response = graph("PATCH", f"/v1.0/users/{created['id']}", json={"jobTitle": "Auditor", "@odata.type": "#x"})
    assert response.status_code == 204 and response.content == b""
    assert graph("GET", f"/v1.0/users/{created['id']}?$select=jobTitle").json()["jobTitle"] == "Auditor"
    entra.assert_graph_error(graph("PATCH", f"/v1.0/users/{created['id']}", json={"nope": 1}), 400,
                             "Request_BadRequest")


def test_delete_moves_the_user_to_deleted_items_and_restore_brings_it_back(graph, domain):
    """Learn "Delete user" / "Restore deleted item" / "Permanently delete an item"."""
    created = create_user(graph, domain, "lidia")
    assert graph("DELETE", f"/v1.0/users/{created['id']}").status_code == 204
    assert graph("GET", f"/v1.0/users/{created['id']}").status_code == 404
    deleted = graph("GET", "/v1.0/directory/deletedItems/microsoft.graph.user").json()["value"]
    assert [u["id"] for u in deleted] == [created["id"]] and deleted[0]["deletedDateTime"]
    assert graph("GET", "/v1.0/directory/deletedItems/graph.user").json()["value"] == deleted
    # A soft-deleted user still holds its UPN.
    assert graph("POST", "/v1.0/users", json=user_body(domain, "lidia")).status_code == 400
    restored = graph("POST", f"/v1.0/directory/deletedItems/{created['id']}/restore")
    assert restored.status_code == 200 and restored.json()["@odata.type"] == "#microsoft.graph.user"
    assert graph("GET", f"/v1.0/users/{created['id']}").status_code == 200
    graph("DELETE", f"/v1.0/users/{created['id']}")
    assert graph("DELETE", f"/v1.0/directory/deletedItems/{created['id']}").status_code == 204
    assert graph("GET", f"/v1.0/directory/deletedItems/{created['id']}").status_code == 404


def test_paging_with_top_and_absolute_next_links(graph, domain, entra):
    """Learn "Paging": follow @odata.nextLink (an absolute URL on the same host) until it is absent."""
    for n in range(5):
        create_user(graph, domain, f"pager{n}")
    first = graph("GET", "/v1.0/users?$top=2&$select=id").json()
    assert len(first["value"]) == 2
    next_link = urlsplit(first["@odata.nextLink"])
    assert f"{next_link.scheme}://{next_link.netloc}" == entra.base_url and "$skiptoken=" in next_link.query
    seen, link = [u["id"] for u in first["value"]], first["@odata.nextLink"]
    for _ in range(10):
        page = entra.graph("GET", link.replace(entra.base_url, ""), entra.app_token()).json()
        seen += [u["id"] for u in page["value"]]
        link = page.get("@odata.nextLink")
        if not link:
            break
    assert len(seen) == len(set(seen)) == 6   # the admin and five users, each once


@pytest.mark.parametrize("top", ["0", "1000", "ten"])
def test_top_outside_1_to_999_is_rejected(graph, entra, top):
    error = entra.assert_graph_error(graph("GET", f"/v1.0/users?$top={top}"), 400, "Request_BadRequest")
    assert error["message"] == f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."


def test_filters_and_advanced_queries(graph, domain, entra):
    """Learn "Advanced query capabilities": ne, not and endsWith need ConsistencyLevel: eventual and
    $count=true; without them $count=true is silently ignored."""
    create_user(graph, domain, "o.brien", department="Sales", surname="O'Brien")
    create_user(graph, domain, "ito", department="Research")
    by_quote = graph("GET", "/v1.0/users?$filter=surname eq 'O''Brien'&$select=surname").json()["value"]
    assert by_quote == [{"surname": "O'Brien"}]
    starts = graph("GET", "/v1.0/users?$filter=startswith(displayName,'o.b')&$select=id").json()["value"]
    assert len(starts) == 1
    assert len(graph("GET", "/v1.0/users?$filter=department in ('Sales','Research')").json()["value"]) == 2
    entra.assert_graph_error(graph("GET", "/v1.0/users?$filter=department ne 'Sales'"), 400,
                             "Request_UnsupportedQuery")
    entra.assert_graph_error(graph("GET", f"/v1.0/users?$filter=endswith(mail,'{domain}')&$count=true"), 400,
                             "Request_UnsupportedQuery")
    assert "@odata.count" not in graph("GET", "/v1.0/users?$count=true").json()
    eventual = {"ConsistencyLevel": "eventual"}
    advanced = graph("GET", "/v1.0/users?$filter=department ne 'Sales'&$count=true", headers=eventual).json()
    assert advanced["@odata.count"] == 2 and "Sales" not in [u.get("department") for u in advanced["value"]]
    upn_suffix = graph("GET", f"/v1.0/users?$filter=endswith(userPrincipalName,'@{domain}')&$count=true",
                       headers=eventual).json()
    assert upn_suffix["@odata.count"] == 3
    entra.assert_graph_error(graph("GET", "/v1.0/users?$filter=department eq"), 400, "BadRequest")


def test_count_segment_needs_eventual_consistency(graph, entra):
    """Learn "Advanced query capabilities": GET /users/$count without the header is 400; with it, text/plain."""
    error = entra.assert_graph_error(graph("GET", "/v1.0/users/$count"), 400, "Request_BadRequest")
    assert error["message"] == "$count is not currently supported."
    response = graph("GET", "/v1.0/users/$count", headers={"ConsistencyLevel": "eventual"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert int(response.text) >= 1


def test_manager_assign_read_expand_and_remove(graph, domain, entra):
    """Learn "Assign manager" (PUT $ref, 204), "List manager" (404 without one), $expand=manager."""
    boss, worker = create_user(graph, domain, "boss"), create_user(graph, domain, "worker")
    error = entra.assert_graph_error(graph("GET", f"/v1.0/users/{worker['id']}/manager"), 404,
                                     "Request_ResourceNotFound")
    assert error["message"].startswith("Resource 'manager' does not exist")
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{boss['id']}"}
    assert graph("PUT", f"/v1.0/users/{worker['id']}/manager/$ref", json=reference).status_code == 204
    manager = graph("GET", f"/v1.0/users/{worker['id']}/manager").json()
    assert manager["id"] == boss["id"] and manager["@odata.type"] == "#microsoft.graph.user"
    listed = graph("GET", f"/v1.0/users?$filter=id eq '{worker['id']}'&$expand=manager($select=id)&$select=id")
    assert listed.json()["value"][0]["manager"]["id"] == boss["id"]
    reports = graph("GET", f"/v1.0/users/{boss['id']}/directReports").json()["value"]
    assert [r["id"] for r in reports] == [worker["id"]]
    assert graph("DELETE", f"/v1.0/users/{worker['id']}/manager/$ref").status_code == 204
    assert graph("GET", f"/v1.0/users/{worker['id']}/manager").status_code == 404


def test_unknown_path_and_wrong_method(graph, entra):
    entra.assert_graph_error(graph("GET", "/v1.0/usersx"), 400, "BadRequest")
    entra.assert_graph_error(graph("PUT", "/v1.0/users"), 405, "Request_BadRequest")


def test_beta_is_served_like_v1(graph):
    response = graph("GET", "/beta/users?$top=1&$select=id")
    assert response.status_code == 200 and "/beta/$metadata#users(id)" in response.json()["@odata.context"]


def test_search_needs_eventual_consistency_and_matches_word_prefixes(graph, domain, entra):
    """Learn "Use the $search query parameter": directory objects need ConsistencyLevel: eventual; displayName
    matches on the start of any word."""
    create_user(graph, domain, "room1", displayName="Conf Room Adams")
    create_user(graph, domain, "room2", displayName="Lobby Desk")
    entra.assert_graph_error(graph("GET", '/v1.0/users?$search="displayName:adams"'), 400, "Request_UnsupportedQuery")
    found = graph("GET", '/v1.0/users?$search="displayName:adams" OR "displayName:desk"&$select=displayName',
                  headers={"ConsistencyLevel": "eventual"}).json()["value"]
    assert sorted(u["displayName"] for u in found) == ["Conf Room Adams", "Lobby Desk"]
