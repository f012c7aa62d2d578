# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Planning group memberships derived from each source object (e.g. one group per Department): groups to create,
members to add, and members to remove, split into those who moved (matched objects) and leavers (managed objects
whose source is gone, held back with the deprovisions by the safety guards). A mixin of ``Planner``."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.sync.matching import match_values, plain
from ansible_collections.idsync.entra.plugins.module_utils.sync.ops import GroupCreateOp, MembershipOp, Pending
from ansible_collections.idsync.entra.plugins.module_utils.sync.references import ref_list
from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import RuleError
from ansible_collections.idsync.entra.plugins.module_utils.sync.values import empty


class MembershipPlanning(object):
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
                    for key in match_values(gobj.get(attribute), False):
                        index.setdefault(key, []).append(gid)
            for sid, obj in in_scope.items():
                ref = ref_of.get(sid)
                if ref is None:
                    continue
                try:
                    raw = plain(membership.group, membership.group.evaluate(obj, contexts.get(sid)))
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
        mark = self.group_ownership
        plan.managed_groups = managed
        for gkey in sorted(managed, key=str) + [g for g in desired if isinstance(g, Pending)]:
            want = desired.get(gkey, {})
            current = {}
            if not isinstance(gkey, Pending):
                for member in ref_list(groups[gkey].get(wf.members_attribute)):
                    current[str(member).lower()] = member
            add = [ref for k, ref in want.items() if k not in current]
            remove = []
            leavers = []                  # members whose source object is gone: a deprovision, held by the guards
            if remove_enabled:
                for k, member in current.items():
                    if k in removable and k not in want:
                        (remove if k in matched_lower else leavers).append(member)
            attributes = {}
            if mark is not None and gkey in desired and not isinstance(gkey, Pending) \
                    and mark.needs_mark(groups[gkey]):
                attributes[mark.attribute] = mark.name    # a group this workflow fills carries its mark
            if add or remove or leavers or attributes:
                label = labels.get(gkey)
                if label is None:
                    label = groups[gkey].get("displayName") or gkey
                plan.memberships.append(MembershipOp(gkey, label, sorted(add, key=str), sorted(remove),
                                                     sorted(leavers), attributes))

    def _group_attributes(self, membership, name):
        attributes = {"displayName": name}
        if membership.description:
            attributes["description"] = membership.description
        attributes["groupType"] = membership.group_type
        if self.target is not None:
            attributes = self.target.prepare_create(membership.object_type, attributes)
        attributes.pop("groupType", None)
        if self.group_ownership is not None:
            attributes[self.group_ownership.attribute] = self.group_ownership.name
        return attributes
