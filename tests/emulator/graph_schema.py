"""Property schemas of the directory object types the emulator serves (Graph v1.0 resource types).

Each property has a kind used for body validation and for the value returned when it was never set:
  str, bool, datetime, guid -> null;  strlist, objlist -> [];  obj -> null.
"""
from dataclasses import dataclass, field

EMPTY_LIST_KINDS = {"strlist", "objlist"}


@dataclass
class EntitySchema:
    name: str                   # "user": the OData type is microsoft.graph.<name>
    resource: str               # "User": how Entra names the resource in error messages
    collection: str             # "users": the entity set, used in @odata.context
    properties: dict            # name -> kind
    read_only: set = field(default_factory=set)
    default_select: tuple = ()  # returned when no $select is given; empty means every property
    hidden: set = field(default_factory=set)   # write-only: never returned (passwordProfile)
    endswith: set = field(default_factory=set)  # properties that support endsWith (advanced queries only)
    not_filterable: set = field(default_factory=set)

    @property
    def odata_type(self):
        return f"microsoft.graph.{self.name}"

    def default_value(self, prop):
        return [] if self.properties.get(prop) in EMPTY_LIST_KINDS else None

    def find_property(self, name):
        """The property's canonical spelling: OData property names in query options match case-insensitively.
        Directory extension properties registered for this type count as properties (graph_extensions)."""
        if dict.__contains__(self.properties, name):
            return name
        lowered = name.lower()
        for prop in self.properties:
            if prop.lower() == lowered:
                return prop
        extension = registered_extension(name, self.resource)
        return extension[0] if extension else None


# Directory extension properties (extensionProperty) of the directory being served: graph_extensions keeps
# `directory.extension_index` {lower-case name: (name, kind, {target resources})}; GraphService binds the directory.
_BOUND = {"directory": None}


def bind_directory(directory):
    _BOUND["directory"] = directory


def registered_extension(name, resource):
    """(canonical name, kind) of a directory extension registered for ``resource`` ("User", "Group"), or None."""
    if not isinstance(name, str) or not name[:10].lower() == "extension_":
        return None
    index = getattr(_BOUND["directory"], "extension_index", None) or {}
    found = index.get(name.lower())
    return (found[0], found[1]) if found and resource in found[2] else None


class ExtensibleProperties(dict):
    """Declared properties, plus the directory extensions registered for the type (Learn: "Add custom data to
    resources using extensions": a directory extension behaves like a declared property once registered). They
    are never part of the default property set; they are returned when selected."""

    def __init__(self, properties, resource):
        super().__init__(properties)
        self.resource = resource

    def _extension(self, key):
        found = registered_extension(key, self.resource)
        return found if found and found[0] == key else None

    def __contains__(self, key):
        return dict.__contains__(self, key) or self._extension(key) is not None

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        found = self._extension(key)
        if found is None:
            raise KeyError(key)
        return found[1]

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


def _props(kind_to_names):
    props = {}
    for kind, names in kind_to_names.items():
        for name in names.split():
            props[name] = kind
    return props


# Learn: "user resource type" (v1.0); default set from "List users": "By default, only a limited set of properties
# are returned (businessPhones, displayName, givenName, id, jobTitle, mail, mobilePhone, officeLocation,
# preferredLanguage, surname, and userPrincipalName)".
USER = EntitySchema(
    name="user", resource="User", collection="users",
    properties=_props({
        "guid": "id",
        "bool": "accountEnabled isResourceAccount onPremisesSyncEnabled",
        "datetime": "createdDateTime deletedDateTime employeeHireDate employeeLeaveDateTime "
                    "externalUserStateChangeDateTime lastPasswordChangeDateTime onPremisesLastSyncDateTime "
                    "signInSessionsValidFromDateTime",
        "str": "ageGroup city companyName consentProvidedForMinor country creationType department displayName "
               "employeeId employeeType externalUserState faxNumber givenName jobTitle legalAgeGroupClassification "
               "mail mailNickname mobilePhone officeLocation onPremisesDistinguishedName onPremisesDomainName "
               "onPremisesImmutableId onPremisesSamAccountName onPremisesSecurityIdentifier "
               "onPremisesUserPrincipalName passwordPolicies postalCode preferredDataLocation preferredLanguage "
               "securityIdentifier state streetAddress surname usageLocation userPrincipalName userType",
        "strlist": "businessPhones imAddresses otherMails proxyAddresses",
        "objlist": "assignedLicenses assignedPlans identities",
        "obj": "employeeOrgData onPremisesExtensionAttributes passwordProfile",
    }),
    read_only=set("id createdDateTime deletedDateTime creationType externalUserState externalUserStateChangeDateTime "
                  "imAddresses isResourceAccount lastPasswordChangeDateTime legalAgeGroupClassification "
                  "onPremisesDistinguishedName onPremisesDomainName onPremisesLastSyncDateTime "
                  "onPremisesSamAccountName onPremisesSecurityIdentifier onPremisesSyncEnabled "
                  "onPremisesUserPrincipalName proxyAddresses securityIdentifier signInSessionsValidFromDateTime "
                  "assignedLicenses assignedPlans".split()),
    default_select=("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"),
    hidden={"passwordProfile"},
    # Learn: "Advanced query capabilities on directory objects": endsWith only on mail, otherMails,
    # userPrincipalName and proxyAddresses.
    endswith={"mail", "otherMails", "userPrincipalName", "proxyAddresses"},
    not_filterable={"passwordProfile", "passwordPolicies", "assignedPlans", "employeeOrgData"},
)

