"""Tenant state of the emulator: directory objects, their links, and a change log for delta queries.

Records are plain JSON-serialisable dicts holding Graph property values; keys starting with '_' are internal
(`_seq` list position, `_created_at` for replication delay, `_secret` of a password credential) and are never
rendered. Business rules and Graph error shapes live in the graph_* modules; this module only keeps state
consistent and indexed so that every lookup is O(1) and every page or delta call is O(page) / O(changes).
"""
import bisect
import contextlib
import gc
import hmac
import re
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone

from directory_records import (ROLE_TEMPLATE_BY_ID, TENANT_EPOCH, b64url, first_party_service_principal, guid_bytes,
                               iso_now, new_application_record, new_domain_record, new_service_principal_record,
                               new_user_record, parse_iso, smtp_addresses, stable_id)
from graph_catalog import EXCHANGE_APP_ID, FIRST_PARTY_SERVICE_PRINCIPALS, GLOBAL_ADMINISTRATOR, GRAPH_APP_ID

__all__ = ["Directory", "GRAPH_APP_ID", "EXCHANGE_APP_ID"]

KINDS = ("user", "group", "application", "servicePrincipal")
STATE_VERSION = 1
DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class OrderedIds:
    """Ids in creation order with O(log n) resume: list pages are cut at a sequence number, not an offset,
    so deletions between two page requests neither skip nor repeat objects."""

    def __init__(self):
        self.seqs = []
        self.ids = []
        self.dead = 0

    def append(self, seq, object_id):
        self.seqs.append(seq)
        self.ids.append(object_id)

    def iter_after(self, seq, live):
        start = bisect.bisect_right(self.seqs, seq)
        ids, seqs = self.ids, self.seqs
        for index in range(start, len(ids)):
            record = live.get(ids[index])
            if record is not None and record["_seq"] == seqs[index]:
                yield record

    def compact(self, live):
        keep = [(s, i) for s, i in zip(self.seqs, self.ids) if i in live and live[i]["_seq"] == s]
        self.seqs = [s for s, _ in keep]
        self.ids = [i for _, i in keep]
        self.dead = 0


