"""Conformance of directory extension properties (Learn: "extensionProperty resource type", "Create
extensionProperty", "Add custom data to resources using extensions"): definitions on an application, then users and
groups take the property in bodies, $select and $filter, and return it only when selected."""
import uuid

import pytest

STRONG_PASSWORD = "Xq7!mP2#vL9s"


@pytest.fixture
def graph(entra):
    token = entra.app_token()
    return lambda method, path, **kwargs: entra.graph(method, path, token, **kwargs)


def define(graph, app, name="idsyncWorkflow", targets=("User", "Group")):
    response = graph("POST", "/v1.0/applications/%s/extensionProperties" % app["id"],
                     json={"name": name, "dataType": "String", "targetObjects": list(targets)})
    assert response.status_code == 201, response.text
    return response.json()


def test_definition_then_user_and_group_values(graph):
    app = graph("POST", "/v1.0/applications", json={"displayName": "ext owner"}).json()
    definition = define(graph, app)
    name = "extension_%s_idsyncWorkflow" % app["appId"].replace("-", "")
    assert definition["name"] == name and definition["targetObjects"] == ["User", "Group"]
    assert definition["dataType"] == "String" and definition["isSyncedFromOnPremises"] is False
    listed = graph("GET", "/v1.0/applications/%s/extensionProperties" % app["id"],
                   params={"$filter": "name eq '%s'" % name}).json()["value"]
    assert [d["id"] for d in listed] == [definition["id"]]
    again = graph("POST", "/v1.0/applications/%s/extensionProperties" % app["id"],
                  json={"name": "idsyncWorkflow", "dataType": "String", "targetObjects": ["User"]})
    assert again.status_code == 400

    upn = "ext-%s@%s" % (uuid.uuid4().hex[:8], graph("GET", "/v1.0/domains").json()["value"][0]["id"])
    user = graph("POST", "/v1.0/users", json={
        "accountEnabled": True, "displayName": "Ext", "mailNickname": upn.split("@")[0], "userPrincipalName": upn,
        name: "hr_to_entra", "passwordProfile": {"password": STRONG_PASSWORD}}).json()
    assert name not in user                                         # never in the default property set
    got = graph("GET", "/v1.0/users/%s" % user["id"], params={"$select": "id,%s" % name}).json()
    assert got[name] == "hr_to_entra"
    found = graph("GET", "/v1.0/users", params={"$filter": "%s eq 'hr_to_entra'" % name,
                                                "$select": "id,%s" % name}).json()["value"]
    assert [u["id"] for u in found] == [user["id"]]
    assert graph("PATCH", "/v1.0/users/%s" % user["id"], json={name: "other"}).status_code == 204
    delta = graph("GET", "/v1.0/users/delta", params={"$select": "id,%s" % name}).json()["value"]
    assert {u["id"]: u.get(name) for u in delta}[user["id"]] == "other"

    group = graph("POST", "/v1.0/groups", json={"displayName": "g", "mailNickname": "g-%s" % uuid.uuid4().hex[:6],
                                                 "mailEnabled": False, "securityEnabled": True,
                                                 name: "hr_to_entra"}).json()
    assert graph("GET", "/v1.0/groups/%s" % group["id"], params={"$select": name}).json()[name] == "hr_to_entra"


def test_unregistered_or_removed_extension_is_refused(graph):
    app = graph("POST", "/v1.0/applications", json={"displayName": "ext owner 2"}).json()
    name = "extension_%s_nope" % app["appId"].replace("-", "")
    response = graph("GET", "/v1.0/users", params={"$select": "id,%s" % name})
    assert response.status_code == 400 and "Could not find a property" in response.json()["error"]["message"]
    definition = define(graph, app, "userOnly", ("User",))
    groups = graph("GET", "/v1.0/groups", params={"$select": "id,%s" % definition["name"]})
    assert groups.status_code == 400                                # defined for users only
    assert graph("DELETE", "/v1.0/applications/%s/extensionProperties/%s" % (app["id"], definition["id"])
                 ).status_code == 204
    response = graph("PATCH", "/v1.0/users/%s" % graph("GET", "/v1.0/users").json()["value"][0]["id"],
                     json={definition["name"]: "x"})
    assert response.status_code == 400 and "Invalid property" in response.json()["error"]["message"]
