"""transport.py: ca_path wins over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, TLS can't be turned off, clear TLS errors."""
import os

import pytest
import requests

from idsync_testlib import Reply, ScriptedServer, TLSPki, make_jwt
from ansible_collections.idsync.entra.plugins.module_utils.clouds import resolve_endpoints
from ansible_collections.idsync.entra.plugins.module_utils.credentials import AccessTokenCredential
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, TransportError
from ansible_collections.idsync.entra.plugins.module_utils.graph import GraphClient
from ansible_collections.idsync.entra.plugins.module_utils.transport import COLLECTION_VERSION, USER_AGENT, build_session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def system_bundle():
    for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if os.path.exists(path):
            return path
    import certifi
    return certifi.where()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TLSPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_server(pki):
    srv = ScriptedServer(ssl_context=pki.server_context())
    srv.route("GET", "^/v1.0/organization$", Reply(200, {"value": [{"id": "org"}]}))
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def system_bundle_env(monkeypatch):
    # What these machines (and many corporate hosts) export.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", system_bundle())
    monkeypatch.setenv("CURL_CA_BUNDLE", system_bundle())


def test_plain_session_verify_is_overridden_by_the_environment(pki, tls_server):
    """The problem being solved: Session.verify loses to REQUESTS_CA_BUNDLE."""
    session = requests.Session()
    session.verify = pki.ca_path
    with pytest.raises(requests.exceptions.SSLError):
        session.get(tls_server.url + "/v1.0/organization", timeout=5)


def test_ca_path_wins_over_the_environment(pki, tls_server):
    session = build_session(ca_path=pki.ca_path)
    response = session.get(tls_server.url + "/v1.0/organization")
    assert response.status_code == 200 and response.json() == {"value": [{"id": "org"}]}
    # also for the methods msal calls (post/get with their own kwargs)
    assert session.post(tls_server.url + "/v1.0/organization", data={"a": "b"}).status_code == 404


def test_verification_cannot_be_turned_off(tls_server):
    session = build_session()
    with pytest.raises(requests.exceptions.SSLError):
        session.get(tls_server.url + "/v1.0/organization", verify=False)


def test_graph_client_tls_error_names_the_fix(pki, tls_server, tmp_path):
    endpoints = resolve_endpoints("azure_global", "contoso.onmicrosoft.com", graph_endpoint=tls_server.url)
    graph = GraphClient(endpoints, AccessTokenCredential(make_jwt()), build_session())
    with pytest.raises(TransportError) as info:
        graph.get("/organization")
    assert info.value.msg == ("The TLS certificate of {0} could not be verified against the system CA bundle: pass "
                              "ca_path with the CA that signed it.".format(tls_server.url))
    other = TLSPki(tmp_path)  # a different CA
    graph = GraphClient(endpoints, AccessTokenCredential(make_jwt()), build_session(other.ca_path))
    with pytest.raises(TransportError, match="is not signed by a CA in ca_path '{0}'".format(other.ca_path)):
        graph.get("/organization")
    assert len(tls_server.calls()) == 0  # never retried, never got through
    graph = GraphClient(endpoints, AccessTokenCredential(make_jwt()), build_session(pki.ca_path))
    assert graph.get("/organization") == {"value": [{"id": "org"}]}


def test_ca_path_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="ca_path '.*missing.pem' does not exist"):
        build_session(str(tmp_path / "missing.pem"))


def test_user_agent_and_version_match_galaxy_yml():
    import yaml
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        galaxy = yaml.safe_load(handle)
    assert COLLECTION_VERSION == galaxy["version"]
    assert USER_AGENT == "idsync.entra/" + galaxy["version"]
    assert build_session().headers["User-Agent"] == USER_AGENT
