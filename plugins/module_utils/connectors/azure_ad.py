# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``azure_ad`` connector: Microsoft Entra ID users and groups through Microsoft Graph v1.0.

Reads
    ``GET /users`` / ``GET /groups`` paged with ``$top=999`` and ``$select`` of only the attributes the workflow
    uses (``$expand=manager($select=id)`` when it uses the manager). Group members come from the initial round of
    ``/groups/delta`` (``members@delta`` lists every member), so a tenant's groups and all their members cost a
    handful of requests instead of one per group.
Delta (``delta: true``)
    ``/users/delta`` / ``/groups/delta`` from the delta link kept in the store, applied to a snapshot of the object
    set kept in the store (``graph_delta.py``). An expired link falls back to a full round and says so. The new link
    and snapshot are saved by ``commit_delta()``, which the engine calls only after the run applied its changes.
Writes
    JSON ``$batch`` (20 per envelope, ``max_in_flight`` envelopes at once, per-item 429 retried by the client).
    Creates return the ids that later reference writes need: ``PUT /users/{id}/manager/$ref``, members through
    ``PATCH /groups/{id}`` with ``members@odata.bind`` (20 per request) and ``DELETE .../members/{id}/$ref``. A
    write about an object created moments ago may 404 while Entra replicates it: those are retried with backoff.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import secrets
import string
import time

from ansible_collections.idsync.entra.plugins.module_utils import graph_limits
from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import (
    BOOLEAN, DATETIME, AttributeSpec, ChangeResult, Connector, ReadResult, Uniqueness, specs,
)
from ansible_collections.idsync.entra.plugins.module_utils.connectors.graph_delta import DeltaReader
from ansible_collections.idsync.entra.plugins.module_utils.connectors.graph_writer import (
    REPLICATION_RETRY_SECONDS, THROTTLE_TIMEOUT, GraphWriter,
)
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError

PAGE_SIZE = 999
MEMBERS_PER_REQUEST = 20

_S = "string"


USER_SCHEMA = specs([
    ("id", {"read_only": True, "case_insensitive": True}),
    ("accountEnabled", {"type": BOOLEAN, "required_on_create": True}),
    ("displayName", {"required_on_create": True}),
    ("mailNickname", {"required_on_create": True}),
    ("userPrincipalName", {"required_on_create": True}),
    ("passwordProfile", {"write_only": True, "required_on_create": True}),
    ("givenName",), ("surname",), ("jobTitle",), ("department",), ("companyName",), ("employeeId",),
    ("employeeType",), ("officeLocation",), ("city",), ("country",), ("state",), ("streetAddress",),
    ("postalCode",), ("usageLocation",), ("mobilePhone",), ("faxNumber",), ("preferredLanguage",), ("mail",),
    ("ageGroup",), ("consentProvidedForMinor",), ("userType",), ("passwordPolicies",),
    ("onPremisesImmutableId",), ("preferredDataLocation",), ("aboutMe",), ("mySite",),
    ("employeeHireDate", {"type": DATETIME}), ("employeeLeaveDateTime", {"type": DATETIME}),
    ("showInAddressList", {"type": BOOLEAN}),
    ("otherMails", {"multi_valued": True}),
    ("businessPhones", {"multi_valued": True, "ordered": True}),
    ("imAddresses", {"multi_valued": True, "read_only": True}),
    ("proxyAddresses", {"multi_valued": True, "read_only": True}),
    ("createdDateTime", {"read_only": True, "type": DATETIME}),
    ("onPremisesSyncEnabled", {"read_only": True, "type": BOOLEAN}),
    ("manager", {"reference": "user", "case_insensitive": True}),
])

GROUP_SCHEMA = specs([
    ("id", {"read_only": True, "case_insensitive": True}),
    ("displayName", {"required_on_create": True}),
    ("mailNickname", {"required_on_create": True}),
    ("mailEnabled", {"type": BOOLEAN, "required_on_create": True}),
    ("securityEnabled", {"type": BOOLEAN, "required_on_create": True}),
    ("description",), ("visibility",), ("classification",),
    ("groupTypes", {"multi_valued": True}),
    ("isAssignableToRole", {"type": BOOLEAN}),
    ("mail", {"read_only": True}),
    ("proxyAddresses", {"multi_valued": True, "read_only": True}),
    ("createdDateTime", {"read_only": True, "type": DATETIME}),
    ("members", {"reference": "user", "multi_valued": True, "case_insensitive": True}),
])

