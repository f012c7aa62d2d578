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


class Applier(object):
    def __init__(self, plan, target, workflow, log=None):
        self.plan = plan
        self.target = target
        self.wf = workflow
        self.object_type = workflow.target.object_type
        self.log = log or (lambda message: None)
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
        results = self._apply(self.object_type, changes)
        by_key = dict((op.sid, op) for op in plan.creates)
        updates_by_tid = dict((op.tid, op) for op in plan.updates)
        for change, result in zip(changes, results):
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

        # Phase 3 ------------------------------------------------------------------------------------------------
        if plan.group_creates or plan.memberships:
            group_type = wf.memberships[0].object_type if wf.memberships else "group"
            changes = [Change("create", op.name, attributes=dict((k, to_output(v)) for k, v in op.attributes.items()))
                       for op in plan.group_creates]
            for op, result in zip(plan.group_creates, self._apply(group_type, changes)):
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
                if not add and not op.removals:
                    continue
                delta = {"members": {"add": add, "remove": list(op.removals)}}
                changes.append(Change("update", gid, id=gid, member_changes=delta))
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
        return outcome

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
