#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: app_registration_info
short_description: Read Microsoft Entra application registrations with their keys and permissions
version_added: "0.1.0"
description:
  - Reads one application (by O(app_id) or O(display_name)) or all applications of the tenant (every page).
  - For each, returns its service principal ID, certificate thumbprints, requested application permissions and
    consented permissions by name, directory roles of its service principal, and owners.
  - Never changes anything.
author:
  - idsync.entra maintainers (@idsync)
extends_documentation_fragment:
  - idsync.entra.auth
  - idsync.entra.admin_sign_in
options:
  app_id:
    description:
      - Application (client) ID of the application to read.
    type: str
    aliases: [application_id]
  display_name:
    description:
      - Display name of the applications to read (exact match; several applications can share a name).
    type: str
    aliases: [name]
  details:
    description:
      - Also read each application's service principal, consented permissions, directory roles and owners.
      - V(false) makes listing many applications much cheaper (one paged query).
    type: bool
    default: true
attributes:
  check_mode:
    description: The module only reads.
    support: full
  diff_mode:
    description: Not applicable; nothing is changed.
    support: none
notes:
  - Needs Application.Read.All (or Directory.Read.All), plus RoleManagement.Read.Directory for the directory roles.
seealso:
  - module: idsync.entra.app_registration
"""

EXAMPLES = r"""
- name: Read the connector's application
  idsync.entra.app_registration_info:
    display_name: idsync connector
  register: found

- name: Show the consented permissions
  ansible.builtin.debug:
    var: found.applications[0].granted_permissions

- name: List every application of the tenant, cheaply
  idsync.entra.app_registration_info:
    details: false
  register: all_apps
"""

RETURN = r"""
tenant_id:
  description: Directory (tenant) ID that was read.
  returned: always
  type: str
applications:
  description: The applications found, sorted by display name (an empty list when there is none).
  returned: always
  type: list
  elements: dict
  contains:
    app_id:
      description: Application (client) ID.
      type: str
    object_id:
      description: Object ID of the application.
      type: str
    display_name:
      description: Display name.
      type: str
    sign_in_audience:
      description: Sign-in audience.
      type: str
    created_date_time:
      description: When the application was created.
      type: str
    service_principal_id:
      description: Object ID of the service principal, V(null) when it has none. Only with O(details=true).
      type: str
    certificate_thumbprints:
      description: SHA-1 thumbprints (upper-case hex) of the certificate key credentials.
      type: list
      elements: str
    certificates:
      description: The certificate key credentials.
      type: list
      elements: dict
      contains:
        thumbprint:
          description: SHA-1 thumbprint (upper-case hex).
          type: str
        display_name:
          description: Description of the key credential.
          type: str
        key_id:
          description: Key ID of the key credential.
          type: str
        start_date_time:
          description: Start of validity.
          type: str
        end_date_time:
          description: End of validity.
          type: str
    api_permissions:
      description: Requested application permissions by API name.
      type: dict
    granted_permissions:
      description: Consented application permissions by API name. Only with O(details=true).
      type: dict
    directory_roles:
      description: Directory roles of the service principal. Only with O(details=true).
      type: list
      elements: str
    owners:
      description: Owners (user principal names, or application IDs of service principals). Only with O(details=true).
      type: list
      elements: str
"""

from ansible_collections.idsync.entra.plugins.module_utils.module import IdsyncModule
from ansible_collections.idsync.entra.plugins.module_utils.applications import (
    ADMIN_SIGN_IN_SPEC, AppRegistration, require_admin_token,
)


def main():
    argument_spec = dict(
        app_id=dict(type="str", aliases=["application_id"]),
        display_name=dict(type="str", aliases=["name"]),
        details=dict(type="bool", default=True),
    )
    argument_spec.update(ADMIN_SIGN_IN_SPEC)
    module = IdsyncModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("app_id", "display_name")],
        supports_check_mode=True,
    )
    params = module.params
    require_admin_token(module, "idsync.entra.app_registration_info")
    with module.fail_on_error():
        tenant_id = module.graph.token_claims.get("tid") or module.endpoints.tenant_id
        logic = AppRegistration(module.graph, check_mode=True, tenant_id=tenant_id)
        applications = logic.describe(app_id=params.get("app_id"), display_name=params.get("display_name"),
                                      include_details=params["details"])
        module.exit_json(changed=False, tenant_id=tenant_id, applications=applications)


if __name__ == "__main__":
    main()
