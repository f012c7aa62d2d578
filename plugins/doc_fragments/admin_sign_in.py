# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options of the controller-side admin sign-in (device code) shared by app_registration modules."""

    DOCUMENTATION = r"""
options:
  admin_sign_in:
    description:
      - How the administrator who manages the application signs in.
      - V(credentials) uses the auth options as given (O(client_id) with O(certificate_path) or O(client_secret),
        or a ready O(access_token), for example from C(az account get-access-token --resource-type ms-graph)).
      - V(device_code) signs a person in interactively, like "Log in to Azure" does. The B(controller) starts the
        device code flow and shows C(To sign in, use a web browser to open the page https://microsoft.com/devicelogin
        and enter the code XXXX to authenticate.) while the task waits; the person opens the page, enters the code
        and signs in (multi-factor authentication and Conditional Access apply as usual). The action plugin then hands
        the access token to the module as O(access_token). The token lives only in memory for this one task; it is
        never written to disk, to a fact or to the connection store.
      - With V(device_code), O(tenant_id) is optional (the account's home tenant is used) and O(client_id),
        O(certificate_path), O(client_secret) and O(access_token) must not be given.
      - The signed-in account needs the Entra roles Application Administrator (create, update and delete
        applications, grant admin consent for application permissions) and Privileged Role Administrator (for
        directory role assignments, and to consent to Microsoft Graph app roles).
      - The delegated permissions requested are Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All,
        RoleManagement.ReadWrite.Directory and Directory.Read.All on the cloud's Microsoft Graph.
    type: str
    choices: [credentials, device_code]
    default: credentials
  device_code_client_id:
    description:
      - Public client application used for the device code sign-in.
      - The default is Microsoft's "Microsoft Graph Command Line Tools" application, which exists in every tenant.
    type: str
    default: 14d82eec-204b-4c2f-b7e8-296a70dab67e
  device_code_timeout:
    description:
      - Seconds to wait for the person to complete the device code sign-in (the code itself expires after about
        15 minutes).
    type: int
    default: 900
notes:
  - O(admin_sign_in=device_code) runs on the controller, in this collection's action plugin; the module itself only
    ever receives the resulting access token.
"""
