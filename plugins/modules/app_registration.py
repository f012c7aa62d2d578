#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: app_registration
short_description: Ensure a Microsoft Entra application registration, its service principal, keys and permissions
version_added: "0.1.0"
description:
  - Ensures a Microsoft Entra ID application (an "App registration" in the portal) and its service principal (its
    "Enterprise application") exist and match the options, or are deleted.
  - The application is found by O(app_id) when given, otherwise by its O(display_name), which must then be unique.
    The module never creates a second application with the same name, and fails, listing their Application
    (client) IDs, when several already share it.
  - Registers public certificates as key credentials (compared by SHA-1 thumbprint), requests application
    permissions by name (for example V(User.ReadWrite.All) of V(Microsoft Graph)), grants admin consent for them,
    assigns directory roles to the service principal and sets the owners.
  - Options left out are not managed; the module only changes what the task names.
  - Waits out Microsoft Entra's replication delay between dependent steps (an object created a moment ago can be
    missing from reads for a while) and until every change reads back, so the next task, and the next run, see it.
    A second run with the same options sends no write request and reports no change.
  - Check mode reads everything and reports what would be created or changed (RV(changes)) without writing.
    With C(--diff), the before/after shows the display name, sign-in audience, certificate thumbprints, requested
    and consented permissions by name, directory roles and owners.
author:
  - idsync.entra maintainers (@idsync)
extends_documentation_fragment:
  - idsync.entra.auth
  - idsync.entra.admin_sign_in
