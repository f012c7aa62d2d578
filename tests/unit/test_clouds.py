"""clouds.py: every environment's authority / Graph URL / scope, and the endpoint overrides."""
import pytest

import idsync_testlib  # noqa: F401  (puts collections/ on sys.path)
from ansible_collections.idsync.entra.plugins.module_utils.clouds import CLOUDS, resolve_endpoints
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

EXPECTED = {
    "azure_global": ("login.microsoftonline.com", "graph.microsoft.com", "outlook.office365.com"),
    "azure_gcc": ("login.microsoftonline.com", "graph.microsoft.com", "outlook.office365.com"),
    "azure_gcc_high": ("login.microsoftonline.us", "graph.microsoft.us", "outlook.office365.us"),
    "azure_dod": ("login.microsoftonline.us", "dod-graph.microsoft.us", "webmail.apps.mil"),
    "azure_china": ("login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn", "partner.outlook.cn"),
}


def test_all_environments_known():
    assert set(CLOUDS) == set(EXPECTED)


@pytest.mark.parametrize("environment", sorted(EXPECTED))
def test_environment_endpoints(environment):
    login, graph, exchange = EXPECTED[environment]
    ep = resolve_endpoints(environment, TENANT)
    assert ep.environment == environment
    assert ep.authority == "https://{0}/{1}".format(login, TENANT)
    assert ep.graph_url == "https://{0}/v1.0".format(graph)
    assert ep.scope == "https://{0}/.default".format(graph)
    assert ep.exchange_scope == "https://{0}/.default".format(exchange)
    assert ep.custom_authority is False
    assert ep.tenant_id == TENANT


def test_default_environment_is_global():
    assert resolve_endpoints(None, "contoso.onmicrosoft.com").authority == \
        "https://login.microsoftonline.com/contoso.onmicrosoft.com"


@pytest.mark.parametrize("environment", ["azure_global", "azure_gcc_high", "azure_china"])
def test_overrides_keep_the_cloud_scope(environment):
    ep = resolve_endpoints(environment, TENANT, authority_host="https://127.0.0.1:8443/",
                           graph_endpoint="https://127.0.0.1:8443")
    assert ep.authority == "https://127.0.0.1:8443/" + TENANT
    assert ep.graph_url == "https://127.0.0.1:8443/v1.0"
    assert ep.scope == "https://{0}/.default".format(EXPECTED[environment][1])
    assert ep.custom_authority is True


def test_graph_endpoint_with_version_is_kept():
    assert resolve_endpoints("azure_global", TENANT, graph_endpoint="https://graph.example.net/beta/").graph_url == \
        "https://graph.example.net/beta"
    assert resolve_endpoints("azure_global", TENANT, graph_endpoint="https://graph.example.net/v1.0").graph_url == \
        "https://graph.example.net/v1.0"
    assert resolve_endpoints("azure_global", TENANT, graph_endpoint="https://h.example/proxy").graph_url == \
        "https://h.example/proxy/v1.0"


def test_authority_override_same_as_cloud_host_keeps_instance_discovery():
    ep = resolve_endpoints("azure_global", TENANT, authority_host="https://login.microsoftonline.com")
    assert ep.custom_authority is False


@pytest.mark.parametrize("option", ["authority_host", "graph_endpoint"])
@pytest.mark.parametrize("value", ["http://127.0.0.1:8443", "127.0.0.1:8443", "ftp://x", "https://u:p@h.example",
                                   "https://h.example/?a=b", "https://h.example:99999"])
def test_overrides_must_be_plain_https(option, value):
    with pytest.raises(ConfigError) as info:
        resolve_endpoints("azure_global", TENANT, **{option: value})
    assert option in info.value.msg
    assert info.value.details["option"] == option


def test_http_override_error_says_https():
    with pytest.raises(ConfigError, match="must be an https:// URL"):
        resolve_endpoints("azure_global", TENANT, graph_endpoint="http://127.0.0.1:8443")


def test_unknown_environment():
    with pytest.raises(ConfigError, match="tenant_environment 'azure_moon' is not known: use one of azure_china"):
        resolve_endpoints("azure_moon", TENANT)


@pytest.mark.parametrize("tenant", [None, "", "  ", "a/b", "contoso.com/../x", "bad tenant"])
def test_bad_tenant(tenant):
    with pytest.raises(ConfigError) as info:
        resolve_endpoints("azure_global", tenant)
    assert info.value.details["option"] == "tenant_id"
