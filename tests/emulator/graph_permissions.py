"""Authorization of Graph calls from token claims.

App-only tokens carry application permissions in `roles`; delegated tokens carry scopes in `scp` and the user's
directory roles in `wids`. Learn: "Overview of Microsoft Graph permissions": a delegated call is allowed only when
the app holds the scope *and* the signed-in user may do the operation themselves (default member permissions let
users read the directory; writes need an admin role). Each API page's "Permissions" table lists the alternatives
encoded below (least privileged first).
"""
from dataclasses import dataclass

from graph_catalog import (APPLICATION_ADMINISTRATOR, CLOUD_APPLICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR,
                           GROUPS_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR, USER_ADMINISTRATOR)
from graph_errors import forbidden

# A ReadWrite permission also grants what its Read counterpart does.
IMPLIED = {
    "Application.ReadWrite.All": ("Application.Read.All",),
    "Directory.ReadWrite.All": ("Directory.Read.All",),
    "Group.ReadWrite.All": ("Group.Read.All",),
    "GroupMember.ReadWrite.All": ("GroupMember.Read.All",),
    "User.ReadWrite.All": ("User.Read.All",),
    "Organization.ReadWrite.All": ("Organization.Read.All",),
    "Domain.ReadWrite.All": ("Domain.Read.All",),
    "RoleManagement.ReadWrite.Directory": ("RoleManagement.Read.Directory",),
}


@dataclass(frozen=True)
class Access:
    app: tuple            # alternatives; an alternative is a permission or a tuple of permissions all required
    delegated: tuple
    admin_roles: tuple = ()   # delegated callers need one of these directory roles; () = any member may


def _any(*names):
    return tuple(names)


USER_ADMINS = (GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR)
GROUP_ADMINS = (GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR, GROUPS_ADMINISTRATOR)
APP_ADMINS = (GLOBAL_ADMINISTRATOR, APPLICATION_ADMINISTRATOR, CLOUD_APPLICATION_ADMINISTRATOR)
ROLE_ADMINS = (GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR)

# Learn: "List users" / "Get user".
READ_USERS = Access(
    app=_any("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    delegated=_any("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
                   "Directory.ReadWrite.All", "Directory.AccessAsUser.All"))
# Learn: "Create user" / "Update user" / "Delete user".
WRITE_USERS = Access(
    app=_any("User.ReadWrite.All", "Directory.ReadWrite.All"),
    delegated=_any("User.ReadWrite.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"),
    admin_roles=USER_ADMINS)
# Learn: "List groups" / "Get group" / "List group members".
READ_GROUPS = Access(
    app=_any("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All",
             "Directory.Read.All", "Directory.ReadWrite.All"),
    delegated=_any("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All",
                   "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"))
# Learn: "Create group": Group.Create is the least privileged application permission.
CREATE_GROUPS = Access(
    app=_any("Group.Create", "Group.ReadWrite.All", "Directory.ReadWrite.All"),
    delegated=_any("Group.ReadWrite.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"),
    admin_roles=GROUP_ADMINS)
WRITE_GROUPS = Access(
    app=_any("Group.ReadWrite.All", "Directory.ReadWrite.All"),
    delegated=_any("Group.ReadWrite.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"),
    admin_roles=GROUP_ADMINS)
# Learn: "Add members" / "Remove member": GroupMember.ReadWrite.All is least privileged.
WRITE_MEMBERS = Access(
    app=_any("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"),
    delegated=_any("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All",
                   "Directory.AccessAsUser.All"),
    admin_roles=GROUP_ADMINS)
# Learn: "Get organization".
READ_ORGANIZATION = Access(
    app=_any("Organization.Read.All", "Directory.Read.All", "Organization.ReadWrite.All", "Directory.ReadWrite.All"),
    delegated=_any("User.Read", "Organization.Read.All", "Directory.Read.All", "Organization.ReadWrite.All",
                   "Directory.ReadWrite.All", "Directory.AccessAsUser.All"))