options:
  directory_extensions:
    description:
      - Names of directory extension properties (String, on users and groups) to register on the application,
        for example V(idsyncWorkflow), which carries the ownership mark of M(idsync.entra.sync) workflows.
      - Graph names each C(extension_<appId without dashes>_<name>); RV(directory_extensions) maps the names.
      - Only missing ones are registered; none is ever removed.
    type: list
    elements: str
  federated_credentials:
    description:
      - Federated identity credentials (workload identity federation) to add, so that a workload signs in with the
        token its platform gives it instead of a secret or certificate.
      - A credential whose issuer and subject an existing one already has is not added again; one with the same
        name but another issuer or subject is updated. Others are never removed. At most 20 per application.
    type: list
    elements: dict
    suboptions:
      name:
        description: Unique name of the credential on the application.
        type: str
        required: true
      issuer:
        description:
          - The token issuer, for example V(https://token.actions.githubusercontent.com) (GitHub Actions) or the
            OIDC issuer URL of an AKS cluster. Compared exactly.
        type: str
        required: true
      subject:
        description:
          - The subject the token must carry, for example V(repo:contoso/idsync:ref:refs/heads/main) (GitHub) or
            V(system:serviceaccount:awx:awx-job) (AKS). Compared exactly.
        type: str
        required: true
      audiences:
        description: Audiences the token must carry; V(api://AzureADTokenExchange) when left out.
        type: list
        elements: str
      description:
        description: Free text.
        type: str
  state:
    description:
      - V(present) creates or updates the application and its service principal.
      - V(absent) deletes the application; Microsoft Entra deletes its service principal with it (the module makes
        sure), which also removes the consented permissions and directory role assignments. Deleted applications
        stay restorable for 30 days unless O(purge=true).
    type: str
    choices: [present, absent]
    default: present
  display_name:
    description:
      - Name of the application, as shown under App registrations.
      - Identifies the application when O(app_id) is not given; it must then be unique in the tenant.
      - With O(app_id), the application is renamed to this name.
      - Required to create an application.
    type: str
    aliases: [name]
  app_id:
    description:
      - Application (client) ID of an existing application to manage.
      - An application cannot be created with a chosen ID; leave this out to create one by O(display_name).
    type: str
    aliases: [application_id]
  sign_in_audience:
    description:
      - Who may sign in to the application.
      - V(AzureADMyOrg) (single tenant) is used when an application is created and this is not given.
    type: str
    choices: [AzureADMyOrg, AzureADMultipleOrgs, AzureADandPersonalMicrosoftAccount, PersonalMicrosoftAccount]
  certificates:
    description:
      - Public certificates to register as key credentials (portal "Certificates & secrets", "Certificates").
      - Each entry is a PEM certificate (for example RV(idsync.entra.certificate#module:certificate) returned by
        M(idsync.entra.certificate)) or the path of a PEM or DER certificate file on the managed node. Only the
        public certificate is ever read or sent; a PEM that also holds a private key has only its certificate used.
      - Certificates are compared by SHA-1 thumbprint. Expired certificates are refused.
      - Leave out to not manage key credentials.
    type: list
    elements: str
  certificate_mode:
    description:
      - V(add) registers the listed certificates and keeps every other key, so a new certificate can be added while
        the old one still works (rotation, step one).
      - V(exclusive) makes the listed certificates the only key credentials, removing the others (rotation, last
        step, once the new certificate is proven).
      - V(replace_own) adds the listed certificates and, when one is new, removes the certificates whose display
        name equals a listed one's (those the same caller registered before, whose private key is gone, for
        example a fresh AWX job); keys named otherwise are kept.
    type: str
    choices: [add, exclusive, replace_own]
    default: add
  api_permissions:
    description:
      - Application permissions (app roles) the application requests, by API, written to the application's
        "API permissions" (C(requiredResourceAccess)).
      - Keys are API names as the portal shows them (V(Microsoft Graph), V(Office 365 Exchange Online)) or their
        application IDs; values are lists of permission names such as V(User.ReadWrite.All), resolved through the
        API's service principal (C(appRoles)). An unknown name fails the task and lists the close matches.
      - The given permissions replace the requested application permissions; delegated permissions already on the
        application are kept.
      - Leave out to not manage requested permissions.
    type: dict
  admin_consent:
    description:
      - Grant admin consent for the requested application permissions (app role assignments to the service
        principal), and revoke consented application permissions that are no longer requested.
      - V(false) leaves the consented permissions as they are.
    type: bool
    default: false
  directory_roles:
    description:
      - Microsoft Entra directory roles assigned to the service principal, tenant-wide, by name (for example
        V(Exchange Administrator)) or role template ID. Unknown names fail the task and list the close matches.
      - The list is exclusive; tenant-wide role assignments of the service principal that are not listed are
        removed. An empty list removes them all.
      - Leave out to not manage directory roles.
    type: list
    elements: str
  owners:
    description:
      - Owners of the application, as user principal names or object IDs. The list is exclusive, and that includes
        the identity that runs the module, which Microsoft Entra may have made an owner when it created the
        application.
      - Leave out to not manage owners.
    type: list
    elements: str
  purge:
    description:
      - With O(state=absent), also delete the application and its service principal permanently from the deleted
        items (they cannot be restored afterwards, and stop counting towards the directory quota).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait, at each step, for Microsoft Entra to replicate what was just written.
    type: int
    default: 300
attributes:
  check_mode:
    description: Reads everything and reports what would be created or changed in RV(changes), without writing.
    support: full
  diff_mode:
    description: Shows a compact before/after of the application.
    support: full
notes:
  - The admin identity needs Application.ReadWrite.All, plus AppRoleAssignment.ReadWrite.All for O(admin_consent)
    and RoleManagement.ReadWrite.Directory for O(directory_roles) (as application permissions of the admin
    application, or as delegated permissions of a signed-in Application Administrator / Privileged Role
    Administrator with O(admin_sign_in=device_code)).
  - Add the module to C(module_defaults) with C(group/idsync.entra.graph) to give the auth options once.
seealso:
  - module: idsync.entra.app_registration_info
  - module: idsync.entra.certificate
  - module: idsync.entra.connection
  - name: Microsoft Graph application resource type
    description: The object this module manages.
    link: https://learn.microsoft.com/graph/api/resources/application
"""

EXAMPLES = r"""
- name: Create the connector's application, with its certificate and consented permissions
  idsync.entra.app_registration:
    tenant_id: "{{ tenant_id }}"
    admin_sign_in: device_code
    display_name: idsync connector
    certificates:
      - /etc/idsync/connector.pem
    api_permissions:
      Microsoft Graph:
        - User.ReadWrite.All
        - Group.ReadWrite.All
        - Organization.Read.All
    admin_consent: true
  register: app

- name: Same, signed in as an admin application with a certificate
  idsync.entra.app_registration:
    tenant_id: "{{ tenant_id }}"
    client_id: "{{ admin_app_id }}"
    certificate_path: /etc/idsync/admin.pem
    display_name: idsync connector
    certificates:
      - "{{ lookup('file', '/etc/idsync/connector.crt') }}"
    api_permissions:
      Microsoft Graph: [User.ReadWrite.All, Group.ReadWrite.All, Organization.Read.All]
    admin_consent: true

- name: Rotation, step one - add the new certificate, keep the old one
  idsync.entra.app_registration:
    app_id: "{{ app.app_id }}"
    certificates: [/etc/idsync/connector-new.pem]
    certificate_mode: add

- name: Rotation, last step - keep only the new certificate
  idsync.entra.app_registration:
    app_id: "{{ app.app_id }}"
    certificates: [/etc/idsync/connector-new.pem]
    certificate_mode: exclusive

- name: Give the Microsoft 365 connector's service principal the Exchange Administrator role
  idsync.entra.app_registration:
    app_id: "{{ app.app_id }}"
    api_permissions:
      Office 365 Exchange Online: [Exchange.ManageAsApp]
    admin_consent: true
    directory_roles: [Exchange Administrator]

- name: Remove the application and its service principal
  idsync.entra.app_registration:
    display_name: idsync connector
    state: absent
"""

RETURN = r"""
tenant_id:
  description: Directory (tenant) ID the application lives in.
  returned: always
  type: str
  sample: 72f988bf-86f1-41af-91ab-2d7cd011db47
app_id:
  description: Application (client) ID. V(null) in check mode when the application would be created.
  returned: always
  type: str
  sample: 3fa85f64-5717-4562-b3fc-2c963f66afa6
object_id:
  description: Object ID of the application.
  returned: always
  type: str
service_principal_id:
  description: Object ID of the application's service principal (its enterprise application).
  returned: always
  type: str
display_name:
  description: Display name of the application.
  returned: always
  type: str
sign_in_audience:
  description: Sign-in audience of the application.
  returned: always
  type: str
  sample: AzureADMyOrg
certificate_thumbprints:
  description: SHA-1 thumbprints (upper-case hex, as the portal shows them) of the certificate key credentials.
  returned: always
  type: list
  elements: str
  sample: [0C4A1F6D3B8E2A9175D4C6E8B0A2F4D6E8C0B2A4]
api_permissions:
  description: Requested application permissions by API name.
  returned: always
  type: dict
  sample: {"Microsoft Graph": ["Group.ReadWrite.All", "Organization.Read.All", "User.ReadWrite.All"]}
granted_permissions:
  description: Application permissions consented (app role assignments of the service principal) by API name.
  returned: always
  type: dict
  sample: {"Microsoft Graph": ["Group.ReadWrite.All", "Organization.Read.All", "User.ReadWrite.All"]}
directory_roles:
  description: Names of the directory roles assigned to the service principal tenant-wide.
  returned: always
  type: list
  elements: str
  sample: [Exchange Administrator]
owners:
  description:
    - Owners of the application, as user principal names (users) or application IDs (service principals).
    - Microsoft Entra may make the identity that created the application one of its owners.
  returned: always
  type: list
  elements: str
directory_extensions:
  description: The registered directory extensions, short name to the full name Graph gives them.
  returned: when O(directory_extensions) is given
  type: dict
  sample: {"idsyncWorkflow": "extension_0c4a1f6d3b8e2a9175d4c6e8b0a2f4d6_idsyncWorkflow"}
federated_credentials:
  description: Names of the application's federated identity credentials.
  returned: when O(federated_credentials) is given
  type: list
  elements: str
changes:
  description: What was changed, or in check mode what would be, one sentence each.
  returned: always
  type: list
  elements: str
  sample:
    - create application 'idsync connector'
    - request Microsoft Graph/User.ReadWrite.All
    - add certificate 0C4A1F6D3B8E2A9175D4C6E8B0A2F4D6E8C0B2A4 (CN=idsync connector) to 'idsync connector'
    - create service principal for 'idsync connector'
    - grant admin consent for Microsoft Graph/User.ReadWrite.All
"""

from ansible_collections.idsync.entra.plugins.module_utils import app_credentials_extras as extras
from ansible_collections.idsync.entra.plugins.module_utils.module import IdsyncModule
from ansible_collections.idsync.entra.plugins.module_utils.applications import (
    ADMIN_SIGN_IN_SPEC, AppRegistration, SIGN_IN_AUDIENCES, require_admin_token,
)


def main():
    argument_spec = dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        display_name=dict(type="str", aliases=["name"]),
        app_id=dict(type="str", aliases=["application_id"]),
        sign_in_audience=dict(type="str", choices=SIGN_IN_AUDIENCES),
        certificates=dict(type="list", elements="str"),
        certificate_mode=dict(type="str", choices=["add", "exclusive", "replace_own"], default="add"),
        api_permissions=dict(type="dict"),
        admin_consent=dict(type="bool", default=False),
        directory_roles=dict(type="list", elements="str"),
        owners=dict(type="list", elements="str"),
        purge=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
        directory_extensions=dict(type="list", elements="str"),
        federated_credentials=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            issuer=dict(type="str", required=True),
            subject=dict(type="str", required=True),
            audiences=dict(type="list", elements="str"),
            description=dict(type="str"),
        )),
    )
    argument_spec.update(ADMIN_SIGN_IN_SPEC)
    module = IdsyncModule(
        argument_spec=argument_spec,
        required_one_of=[("display_name", "app_id")],
        supports_check_mode=True,
    )
    params = module.params
    require_admin_token(module, "idsync.entra.app_registration")
    with module.fail_on_error():
        tenant_id = module.graph.token_claims.get("tid") or module.endpoints.tenant_id
        logic = AppRegistration(module.graph, check_mode=module.check_mode, timeout=params["wait_timeout"],
                                tenant_id=tenant_id)
        if params["state"] == "absent":
            changed, result, diff = logic.ensure_absent(params)
        else:
            changed, result, diff = logic.ensure_present(params)
            changed = _ensure_extras(module, logic, result) or changed
        result["changes"] = logic.changes
        if module._diff:
            result["diff"] = diff
        module.exit_json(changed=changed, **result)


def _ensure_extras(module, logic, result):
    """Directory extensions and federated credentials (module_utils/app_credentials_extras.py)."""
    params = module.params
    app = {"id": result.get("object_id"), "appId": result.get("app_id")}
    changed = False
    if params.get("directory_extensions") is not None:
        if app["appId"]:
            changes, names = extras.ensure_directory_extensions(module.graph, app, params["directory_extensions"],
                                                                module.check_mode, params["wait_timeout"])
        else:   # check mode, application still to be created
            changes, names = ["register directory extension %s" % n for n in params["directory_extensions"]], {}
        logic.changes.extend(changes)
        result["directory_extensions"] = names
        changed = changed or bool(changes)
    if params.get("federated_credentials") is not None:
        wanted = extras.normalise_federated_credentials(params["federated_credentials"])
        changes, names = extras.ensure_federated_credentials(module.graph, app, wanted, module.check_mode,
                                                             params["wait_timeout"])
        logic.changes.extend(changes)
        result["federated_credentials"] = names
        changed = changed or bool(changes)
    return changed


if __name__ == "__main__":
    main()