# Learn: "group resource type" (v1.0). List groups returns every default property, so no default_select.
GROUP = EntitySchema(
    name="group", resource="Group", collection="groups",
    properties=_props({
        "guid": "id",
        "bool": "isAssignableToRole mailEnabled onPremisesSyncEnabled securityEnabled",
        "datetime": "createdDateTime deletedDateTime expirationDateTime onPremisesLastSyncDateTime renewedDateTime",
        "str": "classification description displayName mail mailNickname membershipRule "
               "membershipRuleProcessingState onPremisesDomainName onPremisesNetBiosName onPremisesSamAccountName "
               "onPremisesSecurityIdentifier preferredDataLocation preferredLanguage securityIdentifier theme "
               "visibility",
        "strlist": "creationOptions groupTypes proxyAddresses resourceBehaviorOptions resourceProvisioningOptions",
        "objlist": "onPremisesProvisioningErrors serviceProvisioningErrors",
    }),
    read_only=set("id createdDateTime deletedDateTime expirationDateTime mail onPremisesDomainName "
                  "onPremisesLastSyncDateTime onPremisesNetBiosName onPremisesProvisioningErrors "
                  "onPremisesSamAccountName onPremisesSecurityIdentifier onPremisesSyncEnabled proxyAddresses "
                  "renewedDateTime securityIdentifier serviceProvisioningErrors creationOptions".split()),
    endswith={"mail", "proxyAddresses"},
    not_filterable={"onPremisesProvisioningErrors", "serviceProvisioningErrors"},
)

# Learn: "application resource type" (v1.0).
APPLICATION = EntitySchema(
    name="application", resource="Application", collection="applications",
    properties=_props({
        "guid": "id appId applicationTemplateId tokenEncryptionKeyId",
        "bool": "isDeviceOnlyAuthSupported isFallbackPublicClient",
        "datetime": "createdDateTime deletedDateTime",
        "str": "defaultRedirectUri description disabledByMicrosoftStatus displayName groupMembershipClaims notes "
               "publisherDomain samlMetadataUrl serviceManagementReference signInAudience uniqueName",
        "strlist": "identifierUris tags",
        "objlist": "addIns appRoles keyCredentials passwordCredentials requiredResourceAccess",
        "obj": "api certification info optionalClaims parentalControlSettings publicClient "
               "requestSignatureVerification servicePrincipalLockConfiguration spa verifiedPublisher web",
    }),
    read_only=set("id appId createdDateTime deletedDateTime disabledByMicrosoftStatus publisherDomain "
                  "passwordCredentials certification applicationTemplateId".split()),
    not_filterable={"api", "info", "optionalClaims", "web", "spa", "publicClient", "parentalControlSettings"},
)

# Learn: "servicePrincipal resource type" (v1.0).
SERVICE_PRINCIPAL = EntitySchema(
    name="servicePrincipal", resource="ServicePrincipal", collection="servicePrincipals",
    properties=_props({
        "guid": "id appId applicationTemplateId appOwnerOrganizationId tokenEncryptionKeyId",
        "bool": "accountEnabled appRoleAssignmentRequired",
        "datetime": "deletedDateTime",
        "str": "appDescription appDisplayName description disabledByMicrosoftStatus displayName homepage loginUrl "
               "logoutUrl notes preferredSingleSignOnMode preferredTokenSigningKeyThumbprint servicePrincipalType "
               "signInAudience",
        "strlist": "alternativeNames notificationEmailAddresses replyUrls servicePrincipalNames tags",
        "objlist": "addIns appRoles keyCredentials oauth2PermissionScopes passwordCredentials "
                   "resourceSpecificApplicationPermissions",
        "obj": "info samlSingleSignOnSettings verifiedPublisher",
    }),
    read_only=set("id appDescription appDisplayName appOwnerOrganizationId deletedDateTime disabledByMicrosoftStatus "
                  "servicePrincipalType signInAudience passwordCredentials resourceSpecificApplicationPermissions "
                  "applicationTemplateId".split()),
    not_filterable={"info", "samlSingleSignOnSettings", "verifiedPublisher"},
)

SCHEMAS = {schema.name: schema for schema in (USER, GROUP, APPLICATION, SERVICE_PRINCIPAL)}

# Users and groups take directory extension properties.
USER.properties = ExtensibleProperties(USER.properties, USER.resource)
GROUP.properties = ExtensibleProperties(GROUP.properties, GROUP.resource)
