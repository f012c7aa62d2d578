# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One workflow run: validate -> lock -> read -> plan -> safety -> apply -> record.

``run_workflow(params, check_mode)`` is what ``idsync.entra.sync`` calls. It returns the module result (without
``failed``; the module decides) and raises IdsyncError subclasses for what stops a run as a whole: a bad option or
rule (before anything is read), a locked workflow, the deletion threshold, an unreachable system.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time

from ansible_collections.idsync.entra.plugins.module_utils.connectors import get_connector
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError
from ansible_collections.idsync.entra.plugins.module_utils.sync.apply import Applier
from ansible_collections.idsync.entra.plugins.module_utils.sync.config import Workflow, validate_workflow
from ansible_collections.idsync.entra.plugins.module_utils.sync.journal import Journal
from ansible_collections.idsync.entra.plugins.module_utils.sync.plan import Planner, _match_values
from ansible_collections.idsync.entra.plugins.module_utils.sync.safety import (
    check_deletion_threshold, check_source_shrink, withhold,
)

MAX_RECORDED_ERRORS = 200
APPLIED_PLAN_LIMIT = 1000


def state_scope(workflow_name):
    return "sync:%s" % workflow_name


def lock_name(workflow_name):
    return "sync:%s" % workflow_name


def _load_ids(store, scope, key):
    raw = store.get_state(scope, key)
    if not raw:
        return set()
    try:
        return set(json.loads(raw))
    except ValueError:
        return set()


def _load_int(store, scope, key):
    raw = store.get_state(scope, key)
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _save_ids(store, scope, key, ids):
    text = json.dumps(sorted(ids), separators=(",", ":"))
    if store.get_state(scope, key) != text:
        store.set_state(scope, key, text)


class RunContext(object):
    """Everything a run holds, for the module and for tests."""

    def __init__(self):
        self.workflow = None
        self.source = None
        self.target = None
        self.plan = None
        self.outcome = None
        self.timings = {}


def _open_store(path):
    from ansible_collections.idsync.entra.plugins.module_utils.store import Store
    return Store(path)


def run_workflow(params, check_mode=False, store=None, connector_factory=None, log=None, context=None):
    """Run one workflow; returns the result dict. ``store`` (a Store) and ``connector_factory(record, ctx)`` may be
    given by tests; otherwise the store at ``params['store']`` and the registered connectors are used."""
    started = time.time()
    run = context if context is not None else RunContext()
    wf = Workflow.from_params(params)     # bad options and bad expressions fail here, before any I/O
    run.workflow = wf
    own_store = store is None
    if own_store:
        store = _open_store(params.get("store"))
    factory = connector_factory or get_connector
    try:
        with store.lock(lock_name(wf.name), owner="idsync.entra.sync %s" % wf.name):
            return _locked_run(params, wf, store, factory, check_mode, run, started, log)
    finally:
        for connector in (run.source, run.target):
            if connector is not None:
                try:
                    connector.close()
                except Exception:  # pylint: disable=broad-except
                    pass
        if own_store:
            store.close()


def _connection(store, endpoint, side):
    """The connection record of one side: the saved one, or one built from the inline settings (validated like
    ``idsync.entra.connection`` validates them, never saved)."""
    if endpoint.inline is not None:
        from ansible_collections.idsync.entra.plugins.module_utils.connections import build_settings
        settings = build_settings(dict(endpoint.inline))
        return {"name": side, "connector": endpoint.inline["connector"], "settings": settings}
    record = store.get_connection(endpoint.connection)
    if record is None:
        raise ConfigError("%s.connection: there is no connection named '%s' in the store %s (save it with "
                          "idsync.entra.connection, or give the connector inline)"
                          % (side, endpoint.connection, store.path), option=side + ".connection")
    return record


def _mark_interrupted(store, workflow_name):
    """Runs of this workflow still 'running' while we hold its lock were interrupted (process killed)."""
    for run in store.runs(workflow_name, limit=20):
        if run.get("status") == "running":
            store.finish_run(run["id"], "interrupted", run.get("applied") or _nothing_applied(),
                             ["the run stopped before it finished (process killed or host down); this run "
                              "(id %s) was marked when the next one started" % run["id"]])