# Learn: "List domains" / "Get domain": Domain.Read.All is least privileged (User.ReadWrite.All, Group.ReadWrite.All
# and Organization.Read.All do not read domains; /organization's verifiedDomains does). Any member may read them.
READ_DOMAINS = Access(
    app=_any("Domain.Read.All", "Directory.Read.All", "Domain.ReadWrite.All", "Directory.ReadWrite.All"),
    delegated=_any("Domain.Read.All", "Directory.Read.All", "Domain.ReadWrite.All", "Directory.ReadWrite.All",
                   "Directory.AccessAsUser.All"))
# Learn: "List applications" / "Get servicePrincipal".
READ_APPS = Access(
    app=_any("Application.Read.All", "Application.ReadWrite.OwnedBy", "Application.ReadWrite.All",
             "Directory.Read.All", "Directory.ReadWrite.All"),
    delegated=_any("Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                   "Directory.ReadWrite.All", "Directory.AccessAsUser.All"))
# Learn: "Create application" / "Update application" / "Create servicePrincipal" / "application: addPassword".
WRITE_APPS = Access(
    app=_any("Application.ReadWrite.OwnedBy", "Application.ReadWrite.All"),
    delegated=_any("Application.ReadWrite.All", "Directory.AccessAsUser.All"),
    admin_roles=APP_ADMINS)
# Learn: "Grant an appRoleAssignment for a service principal": AppRoleAssignment.ReadWrite.All together with
# Application.Read.All (or Directory.Read.All). Granting Microsoft Graph app roles as a user is a privileged-role task.
WRITE_APP_ROLE_ASSIGNMENTS = Access(
    app=(("AppRoleAssignment.ReadWrite.All", "Application.Read.All"),
         ("AppRoleAssignment.ReadWrite.All", "Directory.Read.All")),
    delegated=(("AppRoleAssignment.ReadWrite.All", "Application.Read.All"),
               ("AppRoleAssignment.ReadWrite.All", "Directory.Read.All"), "Directory.AccessAsUser.All"),
    admin_roles=ROLE_ADMINS)
READ_APP_ROLE_ASSIGNMENTS = Access(
    app=_any("Application.Read.All", "AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All",
             "Directory.Read.All", "Directory.ReadWrite.All"),
    delegated=_any("Application.Read.All", "AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All",
                   "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"))
# Learn: "List directoryRoles" / "List unifiedRoleDefinitions" / "Create unifiedRoleAssignment".
READ_ROLES = Access(
    app=_any("RoleManagement.Read.Directory", "Directory.Read.All", "RoleManagement.ReadWrite.Directory",
             "Directory.ReadWrite.All"),
    delegated=_any("RoleManagement.Read.Directory", "Directory.Read.All", "RoleManagement.ReadWrite.Directory",
                   "Directory.ReadWrite.All", "Directory.AccessAsUser.All"))
WRITE_ROLES = Access(
    app=_any("RoleManagement.ReadWrite.Directory"),
    delegated=_any("RoleManagement.ReadWrite.Directory", "Directory.AccessAsUser.All"),
    admin_roles=ROLE_ADMINS)


def granted_permissions(claims):
    """The permissions a token carries, with implied Read permissions added."""
    if claims.get("idtyp") == "app" or ("roles" in claims and "scp" not in claims):
        names = set(claims.get("roles") or [])
    else:
        names = set((claims.get("scp") or "").split())
    for name in list(names):
        names.update(IMPLIED.get(name, ()))
    return names


def is_app_only(claims):
    return claims.get("idtyp") == "app" or ("roles" in claims and "scp" not in claims)


def allowed(claims, access):
    held = granted_permissions(claims)
    alternatives = access.app if is_app_only(claims) else access.delegated
    if not any(_satisfied(alternative, held) for alternative in alternatives):
        return False
    if is_app_only(claims) or not access.admin_roles:
        return True
    user_roles = set(claims.get("wids") or [])
    return bool(user_roles & set(access.admin_roles))


def require(claims, access):
    if not allowed(claims, access):
        raise forbidden()


def _satisfied(alternative, held):
    needed = (alternative,) if isinstance(alternative, str) else alternative
    return all(name in held for name in needed)

