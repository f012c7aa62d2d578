"""Conformance of the emulated Graph application model: applications, service principals, credentials, consent
(app role assignments), directory roles, /organization, and permission enforcement from the token.

"Right" comes from Microsoft Learn (Create/Update/Upsert application, addPassword, keyCredential, Create
servicePrincipal, Grant an appRoleAssignment, unifiedRoleAssignment, directoryRole, Get organization, each API's
permissions table) and REFERENCE.md.
"""
import base64
import uuid

import pytest
import requests

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"
EXCHANGE_MANAGE_AS_APP = "dc50a0fb-09a3-484d-be87-e023b12c6440"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
GRAPH_CLI = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
STRONG_PASSWORD = "Xq7!mP2#vL9s"


@pytest.fixture
def graph(entra):
    token = entra.app_token()
    return lambda method, path, **kwargs: entra.graph(method, path, token, **kwargs)


@pytest.fixture
def graph_sp(graph):
    return graph("GET", f"/v1.0/servicePrincipals(appId='{GRAPH_APP_ID}')").json()


def create_app(graph, **body):
    response = graph("POST", "/v1.0/applications", json={"displayName": "idsync connector", **body})
    assert response.status_code == 201, response.text
    return response.json()


def app_with_one_role(graph, graph_sp, role_id):
    """An app whose service principal is consented to exactly one Microsoft Graph app role; returns (app, secret)."""
    app = create_app(graph)
    secret = graph("POST", f"/v1.0/applications/{app['id']}/addPassword", json={}).json()["secretText"]
    sp = graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]}).json()
    grant = graph("POST", f"/v1.0/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo",
                  json={"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": role_id})
    assert grant.status_code == 201, grant.text
    return app, secret


def test_create_application_defaults(graph, entra):
    """Learn "Create application": 201 with id, appId, createdDateTime, publisherDomain; AzureADMyOrg."""
    app = create_app(graph)
    assert uuid.UUID(app["id"]) and uuid.UUID(app["appId"]) and app["id"] != app["appId"]
    assert app["signInAudience"] == "AzureADMyOrg" and app["createdDateTime"].endswith("Z")
    assert app["publisherDomain"] == graph("GET", "/v1.0/organization").json()["value"][0]["verifiedDomains"][0]["name"]
    assert app["passwordCredentials"] == [] and app["keyCredentials"] == []
    by_app_id = graph("GET", f"/v1.0/applications(appId='{app['appId']}')")
    assert by_app_id.status_code == 200 and by_app_id.json()["id"] == app["id"]
    listed = graph("GET", f"/v1.0/applications?$filter=appId eq '{app['appId']}'&$select=id").json()["value"]
    assert listed == [{"id": app["id"]}]
    assert graph("PATCH", f"/v1.0/applications/{app['id']}", json={"notes": "managed"}).status_code == 204
    entra.assert_graph_error(graph("POST", "/v1.0/applications", json={"notes": "no name"}), 400,
                             "Request_BadRequest")


def test_key_credentials_from_a_certificate(graph, entra, client_certificate):
    """Learn "keyCredential resource type": key is base64 DER and only returned when keyCredentials is selected;
    customKeyIdentifier defaults to the thumbprint; dates and displayName come from the certificate."""
    credential = {"type": "AsymmetricX509Cert", "usage": "Verify",
                  "key": base64.b64encode(client_certificate.der).decode()}
    app = create_app(graph, keyCredentials=[credential])
    stored = app["keyCredentials"][0]
    assert stored["key"] is None and stored["customKeyIdentifier"] == client_certificate.sha1_hex
    assert stored["displayName"] == "CN=idsync test client" and uuid.UUID(stored["keyId"])
    assert stored["startDateTime"] < stored["endDateTime"]
    selected = graph("GET", f"/v1.0/applications/{app['id']}?$select=keyCredentials").json()["keyCredentials"][0]
    assert base64.b64decode(selected["key"]) == client_certificate.der
    # Sending the credential back without its key (as read) keeps it.
    keep = {k: v for k, v in stored.items() if k != "key"}
    assert graph("PATCH", f"/v1.0/applications/{app['id']}", json={"keyCredentials": [keep]}).status_code == 204
    again = graph("GET", f"/v1.0/applications/{app['id']}?$select=keyCredentials").json()["keyCredentials"]
    assert again[0]["key"] == selected["key"]
    bad = dict(credential, key=base64.b64encode(b"not a certificate").decode())
    error = entra.assert_graph_error(graph("POST", "/v1.0/applications", json={"displayName": "x",
                                                                               "keyCredentials": [bad]}),
                                     400, "KeyCredentialsInvalidValue")
    assert "certificate" in error["message"]


