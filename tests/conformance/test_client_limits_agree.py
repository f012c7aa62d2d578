"""The collection's plan-time limits (plugins/module_utils/graph_limits.py) and the tenant emulator's enforcement
(tests/emulator/graph_limits.py) are written independently from Microsoft Learn; here the client's table is walked
against the emulator so the two cannot drift: for each limit, a value the client calls valid is accepted, and a
value the client refuses is refused by Graph too."""
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.idsync.entra.plugins.module_utils import graph_limits  # noqa: E402

PASSWORD = "Xq7!mP2#vL9s"


@pytest.fixture
def graph(entra):
    token = entra.app_token()
    return lambda method, path, **kwargs: entra.graph(method, path, token, **kwargs)


@pytest.fixture
def domains(graph):
    organization = graph("GET", "/v1.0/organization").json()["value"][0]
    return set(d["name"].lower() for d in organization["verifiedDomains"])


def new_user(domain, **values):
    nick = "u" + uuid.uuid4().hex[:10]
    body = {"accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": nick + "@" + domain,
            "passwordProfile": {"password": PASSWORD}}
    body.update(values)
    return body


def new_group(**values):
    nick = "g" + uuid.uuid4().hex[:10]
    body = {"displayName": nick, "mailNickname": nick, "mailEnabled": False, "securityEnabled": True}
    body.update(values)
    return body


def value_of_length(attribute, length, domain):
    if attribute == "userPrincipalName":
        local = ("a" * 64)[:min(64, length - len(domain) - 1)]
        return local + "@" + domain
    return ("n" if attribute == "mailNickname" else "x") * length


def post(graph, object_type, domain, attribute, value):
    if object_type == "user":
        return graph("POST", "/v1.0/users", json=new_user(domain, **{attribute: value}))
    return graph("POST", "/v1.0/groups", json=new_group(**{attribute: value}))


LENGTHS = [(t, a, n) for t, table in sorted(graph_limits.MAX_LENGTH.items()) for a, n in sorted(table.items())
           if a != "userPrincipalName"]


@pytest.mark.parametrize("object_type, attribute, maximum", LENGTHS)
def test_every_maximum_length_is_graphs(graph, domains, object_type, attribute, maximum):
    domain = sorted(domains)[0]
    at_max = value_of_length(attribute, maximum, domain)
    over = value_of_length(attribute, maximum + 1, domain)
    assert graph_limits.check(object_type, attribute, at_max, domains) is None
    assert "Microsoft Graph allows at most %d" % maximum in graph_limits.check(object_type, attribute, over, domains)
    assert post(graph, object_type, domain, attribute, at_max).status_code == 201
    assert post(graph, object_type, domain, attribute, over).status_code == 400


@pytest.mark.parametrize("alias, domain_ok", [
    ("a" * 64, True), ("a" * 65, True), ("first.last", True), (".lead", True), ("trail.", True), ("two..dots", True),
    ("o'brien_x-y!z#^~", True), ("has space", True), ("zoë", True), ("plain", False),
])
def test_user_principal_names_the_client_refuses_graph_refuses(graph, domains, alias, domain_ok):
    domain = sorted(domains)[0] if domain_ok else "fabrikam-not-verified.example"
    upn = alias + "@" + domain
    problem = graph_limits.check("user", "userPrincipalName", upn, domains)
    status = graph("POST", "/v1.0/users", json=new_user(sorted(domains)[0], userPrincipalName=upn)).status_code
    assert (problem is None) == (status == 201), (upn, problem, status)


@pytest.mark.parametrize("nickname", ["plain.name-1", "o'brien", "with space", "at@sign", "semi;colon", "zoë",
                                      "brack[et]", "paren(s)", "quote\"d", "lt<gt>", "comma,x", "colon:x", "back\\slash"])
def test_mail_nicknames_the_client_refuses_graph_refuses(graph, domains, nickname):
    problem = graph_limits.check("user", "mailNickname", nickname, domains)
    status = graph("POST", "/v1.0/users", json=new_user(sorted(domains)[0], mailNickname=nickname)).status_code
    assert (problem is None) == (status == 201), (nickname, problem, status)


@pytest.mark.parametrize("code", ["DK", "US", "us", "XX", "DNK", "D"])
def test_usage_locations_the_client_refuses_graph_refuses(graph, domains, code):
    problem = graph_limits.check("user", "usageLocation", code, domains)
    status = graph("POST", "/v1.0/users", json=new_user(sorted(domains)[0], usageLocation=code)).status_code
    assert (problem is None) == (status == 201), (code, problem, status)
