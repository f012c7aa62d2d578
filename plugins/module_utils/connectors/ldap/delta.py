# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Incremental reads (``delta: true``) against a snapshot of the object set kept in the store.

Active Directory
    Objects whose ``uSNChanged`` is above the high-water mark of the domain controller that answered (rootDSE
    ``highestCommittedUSN``, read *before* the search), and deletions through the Deleted Objects container (show
    deleted control, ``isDeleted=TRUE``). USNs are per DC: the mark is kept with the DC's ``dsServiceName`` and
    ``invocationId``; another DC, or a DC restored from backup (new invocationId), means a full read. Group
    membership is a linked attribute: adding a member bumps the group's USN, not the user's, so a read that uses
    ``memberOf`` also re-reads the members of groups that changed.
OpenLDAP
    Entries whose ``entryCSN`` is above the database's ``contextCSN`` (kept by the syncprov overlay) as it was
    before the previous read. OpenLDAP keeps no tombstones, so deletions (and entries that left the search) are
    found by listing the entryUUIDs under the base, one attribute per entry. Without a contextCSN every run reads
    everything and says so.

Objects that changed but no longer match the search (moved out of the base, filtered out) leave the snapshot.
The new position and snapshot are saved by ``commit()``, which the engine calls only after a successful apply.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import ReadResult
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap import schema as dialects
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.names import (
    and_filters, canonical_dn, escape_filter_value, is_within,
)
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.session import SHOW_DELETED
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.settings import search_of
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError


