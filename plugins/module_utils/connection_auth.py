# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a saved connection signs in: the auth options of a connection record (``auth_params``), with what the task or
the environment gives at run time on top (a secret, the certificate as content injected by AWX, a federated token
file), the record of a named connection for a module's ``connection:`` option, and its Graph client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.idsync.entra.plugins.module_utils.credentials import environment_value
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.store import (
    Store, display_location, resolve_location, store_exists,
)

# Connectors that sign in to Microsoft Entra ID with the app's credential (the same settings serve both).
ENTRA_CONNECTORS = ("azure_ad", "microsoft_365")


def auth_params(record, overrides=None):
    """The auth option dict (helper-3's names) of an azure_ad connection record, with ``overrides`` on top.

    This is what a module's ``connection: <name>`` + ``store:`` options fill in for the auth options left unset.
    """
    settings = dict(record.get("settings") or {})
    name = record.get("name") or "(unnamed)"
    if record.get("connector") not in (None,) + ENTRA_CONNECTORS:
        raise ConfigError("Connection %s is a %s connection, not azure_ad: it has no Microsoft Graph credentials."
                          % (name, record.get("connector")), option="connection")
    auth = settings.get("auth") or "certificate"
    params = {
        "tenant_id": settings.get("tenant_id"),
        "client_id": settings.get("application_id") or settings.get("client_id"),
        "certificate_path": settings.get("certificate_path"),
        "private_key_path": settings.get("private_key_path"),
        "certificate_thumbprint": settings.get("certificate_thumbprint"),
        "client_secret": None,
        "access_token": None,
        "private_key_passphrase": None,
        "client_assertion_file": settings.get("client_assertion_file"),
        "managed_identity": auth == "managed_identity",
        "tenant_environment": settings.get("tenant_environment") or "azure_global",
        "authority_host": settings.get("authority_host"),
        "graph_endpoint": settings.get("graph_endpoint"),
        "ca_path": settings.get("ca_path"),
    }
    given = dict((k, v) for k, v in (overrides or {}).items() if v is not None and v is not False)
    if any(k in given for k in CREDENTIAL_OVERRIDES):
        # A credential given at run time replaces the saved one (a secret, or the certificate as content).
        for key in ("certificate_path", "private_key_path", "client_assertion_file"):
            params[key] = None
        params["managed_identity"] = False
    params.update(given)
    if auth == "workload_identity" and not params.get("client_assertion") and not params.get("client_assertion_file"):
        params["client_assertion_file"] = environment_value("client_assertion_file")
        if not params["client_assertion_file"]:
            raise ConfigError("Connection %s signs in with workload identity federation, but no federated token was "
                              "given: the platform sets AZURE_FEDERATED_TOKEN_FILE (AKS), or pass client_assertion_file."
                              % name, option="connection")
    if auth == "certificate" and not any(params.get(k) for k in CREDENTIAL_OVERRIDES) and (
            not params.get("certificate_path") or not os.path.exists(params["certificate_path"])):
        _certificate_from_environment(params, name)
    if not any(params.get(k) for k in CREDENTIAL_OVERRIDES + ("certificate_path", "managed_identity")):
        if settings.get("auth") == "client_secret":
            raise ConfigError(
                "Connection %s was saved with client secret authentication, and the store never keeps secrets: update "
                "the authentication data (run idsync.entra.connection with certificate_thumbprint and certificate_path)."
                % name, option="connection")
        raise ConfigError("Connection %s has no certificate_path: update it with idsync.entra.connection." % name,
                          option="connection")
    return params


# Auth options that, given at run time, replace the credential a connection was saved with.
CREDENTIAL_OVERRIDES = ("client_secret", "access_token", "certificate_content", "client_assertion",
                        "client_assertion_file")


def _certificate_from_environment(params, name):
    """The connection's certificate file is not on this host (a fresh AWX job, another node): take the certificate
    and key injected as content (IDSYNC_CLIENT_CERTIFICATE / IDSYNC_CLIENT_PRIVATE_KEY), or say what is missing."""
    content = environment_value("certificate_content")
    if not content:
        where = ("its certificate %s does not exist on this host (a fresh AWX job or another node?)"
                 % params["certificate_path"]) if params.get("certificate_path") else \
            "it was saved from certificate content, which the store never keeps"
        raise ConfigError("Connection %s: %s; inject the certificate and key (the idsync.entra AWX credential type "
                          "sets IDSYNC_CLIENT_CERTIFICATE and IDSYNC_CLIENT_PRIVATE_KEY) or pass them as "
                          "certificate_content and private_key_content." % (name, where), option="connection")
    params.update(certificate_path=None, private_key_path=None, certificate_content=content,
                  private_key_content=environment_value("private_key_content"))
    params["private_key_passphrase"] = params.get("private_key_passphrase") or \
        environment_value("private_key_passphrase")


def connection_auth_params(name, store_path=None, explicit=None):
    """Auth option values of the stored connection ``name`` for ``IdsyncModule._connection_params()``.

    ``explicit`` holds the auth options the task set itself; they win (e.g. a client_secret passed at run time for
    a connection saved with client secret authentication). Returns only the options that have a value. Raises
    ConfigError when the store or the connection does not exist.
    """
    location = resolve_location(store_path)
    if not store_exists(location):
        raise ConfigError("Connection %s: the idsync store %s does not exist (create the connection with "
                          "idsync.entra.connection first)." % (name, location), option="store")
    with Store(location) as store:
        record = store.get_connection(name)
    if record is None:
        raise ConfigError("Connection %s is not in the idsync store %s." % (name, display_location(location)),
                          option="connection")
    params = auth_params(record, explicit)
    return dict((k, v) for k, v in params.items() if v is not None)


def graph_client_for(record, overrides=None, session=None):
    """A ``GraphClient`` for an azure_ad connection record ({name, connector, settings}).

    ``overrides`` (auth option names) win over the record, e.g. ``{"private_key_passphrase": ...}`` for an encrypted
    key, or endpoint overrides for a test.
    """
    from ansible_collections.idsync.entra.plugins.module_utils import clouds, credentials, graph, transport

    params = auth_params(record, overrides)
    endpoints = clouds.resolve_endpoints(params["tenant_environment"], params["tenant_id"],
                                         authority_host=params.get("authority_host"),
                                         graph_endpoint=params.get("graph_endpoint"))
    session = session or transport.build_session(params.get("ca_path"))
    credential = credentials.build_credential(params, endpoints, session)
    return graph.GraphClient(endpoints, credential, session)
