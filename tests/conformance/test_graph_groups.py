"""Conformance of the emulated Graph /groups API: groups, members and owners.

"Right" comes from Microsoft Learn (Create group, Update group, Add members, Remove member, List group members,
Delete group) and REFERENCE.md.
"""
import pytest

MEMBERS_EXIST = ("One or more added object references already exist for the following modified properties: "
                 "'members'.")


@pytest.fixture
def graph(entra):
    token = entra.app_token()
    return lambda method, path, **kwargs: entra.graph(method, path, token, **kwargs)


@pytest.fixture
def make_users(graph, entra):
    """Ids of `count` new users, made by the admin API's synthetic generator (one call instead of `count`)."""
    def make(count):
        before = {u["id"] for u in graph("GET", "/v1.0/users?$select=id&$top=999").json()["value"]}
        entra.emulator.admin("POST", "seed", {"generate": {"users": count, "groups": 0}})
        after = [u["id"] for u in graph("GET", "/v1.0/users?$select=id&$top=999").json()["value"]]
        made = [user_id for user_id in after if user_id not in before]
        assert len(made) == count
        return made
    return make


def ref(object_id):
    return f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"


def security_group(graph, name="Sync Readers", **extra):
    response = graph("POST", "/v1.0/groups", json={"displayName": name, "mailEnabled": False,
                                                   "mailNickname": name.replace(" ", ""), "securityEnabled": True,
                                                   **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_security_and_microsoft_365_groups(graph):
    """Learn "Create group": security groups and Unified (Microsoft 365) groups; mail for the latter."""
    security = security_group(graph)
    assert security["groupTypes"] == [] and security["mail"] is None and security["securityEnabled"] is True
    assert security["@odata.context"].endswith("#groups/$entity")
    unified = graph("POST", "/v1.0/groups", json={"displayName": "Project X", "mailEnabled": True,
                                                  "mailNickname": "projectx", "securityEnabled": False,
                                                  "groupTypes": ["Unified"]}).json()
    assert unified["groupTypes"] == ["Unified"] and unified["mail"].startswith("projectx@")
    assert unified["visibility"] == "Public"


@pytest.mark.parametrize("missing", ["displayName", "mailEnabled", "mailNickname", "securityEnabled"])
def test_create_requires_the_four_documented_properties(graph, entra, missing):
    body = {"displayName": "G", "mailEnabled": False, "mailNickname": "g", "securityEnabled": True}
    del body[missing]
    error = entra.assert_graph_error(graph("POST", "/v1.0/groups", json=body), 400, "Request_BadRequest")
    assert error["message"] == f"Invalid value specified for property '{missing}' of resource 'Group'."


def test_create_binds_at_most_twenty_links(graph, entra, make_users):
    """Learn "Create group": up to 20 members and owners (together) can be added on create."""
    users = make_users(21)
    body = {"displayName": "Big", "mailEnabled": False, "mailNickname": "big", "securityEnabled": True,
            "members@odata.bind": [ref(u) for u in users[:20]], "owners@odata.bind": [ref(users[20])]}
    error = entra.assert_graph_error(graph("POST", "/v1.0/groups", json=body), 400, "Request_BadRequest")
    assert error["message"] == "A resource cannot contain more than 20 link changes"
    body["members@odata.bind"] = [ref(u) for u in users[:19]]
    group = graph("POST", "/v1.0/groups", json=body).json()
    members = graph("GET", f"/v1.0/groups/{group['id']}/members?$select=id").json()["value"]
    assert sorted(m["id"] for m in members) == sorted(users[:19])
    owners = graph("GET", f"/v1.0/groups/{group['id']}/owners").json()["value"]
    assert [o["id"] for o in owners] == [users[20]]


def test_add_member_ref_is_204_then_400_when_already_member(graph, entra, make_users):
    """REFERENCE.md / Learn "Add members": 204; 400 when the member exists; 404 for an unknown object."""
    group, (user,) = security_group(graph), make_users(1)
    path = f"/v1.0/groups/{group['id']}/members/$ref"
    assert graph("POST", path, json={"@odata.id": ref(user)}).status_code == 204
    error = entra.assert_graph_error(graph("POST", path, json={"@odata.id": ref(user)}), 400, "Request_BadRequest")
    assert error["message"] == MEMBERS_EXIST
    ghost = "8a3b7c4e-0000-4000-8000-000000000001"
    entra.assert_graph_error(graph("POST", path, json={"@odata.id": ref(ghost)}), 404, "Request_ResourceNotFound")


def test_patch_members_bind_is_all_or_nothing(graph, entra, make_users):
    """Learn "Add members" example 2: PATCH with members@odata.bind, at most 20, none added on error."""
    group, users = security_group(graph), make_users(22)
    path = f"/v1.0/groups/{group['id']}"
    too_many = {"members@odata.bind": [ref(u) for u in users[:21]]}
    entra.assert_graph_error(graph("PATCH", path, json=too_many), 400, "Request_BadRequest")
    assert graph("POST", f"{path}/members/$ref", json={"@odata.id": ref(users[0])}).status_code == 204
    overlapping = {"members@odata.bind": [ref(u) for u in users[:5]]}
    error = entra.assert_graph_error(graph("PATCH", path, json=overlapping), 400, "Request_BadRequest")
    assert error["message"] == MEMBERS_EXIST
    count = graph("GET", f"{path}/members/$count", headers={"ConsistencyLevel": "eventual"})
    assert count.text == "1"
    assert graph("PATCH", path, json={"members@odata.bind": [ref(u) for u in users[1:21]]}).status_code == 204
    assert graph("GET", f"{path}/members/$count", headers={"ConsistencyLevel": "eventual"}).text == "21"


def test_members_are_paged_and_typed(graph, entra, make_users):
    """Learn "List group members": directoryObjects with @odata.type, paged with @odata.nextLink."""
    group, users = security_group(graph), make_users(7)
    graph("PATCH", f"/v1.0/groups/{group['id']}", json={"members@odata.bind": [ref(u) for u in users]})
    page = graph("GET", f"/v1.0/groups/{group['id']}/members?$top=5").json()
    assert len(page["value"]) == 5 and page["value"][0]["@odata.type"] == "#microsoft.graph.user"
    assert "userPrincipalName" in page["value"][0]
    rest = entra.graph("GET", page["@odata.nextLink"].replace(entra.base_url, ""), entra.app_token()).json()
    assert len(rest["value"]) == 2 and "@odata.nextLink" not in rest
    entra.assert_graph_error(graph("GET", f"/v1.0/groups/{group['id']}/members/$count"), 400, "Request_BadRequest")


def test_remove_member_and_member_of(graph, entra, make_users):
    """Learn "Remove member": DELETE .../members/{id}/$ref, 204; 404 when not a member."""
    group, (user,) = security_group(graph), make_users(1)
    graph("POST", f"/v1.0/groups/{group['id']}/members/$ref", json={"@odata.id": ref(user)})
    member_of = graph("GET", f"/v1.0/users/{user}/memberOf").json()["value"]
    assert [(g["@odata.type"], g["id"]) for g in member_of] == [("#microsoft.graph.group", group["id"])]
    assert graph("DELETE", f"/v1.0/groups/{group['id']}/members/{user}/$ref").status_code == 204
    entra.assert_graph_error(graph("DELETE", f"/v1.0/groups/{group['id']}/members/{user}/$ref"), 404,
                             "Request_ResourceNotFound")
    assert graph("GET", f"/v1.0/users/{user}/memberOf").json()["value"] == []


def test_delete_security_group_is_permanent_but_microsoft_365_is_restorable(graph):
    """Learn "Delete group": Microsoft 365 groups are kept 30 days in deletedItems, security groups are not."""
    security = security_group(graph)
    unified = graph("POST", "/v1.0/groups", json={"displayName": "Team", "mailEnabled": True, "mailNickname": "team",
                                                  "securityEnabled": False, "groupTypes": ["Unified"]}).json()
    assert graph("DELETE", f"/v1.0/groups/{security['id']}").status_code == 204
    assert graph("DELETE", f"/v1.0/groups/{unified['id']}").status_code == 204
    deleted = graph("GET", "/v1.0/directory/deletedItems/microsoft.graph.group").json()["value"]
    assert [g["id"] for g in deleted] == [unified["id"]]


def test_list_filters_and_updates(graph, entra):
    security_group(graph, "Finance Approvers", description="old")
    security_group(graph, "Finance Viewers")
    found = graph("GET", "/v1.0/groups?$filter=startswith(displayName,'finance')&$select=displayName").json()
    assert sorted(g["displayName"] for g in found["value"]) == ["Finance Approvers", "Finance Viewers"]
    group_id = graph("GET", "/v1.0/groups?$filter=displayName eq 'Finance Approvers'").json()["value"][0]["id"]
    assert graph("PATCH", f"/v1.0/groups/{group_id}", json={"description": "new"}).status_code == 204
    assert graph("GET", f"/v1.0/groups/{group_id}?$select=description").json()["description"] == "new"
    unified = graph("GET", "/v1.0/groups?$filter=groupTypes/any(t:t eq 'Unified')").json()["value"]
    assert unified == []
    entra.assert_graph_error(graph("PATCH", f"/v1.0/groups/{group_id}", json={"mail": "x@y.z"}), 400,
                             "Request_BadRequest")


def test_expand_members_and_filter_on_relationships(graph, entra, make_users):
    """Learn "List groups" ($expand=members, at most 20) and "List group members" example 5 ($filter on a
    relationship needs ConsistencyLevel: eventual and $count=true)."""
    group, users = security_group(graph), make_users(3)
    graph("PATCH", f"/v1.0/groups/{group['id']}", json={"members@odata.bind": [ref(u) for u in users]})
    expanded = graph("GET", f"/v1.0/groups/{group['id']}?$expand=members($select=id)&$select=id").json()
    assert sorted(m["id"] for m in expanded["members"]) == sorted(users)
    path = f"/v1.0/groups/{group['id']}/members?$filter=id eq '{users[0]}'"
    entra.assert_graph_error(graph("GET", path), 400, "Request_UnsupportedQuery")
    found = graph("GET", path + "&$count=true", headers={"ConsistencyLevel": "eventual"}).json()
    assert found["@odata.count"] == 1 and found["value"][0]["id"] == users[0]
    entra.assert_graph_error(graph("GET", "/v1.0/groups?$expand=manager"), 400, "BadRequest")
