# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How a sync run reads to a person: Ansible diffs (before/after per planned change) and the one-line summary."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DIFF_LIMIT = 200


def _lines(values):
    if not values:
        return ""
    out = []
    for key in sorted(values):
        value = values[key]
        if isinstance(value, list):
            out.append("%s:" % key)
            out.extend("  - %s" % (item,) for item in value)
        else:
            out.append("%s: %s" % (key, "(none)" if value is None else value))
    return "\n".join(out) + "\n"


def build_diff(plan, workflow_name):
    """One Ansible diff per planned change (capped), before/after as readable text."""
    diffs = []
    for item in plan.get("create", []):
        diffs.append({"before_header": "%s: %s (absent)" % (workflow_name, item["object"]),
                      "after_header": "%s: %s (create)" % (workflow_name, item["object"]),
                      "before": "", "after": _lines(item.get("attributes"))})
    for item in plan.get("update", []):
        before = {}
        after = {}
        for attribute, change in item.get("changes", {}).items():
            if "add" in change:
                before[attribute + " (removed)"] = change.get("remove") or []
                after[attribute + " (added)"] = change.get("add") or []
            else:
                before[attribute] = change.get("before")
                after[attribute] = change.get("after")
        diffs.append({"before_header": "%s: %s" % (workflow_name, item["object"]),
                      "after_header": "%s: %s (update)" % (workflow_name, item["object"]),
                      "before": _lines(before), "after": _lines(after)})
    for item in plan.get("deprovision", []):
        if item["action"] == "delete":
            before, after = "exists\n", ""
        else:
            before = _lines(dict((k, v["before"]) for k, v in item.get("changes", {}).items()))
            after = _lines(dict((k, v["after"]) for k, v in item.get("changes", {}).items()))
        diffs.append({"before_header": "%s: %s" % (workflow_name, item["object"]),
                      "after_header": "%s: %s (%s)" % (workflow_name, item["object"], item["action"]),
                      "before": before, "after": after})
    for item in plan.get("groups_create", []):
        diffs.append({"before_header": "%s: group %s (absent)" % (workflow_name, item["group"]),
                      "after_header": "%s: group %s (create)" % (workflow_name, item["group"]),
                      "before": "", "after": _lines(item.get("attributes"))})
    for item in plan.get("memberships", []):
        diffs.append({"before_header": "%s: members of %s" % (workflow_name, item["group"]),
                      "after_header": "%s: members of %s" % (workflow_name, item["group"]),
                      "before": _lines({"removed": item.get("remove")}) if item.get("remove") else "",
                      "after": _lines({"added": item.get("add")}) if item.get("add") else ""})
    if len(diffs) > DIFF_LIMIT:
        rest = len(diffs) - DIFF_LIMIT
        diffs = diffs[:DIFF_LIMIT]
        diffs.append({"before_header": "%s: ..." % workflow_name, "after_header": "%s: ..." % workflow_name,
                      "before": "", "after": "(%d more changes: see the plan in the result)\n" % rest})
    return diffs


def summary_sentence(result, check_mode):
    """``hr_to_entra: created 2, updated 1, deprovisioned 0, unchanged 297, failed 0 (memberships +2 -1)``."""
    s = result.get("summary") or {}
    text = "%s%s: created %d, updated %d, deprovisioned %d, unchanged %d, failed %d" % (
        result.get("workflow"), " (plan)" if check_mode else "", s.get("created", 0), s.get("updated", 0),
        s.get("deprovisioned", 0), s.get("unchanged", 0), s.get("failed", 0))
    if s.get("membership_added") or s.get("membership_removed") or s.get("groups_created"):
        text += " (memberships +%d -%d, groups created %d)" % (
            s.get("membership_added", 0), s.get("membership_removed", 0), s.get("groups_created", 0))
    return text


def failure_message(result, check_mode):
    """Why the task fails, in one line, or None: objects that failed (everything else was applied), and/or
    deprovisions a guard withheld."""
    parts = []
    errors = result.get("errors") or []
    if errors:
        first = errors[0]
        parts.append("%d object(s) failed%s; first: %s: %s" % (
            result.get("failed_objects", len(errors)),
            " (nothing was written: check mode)" if check_mode else ", everything else was applied",
            first.get("object"), first.get("error")))
    withheld = result.get("withheld")
    if withheld:
        parts.append("%d deprovision(s) withheld: %s" % (withheld["deprovisions"], withheld["reason"]))
    return "; ".join(parts) or None