def _locked_run(params, wf, store, factory, check_mode, run, started, log):
    timings = run.timings
    scope = state_scope(wf.name)
    source_record = _connection(store, wf.source, "source")
    target_record = _connection(store, wf.target, "target")
    common = {"store": store, "workflow": wf.name, "check_mode": check_mode, "log": log,
              "max_in_flight": params.get("max_in_flight") or 4}
    if params.get("replication_retry_seconds"):
        common["replication_retry_seconds"] = params["replication_retry_seconds"]
    source_context = dict(common, endpoint={"multi_valued": wf.source.multi_valued}, side="source")
    target_columns = []
    for pair in wf.match:
        target_columns.append(pair.target)
    for attrs in (wf.create or {}, wf.update or {}):
        for name in attrs:
            if name not in target_columns:
                target_columns.append(name)
    target_context = dict(common, endpoint={"multi_valued": wf.target.multi_valued}, side="target",
                          columns=target_columns)
    secrets = params.get("connection_secrets") or {}
    unknown = sorted(set(secrets) - set([wf.source.connection, wf.target.connection]))
    if unknown:
        raise ConfigError("connection_secrets: %s is neither the source nor the target connection"
                          % ", ".join(unknown), option="connection_secrets")
    if secrets.get(wf.source.connection):
        source_context["auth_overrides"] = dict(secrets[wf.source.connection])
    if secrets.get(wf.target.connection):
        target_context["auth_overrides"] = dict(secrets[wf.target.connection])
    run.source = source = factory(source_record, source_context)
    run.target = target = factory(target_record, target_context)
    source.check_object_type(wf.source.object_type)
    target.check_object_type(wf.target.object_type)
    source_label = "%s (%s %s)" % (wf.source.connection, source.kind, wf.source.object_type)
    target_label = "%s (%s %s)" % (wf.target.connection, target.kind, wf.target.object_type)

    # -- validate against the schemas (still nothing written) -----------------------------------------------
    source_schema = source.schema(wf.source.object_type)
    target_schema = target.schema(wf.target.object_type)
    group_type = wf.memberships[0].object_type if wf.memberships else None
    group_schema = None
    if group_type:
        target.check_object_type(group_type)
        group_schema = target.schema(group_type)
    validate_workflow(wf, source_schema, target_schema, source_label, target_label, target, group_schema)

    # -- read ------------------------------------------------------------------------------------------------
    notes = []
    t0 = time.time()
    source_attrs = wf.source_attributes()
    source_read = source.read(wf.source.object_type, source_attrs, scope_filter=wf.source.filter,
                              delta=wf.delta and source.supports("delta"))
    notes.extend(source_read.notes)
    timings["read_source"] = round(time.time() - t0, 3)

    t0 = time.time()
    target_attrs = set(wf.target_attributes())
    target_attrs |= set(target.label_attributes(wf.target.object_type))
    target_attrs |= set((target.disable_attributes(wf.target.object_type) or {}).keys()) \
        if wf.deprovision_action == "disable" else set()
    planner = Planner(wf, source_schema, target_schema, target, group_schema)
    unique_reads = planner.unique_reads()
    target_attrs |= unique_reads.pop(wf.target.object_type, set())
    lookup_reads = {}
    for rule in wf.reference_rules():
        if rule.lookup:
            lookup_type = planner.lookup_type(rule)
            if lookup_type == wf.target.object_type:
                target_attrs.add(rule.lookup)
            else:
                lookup_reads.setdefault(lookup_type, set()).add(rule.lookup)
    target_attrs = set(a for a in target_attrs if target_schema is None or a in target_schema)
    target_read = target.read(wf.target.object_type, target_attrs, delta=wf.delta and target.supports("delta"))
    notes.extend(target_read.notes)
    groups = None
    unique_objects = {}
    if group_type:
        group_attrs = set(m.match_attribute for m in wf.memberships) | set(["members", "displayName"])
        group_attrs |= unique_reads.pop(group_type, set())
        groups_read = target.read(group_type, group_attrs, delta=wf.delta and target.supports("delta"))
        notes.extend(groups_read.notes)
        groups = unique_objects[group_type] = groups_read.objects
    for object_type, attributes in sorted(unique_reads.items()):
        # What else occupies a unique attribute's values (groups' addresses in Entra): one read per run.
        unique_objects[object_type] = target.read(object_type, attributes, delta=False).objects
    lookups = {}
    other_objects = {}
    for lookup_type, attributes in lookup_reads.items():
        labels = list(target.label_attributes(lookup_type))
        result = target.read(lookup_type, set(attributes) | set(labels), delta=False)
        other_objects[lookup_type] = (result.objects, labels)
        for attribute in attributes:
            index = {}
            for oid, obj in result.objects.items():
                for key in _match_values(obj.get(attribute), False):
                    index.setdefault(key, []).append(oid)
            lookups[(lookup_type, attribute)] = index
    timings["read_target"] = round(time.time() - t0, 3)

    # -- plan ------------------------------------------------------------------------------------------------
    t0 = time.time()
    managed = _load_ids(store, scope, "managed")
    managed_groups = _load_ids(store, scope, "managed_groups")
    if not check_mode:
        # Objects an interrupted run created are managed like the others (found among what was just read).
        found, journal_notes = Journal(store, wf.name).reconcile({"object": target_read.objects,
                                                                  "group": groups or {}})
        notes.extend(journal_notes)
        if found["object"] - managed or found["group"] - managed_groups:
            managed |= found["object"]
            managed_groups |= found["group"]
            _save_ids(store, scope, "managed", managed)
            _save_ids(store, scope, "managed_groups", managed_groups)
    deprovisioned = _load_ids(store, scope, "deprovisioned")
    plan = planner.plan(source_read.objects, target_read.objects, managed=managed,
                        rejected=source_read.rejected, groups=groups, managed_groups=managed_groups,
                        lookups=lookups, other_objects=other_objects, deprovisioned=deprovisioned,
                        source_incomplete=source_read.incomplete, unique_objects=unique_objects)
    run.plan = plan
    notes.extend(plan.notes)
    for item in target_read.rejected:
        plan.errors.append({"object": item.get("object"), "error": "target: " + item.get("error", "")})
    timings["plan"] = round(time.time() - t0, 3)
    reference_attributes = set(a for a, spec in (target_schema or {}).items() if spec.reference)
    reference_attributes |= set(r.name.rsplit(".", 1)[-1] for r in wf.reference_rules())
    plan_summary = plan.summary()
    reads = {
        "source": {"mode": source_read.mode, "objects": len(source_read.objects), "in_scope": plan.in_scope,
                   "rejected": len(source_read.rejected)},
        "target": {"mode": target_read.mode, "objects": len(target_read.objects)},
    }
    if groups is not None:
        reads["groups"] = {"objects": len(groups)}
    limit = params.get("plan_limit")
    if limit is None and not check_mode:
        limit = APPLIED_PLAN_LIMIT        # check mode returns the whole plan; an applied run its first entries
    counts = (len(plan.creates), len(plan.updates), len(plan.deprovisions), len(plan.group_creates),
              len(plan.memberships))
    result = {
        "workflow": wf.name,
        "plan": plan.to_result(reference_attributes, limit=limit),
        "plan_truncated": limit is not None and max(counts) > limit,
        "notes": notes,
        "reads": reads,
        "reference_warnings": plan.warnings[:MAX_RECORDED_ERRORS],
    }

    # -- safety ----------------------------------------------------------------------------------------------
    baseline = _load_int(store, scope, "source_in_scope")
    guard_reason = None
    if plan.source_incomplete:
        guard_reason = plan.source_incomplete + ", so nobody is deprovisioned this run: fix the source"
    elif not wf.force_deletes:
        guard_reason = check_source_shrink(wf, plan, baseline)
    held = withhold(plan, guard_reason) if guard_reason else 0
    if held:
        result["withheld"] = {"deprovisions": len(plan.withheld), "group_removals": plan.withheld_leaver_removals,
                              "reason": guard_reason, "objects": [op.label for op in plan.withheld[:20]]}
        notes.append("%d deprovision(s) withheld: %s" % (len(plan.withheld), guard_reason))
        plan_summary = plan.summary()
        result["plan"] = plan.to_result(reference_attributes, limit=limit)
    threshold = check_deletion_threshold(wf, plan)
    result["deletion_threshold"] = threshold
    if threshold["exceeded"] and not check_mode:
        run_id = store.start_run(wf.name, "stopped")
        store.finish_run(run_id, "stopped", plan_summary, [threshold["message"]])
        raise DeletionThresholdExceeded(threshold["message"], result)

    if check_mode:
        result.update({
            "changed": plan.has_changes(),
            "summary": plan_summary,
            "errors": plan.errors[:MAX_RECORDED_ERRORS],
            "failed_objects": len(plan.errors),
            "stats": _stats(source, target),
            "timings": timings,
        })
        if threshold["exceeded"]:
            result["notes"].append(threshold["message"])
        return result

    # -- apply -----------------------------------------------------------------------------------------------
    _mark_interrupted(store, wf.name)
    mode = "delta" if wf.delta else "full"
    run_id = store.start_run(wf.name, mode)
    result["run_id"] = run_id
    t0 = time.time()
    journal = Journal(store, wf.name, run_id)
    applier = None
    try:
        outcome = None
        if plan.has_changes():
            applier = Applier(plan, target, wf, log, journal=journal, rechoose=planner.rechoose)
            outcome = applier.run()
            target.flush()
        run.outcome = outcome
        # Only now: the delta positions, and the objects this workflow manages.
        source.commit_delta()
        target.commit_delta()
        managed_after = set(plan.managed)
        groups_after = set(plan.managed_groups)
        deprovisioned_after = set(t for t in deprovisioned if t in plan.managed)
        if outcome is not None:
            managed_after |= set(outcome.created.values())
            managed_after -= outcome.deleted
            groups_after |= set(outcome.groups_created.values())
            if wf.deprovision_action == "disable":
                deprovisioned_after |= outcome.deprovisioned
            deprovisioned_after -= set(t for t in plan.restored if t in outcome.updated)
            deprovisioned_after -= outcome.deleted
        _save_ids(store, scope, "managed", managed_after)
        if not held and plan.in_scope != baseline:
            # The guard compares the next run with a run that deprovisioned normally, never a withheld one.
            store.set_state(scope, "source_in_scope", str(plan.in_scope))
        if deprovisioned or deprovisioned_after:
            _save_ids(store, scope, "deprovisioned", deprovisioned_after)
        if wf.memberships or managed_groups:
            _save_ids(store, scope, "managed_groups", groups_after)
        journal.clear(outcome.created if outcome is not None else ())   # ownership is in the managed set now
    except BaseException as exc:
        message = exc.msg if isinstance(exc, IdsyncError) else "%s: %s" % (type(exc).__name__, exc)
        # History says what was applied before the failure, never what was planned.
        store.finish_run(run_id, "failed", applier.counts() if applier is not None else _nothing_applied(),
                         [message])
        raise
    timings["apply"] = round(time.time() - t0, 3)

    errors = list(plan.errors)
    summary = dict(plan_summary)
    if outcome is not None:
        errors.extend(outcome.errors)
        summary.update({
            "created": len(outcome.created),
            "updated": len(outcome.updated),
            "deprovisioned": len(outcome.deprovisioned),
            "membership_added": outcome.membership_added,
            "membership_removed": outcome.membership_removed,
            "groups_created": len(outcome.groups_created),
        })
        result["reference_warnings"].extend(outcome.warnings[:MAX_RECORDED_ERRORS])
    failed_keys = set()
    for error in errors:
        failed_keys.add(error.get("source") or error.get("id") or error.get("object"))
    summary["failed"] = len(failed_keys)
    status = "failed" if errors else "succeeded"
    store.finish_run(run_id, status, summary, [_error_line(e) for e in errors[:MAX_RECORDED_ERRORS]])
    timings["total"] = round(time.time() - started, 3)
    result.update({
        "changed": bool(outcome is not None and outcome.changed),
        "summary": summary,
        "errors": errors[:MAX_RECORDED_ERRORS],
        "failed_objects": summary["failed"],
        "stats": _stats(source, target),
        "timings": timings,
    })
    return result


def _nothing_applied():
    return {"created": 0, "updated": 0, "deprovisioned": 0, "groups_created": 0, "membership_added": 0,
            "membership_removed": 0, "failed": 0}


def _error_line(error):
    text = "%s: %s" % (error.get("object"), error.get("error"))
    if error.get("rule"):
        text += " (rule %s)" % error["rule"]
    return text


def _stats(source, target):
    out = {}
    source_stats = source.stats()
    target_stats = target.stats()
    if source_stats:
        out["source"] = source_stats
    if target_stats:
        out["target"] = target_stats
    return out


class DeletionThresholdExceeded(IdsyncError):
    def __init__(self, msg, result):
        self.result = result
        super(DeletionThresholdExceeded, self).__init__(msg, {"code": "DeletionThresholdExceeded"})
