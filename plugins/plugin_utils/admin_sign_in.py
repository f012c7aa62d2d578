# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller-side admin sign-in for the app registration modules.

With ``admin_sign_in: device_code`` the action plugin (running on the controller) performs Microsoft's device
code flow through msal, shows the "To sign in, use a web browser to open the page ... and enter the code ..."
message on the controller's display while the task waits, and runs the module with the resulting access token as
``access_token`` (a no_log option). The token is held in memory for that one module call only.

With an admin secret in the task (``client_secret``, or a certificate with ``private_key_passphrase``) the action
plugin likewise signs in on the controller and hands the module a short-lived token instead: module arguments are
logged by Ansible at ``ANSIBLE_DEBUG=1`` and kept in AnsiballZ payloads (``ANSIBLE_KEEP_REMOTE_FILES``, a killed
run), so the secret itself never goes into them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.idsync.entra.plugins.module_utils import clouds
from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError

try:
    from ansible_collections.idsync.entra.plugins.module_utils import credentials
    from ansible_collections.idsync.entra.plugins.module_utils.transport import build_session
    IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - msal/requests missing on the controller
    credentials = None
    build_session = None
    IMPORT_ERROR = exc

display = Display()

DEVICE_CODE = "device_code"
DEFAULT_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
DEFAULT_TIMEOUT = 900

# Delegated Microsoft Graph permissions the administrator's token needs to create applications, grant admin
# consent (app role assignments) and assign directory roles.
DELEGATED_SCOPES = (
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
)

# Options that name another admin credential: meaningless (and confusing) together with device_code.
CONFLICTING = ("client_id", "certificate_path", "private_key_path", "certificate_thumbprint", "client_secret",
               "access_token")


def delegated_scopes(endpoints):
    """The delegated scopes on the cloud's Graph resource (``https://graph.microsoft.us/Application.ReadWrite.All``),
    whatever host ``graph_endpoint`` points at."""
    resource = endpoints.scope[:-len(".default")] if endpoints.scope.endswith(".default") else endpoints.scope
    if not resource.endswith("/"):
        resource += "/"
    return [resource + name for name in DELEGATED_SCOPES]


def sign_in_with_device_code(args, prompt, environ=None):
    """Run the device code flow for the task ``args``; returns ``(access_token, claims)``.

    Uses the same endpoint resolution (tenant_environment, authority_host) and the same ca_path-forcing session as
    the modules. Raises IdsyncError on any failure.
    """
    if credentials is None:
        raise IdsyncError("admin_sign_in=device_code needs the Python libraries 'msal' and 'requests' on the "
                          "controller: {0}".format(IMPORT_ERROR))
    environ = os.environ if environ is None else environ
    tenant = args.get("tenant_id") or environ.get("AZURE_TENANT_ID") or "organizations"
    endpoints = clouds.resolve_endpoints(args.get("tenant_environment"), tenant,
                                         authority_host=args.get("authority_host"),
                                         graph_endpoint=args.get("graph_endpoint"))
    session = build_session(args.get("ca_path"))
    timeout = args.get("device_code_timeout") or DEFAULT_TIMEOUT
    credential = credentials.DeviceCodeCredential(
        endpoints, session,
        client_id=args.get("device_code_client_id") or DEFAULT_CLIENT_ID,
        scopes=delegated_scopes(endpoints),
        prompt=prompt,
        timeout=int(timeout),
    )
    token = credential.get_token()
    return token, credentials.decode_jwt_claims(token)


SECRET_OPTIONS = ("client_secret", "private_key_passphrase")
CREDENTIAL_OPTIONS = ("client_secret", "certificate_path", "private_key_path", "private_key_passphrase",
                      "certificate_thumbprint")


def token_for_secret(args):
    """Sign in with the secret-bearing auth options of ``args`` on the controller; returns an access token."""
    if credentials is None:
        raise IdsyncError("Signing in with a client secret needs the Python libraries 'msal' and 'requests' on the "
                          "controller: {0}".format(IMPORT_ERROR))
    endpoints = clouds.resolve_endpoints(args.get("tenant_environment"), args.get("tenant_id"),
                                         authority_host=args.get("authority_host"),
                                         graph_endpoint=args.get("graph_endpoint"))
    session = build_session(args.get("ca_path"))
    return credentials.build_credential(args, endpoints, session).get_token()


def keep_secret_out_of_module_args(module_args):
    """When the task carries an admin secret, sign in here and pass the module a token instead (in place)."""
    if not any(module_args.get(name) for name in SECRET_OPTIONS) or module_args.get("access_token"):
        return False
    token = token_for_secret(module_args)
    for name in CREDENTIAL_OPTIONS:
        module_args.pop(name, None)
    module_args["access_token"] = token
    return True


class AdminSignInAction(ActionBase):
    """Base action: optional device code sign-in on the controller, then the module of the same name."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = dict()
        result = super(AdminSignInAction, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect

        module_args = dict(self._task.args)
        method = module_args.get("admin_sign_in") or "credentials"
        token_given = method == DEVICE_CODE
        if method == DEVICE_CODE:
            given = [name for name in CONFLICTING if module_args.get(name)]
            if given:
                raise AnsibleActionFail("admin_sign_in=device_code signs a person in on the controller; do not also "
                                        "pass {0}.".format(", ".join(given)))
            host = task_vars.get("inventory_hostname", "localhost")

            def prompt(message):
                display.display(to_text(message), color="bright yellow")
                display.display("(idsync.entra: waiting for the sign-in for the task on {0})".format(host),
                                color="bright yellow")

            try:
                token, claims = sign_in_with_device_code(module_args, prompt)
            except IdsyncError as exc:
                result.update(failed=True, msg=exc.msg, error=exc.to_result())
                return result
            module_args["access_token"] = token
            if not module_args.get("tenant_id") and claims.get("tid"):
                module_args["tenant_id"] = claims["tid"]
            account = claims.get("upn") or claims.get("preferred_username") or claims.get("unique_name")
            if account:
                display.vv("idsync.entra: signed in as {0}".format(account))

        else:
            try:
                exchanged = keep_secret_out_of_module_args(module_args)
            except IdsyncError as exc:
                result.update(failed=True, msg=exc.msg, error=exc.to_result())
                return result
            token_given = token_given or exchanged

        module_name = self._task.resolved_action or self._task.action
        module_result = self._execute_module(module_name=module_name, module_args=module_args,
                                             task_vars=task_vars)
        result.update(module_result)
        if token_given:
            # The module masks it (no_log), but keep it out of the echoed arguments regardless.
            invocation = result.get("invocation", {}).get("module_args")
            if isinstance(invocation, dict) and "access_token" in invocation:
                invocation["access_token"] = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
        return result
