# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Planning: source objects + target objects -> the list of changes. Pure (no I/O), O(n) with dict indexes.

The planner decides, for one workflow run:

* which source objects are in scope (the ``scope`` rule);
* which target object each one matches (``match`` pairs, any pair matching; two candidates is an error for that
  object, never a guess; two sources claiming one target is an error for both);
* creates (unmatched sources) with their attributes, updates (only the attributes whose normalised value changed),
  references (a manager, members) resolved to target ids or to objects created in the same run (``Pending``);
* deprovisions: target objects this workflow manages whose source disappeared or left scope;
* group memberships derived from each source object (e.g. one group per Department), only the difference.

Every per-object problem becomes an entry in ``plan.errors``; the object is left alone (and protected from
deprovisioning) and the rest of the plan stands.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import (
    ReferenceRule, RuleError, expression_context,
)
from ansible_collections.idsync.entra.plugins.module_utils.sync.values import (
    ValueError_, empty, normalize, to_output,
)

_FALSE_TEXT = frozenset(["", "false", "no", "n", "0", "off", "none", "null"])


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
    __slots__ = ("sid", "label", "attributes", "refs", "id")

    def __init__(self, sid, label, attributes, refs, id=None):
        self.sid = sid
        self.label = label
        self.attributes = attributes      # {attribute: normalised value} (no references)
        self.refs = refs                  # {attribute: id | Pending | [ids/Pending]}
        self.id = id                      # known before creation (CSV key) or None


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


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_TEXT
    return bool(value)


def _match_values(raw, case_sensitive):
    if empty(raw):
        return ()
    items = raw if isinstance(raw, (list, tuple, set, frozenset)) else (raw,)
    out = []
    for item in items:
        if empty(item):
            continue
        if isinstance(item, bool):
            text = "true" if item else "false"
        else:
            text = str(item).strip()
        if not text:
            continue
        out.append(text if case_sensitive else text.casefold())
    return tuple(out)


