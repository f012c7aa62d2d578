# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""'Test connection' of an active_directory / ldap connection: connect (TLS), bind, read the rootDSE, and check
that the base DN and every configured search base exist. Never raises for a failed test; ``error`` is one
sentence naming what is wrong."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.names import canonical_dn
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.session import LdapSession
from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError

ROOT_DSE_ATTRIBUTES = ["namingContexts", "defaultNamingContext", "dnsHostName", "vendorName", "vendorVersion",
                       "supportedLDAPVersion", "supportedControl", "dsServiceName", "highestCommittedUSN"]


def test_ldap(record, password):
    settings = record.get("settings") or {}
    result = {"ok": False, "server": None, "vendor": None, "naming_contexts": [], "error": None}
    session = LdapSession(settings["servers"], settings["bind_dn"], password, tls=settings.get("tls", "ldaps"),
                          ca_path=settings.get("ca_path"), validate_certs=settings.get("validate_certs", True),
                          timeout=settings.get("timeout", 10), label=record.get("name"))
    try:
        session.open()
        result["server"] = session.server_uri
        dse = session.root_dse(ROOT_DSE_ATTRIBUTES)
        result["naming_contexts"] = dse.get("namingContexts", [])
        result["vendor"] = (dse.get("vendorName") or [None])[0] or (
            "Active Directory" if dse.get("dsServiceName") else None)
        result["dns_host_name"] = (dse.get("dnsHostName") or [None])[0]
        if record.get("connector") == "active_directory" and not dse.get("dsServiceName"):
            result["error"] = ("%s answers but is not an Active Directory domain controller (no dsServiceName in "
                               "its rootDSE); use connector: ldap" % session.server_uri)
            return result
        bases = [("base_dn", settings["base_dn"])]
        for object_type, spec in sorted((settings.get("search") or {}).items()):
            if spec.get("base"):
                bases.append(("search.%s.base" % object_type, spec["base"]))
        for option, base in bases:
            found, _raw = session.read_entry(base, ["1.1"])
            if found is None:
                known = ", ".join(result["naming_contexts"]) or "none"
                inside = any(canonical_dn(base).endswith(canonical_dn(c)) for c in result["naming_contexts"] if c)
                result["error"] = ("The %s %s does not exist on %s%s" % (
                    option, base, session.server_uri,
                    "" if inside else " (its naming contexts are %s)" % known))
                return result
        result["ok"] = True
        return result
    except IdsyncError as exc:
        result["error"] = exc.msg
        return result
    finally:
        session.close()
