# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

""""Test connection" of a ``microsoft_365`` connection: a token for Exchange Online, its ``Exchange.ManageAsApp``
application permission, and one cheap cmdlet (``Get-AcceptedDomain``) that Exchange only runs for an application
whose service principal holds a supported Microsoft Entra role (Exchange Administrator, Exchange Recipient
Administrator...: Learn "App-only authentication in Exchange Online PowerShell", step 5).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError, probe_verdict

EXCHANGE_API = "Office 365 Exchange Online"
EXCHANGE_ROLES = ("Exchange Recipient Administrator", "Exchange Administrator")
PROBE_CMDLET = "Get-AcceptedDomain"


def _result():
    return {"ok": False, "organization": None, "granted_permissions": [], "missing_permissions": [],
            "missing_roles": [], "error": None}


def _role_problem(exc):
    """The sentence for an Exchange answer that means the application has no (suitable) Exchange role."""
    text = (getattr(exc, "text", None) or exc.msg or "").lower()
    if getattr(exc, "status", None) not in (401, 403):
        return None
    if "role" in text:
        # "The role assigned to application ... isn't supported in this scenario" (the ExchangeOnlineManagement
        # module's words, Microsoft365DSC#4530) / "... isn't assigned to any management roles".
        return ("the application's service principal holds no Microsoft Entra role Exchange Online accepts: assign it "
                "%s (or %s)" % EXCHANGE_ROLES)
    if "not allowed to call" in text:
        # "User is not allowed to call Get-Mailbox" (MicrosoftDocs/office-docs-powershell#7970).
        return ("the Exchange Online role of the application does not allow %s: assign it %s (or %s)"
                % ((getattr(exc, "cmdlet", None) or PROBE_CMDLET,) + tuple(EXCHANGE_ROLES)))
    return None


def test_exchange(record, required_permissions=None, overrides=None, client=None):
    """Test a microsoft_365 connection record; never raises for a failed test. ``missing_permissions`` names the
    Exchange Online application permissions the token lacks, ``missing_roles`` the directory role to assign."""
    from ansible_collections.idsync.entra.plugins.module_utils.connections import missing_permissions
    from ansible_collections.idsync.entra.plugins.module_utils.exchange import exchange_client_for

    result = _result()
    required = list(required_permissions if required_permissions is not None else ["Exchange.ManageAsApp"])
    try:
        client = client or exchange_client_for(record, overrides)
        result["exchange_endpoint"] = client.base_url
        claims = client.credential.claims or {}
    except IdsyncError as exc:
        result["error"] = "Sign-in failed: %s" % exc.msg
        result["error_details"] = exc.to_result()
        return result
    try:
        granted = sorted(set(claims.get("roles") or []))
        result["granted_permissions"] = granted
        result["missing_permissions"] = missing_permissions(required, granted)
        problems = []
        if result["missing_permissions"]:
            problems.append("the application lacks the %s application permission%s %s (granted: %s): add %s under API "
                            "permissions and grant admin consent" % (
                                EXCHANGE_API, "s" if len(result["missing_permissions"]) > 1 else "",
                                ", ".join(result["missing_permissions"]), ", ".join(granted) or "none",
                                "them" if len(result["missing_permissions"]) > 1 else "it"))
        try:
            domains = client.invoke(PROBE_CMDLET, {})
            default = next((d for d in domains if d.get("Default")), domains[0] if domains else {})
            result["organization"] = {"id": claims.get("tid"), "default_domain": default.get("DomainName"),
                                      "accepted_domains": [d.get("DomainName") for d in domains]}
        except IdsyncError as exc:
            role = _role_problem(exc)
            if role:
                result["missing_roles"] = [EXCHANGE_ROLES[0]]
                problems.append(role)
            elif not result["missing_permissions"]:
                problems.append("%s failed: %s" % (PROBE_CMDLET, exc.msg.rstrip(".")))
            result["error_details"] = exc.to_result()
        return probe_verdict(result, problems)
    finally:
        close = getattr(getattr(client, "session", None), "close", None)
        if callable(close):
            close()
