# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Applying a plan through the target connector, in four phases:

1. creates (without references to objects not created yet) and attribute updates;
2. references that point at objects created in phase 1 (a manager hired in the same run);
3. groups to create, then group membership additions and removals (only the difference);
4. deprovisions (disable / delete / set attributes) - last, after the safety check passed.

One failing object never stops the others: each failure is recorded against its object and the run goes on.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import Change
from ansible_collections.idsync.entra.plugins.module_utils.sync.plan import Pending
from ansible_collections.idsync.entra.plugins.module_utils.sync.values import to_output


class Outcome(object):
    def __init__(self):
        self.created = {}                 # source id -> new target id
        self.updated = set()              # source / target ids of updated objects
        self.deprovisioned = set()
        self.deleted = set()
        self.groups_created = {}          # group key -> new group id
        self.membership_added = 0
        self.membership_removed = 0
        self.errors = []
        self.warnings = []
        self.writes_attempted = 0

    @property
    def changed(self):
        return bool(self.created or self.updated or self.deprovisioned or self.groups_created
                    or self.membership_added or self.membership_removed)


UNIQUE_RETRIES = 3      # a unique value taken since the run read the target is chosen again, this often at most


class Applier(object):
    """Applies a plan. ``journal`` (sync.journal.Journal) records creates before they are sent and what was applied
    after each phase; ``rechoose(op, attribute)`` (the planner's) gives a create new attributes when the directory
    refuses a unique value that another object took meanwhile."""

    def __init__(self, plan, target, workflow, log=None, journal=None, rechoose=None, progress=None):
        self.plan = plan
        self.target = target
        self.wf = workflow
        self.object_type = workflow.target.object_type
        self.log = log or (lambda message: None)
        self.journal = journal
        self.rechoose = rechoose
        self.progress = progress
        self.outcome = Outcome()

    # -- helpers ---------------------------------------------------------------------------------------------
    def _resolve(self, value):
        """A planned value with Pending objects replaced by the ids created so far; (value, unresolved list)."""
        outcome = self.outcome
        if isinstance(value, Pending):
            if value.kind == "object":
                new_id = outcome.created.get(value.key)
            else:
                new_id = outcome.groups_created.get(value)
            return (new_id, [] if new_id else [value])
        if isinstance(value, (list, tuple)):
            out = []
            missing = []
            for item in value:
                resolved, gone = self._resolve(item)
                if resolved is not None:
                    out.append(resolved)
                missing.extend(gone)
            return out, missing
        return value, []

    def _error(self, obj, message, **extra):
        entry = {"object": obj, "error": message}
        entry.update(dict((k, v) for k, v in extra.items() if v is not None))
        self.outcome.errors.append(entry)

    def _apply(self, object_type, changes):
        if not changes:
            return []
        self.outcome.writes_attempted += len(changes)
        return self.target.apply(object_type, changes)

    # -- phases ----------------------------------------------------------------------------------------------
    def run(self):
        plan = self.plan
        wf = self.wf
        outcome = self.outcome
        options = {"force_change_password": wf.force_change_password}

        # Phase 1 ------------------------------------------------------------------------------------------------
        changes = []
        later = []                        # (kind, op) with parts that wait for phase 2
        for op in plan.creates:
            attributes = dict((k, to_output(v)) for k, v in op.attributes.items())
            deferred = {}
            for attribute, value in op.refs.items():
                if _has_pending(value):
                    deferred[attribute] = value
                else:
                    attributes[attribute] = to_output(value)
            if deferred:
                later.append(("create", op, deferred))
            changes.append(Change("create", op.sid, attributes=attributes, password=wf.password, options=options))
        for op in plan.updates:
            attributes = {}
            deferred = {}
            for attribute, (_before, after) in op.changes.items():
                if _has_pending(after):
                    deferred[attribute] = after
                else:
                    attributes[attribute] = to_output(after)
            members = {}
            deferred_members = {}
            for attribute, delta in op.member_changes.items():
                ready = [v for v in delta["add"] if not isinstance(v, Pending)]
                waiting = [v for v in delta["add"] if isinstance(v, Pending)]
                if ready or delta["remove"]:
                    members[attribute] = {"add": ready, "remove": list(delta["remove"])}
                if waiting:
                    deferred_members[attribute] = waiting
            if deferred or deferred_members:
                later.append(("update", op, (deferred, deferred_members)))
            if attributes or members:
                changes.append(Change("update", op.tid, id=op.tid, attributes=attributes, member_changes=members))
        by_key = dict((op.sid, op) for op in plan.creates)
        updates_by_tid = dict((op.tid, op) for op in plan.updates)
        for change, result in self._apply_creating(changes, by_key):
            if change.op == "create":
                op = by_key[change.key]
                if result.id:             # created, even when a reference write after it failed
                    outcome.created[op.sid] = result.id
                if not result.ok:
                    self._error(op.label, result.error, source=op.sid, step="create", id=result.id)
            else:
                op = updates_by_tid[change.id]
                if result.ok:
                    outcome.updated.add(op.tid)
                else:
                    self._error(op.label, result.error, source=op.sid, id=op.tid, step="update")
        self._progress()

        # Phase 2 ------------------------------------------------------------------------------------------------
        changes = []
        owners = []
        for kind, op, deferred in later:
            if kind == "create":
                tid = outcome.created.get(op.sid)
                if tid is None:
                    continue
                attributes = {}
                members = {}
                for attribute, value in deferred.items():
                    resolved, missing = self._resolve(value)
                    self._report_missing(op.label, attribute, missing)
                    if isinstance(value, list):
                        if resolved:
                            members[attribute] = {"add": resolved, "remove": []}
                    elif not missing:
                        attributes[attribute] = resolved
                if attributes or members:
                    changes.append(Change("update", op.sid, id=tid, attributes=attributes, member_changes=members))
                    owners.append(("create", op))
            else:
                plain, member_adds = deferred
                attributes = {}
                members = {}
                for attribute, value in plain.items():
                    resolved, missing = self._resolve(value)
                    self._report_missing(op.label, attribute, missing)
                    if not missing:
                        attributes[attribute] = resolved
                for attribute, waiting in member_adds.items():
                    resolved, missing = self._resolve(waiting)
                    self._report_missing(op.label, attribute, missing)
                    if resolved:
                        members[attribute] = {"add": resolved, "remove": []}
                if attributes or members:
                    changes.append(Change("update", op.tid, id=op.tid, attributes=attributes, member_changes=members))
                    owners.append(("update", op))
        for (kind, op), result in zip(owners, self._apply(self.object_type, changes)):
            if result.ok:
                if kind == "update":
                    outcome.updated.add(op.tid)
            else:
                self._error(op.label, result.error, source=op.sid, step="references",
                            id=outcome.created.get(op.sid) if kind == "create" else op.tid)

        self._progress()

        # Phase 3 ------------------------------------------------------------------------------------------------
        if plan.group_creates or plan.memberships:
            group_type = wf.memberships[0].object_type if wf.memberships else "group"
            wanted = self._groups_with_members()
            creates = [op for op in plan.group_creates if op.key in wanted]
            for op in plan.group_creates:
                if op.key not in wanted:
                    outcome.warnings.append("group %s was not created: none of its members exist" % op.name)
            changes = [Change("create", op.name, attributes=dict((k, to_output(v)) for k, v in op.attributes.items()))
                       for op in creates]
            journal_ids = self.journal.before_create("group", [(op.name, {"displayName": op.name}) for op in creates]) \
                if self.journal is not None else []
            results = self._apply(group_type, changes)
            if self.journal is not None:
                self.journal.created(dict((jid, r.id) for jid, r in zip(journal_ids, results) if r.id))
            for op, result in zip(creates, results):
                if result.ok and result.id:
                    outcome.groups_created[op.key] = result.id
                else:
                    self._error(op.name, result.error, step="create group")
            changes = []
            owners = []
            for op in plan.memberships:
                gid, missing = self._resolve(op.group)
                if gid is None:
                    continue                  # its creation failed: reported above
                add, missing = self._resolve(op.add)
                if missing:
                    self.outcome.warnings.append("group %s: %d member(s) were not created, so not added"
                                                 % (op.label, len(missing)))
                if not add and not op.removals and not op.attributes:
                    continue
                delta = {wf.members_attribute: {"add": add, "remove": list(op.removals)}} if add or op.removals else {}
                changes.append(Change("update", gid, id=gid, attributes=dict(op.attributes), member_changes=delta))
                owners.append((op, len(add), len(op.removals)))
            for (op, added, removed), result in zip(owners, self._apply(group_type, changes)):
                if result.ok:
                    outcome.membership_added += added
                    outcome.membership_removed += removed
                else:
                    self._error(op.label, result.error, step="memberships")
                    details = result.details or {}
                    outcome.membership_added += details.get("added", 0)
                    outcome.membership_removed += details.get("removed", 0)

        self._progress()

        # Phase 4 ------------------------------------------------------------------------------------------------
        changes = []
        for op in plan.deprovisions:
            if op.action == "delete":
                changes.append(Change("delete", op.tid, id=op.tid))
            else:
                changes.append(Change("update", op.tid, id=op.tid,
                                      attributes=dict((k, to_output(a)) for k, (_b, a) in op.changes.items())))
        for op, result in zip(plan.deprovisions, self._apply(self.object_type, changes)):
            if result.ok:
                outcome.deprovisioned.add(op.tid)
                if op.action == "delete":
                    outcome.deleted.add(op.tid)
            else:
                self._error(op.label, result.error, id=op.tid, step="deprovision")
        self._progress()
        return outcome

    def _apply_creating(self, changes, by_key):
        """Phase 1's writes with the creates journaled first; a create refused because a unique value was taken
        meanwhile is given the next free value and sent again. Yields (change, result) once per change."""
        attempt = 0
        while changes:
            journal_ids = self._journal_creates([c for c in changes if c.op == "create"], by_key)
            results = self._apply(self.object_type, changes)
            if self.journal is not None:
                self.journal.created(dict((journal_ids[c.key], r.id) for c, r in zip(changes, results)
                                          if c.op == "create" and r.id and c.key in journal_ids))
            again = []
            for change, result in zip(changes, results):
                op = by_key.get(change.key) if change.op == "create" else None
                conflict = result.conflict if op is not None else None
                if conflict and attempt < UNIQUE_RETRIES and self.rechoose is not None \
                        and self.rechoose(op, conflict):
                    change.attributes.update((k, to_output(v)) for k, v in op.attributes.items())
                    again.append(change)
                    continue
                yield change, result
            changes = again
            attempt += 1

    def _journal_creates(self, creates, by_key):
        """{source key: journal id} of the creates about to be sent."""
        if self.journal is None or not creates:
            return {}
        lookups = self._lookup_attributes()
        entries = [(c.key, dict((a, to_output(by_key[c.key].attributes[a])) for a in lookups
                                if a in by_key[c.key].attributes)) for c in creates]
        return dict(zip([c.key for c in creates], self.journal.before_create("object", entries)))

    def _lookup_attributes(self):
        """The attributes a journaled create is found by: the match attributes and the unique ones."""
        names = [pair.target for pair in self.wf.match]
        names += sorted(a for a, rule in (self.wf.create or {}).items() if getattr(rule, "kind", None) == "unique")
        return names

    def _progress(self):
        if self.journal is not None:
            self.journal.progress(self.counts())

    def counts(self):
        """What was applied so far, as run history records it."""
        outcome = self.outcome
        return {"created": len(outcome.created), "updated": len(outcome.updated),
                "deprovisioned": len(outcome.deprovisioned), "groups_created": len(outcome.groups_created),
                "membership_added": outcome.membership_added, "membership_removed": outcome.membership_removed,
                "failed": len(outcome.errors)}

    def _groups_with_members(self):
        """Keys of the planned groups that will have at least one member (an existing one, or one created now)."""
        keys = set()
        for op in self.plan.memberships:
            if any(not isinstance(m, Pending) or m.key in self.outcome.created for m in op.add):
                keys.add(op.group)
        return keys

    def _report_missing(self, label, attribute, missing):
        for pending in missing:
            self.outcome.warnings.append("%s: %s: %s was not created, so the reference was not written"
                                         % (label, attribute, self.plan.pending_labels.get(pending, pending.key)))


def _has_pending(value):
    if isinstance(value, Pending):
        return True
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, Pending) for v in value)
    return False