def test_upsert_by_unique_name(graph, entra):
    """Learn "Upsert application": PATCH /applications(uniqueName='x') with Prefer: create-if-missing is 201 the
    first time and 204 after; without the header a missing application is 404."""
    path = "/v1.0/applications(uniqueName='idsync-connector')"
    entra.assert_graph_error(graph("PATCH", path, json={"displayName": "Connector"}), 404, "Request_ResourceNotFound")
    created = graph("PATCH", path, json={"displayName": "Connector"}, headers={"Prefer": "create-if-missing"})
    assert created.status_code == 201 and created.json()["uniqueName"] == "idsync-connector"
    updated = graph("PATCH", path, json={"displayName": "Connector 2"}, headers={"Prefer": "create-if-missing"})
    assert updated.status_code == 204
    assert graph("GET", path).json()["displayName"] == "Connector 2"


def test_add_password_returns_the_secret_once_and_it_authenticates(graph, entra):
    """Learn "application: addPassword": secretText only in this response; the secret then gets tokens."""
    app = create_app(graph)
    response = graph("POST", f"/v1.0/applications/{app['id']}/addPassword",
                     json={"passwordCredential": {"displayName": "rotation 1"}})
    assert response.status_code == 200
    credential = response.json()
    assert credential["hint"] == credential["secretText"][:3] and credential["displayName"] == "rotation 1"
    listed = graph("GET", f"/v1.0/applications/{app['id']}").json()["passwordCredentials"]
    assert listed[0]["keyId"] == credential["keyId"] and listed[0]["secretText"] is None
    graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]})
    token = entra.client_credentials(client_id=app["appId"], client_secret=credential["secretText"])
    assert token.status_code == 200, token.text
    assert graph("POST", f"/v1.0/applications/{app['id']}/removePassword",
                 json={"keyId": credential["keyId"]}).status_code == 204
    assert entra.client_credentials(client_id=app["appId"], client_secret=credential["secretText"]).status_code == 401


def test_service_principal_creation_rules(graph, entra):
    """Learn "Create servicePrincipal"; REFERENCE.md: NoBackingApplicationObject for an unknown appId; a second
    service principal for the same app is a 409 conflict."""
    app = create_app(graph)
    sp = graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]})
    assert sp.status_code == 201
    assert sp.json()["appId"] == app["appId"] and sp.json()["servicePrincipalType"] == "Application"
    entra.assert_graph_error(graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]}), 409,
                             "Request_MultipleObjectsWithSameKeyValue")
    unknown = str(uuid.uuid4())
    error = entra.assert_graph_error(graph("POST", "/v1.0/servicePrincipals", json={"appId": unknown}), 400,
                                     "Request_BadRequest")
    assert error["message"] == (f"The appId '{unknown}' of the service principal does not reference a valid "
                                "application object.")
    assert error["details"] == [{"target": "appId", "code": "NoBackingApplicationObject"}]
    by_app_id = graph("GET", f"/v1.0/servicePrincipals(appId='{app['appId']}')").json()
    assert by_app_id["id"] == sp.json()["id"]


def test_first_party_service_principals_carry_microsoft_ids(graph, graph_sp):
    roles = {r["value"]: r["id"] for r in graph_sp["appRoles"]}
    assert roles["User.Read.All"] == USER_READ_ALL
    assert roles["RoleManagement.ReadWrite.Directory"] == "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"
    assert all(r["allowedMemberTypes"] == ["Application"] for r in graph_sp["appRoles"])
    exchange = graph("GET", f"/v1.0/servicePrincipals?$filter=appId eq '{EXCHANGE_APP_ID}'").json()["value"][0]
    assert {r["value"]: r["id"] for r in exchange["appRoles"]} == {"Exchange.ManageAsApp": EXCHANGE_MANAGE_AS_APP}


