"""Static catalogue of what every Entra tenant already holds: Microsoft's first-party service principals with their
real app role / scope ids, and the built-in directory role templates.

Ids are Microsoft's published identifiers (Learn: "Microsoft Graph permissions reference" and "Microsoft Entra
built-in roles"); they are the same in every tenant, so clients hard-code them and the emulator must match.
"""

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # appOwnerOrganizationId of Microsoft's own apps

# (value, id, displayName, description) of Microsoft Graph application permissions (app roles).
# Learn: https://learn.microsoft.com/graph/permissions-reference
GRAPH_APP_ROLES = [
    ("AdministrativeUnit.Read.All", "134fd756-38ce-4afd-ba33-e9623dbe66c2", "Read all administrative units",
     "Allows the app to read administrative units and administrative unit membership without a signed-in user."),
    ("AdministrativeUnit.ReadWrite.All", "5eb59dd3-1da2-4329-8733-9dabdc435916",
     "Read and write all administrative units",
     "Allows the app to create, read, update, and delete administrative units and manage administrative unit "
     "membership without a signed-in user."),
    ("Application.Read.All", "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Read all applications",
     "Allows the app to read all applications and service principals without a signed-in user."),
    ("Application.ReadWrite.All", "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", "Read and write all applications",
     "Allows the app to create, read, update and delete applications and service principals without a signed-in "
     "user.  Does not allow management of consent grants."),
    ("Application.ReadWrite.OwnedBy", "18a4783c-866b-4cc7-a460-3d5e5662c884",
     "Manage apps that this app creates or owns",
     "Allows the app to create other applications, and fully manage those applications (read, update, update "
     "application secrets and delete), without a signed-in user.  It cannot update any apps that it is not an "
     "owner of."),
    ("AppRoleAssignment.ReadWrite.All", "06b708a9-e830-4db3-a914-8e69da51d44f",
     "Manage app permission grants and app role assignments",
     "Allows the app to manage permission grants for application permissions to any API (including Microsoft Graph) "
     "and application assignments for any app, without a signed-in user."),
    ("AuditLog.Read.All", "b0afded3-3588-46d8-8b3d-9842eff778da", "Read all audit log data",
     "Allows the app to read and query your audit log activities, without a signed-in user."),
    ("Calendars.Read", "798ee544-9d2d-430c-a058-570e29e34338", "Read calendars in all mailboxes",
     "Allows the app to read events of all calendars without a signed-in user."),
    ("Calendars.ReadWrite", "ef54d2bf-783f-4e0f-bca1-3210c0444d99", "Read and write calendars in all mailboxes",
     "Allows the app to create, read, update, and delete events of all calendars without a signed-in user."),
    ("Contacts.Read", "089fe4d0-434a-44c5-8827-41ba8a0b17f5", "Read contacts in all mailboxes",
     "Allows the app to read all contacts in all mailboxes without a signed-in user."),
    ("Contacts.ReadWrite", "6918b873-d17a-4dc1-b314-35f528134491", "Read and write contacts in all mailboxes",
     "Allows the app to create, read, update, and delete all contacts in all mailboxes without a signed-in user."),
    ("DelegatedPermissionGrant.ReadWrite.All", "8e8e4742-1d95-4f68-9d56-6ee75648c72a",
     "Manage all delegated permission grants",
     "Allows the app to manage permission grants for delegated permissions exposed by any API (including Microsoft "
     "Graph), without a signed-in user."),
    ("Device.Read.All", "7438b122-aefc-4978-80ed-43db9fcc7715", "Read all devices",
     "Allows the app to read your organization's devices' configuration information without a signed-in user."),
    ("Device.ReadWrite.All", "1138cb37-bd11-4084-a2b7-9f71582aeddb", "Read and write devices",
     "Allows the app to read and write all device properties without a signed in user."),
    ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Read directory data",
     "Allows the app to read data in your organization's directory, such as users, groups and apps, without a "
     "signed-in user."),
    ("Directory.ReadWrite.All", "19dbc75e-c2e2-444c-a770-ec69d8559fc7", "Read and write directory data",
     "Allows the app to read and write data in your organization's directory, such as users, and groups, without a "
     "signed-in user.  Does not allow user or group deletion."),
    ("Domain.Read.All", "dbb9058a-0e50-45d7-ae91-66909b5d4664", "Read domains",
     "Allows the app to read all domain properties without a signed-in user."),
    ("Domain.ReadWrite.All", "7e05723c-0bb0-42da-be95-ae9f08a6e53c", "Read and write domains",
     "Allows the app to read and write all domain properties without a signed in user.  Also allows the app to add, "
     " verify and remove domains."),
    ("Files.Read.All", "01d4889c-1287-42c6-ac1f-5d1e02578ef6", "Read files in all site collections",
     "Allows the app to read all files in all site collections without a signed in user."),
    ("Files.ReadWrite.All", "75359482-378d-4052-8f01-80520e7db3cd", "Read and write files in all site collections",
     "Allows the app to read, create, update and delete all files in all site collections without a signed in user."),
    ("Group.Create", "bf7b1a76-6e77-406b-b258-bf5c7720e98f", "Create groups",
     "Allows the app to create groups without a signed-in user."),
    ("Group.Read.All", "5b567255-7703-4780-807c-7be8301ae99b", "Read all groups",
     "Allows the app to read group properties and memberships, and read the calendar and conversations for all "
     "groups, without a signed-in user."),
    ("Group.ReadWrite.All", "62a82d76-70ea-41e2-9197-370581804d09", "Read and write all groups",
     "Allows the app to create groups, read all group properties and memberships, update group properties and "
     "memberships, and delete groups. Also allows the app to read and write group calendar and conversations.  All "
     "of these operations can be performed by the app without a signed-in user."),
    ("GroupMember.Read.All", "98830695-27a2-44f7-8c18-0c3ebc9698f6", "Read all group memberships",
     "Allows the app to read memberships and basic group properties for all groups without a signed-in user."),
    ("GroupMember.ReadWrite.All", "dbaae8cf-10b5-4b86-a4a1-f871c94c6695", "Read and write all group memberships",
     "Allows the app to list groups, read basic properties, read and update the membership of the groups this app "
     "has access to without a signed-in user. Group properties and owners cannot be updated and groups cannot be "
     "deleted."),
    ("IdentityRiskyUser.Read.All", "dc5007c0-2d7d-4c42-879c-2dab87571379", "Read all identity risky user information",
     "Allows the app to read the identity risky user information for your organization without a signed in user."),
    ("Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01", "Read mail in all mailboxes",
     "Allows the app to read mail in all mailboxes without a signed-in user."),
    ("Mail.ReadBasic.All", "693c5e45-0940-467d-9b8a-1022fb9d42ef", "Read basic mail in all mailboxes",
     "Allows the app to read basic mail properties in all mailboxes without a signed-in user. Includes all "
     "properties except body, previewBody, attachments and any extended properties."),
    ("Mail.ReadWrite", "e2a3a72e-5f79-4c64-b1b1-878b674786c9", "Read and write mail in all mailboxes",
     "Allows the app to create, read, update, and delete mail in all mailboxes without a signed-in user. Does not "
     "include permission to send mail."),
    ("Mail.Send", "b633e1c5-b582-4048-a93e-9f11b44c7e96", "Send mail as any user",
     "Allows the app to send mail as any user without a signed-in user."),
    ("MailboxSettings.Read", "40f97065-369a-49f4-947c-6a255697ae91", "Read all user mailbox settings",
     "Allows the app to read user's mailbox settings without a signed-in user. Does not include permission to send "
     "mail."),
    ("MailboxSettings.ReadWrite", "6931bccd-447a-43d1-b442-00a195474933", "Read and write all user mailbox settings",
     "Allows the app to create, read, update, and delete user's mailbox settings without a signed-in user. Does not "
     "include permission to send mail."),
    ("Member.Read.Hidden", "658aa5d8-239f-45c4-aa12-864f4fc7e490", "Read all hidden memberships",
     "Allows the app to read the memberships of hidden groups and administrative units without a signed-in user."),
    ("OrgContact.Read.All", "e1a88a34-94c4-4418-be12-c87b00e26bea", "Read organizational contacts",
     "Allows the app to read all organizational contacts without a signed-in user."),
    ("Organization.Read.All", "498476ce-e0fe-48b0-b801-37ba7e2685c6", "Read organization information",
     "Allows the app to read the organization and related resources, without a signed-in user. Related resources "
     "include things like subscribed skus and tenant branding information."),
    ("Organization.ReadWrite.All", "292d869f-3427-49a8-9dab-8c70152b74e9", "Read and write organization information",
     "Allows the app to read and write the organization and related resources, without a signed-in user. Related "
     "resources include things like subscribed skus and tenant branding information."),
    ("Policy.Read.All", "246dd0d5-5bd0-4def-940b-0421030a5b68", "Read your organization's policies",
     "Allows the app to read all your organization's policies without a signed in user."),
    ("Reports.Read.All", "230c1aed-a721-4c5d-9cb4-a90514e508ef", "Read all usage reports",
     "Allows an app to read all service usage reports without a signed-in user.  Services that provide usage "
     "reports include Office 365 and Azure Active Directory."),
    ("RoleManagement.Read.All", "c7fbd983-d9aa-4fa7-84b8-17382c103bc4",
     "Read role management data for all RBAC providers",
     "Allows the app to read role-based access control (RBAC) settings for all RBAC providers without a signed-in "
     "user. This includes reading role definitions and role assignments."),
    ("RoleManagement.Read.Directory", "483bed4a-2ad3-4361-a73b-c83ccdbdc53c", "Read all directory RBAC settings",
     "Allows the app to read the role-based access control (RBAC) settings for your company's directory, without a "
     "signed-in user.  This includes reading directory role templates, directory roles and memberships."),
    ("RoleManagement.ReadWrite.Directory", "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
     "Read and write all directory RBAC settings",
     "Allows the app to read and manage the role-based access control (RBAC) settings for your company's directory, "
     "without a signed-in user. This includes instantiating directory roles and managing directory role "
     "membership, and reading directory role templates, directory roles and memberships."),
    ("SecurityEvents.Read.All", "bf394140-e372-4bf9-a898-299cfc7564e5", "Read your organization's security events",
     "Allows the app to read your organization's security events without a signed-in user."),
    ("Sites.FullControl.All", "a82116e5-55eb-4c41-a434-62fe8a61c773", "Have full control of all site collections",
     "Allows the app to have full control of all site collections without a signed in user."),
    ("Sites.Manage.All", "0c0bf378-bf22-4481-8f81-9e89a9b4960a",
     "Create, edit, and delete items and lists in all site collections",
     "Allows the app to create or delete document libraries and lists in all site collections without a signed in "
     "user."),
    ("Sites.Read.All", "332a536c-c7ef-4017-ab91-336970924f0d", "Read items in all site collections",
     "Allows the app to read documents and list items in all site collections without a signed in user."),
    ("Sites.ReadWrite.All", "9492366f-7969-46a4-8d15-ed1a20078fff", "Read and write items in all site collections",
     "Allows the app to create, read, update, and delete documents and list items in all site collections without "
     "a signed in user."),
    ("Sites.Selected", "883ea226-0bf2-4a8f-9f9d-92c9162a727d", "Access selected site collections",
     "Allow the application to access a subset of site collections without a signed in user.  The specific site "
     "collections and the permissions granted will be configured in SharePoint Online."),
    ("User.Export.All", "405a51b5-8d8d-430b-9842-8be4b0e9f324", "Export user's data",
     "Allows the app to export data (e.g. customer content or system-generated logs), associated with any user in "
     "your company, when the app is used by a privileged user (e.g. a Company Administrator)."),
    ("User.Invite.All", "09850681-111b-4a89-9bed-3f2cae46d706", "Invite guest users to the organization",
     "Allows the app to invite guest users to the organization, without a signed-in user."),
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214", "Read all users' full profiles",
     "Allows the app to read user profiles without a signed in user."),
    ("User.ReadWrite.All", "741f803b-c850-494e-b5df-cde7c675a1ca", "Read and write all users' full profiles",
     "Allows the app to read and update user profiles without a signed in user."),
    ("UserAuthenticationMethod.Read.All", "38d9df27-64da-44fd-b7c5-a6fbac20248f",
     "Read all users' authentication methods",
     "Allows the app to read authentication methods of all users in your organization, without a signed-in user."),
    ("UserAuthenticationMethod.ReadWrite.All", "50483e42-d915-4231-9639-7fdb7fd190e5",
     "Read and write all users' authentication methods",
     "Allows the application to read and write authentication methods of all users in your organization, without a "
     "signed-in user."),
]

