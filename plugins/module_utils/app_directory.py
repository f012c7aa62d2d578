# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reading a tenant's directory for application registrations: service principals of resource applications and
their app roles (permission names -> ids and back), directory role definitions, owners, app role and directory role
assignments, with suggestions for mistyped names. ``AppRegistration`` builds its plans on this."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import re

from ansible_collections.idsync.entra.plugins.module_utils import consistency, odata
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Resource applications people name in api_permissions, by display name (lower case) -> appId.
WELL_KNOWN_RESOURCES = {
    "microsoft graph": "00000003-0000-0000-c000-000000000000",
    "office 365 exchange online": "00000002-0000-0ff1-ce00-000000000000",
    "exchange online": "00000002-0000-0ff1-ce00-000000000000",
    "office 365 sharepoint online": "00000003-0000-0ff1-ce00-000000000000",
}

SP_SELECT = "id,appId,displayName"
RESOURCE_SP_SELECT = "id,appId,displayName,appRoles"
ROLE_DEF_SELECT = "id,displayName,templateId,isBuiltIn"
OWNER_SELECT = "id,userPrincipalName,appId,displayName"
TENANT_SCOPE = "/"


def quote_path(value):
    """Percent-encode one path segment (a UPN may hold '#', '?', '/' or '%')."""
    from urllib.parse import quote
    return quote(str(value), safe="@.-_'()~!$&*+,;=:")


def _replication_error(error):
    if consistency.is_replication_error(error):
        return True
    return isinstance(error, GraphError) and error.status == 400 and error.matches(
        "Invalid value specified for property 'principalId'", "Invalid value specified for property 'resourceId'")


def is_guid(value):
    return bool(value) and bool(GUID_RE.match(str(value).strip()))


def close_matches(name, candidates, limit=5):
    """Up to ``limit`` candidates that look like ``name`` (difflib, case-insensitive), best first."""
    lowered = dict((c.lower(), c) for c in candidates if c)
    found = difflib.get_close_matches(str(name).lower(), list(lowered), n=limit, cutoff=0.6)
    if not found:
        # A name typed with a different separator (User.ReadWriteAll, Exchange Admin) still deserves a hint.
        key = re.sub(r"[^a-z0-9]", "", str(name).lower())
        found = [c for c in lowered if key and (key in re.sub(r"[^a-z0-9]", "", c))][:limit]
    return [lowered[f] for f in found]


def _hint(matches):
    if not matches:
        return "no similar name exists"
    return "did you mean {0}?".format(" or ".join("'{0}'".format(m) for m in matches))


