"""Records of the emulated directory as Graph returns them: factories for new users, groups, applications,
service principals and domains, and the small helpers (timestamps, stable ids) they share. Pure functions."""
import base64
import hashlib
import uuid
from datetime import datetime, timezone

from graph_catalog import MICROSOFT_TENANT_ID, ROLE_TEMPLATES

TENANT_EPOCH = "2024-01-01T00:00:00Z"   # createdDateTime of objects every tenant starts with

def iso_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stable_id(tenant_id, name):
    """A GUID that is the same for the same tenant and name, so restarts and resets keep ids."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"idsync-emulator:{tenant_id}:{name}"))


def guid_bytes(value):
    return uuid.UUID(value).bytes_le


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_user_record(object_id, values, created=None):
    """Learn "user resource type", mail: "Changes to this property update the user's proxyAddresses collection to
    include the value as an SMTP address"; a user created with a mail gets it as its primary SMTP: address."""
    record = {"id": object_id, "createdDateTime": created or iso_now(), "deletedDateTime": None,
              "userType": "Member", "creationType": None}
    record.update(values)
    if record.get("mail") and not record.get("proxyAddresses"):
        record["proxyAddresses"] = [f"SMTP:{record['mail']}"]
    return record


def smtp_addresses(record):
    """The lower-case SMTP addresses an object holds: its mail and its smtp: proxy addresses (Learn, Entra Connect
    "duplicate attribute resiliency": SMTP proxy addresses are unique across users, groups and contacts)."""
    addresses = {address.lower() for prefix, _, address in (p.partition(":") for p in record.get("proxyAddresses") or [])
                 if prefix.lower() == "smtp" and address}
    if record.get("mail"):
        addresses.add(record["mail"].lower())
    return addresses


def new_domain_record(name, verified, default, initial, authentication_type="Managed"):
    """Learn "domain resource type" (https://learn.microsoft.com/graph/api/resources/domain)."""
    return {"id": name, "authenticationType": authentication_type, "availabilityStatus": None,
            "isAdminManaged": True, "isDefault": default, "isInitial": initial, "isRoot": verified,
            "isVerified": verified, "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 90,
            "supportedServices": ["Email", "OfficeCommunicationsOnline"] if verified else [], "state": None}


def new_group_record(object_id, values, domain, created=None):
    """Learn: "Create group": mail is derived from mailNickname for mail-enabled groups, and securityIdentifier
    and proxyAddresses are assigned by the service."""
    record = {"id": object_id, "createdDateTime": created or iso_now(), "deletedDateTime": None,
              "renewedDateTime": created or iso_now(), "groupTypes": [], "visibility": None,
              "securityIdentifier": _security_identifier(object_id)}
    record.update(values)
    if record.get("mailEnabled"):
        record["mail"] = f"{record['mailNickname']}@{domain}"
        record["proxyAddresses"] = [f"SMTP:{record['mail']}"]
    if "Unified" in record.get("groupTypes", []) and not record.get("visibility"):
        record["visibility"] = "Public"
    return record


def new_application_record(object_id, app_id, display_name, domain, created=None):
    """Learn: "Create application": signInAudience defaults to AzureADMyOrg; publisherDomain is the tenant's."""
    return {
        "id": object_id, "appId": app_id, "createdDateTime": created or iso_now(), "deletedDateTime": None,
        "displayName": display_name, "publisherDomain": domain, "signInAudience": "AzureADMyOrg",
        "identifierUris": [], "tags": [], "keyCredentials": [], "passwordCredentials": [], "appRoles": [],
        "requiredResourceAccess": [], "addIns": [],
        "api": {"acceptMappedClaims": None, "knownClientApplications": [], "requestedAccessTokenVersion": None,
                "oauth2PermissionScopes": [], "preAuthorizedApplications": []},
        "info": {"logoUrl": None, "marketingUrl": None, "privacyStatementUrl": None, "supportUrl": None,
                 "termsOfServiceUrl": None},
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "publicClient": {"redirectUris": []},
        "web": {"homePageUrl": None, "logoutUrl": None, "redirectUris": [],
                "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False}},
        "spa": {"redirectUris": []},
    }


def new_service_principal_record(object_id, app, tenant_id):
    """Learn: "Create servicePrincipal": the new object copies the application's name, roles and scopes."""
    return {
        "id": object_id, "deletedDateTime": None, "accountEnabled": True, "appId": app["appId"],
        "appDisplayName": app.get("displayName"), "displayName": app.get("displayName"),
        "appOwnerOrganizationId": tenant_id, "appRoleAssignmentRequired": False,
        "servicePrincipalType": "Application", "signInAudience": app.get("signInAudience"),
        "servicePrincipalNames": [app["appId"], *app.get("identifierUris", [])],
        "appRoles": [dict(r) for r in app.get("appRoles") or []],
        "oauth2PermissionScopes": [dict(s) for s in (app.get("api") or {}).get("oauth2PermissionScopes") or []],
        "alternativeNames": [], "keyCredentials": [], "passwordCredentials": [], "replyUrls": [], "tags": [],
        "notificationEmailAddresses": [], "addIns": [], "resourceSpecificApplicationPermissions": [],
    }


def first_party_service_principal(tenant_id, spec):
    roles = [{"allowedMemberTypes": ["Application"], "description": description, "displayName": display_name,
              "id": role_id, "isEnabled": True, "origin": "Application", "value": value}
             for value, role_id, display_name, description in spec["roles"]]
    scopes = [{"adminConsentDescription": None, "adminConsentDisplayName": None, "id": scope_id, "isEnabled": True,
               "type": "Admin", "userConsentDescription": None, "userConsentDisplayName": None, "value": value}
              for value, scope_id in spec["scopes"]]
    object_id = stable_id(tenant_id, "firstParty:" + spec["appId"])
    return {
        "id": object_id, "deletedDateTime": None, "accountEnabled": True, "appId": spec["appId"],
        "appDisplayName": spec["displayName"], "displayName": spec["displayName"],
        "appOwnerOrganizationId": MICROSOFT_TENANT_ID, "appRoleAssignmentRequired": False,
        "servicePrincipalType": "Application", "signInAudience": "AzureADMultipleOrgs",
        "servicePrincipalNames": list(spec["servicePrincipalNames"]), "appRoles": roles,
        "oauth2PermissionScopes": scopes, "alternativeNames": [], "keyCredentials": [], "passwordCredentials": [],
        "replyUrls": [], "tags": [], "notificationEmailAddresses": [], "addIns": [],
        "resourceSpecificApplicationPermissions": [],
    }


ROLE_TEMPLATE_BY_ID = {template_id: {"id": template_id, "deletedDateTime": None, "displayName": name,
                                     "description": description}
                       for template_id, name, description in ROLE_TEMPLATES}


def _security_identifier(object_id):
    digest = hashlib.sha1(object_id.encode()).digest()
    parts = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return "S-1-12-1-" + "-".join(str(p) for p in parts)
