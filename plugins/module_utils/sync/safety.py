# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What stands between a bad source and people locked out: three guards, checked before any write.

1. **Incomplete source**: the source read could not identify every object it holds (a rejected row without a
   readable key, a file broken from some line on). A person missing from such a read may not have left, so the run
   deprovisions no one (nor removes leavers from groups). ``force_deletes`` does not override it: fix the source.
2. **Source shrink**: the source holds fewer than ``source_shrink_guard`` percent (default 90) of the objects it
   held in scope on the last run that deprovisioned normally (a truncated export, a header-only file), and more
   than one object is missing. The run withholds its deprovisions and says so; ``force_deletes: true`` overrides it.
3. **Deletion threshold** ("prevent accidental deletes", as Microsoft Entra Connect calls it; 500 there): a run
   that would deprovision more than the threshold stops before writing anything. The default is the smaller of
   500 objects and 10 % of the objects the workflow manages (rounded up), so small tenants are protected too.

Guards 1 and 2 withhold only the deprovisions (creates and updates still apply); guard 3 stops the run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

DEFAULT_SHRINK_GUARD = 90


class Threshold(object):
    """A deletion threshold: ``count`` objects and/or ``percent`` of the managed objects; the smaller binds."""
    __slots__ = ("count", "percent")

    def __init__(self, count=None, percent=None):
        self.count = count
        self.percent = percent

    def limit(self, managed_count):
        limits = []
        if self.count is not None:
            limits.append(int(self.count))
        if self.percent is not None:
            limits.append(int(math.ceil(managed_count * self.percent / 100.0)))
        return min(limits)

    def describe(self, managed_count):
        parts = []
        if self.count is not None:
            parts.append("%d objects" % self.count)
        if self.percent is not None:
            parts.append("%g%% of the %d objects the workflow manages" % (self.percent, managed_count))
        return "%d (%s)" % (self.limit(managed_count), " or ".join(parts) if len(parts) == 1
                            else "the smaller of " + " and ".join(parts))

    def to_result(self):
        return dict((k, v) for k, v in (("count", self.count), ("percent", self.percent)) if v is not None)


def withhold(plan, reason):
    """Move every deprovision (and every removal of a leaver from a group) out of the plan, noting why."""
    held = len(plan.deprovisions) + sum(len(op.leavers) for op in plan.memberships)
    if not held:
        return 0
    plan.withheld.extend(plan.deprovisions)
    plan.deprovisions = []
    for op in plan.memberships:
        plan.withheld_leaver_removals += len(op.leavers)
        op.leavers = []
    plan.memberships = [op for op in plan.memberships if op.add or op.remove]
    plan.withheld_reason = reason
    return held


def check_source_shrink(workflow, plan, baseline):
    """A sentence when the source shrank below the guard since ``baseline`` (in-scope objects of the last normal
    run), else None."""
    guard = workflow.shrink_guard
    # One object fewer is never a shrink: a tenant of five people can lose one without a forced run.
    if not guard or not baseline or plan.in_scope * 100 >= baseline * guard or baseline - plan.in_scope <= 1:
        return None
    return ("the source holds %d objects in scope, %d%% of the %d it held on the last run (the guard is %d%%): a "
            "truncated or wrong source file? Deprovisions are withheld; if the source really shrank, run once with "
            "force_deletes: true" % (plan.in_scope, plan.in_scope * 100 // baseline, baseline, guard))


def check_deletion_threshold(workflow, plan):
    """{exceeded, deprovisions, limit, threshold, forced, message}."""
    count = plan.deprovision_count()
    managed = len(plan.managed)
    threshold = workflow.threshold
    limit = threshold.limit(managed)
    exceeded = count > limit
    forced = bool(workflow.force_deletes)
    message = None
    if exceeded:
        if forced:
            message = ("%d deprovisions exceed the deletion threshold of %s; going ahead because force_deletes is "
                       "true" % (count, threshold.describe(managed)))
        else:
            message = ("Stopped before any change: the run would deprovision %d objects (%s), more than the "
                       "deletion threshold of %s. Check the source (a truncated file, a wrong scope?); if the "
                       "deprovisions are intended, run once with force_deletes: true or raise deletion_threshold."
                       % (count, workflow.deprovision_action if workflow.deprovision_action != "none" else "set",
                          threshold.describe(managed)))
    return {
        "exceeded": exceeded and not forced,
        "deprovisions": count,
        "limit": limit,
        "threshold": threshold.to_result(),
        "forced": exceeded and forced,
        "message": message,
    }
