# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Microsoft Graph delta queries for users and groups, applied to a snapshot kept in the store.

Graph's delta query returns what changed since a delta link (https://learn.microsoft.com/en-us/graph/delta-query-overview):
changed objects carry only what changed, removed ones ``@removed``, and group members and the manager come as
``members@delta`` / ``manager@delta`` lists. The first round (no link) lists every object, which is also the one list
call that returns every member of every group. The new link and snapshot are kept pending until ``commit()``, which
the engine calls only after the run applied its changes, so a failed run reads the same changes again.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import ReadResult
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError, IdsyncError

# Graph answers an expired or unknown delta token with 410 Gone or one of these codes
# (https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset).
EXPIRED_DELTA_CODES = ("syncStateNotFound", "SyncStateNotFound", "resyncRequired", "Request_DeltaTokenExpired",
                       "ExpiredDeltaToken", "syncStateInvalid")
REFERENCES = ("manager", "members")


def is_expired_delta(error):
    if not isinstance(error, GraphError):
        return False
    if error.status == 410:
        return True
    return error.code in EXPIRED_DELTA_CODES or error.matches("delta token", "deltatoken", "sync state", "resync")


class DeltaRound:
    """One delta query followed to its deltaLink, applied in place to ``objects`` ({id: {attribute: value}})."""

    def __init__(self, names, objects):
        self.names = names
        self.plain = [n for n in names if n not in REFERENCES]
        self.objects = objects
        self.upserts = set()
        self.removed = set()
        self.link = None

    def run(self, pages, what):
        for page in pages:
            page = page or {}
            for item in page.get("value") or []:
                self.apply(item)
            self.link = page.get("@odata.deltaLink") or self.link
        if self.link is None:
            raise IdsyncError("Microsoft Graph's %s delta query ended without a delta link" % what)
        return self

    def apply(self, item):
        oid = item.get("id")
        if not oid:
            return
        if "@removed" in item:
            self.objects.pop(oid, None)
            self.removed.add(oid)
            self.upserts.discard(oid)
            return
        obj = self.objects.get(oid)
        if obj is None:
            obj = self.objects[oid] = dict((n, None) for n in self.plain)
            obj.update((n, [] if n == "members" else None) for n in REFERENCES if n in self.names)
        for name in self.plain:
            if name in item:
                obj[name] = item[name]
        if "manager" in self.names:
            obj["manager"] = _manager(item)
        if "members" in self.names and "members@delta" in item:
            obj["members"] = _members(obj.get("members") or [], item["members@delta"] or [])
        self.upserts.add(oid)
        self.removed.discard(oid)


def _manager(item):
    if "manager@delta" in item:
        current = None
        for entry in item.get("manager@delta") or []:
            if "@removed" not in entry:
                current = entry.get("id")
        return current
    if "manager" in item:
        manager = item.get("manager")
        return manager.get("id") if isinstance(manager, dict) else manager
    # A user in a delta page carries manager@delta whenever it has a manager (as the emulator does; Graph's
    # documentation is not explicit): none means none. At worst this costs one redundant, idempotent manager
    # write for a user that changed.
    return None


def _members(members, changes):
    present = dict((m, None) for m in members)
    for entry in changes:
        mid = entry.get("id")
        if not mid:
            continue
        if "@removed" in entry:
            present.pop(mid, None)
        else:
            present[mid] = None
    return list(present)


class DeltaReader:
    """Reads users or groups through delta queries for one connector, keeping link and snapshot in the store."""

    def __init__(self, graph, store, connector_name):
        self.graph = graph
        self.store = store
        self.connector_name = connector_name
        self._pending = []          # [(scope, state, upserts, removed, full snapshot or None)]

    def initial(self, collection, names):
        """Every object of ``collection`` (group members included) and the link to their next changes."""
        pages = self.graph.iter_pages("/%s/delta" % collection, params={"$select": ",".join(names)})
        return DeltaRound(names, {}).run(pages, collection)

    def read(self, object_type, collection, names, scope):
        if self.store is None:
            raise ConfigError("delta: true needs the idsync store", option="delta")
        raw = self.store.get_state(scope, "delta")
        state = json.loads(raw) if raw else None
        notes = []
        if state and state.get("link") and sorted(state.get("select") or []) == sorted(names):
            try:
                pages = self.graph.iter_pages(state["link"])
                changes = DeltaRound(names, self.store.get_snapshot(scope)).run(pages, collection)
            except GraphError as exc:
                if not is_expired_delta(exc):
                    raise
                notes.append("%s: the %s delta link expired (%s %s); read every %s again" % (
                    self.connector_name, object_type, exc.status, exc.code, object_type))
            else:
                upserts = dict((oid, changes.objects[oid]) for oid in changes.upserts if oid in changes.objects)
                self._pending.append((scope, {"link": changes.link, "select": names}, upserts, changes.removed, None))
                return ReadResult(changes.objects, full=True, notes=notes, mode="delta")
        elif state and state.get("link"):
            notes.append("%s: the workflow now reads other %s attributes; made a new initial delta round"
                         % (self.connector_name, object_type))
        first = self.initial(collection, names)
        self._pending.append((scope, {"link": first.link, "select": names}, None, None, first.objects))
        return ReadResult(first.objects, full=True, notes=notes, mode="delta (initial)")

    def commit(self):
        for scope, state, upserts, removed, full in self._pending:
            # The snapshot first, then the link: a crash in between re-reads the same changes, which is harmless.
            if full is not None:
                self.store.put_snapshot(scope, full)
            elif upserts or removed:
                self.store.update_snapshot(scope, upserts, removed)
            self.store.set_state(scope, "delta", json.dumps(state, separators=(",", ":")))
        self._pending = []
