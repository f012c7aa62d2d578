# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``microsoft_365`` connector: Exchange Online recipients through the ExchangeOnlineManagement cmdlets.

Object types and attributes: ``exchange_types.py`` (docs/microsoft_365.md lists them with their cmdlets). The wire:
``exchange.py`` (admin REST ``InvokeCommand``).

Reads
    ``Get-<noun> -ResultSize Unlimited`` with ``$select`` of the properties in use, 1,000 per page. Group members
    cost one ``Get-DistributionGroupMember`` per group (Exchange has no bulk form), run ``max_in_flight`` at a time.
    No delta: every run reads everything (Exchange Online offers no change tracking for recipients).
Writes
    One cmdlet per object and change, ``max_in_flight`` objects at a time: ``New-<noun>`` (with the parameters it
    takes) then ``Set-<noun>`` for the rest; ``Set-<noun>`` with only the changed parameters; ``EmailAddresses`` as
    ``@{Add=...; Remove=...}`` so other addresses and the primary are kept; members one by one with
    ``Add-``/``Remove-DistributionGroupMember`` (never ``Update-DistributionGroupMember``, which replaces the whole
    list). A member already there, or already gone, or an object already deleted, counts as done.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import ChangeResult, Connector, ReadResult
from ansible_collections.idsync.entra.plugins.module_utils.connectors.exchange_types import (
    OBJECT_TYPES, address_difference, bad_addresses, read_value, split_addresses,
)
from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError

HIDDEN = "HiddenFromAddressListsEnabled"
# An answer about the whole connection (sign-in, permissions, roles): the run stops instead of failing each object.
CONNECTION_STATUSES = (401, 403)


