# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Validation of ``active_directory`` / ``ldap`` connection settings (shared by the connection module and the
connector): server URIs, TLS mode, bind DN, base DN and per-object-type searches. The password is never a setting."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.names import (
    DnError, check_filter, normalize_dn,
)

KINDS = ("active_directory", "ldap")
TLS_MODES = ("ldaps", "starttls", "none")
SCOPES = ("base", "one", "subtree")
OBJECT_TYPES = ("user", "group", "organizational_unit")
SETTINGS = ("servers", "tls", "ca_path", "validate_certs", "bind_dn", "base_dn", "search", "create_ous",
            "page_size", "timeout")
_URI_RE = re.compile(r"^(?:(?P<scheme>ldaps?)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[^/:\s]+)(?::(?P<port>\d+))?/?$")


def _server_uri(text, tls):
    match = _URI_RE.match(str(text).strip())
    if not match:
        raise ConfigError("servers: '%s' is not a host name or an ldap:// / ldaps:// URI" % text, option="servers")
    scheme = match.group("scheme")
    if scheme == "ldaps" and tls != "ldaps":
        raise ConfigError("servers: %s is an ldaps:// URI but tls is %s; use tls: ldaps" % (text, tls), option="tls")
    if scheme == "ldap" and tls == "ldaps":
        raise ConfigError("servers: %s is an ldap:// URI but tls is ldaps (port 636); write ldaps://, or use tls: "
                          "starttls" % text, option="tls")
    port = match.group("port") or ("636" if tls == "ldaps" else "389")
    return "%s://%s:%s" % ("ldaps" if tls == "ldaps" else "ldap", match.group("host"), port)


def _dn(value, option):
    try:
        return normalize_dn(value)
    except DnError as exc:
        raise ConfigError("%s: %s" % (option, exc), option=option)


def validate_settings(params, kind):
    """The settings to store for an LDAP connection of ``kind``; raises ConfigError naming the option."""
    servers = params.get("servers")
    if isinstance(servers, str):
        servers = [servers]
    if not servers:
        raise ConfigError("An %s connection needs servers (one or more host names or ldaps:// URIs, tried in order)"
                          % kind, option="servers")
    tls = params.get("tls") or "ldaps"
    if tls not in TLS_MODES:
        raise ConfigError("tls must be one of %s, not %s" % (", ".join(TLS_MODES), tls), option="tls")
    uris = [_server_uri(s, tls) for s in servers]
    if not params.get("bind_dn"):
        raise ConfigError("An %s connection needs bind_dn (a DN%s)" % (
            kind, " or a user principal name such as svc-idsync@contoso.com" if kind == "active_directory" else ""),
            option="bind_dn")
    bind_dn = str(params["bind_dn"]).strip()
    if "=" in bind_dn:
        bind_dn = _dn(bind_dn, "bind_dn")
    elif kind != "active_directory" or "@" not in bind_dn:
        upn = " nor a user principal name (user@domain)" if kind == "active_directory" else ""
        raise ConfigError("bind_dn '%s' is not a DN%s" % (bind_dn, upn), option="bind_dn")
    if not params.get("base_dn"):
        raise ConfigError("An %s connection needs base_dn, such as DC=contoso,DC=com" % kind, option="base_dn")
    base_dn = _dn(params["base_dn"], "base_dn")
    search = {}
    for object_type, spec in sorted((params.get("search") or {}).items()):
        where = "search.%s" % object_type
        if object_type not in OBJECT_TYPES:
            raise ConfigError("%s: unknown object type; use %s" % (where, ", ".join(OBJECT_TYPES)), option=where)
        spec = dict(spec or {})
        entry = {}
        if spec.get("base"):
            entry["base"] = _dn(spec["base"], where + ".base")
        scope = spec.get("scope") or "subtree"
        if scope not in SCOPES:
            raise ConfigError("%s.scope must be one of %s" % (where, ", ".join(SCOPES)), option=where)
        entry["scope"] = scope
        if spec.get("filter"):
            try:
                entry["filter"] = check_filter(spec["filter"], where + ".filter")
            except ValueError as exc:
                raise ConfigError(str(exc), option=where)
        search[object_type] = entry
    ca_path = params.get("ca_path")
    if ca_path:
        ca_path = os.path.abspath(os.path.expanduser(ca_path))
        if not os.path.exists(ca_path):
            raise ConfigError("ca_path '%s' does not exist" % ca_path, option="ca_path")
    if tls == "none" and ca_path:
        raise ConfigError("ca_path has no effect with tls: none", option="ca_path")
    settings = {
        "servers": uris,
        "tls": tls,
        "ca_path": ca_path,
        "validate_certs": bool(params.get("validate_certs", True)),
        "bind_dn": bind_dn,
        "base_dn": base_dn,
        "search": search,
        "create_ous": bool(params.get("create_ous", False)),
        "page_size": int(params.get("page_size") or 500),
        "timeout": int(params.get("timeout") or 10),
    }
    return dict((k, v) for k, v in settings.items() if v is not None)


def search_of(settings, object_type):
    """(base, scope, filter or None) of an object type: its own search, else the base DN and subtree."""
    spec = (settings.get("search") or {}).get(object_type) or {}
    return spec.get("base") or settings["base_dn"], spec.get("scope") or "subtree", spec.get("filter")
