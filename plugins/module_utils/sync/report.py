# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How a sync run reads to a person: Ansible diffs (before/after per planned change), the one-line summary, and the
rows of the run report (``run_report`` writes them)."""

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


def report_rows(plan, outcome, errors):
    """One row per object that a run created, updated, deprovisioned, failed, or whose group changed. ``plan`` is
    the full (uncut) ``Plan.to_result()``; ``outcome`` the applier's (None in check mode: every planned change is a
    row); ``errors`` every error. Unchanged objects are counted, not listed."""
    failed_sources = set(e.get("source") for e in errors if e.get("source"))
    failed_ids = set(e.get("id") for e in errors if e.get("id"))
    rows = []
    for item in plan.get("create", []):
        if item.get("source") in failed_sources or (outcome is not None and item["source"] not in outcome.created):
            continue
        rows.append({"outcome": "created", "object": item["object"], "source": item.get("source"),
                     "id": outcome.created.get(item["source"]) if outcome is not None else None,
                     "changes": dict((k, {"before": None, "after": v})
                                     for k, v in (item.get("attributes") or {}).items())})
    for kind, key, done in (("updated", "update", outcome.updated if outcome is not None else None),
                            ("deprovisioned", "deprovision", outcome.deprovisioned if outcome is not None else None)):
        for item in plan.get(key, []):
            if item.get("id") in failed_ids or (done is not None and item.get("id") not in done):
                continue
            rows.append({"outcome": kind, "object": item["object"], "source": item.get("source"),
                         "id": item.get("id"), "changes": _row_changes(item.get("changes") or {})})
    for item in plan.get("groups_create", []):
        rows.append({"outcome": "group created", "object": item["group"],
                     "changes": dict((k, {"before": None, "after": v}) for k, v in item["attributes"].items())})
    for item in plan.get("memberships", []):
        rows.append({"outcome": "membership", "object": item["group"], "id": item.get("id"),
                     "changes": {"members": {"add": item.get("add") or [], "remove": item.get("remove") or []}}})
    for error in errors:
        row = dict((k, error.get(k)) for k in ("object", "source", "id", "error", "rule", "step")
                   if error.get(k) is not None)
        row["outcome"] = "failed"
        rows.append(row)
    return rows


def _row_changes(changes):
    out = {}
    for attribute, change in changes.items():
        if "add" in change:
            out[attribute] = {"add": change.get("add") or [], "remove": change.get("remove") or []}
        else:
            out[attribute] = {"before": change.get("before"), "after": change.get("after")}
    return out


PLAN_SECTIONS = ("create", "update", "deprovision", "groups_create", "memberships")


def bound_plan(plan, limit):
    """The plan result cut to ``limit`` entries in all, each member of a membership list counting as one entry, so
    a task's output stays small whatever the run's size; returns (plan, truncated). The run report holds it all."""
    budget = [limit]
    truncated = False
    out = {}
    for section in PLAN_SECTIONS:
        items = []
        for item in plan.get(section, []):
            if budget[0] <= 0:
                truncated = True
                break
            item, cut = _bound_item(item, budget)
            truncated = truncated or cut
            items.append(item)
        out[section] = items
    return out, truncated


def _bound_item(item, budget):
    budget[0] -= 1
    item, cut = _bound_lists(item, budget)
    if isinstance(item.get("changes"), dict):
        changes = {}
        for attribute, change in item["changes"].items():
            changes[attribute], more = _bound_lists(change, budget)
            cut = cut or more
        item["changes"] = changes
    return item, cut


def _bound_lists(mapping, budget):
    """A copy of ``mapping`` with its ``add``/``remove`` lists cut to the budget (``add_more``: how many were cut)."""
    mapping = dict(mapping)
    cut = False
    for key in ("add", "remove"):
        if isinstance(mapping.get(key), list):
            mapping[key], more = _bound_list(mapping[key], budget)
            if more:
                mapping[key + "_more"] = more
                cut = True
    return mapping, cut


def _bound_list(values, budget):
    room = max(0, budget[0])
    kept = values[:room]
    budget[0] -= len(kept)
    return kept, len(values) - len(kept)