SCHEMAS = {"user": USER_SCHEMA, "group": GROUP_SCHEMA}
COLLECTIONS = {"user": "users", "group": "groups"}
REFERENCES = {"manager", "members"}
_EXTENSION_RE = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$")
_NICKNAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Schema(dict):
    """A schema that also knows directory extension attributes (``extension_<appId>_<name>``)."""

    def get(self, name, default=None):
        found = dict.get(self, name)
        if found is None and isinstance(name, str) and _EXTENSION_RE.match(name):
            return AttributeSpec(name)
        return found if found is not None else default

    def __contains__(self, name):
        return dict.__contains__(self, name) or (isinstance(name, str) and bool(_EXTENSION_RE.match(name)))


def generate_password(length=20):
    """A random password meeting Entra's complexity rules (upper, lower, digit, symbol); never stored or logged."""
    symbols = "!@#$%^&*-_=+?"
    pools = [string.ascii_uppercase, string.ascii_lowercase, string.digits, symbols]
    chars = [secrets.choice(pool) for pool in pools]
    alphabet = "".join(pools)
    chars += [secrets.choice(alphabet) for dummy in range(length - len(chars))]
    rng = secrets.SystemRandom()
    rng.shuffle(chars)
    return "".join(chars)


def mail_nickname(text):
    from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import strip_accents
    nickname = _NICKNAME_UNSAFE.sub("", strip_accents(text or "")).strip(".")
    return nickname[:64] or None


