# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Planning: source objects + target objects -> the list of changes. Pure (no I/O), O(n) with dict indexes.

The planner decides, for one workflow run:

* which source objects are in scope (the ``scope`` rule);
* which target object each one matches (``match`` pairs, any pair matching; two candidates is an error for that
  object, never a guess; two sources claiming one target is an error for both);
* creates (unmatched sources) with their attributes (``sync.attributes``: rules in dependency order, unique values,
  the target's limits), updates (only the attributes whose normalised value changed), references (``references``);
* deprovisions: target objects this workflow manages whose source disappeared or left scope;
* group memberships derived from each source object (``memberships``), only the difference.

Every per-object problem becomes an entry in ``plan.errors``; the object is left alone (and protected from
deprovisioning) and the rest of the plan stands.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.sync.attributes import AttributeComputer, ObjectError
from ansible_collections.idsync.entra.plugins.module_utils.sync.matching import match_values, plain, truthy
from ansible_collections.idsync.entra.plugins.module_utils.sync.memberships import MembershipPlanning
from ansible_collections.idsync.entra.plugins.module_utils.sync.ops import (  # noqa: F401 (Pending: re-exported)
    CreateOp, DeprovisionOp, Pending, Plan, UpdateOp,
)
from ansible_collections.idsync.entra.plugins.module_utils.sync.references import ReferencePlanning
from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import ReferenceRule, RuleError
from ansible_collections.idsync.entra.plugins.module_utils.sync.values import (
    ValueError_, desired_value, empty, normalize,
)

_match_values = match_values              # the engine's name for it


class Planner(ReferencePlanning, MembershipPlanning):
    """Plans one workflow. ``target`` is the target connector (only its pure hooks are used: ``prepare_create``,
    ``id_for_create``, ``label_attributes``, ``disable_attributes``, ``uniqueness``, ``check_values``)."""

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
        create = workflow.create_rules()
        self.update_refs = [(a, r, self.spec(a)) for a, r in update.items() if isinstance(r, ReferenceRule)]
        self.create_refs = [(a, r, self.spec(a)) for a, r in create.items() if isinstance(r, ReferenceRule)]
        self.deprovision_set = [(a, r, self.spec(a)) for a, r in workflow.deprovision_set.items()]
        self.ref_attributes = set(a for a, _r, _s in self.update_refs + self.create_refs)
        for name, spec in self.target_schema.items():
            if spec.reference:
                self.ref_attributes.add(name)
        self.values = AttributeComputer(workflow, self.spec, target, self.object_type)
        self.ownership = self.group_ownership = None
        self._foreign = set()

    def spec(self, attribute):
        return self.target_schema.get(attribute)

    def unique_reads(self):
        """{object type: set of attributes} the unique-value rules need read (what occupies their values)."""
        reads = {}
        for attribute in self.values.unique_attributes():
            uniqueness = self.target.uniqueness(self.object_type, attribute)
            reads.setdefault(self.object_type, set()).update(uniqueness.read)
            for object_type, attributes in uniqueness.other_types.items():
                reads.setdefault(object_type, set()).update(attributes)
        return reads

    # ------------------------------------------------------------------------------------------------------------
    def plan(self, source_objects, target_objects, managed=(), rejected=(), groups=None, managed_groups=(),
             lookups=None, other_objects=None, deprovisioned=(), source_incomplete=None, unique_objects=None,
             ownership=None, group_ownership=None):
        """``source_objects`` / ``target_objects``: {id: {attribute: value}}. ``managed``: target ids this workflow
        managed before. ``rejected``: unreadable source objects ({"object", "error", "attributes"}): reported, and
        whatever target they would match is protected. ``groups``: {id: {...,"members": [ids]}} of the group type
        when the workflow has memberships. ``lookups``: {(object_type, attribute): {normalised value: [ids]}};
        ``other_objects``: {object_type: (objects, label attributes)} read for those lookups (to name members).
        ``deprovisioned``: target ids this workflow disabled earlier: one that matches a source again is enabled.
        ``source_incomplete``: why the source read may lack objects that still exist (None when it is complete):
        then deprovisions are withheld (``plan.withheld``) and only matched objects leave groups.
        ``unique_objects``: {object type: {id: object}} of other types read for unique-value rules.
        ``ownership`` / ``group_ownership``: the workflow's sync.ownership.Ownership on the target / group type
        (None when the target carries no marks): creates and unmarked matched objects get the mark, and objects
        another workflow marked are never deprovisioned."""
        plan = Plan()
        self.ownership = ownership
        self.group_ownership = group_ownership
        self._foreign = ownership.foreign(target_objects) if ownership is not None else set()
        self._in_scope = {}
        plan.source_count = len(source_objects)
        plan.target_count = len(target_objects)
        self._prepare_unique(target_objects, unique_objects or {})
        for item in rejected:
            plan.errors.append({"object": item.get("object"), "error": item.get("error")})
        in_scope, unknown_sources = self._scope(plan, source_objects)
        self._in_scope = in_scope
        indexes = self._indexes(target_objects)
        self._protect_unreadable(plan, indexes, rejected, unknown_sources, source_incomplete)
        matched, unmatched = self._match(plan, in_scope, indexes, target_objects)
        failed_sources = set()
        updates = self._updates(plan, in_scope, matched, target_objects, failed_sources)
        if deprovisioned and self.wf.deprovision_action == "disable" and self.target is not None:
            self._restores(plan, in_scope, matched, target_objects, deprovisioned, updates, failed_sources)
        if ownership is not None:
            self._mark_matched(matched, target_objects, updates, failed_sources)
        creates = self._creates(plan, in_scope, unmatched, failed_sources)

        ref_of = dict(matched)            # source id -> target id | Pending
        for sid, op in creates.items():
            ref_of[sid] = op.id if op.id is not None else Pending("object", sid)
        if self.update_refs or self.create_refs:
            self._plan_references(plan, in_scope, target_objects, matched, creates, updates, ref_of, lookups or {},
                                  failed_sources)
        matched_tids = set(matched.values())
        managed_now = self._deprovisions(plan, target_objects, managed, matched_tids)
        if self.wf.memberships:
            self._plan_memberships(plan, in_scope, {}, ref_of, groups or {}, managed_groups, matched_tids,
                                   managed_now, failed_sources, target_objects)

        plan.creates = [creates[sid] for sid in unmatched if sid in creates]
        for op in updates.values():
            op.label = self._label(target_objects, op.tid)
        plan.updates = sorted(updates.values(), key=lambda op: str(op.label))
        plan.unchanged = len(matched) - len(updates) - len([s for s in failed_sources if s in matched])
        lower_ids = dict((str(tid).lower(), tid) for tid in target_objects)
        self._fill_labels(plan, target_objects, groups or {}, lower_ids, other_objects or {})
        return plan

    # -- steps ----------------------------------------------------------------------------------------------------
    def _prepare_unique(self, target_objects, unique_objects):
        if not self.values.unique_attributes():
            return
        sets = {}
        for attribute in self.values.unique_attributes():
            uniqueness = self.target.uniqueness(self.object_type, attribute)
            sets[attribute] = [target_objects] + [unique_objects.get(t, {}) for t in uniqueness.other_types]
        self.values.prepare_unique(sets)

    def _scope(self, plan, source_objects):
        scope = self.wf.source.scope
        in_scope = {}
        unknown = []                      # objects whose scope could not be evaluated
        for sid, obj in source_objects.items():
            if scope is not None:
                try:
                    if not truthy(plain(scope, scope.evaluate(obj))):
                        continue
                except RuleError as exc:
                    plan.errors.append({"object": sid, "source": sid, "rule": exc.rule, "error": exc.message})
                    unknown.append(obj)
                    continue
            in_scope[sid] = obj
        plan.in_scope = len(in_scope)
        return in_scope, unknown

    def _indexes(self, target_objects):
        """One index per match pair: key -> target id, or a list of ids when several share the key."""
        indexes = []
        for pair in self.wf.match:
            index = {}
            for tid, tobj in target_objects.items():
                value = tobj.get(pair.target)
                if value is None or value == "":
                    continue
                for key in match_values(value, pair.case_sensitive):
                    hit = index.get(key)
                    if hit is None:
                        index[key] = tid
                    elif isinstance(hit, list):
                        if tid not in hit:
                            hit.append(tid)
                    elif hit != tid:
                        index[key] = [hit, tid]
            indexes.append(index)
        return indexes

    def _candidates(self, indexes, obj):
        """(match values per pair, set of target ids they hit or None)."""
        values = []
        found = None
        for position, pair in enumerate(self.wf.match):
            vals = match_values(plain(pair.source, pair.source.evaluate(obj)), pair.case_sensitive)
            values.append(vals)
            index = indexes[position]
            for key in vals:
                hit = index.get(key)
                if hit is None:
                    continue
                if found is None:
                    found = set()
                found.update(hit if isinstance(hit, list) else (hit,))
        return values, found

    def _protect_unreadable(self, plan, indexes, rejected, unknown_sources, source_incomplete):
        """Rejected / unknown sources protect whatever they would have matched. One that cannot be identified (its
        match attributes unreadable) could be anyone: then nobody is deprovisioned this run."""
        unidentified = []
        for item in list(rejected) + [{"attributes": o} for o in unknown_sources]:
            attrs = item.get("attributes") or {}
            readable = [p for p in self.wf.match if p.source.source_attributes() <= set(attrs)]
            found = None
            if readable:
                try:
                    _values, found = self._candidates(indexes, attrs)
                except Exception:  # pylint: disable=broad-except  # best effort on partial data
                    readable = []
            if found:
                plan.protected.update(found)
            elif len(readable) < len(self.wf.match):
                unidentified.append(item.get("object") or "?")
        if unidentified and not source_incomplete:
            source_incomplete = ("%d source object(s) could not be read well enough to tell who they are (first: "
                                 "%s)" % (len(unidentified), unidentified[0]))
        plan.source_incomplete = source_incomplete

    def _match(self, plan, in_scope, indexes, target_objects):
        wf = self.wf
        claims = {}
        unmatched = []
        create_keys = {}                  # (pair, value) -> [sid] among unmatched: duplicates would be created twice
        unidentified = []                 # in scope, but which target object is theirs cannot be told
        for sid, obj in in_scope.items():
            try:
                values, found = self._candidates(indexes, obj)
            except RuleError as exc:
                plan.errors.append({"object": sid, "source": sid, "rule": exc.rule, "error": exc.message})
                unidentified.append(sid)
                continue
            if not any(values):
                plan.errors.append({"object": sid, "source": sid, "error": "no value for the match attribute(s) %s"
                                    % ", ".join(p.source.describe() for p in wf.match)})
                unidentified.append(sid)
                continue
            if found is None:
                unmatched.append(sid)
                for position, vals in enumerate(values):
                    for key in vals:
                        create_keys.setdefault((position, key), []).append(sid)
            elif len(found) == 1:
                tid = next(iter(found))
                claims.setdefault(tid, []).append(sid)
            else:
                plan.protected.update(found)
                plan.errors.append({"object": sid, "source": sid, "error": "matches %d target objects (%s): fix the "
                                    "duplicates, the workflow does not guess" % (
                                        len(found), ", ".join(sorted(self._label(target_objects, t) for t in found)))})
        matched = plan.matched
        for tid, claim in claims.items():
            if len(claim) > 1:
                plan.protected.add(tid)
                for sid in claim:
                    others = [s for s in claim if s != sid]
                    plan.errors.append({"object": sid, "source": sid, "error": "matches the same target object %s "
                                        "as %s: fix the duplicates, the workflow does not guess" % (
                                            self._label(target_objects, tid), ", ".join(others))})
            else:
                matched[claim[0]] = tid
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
        if unidentified and not plan.source_incomplete:
            # Still in the source, yet matched to nothing: their own account would look like a leaver's.
            plan.source_incomplete = ("%d source object(s) in scope have no usable value for the match attribute(s) "
                                      "%s (first: %s), so any target object could be theirs" % (
                                          len(unidentified), ", ".join(p.source.describe() for p in wf.match),
                                          unidentified[0]))
        return matched, [sid for sid in unmatched if sid not in duplicates]

    def _updates(self, plan, in_scope, matched, target_objects, failed_sources):
        updates = {}                      # sid -> UpdateOp
        if not self.values.update_order:
            return updates
        rules = self.values.update_rules
        for sid, tid in matched.items():
            tobj = target_objects[tid]
            try:
                wanted = self.values.update_values(in_scope[sid])
                changes = {}
                for attribute, want in wanted.items():
                    current = normalize(tobj.get(attribute), self.spec(attribute))
                    if want != current:
                        changes[attribute] = (current, want)
                if changes:
                    self.values.check(wanted, rules, only=changes)
            except ObjectError as exc:
                plan.errors.append({"object": self._label(target_objects, tid), "source": sid, "id": tid,
                                    "rule": exc.rule, "error": exc.message})
                failed_sources.add(sid)
                continue
            if changes:
                updates[sid] = UpdateOp(tid, sid, None, changes)
        return updates

    def _mark_matched(self, matched, target_objects, updates, failed_sources):
        """Matched objects without this workflow's mark get it (after a rename: the new name)."""
        attribute = self.ownership.attribute
        for sid, tid in matched.items():
            tobj = target_objects[tid]
            if sid in failed_sources or not self.ownership.needs_mark(tobj):
                continue
            op = updates.get(sid)
            if op is None:
                op = updates[sid] = UpdateOp(tid, sid, None, {})
            op.changes[attribute] = (tobj.get(attribute), self.ownership.name)

    def _restores(self, plan, in_scope, matched, target_objects, deprovisioned, updates, failed_sources):
        """Objects this workflow disabled that are back in the source are enabled again."""
        disabled = self.target.disable_attributes(self.object_type) or {}
        create_rules = self.wf.create_rules()
        for sid, tid in matched.items():
            if tid not in deprovisioned or sid in failed_sources:
                continue
            tobj = target_objects[tid]
            for attribute, off in disabled.items():
                spec = self.spec(attribute)
                rule = create_rules.get(attribute)
                try:
                    want = desired_value(rule.evaluate(in_scope[sid]) if rule is not None else None, spec)
                except (RuleError, ValueError_):
                    want = None
                if want is None and isinstance(off, bool):
                    want = not off
                have = normalize(tobj.get(attribute), spec)
                if want is not None and want != have:
                    op = updates.get(sid)
                    if op is None:
                        op = updates[sid] = UpdateOp(tid, sid, None, {})
                    op.changes[attribute] = (have, want)
            plan.restored.add(tid)

    def _creates(self, plan, in_scope, unmatched, failed_sources):
        creates = {}
        wf = self.wf
        if wf.create is None:
            if unmatched:
                plan.notes.append("%d source object(s) match no target object and the workflow has no create step"
                                  % len(unmatched))
            return creates
        rules = self.values.create_rules
        for sid in unmatched:
            obj = in_scope[sid]
            chosen = []
            try:
                attributes, chosen = self.values.create_values(obj)
                attributes = dict((a, v) for a, v in attributes.items() if v is not None)
                # The match key is always written, so an interrupted run finds what it created.
                for pair in wf.match:
                    if pair.target not in attributes:
                        value = desired_value(pair.source.evaluate(obj), self.spec(pair.target))
                        if value is not None:
                            attributes[pair.target] = value
                if self.target is not None:
                    attributes = self.target.prepare_create(self.object_type, attributes)
                if self.ownership is not None:
                    attributes[self.ownership.attribute] = self.ownership.name
                missing = [name for name, spec in self.target_schema.items()
                           if spec.required_on_create and not spec.write_only and name not in attributes
                           and name not in self.ref_attributes]
                if missing:
                    raise ObjectError("steps.create.attributes", "cannot be created: no value for %s"
                                      % ", ".join(sorted(missing)))
                self.values.check(attributes, rules)
            except (ObjectError, RuleError, ValueError_) as exc:
                self.values.release(chosen)
                rule = getattr(exc, "rule", None) or "match"
                plan.errors.append({"object": sid, "source": sid, "rule": rule,
                                    "error": getattr(exc, "message", None) or str(exc)})
                failed_sources.add(sid)
                continue
            known_id = self.target.id_for_create(self.object_type, attributes) if self.target else None
            label = self._label_from(attributes) or sid
            creates[sid] = CreateOp(sid, label, attributes, {}, id=known_id, chosen=chosen)
            plan.pending_labels[Pending("object", sid)] = label
        return creates

    def _deprovisions(self, plan, target_objects, managed, matched_tids):
        """Plan deprovisions of managed objects that no source object matches; returns the managed ids now."""
        wf = self.wf
        managed_now = set(t for t in managed if t in target_objects)
        if wf.deprovision_scope == "match_key":
            for tid, tobj in target_objects.items():
                if any(not empty(tobj.get(p.target)) for p in wf.match):
                    managed_now.add(tid)
        managed_now -= self._foreign              # another workflow's mark: that workflow manages it
        plan.managed = managed_now | matched_tids
        if wf.deprovision_action == "none" and not self.deprovision_set:
            return managed_now
        wanted = {}
        if wf.deprovision_action == "disable" and self.target is not None:
            for attribute, value in (self.target.disable_attributes(self.object_type) or {}).items():
                wanted[attribute] = (value, self.spec(attribute))
        for attribute, rule, spec in self.deprovision_set:
            wanted[attribute] = (rule.evaluate({}), spec)
        for tid in sorted(managed_now - matched_tids - plan.protected, key=str):
            tobj = target_objects[tid]
            if wf.deprovision_action == "delete":
                plan.deprovisions.append(DeprovisionOp(tid, self._label(target_objects, tid), "delete", {}))
                continue
            changes = {}
            for attribute, (value, spec) in wanted.items():
                want = desired_value(value, spec)
                have = normalize(tobj.get(attribute), spec)
                if want != have:
                    changes[attribute] = (have, want)
            if changes and wf.deprovision_action == "disable" and self.ownership is not None:
                # Say so in the mark: a run whose store was lost still enables this person when they return.
                mark = self.ownership.mark_of(tobj)
                if mark != self.ownership.deprovisioned_mark:
                    changes[self.ownership.attribute] = (mark, self.ownership.deprovisioned_mark)
            if changes:
                plan.deprovisions.append(DeprovisionOp(
                    tid, self._label(target_objects, tid),
                    "disable" if wf.deprovision_action == "disable" else "set", changes))
        return managed_now

    def rechoose(self, op, attribute):
        """The directory refused ``op``'s unique ``attribute`` (another object took it since the run read the
        target): keep that value taken, choose again, and update ``op.attributes``. False when nothing changes."""
        if attribute not in self.values.choosers or op.sid not in self._in_scope:
            return False
        refused = op.attributes.get(attribute)
        self.values.release([c for c in op.chosen if c[0] != attribute])
        self.values.choosers[attribute].take(refused)
        try:
            values, chosen = self.values.create_values(self._in_scope[op.sid])
        except ObjectError:
            return False
        values = dict((a, v) for a, v in values.items() if v is not None)
        if values.get(attribute) == refused:
            return False
        op.attributes.update(values)
        if self.target is not None:
            op.attributes.update(self.target.prepare_create(self.object_type, dict(op.attributes)))
        op.chosen = chosen
        return True

    # -- labels ---------------------------------------------------------------------------------------------------
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
