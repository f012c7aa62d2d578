#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: connection
short_description: Ensure a named connection in the idsync connection store
version_added: "0.1.0"
description:
  - Ensures a named connection (the settings a sync workflow uses to reach a connected system) in the idsync
    store, a SQLite database on the host that runs the module.
  - An V(azure_ad) connection holds the Tenant ID, Application (client) ID, Certificate thumbprint and tenant
    environment type, as they appear on the Azure portal, plus the paths of the certificate and its private key.
    The record holds paths and settings only, never key material or secrets.
  - A V(microsoft_365) connection (Exchange Online recipients, through the cmdlets of the ExchangeOnlineManagement
    module over REST) takes the same settings; one application can serve both connections. It needs the Office 365
    Exchange Online application permission V(Exchange.ManageAsApp) and the Exchange Recipient Administrator (or
    Exchange Administrator) role.
  - Before saving, the settings are validated; the certificate thumbprint must match the certificate on disk, the
    private key must match the certificate and must not be readable by group or others. A failed validation
    leaves the store unchanged.
  - O(test=true) runs "Test connection" before anything is saved (token, C(GET /organization), and a check that the
    granted Microsoft Graph application permissions cover O(required_permissions)). A failing test fails the task and
    leaves any earlier saved connection untouched.
  - "Update the authentication data: a connection saved by an older setup with client secret authentication is
    switched to certificate authentication in place (same name), and no secret is kept."
author:
  - idsync.entra maintainers (@idsync)
