# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sign-in without a secret or a certificate:

* **workload identity federation**: the workload presents a token its own platform issued (AKS writes one to
  ``AZURE_FEDERATED_TOKEN_FILE``; GitHub Actions and GitLab CI issue one per job) as ``client_assertion``; Entra ID
  accepts it when the application has a federated identity credential with that issuer and subject. The file is
  read again for every token (AKS rotates it).
* **managed identity**: msal's ManagedIdentityClient asks the host (the instance metadata service of an Azure VM or
  AKS node, App Service's identity endpoint, Azure Arc...) for a token of the identity assigned to it.

Both go through the shared session (``transport.build_session``), so ``ca_path`` applies as everywhere else.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.idsync.entra.plugins.module_utils import credentials as base
from ansible_collections.idsync.entra.plugins.module_utils.errors import AuthError, ConfigError, register_secret


def _read_assertion(path):
    try:
        with open(path, "r") as handle:
            token = handle.read().strip()
    except (IOError, OSError) as exc:
        raise ConfigError("Cannot read the federated token file '%s': %s (set by the platform as "
                          "AZURE_FEDERATED_TOKEN_FILE, or given as client_assertion_file)." % (path, exc.strerror or exc),
                          option="client_assertion_file")
    if not token:
        raise ConfigError("The federated token file '%s' is empty." % path, option="client_assertion_file")
    register_secret(token)
    return token


class ClientAssertionCredential(base._MsalCredential):  # pylint: disable=protected-access
    """App-only sign-in with an external token (workload identity federation)."""

    kind = "client_assertion"

    def __init__(self, endpoints, session, client_id, assertion=None, assertion_file=None, sleep=None):
        if not client_id:
            raise ConfigError("client_id is required with a federated token: the Application (client) ID of the app "
                              "registration that holds the federated credential, or set AZURE_CLIENT_ID.",
                              option="client_id")
        if assertion:
            register_secret(assertion)
        self.assertion_file = os.path.abspath(os.path.expanduser(assertion_file)) if assertion_file else None
        self._assertion = assertion
        kwargs = {"sleep": sleep} if sleep else {}
        super(ClientAssertionCredential, self).__init__(endpoints, session, client_id, **kwargs)

    def _current_assertion(self):
        return _read_assertion(self.assertion_file) if self.assertion_file else self._assertion

    def _build_app(self):
        kwargs = dict(client_credential={"client_assertion": self._current_assertion},
                      authority=self.endpoints.authority, http_client=self.session,
                      token_cache=base.msal.TokenCache())
        if self.endpoints.custom_authority:
            kwargs["instance_discovery"] = False
        return base.msal.ConfidentialClientApplication(self.client_id, **kwargs)

    def _acquire_with(self, app):
        return app.acquire_token_for_client(scopes=[self.endpoints.scope])


class ManagedIdentityCredential(base.Credential):
    """The host's managed identity: system-assigned, or user-assigned when ``client_id`` is given."""

    kind = "managed_identity"

    def __init__(self, endpoints, session, client_id=None):
        super(ManagedIdentityCredential, self).__init__()
        base._require_msal()  # pylint: disable=protected-access
        self.endpoints = endpoints
        self.session = session
        self.client_id = client_id
        identity = base.msal.UserAssignedManagedIdentity(client_id=client_id) if client_id \
            else base.msal.SystemAssignedManagedIdentity()
        self._client = base.msal.ManagedIdentityClient(identity, http_client=session,
                                                       token_cache=base.msal.TokenCache())

    def _acquire(self):
        resource = self.endpoints.scope[:-len("/.default")] if self.endpoints.scope.endswith("/.default") \
            else self.endpoints.scope
        which = "user-assigned managed identity %s" % self.client_id if self.client_id else \
            "system-assigned managed identity"
        try:
            result = self._client.acquire_token_for_client(resource=resource)
        except Exception as exc:  # pylint: disable=broad-except  # no identity endpoint on this host
            raise AuthError("Sign-in with the %s failed: this host's identity endpoint did not answer (%s: %s); "
                            "managed identity works only on an Azure host with an identity assigned."
                            % (which, type(exc).__name__, str(exc)[:200]), {"code": "ManagedIdentityUnavailable"})
        if result and result.get("access_token"):
            return result["access_token"], int(result.get("expires_in") or 3599)
        result = result or {}
        raise AuthError("Sign-in with the %s failed: %s" % (
            which, (result.get("error_description") or result.get("error") or "no token").split("\r\n")[0]),
            {"code": result.get("error") or "ManagedIdentityError"})


def build_secretless_credential(method, params, endpoints, session):
    """The credential for ``method`` (``client_assertion``, ``client_assertion_file`` or ``managed_identity``)."""
    if method == "managed_identity":
        return ManagedIdentityCredential(endpoints, session, params.get("client_id"))
    if method == "client_assertion_file":
        return ClientAssertionCredential(endpoints, session, params.get("client_id"),
                                         assertion_file=params["client_assertion_file"])
    return ClientAssertionCredential(endpoints, session, params.get("client_id"), assertion=params["client_assertion"])