class DeltaReader(object):
    def __init__(self, connector):
        self.connector = connector
        self.pending = []                 # (scope, state, upserts, removed, full snapshot or None)
        self.stats = {}

    def _scope(self, object_type):
        return "delta:%s:%s:%s" % (self.connector.context.get("workflow") or "-", self.connector.name, object_type)

    # -- positions ------------------------------------------------------------------------------------------
    def position(self):
        """Where the directory is now: {"server", "epoch", "mark"}; None when it cannot tell (no delta)."""
        connector = self.connector
        session = connector.session
        if connector.dialect.ad:
            dse = session.root_dse(["dsServiceName", "highestCommittedUSN"])
            service = (dse.get("dsServiceName") or [None])[0]
            usn = (dse.get("highestCommittedUSN") or [None])[0]
            _dn, raw = session.read_entry(service, ["invocationId"])
            invocation = None
            for key, vals in (raw or {}).items():
                if key.lower() == "invocationid" and vals:
                    from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.names import (
                        guid_from_bytes)
                    invocation = guid_from_bytes(vals[0])
            return {"server": service, "epoch": invocation, "mark": int(usn)}
        context = connector.naming_context()
        _dn, raw = session.read_entry(context, ["contextCSN"])
        csns = [dialects.decode_text(v) for k, vals in (raw or {}).items() if k.lower() == "contextcsn" for v in vals]
        if not csns:
            return None
        # One contextCSN per server id (multi-provider); CSNs are the same on every replica, so any may answer.
        csns.sort()
        return {"server": "entryCSN", "epoch": None, "mark": csns}

    @staticmethod
    def _same_lineage(old, new):
        if old is None or new is None:
            return False
        if old.get("server") != new.get("server") or old.get("epoch") != new.get("epoch"):
            return False
        if isinstance(new["mark"], int):
            return new["mark"] >= old["mark"]
        return max(new["mark"]) >= max(old["mark"])      # a restored database goes back in time

    # -- reading --------------------------------------------------------------------------------------------
    def read(self, object_type, names, scope_filter):
        connector = self.connector
        store = connector.context.get("store")
        if store is None:
            raise ConfigError("delta: true needs the idsync store", option="delta")
        scope = self._scope(object_type)
        base, search_scope, _configured = search_of(connector.settings, object_type)
        signature = {"select": names, "base": canonical_dn(base), "scope": search_scope,
                     "filter": connector.search_filter(object_type, scope_filter)}
        raw_state = store.get_state(scope, "delta")
        state = json.loads(raw_state) if raw_state else None
        notes = []
        position = self.position()
        if position is None:
            notes.append("%s: the directory keeps no contextCSN (enable the syncprov overlay for delta reads); "
                         "read every %s" % (connector.name, object_type))
            objects = dict(connector.entries(object_type, names, base, search_scope, signature["filter"]))
            connector.ids_of_references(object_type, objects)
            return ReadResult(objects, full=True, notes=notes, mode="full")
        if state and state.get("signature") == signature and self._same_lineage(state.get("position"), position):
            snapshot = store.get_snapshot(scope)
            for oid, obj in snapshot.items():
                connector.remember(oid, obj.get("dn"))
            upserts, removed = self._changes(object_type, names, base, search_scope, signature["filter"],
                                             state["position"], snapshot)
            for oid in removed:
                snapshot.pop(oid, None)
            snapshot.update(upserts)
            self.stats["delta_changed"] = self.stats.get("delta_changed", 0) + len(upserts) + len(removed)
            self.pending.append((scope, {"signature": signature, "position": position}, upserts, removed, None))
            return ReadResult(snapshot, full=True, notes=notes, mode="delta")
        if state:
            old = state.get("position") or {}
            if state.get("signature") != signature:
                why = "the workflow now reads other %s attributes or another search" % object_type
            elif old.get("server") != position.get("server"):
                why = "another domain controller answered (%s, was %s)" % (position.get("server"), old.get("server"))
            else:
                why = "the directory was restored or reset since the last run"
            notes.append("%s: %s; read every %s" % (connector.name, why, object_type))
        objects = dict(connector.entries(object_type, names, base, search_scope, signature["filter"]))
        connector.ids_of_references(object_type, objects)
        self.pending.append((scope, {"signature": signature, "position": position}, None, None, objects))
        return ReadResult(objects, full=True, notes=notes, mode="delta (initial)")

    def _changes(self, object_type, names, base, search_scope, search_filter, old, snapshot):
        """(upserts {id: object}, removed ids) since position ``old``."""
        connector = self.connector
        session = connector.session
        dialect = connector.dialect
        anchor = dialect.anchor
        if dialect.ad:
            since = "(uSNChanged>=%d)" % (old["mark"] + 1)
        else:
            # entryCSN strictly above every contextCSN we saw: (!(entryCSN<=x)) for the newest one
            since = "(!(entryCSN<=%s))" % escape_filter_value(max(old["mark"]))
        upserts = dict(connector.entries(object_type, names, base, search_scope, and_filters(search_filter, since)))
        removed = set()
        if dialect.ad:
            # changed objects of the type anywhere in the domain: those not in the result left the search
            context = connector.naming_context()
            for dn, raw in session.search(context, "subtree", and_filters(dialect.filters[object_type], since),
                                          [anchor]):
                oid = dialects.anchor_of(dialect, raw)
                if oid and oid not in upserts and oid in snapshot:
                    removed.add(oid)
            for dn, raw in session.search(context, "subtree", and_filters("(isDeleted=TRUE)", since), [anchor],
                                          controls=[(SHOW_DELETED, True, None)]):
                oid = dialects.anchor_of(dialect, raw)
                if oid in snapshot:
                    removed.add(oid)
            if "memberOfNames" in names or "memberOf" in names:
                self._linked_changes(object_type, names, since, snapshot, upserts, base, search_scope)
        else:
            present = set()
            for dn, raw in session.search(base, search_scope, search_filter, [anchor]):
                oid = dialects.anchor_of(dialect, raw)
                if oid:
                    present.add(oid)
                    connector.remember(oid, dn)
            removed = set(oid for oid in snapshot if oid not in present)
        connector.ids_of_references(object_type, upserts)
        return upserts, removed

    def _linked_changes(self, object_type, names, since, snapshot, upserts, base, search_scope):
        """Users whose memberOf changed because a group they are (or were) in changed."""
        connector = self.connector
        session = connector.session
        groups = set()
        members = set()
        for dn, raw in session.search(connector.naming_context(), "subtree",
                                      and_filters(connector.dialect.filters["group"], since), ["member"]):
            groups.add(canonical_dn(dn))
            members.update(canonical_dn(dialects.decode_text(v)) for v in session.full_values(dn, raw, "member"))
        if not groups:
            return
        stale = set()
        for oid, obj in snapshot.items():
            if oid in upserts:
                continue
            was_in = set(canonical_dn(g) for g in obj.get("memberOf") or [])
            if was_in & groups or canonical_dn(obj.get("dn") or "") in members:
                stale.add(obj.get("dn"))
        for dn in members:
            if dn not in set(canonical_dn(o.get("dn") or "") for o in snapshot.values()):
                stale.add(dn)           # a newly added member we have not seen under this search yet
        for dn in sorted(d for d in stale if d):
            if not is_within(dn, base, search_scope):
                continue
            entry_filter = connector.search_filter(object_type)
            for oid, obj in connector.entries(object_type, names, dn, "base", entry_filter):
                upserts[oid] = obj

    def commit(self):
        store = self.connector.context.get("store")
        for scope, state, upserts, removed, full in self.pending:
            # the snapshot first, then the position: a crash in between re-reads the same changes (harmless)
            if full is not None:
                store.put_snapshot(scope, full)
            elif upserts or removed:
                store.update_snapshot(scope, upserts, removed)
            store.set_state(scope, "delta", json.dumps(state, separators=(",", ":"), sort_keys=True))
        self.pending = []