class Microsoft365Connector(Connector):
    kind = "microsoft_365"

    def __init__(self, record, context=None, client=None):
        super(Microsoft365Connector, self).__init__(record, context)
        self._client = client
        self.max_in_flight = max(1, int(self.context.get("max_in_flight") or 4))
        self._addresses = {}              # (object type, id) -> (primary, [secondary addresses]) as last read
        self._lock = threading.Lock()

    @property
    def client(self):
        if self._client is None:
            from ansible_collections.idsync.entra.plugins.module_utils.exchange import exchange_client_for
            self._client = exchange_client_for(self.record, self.context.get("auth_overrides"))
        return self._client

    # -- description ----------------------------------------------------------------------------------------
    def object_types(self):
        return sorted(OBJECT_TYPES)

    def _type(self, object_type):
        self.check_object_type(object_type)
        return OBJECT_TYPES[object_type]

    def schema(self, object_type):
        return self._type(object_type).schema

    def operations(self, object_type):
        return self._type(object_type).operations

    def label_attributes(self, object_type):
        return list(self._type(object_type).labels)

    def supports(self, feature):
        return feature in ("disable", "members")

    def disable_attributes(self, object_type):
        """Exchange has no disabled recipient: deprovisioning by 'disable' hides it from the address lists."""
        if self._type(object_type).can("update"):
            return {HIDDEN: True}
        return None

    def create_defaults(self, object_type):
        return ("Name",) if self._type(object_type).can("create") else ()

    def prepare_create(self, object_type, attributes):
        kind = self._type(object_type)
        out = {}
        for name, value in attributes.items():
            canonical = kind.schema.canonical(name)
            if canonical is not None:
                out[canonical] = value
            elif name == "description":       # a membership's group description (sync memberships)
                out["Description"] = value
        # Learn New-MailContact / New-DistributionGroup: Name is required and unique; DisplayName defaults to it.
        if not out.get("Name") and out.get("DisplayName"):
            out["Name"] = str(out["DisplayName"])[:64]
        if not out.get("DisplayName") and out.get("Name"):
            out["DisplayName"] = out["Name"]
        return out

    # -- reading --------------------------------------------------------------------------------------------
    def read(self, object_type, attributes, scope_filter=None, delta=False):
        kind = self._type(object_type)
        wanted = {}                        # requested name -> canonical name
        for name in set(attributes) | set(["Guid"]):
            canonical = kind.schema.canonical(name)
            if canonical is not None:
                wanted[name] = canonical
        properties = sorted(set(c for c in wanted.values() if c != "members") | set(["Guid", "PrimarySmtpAddress"]))
        parameters = dict(kind.list_parameters, ResultSize="Unlimited")
        if scope_filter:
            parameters["Filter"] = scope_filter   # an OPATH filter, as Get-Recipient -Filter takes it
        objects = {}
        for item in self.client.invoke(kind.cmdlet("Get"), parameters, select=properties):
            oid = item.get("Guid")
            if not oid:
                continue
            objects[oid] = dict((name, read_value(canonical, item.get(canonical)))
                                for name, canonical in wanted.items() if canonical != "members")
            if "EmailAddresses" in item:
                with self._lock:
                    self._addresses[(object_type, oid)] = split_addresses(item.get("EmailAddresses"))
        members = [name for name, canonical in wanted.items() if canonical == "members"]
        if members and kind.members and objects:
            for oid, found in zip(objects, self._parallel(self._members_of, list(objects))):
                for name in members:
                    objects[oid][name] = found
        return ReadResult(objects, full=True, mode="full")

    def _members_of(self, group_id):
        items = self.client.invoke("Get-DistributionGroupMember", {"Identity": group_id, "ResultSize": "Unlimited"},
                                   select=["Guid"])
        return [m["Guid"] for m in items if m.get("Guid")]

    def _parallel(self, function, items):
        """``function`` over ``items``, ``max_in_flight`` at a time, results in order; connection failures raise."""
        if self.max_in_flight == 1 or len(items) < 2:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_in_flight, len(items))) as pool:
            return list(pool.map(function, items))

    # -- writing --------------------------------------------------------------------------------------------
    def apply(self, object_type, changes):
        kind = self._type(object_type)
        return self._parallel(lambda change: self._apply_one(kind, change), list(changes))

    def _apply_one(self, kind, change):
        if not kind.can(change.op):
            return ChangeResult(change.key, False, id=change.id,
                                error="%s objects cannot be %sd through Exchange Online by this connector"
                                      % (kind.name, change.op))
        done = {"added": 0, "removed": 0}
        new_id = None
        try:
            if change.op == "delete":
                self._tolerate(("ManagementObjectNotFoundException",), kind.cmdlet("Remove"),
                               {"Identity": change.id, "Confirm": False})
                return ChangeResult(change.key, True, id=change.id)
            attributes = self._canonical(kind, change.attributes)
            problem = self._check_addresses(attributes)
            if problem:
                return ChangeResult(change.key, False, id=change.id, error=problem)
            if change.op == "create":
                new_id = self._create(kind, attributes)
                target = new_id
            else:
                target = change.id
                self._set(kind, target, attributes, change.op)
            members = change.member_changes.get("members") or {}
            for member in members.get("add") or []:
                self._tolerate(("MemberAlreadyExistsException",), "Add-DistributionGroupMember",
                               {"Identity": target, "Member": member, "BypassSecurityGroupManagerCheck": True})
                done["added"] += 1
            for member in members.get("remove") or []:
                self._tolerate(("MemberNotFoundException", "ManagementObjectNotFoundException"),
                               "Remove-DistributionGroupMember",
                               {"Identity": target, "Member": member, "BypassSecurityGroupManagerCheck": True,
                                "Confirm": False})
                done["removed"] += 1
        except IdsyncError as exc:
            if getattr(exc, "status", None) in CONNECTION_STATUSES:
                raise
            return ChangeResult(change.key, False, id=new_id or change.id, error=_sentence(exc), details=done)
        return ChangeResult(change.key, True, id=new_id or change.id, details=done)

    @staticmethod
    def _canonical(kind, attributes):
        out = {}
        for name, value in attributes.items():
            canonical = kind.schema.canonical(name) or name
            out[canonical] = list(value) if isinstance(value, tuple) else value
        return out

    @staticmethod
    def _check_addresses(attributes):
        missing = bad_addresses(attributes.get("EmailAddresses"))
        if missing:
            return ("EmailAddresses: %s has no address type; write it as Exchange shows it, e.g. smtp:%s"
                    % (missing[0], str(missing[0]).lstrip(":")))
        return None

    def _create(self, kind, attributes):
        initial = dict((k, v) for k, v in attributes.items() if k in kind.new_parameters and v not in (None, [], ""))
        later = dict((k, v) for k, v in attributes.items() if k not in initial)
        if "members" in initial:
            initial["Members"] = initial.pop("members")
        created = self.client.invoke(kind.cmdlet("New"), initial)
        new_id = (created[0] if created else {}).get("Guid")
        if not new_id:
            raise IdsyncError("%s returned no Guid for the new object" % kind.cmdlet("New"))
        with self._lock:
            self._addresses[(kind.name, new_id)] = split_addresses((created[0] or {}).get("EmailAddresses"))
        later = dict((k, v) for k, v in later.items() if v not in (None, [], ""))
        if later:
            self._set(kind, new_id, later, "create")
        return new_id

    def _set(self, kind, target, attributes, op):
        parameters = {}
        for name, value in attributes.items():
            if name == "members":
                continue
            if name == "EmailAddresses":
                with self._lock:
                    primary, before = self._addresses.get((kind.name, target), (None, []))
                difference = address_difference(before, value or [], primary)
                if difference:
                    parameters[name] = difference
                continue
            parameters[name] = value
        if not parameters:
            return
        parameters["Identity"] = target
        if kind.members:
            parameters["BypassSecurityGroupManagerCheck"] = True
        self.client.invoke(kind.cmdlet("Set"), parameters)

    def _tolerate(self, benign, cmdlet, parameters):
        from ansible_collections.idsync.entra.plugins.module_utils.exchange import ExchangeError
        try:
            self.client.invoke(cmdlet, parameters)
        except ExchangeError as exc:
            if not exc.named(*benign):
                raise

    def stats(self):
        if self._client is None:
            return {}
        return dict(self._client.stats)

    def close(self):
        if self._client is not None:
            close = getattr(getattr(self._client, "session", None), "close", None)
            if callable(close):
                close()


_EXPLAINED = {
    "ProxyAddressExistsException": "an e-mail address of this object is already used by another recipient",
    "ADObjectAlreadyExistsException": "another recipient already has this Name",
    "ManagementObjectNotFoundException": "the object was not found",
    "MemberNotFoundException": "the member is not in the group",
    "RecipientTaskException": "Exchange refused the change",
}


def _sentence(exc):
    """One sentence for a failed object: what went wrong in plain words, then Exchange's own words."""
    exception = getattr(exc, "exception", None)
    cmdlet = getattr(exc, "cmdlet", None)
    text = getattr(exc, "text", None) or exc.msg
    if exception in _EXPLAINED:
        return "%s failed: %s (%s: %s)" % (cmdlet, _EXPLAINED[exception], exception, text)
    if cmdlet:
        return "%s failed: %s" % (cmdlet, text)
    return exc.msg