class Directory:
    def __init__(self, tenant_id: str, domain: str, display_name: str):
        self.tenant_id = tenant_id
        self.domain = domain.lower()
        self.display_name = display_name
        self.lock = threading.RLock()
        self.settings = {"replication_delay_ms": 0, "delta_token_ttl_s": None}
        self._reset_state()
        self.domains = self._initial_domains()
        self._add_first_party_service_principals()

    # ------------------------------------------------------------------ state and indexes
    def _reset_state(self):
        self.extension_index = None   # directory extension properties, rebuilt by graph_extensions on first use
        self.objects = {kind: {} for kind in KINDS}
        self.order = {kind: OrderedIds() for kind in KINDS}
        self.kind_by_id = {}
        self.user_by_upn = {}
        self.app_by_app_id = {}
        self.app_by_unique_name = {}
        self.sp_by_app_id = {}
        self.members = {}       # group id -> {member id: None} (insertion ordered)
        self.member_of = {}     # object id -> {group id: None}
        self.owners = {}        # group/application/servicePrincipal id -> {owner id: None}
        self.owned = {}         # owner id -> {object id: None}
        self.manager_of = {}    # user id -> manager id
        self.reports = {}       # manager id -> {user id: None}
        self.assignments = {}   # appRoleAssignment id -> record
        self.assignments_by_resource = {}
        self.assignments_by_principal = {}
        self.role_assignments = {}
        self.directory_roles = {}
        self.deleted = {}       # id -> {"kind", "record", "memberOf"} of soft-deleted objects
        self.address_owner = {}  # lower-case SMTP address (mail, smtp: proxy) -> id of the live or deleted holder
        self.changes = []       # delta change log; a change's sequence number is its index
        self.delta_epoch = 0
        self.next_seq = 0
        self.generated = 0

    @property
    def users(self):
        return self.objects["user"]

    @property
    def groups(self):
        return self.objects["group"]

    @property
    def applications(self):
        return self.objects["application"]

    @property
    def service_principals(self):
        return self.objects["servicePrincipal"]

    # ------------------------------------------------------------------ domains
    def _initial_domains(self):
        return {self.domain: new_domain_record(self.domain, verified=True, default=True, initial=True)}

    def add_domain(self, name, verified=True, default=False, authentication_type="Managed"):
        """A domain of the tenant (the admin API and seeds add them; Graph's own domain API is not emulated)."""
        name = str(name or "").strip().lower()
        if not DOMAIN_NAME.match(name):
            raise ValueError(f"'{name}' is not a domain name")
        if name in self.domains:
            raise ValueError(f"the tenant already has the domain '{name}'")
        if authentication_type not in ("Managed", "Federated"):
            raise ValueError("'authenticationType' must be Managed or Federated")
        if default:
            if not verified:
                raise ValueError("only a verified domain can be the default domain")
            for domain in self.domains.values():
                domain["isDefault"] = False
        self.domains[name] = new_domain_record(name, verified, default, False, authentication_type)
        return self.domains[name]

    def remove_domain(self, name):
        domain = self.domains.get(str(name).lower())
        if domain is None:
            raise LookupError(f"the tenant has no domain '{name}'")
        if domain["isInitial"] or domain["isDefault"]:
            raise ValueError("the initial and the default domain cannot be removed")
        del self.domains[domain["id"]]

    def default_domain(self):
        return next(name for name, domain in self.domains.items() if domain["isDefault"])

    def verified_domains(self):
        """Learn "organization resource type", verifiedDomains: capabilities, isDefault, isInitial, name, type."""
        return [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": d["isDefault"],
                 "isInitial": d["isInitial"], "name": d["id"], "type": d["authenticationType"]}
                for d in self.domains.values() if d["isVerified"]]

    def is_verified_domain(self, name):
        domain = self.domains.get(str(name).lower())
        return bool(domain and domain["isVerified"])

    # ------------------------------------------------------------------ SMTP addresses (unique across objects)
    def address_holder(self, address):
        """Id of the user or group (live or soft-deleted) whose mail or smtp proxy address this is, else None."""
        return self.address_owner.get(str(address).lower())

    def set_proxy_addresses(self, object_id, addresses):
        kind, record = self.find(object_id)
        if kind not in ("user", "group"):
            raise LookupError(f"no user or group '{object_id}'")
        self.update(kind, object_id, {"proxyAddresses": list(addresses)})

    def _index_addresses(self, record):
        for address in smtp_addresses(record):
            self.address_owner[address] = record["id"]

    def _unindex_addresses(self, record):
        for address in smtp_addresses(record):
            if self.address_owner.get(address) == record["id"]:
                del self.address_owner[address]

    # ------------------------------------------------------------------ replication delay
    def is_replicating(self, record):
        """True while a new object has not reached every replica (Learn: "Eventual consistency" in directory
        objects; clients see 404 on reads right after a create). Only objects created through the API have a
        creation time; seeded ones are everywhere already."""
        delay = self.settings.get("replication_delay_ms") or 0
        created = record.get("_created_at")
        return bool(delay and created and (time.time() - created) * 1000 < delay)

    # ------------------------------------------------------------------ lookups
    def get(self, kind, object_id):
        return self.objects[kind].get(object_id)

    def find(self, object_id):
        """(kind, record) of a live directory object of any kind, or (None, None)."""
        kind = self.kind_by_id.get(object_id)
        if kind is None:
            return None, None
        return kind, self.objects[kind][object_id]

    def user_by_name(self, upn):
        user_id = self.user_by_upn.get(upn.lower())
        return self.users.get(user_id) if user_id else None

    def application_by_app_id(self, app_id):
        object_id = self.app_by_app_id.get(str(app_id).lower())
        return self.applications.get(object_id) if object_id else None

    def application_by_unique_name(self, unique_name):
        object_id = self.app_by_unique_name.get(unique_name.lower())
        return self.applications.get(object_id) if object_id else None

    def service_principal_by_app_id(self, app_id):
        object_id = self.sp_by_app_id.get(str(app_id).lower())
        return self.service_principals.get(object_id) if object_id else None

    def service_principal_id(self, app_id):
        sp = self.service_principal_by_app_id(app_id)
        return sp["id"] if sp else None

    def iter_kind(self, kind, after_seq=-1):
        return self.order[kind].iter_after(after_seq, self.objects[kind])

    def user_count(self):
        return len(self.users)

    # ------------------------------------------------------------------ credentials (seam for identity.py)
    def check_client_secret(self, app_id, secret):
        app = self.application_by_app_id(app_id)
        if not app or not isinstance(secret, str):
            return False
        now = datetime.now(timezone.utc)
        for credential in app.get("passwordCredentials") or []:
            stored = credential.get("_secret") or ""
            if hmac.compare_digest(stored.encode(), secret.encode()) and _within_validity(credential, now):
                return True
        return False

    def authenticate_user(self, username, password):
        user = self.user_by_name(username or "")
        if not user or not user.get("accountEnabled") or not isinstance(password, str):
            return None
        stored = user.get("_password") or ""
        return user if hmac.compare_digest(stored.encode(), password.encode()) else None

    def app_roles_granted(self, app_id, resource_app_id=GRAPH_APP_ID):
        client = self.service_principal_by_app_id(app_id)
        resource = self.service_principal_by_app_id(resource_app_id)
        if not client or not resource:
            return []
        values = {role["id"]: role["value"] for role in resource.get("appRoles") or []}
        granted = []
        for assignment_id in self.assignments_by_principal.get(client["id"], {}):
            assignment = self.assignments[assignment_id]
            if assignment["resourceId"] == resource["id"] and assignment["appRoleId"] in values:
                granted.append(values[assignment["appRoleId"]])
        return sorted(set(granted))

    def user_directory_role_template_ids(self, user_id):
        principals = {user_id, *self.member_of.get(user_id, {})}
        return sorted({a["roleDefinitionId"] for a in self.role_assignments.values()
                       if a["principalId"] in principals and a["directoryScopeId"] == "/"})

    # ------------------------------------------------------------------ create / update / delete
    def new_id(self):
        return str(uuid.uuid4())

    def add(self, kind, record, *, replicating=True, log=True):
        """Store a new object. `replicating=False` for objects seeded by the admin API or bootstrap."""
        record["_seq"] = self.next_seq
        self.next_seq += 1
        if replicating:
            record["_created_at"] = time.time()
        object_id = record["id"]
        self.objects[kind][object_id] = record
        self.order[kind].append(record["_seq"], object_id)
        self.kind_by_id[object_id] = kind
        self._index(kind, record)
        if log:
            self._log(kind, object_id, "created")
        return record

    def update(self, kind, object_id, values):
        record = self.objects[kind][object_id]
        self._unindex(kind, record)
        record.update(values)
        self._index(kind, record)
        self._log(kind, object_id, tuple(sorted(values)))
        return record

    def _index(self, kind, record):
        if kind in ("user", "group"):
            self._index_addresses(record)
        if kind == "user" and record.get("userPrincipalName"):
            self.user_by_upn[record["userPrincipalName"].lower()] = record["id"]
        elif kind == "application":
            self.app_by_app_id[record["appId"].lower()] = record["id"]
            if record.get("uniqueName"):
                self.app_by_unique_name[record["uniqueName"].lower()] = record["id"]
        elif kind == "servicePrincipal":
            self.sp_by_app_id[record["appId"].lower()] = record["id"]

    def _unindex(self, kind, record):
        if kind in ("user", "group"):
            self._unindex_addresses(record)
        if kind == "user" and record.get("userPrincipalName"):
            self.user_by_upn.pop(record["userPrincipalName"].lower(), None)
        elif kind == "application":
            self.app_by_app_id.pop(record["appId"].lower(), None)
            if record.get("uniqueName"):
                self.app_by_unique_name.pop(record["uniqueName"].lower(), None)
        elif kind == "servicePrincipal":
            self.sp_by_app_id.pop(record["appId"].lower(), None)

    def _detach(self, kind, object_id):
        """Remove an object from every link, then from the live stores; returns the record and its group
        memberships (links go first so change log entries still know the member's kind)."""
        member_of = list(self.member_of.get(object_id, {}))
        for group_id in member_of:
            self.remove_member(group_id, object_id)
        for member_id in list(self.members.get(object_id, {})):
            self.remove_member(object_id, member_id)
        for owned_id in list(self.owned.get(object_id, {})):
            self.remove_owner(owned_id, object_id)
        for owner_id in list(self.owners.get(object_id, {})):
            self.remove_owner(object_id, owner_id)
        if object_id in self.manager_of:
            self.remove_manager(object_id)
        for report_id in list(self.reports.get(object_id, {})):
            self.remove_manager(report_id)
        for assignment_id in list(self.assignments_by_principal.get(object_id, {})):
            self.remove_app_role_assignment(assignment_id)
        for assignment_id in list(self.assignments_by_resource.get(object_id, {})):
            self.remove_app_role_assignment(assignment_id)
        for role_assignment_id in [i for i, a in self.role_assignments.items() if a["principalId"] == object_id]:
            del self.role_assignments[role_assignment_id]
        record = self.objects[kind].pop(object_id)
        self.kind_by_id.pop(object_id, None)
        self._unindex(kind, record)
        order = self.order[kind]
        order.dead += 1
        if order.dead > 1000 and order.dead * 2 > len(order.ids):
            order.compact(self.objects[kind])
        return record, member_of

    def soft_delete(self, kind, object_id):
        """Learn: "Delete user" / "Delete group" / "Delete application": the object moves to deletedItems and can
        be restored for 30 days."""
        record, member_of = self._detach(kind, object_id)
        record["deletedDateTime"] = iso_now()
        self.deleted[object_id] = {"kind": kind, "record": record, "memberOf": member_of}
        if kind in ("user", "group"):
            self._index_addresses(record)  # a deleted object keeps its addresses until it is purged
        self._log(kind, object_id, "softDeleted")
        return record

    def hard_delete(self, kind, object_id):
        self._detach(kind, object_id)
        self._log(kind, object_id, "hardDeleted")

    def restore(self, object_id):
        """Learn: "Restore deleted item": the object returns with its group memberships."""
        entry = self.deleted.pop(object_id)
        record = entry["record"]
        record["deletedDateTime"] = None
        record.pop("_created_at", None)
        self.add(entry["kind"], record, replicating=False, log=False)
        for group_id in entry["memberOf"]:
            if group_id in self.groups:
                self.add_member(group_id, object_id)
        self._log(entry["kind"], object_id, "restored")
        return entry["kind"], record

    def purge(self, object_id):
        entry = self.deleted.pop(object_id)
        self._unindex_addresses(entry["record"])
        self._log(entry["kind"], object_id, "hardDeleted")
        return entry

    # ------------------------------------------------------------------ links
    def add_member(self, group_id, member_id):
        self.members.setdefault(group_id, {})[member_id] = None
        self.member_of.setdefault(member_id, {})[group_id] = None
        self._log("group", group_id, ("member+", member_id, self.kind_of_any(member_id)))

    def remove_member(self, group_id, member_id):
        kind = self.kind_of_any(member_id)
        self.members.get(group_id, {}).pop(member_id, None)
        self.member_of.get(member_id, {}).pop(group_id, None)
        self._log("group", group_id, ("member-", member_id, kind))

    def kind_of_any(self, object_id):
        kind = self.kind_by_id.get(object_id)
        if kind is None and object_id in self.deleted:
            kind = self.deleted[object_id]["kind"]
        return kind or "directoryObject"

    def add_owner(self, object_id, owner_id):
        self.owners.setdefault(object_id, {})[owner_id] = None
        self.owned.setdefault(owner_id, {})[object_id] = None

    def remove_owner(self, object_id, owner_id):
        self.owners.get(object_id, {}).pop(owner_id, None)
        self.owned.get(owner_id, {}).pop(object_id, None)

    def set_manager(self, user_id, manager_id):
        if user_id in self.manager_of:
            self.reports.get(self.manager_of[user_id], {}).pop(user_id, None)
        self.manager_of[user_id] = manager_id
        self.reports.setdefault(manager_id, {})[user_id] = None
        self._log("user", user_id, ("manager",))

    def remove_manager(self, user_id):
        manager_id = self.manager_of.pop(user_id, None)
        if manager_id:
            self.reports.get(manager_id, {}).pop(user_id, None)
            self._log("user", user_id, ("manager",))

    def add_app_role_assignment(self, record):
        self.assignments[record["id"]] = record
        self.assignments_by_resource.setdefault(record["resourceId"], {})[record["id"]] = None
        self.assignments_by_principal.setdefault(record["principalId"], {})[record["id"]] = None
        return record

    def remove_app_role_assignment(self, assignment_id):
        record = self.assignments.pop(assignment_id)
        self.assignments_by_resource.get(record["resourceId"], {}).pop(assignment_id, None)
        self.assignments_by_principal.get(record["principalId"], {}).pop(assignment_id, None)
        return record

    def new_app_role_assignment(self, principal, principal_type, resource, app_role_id):
        """Learn: appRoleAssignment ids are opaque strings, not GUIDs; Graph's start with the principal id."""
        assignment_id = b64url(guid_bytes(principal["id"]) + secrets.token_bytes(16))
        return self.add_app_role_assignment({
            "id": assignment_id, "deletedDateTime": None, "appRoleId": app_role_id, "createdDateTime": iso_now(),
            "principalDisplayName": principal.get("displayName"), "principalId": principal["id"],
            "principalType": principal_type, "resourceDisplayName": resource.get("displayName"),
            "resourceId": resource["id"],
        })

    def add_role_assignment(self, principal_id, role_definition_id, directory_scope_id="/"):
        """unifiedRoleAssignment; Graph's ids are base64url(roleDefinitionId + principalId) + '-1'."""
        assignment_id = b64url(guid_bytes(role_definition_id) + guid_bytes(principal_id)) + "-1"
        record = {"id": assignment_id, "principalId": principal_id, "roleDefinitionId": role_definition_id,
                  "directoryScopeId": directory_scope_id}
        self.role_assignments[assignment_id] = record
        self.activate_directory_role(role_definition_id)
        return record

    def activate_directory_role(self, template_id):
        """Learn: "directoryRole resource type": a role appears under /directoryRoles once activated, which
        assigning it does implicitly."""
        for role in self.directory_roles.values():
            if role["roleTemplateId"] == template_id:
                return role
        template = ROLE_TEMPLATE_BY_ID[template_id]
        role_id = stable_id(self.tenant_id, "directoryRole:" + template_id)
        role = {"id": role_id, "deletedDateTime": None, "description": template["description"],
                "displayName": template["displayName"], "roleTemplateId": template_id}
        self.directory_roles[role_id] = role
        return role

    # ------------------------------------------------------------------ change log (delta)
    def _log(self, kind, object_id, detail):
        if kind in ("user", "group"):
            self.changes.append((kind, object_id, detail))

    def change_seq(self):
        return len(self.changes)

    def expire_delta_tokens(self):
        self.delta_epoch += 1

    # ------------------------------------------------------------------ first-party apps and bootstrap
    def _add_first_party_service_principals(self, only_missing=False):
        """Microsoft Graph and Exchange Online exist in every tenant (a hand-written state may leave them out)."""
        for spec in FIRST_PARTY_SERVICE_PRINCIPALS:
            if only_missing and self.service_principal_by_app_id(spec["appId"]):
                continue
            self.add("servicePrincipal", first_party_service_principal(self.tenant_id, spec),
                     replicating=False, log=False)

    def bootstrap_admin(self, client_id, client_secret, username, password):
        """The admin application (consented to every app role of Microsoft Graph and Exchange Online) and a
        Global Administrator user. Ids derive from the arguments so a restart with the same seed is identical."""
        def stable(name):
            return stable_id(self.tenant_id, f"{name}:{client_id}:{username}")

        app = self.add("application", new_application_record(
            stable("application"), client_id, "idsync emulator admin", self.domain, created=TENANT_EPOCH),
            replicating=False, log=False)
        app["passwordCredentials"] = [{
            "customKeyIdentifier": None, "displayName": "bootstrap", "endDateTime": "2299-12-31T00:00:00Z",
            "hint": client_secret[:3], "keyId": stable("secret"), "secretText": None,
            "startDateTime": TENANT_EPOCH, "_secret": client_secret}]
        sp = self.add("servicePrincipal", new_service_principal_record(stable("servicePrincipal"), app, self.tenant_id),
                      replicating=False, log=False)
        for resource_app_id in (GRAPH_APP_ID, EXCHANGE_APP_ID):
            resource = self.service_principal_by_app_id(resource_app_id)
            for role in resource["appRoles"]:
                record = self.new_app_role_assignment(sp, "ServicePrincipal", resource, role["id"])
                record["createdDateTime"] = TENANT_EPOCH
        user = self.add("user", new_user_record(stable("user"), {
            "accountEnabled": True, "displayName": "Emulator Administrator", "givenName": "Emulator",
            "surname": "Administrator", "userPrincipalName": username, "mailNickname": username.split("@")[0],
            "mail": username, "usageLocation": "US"}, created=TENANT_EPOCH), replicating=False, log=False)
        user["_password"] = password
        self.add_role_assignment(user["id"], GLOBAL_ADMINISTRATOR)

    # ------------------------------------------------------------------ bulk loading (directory_synthetic.py)
    def add_seeded(self, kind, records):
        """Bulk version of add() for generated objects: no replication window, one change log entry each."""
        store, order, kinds, changes = self.objects[kind], self.order[kind], self.kind_by_id, self.changes
        for record in records:
            record["_seq"] = self.next_seq
            self.next_seq += 1
            store[record["id"]] = record
            order.append(record["_seq"], record["id"])
            kinds[record["id"]] = kind
            self._index(kind, record)
            changes.append((kind, record["id"], "created"))

    def link_manager(self, user_id, manager_id):
        self.manager_of[user_id] = manager_id
        self.reports.setdefault(manager_id, {})[user_id] = None

    # ------------------------------------------------------------------ persistence
    def dump(self) -> dict:
        with self.lock:
            return {
                "version": STATE_VERSION, "tenantId": self.tenant_id, "domain": self.domain,
                "domains": list(self.domains.values()),
                "displayName": self.display_name, "settings": dict(self.settings),
                "objects": {kind: list(store.values()) for kind, store in self.objects.items()},
                "members": {k: list(v) for k, v in self.members.items() if v},
                "owners": {k: list(v) for k, v in self.owners.items() if v},
                "managerOf": dict(self.manager_of),
                "appRoleAssignments": list(self.assignments.values()),
                "roleAssignments": list(self.role_assignments.values()),
                "directoryRoles": list(self.directory_roles.values()),
                "deleted": self.deleted, "changes": [list(c) for c in self.changes],
                "deltaEpoch": self.delta_epoch, "nextSeq": self.next_seq, "generated": self.generated,
            }

    def load(self, state: dict) -> None:
        if state.get("version", STATE_VERSION) != STATE_VERSION:
            raise ValueError(f"unsupported state version {state.get('version')!r}")
        with self.lock, gc_paused():
            self._reset_state()
            self.tenant_id = state.get("tenantId", self.tenant_id)
            self.domain = state.get("domain", self.domain)
            self.domains = self._initial_domains()
            for domain in state.get("domains") or []:
                self.load_domain(domain)
            self.display_name = state.get("displayName", self.display_name)
            self.settings.update(state.get("settings") or {})
            for kind in KINDS:
                for record in sorted(state["objects"].get(kind, []), key=lambda r: r["_seq"]):
                    self.objects[kind][record["id"]] = record
                    self.order[kind].append(record["_seq"], record["id"])
                    self.kind_by_id[record["id"]] = kind
                    self._index(kind, record)
            for group_id, member_ids in state.get("members", {}).items():
                for member_id in member_ids:
                    self.members.setdefault(group_id, {})[member_id] = None
                    self.member_of.setdefault(member_id, {})[group_id] = None
            for object_id, owner_ids in state.get("owners", {}).items():
                for owner_id in owner_ids:
                    self.add_owner(object_id, owner_id)
            for user_id, manager_id in state.get("managerOf", {}).items():
                self.link_manager(user_id, manager_id)
            for record in state.get("appRoleAssignments", []):
                self.add_app_role_assignment(record)
            self.role_assignments = {r["id"]: r for r in state.get("roleAssignments", [])}
            self.directory_roles = {r["id"]: r for r in state.get("directoryRoles", [])}
            self.deleted = state.get("deleted", {})
            for entry in self.deleted.values():
                if entry["kind"] in ("user", "group"):
                    self._index_addresses(entry["record"])
            self.changes = [_change_from_json(c) for c in state.get("changes", [])]
            self.delta_epoch = state.get("deltaEpoch", 0)
            self.next_seq = max(state.get("nextSeq", 0), self.next_seq_after_load())
            self.generated = state.get("generated", 0)
            self._add_first_party_service_principals(only_missing=True)

    def load_domain(self, domain):
        """A domain record of a dump (`id`) or of a hand-written seed (`name`), with Graph's property names."""
        name = str(domain.get("id") or domain.get("name") or "").lower()
        if name in self.domains:
            self.domains[name].update({k: v for k, v in domain.items() if k in self.domains[name] and k != "id"})
            return
        self.add_domain(name, verified=domain.get("isVerified", True), default=domain.get("isDefault", False),
                        authentication_type=domain.get("authenticationType", "Managed"))

    def next_seq_after_load(self):
        return 1 + max((r["_seq"] for store in self.objects.values() for r in store.values()), default=-1)


# ---------------------------------------------------------------------- record factories
def _within_validity(credential, now):
    try:
        start = parse_iso(credential.get("startDateTime") or TENANT_EPOCH)
        end = parse_iso(credential.get("endDateTime") or "2299-12-31T00:00:00Z")
    except ValueError:
        return False
    return start <= now <= end


@contextlib.contextmanager
def gc_paused():
    """Bulk loads allocate hundreds of thousands of dicts that all survive; the cyclic GC would rescan them over
    and over for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _change_from_json(change):
    kind, object_id, detail = change
    return kind, object_id, tuple(detail) if isinstance(detail, list) else detail
