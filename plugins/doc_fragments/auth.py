# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # The options of module_utils/module.py auth_argument_spec(), documented once.
    DOCUMENTATION = r"""
options:
  connection:
    description:
      - Name of a connection saved with M(idsync.entra.connection) in O(store). Its tenant, application,
        certificate, cloud and endpoint settings fill every auth option the task leaves unset.
      - Options set on the task (or through C(module_defaults) or environment variables) win over the connection's.
    type: str
  store:
    description:
      - The idsync store, either the path of a SQLite file (created V(0600), its directory V(0700), when missing), or
        the URL of a PostgreSQL database (V(postgresql://user@host:5432/dbname), needs the Python package
        C(psycopg)), which jobs on any node share (AWX / Automation Platform, see docs/awx.md).
      - If not set, the value of the E(IDSYNC_STORE) environment variable is used, else V(~/.idsync/store.db).
      - A password in the URL is never shown; prefer E(PGPASSWORD) or C(~/.pgpass).
      - Holds O(connection).
    type: str
  tenant_id:
    description:
      - The Microsoft Entra tenant to sign in to, as its Directory (tenant) ID GUID or one of its verified
        domains (for example V(contoso.onmicrosoft.com)).
      - If not set, the value of the E(AZURE_TENANT_ID) environment variable is used, else E(AZURE_TENANT) (what
        AWX's Microsoft Azure Resource Manager credential injects).
      - Not needed with O(access_token), whose C(tid) claim names the tenant.
    type: str
  client_id:
    description:
      - The Application (client) ID of the app registration the module signs in as (app-only sign-in).
      - Required with O(certificate_path) and O(client_secret).
      - If not set, the value of the E(AZURE_CLIENT_ID) environment variable is used.
    type: str
  certificate_path:
    description:
      - Path on the managed node (the host the task runs on, usually C(localhost), which is the controller) to the
        certificate registered on the application (Certificates & secrets),
        used to sign the client assertion. This is the recommended credential.
      - A PEM file holding the certificate and its private key, a PEM certificate with the key in
        O(private_key_path), or a PFX/PKCS#12 file (C(.pfx), C(.p12)).
      - The file holding the private key must not be readable by group or others (C(chmod 600)); the module
        fails otherwise.
      - If not set, the value of the E(AZURE_CLIENT_CERTIFICATE_PATH) environment variable is used.
      - Mutually exclusive with O(client_secret) and O(access_token). A credential given to the task wins over
        one that only comes from an environment variable.
    type: path
  private_key_path:
    description:
      - Path to the PEM private key of O(certificate_path) when the certificate file does not hold it.
    type: path
  certificate_content:
    description:
      - The certificate as text instead of a path (an AWX credential injects it), PEM holding the certificate and
        its key (or the key in O(private_key_content)), or a base64-encoded PFX.
      - If not set, the value of the E(IDSYNC_CLIENT_CERTIFICATE) environment variable is used.
      - Mutually exclusive with the other credentials. Never logged or stored.
    type: str
  private_key_content:
    description:
      - The PEM private key of O(certificate_content) when that does not hold it.
      - If not set, the value of the E(IDSYNC_CLIENT_PRIVATE_KEY) environment variable is used.
    type: str
  client_assertion:
    description:
      - Workload identity federation, a token another identity provider issued for this workload (for example
        GitLab CI's C(id_tokens), or GitHub Actions' OIDC token), presented instead of a secret. The application
        needs a federated identity credential with that token's issuer and subject, and audience
        V(api://AzureADTokenExchange).
      - Mutually exclusive with the other credentials.
    type: str
  client_assertion_file:
    description:
      - Workload identity federation with the token in a file, read again for every sign-in (AKS rotates it).
      - If not set, the value of the E(AZURE_FEDERATED_TOKEN_FILE) environment variable is used (AKS workload
        identity sets it, with E(AZURE_CLIENT_ID) and E(AZURE_TENANT_ID)).
    type: path
  managed_identity:
    description:
      - Sign in as the managed identity of the host (an Azure VM or AKS node, App Service, Azure Arc), without any
        secret. With O(client_id) the user-assigned identity with that client ID, else the system-assigned one.
    type: bool
    default: false
  private_key_passphrase:
    description:
      - Passphrase of an encrypted private key or PFX file.
      - If not set, the value of the E(AZURE_CLIENT_CERTIFICATE_PASSWORD) environment variable is used.
    type: str
  certificate_thumbprint:
    description:
      - The thumbprint of O(certificate_path) (or O(certificate_content)) as the Azure portal shows it (SHA-1, 40 hex digits; a 64-digit
        SHA-256 thumbprint is accepted too). Case, spaces and colons do not matter.
      - Optional. The thumbprint is always computed from the certificate; when this is given it must be equal,
        which catches a certificate file that is not the one registered on the application.
    type: str
  client_secret:
    description:
      - A client secret of the application (its Value, not its Secret ID). Prefer O(certificate_path).
      - If not set, the value of the E(AZURE_CLIENT_SECRET) environment variable is used, else E(AZURE_SECRET)
        (AWX's Microsoft Azure Resource Manager credential).
      - Mutually exclusive with O(certificate_path) and O(access_token).
    type: str
  access_token:
    description:
      - A ready Microsoft Graph access token (for example from C(az account get-access-token --resource-type
        ms-graph)). It is used as is and cannot be renewed, so a long run may outlive it.
      - Mutually exclusive with O(certificate_path) and O(client_secret).
    type: str
  tenant_environment:
    description:
      - The cloud the tenant lives in. V(azure_global) and V(azure_gcc) use C(login.microsoftonline.com) and
        C(graph.microsoft.com); V(azure_gcc_high) uses C(login.microsoftonline.us) and C(graph.microsoft.us);
        V(azure_dod) uses C(login.microsoftonline.us) and C(dod-graph.microsoft.us); V(azure_china) uses
        C(login.chinacloudapi.cn) and C(microsoftgraph.chinacloudapi.cn).
    type: str
    default: azure_global
    choices: [azure_global, azure_gcc, azure_gcc_high, azure_dod, azure_china]
  authority_host:
    description:
      - Override the sign-in host with a base URL such as V(https://login.example.net:8443) (a private endpoint,
        a proxy or the tenant emulator). Must be C(https).
      - When it differs from the cloud's own login host, msal's instance discovery is skipped.
      - If not set, the value of the E(AZURE_AUTHORITY_HOST) environment variable is used.
    type: str
  graph_endpoint:
    description:
      - Override the Microsoft Graph host with a base URL such as V(https://graph.example.net:8443); C(/v1.0) is
        appended unless the URL already ends in C(/v1.0) or C(/beta). Must be C(https).
      - The token is still requested for the cloud's Graph resource (O(tenant_environment)).
    type: str
  ca_path:
    description:
      - A PEM CA bundle (file or directory) to verify the TLS certificates of the sign-in and Graph hosts,
        instead of the system bundle.
      - It wins over E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE). TLS verification cannot be turned off.
    type: path
requirements:
  - python >= 3.9
  - msal >= 1.28 (not needed with O(access_token))
  - requests >= 2.31
  - cryptography >= 42 (for O(certificate_path))
notes:
  - All options above can be set once for a play with C(module_defaults) and the action group
    C(group/idsync.entra.graph) (the modules that take them). C(group/idsync.entra.all) holds every module of the
    collection; use it for O(store), which every module accepts.
  - Messages never contain the client secret, the token, the private key or its passphrase.
"""