def test_consent_grants_roles_into_the_token_and_least_privilege_is_enforced(graph, graph_sp, entra):
    """Learn "Grant an appRoleAssignment for a service principal": 201 with an opaque (non-GUID) id; the role then
    appears in the app's token. With only User.Read.All, writes and other resources are 403."""
    app, secret = app_with_one_role(graph, graph_sp, USER_READ_ALL)
    assignments = graph("GET", f"/v1.0/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo").json()["value"]
    mine = [a for a in assignments if a["principalDisplayName"] == "idsync connector"]
    assert len(mine) == 1 and mine[0]["principalType"] == "ServicePrincipal"
    with pytest.raises(ValueError):
        uuid.UUID(mine[0]["id"])
    token = entra.client_credentials(client_id=app["appId"], client_secret=secret).json()["access_token"]
    assert entra.claims(token)["roles"] == ["User.Read.All"]
    assert entra.graph("GET", "/v1.0/users?$top=1", token).status_code == 200
    error = entra.assert_graph_error(entra.graph("PATCH", f"/v1.0/applications/{app['id']}", token,
                                                 json={"notes": "x"}), 403, "Authorization_RequestDenied")
    assert error["message"] == "Insufficient privileges to complete the operation."
    entra.assert_graph_error(entra.graph("GET", "/v1.0/groups", token), 403, "Authorization_RequestDenied")
    entra.assert_graph_error(entra.graph("POST", "/v1.0/users", token, json={}), 403, "Authorization_RequestDenied")


def test_assignment_validation_and_revocation(graph, graph_sp, entra):
    app, _ = app_with_one_role(graph, graph_sp, USER_READ_ALL)
    sp = graph("GET", f"/v1.0/servicePrincipals(appId='{app['appId']}')").json()
    path = f"/v1.0/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo"
    body = {"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": USER_READ_ALL}
    error = entra.assert_graph_error(graph("POST", path, json=body), 400, "Request_BadRequest")
    assert error["message"] == "Permission being assigned already exists on the object."
    entra.assert_graph_error(graph("POST", path, json=dict(body, appRoleId=str(uuid.uuid4()))), 400,
                             "Request_BadRequest")
    entra.assert_graph_error(graph("POST", path, json=dict(body, principalId=str(uuid.uuid4()))), 404,
                             "Request_ResourceNotFound")
    granted = graph("GET", f"/v1.0/servicePrincipals/{sp['id']}/appRoleAssignments").json()["value"]
    assert [a["appRoleId"] for a in granted] == [USER_READ_ALL]
    assert graph("DELETE", f"{path}/{granted[0]['id']}").status_code == 204
    assert graph("GET", f"/v1.0/servicePrincipals/{sp['id']}/appRoleAssignments").json()["value"] == []