options:
  name:
    description:
      - Name of the connection.
    type: str
    required: true
  connector:
    description:
      - Type of the connected system.
      - Required when O(state=present).
    type: str
    choices: [active_directory, azure_ad, csv, ldap, microsoft_365]
  tenant_id:
    description:
      - The tenant, as its Directory (tenant) ID GUID or one of its verified domains (for example
        V(contoso.onmicrosoft.com)). V(azure_ad) and V(microsoft_365) only; required for them.
      - With O(test=true), the test checks that the token is for this tenant (for a domain, that the tenant verified it).
    type: str
  application_id:
    description:
      - Application (client) ID of the app registration, a GUID. V(azure_ad) and V(microsoft_365) only; required for them.
    type: str
    aliases: [client_id]
  certificate_thumbprint:
    description:
      - Certificate thumbprint as the Azure portal shows it (SHA-1, 40 hex digits; separators and case do not matter).
        A SHA-256 thumbprint (64 hex digits) is accepted too.
      - Must match the certificate at O(certificate_path). When omitted, it is taken from that certificate.
      - The SHA-1 thumbprint is stored.
    type: str
  certificate_path:
    description:
      - PEM certificate (or a PEM file holding the private key and the certificate, or a PFX file).
        V(azure_ad) and V(microsoft_365) only; required for them.
    type: path
  private_key_path:
    description:
      - PEM private key of the certificate, when not in O(certificate_path). Must not be readable by group or others.
    type: path
  private_key_passphrase:
    description:
      - Passphrase of an encrypted private key (or PFX), used to validate and test the connection. Never stored,
        so a workflow that uses the connection must be given it again.
    type: str
  tenant_environment:
    description:
      - Tenant environment type (national cloud).
    type: str
    choices: [azure_global, azure_gcc, azure_gcc_high, azure_dod, azure_china]
    default: azure_global
  authority_host:
    description:
      - Base URL that replaces the cloud's login host (private endpoint, proxy or tenant emulator).
    type: str
  graph_endpoint:
    description:
      - Base URL that replaces the cloud's Microsoft Graph host.
    type: str
  auth_method:
    description:
      - How an O(connector=azure_ad) connection signs in.
      - V(certificate), the application's certificate, from O(certificate_path) or O(certificate_content) (content is
        never stored; each run then takes it from E(IDSYNC_CLIENT_CERTIFICATE) and E(IDSYNC_CLIENT_PRIVATE_KEY), as
        the AWX credential type in C(extensions/awx) injects them, or from the task).
      - V(workload_identity), workload identity federation, a token the platform issues (AKS, GitHub Actions,
        GitLab CI) read from O(client_assertion_file) or E(AZURE_FEDERATED_TOKEN_FILE) at run time; the application
        needs a federated credential for its issuer and subject (M(idsync.entra.app_registration)).
      - V(managed_identity), the managed identity of the host the job runs on (O(application_id) names a
        user-assigned one; leave it out for the system-assigned one).
    type: str
    choices: [certificate, workload_identity, managed_identity]
    default: certificate
  certificate_content:
    description:
      - The certificate (PEM text, with its key unless O(private_key_content) holds it, or a base64-encoded PFX),
        instead of O(certificate_path). Used to validate and test the connection; never stored.
    type: str
  private_key_content:
    description: The PEM private key of O(certificate_content) when it does not hold it. Never stored.
    type: str
  client_assertion_file:
    description:
      - With O(auth_method=workload_identity), the file holding the federated token. Default at run time is
        E(AZURE_FEDERATED_TOKEN_FILE).
    type: path
  ownership_attribute:
    description:
      - For O(connector=azure_ad), the directory extension that carries the name of the M(idsync.entra.sync)
        workflow managing each user and group it creates or matches, for example
        V(extension_0c4a1f6d3b8e2a9175d4c6e8b0a2f4d6_idsyncWorkflow) (the auto configuration role registers it on
        the application and sets it here).
      - With it a workflow whose store was lost (a fresh AWX job) still knows which objects it manages, and
        deprovisions leavers. Without it, only the store knows.
    type: str
  exchange_endpoint:
    description:
      - V(microsoft_365) only. Base URL that replaces the cloud's Exchange Online admin host (V(outlook.office365.com),
        V(outlook.office365.us) for GCC High, V(webmail.apps.mil) for DoD, V(partner.outlook.cn) for China; the DoD and
        China hosts are not documented by Microsoft, so override them when your tenant uses another).
    type: str
  ca_path:
    description:
      - PEM file or directory of CA certificates to verify the authority and Graph TLS certificates with.
        Wins over E(REQUESTS_CA_BUNDLE).
      - V(active_directory) and V(ldap) - the CA certificates the directory server's certificate is checked against.
    type: path
  servers:
    description:
      - V(active_directory) and V(ldap) only, required for them. Domain controllers or LDAP servers, tried in order
        until one answers - host names, V(host:port), or V(ldaps://host) / V(ldap://host) URIs.
    type: list
    elements: str
  tls:
    description:
      - V(active_directory) and V(ldap) only. V(ldaps) (port 636), V(starttls) (port 389, RFC 4513), or V(none) for
        plain LDAP, which must be chosen explicitly; the server certificate is validated unless O(validate_certs=false).
    type: str
    choices: [ldaps, starttls, none]
    default: ldaps
  validate_certs:
    description:
      - V(active_directory) and V(ldap) only. Check the server certificate against O(ca_path) (or the system CAs) and
        its host name.
    type: bool
    default: true
  bind_dn:
    description:
      - V(active_directory) and V(ldap) only, required for them. The account to bind as - a DN, or for Active Directory
        also a user principal name such as V(svc-idsync@contoso.com).
    type: str
  bind_password:
    description:
      - Password of O(bind_dn), used only by O(test=true). Never stored - a workflow gets it each run through
        C(connection_secrets) of M(idsync.entra.sync).
    type: str
  base_dn:
    description:
      - V(active_directory) and V(ldap) only, required for them. The subtree the connection works in, for example
        V(DC=contoso,DC=com); the default search base of every object type.
    type: str
  search:
    description:
      - "V(active_directory) and V(ldap) only. Per object type (V(user), V(group), V(organizational_unit)) a C(base)
        DN, a C(scope) (V(base), V(one), V(subtree); default V(subtree)) and an LDAP C(filter) added to the object
        class filter, for example C({user: {base: 'OU=People,DC=contoso,DC=com', filter: '(employeeID=*)'}})."
    type: dict
  create_ous:
    description:
      - V(active_directory) and V(ldap) only. Create the organizational units a C(dn) rule names when they do not
        exist (creating or moving an object there); otherwise such an object fails with a sentence naming the OU.
    type: bool
    default: false
  page_size:
    description:
      - V(active_directory) and V(ldap) only. Entries per page of a search (paged results control, RFC 2696).
    type: int
    default: 500
  timeout:
    description:
      - V(active_directory) and V(ldap) only. Seconds to wait for a server to answer a connection.
    type: int
    default: 10
  path:
    description:
      - V(csv) only, required for it. The CSV file.
    type: path
  delimiter:
    description:
      - V(csv) only. Field delimiter, one character (V(\\t) for a tab).
    type: str
    default: ","
  encoding:
    description:
      - V(csv) only. Text encoding of the file; V(utf-8-sig) reads and writes a byte order mark.
    type: str
    choices: [utf-8, utf-8-sig]
    default: utf-8
  key:
    description:
      - V(csv) only. Column(s) that identify a row.
    type: list
    elements: str
  multi_value_separator:
    description:
      - V(csv) only. Separator between the values of a multi-valued attribute inside one field.
    type: str
    default: ";"
  multiline:
    description:
      - V(csv) only. Accept quoted fields that span lines (RFC 4180). By default each line is one row, so a quote
        left open in one row rejects that row only instead of swallowing the rows after it; with V(true) a quote
        left open, or a multi-line record that cannot be read, means nothing after it can be trusted and the sync
        deprovisions no one.
    type: bool
    default: false
  max_field_length:
    description:
      - V(csv) only. The longest field accepted, in characters; a row with a longer field is rejected (and the
        object it identifies is protected from deprovisioning).
    type: int
    default: 8192
  store:
    description:
      - The idsync store, either the path of a SQLite file (created V(0600), its directory V(0700), when missing), or
        the URL of a PostgreSQL database (V(postgresql://user@host:5432/dbname), needs the Python package
        C(psycopg)), which jobs on any node share (AWX / Automation Platform, see docs/awx.md).
      - If not set, the value of the E(IDSYNC_STORE) environment variable is used, else V(~/.idsync/store.db).
      - A password in the URL is never shown; prefer E(PGPASSWORD) or C(~/.pgpass).
    type: str
  state:
    description:
      - V(present) ensures the connection, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  test:
    description:
      - Test the connection before saving. For V(microsoft_365) - get an Exchange Online token with the certificate,
        check it carries V(Exchange.ManageAsApp), and run C(Get-AcceptedDomain), which fails unless the application
        holds an Exchange role (Exchange Recipient Administrator or Exchange Administrator); each missing permission or
        role is named.
      - For V(azure_ad) - get a token with the certificate, read
        C(GET /organization), and check the token's granted permissions cover O(required_permissions), naming each
        missing one. For V(csv) - the file exists, can be read with O(encoding), and its header names the O(key)
        columns. For V(active_directory) and V(ldap) - connect (TLS), bind with O(bind_password), read the rootDSE,
        and check that O(base_dn) and every search base exist; a failure names what is wrong (TLS, credentials,
        base DN not found).
      - Runs in check mode too (it only reads).
    type: bool
    default: false
  required_permissions:
    description:
      - Application permissions the test requires (Microsoft Graph for V(azure_ad), Office 365 Exchange Online for
        V(microsoft_365), where the default is V(Exchange.ManageAsApp)).
      - Defaults to what the connector needs; for V(azure_ad) V(User.ReadWrite.All), V(Group.ReadWrite.All) and
        V(Organization.Read.All). V(Directory.ReadWrite.All) also covers the user and group permissions.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: Validates (and tests, with O(test=true)) and reports what would change; does not write the store
      (nor create it).
  diff_mode:
    support: full
    description: Shows the connection settings before and after.
requirements:
  - cryptography >= 42 (azure_ad)
  - msal >= 1.28 and requests (azure_ad with O(test=true))
  - ldap3 >= 2.9 (active_directory, ldap)
notes:
  - The store lives on the host that runs the module (the managed node); run the workflows there.
seealso:
  - module: idsync.entra.connection_info
  - module: idsync.entra.certificate
"""

EXAMPLES = r"""
- name: Manual configuration - reuse an existing Azure application, then test the connection
  idsync.entra.connection:
    name: contoso
    connector: azure_ad
    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47
    application_id: 0b7a8d6e-3f9c-4b1e-9a2d-5c6e7f8a9b0c
    certificate_thumbprint: 0F3A9C1E5D7B2A4C6E8F0A1B2C3D4E5F60718293
    certificate_path: /etc/idsync/connector.crt
    private_key_path: /etc/idsync/connector.key
    tenant_environment: azure_global
    test: true
  register: conn

- name: A CSV file as a connected system
  idsync.entra.connection:
    name: hr-export
    connector: csv
    path: /srv/hr/employees.csv
    delimiter: ";"
    encoding: utf-8-sig
    key: [employeeId]
    multi_value_separator: "|"

- name: An Active Directory domain, tested with the bind password from the vault (never stored)
  idsync.entra.connection:
    name: corp-ad
    connector: active_directory
    servers: [dc1.corp.example.com, dc2.corp.example.com]
    tls: ldaps
    ca_path: /etc/idsync/corp-root-ca.pem
    bind_dn: svc-idsync@corp.example.com
    bind_password: "{{ vault_ad_bind_password }}"
    base_dn: DC=corp,DC=example,DC=com
    search:
      user: {base: "OU=People,DC=corp,DC=example,DC=com"}
      group: {base: "OU=Groups,DC=corp,DC=example,DC=com"}
    create_ous: true
    test: true

- name: Remove a connection
  idsync.entra.connection:
    name: old-tenant
    state: absent
"""

RETURN = r"""
connection:
  description: The connection record as saved (or as it would be saved, in check mode). Never holds secrets.
  returned: state=present
  type: dict
  contains:
    name:
      description: Connection name.
      type: str
      sample: contoso
    connector:
      description: Connector type.
      type: str
      sample: azure_ad
    settings:
      description: Connector settings (paths absolute; the SHA-1 thumbprint upper-case).
      type: dict
      sample:
        auth: certificate
        tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47
        application_id: 0b7a8d6e-3f9c-4b1e-9a2d-5c6e7f8a9b0c
        certificate_thumbprint: 0F3A9C1E5D7B2A4C6E8F0A1B2C3D4E5F60718293
        certificate_path: /etc/idsync/connector.crt
        private_key_path: /etc/idsync/connector.key
        tenant_environment: azure_global
    created:
      description: When the connection was first saved (UTC, ISO 8601); null in check mode for a new one.
      type: str
      sample: "2025-01-01T10:00:00Z"
    updated:
      description: When the connection was last changed (UTC, ISO 8601).
      type: str
      sample: "2025-01-02T10:00:00Z"
test:
  description: Result of "Test connection".
  returned: when O(test=true)
  type: dict
  contains:
    ok:
      description: Whether the test passed.
      type: bool
      sample: true
    organization:
      description: The tenant read with C(GET /organization) (V(azure_ad)).
      type: dict
      sample: {"id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "display_name": "Contoso", "default_domain": "contoso.com"}
    granted_permissions:
      description: Microsoft Graph application permissions in the token's C(roles) claim (V(azure_ad)).
      type: list
      elements: str
      sample: [Group.ReadWrite.All, Organization.Read.All, User.ReadWrite.All]
    missing_permissions:
      description: Required permissions the granted ones do not cover (V(azure_ad)).
      type: list
      elements: str
      sample: []
    server:
      description: The directory server that answered (V(active_directory), V(ldap)).
      type: str
      sample: ldaps://dc1.corp.example.com:636
    vendor:
      description: The server's vendorName from its rootDSE, or Active Directory (V(active_directory), V(ldap)).
      type: str
      sample: Active Directory
    naming_contexts:
      description: The naming contexts in the server's rootDSE (V(active_directory), V(ldap)).
      type: list
      elements: str
      sample: [DC=corp,DC=example,DC=com]
    columns:
      description: Header of the CSV file (V(csv)).
      type: list
      elements: str
      sample: [employeeId, givenName, surname]
    error:
      description: Why the test failed; null when it passed.
      type: str
      sample: null
msg:
  description: What happened.
  returned: always
  type: str
  sample: connection contoso created
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError
from ansible_collections.idsync.entra.plugins.module_utils import connections
from ansible_collections.idsync.entra.plugins.module_utils.store import hide_store_password


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            connector=dict(type="str", choices=list(connections.CONNECTORS)),
            tenant_id=dict(type="str"),
            application_id=dict(type="str", aliases=["client_id"]),
            certificate_thumbprint=dict(type="str"),
            certificate_path=dict(type="path"),
            private_key_path=dict(type="path", no_log=False),
            private_key_passphrase=dict(type="str", no_log=True),
            tenant_environment=dict(type="str", choices=list(connections.TENANT_ENVIRONMENTS), default="azure_global"),
            authority_host=dict(type="str"),
            graph_endpoint=dict(type="str"),
            exchange_endpoint=dict(type="str"),
            ownership_attribute=dict(type="str"),
            auth_method=dict(type="str", choices=["certificate", "workload_identity", "managed_identity"],
                             default="certificate"),
            certificate_content=dict(type="str", no_log=True),
            private_key_content=dict(type="str", no_log=True),
            client_assertion_file=dict(type="path"),
            ca_path=dict(type="path"),
            servers=dict(type="list", elements="str"),
            tls=dict(type="str", choices=["ldaps", "starttls", "none"], default="ldaps"),
            validate_certs=dict(type="bool", default=True),
            bind_dn=dict(type="str"),
            bind_password=dict(type="str", no_log=True),
            base_dn=dict(type="str"),
            search=dict(type="dict"),
            create_ous=dict(type="bool", default=False),
            page_size=dict(type="int", default=500),
            timeout=dict(type="int", default=10),
            path=dict(type="path"),
            delimiter=dict(type="str", default=","),
            encoding=dict(type="str", choices=["utf-8", "utf-8-sig"], default="utf-8"),
            key=dict(type="list", elements="str", no_log=False),
            multi_value_separator=dict(type="str", default=";"),
            multiline=dict(type="bool", default=False),
            max_field_length=dict(type="int", default=8192),
            store=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            test=dict(type="bool", default=False),
            required_permissions=dict(type="list", elements="str"),
        ),
        required_if=[("state", "present", ["connector"])],
        supports_check_mode=True,
    )
    hide_store_password(module)
    try:
        result = connections.ensure_connection(module.params, check_mode=module.check_mode)
    except connections.ConnectionTestFailed as exc:
        module.fail_json(msg=exc.msg, test=exc.result, error=exc.to_result())
    except IdsyncError as exc:
        module.fail_json(msg=exc.msg, error=exc.to_result())
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="Unexpected error managing connection %s: %s" % (module.params["name"], exc),
                         exception=traceback.format_exc())
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