class AzureAdConnector(Connector):
    kind = "azure_ad"

    def __init__(self, record, context=None, graph=None):
        super(AzureAdConnector, self).__init__(record, context)
        self._graph = graph
        self.max_in_flight = int(self.context.get("max_in_flight") or 4)
        self._delta = None
        self._writer = None
        self.throttle_timeout = float(self.context.get("throttle_timeout") or THROTTLE_TIMEOUT)
        self.replication_retry_seconds = float(self.context.get("replication_retry_seconds")
                                               or REPLICATION_RETRY_SECONDS)
        self.sleep = self.context.get("sleep") or time.sleep
        self._domains = _MISSING
        self._ownership_unavailable = False

    @property
    def graph(self):
        if self._graph is None:
            from ansible_collections.idsync.entra.plugins.module_utils.connections import graph_client_for
            from ansible_collections.idsync.entra.plugins.module_utils.pacing import StoreBucket, WritePacer
            self._graph = graph_client_for(self.record, self.context.get("auth_overrides"))
            store = self.context.get("store")
            # One write budget per tenant and application, shared through the store by every run that uses it.
            bucket = StoreBucket(store.location, self.settings.get("tenant_id"), self.settings.get("application_id")) \
                if store is not None else None
            self._graph.pacer = WritePacer(bucket, sleep=self.sleep)
        return self._graph

    # -- description ----------------------------------------------------------------------------------------
    def object_types(self):
        return ["user", "group"]

    def schema(self, object_type):
        self.check_object_type(object_type)
        return Schema(SCHEMAS[object_type])

    def label_attributes(self, object_type):
        if object_type == "user":
            return ["userPrincipalName", "displayName", "mail"]
        return ["displayName", "mailNickname"]

    def supports(self, feature):
        return feature in ("password", "disable", "delta", "members")

    # -- values Graph refuses -------------------------------------------------------------------------------
    def uniqueness(self, object_type, attribute):
        """Entra compares sign-in names and addresses case-insensitively, and a userPrincipalName or mail may not
        equal any object's address (its proxyAddresses ``smtp:`` values), users' and groups' alike."""
        limit = graph_limits.MAX_LENGTH.get(object_type, {}).get(attribute)
        if object_type == "user" and attribute in ("userPrincipalName", "mail"):
            return Uniqueness(["userPrincipalName", "mail", "proxyAddresses"], {"group": ["mail", "proxyAddresses"]},
                              keys_of=_addresses, case_insensitive=True, max_length=limit,
                              local_max=graph_limits.UPN_LOCAL_MAX)
        if attribute == "mailNickname":
            return Uniqueness(["mailNickname"], case_insensitive=True, max_length=limit)
        return Uniqueness([attribute], max_length=limit)

    def _verified_domains(self):
        """The tenant's verified domains, read once and only when a userPrincipalName is about to be written (so a
        no-op run costs nothing more), through GET /organization (Organization.Read.All, which the connector needs
        anyway). None when they cannot be read: Graph still refuses a bad domain at write time."""
        if self._domains is _MISSING:
            self._domains = None
            try:
                organizations = self.graph.list("/organization", params={"$select": "verifiedDomains"})
            except GraphError as exc:
                if exc.status not in (401, 403):
                    raise
                return None
            names = set(d["name"].lower() for o in organizations for d in o.get("verifiedDomains") or []
                        if d.get("name"))
            self._domains = names or None
        return self._domains

    def check_values(self, object_type, attributes):
        domains = self._verified_domains() if object_type == "user" and attributes.get("userPrincipalName") else None
        problems = []
        for attribute, value in sorted(attributes.items()):
            problem = graph_limits.check(object_type, attribute, value, domains)
            if problem:
                problems.append((attribute, problem))
        return problems

    def disable_attributes(self, object_type):
        if object_type == "user":
            return {"accountEnabled": False}
        return None

    def ownership_attribute(self, object_type):
        """The directory extension the connection names (``ownership_attribute``, registered by the auto
        configuration role: ``extension_<appId>_idsyncWorkflow``) on users and groups, until a read finds that
        the tenant does not know it."""
        if object_type not in SCHEMAS or self._ownership_unavailable:
            return None
        return self.settings.get("ownership_attribute") or None

    def create_defaults(self, object_type):
        if object_type == "user":
            return ("mailNickname",)
        if object_type == "group":
            return ("mailNickname", "mailEnabled", "securityEnabled")
        return ()

    def prepare_create(self, object_type, attributes):
        attributes = dict(attributes)
        if object_type == "user":
            if not attributes.get("mailNickname") and attributes.get("userPrincipalName"):
                nickname = mail_nickname(str(attributes["userPrincipalName"]).split("@", 1)[0])
                if nickname:
                    attributes["mailNickname"] = nickname
        elif object_type == "group":
            kind = attributes.pop("groupType", None) or "security"
            if not attributes.get("mailNickname") and attributes.get("displayName"):
                nickname = mail_nickname(attributes["displayName"].replace(" ", "-"))
                if nickname:
                    attributes["mailNickname"] = nickname
            if kind == "microsoft365":
                attributes.setdefault("groupTypes", ("Unified",))
                attributes.setdefault("mailEnabled", True)
                attributes.setdefault("securityEnabled", False)
            else:
                attributes.setdefault("mailEnabled", False)
                attributes.setdefault("securityEnabled", True)
        return attributes

    # -- reading --------------------------------------------------------------------------------------------
    def _selected(self, object_type, attributes):
        schema = SCHEMAS[object_type]
        names = ["id"]
        for name in sorted(set(attributes)):
            spec = schema.get(name)
            if name == "id" or (spec is not None and spec.write_only):
                continue
            if spec is None and not _EXTENSION_RE.match(name):
                continue
            names.append(name)
        return names

    def _scope(self, object_type):
        return "delta:%s:%s:%s" % (self.context.get("workflow") or "-", self.name, object_type)

    def read(self, object_type, attributes, scope_filter=None, delta=False):
        mark = self.ownership_attribute(object_type)
        try:
            return self._read(object_type, attributes, scope_filter, delta)
        except GraphError as exc:
            if not mark or mark not in attributes or exc.status != 400 or mark.lower() not in (exc.message or "").lower():
                raise
        # The tenant does not know the extension: read without it, and stop marking objects this run.
        self._ownership_unavailable = True
        result = self._read(object_type, [a for a in attributes if a != mark], scope_filter, delta)
        result.notes.append("%s: the directory extension %s is not registered on the application, so this run "
                            "cannot mark or recognise the objects it manages from the directory (run the "
                            "idsync.entra.auto_configuration role to register it)" % (self.name, mark))
        return result

    def _read(self, object_type, attributes, scope_filter=None, delta=False):
        self.check_object_type(object_type)
        names = self._selected(object_type, attributes)
        if delta:
            if scope_filter:
                raise ConfigError("source.filter cannot be combined with delta: true (Graph's delta query does not "
                                  "take the same filters); filter with scope instead", option="source.filter")
            return self.delta.read(object_type, COLLECTIONS[object_type], names, self._scope(object_type))
        with_members = object_type == "group" and "members" in names
        if with_members:
            # The initial round of a delta query is the one list call that returns every member of every group.
            objects = self._filter_local(self.delta.initial(COLLECTIONS[object_type], names).objects, scope_filter)
            return ReadResult(objects, full=True, mode="full")
        return ReadResult(self._read_full(object_type, names, scope_filter), full=True, mode="full")

    def _filter_local(self, objects, scope_filter):
        if scope_filter:
            raise ConfigError("filter is not supported when reading group members", option="filter")
        return objects

    def _read_full(self, object_type, names, scope_filter=None):
        plain = [n for n in names if n not in REFERENCES]
        params = {"$select": ",".join(plain), "$top": PAGE_SIZE}
        if "manager" in names:
            params["$expand"] = "manager($select=id)"
        if scope_filter:
            params["$filter"] = scope_filter
            headers = {"ConsistencyLevel": "eventual"}
            params["$count"] = "true"
        else:
            headers = None
        objects = {}
        for item in self.graph.iter_items("/" + COLLECTIONS[object_type], params=params, headers=headers):
            obj = dict((n, item.get(n)) for n in plain)
            if "manager" in names:
                manager = item.get("manager")
                obj["manager"] = manager.get("id") if isinstance(manager, dict) else None
            objects[item["id"]] = obj
        return objects

    @property
    def delta(self):
        if self._delta is None:
            self._delta = DeltaReader(self.graph, self.context.get("store"), self.name)
        return self._delta

    def commit_delta(self):
        if self._delta is not None:
            self._delta.commit()

    # -- writing --------------------------------------------------------------------------------------------
    def _ref_url(self, oid):
        return "%s/directoryObjects/%s" % (self.graph.base_url, oid)

    def apply(self, object_type, changes):
        self.check_object_type(object_type)
        collection = COLLECTIONS[object_type]
        results = [None] * len(changes)
        errors = {}
        created = {}                      # change index -> new id
        requests = []                     # (change index, request, kind)

        # Round 1: creates, plain attribute updates, deletes, reference writes on existing objects.
        for index, change in enumerate(changes):
            if change.op == "create":
                body = dict((k, _graph_value(v)) for k, v in change.attributes.items() if k not in REFERENCES)
                if change.password:
                    body["passwordProfile"] = {
                        "password": generate_password(),
                        "forceChangePasswordNextSignIn": bool(change.options.get("force_change_password", True)),
                    }
                requests.append((index, {"method": "POST", "url": "/" + collection, "body": body}, "create"))
            elif change.op == "delete":
                requests.append((index, {"method": "DELETE", "url": "/%s/%s" % (collection, change.id)}, "delete"))
            elif change.op == "update":
                body = dict((k, _graph_value(v)) for k, v in change.attributes.items() if k not in REFERENCES)
                if body:
                    requests.append((index, {"method": "PATCH", "url": "/%s/%s" % (collection, change.id),
                                             "body": body}, "update"))
                requests.extend((index, req, kind) for req, kind in self._reference_requests(collection, change.id,
                                                                                             change))
            else:
                errors[index] = "unknown operation %s" % change.op
        outcome = self._run(requests, self._lookups(object_type, requests))
        conflicts = {}
        for position, (index, request, kind) in enumerate(requests):
            if outcome.errors[position] is not None:
                errors.setdefault(index, outcome.errors[position])
                if position in outcome.conflicts:
                    conflicts[index] = outcome.conflicts[position]
            elif kind == "create":
                created[index] = outcome.created[position]
        # Round 2: reference writes of the objects created in round 1 (their ids are known only now).
        follow = []
        for index, new_id in created.items():
            change = changes[index]
            follow.extend((index, req, kind) for req, kind in self._reference_requests(collection, new_id, change))
        if follow:
            second = self._run(follow)
            for (index, request, kind), error in zip(follow, second.errors):
                if error is not None:
                    errors.setdefault(index, error)
        for index, change in enumerate(changes):
            if index in errors:
                results[index] = ChangeResult(change.key, False, id=created.get(index) or change.id,
                                              error=errors[index], conflict=conflicts.get(index))
            else:
                results[index] = ChangeResult(change.key, True, id=created.get(index) or change.id)
        return results

    @staticmethod
    def _lookups(object_type, requests):
        """How to find what each create made if its answer is lost: a user by its userPrincipalName (unique in the
        directory), a group by its mailNickname."""
        attribute, unique = ("userPrincipalName", True) if object_type == "user" else ("mailNickname", False)
        out = {}
        for position, (_index, request, kind) in enumerate(requests):
            value = (request.get("body") or {}).get(attribute) if kind == "create" else None
            if value:
                out[position] = (attribute, value, unique)
        return out

    @property
    def writer(self):
        if self._writer is None:
            self._writer = GraphWriter(self.graph, self.max_in_flight, self.sleep, self.throttle_timeout,
                                       self.replication_retry_seconds, progress=self.context.get("progress"))
        return self._writer

    def _run(self, requests, lookups=None):
        return self.writer.run(requests, lookups, benign=self._benign, describe=_sentence)

    def _reference_requests(self, collection, oid, change):
        out = []
        manager = change.attributes.get("manager", _MISSING) if "manager" in change.attributes else _MISSING
        if manager is not _MISSING:
            if manager in (None, "", []):
                out.append(({"method": "DELETE", "url": "/%s/%s/manager/$ref" % (collection, oid)}, "manager-remove"))
            else:
                out.append(({"method": "PUT", "url": "/%s/%s/manager/$ref" % (collection, oid),
                             "body": {"@odata.id": self._ref_url(_ref_id(manager))}}, "manager"))
        members = change.member_changes.get("members")
        if members is None and "members" in change.attributes and change.op == "create":
            members = {"add": change.attributes.get("members") or [], "remove": []}
        if members:
            add = [_ref_id(m) for m in members.get("add") or []]
            for start in range(0, len(add), MEMBERS_PER_REQUEST):
                chunk = add[start:start + MEMBERS_PER_REQUEST]
                out.append(({"method": "PATCH", "url": "/%s/%s" % (collection, oid),
                             "body": {"members@odata.bind": [self._ref_url(m) for m in chunk]}},
                            "members-add:%d" % len(chunk)))
            for member in members.get("remove") or []:
                url = "/%s/%s/members/%s/$ref" % (collection, oid, _ref_id(member))
                out.append(({"method": "DELETE", "url": url}, "members-remove"))
        return out

    @staticmethod
    def _benign(kind, error):
        if error is None:
            return False
        if kind in ("delete", "members-remove", "manager-remove") and error.is_not_found:
            return True               # already gone: the desired state holds
        return False

    def stats(self):
        if self._graph is None:
            return {}
        out = dict(self._graph.stats)
        if self._writer is not None:
            out.update(self._writer.stats)
        pacer = getattr(self._graph, "pacer", None)
        if pacer is not None and pacer.waited_s:
            out["paced_wait_seconds"] = round(pacer.waited_s, 1)
        return out

    def close(self):
        if self._graph is not None:
            bucket = getattr(getattr(self._graph, "pacer", None), "bucket", None)
            if hasattr(bucket, "close"):
                bucket.close()
            close = getattr(getattr(self._graph, "session", None), "close", None)
            if callable(close):
                close()


_MISSING = object()


def _addresses(obj):
    """Every address an Entra object occupies: its sign-in name, its mail and its proxyAddresses' smtp values."""
    out = [obj.get("userPrincipalName"), obj.get("mail")]
    for address in obj.get("proxyAddresses") or []:
        if isinstance(address, str) and address.lower().startswith("smtp:"):
            out.append(address[5:])
    return out


def _ref_id(value):
    if isinstance(value, dict):
        return value.get("id")
    return str(value)


def _graph_value(value):
    if isinstance(value, tuple):
        return list(value)
    return value


def _sentence(kind, error):
    if error is None:
        return "%s failed without an answer" % kind
    what = {
        "create": "create", "update": "update", "delete": "delete", "manager": "setting the manager",
        "manager-remove": "removing the manager", "members-remove": "removing a member",
    }.get(kind.split(":")[0], "adding members")
    message = error.message or error.code
    text = "%s failed: %s %s: %s" % (what, error.status, error.code, message)
    if error.request_id:
        text += " (request-id %s)" % error.request_id
    return text
