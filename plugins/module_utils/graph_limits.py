# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Microsoft Graph's documented limits on the user and group attributes the azure_ad connector writes, checked at
plan time so a value Graph would refuse fails its object in the plan (check mode shows it) instead of at apply.

Sources (each limit below is one of theirs):
- user resource type, https://learn.microsoft.com/graph/api/resources/user (maximum lengths; usageLocation "a
  two-letter country code (ISO standard 3166)");
- group resource type, https://learn.microsoft.com/graph/api/resources/group (displayName 256; mailNickname 64,
  "only characters in the ASCII character set 0 - 127 except the following: @ () \\ [] " ; : <> , SPACE");
- user name policies, https://learn.microsoft.com/entra/identity/authentication/concept-sspr-policy#username-policies
  (userPrincipalName: at most 113 characters, 64 before the "@" and 48 after; characters A-Z a-z 0-9 ' . - _ ! # ^ ~;
  no "." right before the "@"); the domain must be one of the tenant's verified domains (user resource type).

The tenant emulator enforces the same limits with Graph's error bodies; tests/conformance/test_graph_limits.py walks
this table against it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

USER_PAGE = "learn.microsoft.com/graph/api/resources/user"
GROUP_PAGE = "learn.microsoft.com/graph/api/resources/group"
UPN_PAGE = "learn.microsoft.com/entra/identity/authentication/concept-sspr-policy#username-policies"

MAX_LENGTH = {
    "user": {
        "displayName": 256, "givenName": 64, "surname": 64, "jobTitle": 128, "department": 64, "companyName": 64,
        "employeeId": 16, "mailNickname": 64, "city": 128, "country": 128, "state": 128, "officeLocation": 128,
        "postalCode": 40, "streetAddress": 1024, "mobilePhone": 64, "userPrincipalName": 113,
    },
    "group": {"displayName": 256, "mailNickname": 64},
}
UPN_LOCAL_MAX = 64
UPN_DOMAIN_MAX = 48

_NICKNAME_FORBIDDEN = set('@()\\[]";:<>, ')
_UPN_LOCAL_RE = re.compile(r"^[A-Za-z0-9'._!#^~-]+$")

# ISO 3166-1 alpha-2 (officially assigned codes).
ISO_3166_ALPHA2 = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC
CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD
GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH
KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW
MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC
SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY
UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())


def check(object_type, attribute, value, verified_domains=None):
    """A phrase saying why Graph would refuse ``value`` for ``attribute`` ("is 70 characters long; Microsoft Graph
    allows at most 64 (learn.microsoft.com/...)"), or None. ``verified_domains``: lower-case names, None to skip."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (list, tuple)):
        return next((p for p in (check(object_type, attribute, v, verified_domains) for v in value) if p), None)
    text = str(value)
    limit = MAX_LENGTH.get(object_type, {}).get(attribute)
    if limit is not None and len(text) > limit:
        return "is %d characters long; Microsoft Graph allows at most %d (%s)" % (
            len(text), limit, GROUP_PAGE if object_type == "group" else USER_PAGE)
    if attribute == "mailNickname":
        return _nickname_problem(text, GROUP_PAGE if object_type == "group" else USER_PAGE)
    if object_type == "user" and attribute == "userPrincipalName":
        return _upn_problem(text, verified_domains)
    if object_type == "user" and attribute == "usageLocation" and text.upper() not in ISO_3166_ALPHA2:
        return "'%s' is not a two-letter ISO 3166 country code (%s)" % (text, USER_PAGE)
    return None


def _nickname_problem(text, page):
    bad = next((c for c in text if ord(c) > 127 or c in _NICKNAME_FORBIDDEN), None)
    if bad is not None:
        what = "a space" if bad == " " else ("'%s'" % bad)
        return "'%s' holds %s; a mail nickname takes ASCII characters but @ ( ) \\ [ ] \" ; : < > , and space (%s)" % (
            text, what, page)
    return None


def _upn_problem(text, verified_domains):
    if text.count("@") != 1:
        return "'%s' is not alias@domain (%s)" % (text, UPN_PAGE)
    local, domain = text.split("@")
    if not local or len(local) > UPN_LOCAL_MAX:
        return "'%s' has %d characters before the @; Microsoft Entra allows 1 to %d (%s)" % (
            text, len(local), UPN_LOCAL_MAX, UPN_PAGE)
    if len(domain) > UPN_DOMAIN_MAX:
        return "'%s' has %d characters after the @; Microsoft Entra allows at most %d (%s)" % (
            text, len(domain), UPN_DOMAIN_MAX, UPN_PAGE)
    if not _UPN_LOCAL_RE.match(local):
        bad = next(c for c in local if not _UPN_LOCAL_RE.match(c))
        return "'%s' holds '%s' before the @; allowed are A-Z a-z 0-9 ' . - _ ! # ^ ~ (%s)" % (text, bad, UPN_PAGE)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "'%s' has a dot at the start or end of the alias, or two in a row (%s)" % (text, UPN_PAGE)
    if verified_domains is not None and domain.lower() not in verified_domains:
        return "'%s': %s is not a verified domain of the tenant (verified: %s)" % (
            text, domain, ", ".join(sorted(verified_domains)) or "none")
    return None
