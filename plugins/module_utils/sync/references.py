# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Planning references (a manager, group members): the referring source values resolved to target ids, or to
objects created later in the same run (``Pending``); only the difference is planned. A mixin of ``Planner``."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.sync.matching import match_values
from ansible_collections.idsync.entra.plugins.module_utils.sync.ops import Pending, UpdateOp


class ReferencePlanning(object):
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
                    for key in match_values(tobj.get(rule.lookup), False):
                        index.setdefault(key, []).append(tid)
                for sid, op in creates.items():
                    for key in match_values(op.attributes.get(rule.lookup), False):
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
                for key in match_values(obj.get(rule.by), False):
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
                        have = dict((key(v), v) for v in ref_list(have_raw))
                        want_map = dict((key(v), v) for v in want)
                        add = [want_map[k] for k in want_map if k not in have]
                        remove = [have[k] for k in have if k not in want_map]
                        if add or remove:
                            op = updates.get(sid)
                            if op is None:
                                op = updates[sid] = UpdateOp(tid, sid, None, {})
                            op.member_changes[attribute] = {"add": sorted(add, key=str), "remove": sorted(remove)}
                    else:
                        have = ref_list(have_raw)
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


def ref_list(value):
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