def test_role_assignments_and_directory_roles(graph, entra):
    """Learn "Create unifiedRoleAssignment" (201, directoryScopeId '/') and "List directoryRoles" (activated)."""
    app = create_app(graph)
    sp = graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]}).json()
    body = {"principalId": sp["id"], "roleDefinitionId": EXCHANGE_ADMINISTRATOR, "directoryScopeId": "/"}
    created = graph("POST", "/v1.0/roleManagement/directory/roleAssignments", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["roleDefinitionId"] == EXCHANGE_ADMINISTRATOR
    entra.assert_graph_error(graph("POST", "/v1.0/roleManagement/directory/roleAssignments", json=body), 400,
                             "Request_BadRequest")
    filtered = graph("GET", f"/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{sp['id']}'")
    assert [a["id"] for a in filtered.json()["value"]] == [created.json()["id"]]
    roles = {r["roleTemplateId"] for r in graph("GET", "/v1.0/directoryRoles").json()["value"]}
    assert {GLOBAL_ADMINISTRATOR, EXCHANGE_ADMINISTRATOR} <= roles
    members = graph("GET", f"/v1.0/directoryRoles(roleTemplateId='{EXCHANGE_ADMINISTRATOR}')/members").json()
    assert [m["id"] for m in members["value"]] == [sp["id"]]
    definition = graph("GET", f"/v1.0/roleManagement/directory/roleDefinitions/{GLOBAL_ADMINISTRATOR}").json()
    assert definition["displayName"] == "Global Administrator" and definition["isBuiltIn"] is True
    assert graph("DELETE", f"/v1.0/roleManagement/directory/roleAssignments/{created.json()['id']}").status_code == 204


def test_organization(graph, entra):
    """Learn "Get organization": id is the tenant id; verifiedDomains lists the initial domain."""
    org = graph("GET", "/v1.0/organization").json()["value"][0]
    assert org["id"] == entra.tenant_id
    assert org["verifiedDomains"][0]["isInitial"] is True and org["verifiedDomains"][0]["type"] == "Managed"
    assert graph("GET", f"/v1.0/organization/{entra.tenant_id}").json()["id"] == entra.tenant_id


def test_delete_application_goes_to_deleted_items(graph):
    app = create_app(graph)
    graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]})
    assert graph("DELETE", f"/v1.0/applications/{app['id']}").status_code == 204
    assert graph("GET", f"/v1.0/servicePrincipals(appId='{app['appId']}')").status_code == 404
    deleted = graph("GET", "/v1.0/directory/deletedItems/microsoft.graph.application").json()["value"]
    assert [a["id"] for a in deleted] == [app["id"]]


# ---------------------------------------------------------------------- delegated (user) tokens
def delegated_token(entra, username, password, scope):
    """Device code flow (Learn v2-oauth2-device-code) with the admin API standing in for the browser sign-in."""
    start = requests.post(f"{entra.base_url}/{entra.tenant_id}/oauth2/v2.0/devicecode",
                          data={"client_id": GRAPH_CLI, "scope": scope}, verify=entra.ca_path, timeout=30).json()
    entra.emulator.admin("POST", "devicecode/approve",
                         {"user_code": start["user_code"], "username": username, "password": password})
    token = entra.post_token({"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": GRAPH_CLI,
                              "device_code": start["device_code"]})
    assert token.status_code == 200, token.text
    return token.json()["access_token"]


def test_delegated_writes_need_scope_and_admin_role(graph, entra):
    """Learn "Overview of Microsoft Graph permissions": a delegated call needs the scope and a user allowed to do
    it; reading users is a default member permission, creating them needs User Administrator (or higher)."""
    domain = graph("GET", "/v1.0/organization").json()["value"][0]["verifiedDomains"][0]["name"]
    user = graph("POST", "/v1.0/users", json={
        "accountEnabled": True, "displayName": "Helpdesk", "mailNickname": "helpdesk",
        "userPrincipalName": f"helpdesk@{domain}", "passwordProfile": {"password": STRONG_PASSWORD}}).json()
    scope = "https://graph.microsoft.com/User.ReadWrite.All"
    token = delegated_token(entra, user["userPrincipalName"], STRONG_PASSWORD, scope)
    assert entra.graph("GET", "/v1.0/users?$top=1", token).status_code == 200
    new_user = {"accountEnabled": True, "displayName": "Temp", "mailNickname": "temp",
                "userPrincipalName": f"temp@{domain}", "passwordProfile": {"password": STRONG_PASSWORD}}
    entra.assert_graph_error(entra.graph("POST", "/v1.0/users", token, json=new_user), 403,
                             "Authorization_RequestDenied")
    graph("POST", "/v1.0/roleManagement/directory/roleAssignments",
          json={"principalId": user["id"], "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/"})
    token = delegated_token(entra, user["userPrincipalName"], STRONG_PASSWORD, scope)
    assert entra.graph("POST", "/v1.0/users", token, json=new_user).status_code == 201
    group_scope_missing = entra.graph("POST", "/v1.0/groups", token, json={
        "displayName": "G", "mailEnabled": False, "mailNickname": "g", "securityEnabled": True})
    entra.assert_graph_error(group_scope_missing, 403, "Authorization_RequestDenied")
