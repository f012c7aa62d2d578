# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""National clouds: ``tenant_environment`` -> login host, Graph host, Exchange host, and the endpoint overrides."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from collections import namedtuple

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, but keep the import test quiet
    from urlparse import urlsplit  # type: ignore

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError


Cloud = namedtuple("Cloud", ["name", "title", "login_host", "graph_host", "exchange_host"])

CLOUDS = {
    "azure_global": Cloud("azure_global", "Azure Global", "login.microsoftonline.com", "graph.microsoft.com",
                          "outlook.office365.com"),
    # GCC (moderate) tenants live in the commercial cloud: same endpoints as global.
    "azure_gcc": Cloud("azure_gcc", "Azure GCC", "login.microsoftonline.com", "graph.microsoft.com",
                       "outlook.office365.com"),
    "azure_gcc_high": Cloud("azure_gcc_high", "Azure GCC High (US Gov L4)", "login.microsoftonline.us",
                            "graph.microsoft.us", "outlook.office365.us"),
    # The DoD Exchange admin host is uncertain (webmail.apps.mil; outlook-dod.office365.us is also seen).
    "azure_dod": Cloud("azure_dod", "Azure DoD (US Gov L5)", "login.microsoftonline.us", "dod-graph.microsoft.us",
                       "webmail.apps.mil"),
    # China (21Vianet); newer docs also name login.partner.microsoftonline.cn. Exchange host uncertain.
    "azure_china": Cloud("azure_china", "Azure China (21Vianet)", "login.chinacloudapi.cn",
                         "microsoftgraph.chinacloudapi.cn", "partner.outlook.cn"),
}

DEFAULT_ENVIRONMENT = "azure_global"
GRAPH_VERSION = "v1.0"

Endpoints = namedtuple("Endpoints", [
    "environment",      # key of CLOUDS
    "authority",        # https://<login host>/<tenant>
    "graph_url",        # https://<graph host>/v1.0
    "scope",            # https://<cloud graph host>/.default (never the override)
    "exchange_scope",   # https://<cloud exchange host>/.default
    "tenant_id",        # as given (GUID or domain)
    "authority_host",   # https://<login host> (override or cloud)
    "exchange_url",     # https://<exchange host>
    "custom_authority",  # True when authority_host was overridden: msal must skip instance discovery
])

_TENANT_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$")


def validate_tenant_id(tenant_id):
    """Return the tenant id stripped, or raise ConfigError: a GUID, a domain or organizations/common."""
    if tenant_id is None or not str(tenant_id).strip():
        raise ConfigError("tenant_id is required: pass the Directory (tenant) ID (a GUID or a verified domain), "
                          "or set AZURE_TENANT_ID.", option="tenant_id")
    value = str(tenant_id).strip()
    if not _TENANT_RE.match(value):
        raise ConfigError("tenant_id '{0}' is neither a GUID nor a domain name: pass the Directory (tenant) ID "
                          "shown on the app registration's Overview page.".format(value[:80]), option="tenant_id")
    return value


def _base_url(value, option):
    """Validate an override: an https URL without credentials, query or fragment; return it without '/'."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme.lower() != "https":
        raise ConfigError("{0} must be an https:// URL (TLS is always verified), got '{1}'.".format(option, text[:200]),
                          option=option)
    if not parts.hostname:
        raise ConfigError("{0} '{1}' has no host name.".format(option, text[:200]), option=option)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("{0} must be a plain base URL such as https://graph.example.net (no credentials, query or "
                          "fragment).".format(option), option=option)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError("{0} '{1}' has an invalid port.".format(option, text[:200]), option=option)
    return text.rstrip("/")


def resolve_endpoints(tenant_environment, tenant_id, authority_host=None, graph_endpoint=None, exchange_endpoint=None):
    """Turn the auth options into :class:`Endpoints`.

    ``authority_host`` / ``graph_endpoint`` override the cloud's hosts with base URLs such as
    ``https://127.0.0.1:8443`` (a private endpoint, a proxy, the tenant emulator). A ``graph_endpoint``
    that already ends in ``/v1.0`` or ``/beta`` is used as is. The token scope always names the cloud's
    Graph resource, because that is the audience Graph checks whatever host serves it. ``exchange_endpoint``
    overrides the Exchange Online admin host the same way (its token scope stays the cloud's Exchange resource).
    """
    environment = tenant_environment or DEFAULT_ENVIRONMENT
    if environment not in CLOUDS:
        raise ConfigError("tenant_environment '{0}' is not known: use one of {1}.".format(
            environment, ", ".join(sorted(CLOUDS))), option="tenant_environment")
    cloud = CLOUDS[environment]
    tenant = validate_tenant_id(tenant_id)

    if authority_host:
        authority_base = _base_url(authority_host, "authority_host")
    else:
        authority_base = "https://" + cloud.login_host
    if graph_endpoint:
        graph_base = _base_url(graph_endpoint, "graph_endpoint")
        if re.search(r"/(v1\.0|beta)$", graph_base):
            graph_url = graph_base
        else:
            graph_url = "{0}/{1}".format(graph_base, GRAPH_VERSION)
    else:
        graph_url = "https://{0}/{1}".format(cloud.graph_host, GRAPH_VERSION)

    exchange_base = (_base_url(exchange_endpoint, "exchange_endpoint") if exchange_endpoint
                     else "https://{0}".format(cloud.exchange_host))

    return Endpoints(
        environment=environment,
        authority="{0}/{1}".format(authority_base, tenant),
        graph_url=graph_url,
        scope="https://{0}/.default".format(cloud.graph_host),
        exchange_scope="https://{0}/.default".format(cloud.exchange_host),
        tenant_id=tenant,
        authority_host=authority_base,
        exchange_url=exchange_base,
        custom_authority=bool(authority_host) and urlsplit(authority_base).hostname != cloud.login_host,
    )


def endpoints_from_params(params):
    """``resolve_endpoints`` fed from a module's params dict."""
    return resolve_endpoints(
        params.get("tenant_environment"),
        params.get("tenant_id"),
        authority_host=params.get("authority_host"),
        graph_endpoint=params.get("graph_endpoint"),
    )
