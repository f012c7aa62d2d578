# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a plan is made of: the operations the planner decides and the applier performs, and their presentation
(labels instead of ids, no secrets) for the module result, the diff and the run report."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.sync.values import to_output


class Pending(object):
    """An object created later in this run: ``kind`` "object" (key = source id) or "group" (key = group name key)."""
    __slots__ = ("kind", "key")

    def __init__(self, kind, key):
        self.kind = kind
        self.key = key

    def __eq__(self, other):
        return isinstance(other, Pending) and other.kind == self.kind and other.key == self.key

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self.kind, self.key))

    def __repr__(self):
        return "Pending(%s:%s)" % (self.kind, self.key)


class CreateOp(object):
    __slots__ = ("sid", "label", "attributes", "refs", "id", "chosen")

    def __init__(self, sid, label, attributes, refs, id=None, chosen=None):
        self.sid = sid
        self.label = label
        self.attributes = attributes      # {attribute: normalised value} (no references)
        self.refs = refs                  # {attribute: id | Pending | [ids/Pending]}
        self.id = id                      # known before creation (CSV key) or None
        self.chosen = chosen or []        # [(attribute, value)] chosen by unique-value rules


class UpdateOp(object):
    __slots__ = ("tid", "sid", "label", "changes", "member_changes")

    def __init__(self, tid, sid, label, changes, member_changes=None):
        self.tid = tid
        self.sid = sid
        self.label = label
        self.changes = changes            # {attribute: (before, after)}; after may be a Pending
        self.member_changes = member_changes or {}   # {attribute: {"add": [...], "remove": [...]}}


class DeprovisionOp(object):
    __slots__ = ("tid", "label", "action", "changes")

    def __init__(self, tid, label, action, changes):
        self.tid = tid
        self.label = label
        self.action = action              # "delete" or "update"
        self.changes = changes


class GroupCreateOp(object):
    __slots__ = ("key", "name", "attributes", "membership")

    def __init__(self, key, name, attributes, membership):
        self.key = key
        self.name = name
        self.attributes = attributes
        self.membership = membership


class MembershipOp(object):
    __slots__ = ("group", "label", "add", "remove", "leavers")

    def __init__(self, group, label, add, remove, leavers=None):
        self.group = group                # group id or Pending("group", key)
        self.label = label
        self.add = add                    # [target id | Pending("object", sid)]
        self.remove = remove              # [target id] of matched objects that belong elsewhere now
        self.leavers = leavers or []      # [target id] of managed objects whose source is gone

    @property
    def removals(self):
        return self.remove + self.leavers


class Plan(object):
    def __init__(self):
        self.creates = []
        self.updates = []
        self.deprovisions = []
        self.group_creates = []
        self.memberships = []
        self.errors = []                  # [{"object", "error", ...}]
        self.warnings = []
        self.notes = []
        self.unchanged = 0
        self.matched = {}                 # source id -> target id
        self.protected = set()            # target ids never deprovisioned / stripped this run (source unknown)
        self.managed = set()              # target ids this workflow manages after the run (before creates/deletes)
        self.managed_groups = set()       # group ids the memberships manage
        self.restored = set()             # target ids disabled by an earlier run and matched again (enabled)
        self.withheld = []                # DeprovisionOps a safety guard held back this run
        self.withheld_leaver_removals = 0  # removals of leavers from groups held back with them
        self.withheld_reason = None
        self.source_incomplete = None
        self.labels = {}                  # lower-case target id -> label (filled lazily)
        self.pending_labels = {}          # Pending -> label
        self.source_count = 0
        self.in_scope = 0
        self.target_count = 0

    # -- counts -------------------------------------------------------------------------------------------------
    def deprovision_count(self):
        return len(self.deprovisions)

    def membership_counts(self):
        return (sum(len(m.add) for m in self.memberships), sum(len(m.removals) for m in self.memberships))

    def has_changes(self):
        return bool(self.creates or self.updates or self.deprovisions or self.group_creates or self.memberships)

    def summary(self):
        added, removed = self.membership_counts()
        return {
            "created": len(self.creates),
            "updated": len(self.updates),
            "deprovisioned": len(self.deprovisions),
            "unchanged": self.unchanged,
            "failed": len(self.errors),
            "membership_added": added,
            "membership_removed": removed,
            "groups_created": len(self.group_creates),
        }

    # -- presentation -------------------------------------------------------------------------------------------
    def label_of(self, ref):
        if isinstance(ref, Pending):
            return self.pending_labels.get(ref, ref.key) + " (new)"
        if ref is None:
            return None
        return self.labels.get(str(ref).lower(), ref)

    def show(self, value, reference=False):
        if isinstance(value, Pending):
            return self.label_of(value)
        if reference:
            if isinstance(value, (list, tuple)):
                return [self.label_of(v) for v in value]
            return self.label_of(value)
        return to_output(value)

    def to_result(self, reference_attributes=(), limit=None):
        """The plan as plain data for the module result: readable labels instead of ids, no secrets."""
        refs = set(reference_attributes)

        def cut(items):
            return items if limit is None else items[:limit]

        out = {
            "create": [
                dict([("object", op.label), ("source", op.sid)] + [
                    ("attributes", dict(
                        [(k, to_output(v)) for k, v in sorted(op.attributes.items())]
                        + [(k, self.show(v, True)) for k, v in sorted(op.refs.items())]))])
                for op in cut(self.creates)],
            "update": [
                {"object": op.label, "id": op.tid, "source": op.sid,
                 "changes": dict(
                     [(k, {"before": self.show(b, k in refs), "after": self.show(a, k in refs)})
                      for k, (b, a) in sorted(op.changes.items())]
                     + [(k, {"add": self.show(v["add"], True), "remove": self.show(v["remove"], True)})
                        for k, v in sorted(op.member_changes.items())])}
                for op in cut(self.updates)],
            "deprovision": [
                {"object": op.label, "id": op.tid, "action": op.action,
                 "changes": dict((k, {"before": self.show(b, k in refs), "after": self.show(a, k in refs)})
                                 for k, (b, a) in sorted(op.changes.items()))}
                for op in cut(self.deprovisions)],
            "groups_create": [{"group": op.name, "attributes": dict(op.attributes)} for op in cut(self.group_creates)],
            "memberships": [
                {"group": op.label, "id": None if isinstance(op.group, Pending) else op.group,
                 "add": self.show(op.add, True), "remove": self.show(op.removals, True)}
                for op in cut(self.memberships)],
        }
        return out
