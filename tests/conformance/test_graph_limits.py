"""Graph's attribute limits and uniqueness rules, with Graph's own error bodies (tests/emulator/graph_limits.py and
graph_uniqueness.py cite where each comes from): every maximum length at its maximum and one over, mailNickname and
userPrincipalName characters, verified domains, usageLocation, and ObjectConflict across users, groups and their SMTP
proxy addresses. Top level and inside $batch."""
import sys
import uuid
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emulator"))
from graph_limits import MAX_LENGTHS  # noqa: E402  (the table under test)

STRONG_PASSWORD = "Xq7!mP2#vL9s"
UPN_CONFLICT = "Another object with the same value for property userPrincipalName already exists."
PROXY_CONFLICT = "Another object with the same value for property proxyAddresses already exists."
DOMAIN_MESSAGE = ("The domain portion of the userPrincipalName property is invalid. You must use one of the verified "
                  "domain names in your organization.")


@pytest.fixture
def graph(entra):
    token = entra.app_token()
    return lambda method, path, **kwargs: entra.graph(method, path, token, **kwargs)


@pytest.fixture
def domain(graph):
    return graph("GET", "/v1.0/organization").json()["value"][0]["verifiedDomains"][0]["name"]


def unique(prefix="u"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def user_body(domain, nickname=None, **extra):
    nickname = nickname or unique()
    return {"accountEnabled": True, "displayName": nickname, "mailNickname": nickname,
            "userPrincipalName": f"{nickname}@{domain}", "passwordProfile": {"password": STRONG_PASSWORD}, **extra}


def group_body(nickname=None, unified=False, **extra):
    nickname = nickname or unique("g")
    return {"displayName": nickname, "mailNickname": nickname, "mailEnabled": unified, "securityEnabled": not unified,
            "groupTypes": ["Unified"] if unified else [], **extra}


def created(response):
    assert response.status_code == 201, response.text
    return response.json()


def assert_refused(entra, response, prop, resource):
    """microsoftgraph/microsoft-graph-docs#5777: Graph's body for a value it refuses."""
    error = entra.assert_graph_error(response, 400, "Request_BadRequest")
    assert error["message"] == f"Invalid value specified for property '{prop}' of resource '{resource}'."
    assert error["details"] == [{"code": "InvalidValue", "target": prop}]


def assert_invalid_upn(entra, response, code):
    error = entra.assert_graph_error(response, 400, "Request_BadRequest")
    assert error["message"] == "Property userPrincipalName is invalid."
    assert error["details"] == [{"code": code, "message": "Property userPrincipalName is invalid.",
                                 "target": "userPrincipalName"}]


def assert_conflict(entra, response, prop):
    error = entra.assert_graph_error(response, 400, "Request_BadRequest")
    if prop == "userPrincipalName":
        assert error["message"] == UPN_CONFLICT
        assert error["details"] == [{"target": "userPrincipalName", "code": "ObjectConflict"}]
    else:
        assert error["message"] == PROXY_CONFLICT
        assert error["details"] == [{"code": "ObjectConflict", "message": PROXY_CONFLICT, "target": "proxyAddresses"},
                                    {"code": "ConflictingObjects", "message": PROXY_CONFLICT}]


# -- maximum lengths -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prop, maximum", sorted(MAX_LENGTHS["User"].items()))
def test_user_maximum_lengths(graph, domain, entra, prop, maximum):
    nickname = "n" * maximum if prop == "mailNickname" else unique()
    at_max = {prop: "x" * maximum} if prop != "mailNickname" else {}
    user = created(graph("POST", "/v1.0/users", json=user_body(domain, nickname, **at_max)))
    assert graph("GET", f"/v1.0/users/{user['id']}?$select={prop}").json()[prop] == (
        nickname if prop == "mailNickname" else "x" * maximum)
    assert_refused(entra, graph("PATCH", f"/v1.0/users/{user['id']}", json={prop: "x" * (maximum + 1)}),
                   prop, "User")
    over = user_body(domain, **{prop: "x" * (maximum + 1)})
    assert_refused(entra, graph("POST", "/v1.0/users", json=over), prop, "User")


@pytest.mark.parametrize("prop, maximum", sorted(MAX_LENGTHS["Group"].items()))
def test_group_maximum_lengths(graph, entra, prop, maximum):
    body = group_body(**{prop: "g" * maximum})
    group = created(graph("POST", "/v1.0/groups", json=body))
    assert group[prop] == "g" * maximum
    assert_refused(entra, graph("PATCH", f"/v1.0/groups/{group['id']}", json={prop: "g" * (maximum + 1)}),
                   prop, "Group")
    assert_refused(entra, graph("POST", "/v1.0/groups", json=group_body(**{prop: "g" * (maximum + 1)})),
                   prop, "Group")


def test_display_name_cannot_be_cleared(graph, domain, entra):
    user = created(graph("POST", "/v1.0/users", json=user_body(domain)))
    assert_refused(entra, graph("PATCH", f"/v1.0/users/{user['id']}", json={"displayName": ""}), "displayName",
                   "User")


def test_limits_apply_inside_batch(graph, domain, entra):
    items = [{"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
              "body": user_body(domain, jobTitle="j" * 129)},
             {"id": "2", "method": "POST", "url": "/groups", "headers": {"Content-Type": "application/json"},
              "body": group_body(displayName="d" * 257)}]
    response = graph("POST", "/v1.0/$batch", json={"requests": items})
    assert response.status_code == 200, response.text
    by_id = {item["id"]: item for item in response.json()["responses"]}
    assert by_id["1"]["status"] == by_id["2"]["status"] == 400
    assert by_id["1"]["body"]["error"]["details"] == [{"code": "InvalidValue", "target": "jobTitle"}]
    assert by_id["2"]["body"]["error"]["message"] == ("Invalid value specified for property 'displayName' of "
                                                      "resource 'Group'.")


# -- mailNickname, userPrincipalName, usageLocation ------------------------------------------------------------


@pytest.mark.parametrize("bad", list("@()\\[]\";:<>,") + [" ", "é"])
def test_mail_nickname_characters(graph, domain, entra, bad):
    nickname = f"a{bad}b"
    body = user_body(domain)
    body["mailNickname"] = nickname
    assert_refused(entra, graph("POST", "/v1.0/users", json=body), "mailNickname", "User")
    assert_refused(entra, graph("POST", "/v1.0/groups", json=group_body(mailNickname=nickname)), "mailNickname",
                   "Group")


def test_upn_alias_length_and_allowed_characters(graph, domain, entra):
    created(graph("POST", "/v1.0/users", json=user_body(domain, "a" * 64)))
    body = user_body(domain)
    body["userPrincipalName"] = f"{'b' * 65}@{domain}"
    assert_invalid_upn(entra, graph("POST", "/v1.0/users", json=body), "InvalidValue")
    body["userPrincipalName"] = f"o'neil.a_b-c!d#e^f~{unique()}@{domain}"  # every allowed punctuation mark
    created(graph("POST", "/v1.0/users", json=body))


@pytest.mark.parametrize("alias, code", [
    ("a+b", "InvalidCharacter"), ("a b", "InvalidCharacter"), ("ren\u00e9", "InvalidCharacter"),
    ("a@b", "InvalidCharacter"), ("dot.", "InvalidValue"), (".dot", "InvalidValue"), ("do..t", "InvalidValue"),
])
def test_upn_alias_rules(graph, domain, entra, alias, code):
    body = user_body(domain)
    body["userPrincipalName"] = f"{alias}@{domain}"
    assert_invalid_upn(entra, graph("POST", "/v1.0/users", json=body), code)


def test_upn_domain_must_be_a_verified_domain(graph, domain, entra, emulator):
    body = user_body(domain)
    body["userPrincipalName"] = f"{body['mailNickname']}@fabrikam.example"
    error = entra.assert_graph_error(graph("POST", "/v1.0/users", json=body), 400, "Request_BadRequest")
    assert error["message"] == DOMAIN_MESSAGE and "details" not in error
    emulator.admin("POST", "domains", {"name": "contoso-unverified.example", "isVerified": False})
    body["userPrincipalName"] = f"{body['mailNickname']}@contoso-unverified.example"
    assert entra.assert_graph_error(graph("POST", "/v1.0/users", json=body), 400,
                                    "Request_BadRequest")["message"] == DOMAIN_MESSAGE
    emulator.admin("POST", "domains", {"name": "fabrikam.example"})
    body["userPrincipalName"] = f"{body['mailNickname']}@FABRIKAM.example"
    created(graph("POST", "/v1.0/users", json=body))
    names = [d["name"] for d in graph("GET", "/v1.0/organization").json()["value"][0]["verifiedDomains"]]
    assert names == [domain, "fabrikam.example"]  # the unverified one is not a verified domain


def test_usage_location_is_an_iso_3166_alpha2_code(graph, domain, entra):
    user = created(graph("POST", "/v1.0/users", json=user_body(domain, usageLocation="US")))
    assert graph("PATCH", f"/v1.0/users/{user['id']}", json={"usageLocation": "GB"}).status_code == 204
    for bad in ("USA", "XX", "U1", ""):
        assert_refused(entra, graph("PATCH", f"/v1.0/users/{user['id']}", json={"usageLocation": bad}),
                       "usageLocation", "User")


# -- uniqueness ------------------------------------------------------------------------------------------------


def test_mail_becomes_the_primary_proxy_address(graph, domain):
    nickname = unique()
    user = created(graph("POST", "/v1.0/users", json=user_body(domain, nickname, mail=f"{nickname}@{domain}")))
    select = f"/v1.0/users/{user['id']}?$select=mail,proxyAddresses"
    assert graph("GET", select).json()["proxyAddresses"] == [f"SMTP:{nickname}@{domain}"]
    assert graph("PATCH", f"/v1.0/users/{user['id']}", json={"mail": f"new.{nickname}@{domain}"}).status_code == 204
    assert graph("GET", select).json()["proxyAddresses"] == [f"SMTP:new.{nickname}@{domain}",
                                                            f"smtp:{nickname}@{domain}"]


def test_upn_conflicts_ignore_case(graph, domain, entra):
    first = created(graph("POST", "/v1.0/users", json=user_body(domain)))
    again = user_body(domain)
    again["userPrincipalName"] = first["userPrincipalName"].upper()
    assert_conflict(entra, graph("POST", "/v1.0/users", json=again), "userPrincipalName")
    other = created(graph("POST", "/v1.0/users", json=user_body(domain)))
    patch = {"userPrincipalName": first["userPrincipalName"].title()}
    assert_conflict(entra, graph("PATCH", f"/v1.0/users/{other['id']}", json=patch), "userPrincipalName")


def test_a_new_upn_or_mail_may_not_be_another_objects_smtp_address(graph, domain, entra, emulator):
    holder = created(graph("POST", "/v1.0/users", json=user_body(domain)))
    emulator.admin("PUT", f"objects/{holder['id']}/proxyAddresses",
                   {"proxyAddresses": [f"SMTP:{holder['userPrincipalName']}", f"smtp:alias.taken@{domain}"]})
    body = user_body(domain)
    body["userPrincipalName"] = f"Alias.Taken@{domain.upper()}"
    assert_conflict(entra, graph("POST", "/v1.0/users", json=body), "proxyAddresses")
    assert_conflict(entra, graph("POST", "/v1.0/users", json=user_body(domain, mail=f"ALIAS.taken@{domain}")),
                    "proxyAddresses")
    mailed = created(graph("POST", "/v1.0/users", json=user_body(domain)))
    assert_conflict(entra, graph("PATCH", f"/v1.0/users/{mailed['id']}", json={"mail": f"alias.taken@{domain}"}),
                    "proxyAddresses")


def test_a_users_mail_conflicts_with_another_users_mail(graph, domain, entra):
    nickname = unique()
    created(graph("POST", "/v1.0/users", json=user_body(domain, nickname, mail=f"{nickname}@{domain}")))
    assert_conflict(entra, graph("POST", "/v1.0/users", json=user_body(domain, mail=f"{nickname.upper()}@{domain}")),
                    "proxyAddresses")


def test_microsoft_365_group_addresses_are_unique(graph, domain, entra):
    nickname = unique()
    created(graph("POST", "/v1.0/users", json=user_body(domain, mail=f"{nickname}@{domain}")))
    assert_conflict(entra, graph("POST", "/v1.0/groups", json=group_body(nickname, unified=True)), "proxyAddresses")
    team = unique("team")
    created(graph("POST", "/v1.0/groups", json=group_body(team, unified=True)))
    assert_conflict(entra, graph("POST", "/v1.0/groups", json=group_body(team.upper(), unified=True)),
                    "proxyAddresses")
    created(graph("POST", "/v1.0/groups", json=group_body(team)))  # a security group's nickname need not be unique


def test_a_soft_deleted_user_keeps_its_values(graph, domain, entra):
    nickname = unique()
    user = created(graph("POST", "/v1.0/users", json=user_body(domain, nickname, mail=f"{nickname}@{domain}")))
    assert graph("DELETE", f"/v1.0/users/{user['id']}").status_code == 204
    assert_conflict(entra, graph("POST", "/v1.0/users", json=user_body(domain, mail=f"{nickname}@{domain}")),
                    "proxyAddresses")
    assert_conflict(entra, graph("POST", "/v1.0/users", json=user_body(domain, nickname)), "userPrincipalName")
    assert graph("DELETE", f"/v1.0/directory/deletedItems/{user['id']}").status_code == 204
    created(graph("POST", "/v1.0/users", json=user_body(domain, nickname, mail=f"{nickname}@{domain}")))


# -- domains ---------------------------------------------------------------------------------------------------


def test_domains_list_and_get(graph, domain, emulator):
    emulator.admin("POST", "domains", {"name": "fabrikam.example", "isDefault": True})
    domains = {d["id"]: d for d in graph("GET", "/v1.0/domains").json()["value"]}
    assert {k: domains[domain][k] for k in ("isVerified", "isDefault", "isInitial")} == {
        "isVerified": True, "isDefault": False, "isInitial": True}
    assert {k: domains["fabrikam.example"][k] for k in ("isVerified", "isDefault", "isInitial")} == {
        "isVerified": True, "isDefault": True, "isInitial": False}
    assert domains[domain]["authenticationType"] == "Managed"
    one = graph("GET", "/v1.0/domains/FABRIKAM.example?$select=id,isVerified").json()
    assert {k: v for k, v in one.items() if not k.startswith("@")} == {"id": "fabrikam.example", "isVerified": True}
    assert graph("GET", "/v1.0/domains/nowhere.example").status_code == 404
    group = created(graph("POST", "/v1.0/groups", json=group_body(unique("m"), unified=True)))
    assert group["mail"].endswith("@fabrikam.example")  # new addresses use the default domain


def test_domains_need_domain_read_all_but_organization_lists_verified_domains(graph, entra):
    """Learn "List domains": Domain.Read.All (or Directory.Read.All) is needed; an app with User.ReadWrite.All,
    Group.ReadWrite.All and Organization.Read.All reads the verified domains from /organization instead."""
    app = created(graph("POST", "/v1.0/applications", json={"displayName": "idsync domains probe"}))
    sp = created(graph("POST", "/v1.0/servicePrincipals", json={"appId": app["appId"]}))
    secret = graph("POST", f"/v1.0/applications/{app['id']}/addPassword", json={}).json()["secretText"]
    graph_sp = graph("GET", "/v1.0/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')").json()
    roles = {role["value"]: role["id"] for role in graph_sp["appRoles"]}
    for permission in ("User.ReadWrite.All", "Group.ReadWrite.All", "Organization.Read.All"):
        created(graph("POST", f"/v1.0/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo", json={
            "principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": roles[permission]}))
    token = entra.client_credentials(client_id=app["appId"], client_secret=secret).json()["access_token"]
    entra.assert_graph_error(entra.graph("GET", "/v1.0/domains", token), 403, "Authorization_RequestDenied")
    organization = entra.graph("GET", "/v1.0/organization?$select=verifiedDomains", token)
    assert organization.status_code == 200
    assert organization.json()["value"][0]["verifiedDomains"][0]["isInitial"] is True


def test_domain_admin_api_validation(entra, emulator):
    headers = {"X-Emulator-Key": emulator.endpoints["emulator_key"]}
    for bad in ({}, {"name": "not a domain"}, {"name": emulator.endpoints["tenant_domain"]},
                {"name": "x.example", "isDefault": True, "isVerified": False}):
        response = requests.post(f"{entra.base_url}/_emulator/domains", json=bad, headers=headers,
                                 verify=entra.ca_path, timeout=30)
        assert response.status_code == 400, (bad, response.text)
    emulator.admin("POST", "seed", {"generate": {"users": 2}, "domains": [{"name": "seeded.example"}]})
    assert "seeded.example" in [d["id"] for d in emulator.admin("GET", "domains")["domains"]]
    assert emulator.admin("DELETE", "domains/seeded.example") is None
    emulator.reset()
    assert [d["id"] for d in emulator.admin("GET", "domains")["domains"]] == [emulator.endpoints["tenant_domain"]]
