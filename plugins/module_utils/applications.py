# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Entra application registrations: find, plan, apply and describe.

``AppRegistration`` holds the logic of ``idsync.entra.app_registration`` (ensure an application and its
service principal match the options) and ``idsync.entra.app_registration_info`` (describe them). The modules
stay thin: they build one ``AppRegistration`` and call ``ensure_present()``, ``ensure_absent()`` or
``describe()``.

How it works (after netbox's ``_build_diff`` and terraform-provider-azuread's application resource):

1. Everything is read first (application, service principal, consented app roles, directory role
   assignments, owners, the resource service principals' ``appRoles`` that turn permission names into ids),
   and reduced to a compact, stable *state* dict (``display_name``, ``sign_in_audience``,
   ``certificate_thumbprints``, ``api_permissions`` and ``consented_permissions`` by name,
   ``directory_roles``, ``owners``). That dict is the ``--diff`` before/after.
2. The wanted state is computed from the options; options left out keep the current value (they are not
   managed). Nothing is written when the two are equal, so a second run sends no write request.
3. In check mode nothing is written: the result says what would be created or changed (``changes``).
4. Otherwise the steps run in dependency order (application, its keys and permissions, service principal,
   owners, admin consent, directory roles), each waiting out Entra's replication delay before the next one
   depends on it, and before the run ends (so the next run reads what this one wrote).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils import odata
from ansible_collections.idsync.entra.plugins.module_utils.app_certificates import (
    credential_thumbprint, is_certificate_credential, load_public_certificate,
)
from ansible_collections.idsync.entra.plugins.module_utils.app_directory import TENANT_SCOPE, DirectoryReader, is_guid
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError

SIGN_IN_AUDIENCES = ["AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount",
                     "PersonalMicrosoftAccount"]
DEFAULT_SIGN_IN_AUDIENCE = "AzureADMyOrg"

APP_SELECT = "id,appId,displayName,signInAudience,requiredResourceAccess,keyCredentials"
APP_LIST_SELECT = "id,appId,displayName,signInAudience,requiredResourceAccess,keyCredentials,createdDateTime"


# --------------------------------------------------------------------------------------------------
# The logic
# --------------------------------------------------------------------------------------------------

class AppRegistration(DirectoryReader):
    """Reads and converges one tenant's application registrations through a ``GraphClient`` (the directory reads
    and name lookups are DirectoryReader's)."""

    def __init__(self, graph, check_mode=False, timeout=300, consecutive=2, tenant_id=None, graph_url=None):
        super(AppRegistration, self).__init__(graph, timeout=timeout, consecutive=consecutive)
        self.check_mode = check_mode
        self.tenant_id = tenant_id
        self.graph_url = (graph_url or getattr(graph, "base_url", None) or getattr(graph, "graph_url", None)
                          or "https://graph.microsoft.com/v1.0").rstrip("/")
        self.changes = []

    def _change(self, text):
        self.changes.append(text)

    # ---------------------------------------------------------------- finding the application

    def find_application(self, app_id=None, display_name=None):
        """The application with ``app_id`` if given, else the one named ``display_name`` (exact, unique).

        Returns ``None`` when there is none; raises ConfigError when several share the name (never guesses).
        """
        if app_id:
            if not is_guid(app_id):
                raise ConfigError("app_id '{0}' is not a GUID: pass the Application (client) ID shown on the app "
                                  "registration's Overview page.".format(app_id), option="app_id")
            return self._get_or_none("/applications(appId='{0}')".format(app_id.strip().lower()),
                                     params={"$select": APP_SELECT})
        if not display_name:
            raise ConfigError("Pass app_id or display_name to name the application.", option="display_name")
        matches = self._list("/applications", params={
            "$filter": odata.eq("displayName", display_name),
            "$select": "id,appId,displayName,createdDateTime",
        })
        # $filter eq on displayName is case-insensitive in Entra; the name is what people see, keep exact ones
        # first, but treat a case-only difference as the same application rather than creating a twin.
        exact = [m for m in matches if m.get("displayName") == display_name]
        candidates = exact or matches
        if len(candidates) > 1:
            listing = ", ".join("{0} (created {1})".format(m.get("appId"), m.get("createdDateTime") or "?")
                                for m in sorted(candidates, key=lambda m: m.get("createdDateTime") or ""))
            raise ConfigError(
                "{0} applications are named '{1}': {2}. Pass app_id to choose one (and delete or rename the others); "
                "a name that is not unique cannot identify an application.".format(
                    len(candidates), display_name, listing),
                details={"app_ids": sorted(m.get("appId") for m in candidates)}, option="display_name")
        if not candidates:
            return None
        return self._get_or_none("/applications/{0}".format(candidates[0]["id"]), params={"$select": APP_SELECT})

    def _read_key_credentials(self, object_id):
        """keyCredentials with their ``key`` (Graph returns it only when keyCredentials alone is selected on a
        single object)."""
        data = self.graph.get("/applications/{0}".format(object_id), params={"$select": "keyCredentials"})
        return list((data or {}).get("keyCredentials") or [])

    @staticmethod
    def required_role_pairs(app):
        pairs = set()
        for entry in (app or {}).get("requiredResourceAccess") or []:
            for access in entry.get("resourceAccess") or []:
                if access.get("type") == "Role":
                    pairs.add((entry["resourceAppId"].lower(), access["id"].lower()))
        return pairs

    @staticmethod
    def thumbprints(credentials):
        return sorted(set(t for t in (credential_thumbprint(c) for c in credentials or []
                                      if is_certificate_credential(c)) if t))

    def read_state(self, app):
        """Everything about an existing application, for the diff and the result."""
        sp = self.service_principal(app["appId"])
        credentials = list(app.get("keyCredentials") or [])
        if any(credential_thumbprint(c) is None for c in credentials if is_certificate_credential(c)):
            credentials = self._read_key_credentials(app["id"])
        assignments = self.app_role_assignments(sp["id"]) if sp else []
        role_assignments = self.role_assignments(sp["id"]) if sp else []
        owners = self.owners(app["id"])
        return {
            "app": app,
            "sp": sp,
            "key_credentials": credentials,
            "assignments": assignments,
            "role_assignments": role_assignments,
            "owners": owners,
        }

    def summarize(self, raw):
        """The compact, stable state dict used for --diff and results."""
        if raw is None:
            return {"state": "absent"}
        app = raw["app"]
        return {
            "state": "present",
            "display_name": app.get("displayName"),
            "sign_in_audience": app.get("signInAudience"),
            "certificate_thumbprints": self.thumbprints(raw["key_credentials"]),
            "api_permissions": self._permissions_by_name(
                [(r, i, "appId") for r, i in sorted(self.required_role_pairs(app))]),
            "consented_permissions": self._permissions_by_name(
                [(a["resourceId"].lower(), a["appRoleId"].lower(), "id") for a in raw["assignments"]]),
            "directory_roles": sorted(set(self.role_definition_name(a["roleDefinitionId"])
                                          for a in raw["role_assignments"])),
            "owners": sorted(set(self.owner_label(o) for o in raw["owners"])),
            "service_principal": "present" if raw["sp"] else "absent",
        }

    def result_from(self, raw, summary):
        app = raw["app"] if raw else {}
        sp = raw["sp"] if raw else None
        return {
            "tenant_id": self.tenant_id,
            "app_id": app.get("appId"),
            "object_id": app.get("id"),
            "service_principal_id": (sp or {}).get("id"),
            "display_name": summary.get("display_name"),
            "sign_in_audience": summary.get("sign_in_audience"),
            "certificate_thumbprints": summary.get("certificate_thumbprints", []),
            "api_permissions": summary.get("api_permissions", {}),
            "granted_permissions": summary.get("consented_permissions", {}),
            "directory_roles": summary.get("directory_roles", []),
            "owners": summary.get("owners", []),
        }

    # ---------------------------------------------------------------- ensure present

    def ensure_present(self, params):
        """Converge to ``params`` (the module options). Returns ``(changed, result, diff)``."""
        app_id = params.get("app_id")
        display_name = params.get("display_name")
        if not app_id and not display_name:
            raise ConfigError("state=present needs display_name (and app_id to address an existing application).",
                              option="display_name")
        mode = params.get("certificate_mode") or "add"
        certificates = None
        if params.get("certificates") is not None:
            certificates = [load_public_certificate(item) for item in params["certificates"]]
            seen = {}
            for cert in certificates:
                seen.setdefault(cert.thumbprint, cert)
            certificates = list(seen.values())

        app = self.find_application(app_id=app_id, display_name=None if app_id else display_name)
        if app is None and app_id:
            raise ConfigError("No application with appId {0} exists in tenant {1}: an application cannot be created "
                              "with a chosen appId; leave app_id out to create one by display_name.".format(
                                  app_id, self.tenant_id or "(unknown)"), option="app_id")
        if app_id and display_name and app is not None and app.get("displayName") != display_name:
            # Renaming must not create a twin of another application.
            others = [m for m in self._list("/applications", params={
                "$filter": odata.eq("displayName", display_name), "$select": "id,appId"}) if m["id"] != app["id"]]
            if others:
                raise ConfigError("Cannot rename application {0} to '{1}': application(s) {2} already use that name."
                                  .format(app["appId"], display_name, ", ".join(sorted(o["appId"] for o in others))),
                                  option="display_name")

        # Resolve every name before writing anything: a typo fails the task with nothing half-done.
        wanted_permissions = None
        if params.get("api_permissions") is not None:
            wanted_permissions = self.resolve_api_permissions(params["api_permissions"])
        wanted_roles = None
        if params.get("directory_roles") is not None:
            wanted_roles = {}
            for name in params["directory_roles"]:
                definition = self.resolve_directory_role(name)
                wanted_roles[(definition.get("templateId") or definition["id"]).lower()] = definition
        wanted_owners = None
        if params.get("owners") is not None:
            wanted_owners = {}
            for name in params["owners"]:
                owner = self.resolve_owner(name)
                wanted_owners[owner["id"].lower()] = owner
        admin_consent = bool(params.get("admin_consent"))

        raw_before = self.read_state(app) if app else None
        before = self.summarize(raw_before)

        plan = self._plan(raw_before, display_name, params.get("sign_in_audience"), certificates, mode,
                          wanted_permissions, admin_consent, wanted_roles, wanted_owners)
        after = plan["after"]
        changed = before != after or self._has_writes(plan)

        if not changed:
            return False, self.result_from(raw_before, before), {"before": before, "after": after}

        if self.check_mode:
            result = self.result_from(raw_before, after)
            return True, result, {"before": before, "after": after}

        raw_after = self._apply(raw_before, plan, params)
        final = self.summarize(raw_after)
        return True, self.result_from(raw_after, final), {"before": before, "after": final}

    @staticmethod
    def _has_writes(plan):
        return bool(plan["create_app"] or plan["create_sp"] or plan["patch"] or plan["keep_keys"] is not None
                    or plan.get("required_resource_access") is not None
                    or any(plan[k] for k in ("grant", "revoke", "assign_roles", "unassign_roles", "add_owners",
                                             "remove_owners")))

    def _plan(self, raw, display_name, sign_in_audience, certificates, mode, wanted_permissions, admin_consent,
              wanted_roles, wanted_owners):
        """Work out every write, and the state they lead to (the diff's 'after')."""
        app = raw["app"] if raw else None
        plan = {"create_app": app is None, "patch": {}, "new_keys": [], "drop_keys": [], "keep_keys": None,
                "create_sp": raw is None or raw["sp"] is None,
                "grant": [], "revoke": [], "assign_roles": [], "unassign_roles": [], "add_owners": [],
                "remove_owners": [], "managed": set(["state", "service_principal"])}
        before = self.summarize(raw)
        after = dict(before) if raw else {
            "state": "present", "display_name": None, "sign_in_audience": None, "certificate_thumbprints": [],
            "api_permissions": {}, "consented_permissions": {}, "directory_roles": [], "owners": [],
            "service_principal": "absent"}
        after["state"] = "present"
        label = display_name or (app or {}).get("displayName")

        if app is None:
            self._change("create application '{0}'".format(display_name))
        if display_name:
            plan["managed"].add("display_name")
        if display_name and (app is None or app.get("displayName") != display_name):
            after["display_name"] = display_name
            if app is not None:
                plan["patch"]["displayName"] = display_name
                self._change("rename application {0} to '{1}'".format(app["appId"], display_name))
        audience = sign_in_audience or (DEFAULT_SIGN_IN_AUDIENCE if app is None else None)
        if audience:
            plan["managed"].add("sign_in_audience")
        if audience and (app is None or app.get("signInAudience") != audience):
            after["sign_in_audience"] = audience
            if app is not None:
                plan["patch"]["signInAudience"] = audience
                self._change("set sign_in_audience of '{0}' to {1}".format(label, audience))

        # Certificates: compared by thumbprint. 'add' keeps every other key; 'exclusive' drops unlisted ones.
        if certificates is not None:
            plan["managed"].add("certificate_thumbprints")
            existing = list(raw["key_credentials"]) if raw else []
            have = dict((credential_thumbprint(c), c) for c in existing if is_certificate_credential(c))
            want = dict((c.thumbprint, c) for c in certificates)
            plan["new_keys"] = [want[t] for t in sorted(want) if t not in have]
            if mode == "exclusive":
                plan["drop_keys"] = [c for c in existing if not (is_certificate_credential(c)
                                                                 and credential_thumbprint(c) in want)]
            elif mode == "replace_own" and plan["new_keys"]:
                # Only certificates named like the new ones (the subject the caller always gives its own, e.g. the
                # auto configuration role's CN=<app name>): the caller made them; other keys are someone else's.
                own_names = set(c.display_name for c in certificates)
                plan["drop_keys"] = [c for c in existing if is_certificate_credential(c)
                                     and credential_thumbprint(c) not in want and c.get("displayName") in own_names]
            for cert in plan["new_keys"]:
                self._change("add certificate {0} ({1}) to '{2}'".format(cert.thumbprint, cert.subject, label))
            for cred in plan["drop_keys"]:
                self._change("remove {0} key {1} ({2}) from '{3}'".format(
                    cred.get("type") or "key", credential_thumbprint(cred) or cred.get("keyId"),
                    cred.get("displayName") or "no name", label))
            kept = [c for c in existing if c not in plan["drop_keys"]]
            after["certificate_thumbprints"] = sorted(set(
                [t for t in (credential_thumbprint(c) for c in kept if is_certificate_credential(c)) if t]
                + [c.thumbprint for c in plan["new_keys"]]))
            if plan["new_keys"] or plan["drop_keys"]:
                plan["keep_keys"] = kept

        # API permissions (application permissions, i.e. app roles) in requiredResourceAccess.
        wanted_pairs = None
        if wanted_permissions is not None:
            plan["managed"].add("api_permissions")
            wanted_pairs = set()
            for resource_app_id, entry in wanted_permissions.items():
                for role_id in entry["roles"]:
                    wanted_pairs.add((resource_app_id, role_id))
            current_pairs = self.required_role_pairs(app)
            if wanted_pairs != current_pairs:
                plan["required_resource_access"] = self._required_resource_access(app, wanted_permissions)
                if app is not None:
                    plan["patch"]["requiredResourceAccess"] = plan["required_resource_access"]
                added = wanted_pairs - current_pairs
                removed = current_pairs - wanted_pairs
                for resource_app_id, role_id in sorted(added):
                    self._change("request {0}".format(self._pair_label(resource_app_id, role_id)))
                for resource_app_id, role_id in sorted(removed):
                    self._change("stop requesting {0}".format(self._pair_label(resource_app_id, role_id)))
            after["api_permissions"] = self._permissions_by_name(
                [(r, i, "appId") for r, i in sorted(wanted_pairs)])

        # The service principal comes right after the application: consent and roles hang off it.
        if plan["create_sp"]:
            self._change("create service principal for '{0}'".format(label))
            after["service_principal"] = "present"

        # Admin consent: the service principal's app role assignments equal the requested app roles.
        if admin_consent:
            plan["managed"].add("consented_permissions")
            pairs = wanted_pairs if wanted_pairs is not None else self.required_role_pairs(app)
            wanted_consent = set()
            for resource_app_id, role_id in pairs:
                resource = self.resource_by_app_id(resource_app_id)
                if resource is None:
                    raise ConfigError("Cannot grant admin consent for {0}: the API with appId {1} has no service "
                                      "principal in the tenant.".format(role_id, resource_app_id),
                                      option="admin_consent")
                wanted_consent.add((resource["id"].lower(), role_id))
            current = {}
            for assignment in (raw["assignments"] if raw else []):
                current.setdefault((assignment["resourceId"].lower(), assignment["appRoleId"].lower()), assignment)
            plan["grant"] = sorted(wanted_consent - set(current))
            plan["revoke"] = [current[k] for k in sorted(set(current) - wanted_consent)]
            for resource_id, role_id in plan["grant"]:
                self._change("grant admin consent for {0}".format(self._pair_label(resource_id, role_id, "id")))
            for assignment in plan["revoke"]:
                self._change("revoke admin consent for {0}".format(self._pair_label(
                    assignment["resourceId"].lower(), assignment["appRoleId"].lower(), "id")))
            after["consented_permissions"] = self._permissions_by_name(
                [(r, i, "id") for r, i in sorted(wanted_consent)])

        # Directory roles, tenant-wide scope.
        if wanted_roles is not None:
            plan["managed"].add("directory_roles")
            current = {}
            for assignment in (raw["role_assignments"] if raw else []):
                definition_id = assignment["roleDefinitionId"].lower()
                current.setdefault(definition_id, assignment)
            wanted_ids = set(wanted_roles)
            # A custom role's id and a built-in role's templateId both land in roleDefinitionId.
            plan["assign_roles"] = [wanted_roles[k] for k in sorted(wanted_ids - set(current))]
            plan["unassign_roles"] = [current[k] for k in sorted(set(current) - wanted_ids)]
            for definition in plan["assign_roles"]:
                self._change("assign directory role '{0}'".format(definition.get("displayName")))
            for assignment in plan["unassign_roles"]:
                self._change("remove directory role '{0}'".format(
                    self.role_definition_name(assignment["roleDefinitionId"])))
            after["directory_roles"] = sorted(set(d.get("displayName") or d["id"] for d in wanted_roles.values()))

        # Owners.
        if wanted_owners is not None:
            plan["managed"].add("owners")
            plan["wanted_owners"] = wanted_owners
            current = dict((o["id"].lower(), o) for o in (raw["owners"] if raw else []))
            plan["add_owners"] = [wanted_owners[k] for k in sorted(set(wanted_owners) - set(current))]
            plan["remove_owners"] = [current[k] for k in sorted(set(current) - set(wanted_owners))]
            for owner in plan["add_owners"]:
                self._change("add owner {0}".format(self.owner_label(owner)))
            for owner in plan["remove_owners"]:
                self._change("remove owner {0}".format(self.owner_label(owner)))
            after["owners"] = sorted(set(self.owner_label(o) for o in wanted_owners.values()))

        plan["after"] = after
        return plan

    def _pair_label(self, resource_key, role_id, by="appId"):
        resource = self.resource_by_app_id(resource_key) if by == "appId" else self.resource_by_id(resource_key)
        return "{0}/{1}".format(self._resource_label(resource, resource_key), self._role_name(resource, role_id))

    @staticmethod
    def _required_resource_access(app, wanted_permissions):
        """The new requiredResourceAccess: the wanted app roles; delegated (Scope) entries already on the
        application are kept untouched (api_permissions manages application permissions only)."""
        entries = {}
        for entry in (app or {}).get("requiredResourceAccess") or []:
            scopes = [a for a in entry.get("resourceAccess") or [] if a.get("type") != "Role"]
            if scopes:
                entries.setdefault(entry["resourceAppId"].lower(), {
                    "resourceAppId": entry["resourceAppId"], "resourceAccess": []})["resourceAccess"].extend(
                    {"id": a["id"], "type": a["type"]} for a in scopes)
        for resource_app_id in sorted(wanted_permissions):
            entry = entries.setdefault(resource_app_id, {
                "resourceAppId": wanted_permissions[resource_app_id]["resource"]["appId"], "resourceAccess": []})
            for role_id in sorted(wanted_permissions[resource_app_id]["roles"]):
                entry["resourceAccess"].append({"id": role_id, "type": "Role"})
        return [entries[k] for k in sorted(entries) if entries[k]["resourceAccess"]]

    # ---------------------------------------------------------------- applying

    def _apply(self, raw, plan, params):
        after = plan["after"]
        if plan["create_app"]:
            body = {"displayName": after["display_name"], "signInAudience": after["sign_in_audience"]}
            if plan.get("required_resource_access") is not None:
                body["requiredResourceAccess"] = plan["required_resource_access"]
            app = self.graph.post("/applications", json=body)
            object_id = app["id"]
            if plan["new_keys"]:
                # Retried while the new application is not readable yet (404 right after the create).
                self._patch_keys(object_id, [], plan["new_keys"])
        else:
            app = raw["app"]
            object_id = app["id"]
            patch = dict(plan["patch"])
            if plan["keep_keys"] is not None:
                patch["keyCredentials"] = self._key_payload(object_id, plan["keep_keys"], plan["new_keys"])
            if patch:
                self.graph.patch("/applications/{0}".format(object_id), json=patch)
        app_id = app["appId"]

        # Wait until the application reads back as wanted, so the next step (and the next run) sees it.
        app = self._wait("application {0} to show the changes".format(app_id),
                         lambda: self._get_or_none("/applications/{0}".format(object_id),
                                                   params={"$select": APP_SELECT}),
                         lambda found: found is not None and self._app_matches(found, after, plan))

        sp = raw["sp"] if raw else None
        if sp is None:
            sp = self._retry_fresh("create the service principal of {0}".format(app_id),
                                   lambda: self.graph.post("/servicePrincipals", json={"appId": app_id}))
            sp = {"id": sp["id"], "appId": sp.get("appId", app_id), "displayName": sp.get("displayName")}
            self._wait("service principal of {0} to be readable".format(app_id),
                       lambda: self.service_principal(app_id), lambda found: found is not None)
        sp_id = sp["id"]

        if plan.get("wanted_owners") is not None:
            self._converge_owners(object_id, plan)

        for resource_id, role_id in plan["grant"]:
            body = {"principalId": sp_id, "resourceId": resource_id, "appRoleId": role_id}
            self._retry_fresh("grant {0}".format(self._pair_label(resource_id, role_id, "id")),
                              lambda body=body, rid=resource_id: self.graph.post(
                                  "/servicePrincipals/{0}/appRoleAssignedTo".format(rid), json=body))
        for assignment in plan["revoke"]:
            self._delete_tolerant("/servicePrincipals/{0}/appRoleAssignedTo/{1}".format(
                assignment["resourceId"], assignment["id"]))

        for definition in plan["assign_roles"]:
            body = {"principalId": sp_id, "roleDefinitionId": definition.get("templateId") or definition["id"],
                    "directoryScopeId": TENANT_SCOPE}
            self._retry_fresh("assign directory role '{0}'".format(definition.get("displayName")),
                              lambda body=body: self.graph.post("/roleManagement/directory/roleAssignments",
                                                                json=body))
        for assignment in plan["unassign_roles"]:
            self._delete_tolerant("/roleManagement/directory/roleAssignments/{0}".format(assignment["id"]))

        # Wait until everything reads back as planned, consistently: then the next run makes no write.
        expected = dict(after)

        def read_all():
            current = self._get_or_none("/applications/{0}".format(object_id), params={"$select": APP_SELECT})
            if current is None:
                return None
            return self.read_state(current)

        managed = plan["managed"]

        def settled(state):
            if state is None or state["sp"] is None:
                return False
            summary = self.summarize(state)
            # Only what the task manages: Entra may add things of its own (the creator as an owner).
            return all(summary.get(key) == expected.get(key) for key in managed)

        final = self._wait("application {0} to read back as configured".format(app_id), read_all, settled)
        if plan["create_app"] or "displayName" in plan["patch"]:
            # The next run looks the application up by name: wait until that lookup finds exactly it.
            name = after["display_name"]
            self._wait("application '{0}' to be found by name".format(name),
                       lambda: self._list("/applications", params={"$filter": odata.eq("displayName", name),
                                                                   "$select": "id,appId,displayName"}),
                       lambda found: [f["id"] for f in found if f.get("displayName") == name] == [object_id])
        return final

    def _converge_owners(self, object_id, plan):
        """Owners are read again here: Entra can make the identity that created the application an owner."""
        wanted = plan["wanted_owners"]
        current = dict((o["id"].lower(), o) for o in self._retry_fresh(
            "read the owners of application {0}".format(object_id), lambda: self.owners(object_id)))
        planned_removals = set(o["id"].lower() for o in plan["remove_owners"])
        directory_base = "{0}/directoryObjects/".format(self.graph_url)
        for key in sorted(set(wanted) - set(current)):
            owner = wanted[key]
            self._retry_fresh("add owner {0}".format(self.owner_label(owner)), lambda owner=owner: self.graph.post(
                "/applications/{0}/owners/$ref".format(object_id), json={"@odata.id": directory_base + owner["id"]}))
        for key in sorted(set(current) - set(wanted)):
            owner = current[key]
            if key not in planned_removals:
                self._change("remove owner {0}".format(self.owner_label(owner)))
            self._delete_tolerant("/applications/{0}/owners/{1}/$ref".format(object_id, owner["id"]))

    def _app_matches(self, app, after, plan):
        if after.get("display_name") and app.get("displayName") != after["display_name"]:
            return False
        if after.get("sign_in_audience") and app.get("signInAudience") != after["sign_in_audience"]:
            return False
        if plan.get("required_resource_access") is not None:
            wanted = set()
            for entry in plan["required_resource_access"]:
                for access in entry["resourceAccess"]:
                    if access["type"] == "Role":
                        wanted.add((entry["resourceAppId"].lower(), access["id"].lower()))
            if self.required_role_pairs(app) != wanted:
                return False
        return True

    def _key_payload(self, object_id, keep, new_certs):
        """The whole keyCredentials collection for PATCH (PATCH replaces it): the kept keys exactly as Graph has
        them (with their ``key``, read under ``$select=keyCredentials``), plus the new certificates."""
        if any(not c.get("key") for c in keep):
            # Graph returns ``key`` only when keyCredentials alone is selected on a single object; a credential
            # sent back without it is kept by its keyId.
            fresh = dict((c.get("keyId"), c) for c in self._read_key_credentials(object_id))
            keep = [fresh.get(c.get("keyId"), c) for c in keep]
        payload = []
        for cred in keep:
            item = dict((k, v) for k, v in cred.items() if v is not None and not k.startswith("@"))
            payload.append(item)
        payload.extend(cert.key_credential() for cert in new_certs)
        return payload

    def _patch_keys(self, object_id, keep, new_certs):
        payload = self._key_payload(object_id, keep, new_certs)
        self._retry_fresh("add the certificate(s) to application {0}".format(object_id),
                          lambda: self.graph.patch("/applications/{0}".format(object_id),
                                                   json={"keyCredentials": payload}))

    def _delete_tolerant(self, path):
        try:
            self.graph.delete(path)
        except GraphError as exc:
            if not exc.is_not_found:
                raise

    # ---------------------------------------------------------------- ensure absent

    def ensure_absent(self, params):
        app = self.find_application(app_id=params.get("app_id"),
                                    display_name=None if params.get("app_id") else params.get("display_name"))
        if app is None:
            before = {"state": "absent"}
            result = self.result_from(None, before)
            result["app_id"] = params.get("app_id")
            return False, result, {"before": before, "after": before}
        raw = self.read_state(app)
        before = self.summarize(raw)
        after = {"state": "absent"}
        result = self.result_from(raw, before)
        self._change("delete application '{0}' ({1}) and its service principal".format(
            app.get("displayName"), app["appId"]))
        if self.check_mode:
            return True, result, {"before": before, "after": after}
        object_id = app["id"]
        app_id = app["appId"]
        self._delete_tolerant("/applications/{0}".format(object_id))
        # Entra deletes the home tenant's service principal with its application; make sure of it, so no
        # enterprise application (and no consented permission or role assignment) is left behind.
        sp = self.service_principal(app_id)
        if sp is not None:
            self._delete_tolerant("/servicePrincipals/{0}".format(sp["id"]))
        self._wait("application {0} to be gone".format(app_id),
                   lambda: (self._get_or_none("/applications/{0}".format(object_id), params={"$select": "id"}),
                            self.service_principal(app_id)),
                   lambda found: found[0] is None and found[1] is None)
        if params.get("purge"):
            # The application is soft-deleted: wait until the deleted item is there, then delete it for good.
            self._wait("application {0} to show in deleted items".format(app_id),
                       lambda: self._get_or_none("/directory/deletedItems/{0}".format(object_id),
                                                 params={"$select": "id"}),
                       lambda found: found is not None)
            self._delete_tolerant("/directory/deletedItems/{0}".format(object_id))
            # Its service principal may be soft-deleted too (or already gone for good).
            sp_id = (sp or raw.get("sp") or {}).get("id")
            if sp_id and self._get_or_none("/directory/deletedItems/{0}".format(sp_id), params={"$select": "id"}):
                self._delete_tolerant("/directory/deletedItems/{0}".format(sp_id))
            self._change("purge application {0} from deleted items".format(app_id))
        name = app.get("displayName")
        if name:
            self._wait("application '{0}' to leave the name lookup".format(name),
                       lambda: self._list("/applications", params={"$filter": odata.eq("displayName", name),
                                                                   "$select": "id"}),
                       lambda found: object_id not in [f["id"] for f in found])
        return True, result, {"before": before, "after": after}

    # ---------------------------------------------------------------- info

    def describe(self, app_id=None, display_name=None, include_details=True):
        """Applications (one by app_id / display_name, or all, paged) with their service principal id,
        certificate thumbprints, requested and consented permissions by name, directory roles and owners."""
        if app_id:
            app = self.find_application(app_id=app_id)
            apps = [app] if app else []
        elif display_name:
            apps = self._list("/applications", params={"$filter": odata.eq("displayName", display_name),
                                                       "$select": APP_LIST_SELECT})
        else:
            apps = self._list("/applications", params={"$select": APP_LIST_SELECT})
        apps.sort(key=lambda a: ((a.get("displayName") or "").lower(), a.get("appId") or ""))
        result = []
        for app in apps:
            if include_details:
                raw = self.read_state(app)
            else:
                raw = {"app": app, "sp": None, "key_credentials": app.get("keyCredentials") or [],
                       "assignments": [], "role_assignments": [], "owners": []}
            summary = self.summarize(raw)
            item = self.result_from(raw, summary)
            item.pop("tenant_id", None)
            item["created_date_time"] = app.get("createdDateTime")
            item["certificates"] = [{
                "thumbprint": credential_thumbprint(c),
                "display_name": c.get("displayName"),
                "key_id": c.get("keyId"),
                "start_date_time": c.get("startDateTime"),
                "end_date_time": c.get("endDateTime"),
            } for c in raw["key_credentials"] if is_certificate_credential(c)]
            if not include_details:
                for key in ("service_principal_id", "granted_permissions", "directory_roles", "owners"):
                    item.pop(key, None)
            result.append(item)
        return result


# Options of the controller-side admin sign-in (doc fragment idsync.entra.admin_sign_in).
ADMIN_SIGN_IN_SPEC = dict(
    admin_sign_in=dict(type="str", choices=["credentials", "device_code"], default="credentials"),
    device_code_client_id=dict(type="str", default="14d82eec-204b-4c2f-b7e8-296a70dab67e"),
    device_code_timeout=dict(type="int", default=900),
)


def require_admin_token(module, module_name):
    """With admin_sign_in=device_code the action plugin must have signed in and passed ``access_token``."""
    if module.params["admin_sign_in"] == "device_code" and not module.params.get("access_token"):
        module.fail_json(msg="admin_sign_in=device_code runs on the controller, in the %s action plugin, which did "
                             "not run for this task: call the module by its name %s, or pass access_token."
                             % (module_name, module_name))