# (value, id) of Microsoft Graph delegated permissions (oauth2PermissionScopes) that admin tooling asks for.
GRAPH_SCOPES = [
    ("AppRoleAssignment.ReadWrite.All", "84bccea3-f856-4a8a-967b-dbe0a3d53a64"),
    ("Application.Read.All", "c79f8feb-a9db-4090-85f9-90d820caa0eb"),
    ("Application.ReadWrite.All", "bdfbf15f-ee85-4955-8675-146e8e5296b5"),
    ("Directory.AccessAsUser.All", "0e263e50-5827-48a4-b97c-d940288653c7"),
    ("Directory.Read.All", "06da0dbc-49e2-44d2-8312-53f166ab848a"),
    ("Directory.ReadWrite.All", "c5366453-9fb0-48a5-a156-24f0c49a4b84"),
    ("Group.Read.All", "5f8c59db-677d-491f-a6b8-5f174b11ec1d"),
    ("Group.ReadWrite.All", "4e46008b-f24c-477d-8fff-7bb4ec7aafe0"),
    ("RoleManagement.ReadWrite.Directory", "d01b97e9-cbc0-49fe-810a-750afd5527a3"),
    ("User.Read", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
    ("User.Read.All", "a154be20-db9c-4678-8ab7-66f6cc099a59"),
    ("User.ReadWrite.All", "204e0828-b5ca-4ad8-b9f3-f32a958e7cc4"),
    ("email", "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0"),
    ("offline_access", "7427e0e9-2fba-42fe-b0c0-848c9e6a8182"),
    ("openid", "37f7f235-527c-4136-accd-4a02d197296e"),
    ("profile", "14dad69e-099b-42c9-810b-d002981feec1"),
]

# Office 365 Exchange Online: the app role Exchange Online PowerShell / admin REST needs for app-only access.
# Learn: "App-only authentication for unattended scripts in Exchange Online PowerShell".
EXCHANGE_APP_ROLES = [
    ("Exchange.ManageAsApp", "dc50a0fb-09a3-484d-be87-e023b12c6440", "Manage Exchange As Application",
     "Allows the app to manage the organization's Exchange environment without any user interaction. This includes "
     "mailboxes, groups, and other configuration objects."),
]

FIRST_PARTY_SERVICE_PRINCIPALS = [
    {"appId": GRAPH_APP_ID, "displayName": "Microsoft Graph", "roles": GRAPH_APP_ROLES, "scopes": GRAPH_SCOPES,
     "servicePrincipalNames": [GRAPH_APP_ID, "https://graph.microsoft.com"]},
    {"appId": EXCHANGE_APP_ID, "displayName": "Office 365 Exchange Online", "roles": EXCHANGE_APP_ROLES, "scopes": [],
     "servicePrincipalNames": [EXCHANGE_APP_ID, "https://outlook.office365.com/"]},
]

# Built-in directory roles (templateId == roleDefinitionId). Learn: "Microsoft Entra built-in roles".
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
GROUPS_ADMINISTRATOR = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
EXCHANGE_RECIPIENT_ADMINISTRATOR = "31392ffb-586c-42d1-9346-e59415a2cc4e"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
DIRECTORY_WRITERS = "9360feb5-f418-4baa-8175-e2a00bac4301"

ROLE_TEMPLATES = [
    (GLOBAL_ADMINISTRATOR, "Global Administrator",
     "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities."),
    (APPLICATION_ADMINISTRATOR, "Application Administrator",
     "Can create and manage all aspects of app registrations and enterprise apps."),
    (CLOUD_APPLICATION_ADMINISTRATOR, "Cloud Application Administrator",
     "Can create and manage all aspects of app registrations and enterprise apps except App Proxy."),
    (PRIVILEGED_ROLE_ADMINISTRATOR, "Privileged Role Administrator",
     "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management."),
    (USER_ADMINISTRATOR, "User Administrator",
     "Can manage all aspects of users and groups, including resetting passwords for limited admins."),
    (GROUPS_ADMINISTRATOR, "Groups Administrator",
     "Members of this role can create/manage groups, create/manage groups settings like naming and expiration "
     "policies, and view groups activity and audit reports."),
    (EXCHANGE_ADMINISTRATOR, "Exchange Administrator", "Can manage all aspects of the Exchange product."),
    (EXCHANGE_RECIPIENT_ADMINISTRATOR, "Exchange Recipient Administrator",
     "Can create or update Exchange Online recipients within the Exchange Online organization."),
    (GLOBAL_READER, "Global Reader", "Can read everything that a Global Administrator can, but not update anything."),
    (DIRECTORY_READERS, "Directory Readers", "Can read basic directory information. Commonly used to grant directory "
     "read access to applications and guests."),
    (DIRECTORY_WRITERS, "Directory Writers", "Can read and write basic directory information. For granting access "
     "to applications, not intended for users."),
]
