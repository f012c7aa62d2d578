# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Ownership is recorded before it can be lost.

Before a create is sent, the journal in the store says which workflow makes it, for which source object, and how to
find it (its match-attribute and unique values); when the answer comes, the entry is completed with the new id. A
run that is killed in between leaves entries behind; the next run reconciles them against the objects it read (no
extra request): every object found that way is managed again, so it is deprovisioned when its person leaves, even
if it was created by a run that never finished.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.idsync.entra.plugins.module_utils.sync.matching import match_values

STALE_DAYS = 30          # an entry that matches nothing for this long was never created (Entra replicates in minutes)


class Journal(object):
    def __init__(self, store, workflow, run_id=None):
        self.store = store
        self.workflow = workflow
        self.run_id = run_id

    # -- while applying -------------------------------------------------------------------------------------------
    def before_create(self, kind, entries):
        """``entries`` [(source key, {attribute: value})]; returns their journal ids (same order)."""
        if not entries:
            return []
        return self.store.journal_add(self.workflow, self.run_id, [(kind, s, lookup) for s, lookup in entries])

    def created(self, completed):
        """``completed`` {journal id: new target id}."""
        if completed:
            self.store.journal_complete(completed)

    def progress(self, counts):
        if self.run_id is not None:
            self.store.record_applied(self.run_id, counts)

    def clear(self, created_sources=()):
        """After a run saved its managed set: drop what it holds, and older entries for the source objects it has
        just created. Other entries without an id (a create that failed, or whose outcome stayed unknown) are kept
        for the next run to look for; they fade after STALE_DAYS."""
        created = set(str(s) for s in created_sources)
        self.store.journal_remove([e["id"] for e in self.store.journal(self.workflow)
                                   if e["target_id"] or e["source"] in created])

    # -- at the start of a run ------------------------------------------------------------------------------------
    def reconcile(self, objects_by_kind, now=None):
        """Resolve what earlier runs left: ``objects_by_kind`` {"object": {id: obj}, "group": {id: obj}} as read.
        Returns ({kind: set of ids found}, [notes]); resolved and stale entries are removed."""
        entries = self.store.journal(self.workflow)
        found = {"object": set(), "group": set()}
        if not entries:
            return found, []
        indexes = {}
        done = []
        stale = []
        now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        for entry in entries:
            objects = objects_by_kind.get(entry["kind"]) or {}
            tid = entry["target_id"] if entry["target_id"] in objects else self._find(entry, objects, indexes)
            if tid is not None:
                found[entry["kind"]].add(tid)
                done.append(entry["id"])
            elif _age_days(entry["created"], now) > STALE_DAYS:
                stale.append(entry["id"])
        self.store.journal_remove(done + stale)
        notes = []
        recovered = sum(len(v) for v in found.values())
        if recovered:
            notes.append("%d object(s) created by an interrupted run were found and are managed again" % recovered)
        if len(entries) > len(done) + len(stale):
            notes.append("%d create(s) of an interrupted run are not visible yet; they are looked for again next run"
                         % (len(entries) - len(done) - len(stale)))
        return found, notes

    @staticmethod
    def _find(entry, objects, indexes):
        """The one object holding every lookup value of the entry (its match key and its unique values together:
        a unique value alone may belong to someone else's object, which must never become ours)."""
        candidates = None
        for attribute, value in sorted(entry["lookup"].items()):
            index = indexes.get((id(objects), attribute))
            if index is None:
                index = indexes[(id(objects), attribute)] = {}
                for oid, obj in objects.items():
                    for key in match_values(obj.get(attribute), False):
                        index.setdefault(key, set()).add(oid)
            hits = set()
            for key in match_values(value, False):
                hits |= index.get(key, set())
            candidates = hits if candidates is None else candidates & hits
            if not candidates:
                return None
        return next(iter(candidates)) if candidates and len(candidates) == 1 else None


def _age_days(created, now):
    try:
        when = datetime.datetime.strptime(created[:19], "%Y-%m-%dT%H:%M:%S")
    except (TypeError, ValueError):
        return 0
    return (now - when).total_seconds() / 86400.0
