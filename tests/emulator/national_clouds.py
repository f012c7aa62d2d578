"""National clouds the emulator can stand in for: one per run (`serve --cloud`).

Hosts and resources: Microsoft Learn "National cloud deployments" (https://learn.microsoft.com/graph/deployments) and
"Microsoft Entra authentication and national clouds"
(https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud); REFERENCE.md "National clouds".
A tenant lives in exactly one cloud: its login hosts know it, and it has service principals only for that cloud's
resources. So a token request for another cloud's Graph resource fails with AADSTS500011 (the resource principal is
not in the tenant), and a login host of another cloud does not know the tenant (AADSTS90002). GCC tenants live in the
commercial cloud: azure_gcc is azure_global here, as in plugins/module_utils/clouds.py.
"""
from dataclasses import dataclass

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"


@dataclass(frozen=True)
class Cloud:
    name: str
    login_hosts: tuple       # the preferred host first, then its aliases
    instance_name: str       # cloud_instance_name in OpenID configuration
    graph_resource: str
    exchange_resources: tuple

    @property
    def graph_host(self) -> str:
        return self.graph_resource.split("://", 1)[1]


_GLOBAL_LOGIN = ("login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net")
_US_GOV_LOGIN = ("login.microsoftonline.us", "login.usgovcloudapi.net")
_CHINA_LOGIN = ("login.partner.microsoftonline.cn", "login.chinacloudapi.cn")

CLOUDS = {
    "azure_global": Cloud("azure_global", _GLOBAL_LOGIN, "microsoftonline.com", "https://graph.microsoft.com",
                          ("https://outlook.office365.com",)),
    "azure_gcc": Cloud("azure_gcc", _GLOBAL_LOGIN, "microsoftonline.com", "https://graph.microsoft.com",
                       ("https://outlook.office365.com",)),
    "azure_gcc_high": Cloud("azure_gcc_high", _US_GOV_LOGIN, "microsoftonline.us", "https://graph.microsoft.us",
                            ("https://outlook.office365.us",)),
    # DoD's Exchange Online admin host is uncertain (REFERENCE.md): both names seen in public material are accepted.
    "azure_dod": Cloud("azure_dod", _US_GOV_LOGIN, "microsoftonline.us", "https://dod-graph.microsoft.us",
                       ("https://webmail.apps.mil", "https://outlook-dod.office365.us")),
    # China's Exchange Online host is uncertain as well (REFERENCE.md).
    "azure_china": Cloud("azure_china", _CHINA_LOGIN, "partner.microsoftonline.cn",
                         "https://microsoftgraph.chinacloudapi.cn", ("https://partner.outlook.cn",)),
}
DEFAULT_CLOUD = "azure_global"

# Login hosts of every cloud and their aliases, as the real (global) instance discovery endpoint lists them.
INSTANCE_METADATA = (
    ("login.microsoftonline.com", "login.windows.net", _GLOBAL_LOGIN),
    ("login.partner.microsoftonline.cn", "login.partner.microsoftonline.cn", _CHINA_LOGIN),
    ("login.microsoftonline.de", "login.microsoftonline.de", ("login.microsoftonline.de",)),
    ("login.microsoftonline.us", "login.microsoftonline.us", _US_GOV_LOGIN),
    ("login-us.microsoftonline.com", "login-us.microsoftonline.com", ("login-us.microsoftonline.com",)),
)
LOGIN_HOSTS = frozenset(alias for _, _, aliases in INSTANCE_METADATA for alias in aliases)


def bare_host(host: str) -> str:
    """host[:port] -> host, lower case ("[::1]:8443" -> "[::1]")."""
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]
