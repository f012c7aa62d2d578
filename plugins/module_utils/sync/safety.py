# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The deletion threshold ("prevent accidental deletes", as Microsoft Entra Connect calls it; default 500).

A run whose plan deprovisions (disables, deletes or modifies as deprovisioned) more target objects than the
threshold stops before writing anything, unless ``force_deletes: true``. The threshold is a number of objects or a
percentage of the objects the workflow manages.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


def check_deletion_threshold(workflow, plan):
    """{exceeded, deprovisions, limit, threshold, forced, message}."""
    count = plan.deprovision_count()
    number, percent = workflow.threshold
    managed = len(plan.managed)
    limit = workflow.threshold_limit(managed)
    described = ("%g%% of the %d objects the workflow manages (%d)" % (number, managed, limit)) if percent \
        else "%d" % limit
    exceeded = count > limit
    forced = bool(workflow.force_deletes)
    message = None
    if exceeded:
        if forced:
            message = ("%d deprovisions exceed the deletion threshold of %s; going ahead because force_deletes is "
                       "true" % (count, described))
        else:
            message = ("Stopped before any change: the run would deprovision %d objects (%s), more than the "
                       "deletion threshold of %s. Check the source (a truncated file, a wrong scope?); if the "
                       "deprovisions are intended, run once with force_deletes: true or raise deletion_threshold."
                       % (count, workflow.deprovision_action if workflow.deprovision_action != "none" else "set",
                          described))
    return {
        "exceeded": exceeded and not forced,
        "deprovisions": count,
        "limit": limit,
        "threshold": ("%g%%" % number) if percent else number,
        "forced": exceeded and forced,
        "message": message,
    }