class Planner(object):
    """Plans one workflow. ``target`` is the target connector (only its pure hooks are used: ``prepare_create``,
    ``id_for_create``, ``label_attributes``, ``disable_attributes``)."""

    def __init__(self, workflow, source_schema, target_schema, target, group_schema=None):
        self.wf = workflow
        self.source_schema = source_schema
        self.target_schema = target_schema or {}
        self.open_target = target_schema is None
        self.target = target
        self.group_schema = group_schema or {}
        self.object_type = workflow.target.object_type
        self.label_attrs = list(target.label_attributes(self.object_type)) if target is not None else []

        update = workflow.update or {}
        create = dict(workflow.create or {})
        create.update(update)            # the update rules also hold at creation: no second run to converge
        self.update_rules = [(a, r, self.spec(a)) for a, r in update.items() if not isinstance(r, ReferenceRule)]
        self.update_refs = [(a, r, self.spec(a)) for a, r in update.items() if isinstance(r, ReferenceRule)]
        self.create_rules = [(a, r, self.spec(a)) for a, r in create.items() if not isinstance(r, ReferenceRule)]
        self.create_refs = [(a, r, self.spec(a)) for a, r in create.items() if isinstance(r, ReferenceRule)]
        self.deprovision_set = [(a, r, self.spec(a)) for a, r in workflow.deprovision_set.items()]
        self.ref_attributes = set(a for a, _r, _s in self.update_refs + self.create_refs)
        for name, spec in self.target_schema.items():
            if spec.reference:
                self.ref_attributes.add(name)

        # Expression rules build their variables themselves, only when their memo has no result yet.
        self.needs_context = False

    def spec(self, attribute):
        spec = self.target_schema.get(attribute)
        return spec

    # ------------------------------------------------------------------------------------------------------------
    def plan(self, source_objects, target_objects, managed=(), rejected=(), groups=None, managed_groups=(),
             lookups=None, other_objects=None, deprovisioned=(), source_incomplete=None):
        """``source_objects`` / ``target_objects``: {id: {attribute: value}}. ``managed``: target ids this workflow
        managed before. ``rejected``: unreadable source objects ({"object", "error", "attributes"}): reported, and
        whatever target they would match is protected. ``groups``: {id: {...,"members": [ids]}} of the group type
        when the workflow has memberships. ``lookups``: {(object_type, attribute): {normalised value: [ids]}};
        ``other_objects``: {object_type: (objects, label attributes)} read for those lookups (to name members).
        ``deprovisioned``: target ids this workflow disabled earlier: one that matches a source again is enabled.
        ``source_incomplete``: why the source read may lack objects that still exist (None when it is complete):
        then deprovisions are withheld (``plan.withheld``) and only matched objects leave groups."""
        wf = self.wf
        plan = Plan()
        plan.source_count = len(source_objects)
        plan.target_count = len(target_objects)
        needs_context = self.needs_context
        lower_ids = dict((str(tid).lower(), tid) for tid in target_objects)

        def context_of(obj):
            return expression_context(obj) if needs_context else None

        for item in rejected:
            plan.errors.append({"object": item.get("object"), "error": item.get("error")})

        # 1. scope ------------------------------------------------------------------------------------------------
        scope = wf.source.scope
        in_scope = {}
        contexts = {}
        unknown_sources = []              # objects whose scope or match could not be evaluated
        for sid, obj in source_objects.items():
            ctx = context_of(obj)
            if scope is not None:
                try:
                    if not _truthy(scope.evaluate(obj, ctx)):
                        continue
                except RuleError as exc:
                    plan.errors.append({"object": sid, "source": sid, "rule": exc.rule, "error": exc.message})
                    unknown_sources.append(obj)
                    continue
            in_scope[sid] = obj
            if ctx is not None:
                contexts[sid] = ctx
        plan.in_scope = len(in_scope)

        # 2. target indexes, one per match pair -----------------------------------------------------------------
        indexes = []
        for pair in wf.match:
            index = {}
            attribute = pair.target
            case_sensitive = pair.case_sensitive
            for tid, tobj in target_objects.items():
                value = tobj.get(attribute)
                if value is None or value == "":
                    continue
                for key in _match_values(value, case_sensitive):
                    hit = index.get(key)
                    if hit is None:
                        index[key] = tid
                    elif isinstance(hit, list):
                        if tid not in hit:
                            hit.append(tid)
                    elif hit != tid:
                        index[key] = [hit, tid]
            indexes.append(index)

        def candidates_of(obj, ctx, sid):
            values = []
            found = None
            for position, pair in enumerate(wf.match):
                vals = _match_values(pair.source.evaluate(obj, ctx), pair.case_sensitive)
                values.append(vals)
                index = indexes[position]
                for key in vals:
                    hit = index.get(key)
                    if hit is None:
                        continue
                    if found is None:
                        found = set(hit) if isinstance(hit, list) else set([hit])
                    elif isinstance(hit, list):
                        found.update(hit)
                    else:
                        found.add(hit)
            return values, found

        # Rejected / unknown sources protect whatever they would have matched. One that cannot be identified (its
        # match attributes unreadable) could be anyone: then nobody is deprovisioned this run.
        unidentified = []
        for item in list(rejected) + [{"attributes": o} for o in unknown_sources]:
            attrs = item.get("attributes") or {}
            readable = [p for p in wf.match if p.source.source_attributes() <= set(attrs)]
            found = None
            if readable:
                try:
                    _values, found = candidates_of(attrs, context_of(attrs), None)
                except (RuleError, Exception):  # best effort on partial data
                    readable = []
            if found:
                plan.protected.update(found)
            elif len(readable) < len(wf.match):
                unidentified.append(item.get("object") or "?")
        if unidentified and not source_incomplete:
            source_incomplete = ("%d source object(s) could not be read well enough to tell who they are (first: "
                                 "%s)" % (len(unidentified), unidentified[0]))
        plan.source_incomplete = source_incomplete

        # 3. match ----------------------------------------------------------------------------------------------
        claims = {}
        unmatched = []
        create_keys = {}                  # (pair, value) -> [sid] among unmatched: duplicates would be created twice
        for sid, obj in in_scope.items():
            try:
                values, found = candidates_of(obj, contexts.get(sid), sid)
            except RuleError as exc:
                plan.errors.append({"object": sid, "source": sid, "rule": exc.rule, "error": exc.message})
                continue
            if not any(values):
                plan.errors.append({"object": sid, "source": sid, "error": "no value for the match attribute(s) %s"
                                    % ", ".join(p.source.describe() for p in wf.match)})
                continue
            if found is None:
                unmatched.append(sid)
                for position, vals in enumerate(values):
                    for key in vals:
                        create_keys.setdefault((position, key), []).append(sid)
            elif len(found) == 1:
                tid = next(iter(found))
                claim = claims.get(tid)
                if claim is None:
                    claims[tid] = sid
                elif isinstance(claim, list):
                    claim.append(sid)
                else:
                    claims[tid] = [claim, sid]
            else:
                plan.protected.update(found)
                plan.errors.append({"object": sid, "source": sid, "error": "matches %d target objects (%s): fix the "
                                    "duplicates, the workflow does not guess" % (
                                        len(found), ", ".join(sorted(self._label(target_objects, t) for t in found)))})
        matched = plan.matched
        for tid, claim in claims.items():
            if isinstance(claim, list):
                plan.protected.add(tid)
                for sid in claim:
                    others = [s for s in claim if s != sid]
                    plan.errors.append({"object": sid, "source": sid, "error": "matches the same target object %s "
                                        "as %s: fix the duplicates, the workflow does not guess" % (
                                            self._label(target_objects, tid), ", ".join(others))})
            else:
                matched[claim] = tid
        duplicates = set()
        for (position, key), sids in create_keys.items():
            if len(sids) > 1:
                for sid in sids:
                    if sid not in duplicates:
                        duplicates.add(sid)
                        plan.errors.append({"object": sid, "source": sid, "error": "has the same %s (%s) as %s: "
                                            "creating both would duplicate it" % (
                                                wf.match[position].target, key,
                                                ", ".join(s for s in sids if s != sid))})
        if duplicates:
            unmatched = [sid for sid in unmatched if sid not in duplicates]

        # 4. updates (plain attributes) -----------------------------------------------------------------------------
        updates = {}                      # sid -> UpdateOp
        failed_sources = set()
        if self.update_rules:
            rules = self.update_rules
            for sid, tid in matched.items():
                obj = in_scope[sid]
                tobj = target_objects[tid]
                ctx = contexts.get(sid)
                changes = None
                try:
                    for attribute, rule, spec in rules:
                        desired = normalize(rule.evaluate(obj, ctx), spec)
                        current = normalize(tobj.get(attribute), spec)
                        if desired != current:
                            if changes is None:
                                changes = {}
                            changes[attribute] = (current, desired)
                except RuleError as exc:
                    plan.errors.append({"object": self._label(target_objects, tid), "source": sid, "id": tid,
                                        "rule": exc.rule, "error": exc.message})
                    failed_sources.add(sid)
                    continue
                except ValueError_ as exc:
                    plan.errors.append({"object": self._label(target_objects, tid), "source": sid, "id": tid,
                                        "rule": "steps.update.attributes.%s" % attribute, "error": str(exc)})
                    failed_sources.add(sid)
                    continue
                if changes:
                    updates[sid] = UpdateOp(tid, sid, None, changes)

        # 4b. objects this workflow disabled that are back in the source are enabled again ---------------------------
        if deprovisioned and wf.deprovision_action == "disable" and self.target is not None:
            disabled = self.target.disable_attributes(self.object_type) or {}
            create_rules = dict((a, r) for a, r, _s in self.create_rules)
            for sid, tid in matched.items():
                if tid not in deprovisioned or sid in failed_sources:
                    continue
                tobj = target_objects[tid]
                for attribute, off in disabled.items():
                    spec = self.spec(attribute)
                    rule = create_rules.get(attribute)
                    try:
                        want = rule.evaluate(in_scope[sid]) if rule is not None else None
                    except RuleError:
                        want = None
                    if want is None and isinstance(off, bool):
                        want = not off
                    want = normalize(want, spec)
                    have = normalize(tobj.get(attribute), spec)
                    if want is not None and want != have:
                        op = updates.get(sid)
                        if op is None:
                            op = updates[sid] = UpdateOp(tid, sid, None, {})
                        op.changes[attribute] = (have, want)
                plan.restored.add(tid)

        # 5. creates -------------------------------------------------------------------------------------------
        creates = {}
        if wf.create is not None:
            match_targets = [(p.target, p.source) for p in wf.match]
            for sid in unmatched:
                obj = in_scope[sid]
                ctx = contexts.get(sid)
                attributes = {}
                try:
                    for attribute, rule, spec in self.create_rules:
                        value = normalize(rule.evaluate(obj, ctx), spec)
                        if value is not None:
                            attributes[attribute] = value
                    # The match key is always written, so an interrupted run finds what it created.
                    for attribute, rule in match_targets:
                        if attribute not in attributes:
                            value = normalize(rule.evaluate(obj, ctx), self.spec(attribute))
                            if value is not None:
                                attributes[attribute] = value
                except RuleError as exc:
                    plan.errors.append({"object": sid, "source": sid, "rule": exc.rule, "error": exc.message})
                    failed_sources.add(sid)
                    continue
                except ValueError_ as exc:
                    plan.errors.append({"object": sid, "source": sid,
                                        "rule": "steps.create.attributes.%s" % attribute, "error": str(exc)})
                    failed_sources.add(sid)
                    continue
                if self.target is not None:
                    attributes = self.target.prepare_create(self.object_type, attributes)
                missing = [name for name, spec in self.target_schema.items()
                           if spec.required_on_create and not spec.write_only and name not in attributes
                           and name not in self.ref_attributes]
                if missing:
                    plan.errors.append({"object": sid, "source": sid, "error": "cannot be created: no value for %s"
                                        % ", ".join(sorted(missing))})
                    failed_sources.add(sid)
                    continue
                known_id = self.target.id_for_create(self.object_type, attributes) if self.target else None
                label = self._label_from(attributes) or sid
                op = CreateOp(sid, label, attributes, {}, id=known_id)
                creates[sid] = op
                plan.pending_labels[Pending("object", sid)] = label
        elif unmatched:
            plan.notes.append("%d source object(s) match no target object and the workflow has no create step"
                              % len(unmatched))

        # 6. references ----------------------------------------------------------------------------------------
        ref_of = {}                       # source id -> target id | Pending
        for sid, tid in matched.items():
            ref_of[sid] = tid
        for sid, op in creates.items():
            ref_of[sid] = op.id if op.id is not None else Pending("object", sid)
        if self.update_refs or self.create_refs:
            self._plan_references(plan, in_scope, target_objects, matched, creates, updates, ref_of, lookups or {},
                                  failed_sources)

        # 7. deprovision ---------------------------------------------------------------------------------------
        matched_tids = set(matched.values())
        managed_now = set(t for t in managed if t in target_objects)
        if wf.deprovision_scope == "match_key":
            for tid, tobj in target_objects.items():
                if any(not empty(tobj.get(p.target)) for p in wf.match):
                    managed_now.add(tid)
        plan.managed = managed_now | matched_tids
        if wf.deprovision_action != "none" or self.deprovision_set:
            desired = {}
            if wf.deprovision_action == "disable" and self.target is not None:
                for attribute, value in (self.target.disable_attributes(self.object_type) or {}).items():
                    desired[attribute] = (value, self.spec(attribute))
            for attribute, rule, spec in self.deprovision_set:
                desired[attribute] = (rule.evaluate({}, None), spec)
            for tid in sorted(managed_now - matched_tids - plan.protected, key=str):
                tobj = target_objects[tid]
                if wf.deprovision_action == "delete":
                    plan.deprovisions.append(DeprovisionOp(tid, self._label(target_objects, tid), "delete", {}))
                    continue
                changes = {}
                for attribute, (value, spec) in desired.items():
                    want = normalize(value, spec)
                    have = normalize(tobj.get(attribute), spec)
                    if want != have:
                        changes[attribute] = (have, want)
                if changes:
                    plan.deprovisions.append(DeprovisionOp(
                        tid, self._label(target_objects, tid),
                        "disable" if wf.deprovision_action == "disable" else "set", changes))

        # 8. memberships -----------------------------------------------------------------------------------------
        if wf.memberships:
            self._plan_memberships(plan, in_scope, contexts, ref_of, groups or {}, managed_groups, matched_tids,
                                   managed_now, failed_sources, target_objects)

        # 9. collect --------------------------------------------------------------------------------------------
        plan.creates = [creates[sid] for sid in unmatched if sid in creates]
        for sid, op in updates.items():
            op.label = self._label(target_objects, op.tid)
        plan.updates = sorted(updates.values(), key=lambda op: str(op.label))
        plan.unchanged = len(matched) - len(updates) - len([s for s in failed_sources if s in matched])
        self._fill_labels(plan, target_objects, groups or {}, lower_ids, other_objects or {})
        return plan

    # ------------------------------------------------------------------------------------------------------------
    def _label(self, objects, tid):
        obj = objects.get(tid)
        if obj is not None:
            for attribute in self.label_attrs:
                value = obj.get(attribute)
                if value:
                    return value
        return tid

    def _label_from(self, attributes):
        for attribute in self.label_attrs:
            value = attributes.get(attribute)
            if value:
                return value
        return None

    def _fill_labels(self, plan, target_objects, groups, lower_ids, other_objects):
        wanted = set()
        for op in plan.updates:
            for attribute, (before, after) in op.changes.items():
                if attribute in self.ref_attributes:
                    for value in (before, after):
                        if value is not None and not isinstance(value, Pending):
                            wanted.update(value if isinstance(value, tuple) else (value,))
            for change in op.member_changes.values():
                wanted.update(v for v in change["add"] + change["remove"] if not isinstance(v, Pending))
        for op in plan.creates:
            for value in op.refs.values():
                for item in (value if isinstance(value, list) else [value]):
                    if item is not None and not isinstance(item, Pending):
                        wanted.add(item)
        for op in plan.memberships:
            wanted.update(v for v in op.add + op.removals if not isinstance(v, Pending))
        others = list(other_objects.values())
        for value in wanted:
            key = str(value).lower()
            tid = lower_ids.get(key)
            if tid is not None:
                plan.labels[key] = self._label(target_objects, tid)
                continue
            for objects, attributes in others:
                obj = objects.get(value)
                if obj is not None:
                    plan.labels[key] = next((obj[a] for a in attributes if obj.get(a)), value)
                    break
            else:
                plan.labels[key] = value

    # ------------------------------------------------------------------------------------------------------------
    def lookup_type(self, rule):
        """The object type a ``lookup`` reference rule searches: its ``object_type``, else what the target attribute
        refers to (``members`` -> user), else the workflow's target type."""
        if rule.lookup_type:
            return rule.lookup_type
        for attribute, other, spec in self.update_refs + self.create_refs:
            if other is rule and spec is not None and spec.reference:
                return spec.reference
        return self.object_type

    def _resolver(self, rule, in_scope, target_objects, creates, ref_of, lookups):
        """A function: raw referring value -> target id / Pending / None (unresolved)."""
        if rule.lookup:
            lookup_type = self.lookup_type(rule)
            index = lookups.get((lookup_type, rule.lookup))
            if index is None and lookup_type == self.object_type:
                index = {}
                for tid, tobj in target_objects.items():
                    for key in _match_values(tobj.get(rule.lookup), False):
                        index.setdefault(key, []).append(tid)
                for sid, op in creates.items():
                    for key in _match_values(op.attributes.get(rule.lookup), False):
                        index.setdefault(key, []).append(ref_of[sid])
                lookups[(lookup_type, rule.lookup)] = index
            index = index or {}

            def resolve(value):
                hits = index.get(str(value).strip().casefold())
                if not hits:
                    return None, "no %s with %s '%s'" % (lookup_type, rule.lookup, value)
                if len(hits) > 1:
                    return None, "%d %ss have %s '%s'" % (len(hits), lookup_type, rule.lookup, value)
                return hits[0], None
            return resolve
        if rule.by:
            by_index = {}
            for sid, obj in in_scope.items():
                for key in _match_values(obj.get(rule.by), False):
                    by_index.setdefault(key, []).append(sid)

            def resolve(value):
                sids = by_index.get(str(value).strip().casefold())
                if not sids:
                    return None, "no source object in scope has %s '%s'" % (rule.by, value)
                if len(sids) > 1:
                    return None, "%d source objects have %s '%s'" % (len(sids), rule.by, value)
                ref = ref_of.get(sids[0])
                if ref is None:
                    return None, "'%s' has no target object" % value
                return ref, None
            return resolve

        def resolve(value):
            ref = ref_of.get(value)
            if ref is None:
                if value in in_scope:
                    return None, "'%s' has no target object" % value
                return None, "'%s' is not a source object in scope" % value
            return ref, None
        return resolve

    def _plan_references(self, plan, in_scope, target_objects, matched, creates, updates, ref_of, lookups,
                         failed_sources):
        resolvers = {}

        def resolver(rule):
            got = resolvers.get(id(rule))
            if got is None:
                got = resolvers[id(rule)] = self._resolver(rule, in_scope, target_objects, creates, ref_of, lookups)
            return got

        def desired_refs(sid, obj, attribute, rule, spec):
            multi = spec.multi_valued if spec is not None else False
            refs = []
            for raw in rule.evaluate(obj):
                ref, problem = resolver(rule)(raw)
                if ref is None:
                    plan.warnings.append("%s: %s: %s; left unchanged" % (sid, attribute, problem) if not multi else
                                         "%s: %s: %s; skipped" % (sid, attribute, problem))
                    if not multi:
                        return False, None
                    continue
                refs.append(ref)
            if multi:
                return True, refs
            if len(refs) > 1:
                plan.warnings.append("%s: %s: %d values for a single reference; left unchanged"
                                     % (sid, attribute, len(refs)))
                return False, None
            return True, (refs[0] if refs else None)

        # matched objects: compare
        if self.update_refs:
            for sid, tid in matched.items():
                if sid in failed_sources:
                    continue
                obj = in_scope[sid]
                tobj = target_objects[tid]
                for attribute, rule, spec in self.update_refs:
                    ok, want = desired_refs(sid, obj, attribute, rule, spec)
                    if not ok:
                        continue
                    multi = spec.multi_valued if spec is not None else False
                    case_insensitive = spec.case_insensitive if spec is not None else False

                    def key(ref):
                        if isinstance(ref, Pending):
                            return ref
                        return str(ref).lower() if case_insensitive else str(ref)
                    have_raw = tobj.get(attribute)
                    if multi:
                        have = dict((key(v), v) for v in _ref_list(have_raw))
                        want_map = dict((key(v), v) for v in want)
                        add = [want_map[k] for k in want_map if k not in have]
                        remove = [have[k] for k in have if k not in want_map]
                        if add or remove:
                            op = updates.get(sid)
                            if op is None:
                                op = updates[sid] = UpdateOp(tid, sid, None, {})
                            op.member_changes[attribute] = {"add": sorted(add, key=str), "remove": sorted(remove)}
                    else:
                        have = _ref_list(have_raw)
                        have = have[0] if have else None
                        if (None if want is None else key(want)) != (None if have is None else key(have)):
                            op = updates.get(sid)
                            if op is None:
                                op = updates[sid] = UpdateOp(tid, sid, None, {})
                            op.changes[attribute] = (have, want)
        # creates: everything that resolves
        if self.create_refs:
            for sid, op in creates.items():
                obj = in_scope[sid]
                for attribute, rule, spec in self.create_refs:
                    ok, want = desired_refs(sid, obj, attribute, rule, spec)
                    if ok and want not in (None, []):
                        op.refs[attribute] = want

    # ------------------------------------------------------------------------------------------------------------
    def _plan_memberships(self, plan, in_scope, contexts, ref_of, groups, managed_groups, matched_tids, managed_now,
                          failed_sources, target_objects):
        wf = self.wf
        indexes = {}
        desired = {}                      # group key (id or Pending) -> {member key: ref}
        labels = {}
        group_errors = set()
        untouchable = set()               # target ids whose group could not be computed: never removed
        pending_groups = {}
        for membership in wf.memberships:
            attribute = membership.match_attribute
            index = indexes.get(attribute)
            if index is None:
                index = indexes[attribute] = {}
                for gid, gobj in groups.items():
                    for key in _match_values(gobj.get(attribute), False):
                        index.setdefault(key, []).append(gid)
            for sid, obj in in_scope.items():
                ref = ref_of.get(sid)
                if ref is None:
                    continue
                try:
                    raw = membership.group.evaluate(obj, contexts.get(sid))
                except RuleError as exc:
                    plan.errors.append({"object": sid, "source": sid, "rule": exc.rule, "error": exc.message})
                    if not isinstance(ref, Pending):
                        untouchable.add(str(ref).lower())
                    continue
                names = raw if isinstance(raw, (list, tuple, set)) else [raw]
                for name in names:
                    if empty(name):
                        continue
                    name = str(name).strip()
                    if not name:
                        continue
                    key = name.casefold()
                    gids = index.get(key)
                    if not gids:
                        if not membership.create_missing:
                            if (attribute, key) not in group_errors:
                                group_errors.add((attribute, key))
                                plan.errors.append({"object": name, "error": "group '%s' does not exist (%s; set "
                                                    "create_missing: true to create it)" % (name, membership.name)})
                            continue
                        gkey = pending_groups.get(key)
                        if gkey is None:
                            gkey = pending_groups[key] = Pending("group", key)
                            plan.group_creates.append(GroupCreateOp(gkey, name, self._group_attributes(
                                membership, name), membership))
                            plan.pending_labels[gkey] = name
                        labels[gkey] = name
                    elif len(gids) > 1:
                        if (attribute, key) not in group_errors:
                            group_errors.add((attribute, key))
                            plan.errors.append({"object": name, "error": "%d groups are named '%s': the workflow does "
                                                "not guess which one to fill" % (len(gids), name)})
                        continue
                    else:
                        gkey = gids[0]
                        labels[gkey] = groups[gkey].get(attribute) or name
                    members = desired.get(gkey)
                    if members is None:
                        members = desired[gkey] = {}
                    members[ref if isinstance(ref, Pending) else str(ref).lower()] = ref
        remove_enabled = any(m.remove for m in wf.memberships)
        removable = set(str(t).lower() for t in (managed_now | matched_tids)) - untouchable
        removable -= set(str(t).lower() for t in plan.protected)
        matched_lower = set(str(t).lower() for t in matched_tids)
        managed = set(g for g in desired if not isinstance(g, Pending))
        managed |= set(g for g in managed_groups if g in groups)
        plan.managed_groups = managed
        for gkey in sorted(managed, key=str) + [g for g in desired if isinstance(g, Pending)]:
            want = desired.get(gkey, {})
            current = {}
            if not isinstance(gkey, Pending):
                for member in _ref_list(groups[gkey].get("members")):
                    current[str(member).lower()] = member
            add = [ref for k, ref in want.items() if k not in current]
            remove = []
            leavers = []                  # members whose source object is gone: a deprovision, held by the guards
            if remove_enabled:
                for k, member in current.items():
                    if k in removable and k not in want:
                        (remove if k in matched_lower else leavers).append(member)
            if add or remove or leavers:
                label = labels.get(gkey)
                if label is None:
                    label = groups[gkey].get("displayName") or gkey
                plan.memberships.append(MembershipOp(gkey, label, sorted(add, key=str), sorted(remove),
                                                     sorted(leavers)))

    def _group_attributes(self, membership, name):
        attributes = {"displayName": name}
        if membership.description:
            attributes["description"] = membership.description
        attributes["groupType"] = membership.group_type
        if self.target is not None:
            attributes = self.target.prepare_create(membership.object_type, attributes)
        attributes.pop("groupType", None)
        return attributes


def _ref_list(value):
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, set)):
        items = value
    else:
        items = [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("id")
        if item:
            out.append(item)
    return out
