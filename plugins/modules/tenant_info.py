#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: tenant_info
short_description: Sign in to a Microsoft Entra tenant and report what the connection can see
version_added: 0.1.0
description:
  - Signs in with the given credential (certificate, client secret or access token), reads the tenant's
    C(organization) object from Microsoft Graph and reports the tenant, the endpoints used and the application
    permissions granted to the token.
  - This is the "Test connection" step of a manual configuration. A sign-in that fails ends with one sentence
    naming what to fix (unknown tenant, unknown application, wrong secret, certificate not registered, ...).
  - Needs the Microsoft Graph application permission C(Organization.Read.All) (or C(Directory.Read.All)).
author:
  - idsync.entra maintainers (@idsync)
options:
  required_permissions:
    description:
      - Application permissions (for example V(User.ReadWrite.All)) the token must hold. The module fails,
        naming the missing ones, when it does not.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - idsync.entra.auth
attributes:
  check_mode:
    support: full
    description: The module never changes anything.
  diff_mode:
    support: none
    description: Nothing to compare.
"""

EXAMPLES = r"""
- name: Test a certificate connection (manual configuration)
  idsync.entra.tenant_info:
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111
    certificate_path: /etc/idsync/sync-app.pem
    certificate_thumbprint: 3A5F0C1D2E4B6A7980ABCDEF0123456789ABCDEF
    required_permissions:
      - User.ReadWrite.All
      - Group.ReadWrite.All
  register: tenant

- name: Show the tenant
  ansible.builtin.debug:
    msg: "{{ tenant.organization.displayName }} ({{ tenant.tenant_id }}) grants {{ tenant.granted_permissions }}"

- name: Use the auth options once for every Graph module of a play
  hosts: localhost
  module_defaults:
    group/idsync.entra.graph:
      tenant_id: contoso.onmicrosoft.com
      client_id: 11111111-1111-1111-1111-111111111111
      certificate_path: /etc/idsync/sync-app.pem
      tenant_environment: azure_gcc_high
  tasks:
    - idsync.entra.tenant_info:
"""

RETURN = r"""
organization:
  description: The tenant's organization object, with Graph's own property names.
  returned: success
  type: dict
  contains:
    id:
      description: The tenant ID.
      type: str
      sample: 00000000-0000-0000-0000-000000000000
    displayName:
      description: The tenant's display name.
      type: str
      sample: Contoso
    verifiedDomains:
      description: The tenant's verified domains (C(name), C(isDefault), C(isInitial), C(type), C(capabilities)).
      type: list
      elements: dict
      sample: [{"name": "contoso.onmicrosoft.com", "isDefault": true, "isInitial": true}]
tenant_id:
  description: The tenant ID (GUID), even when O(tenant_id) was given as a domain.
  returned: success
  type: str
  sample: 00000000-0000-0000-0000-000000000000
tenant_environment:
  description: The cloud used.
  returned: success
  type: str
  sample: azure_global
endpoints:
  description: The endpoints used.
  returned: success
  type: dict
  contains:
    authority:
      description: The sign-in authority.
      type: str
      sample: https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000
    graph_url:
      description: The Microsoft Graph base URL.
      type: str
      sample: https://graph.microsoft.com/v1.0
granted_permissions:
  description: The application permissions (C(roles) claim) of the token, sorted.
  returned: success
  type: list
  elements: str
  sample: [Group.ReadWrite.All, Organization.Read.All, User.ReadWrite.All]
credential:
  description: What signed in. No secret is ever returned.
  returned: success
  type: dict
  contains:
    type:
      description: V(certificate), V(client_secret) or V(access_token).
      type: str
      sample: certificate
    client_id:
      description: The application (client) ID, from the token when it was not given.
      type: str
      sample: 11111111-1111-1111-1111-111111111111
    thumbprint:
      description: The SHA-1 thumbprint of the certificate as the Azure portal shows it (certificate only).
      type: str
      sample: 3A5F0C1D2E4B6A7980ABCDEF0123456789ABCDEF
    not_after:
      description: When the certificate expires (certificate only).
      type: str
      sample: "2027-01-01T00:00:00+00:00"
"""

from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError
from ansible_collections.idsync.entra.plugins.module_utils.module import IdsyncModule


def main():
    module = IdsyncModule(
        argument_spec=dict(required_permissions=dict(type="list", elements="str", default=[])),
        supports_check_mode=True,
    )
    with module.fail_on_error():
        page = module.graph.get("/organization", params={"$select": "id,displayName,verifiedDomains"})
        values = (page or {}).get("value") or []
        if not values:
            raise IdsyncError("Microsoft Graph returned no organization for tenant {0}.".format(
                module.endpoints.tenant_id), {"code": "NoOrganization"})
        organization = values[0]
        claims = module.graph.token_claims
        granted = sorted(claims.get("roles") or [])
        credential = module.credential
        info = {"type": credential.kind, "client_id": getattr(credential, "client_id", None) or claims.get("appid")
                or claims.get("azp")}
        certificate = getattr(credential, "certificate", None)
        if certificate is not None:
            info["thumbprint"] = certificate.thumbprint_sha1
            info["not_after"] = certificate.not_after.isoformat()

    missing = sorted(set(module.params["required_permissions"]) - set(granted))
    result = dict(
        changed=False,
        organization=organization,
        tenant_id=organization.get("id") or claims.get("tid") or module.endpoints.tenant_id,
        tenant_environment=module.endpoints.environment,
        endpoints=dict(authority=module.endpoints.authority, graph_url=module.endpoints.graph_url),
        granted_permissions=granted,
        credential=info,
    )
    if missing:
        msg = ("Application {0} lacks the Microsoft Graph application permission(s) {1} in tenant {2}: add them under "
               "API permissions and grant admin consent.".format(info["client_id"], ", ".join(missing),
                                                                 result["tenant_id"]))
        module.fail_json(msg=msg, error=dict(code="MissingPermissions", missing=missing), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
