"""Values Graph refuses on POST/PATCH of /users and /groups, with the error bodies Graph gives for them.

Maximum lengths: Microsoft Learn "user resource type" (https://learn.microsoft.com/graph/api/resources/user) and
"group resource type" (https://learn.microsoft.com/graph/api/resources/group), "Maximum length is N characters".
Learn documents no maximum for employeeType, preferredLanguage or a group's description: none is enforced here.
officeLocation's 128 is in Graph's v1.0 metadata descriptions (msgraph-typescript-typings: "The office location in
the user's place of business. Maximum length is 128 characters.").

Error body for a refused value (observed, microsoftgraph/microsoft-graph-docs#5777):
  400 {"code": "Request_BadRequest", "message": "Invalid value specified for property 'mailNickname' of resource
  'User'.", "details": [{"code": "InvalidValue", "target": "mailNickname"}]}
A malformed userPrincipalName is "Property userPrincipalName is invalid." (the text Azure SDK for Java's
ActiveDirectoryUserImpl tests for; a public capture of the body shows details code "InvalidCharacter" for a bad
character). A UPN whose domain is not a verified domain of the tenant: "The domain portion of the userPrincipalName
property is invalid. You must use one of the verified domain names in your organization." (REFERENCE.md; no details).
"""
import re

from graph_errors import bad_request

MAX_LENGTHS = {
    "User": {
        "displayName": 256, "givenName": 64, "surname": 64, "jobTitle": 128, "department": 64, "companyName": 64,
        "employeeId": 16, "mailNickname": 64, "city": 128, "country": 128, "state": 128, "officeLocation": 128,
        "postalCode": 40, "streetAddress": 1024, "mobilePhone": 64,
    },
    "Group": {"displayName": 256, "mailNickname": 64},
}

# Learn (group resource, Create group): mailNickname "can contain only characters in the ASCII character set 0 - 127
# except the following: @ () \ [] " ; : <> , SPACE". The emulator refuses every whitespace character, not only SPACE.
MAIL_NICKNAME_FORBIDDEN = re.compile(r"[@()\\\[\]\";:<>,\s]")

# Learn "Password policies and account restrictions in Microsoft Entra ID", "Username policies"
# (https://learn.microsoft.com/entra/identity/authentication/concept-sspr-policy#username-policies): characters
# A-Z a-z 0-9 ' . - _ ! # ^ ~; no "@" except the one before the domain; no "." immediately before the "@"; at most
# 64 characters before the "@", 48 after it, 113 in total. A leading "." or ".." in the alias is refused as well
# (RFC 5322 dot-atom, which Learn's user page cites as the UPN's model via RFC 822).
UPN_ALIAS_CHARACTERS = re.compile(r"^[A-Za-z0-9'.\-_!#^~]+$")
UPN_MAX_ALIAS, UPN_MAX_DOMAIN, UPN_MAX_TOTAL = 64, 48, 113

# ISO 3166-1 alpha-2 codes (officially assigned, 249). Learn (user resource): usageLocation is "A two-letter country
# code (ISO standard 3166)". Matched without regard to case (uncertain: Entra may store the case given).
ISO_3166_ALPHA2 = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT
MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())


def refused_value(prop: str, resource: str):
    """Graph's body for a value it refuses (microsoftgraph/microsoft-graph-docs#5777)."""
    return bad_request(f"Invalid value specified for property '{prop}' of resource '{resource}'.",
                       details=[{"code": "InvalidValue", "target": prop}])


def check_lengths_and_formats(resource: str, values: dict) -> None:
    """Maximum lengths, mailNickname characters and (users) usageLocation of the properties being written."""
    for prop, maximum in MAX_LENGTHS[resource].items():
        value = values.get(prop)
        if isinstance(value, str) and len(value) > maximum:
            raise refused_value(prop, resource)
    if "mailNickname" in values:
        check_mail_nickname(values["mailNickname"], resource)
    if resource == "User" and values.get("usageLocation") is not None:
        if str(values["usageLocation"]).upper() not in ISO_3166_ALPHA2:
            raise refused_value("usageLocation", resource)


def check_mail_nickname(value, resource: str) -> None:
    if not value or len(value) > MAX_LENGTHS[resource]["mailNickname"] or not value.isascii() \
            or MAIL_NICKNAME_FORBIDDEN.search(value):
        raise refused_value("mailNickname", resource)


def check_user_principal_name(directory, upn) -> None:
    """Format first (alias characters and lengths), then the domain: one of the tenant's verified domains."""
    alias, at, domain = (upn or "").rpartition("@")
    if not at or not alias or not domain:
        raise invalid_upn("InvalidValue")
    if not UPN_ALIAS_CHARACTERS.match(alias):  # also catches a second "@"
        raise invalid_upn("InvalidCharacter")
    if (len(alias) > UPN_MAX_ALIAS or len(domain) > UPN_MAX_DOMAIN or len(upn) > UPN_MAX_TOTAL
            or alias.startswith(".") or alias.endswith(".") or ".." in alias):
        raise invalid_upn("InvalidValue")
    if not directory.is_verified_domain(domain):
        raise bad_request("The domain portion of the userPrincipalName property is invalid. You must use one of the "
                          "verified domain names in your organization.")


def invalid_upn(code: str):
    message = "Property userPrincipalName is invalid."
    return bad_request(message, details=[{"code": code, "message": message, "target": "userPrincipalName"}])
