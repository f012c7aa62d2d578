# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Named connections: validation of connection settings, the Graph client of an ``azure_ad`` connection record,
and "Test connection" (token + ``GET /organization`` + granted permissions cover what the connector needs).

Used by ``idsync.entra.connection`` / ``connection_info`` and by the sync engine (``graph_client_for``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import codecs
import os
import re

from ansible_collections.idsync.entra.plugins.module_utils.connection_auth import (  # noqa: F401 pylint: disable=unused-import
    CREDENTIAL_OVERRIDES, ENTRA_CONNECTORS, auth_params, connection_auth_params, graph_client_for,
)
from ansible_collections.idsync.entra.plugins.module_utils.connectors.csv_reader import DEFAULT_MAX_FIELD_LENGTH
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError, probe_verdict
from ansible_collections.idsync.entra.plugins.module_utils.store import (
    Store,
    display_location,
    find_forbidden_keys,
    is_postgres_location,
    redact_settings,
    resolve_location,
    store_exists,
)

CONNECTORS = ("active_directory", "azure_ad", "csv", "ldap", "microsoft_365")
LDAP_CONNECTORS = ("active_directory", "ldap")

TENANT_ENVIRONMENTS = ("azure_global", "azure_gcc", "azure_gcc_high", "azure_dod", "azure_china")

# Microsoft Graph application permissions each connector needs (least privilege).
DEFAULT_REQUIRED_PERMISSIONS = {
    "azure_ad": ["User.ReadWrite.All", "Group.ReadWrite.All", "Organization.Read.All"],
    "csv": [],
    # Office 365 Exchange Online application permission; the Exchange role is checked by the test's cmdlet.
    "microsoft_365": ["Exchange.ManageAsApp"],
    "active_directory": [],
    "ldap": [],
}

# A required permission is also satisfied by any of these broader ones.
SATISFIED_BY = {
    "User.Read.All": ("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "User.ReadWrite.All": ("Directory.ReadWrite.All",),
    "Group.Read.All": ("Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "Group.ReadWrite.All": ("Directory.ReadWrite.All",),
    "GroupMember.Read.All": ("GroupMember.ReadWrite.All", "Group.Read.All", "Group.ReadWrite.All",
                             "Directory.Read.All", "Directory.ReadWrite.All"),
    "GroupMember.ReadWrite.All": ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
    "Organization.Read.All": ("Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "Directory.Read.All": ("Directory.ReadWrite.All",),
    "Application.Read.All": ("Application.ReadWrite.All", "Application.ReadWrite.OwnedBy",
                             "Directory.Read.All", "Directory.ReadWrite.All"),
}

# Settings of an azure_ad record, and the auth option each maps to.
AZURE_AD_SETTINGS = (
    "tenant_id", "application_id", "certificate_thumbprint", "certificate_path", "private_key_path",
    "tenant_environment", "authority_host", "graph_endpoint", "ca_path", "ownership_attribute",
    "certificate_content", "private_key_content", "client_assertion_file",
)
_OWNERSHIP_RE = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$")
EXCHANGE_SETTINGS = ("exchange_endpoint",)
CSV_SETTINGS = ("path", "delimiter", "encoding", "key", "multi_value_separator", "multiline", "max_field_length")
LDAP_SETTINGS = ("servers", "tls", "validate_certs", "bind_dn", "base_dn", "search", "create_ous", "page_size",
                 "timeout")

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

_GUID_WHAT = {
    "tenant_id": "the Directory (tenant) ID",
    "application_id": "the Application (client) ID",
}


class ConnectionTestFailed(IdsyncError):
    """``test: true`` failed; ``result`` is the test result dict."""

    def __init__(self, msg, result):
        self.result = result
        super(ConnectionTestFailed, self).__init__(msg, {"code": "ConnectionTestFailed"})


# -- small helpers ------------------------------------------------------------------------------------------------

def _abspath(value):
    return os.path.abspath(os.path.expanduser(str(value))) if value else None


def validate_guid(value, option):
    """Return the GUID lower-cased, or raise ConfigError naming the option and the bad value."""
    text = "" if value is None else str(value).strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if not _GUID_RE.match(text):
        raise ConfigError(
            "%s '%s' is not a GUID: pass %s as the Azure portal shows it, e.g. 00000000-0000-0000-0000-000000000000."
            % (option, value, _GUID_WHAT.get(option, "a GUID")), option=option, details={"value": str(value)})
    return text.lower()


_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


def validate_tenant(value):
    """The Directory (tenant) ID lower-cased, or a verified domain lower-cased; ConfigError otherwise."""
    text = "" if value is None else str(value).strip()
    if _GUID_RE.match(text.strip("{}")):
        return text.strip("{}").lower()
    if _DOMAIN_RE.match(text):
        return text.lower()
    raise ConfigError(
        "tenant_id '%s' is neither a GUID nor a domain: pass the Directory (tenant) ID as the Azure portal shows it "
        "(e.g. 00000000-0000-0000-0000-000000000000) or a verified domain (e.g. contoso.onmicrosoft.com)." % value,
        option="tenant_id", details={"value": str(value)})


def missing_permissions(required, granted):
    """The required permissions that neither ``granted`` nor a broader granted permission covers."""
    have = set(granted or [])
    missing = []
    for name in required or []:
        if name in have or any(alt in have for alt in SATISFIED_BY.get(name, ())):
            continue
        missing.append(name)
    return missing


def public_record(record):
    """A record as modules return it: no secret-bearing settings (older setups may have stored some)."""
    if record is None:
        return None
    result = dict(record)
    result["settings"] = redact_settings(record.get("settings") or {})
    return result


def open_store(path, check_mode=False):
    """Open the store; in check mode a store that does not exist yet is not created (returns None)."""
    location = resolve_location(path)
    if check_mode and not is_postgres_location(location) and not os.path.exists(location):
        return None
    return Store(location)


# -- validation ---------------------------------------------------------------------------------------------------

def _validate_azure_ad(params):
    """Validate the azure_ad options and return the settings to store (all paths absolute)."""
    from ansible_collections.idsync.entra.plugins.module_utils import certs, clouds, transport

    auth = params.get("auth_method") or "certificate"
    needed = {"certificate": ("tenant_id", "application_id"), "workload_identity": ("tenant_id", "application_id"),
              "managed_identity": ("tenant_id",)}[auth]
    if auth == "certificate" and not params.get("certificate_content"):
        needed += ("certificate_path",)
    missing = [o for o in needed if not params.get(o)]
    if missing:
        raise ConfigError("An %s connection needs %s." % (params.get("connector") or "azure_ad", ", ".join(missing)),
                          option=missing[0])
    tenant_id = validate_tenant(params["tenant_id"])
    application_id = validate_guid(params["application_id"], "application_id") if params.get("application_id") \
        else None
    environment = params.get("tenant_environment") or "azure_global"
    # URL overrides and tenant environment: same validation the client applies.
    clouds.resolve_endpoints(environment, tenant_id, params.get("authority_host"), params.get("graph_endpoint"),
                             params.get("exchange_endpoint"))
    ca_path = transport.check_ca_path(params.get("ca_path")) if params.get("ca_path") else None
    ownership = params.get("ownership_attribute")
    if ownership and not _OWNERSHIP_RE.match(ownership):
        raise ConfigError("ownership_attribute '%s' is not a directory extension name (extension_<appId without dashes>"
                          "_<name>, as idsync.entra.app_registration's directory_extensions returns it)." % ownership,
                          option="ownership_attribute")
    common = {
        "tenant_id": tenant_id, "application_id": application_id, "tenant_environment": environment,
        "authority_host": (params.get("authority_host") or "").rstrip("/") or None,
        "graph_endpoint": (params.get("graph_endpoint") or "").rstrip("/") or None,
        "exchange_endpoint": (params.get("exchange_endpoint") or "").rstrip("/") or None,
        "ca_path": ca_path, "ownership_attribute": ownership or None,
    }
    if auth != "certificate":
        # No secret, no key: the token comes from the platform (a federated token file) or the host's identity.
        settings = dict(common, auth=auth, client_assertion_file=_abspath(params.get("client_assertion_file")))
        return dict((k, v) for k, v in settings.items() if v is not None)
    if params.get("certificate_content"):
        return _certificate_content_settings(params, common)

    wanted = params.get("certificate_thumbprint")
    if wanted:
        try:
            wanted = certs.normalize_thumbprint(wanted)
        except ValueError as exc:
            raise ConfigError("certificate_thumbprint: %s (as the Azure portal shows it under Certificates & secrets)."
                              % exc, option="certificate_thumbprint", details={"value": str(params.get("certificate_thumbprint"))})

    cert_path = _abspath(params["certificate_path"])
    key_path = _abspath(params.get("private_key_path"))
    if not os.path.exists(cert_path):
        raise ConfigError("certificate_path '%s' does not exist." % cert_path, option="certificate_path")
    if key_path and not os.path.exists(key_path):
        raise ConfigError("private_key_path '%s' does not exist." % key_path, option="private_key_path")
    passphrase = params.get("private_key_passphrase")
    # Checked before the key is read, so a world-readable key is reported whatever else is wrong with it.
    if key_path:
        certs.check_key_file_permissions(key_path)
    info = certs.load_certificate(cert_path, key_path, passphrase)
    if info.private_key is None:
        raise ConfigError("'%s' holds no private key: pass private_key_path, or a PEM file holding both the key and "
                          "the certificate." % cert_path, option="private_key_path")
    certs.check_key_file_permissions(info.key_path)
    if wanted:
        actual = info.thumbprint_sha256 if len(wanted) == 64 else info.thumbprint_sha1
        if wanted != actual:
            raise ConfigError(
                "Certificate thumbprint %s does not match the certificate at %s (its thumbprint is %s)."
                % (wanted, cert_path, actual),
                option="certificate_thumbprint", details={"expected": wanted, "actual": actual})
    key_type = type(info.private_key).__name__
    if "RSA" not in key_type.upper():
        raise ConfigError(
            "The key of the certificate at %s is not an RSA key (%s): Microsoft Entra ID certificate credentials are "
            "signed with RSA, create the certificate with key_type rsa." % (cert_path, key_type), option="certificate_path")
    certs.check_validity(info, path=cert_path)

    settings = {
        "auth": "certificate",
        "tenant_id": tenant_id,
        "application_id": application_id,
        "certificate_thumbprint": info.thumbprint_sha1,
        "certificate_path": cert_path,
        "private_key_path": key_path,
        "tenant_environment": environment,
        "authority_host": (params.get("authority_host") or "").rstrip("/") or None,
        "graph_endpoint": (params.get("graph_endpoint") or "").rstrip("/") or None,
        "exchange_endpoint": (params.get("exchange_endpoint") or "").rstrip("/") or None,
        "ca_path": ca_path,
        "ownership_attribute": ownership or None,
    }
    return dict((k, v) for k, v in settings.items() if v is not None)


def _certificate_content_settings(params, common):
    """A certificate given as content (an AWX credential): validated here, never stored; the record keeps its
    thumbprint, and each run takes the content from the environment (IDSYNC_CLIENT_CERTIFICATE) or the task."""
    from ansible_collections.idsync.entra.plugins.module_utils import certs
    if params.get("certificate_path"):
        raise ConfigError("certificate_path and certificate_content are mutually exclusive.", option="certificate_content")
    info = certs.load_certificate_content(params["certificate_content"], params.get("private_key_content"),
                                          params.get("private_key_passphrase"))
    if info.private_key is None:
        raise ConfigError("certificate_content holds no private key: pass private_key_content.",
                          option="private_key_content")
    certs.check_validity(info, path="certificate_content")
    wanted = params.get("certificate_thumbprint")
    if wanted and certs.normalize_thumbprint(wanted) not in (info.thumbprint_sha1, info.thumbprint_sha256):
        raise ConfigError("Certificate thumbprint %s does not match certificate_content (its thumbprint is %s)."
                          % (certs.normalize_thumbprint(wanted), info.thumbprint_sha1), option="certificate_thumbprint")
    settings = dict(common, auth="certificate", certificate_thumbprint=info.thumbprint_sha1)
    return dict((k, v) for k, v in settings.items() if v is not None)


def _validate_csv(params):
    path = params.get("path")
    if not path:
        raise ConfigError("A csv connection needs path (the CSV file).", option="path")
    delimiter = params.get("delimiter")
    delimiter = "," if delimiter is None else delimiter
    if delimiter == "\\t":
        delimiter = "\t"
    if len(delimiter) != 1 or delimiter in ('"', "\r", "\n"):
        raise ConfigError("delimiter '%s' must be a single character other than a quote or a line break." % delimiter,
                          option="delimiter")
    encoding = params.get("encoding") or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError("encoding '%s' is not a known text encoding." % encoding, option="encoding")
    key = params.get("key")
    if key is not None:
        if isinstance(key, str):
            key = [key]
        key = [str(k) for k in key]
        if not key or any(not k.strip() for k in key):
            raise ConfigError("key must list one or more column names.", option="key")
    separator = params.get("multi_value_separator")
    separator = ";" if separator is None else separator
    if not separator:
        raise ConfigError("multi_value_separator must not be empty.", option="multi_value_separator")
    if separator == delimiter:
        raise ConfigError("multi_value_separator must differ from delimiter ('%s')." % delimiter,
                          option="multi_value_separator")
    max_field_length = params.get("max_field_length")
    if max_field_length is not None and (isinstance(max_field_length, bool) or not isinstance(max_field_length, int)
                                         or max_field_length < 1):
        raise ConfigError("max_field_length must be a positive number of characters.", option="max_field_length")
    settings = {
        "path": _abspath(path),
        "delimiter": delimiter,
        "encoding": encoding,
        "key": key,
        "multi_value_separator": separator,
        "multiline": True if params.get("multiline") else None,
        # Defaults are not stored, so connections saved before these settings existed stay unchanged.
        "max_field_length": max_field_length if max_field_length != DEFAULT_MAX_FIELD_LENGTH else None,
    }
    return dict((k, v) for k, v in settings.items() if v is not None)


def _reject_foreign_options(params, connector):
    azure = AZURE_AD_SETTINGS + ("private_key_passphrase",)
    ldap = LDAP_SETTINGS + ("bind_password",)
    if connector == "azure_ad":
        foreign = CSV_SETTINGS + EXCHANGE_SETTINGS + ldap
    elif connector == "microsoft_365":
        foreign = CSV_SETTINGS + ldap
    elif connector == "csv":
        foreign = azure + EXCHANGE_SETTINGS + ldap
    else:
        foreign = CSV_SETTINGS + EXCHANGE_SETTINGS + tuple(o for o in azure if o != "ca_path")
    # Options with a default only count when set to something else.
    defaults = {"delimiter": ",", "encoding": "utf-8", "multi_value_separator": ";", "tenant_environment": "azure_global",
                "multiline": False, "max_field_length": DEFAULT_MAX_FIELD_LENGTH,
                "tls": "ldaps", "validate_certs": True, "create_ous": False, "page_size": 500, "timeout": 10}
    given = [o for o in foreign if params.get(o) not in (None, [], defaults.get(o, object()))]
    if given:
        raise ConfigError("%s do%s not apply to a %s connection." % (", ".join(given), "es" if len(given) == 1 else "",
                                                                     connector), option=given[0])


def build_settings(params):
    """Validate a connection module's params; return the settings dict the store keeps."""
    connector = params.get("connector")
    if connector in CONNECTORS:
        _reject_foreign_options(params, connector)
    if connector in ENTRA_CONNECTORS:
        settings = _validate_azure_ad(params)
    elif connector == "csv":
        settings = _validate_csv(params)
    elif connector in LDAP_CONNECTORS:
        from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.settings import validate_settings
        settings = validate_settings(params, connector)
    else:
        raise ConfigError("connector must be one of %s, got '%s'." % (", ".join(CONNECTORS), connector), option="connector")
    forbidden = find_forbidden_keys(settings)
    if forbidden:  # pragma: no cover - defence in depth, the validators never produce these
        raise ConfigError("Refusing to store secrets in a connection (%s)." % ", ".join(forbidden))
    return settings


# -- Graph client of a record: connection_auth.py (re-exported here) ----------------------------------------------

# -- Test connection ----------------------------------------------------------------------------------------------

def _empty_result():
    return {"ok": False, "organization": None, "granted_permissions": [], "missing_permissions": [], "error": None}


def _claims(client):
    claims = client.token_claims  # a property of GraphClient (acquires the token)
    if callable(claims):  # pragma: no cover - tolerate a method
        claims = claims()
    return claims or {}


def test_connection(client, required_permissions, expected_tenant_id=None):
    """Token + ``GET /organization`` + the granted ``roles`` claim covers ``required_permissions``.

    Returns ``{ok, organization, granted_permissions, missing_permissions, error}``; never raises for a failed
    test (``error`` says what failed, naming each missing permission).
    """
    result = _empty_result()
    required = list(required_permissions or [])
    try:
        claims = _claims(client)
    except IdsyncError as exc:
        result["error"] = "Sign-in failed: %s" % exc.msg
        result["error_details"] = exc.to_result()
        return result
    granted = sorted(set(claims.get("roles") or []))
    result["granted_permissions"] = granted
    result["missing_permissions"] = missing_permissions(required, granted)
    problems = []
    if result["missing_permissions"]:
        problems.append(
            "the application lacks the Microsoft Graph application permission%s %s (granted: %s): add %s under API "
            "permissions and grant admin consent" % (
                "s" if len(result["missing_permissions"]) > 1 else "",
                ", ".join(result["missing_permissions"]),
                ", ".join(granted) or "none",
                "them" if len(result["missing_permissions"]) > 1 else "it",
            ))
    try:
        body = client.get("/organization")
        orgs = body.get("value") if isinstance(body, dict) else None
        org = (orgs or [None])[0] if orgs is not None else body
        if org:
            result["organization"] = {
                "id": org.get("id"),
                "display_name": org.get("displayName"),
                "default_domain": next((d.get("name") for d in org.get("verifiedDomains") or [] if d.get("isDefault")), None),
                "verified_domains": sorted(d.get("name") for d in org.get("verifiedDomains") or [] if d.get("name")),
            }
        else:
            problems.append("GET /organization returned no organization")
    except IdsyncError as exc:
        # Without consent the read is refused too; the missing permission alone says what to do.
        if not (result["missing_permissions"] and getattr(exc, "status", None) == 403):
            problems.append("GET /organization failed: %s" % exc.msg.rstrip("."))
        result["error_details"] = exc.to_result()
    tid = claims.get("tid")
    org = result["organization"] or {}
    if expected_tenant_id and _GUID_RE.match(str(expected_tenant_id)):
        org_id = org.get("id") or tid
        if org_id and org_id.lower() != str(expected_tenant_id).lower():
            problems.append("the token is for tenant %s, not the configured tenant %s" % (org_id, expected_tenant_id))
    elif expected_tenant_id and org.get("verified_domains") is not None:
        if str(expected_tenant_id).lower() not in [d.lower() for d in org["verified_domains"]]:
            problems.append("the token is for tenant %s, whose verified domains do not include %s"
                            % (org.get("id") or tid, expected_tenant_id))
    return probe_verdict(result, problems)


def test_csv(settings, name="csv"):
    """'Test connection' of a csv connection: the file exists and is read as a sync reads it (header, key columns,
    rows, rejected rows with their line numbers)."""
    from ansible_collections.idsync.entra.plugins.module_utils.connectors.csv import CsvConnector, CsvFileError
    result = {"ok": False, "columns": [], "rows": None, "rejected": [], "error": None}
    path = settings.get("path")
    if not path or not os.path.isfile(path):
        result["error"] = "The CSV file %s does not exist." % path
        return result
    connector = CsvConnector({"name": name, "connector": "csv", "settings": settings},
                             {"side": "source"})
    try:
        read = connector.read("row", ())
    except (CsvFileError, ConfigError) as exc:
        result["error"] = exc.msg
        return result
    result["columns"] = list(connector.header or [])
    result["rows"] = len(read.objects)
    result["rejected"] = [{"row": r["object"], "error": r["error"]} for r in read.rejected[:20]]
    result["ok"] = True
    return result


def test_record(record, required_permissions=None, overrides=None):
    """Test a connection record of any connector; never raises for a failed test."""
    connector = record.get("connector")
    if connector == "csv":
        return test_csv(record.get("settings") or {}, record.get("name") or "csv")
    if connector == "microsoft_365":
        from ansible_collections.idsync.entra.plugins.module_utils.exchange_probe import test_exchange
        return test_exchange(record, required_permissions, overrides)
    if connector in LDAP_CONNECTORS:
        from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.probe import test_ldap
        return test_ldap(record, (overrides or {}).get("bind_password"))
    if required_permissions is None:
        required_permissions = DEFAULT_REQUIRED_PERMISSIONS.get(connector, [])
    try:
        client = graph_client_for(record, overrides)
    except IdsyncError as exc:
        result = _empty_result()
        result["error"] = exc.msg
        result["error_details"] = exc.to_result()
        return result
    try:
        return test_connection(client, required_permissions, (record.get("settings") or {}).get("tenant_id"))
    finally:
        close = getattr(getattr(client, "session", None), "close", None)
        if callable(close):
            close()


# -- the modules' logic -------------------------------------------------------------------------------------------

def _view(record):
    if not record:
        return {}
    return {"name": record["name"], "connector": record["connector"], "settings": redact_settings(record.get("settings") or {})}


def ensure_connection(params, check_mode=False):
    """``idsync.entra.connection``: returns the module result; raises ConfigError / ConnectionTestFailed."""
    name = params["name"]
    state = params.get("state") or "present"
    connector = params.get("connector")
    settings = None
    if state != "absent":
        # Validate before the store is even opened: bad input never creates or touches it.
        if not connector:
            raise ConfigError("connector is required when state is present.", option="connector")
        settings = build_settings(params)
    store = open_store(params.get("store"), check_mode)
    try:
        existing = store.get_connection(name) if store else None
        if state == "absent":
            changed = existing is not None
            if changed and not check_mode:
                store.delete_connection(name)
            return {
                "changed": changed,
                "connection": None,
                "diff": {"before": _view(existing), "after": {}},
                "msg": ("connection %s %s" % (name, "would be removed" if check_mode else "removed")) if changed
                else "connection %s does not exist" % name,
            }

        desired = {"name": name, "connector": connector, "settings": settings}
        changed = existing is None or existing["connector"] != connector or existing["settings"] != settings

        result = {"changed": changed}
        if params.get("test"):
            required = params.get("required_permissions")
            overrides = dict((k, params.get(k)) for k in ("private_key_passphrase", "certificate_content",
                                                          "private_key_content", "bind_password"))
            test = test_record(desired, required, overrides)
            result["test"] = test
            if not test["ok"]:
                where = "; the saved connection was left unchanged" if existing else "; nothing was saved"
                raise ConnectionTestFailed("Test connection of %s failed: %s%s." % (name, (test["error"] or "").rstrip("."), where),
                                           test)

        if changed and not check_mode:
            store.put_connection(name, connector, settings)
        saved = store.get_connection(name) if (store and not check_mode) else None
        if saved is None:
            saved = dict(desired, created=(existing or {}).get("created"), updated=(existing or {}).get("updated"))
        result["connection"] = public_record(saved)
        result["diff"] = {"before": _view(existing), "after": _view(desired)}
        if changed:
            verb = "created" if existing is None else "updated"
            if existing and (existing.get("settings") or {}).get("auth") == "client_secret":
                verb = "updated (authentication data switched from client secret to certificate)"
            result["msg"] = "connection %s %s%s" % (name, "would be " if check_mode else "", verb)
        else:
            result["msg"] = "connection %s is up to date" % name
        return result
    finally:
        if store:
            store.close()


def connection_info(params):
    """``idsync.entra.connection_info``: list connections (or one), optionally testing each."""
    location = resolve_location(params.get("store"))
    path = display_location(location)
    if not store_exists(location):
        return {"changed": False, "connections": [], "store": path}
    with Store(location) as store:
        if params.get("name"):
            record = store.get_connection(params["name"])
            records = [record] if record else []
        else:
            records = store.list_connections()
    connections = []
    for record in records:
        item = public_record(record)
        if params.get("test"):
            item["test"] = test_record(record, params.get("required_permissions"))
        connections.append(item)
    return {"changed": False, "connections": connections, "store": path}