class DirectoryReader(object):
    """Graph reads (with Entra's replication delays waited out) and the name lookups application registrations need.

    ``timeout`` bounds each wait for replication (seconds); ``consecutive`` is how many consistent reads in a
    row count as replicated (terraform-provider-azuread uses several).
    """

    def __init__(self, graph, timeout=300, consecutive=2):
        self.graph = graph
        self.timeout = timeout
        self.consecutive = consecutive
        self._resource_by_app_id = {}
        self._resource_by_id = {}
        self._role_definitions = None
        self._role_definition_by_id = {}

    def _get_or_none(self, path, params=None):
        try:
            return self.graph.get(path, params=params)
        except GraphError as exc:
            if exc.is_not_found:
                return None
            raise

    def _list(self, path, params=None):
        return list(self.graph.iter_items(path, params=params))

    def _wait(self, description, fetch, ready, timeout=None):
        """Poll ``fetch()`` until ``ready(result)`` holds ``consecutive`` times in a row."""
        return consistency.wait_for(fetch, ready, timeout=timeout or self.timeout, consecutive=self.consecutive,
                                    description=description)

    def _retry_fresh(self, description, call):
        """Run a write that depends on an object created moments ago, retrying while Entra answers as if it did
        not exist yet (404 Request_ResourceNotFound, 400 NoBackingApplicationObject, and the 400 'Invalid value
        specified for property principalId' app role assignments give for a service principal that has not
        replicated yet)."""
        return consistency.retry_until_consistent(call, timeout=self.timeout, description=description,
                                                  retry_on=_replication_error)

    def service_principal(self, app_id):
        return self._get_or_none("/servicePrincipals(appId='{0}')".format(app_id), params={"$select": SP_SELECT})

    # ---------------------------------------------------------------- resources and permission names

    def _cache_resource(self, sp):
        self._resource_by_app_id[sp["appId"].lower()] = sp
        self._resource_by_id[sp["id"].lower()] = sp
        return sp

    def resource_by_app_id(self, app_id):
        key = app_id.lower()
        return self._cached_resource(self._resource_by_app_id, key, "/servicePrincipals(appId='{0}')".format(key))

    def resource_by_id(self, object_id):
        key = object_id.lower()
        return self._cached_resource(self._resource_by_id, key, "/servicePrincipals/{0}".format(key))

    def _cached_resource(self, cache, key, path):
        """A resource service principal read once per run (a missing one is remembered as None too)."""
        if key not in cache:
            sp = self._get_or_none(path, params={"$select": RESOURCE_SP_SELECT})
            if sp is None:
                cache[key] = None
                return None
            self._cache_resource(sp)
        return cache[key]

    def resolve_resource(self, name):
        """An ``api_permissions`` key (display name such as 'Microsoft Graph', or the resource appId) -> the
        resource service principal (with ``appRoles``)."""
        text = str(name).strip()
        if is_guid(text):
            sp = self.resource_by_app_id(text)
            if sp is None:
                raise ConfigError("No service principal with appId {0} exists in the tenant: the API in api_permissions "
                                  "must be available in the tenant.".format(text), option="api_permissions")
            return sp
        well_known = WELL_KNOWN_RESOURCES.get(text.lower())
        if well_known:
            sp = self.resource_by_app_id(well_known)
            if sp is not None:
                return sp
        found = self._list("/servicePrincipals", params={
            "$filter": odata.eq("displayName", text), "$select": RESOURCE_SP_SELECT})
        if len(found) == 1:
            return self._cache_resource(found[0])
        if len(found) > 1:
            raise ConfigError("{0} service principals are named '{1}' (appIds {2}): use the resource's appId as the key "
                              "in api_permissions.".format(len(found), text,
                                                           ", ".join(sorted(f["appId"] for f in found))),
                              option="api_permissions")
        names = [n.title() if n.islower() else n for n in WELL_KNOWN_RESOURCES]
        raise ConfigError("No API named '{0}' exists in the tenant ({1}); api_permissions keys are API display names "
                          "such as 'Microsoft Graph' or their appId.".format(
                              text, _hint(close_matches(text, ["Microsoft Graph", "Office 365 Exchange Online"] + names))),
                          option="api_permissions")

    @staticmethod
    def _application_roles(resource):
        return [r for r in (resource.get("appRoles") or [])
                if r.get("isEnabled", True) and "Application" in (r.get("allowedMemberTypes") or ["Application"])]

    def resolve_permission(self, resource, name):
        """A permission name ('User.ReadWrite.All') or app role id -> the app role id, or ConfigError naming
        the close matches."""
        text = str(name).strip()
        roles = self._application_roles(resource)
        if is_guid(text):
            for role in roles:
                if role["id"].lower() == text.lower():
                    return role["id"], role.get("value") or role["id"]
        for role in roles:
            if role.get("value") == text:
                return role["id"], role["value"]
        folded = [r for r in roles if (r.get("value") or "").lower() == text.lower()]
        if len(folded) == 1:
            return folded[0]["id"], folded[0]["value"]
        values = sorted(r.get("value") for r in roles if r.get("value"))
        delegated = [r for r in (resource.get("oauth2PermissionScopes") or []) if r.get("value") == text]
        extra = " (it is a delegated permission; api_permissions takes application permissions)" if delegated else ""
        raise ConfigError("Unknown application permission '{0}' for {1}{2}: {3}".format(
            text, resource.get("displayName") or resource.get("appId"), extra, _hint(close_matches(text, values))),
            details={"resource": resource.get("displayName"), "permission": text,
                     "close_matches": close_matches(text, values)}, option="api_permissions")

    def resolve_api_permissions(self, api_permissions):
        """``{'Microsoft Graph': ['User.ReadWrite.All', ...]}`` -> ``{resourceAppId: {'resource': sp,
        'roles': {roleId: name}}}``. All unknown names are reported together."""
        resolved = {}
        problems = []
        for key in sorted(api_permissions or {}):
            names = api_permissions[key]
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, (list, tuple)):
                raise ConfigError("api_permissions['{0}'] must be a list of permission names.".format(key),
                                  option="api_permissions")
            resource = self.resolve_resource(key)
            entry = resolved.setdefault(resource["appId"].lower(), {"resource": resource, "roles": {}})
            for name in names:
                try:
                    role_id, value = self.resolve_permission(resource, name)
                except ConfigError as exc:
                    problems.append(exc)
                    continue
                entry["roles"][role_id.lower()] = value
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise ConfigError(" ".join(p.msg for p in problems), option="api_permissions",
                              details={"unknown": [p.details.get("permission") for p in problems]})
        return resolved

    def _role_name(self, resource, role_id):
        if resource:
            for role in resource.get("appRoles") or []:
                if role.get("id", "").lower() == str(role_id).lower():
                    return role.get("value") or role["id"]
        return str(role_id)

    @staticmethod
    def _resource_label(resource, fallback):
        return (resource or {}).get("displayName") or fallback

    # ---------------------------------------------------------------- directory roles

    def _all_role_definitions(self):
        if self._role_definitions is None:
            self._role_definitions = self._list("/roleManagement/directory/roleDefinitions",
                                                params={"$select": ROLE_DEF_SELECT})
            for definition in self._role_definitions:
                self._role_definition_by_id[definition["id"].lower()] = definition
                if definition.get("templateId"):
                    self._role_definition_by_id.setdefault(definition["templateId"].lower(), definition)
        return self._role_definitions

    def resolve_directory_role(self, name):
        """'Exchange Administrator' (or a role template id) -> the role definition."""
        text = str(name).strip()
        definitions = self._all_role_definitions()
        if is_guid(text):
            found = self._role_definition_by_id.get(text.lower())
            if found:
                return found
        for definition in definitions:
            if definition.get("displayName") == text:
                return definition
        folded = [d for d in definitions if (d.get("displayName") or "").lower() == text.lower()]
        if len(folded) == 1:
            return folded[0]
        raise ConfigError("Unknown directory role '{0}': {1}".format(
            text, _hint(close_matches(text, [d.get("displayName") for d in definitions]))),
            details={"role": text}, option="directory_roles")

    def role_definition_name(self, definition_id):
        key = str(definition_id).lower()
        if key not in self._role_definition_by_id:
            definition = self._get_or_none("/roleManagement/directory/roleDefinitions/{0}".format(key),
                                           params={"$select": ROLE_DEF_SELECT})
            if definition is None:
                return str(definition_id)
            self._role_definition_by_id[key] = definition
        return self._role_definition_by_id[key].get("displayName") or str(definition_id)

    def role_assignments(self, sp_id):
        """Tenant-wide directory role assignments held by the service principal."""
        items = self._list("/roleManagement/directory/roleAssignments", params={
            "$filter": odata.eq("principalId", sp_id)})
        return [a for a in items if (a.get("directoryScopeId") or TENANT_SCOPE) == TENANT_SCOPE]

    # ---------------------------------------------------------------- owners

    def resolve_owner(self, name):
        text = str(name).strip()
        if is_guid(text):
            found = self._get_or_none("/directoryObjects/{0}".format(text.lower()))
        else:
            found = self._get_or_none("/users/{0}".format(quote_path(text)),
                                      params={"$select": "id,userPrincipalName,displayName"})
        if found is None:
            raise ConfigError("Owner '{0}' was not found in the tenant: owners takes user principal names or object "
                              "ids.".format(text), option="owners")
        return found

    @staticmethod
    def owner_label(owner):
        return owner.get("userPrincipalName") or owner.get("appId") or owner.get("id")

    def owners(self, object_id):
        return self._list("/applications/{0}/owners".format(object_id), params={"$select": OWNER_SELECT})

    # ---------------------------------------------------------------- consent

    def app_role_assignments(self, sp_id):
        """App role assignments granted to the service principal (application permissions consented)."""
        return self._list("/servicePrincipals/{0}/appRoleAssignments".format(sp_id))

    # ---------------------------------------------------------------- describing

    def _permissions_by_name(self, pairs):
        """``[(resourceAppId or resource object id, roleId, by)]`` -> ``{'Microsoft Graph': [sorted names]}``."""
        result = {}
        for resource_key, role_id, by in pairs:
            if by == "appId":
                resource = self.resource_by_app_id(resource_key)
            else:
                resource = self.resource_by_id(resource_key)
            label = self._resource_label(resource, resource_key)
            result.setdefault(label, set()).add(self._role_name(resource, role_id))
        return dict((k, sorted(v)) for k, v in sorted(result.items()))
