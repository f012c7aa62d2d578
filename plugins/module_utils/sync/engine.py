# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One workflow run: validate -> lock -> connect -> read -> plan -> guard -> apply -> record -> report.

``run_workflow(params, check_mode)`` is what ``idsync.entra.sync`` calls. It returns the module result (without
``failed``; the module decides) and raises IdsyncError subclasses for what stops a run as a whole: a bad option or
rule (before anything is read), a locked workflow, the deletion threshold, an unreachable system. Every run, check
mode included, writes a run report beside the store (``run_report``) and returns its paths as ``report``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time

from ansible_collections.idsync.entra.plugins.module_utils.connectors import get_connector
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError
from ansible_collections.idsync.entra.plugins.module_utils.sync.apply import Applier
from ansible_collections.idsync.entra.plugins.module_utils.sync.config import Workflow, validate_workflow
from ansible_collections.idsync.entra.plugins.module_utils.sync.journal import Journal
from ansible_collections.idsync.entra.plugins.module_utils.sync.matching import match_values
from ansible_collections.idsync.entra.plugins.module_utils.sync.ownership import ownership_for
from ansible_collections.idsync.entra.plugins.module_utils.sync.plan import Planner
from ansible_collections.idsync.entra.plugins.module_utils.sync.progress import Progress
from ansible_collections.idsync.entra.plugins.module_utils.sync.report import bound_plan, report_rows
from ansible_collections.idsync.entra.plugins.module_utils.sync.run_report import (
    prune_reports, report_paths, write_run_report,
)
from ansible_collections.idsync.entra.plugins.module_utils.sync.safety import (
    check_deletion_threshold, check_source_shrink, withhold,
)

MAX_RECORDED_ERRORS = 200         # in run history
RESULT_ERRORS = 20                # in the task result without -v (the report holds them all)
VERBOSE_RESULT_ERRORS = 200
DEFAULT_PLAN_LIMIT = 100          # plan entries in the task result, membership lists included
KEEP_REPORTS = 100


def state_scope(workflow_name):
    return "sync:%s" % workflow_name


def lock_name(workflow_name):
    return "sync:%s" % workflow_name


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


def run_workflow(params, check_mode=False, store=None, connector_factory=None, log=None, context=None,
                 verbosity=0, progress=None):
    """Run one workflow; returns the result dict. ``store`` (a Store) and ``connector_factory(record, ctx)`` may be
    given by tests; otherwise the store at ``params['store']`` and the registered connectors are used.
    ``progress``: a sync.progress.Progress the run reports to as it goes."""
    started = time.time()
    run = context if context is not None else RunContext()
    wf = Workflow.from_params(params)     # bad options and bad expressions fail here, before any I/O
    run.workflow = wf
    own_store = store is None
    if own_store:
        store = _open_store(params.get("store"))
    try:
        with store.lock(lock_name(wf.name), owner="idsync.entra.sync %s" % wf.name):
            return WorkflowRun(params, wf, store, connector_factory or get_connector, check_mode, run, started,
                               log, verbosity, progress or Progress()).execute()
    finally:
        for connector in (run.source, run.target):
            if connector is not None:
                try:
                    connector.close()
                except Exception:  # pylint: disable=broad-except
                    pass
        if own_store:
            store.close()


class WorkflowRun(object):
    """The stages of one locked run; each stage reads what the previous ones left on ``self``."""

    def __init__(self, params, wf, store, factory, check_mode, run, started, log, verbosity, progress):
        self.params = params
        self.wf = wf
        self.store = store
        self.factory = factory
        self.check_mode = check_mode
        self.run = run
        self.started = started
        self.log = log
        self.verbosity = verbosity
        self.progress = progress
        self.scope = state_scope(wf.name)
        self.timings = run.timings
        self.notes = []
        self.result = {"workflow": wf.name, "notes": self.notes}
        self.run_id = None
        self.applier = None

    def execute(self):
        self.connect()
        self.validate()
        self.read()
        self.make_plan()
        self.guard()
        if self.check_mode:
            return self.finish_plan()
        return self.apply()

    # -- connect and validate (nothing written) -----------------------------------------------------------------
    def connect(self):
        wf = self.wf
        common = {"store": self.store, "workflow": wf.name, "check_mode": self.check_mode, "log": self.log,
                  "max_in_flight": self.params.get("max_in_flight") or 4, "progress": self.progress}
        if self.params.get("replication_retry_seconds"):
            common["replication_retry_seconds"] = self.params["replication_retry_seconds"]
        columns = [pair.target for pair in wf.match]
        for attrs in (wf.create or {}, wf.update or {}):
            columns.extend(name for name in attrs if name not in columns)
        contexts = {
            "source": dict(common, endpoint={"multi_valued": wf.source.multi_valued}, side="source"),
            "target": dict(common, endpoint={"multi_valued": wf.target.multi_valued}, side="target",
                           columns=columns),
        }
        secrets = self.params.get("connection_secrets") or {}
        unknown = sorted(set(secrets) - set([wf.source.connection, wf.target.connection]))
        if unknown:
            raise ConfigError("connection_secrets: %s is neither the source nor the target connection"
                              % ", ".join(unknown), option="connection_secrets")
        for side, endpoint in (("source", wf.source), ("target", wf.target)):
            if secrets.get(endpoint.connection):
                contexts[side]["auth_overrides"] = dict(secrets[endpoint.connection])
        self.run.source = self.source = self.factory(_connection(self.store, wf.source, "source"),
                                                     contexts["source"])
        self.run.target = self.target = self.factory(_connection(self.store, wf.target, "target"),
                                                     contexts["target"])
        self.source.check_object_type(wf.source.object_type)
        self.target.check_object_type(wf.target.object_type)
        self.source_label = "%s (%s %s)" % (wf.source.connection, self.source.kind, wf.source.object_type)
        self.target_label = "%s (%s %s)" % (wf.target.connection, self.target.kind, wf.target.object_type)

    def validate(self):
        wf, target = self.wf, self.target
        self.source_schema = self.source.schema(wf.source.object_type)
        self.target_schema = target.schema(wf.target.object_type)
        self.group_type = wf.memberships[0].object_type if wf.memberships else None
        self.group_schema = None
        if self.group_type:
            target.check_object_type(self.group_type)
            self.group_schema = target.schema(self.group_type)
        validate_workflow(wf, self.source_schema, self.target_schema, self.source_label, self.target_label, target,
                          self.group_schema)
        # Which attribute marks the objects this workflow manages (None: the target system has no such marks).
        self.ownership = ownership_for(target, wf.target.object_type, wf.name, wf.previous_names)
        self.group_ownership = ownership_for(target, self.group_type, wf.name, wf.previous_names)
        self.planner = Planner(wf, self.source_schema, self.target_schema, target, self.group_schema)

    # -- read ---------------------------------------------------------------------------------------------------
    def read(self):
        wf, source, target = self.wf, self.source, self.target
        t0 = time.time()
        self.progress.stage("reading %s" % self.source_label)
        self.source_read = source.read(wf.source.object_type, wf.source_attributes(), scope_filter=wf.source.filter,
                                       delta=wf.delta and source.supports("delta"))
        self.notes.extend(self.source_read.notes)
        self.timings["read_source"] = round(time.time() - t0, 3)

        t0 = time.time()
        self.progress.stage("reading %s" % self.target_label, "%d source objects read" %
                            len(self.source_read.objects))
        delta = wf.delta and target.supports("delta")
        unique_reads = self.planner.unique_reads()
        attrs, lookup_reads = self._target_attributes(unique_reads.pop(wf.target.object_type, set()))
        self.target_read = target.read(wf.target.object_type, attrs, delta=delta)
        self.notes.extend(self.target_read.notes)
        self.groups = None
        self.unique_objects = {}
        if self.group_type:
            group_attrs = set(m.match_attribute for m in wf.memberships) | set([wf.members_attribute, "displayName"])
            group_attrs |= unique_reads.pop(self.group_type, set())
            if self.group_ownership is not None:
                group_attrs.add(self.group_ownership.attribute)
            groups_read = target.read(self.group_type, group_attrs, delta=delta)
            self.notes.extend(groups_read.notes)
            self.groups = self.unique_objects[self.group_type] = groups_read.objects
        for object_type, attributes in sorted(unique_reads.items()):
            # What else occupies a unique attribute's values (groups' addresses in Entra): one read per run.
            self.unique_objects[object_type] = target.read(object_type, attributes, delta=False).objects
        self._read_lookups(lookup_reads)
        # The connector may have found, while reading, that the target has no ownership attribute after all.
        self.ownership = ownership_for(target, wf.target.object_type, wf.name, wf.previous_names)
        self.group_ownership = ownership_for(target, self.group_type, wf.name, wf.previous_names)
        self.timings["read_target"] = round(time.time() - t0, 3)

    def _target_attributes(self, unique_attributes):
        wf, target = self.wf, self.target
        attrs = set(wf.target_attributes()) | set(target.label_attributes(wf.target.object_type)) | unique_attributes
        if wf.deprovision_action == "disable":
            attrs |= set((target.disable_attributes(wf.target.object_type) or {}).keys())
        if self.ownership is not None:
            attrs.add(self.ownership.attribute)
        lookup_reads = {}
        for rule in wf.reference_rules():
            if rule.lookup:
                lookup_type = self.planner.lookup_type(rule)
                if lookup_type == wf.target.object_type:
                    attrs.add(rule.lookup)
                else:
                    lookup_reads.setdefault(lookup_type, set()).add(rule.lookup)
        attrs = set(a for a in attrs if self.target_schema is None or a in self.target_schema)
        return attrs, lookup_reads

    def _read_lookups(self, lookup_reads):
        self.lookups = {}
        self.other_objects = {}
        for lookup_type, attributes in lookup_reads.items():
            labels = list(self.target.label_attributes(lookup_type))
            objects = self.target.read(lookup_type, set(attributes) | set(labels), delta=False).objects
            self.other_objects[lookup_type] = (objects, labels)
            for attribute in attributes:
                index = {}
                for oid, obj in objects.items():
                    for key in match_values(obj.get(attribute), False):
                        index.setdefault(key, []).append(oid)
                self.lookups[(lookup_type, attribute)] = index

    # -- plan ---------------------------------------------------------------------------------------------------
    def make_plan(self):
        t0 = time.time()
        self.progress.stage("planning", "%d source objects, %d target objects" % (
            len(self.source_read.objects), len(self.target_read.objects)))
        managed = _load_ids(self.store, self.scope, "managed")
        managed_groups = _load_ids(self.store, self.scope, "managed_groups")
        if not self.check_mode:
            managed, managed_groups = self._reconcile_journal(managed, managed_groups)
        managed, managed_groups = self._add_marked(managed, managed_groups)
        self.deprovisioned = _load_ids(self.store, self.scope, "deprovisioned")
        if self.ownership is not None:
            # Leavers this workflow disabled say so in their mark, whatever the store remembers.
            self.deprovisioned |= self.ownership.deprovisioned(self.target_read.objects) & managed
        self.managed_groups = managed_groups
        plan = self.planner.plan(
            self.source_read.objects, self.target_read.objects, managed=managed, rejected=self.source_read.rejected,
            groups=self.groups, managed_groups=managed_groups, lookups=self.lookups,
            other_objects=self.other_objects, deprovisioned=self.deprovisioned,
            source_incomplete=self.source_read.incomplete, unique_objects=self.unique_objects,
            ownership=self.ownership, group_ownership=self.group_ownership)
        self.run.plan = self.plan = plan
        self.notes.extend(plan.notes)
        for item in self.target_read.rejected:
            plan.errors.append({"object": item.get("object"), "error": "target: " + item.get("error", "")})
        self.timings["plan"] = round(time.time() - t0, 3)
        self.reference_attributes = set(a for a, spec in (self.target_schema or {}).items() if spec.reference)
        self.reference_attributes |= set(r.name.rsplit(".", 1)[-1] for r in self.wf.reference_rules())
        reads = {
            "source": {"mode": self.source_read.mode, "objects": len(self.source_read.objects),
                       "in_scope": plan.in_scope, "rejected": len(self.source_read.rejected)},
            "target": {"mode": self.target_read.mode, "objects": len(self.target_read.objects)},
        }
        if self.groups is not None:
            reads["groups"] = {"objects": len(self.groups)}
        self.result.update(reads=reads, reference_warnings=plan.warnings[:RESULT_ERRORS])

    def _add_marked(self, managed, managed_groups):
        """Target objects carrying this workflow's ownership mark are managed, whatever the store remembers (a lost
        or new store rebuilds its managed sets from them); objects another workflow marked are not."""
        notes = []
        for ownership, objects, ids, what in ((self.ownership, self.target_read.objects, managed, "objects"),
                                              (self.group_ownership, self.groups or {}, managed_groups, "groups")):
            if ownership is None:
                continue
            marked = ownership.claimed(objects)
            foreign = ownership.foreign(objects) & ids
            if marked - ids:
                notes.append("%d %s carrying this workflow's mark (%s) were not in the store's managed set: they are "
                             "managed" % (len(marked - ids), what, ownership.attribute))
            if foreign:
                notes.append("%d %s the store listed as managed carry another workflow's mark: that workflow "
                             "manages them" % (len(foreign), what))
            ids |= marked
            ids -= foreign
        self.notes.extend(notes)
        return managed, managed_groups

    def _reconcile_journal(self, managed, managed_groups):
        """Objects an interrupted run created are managed like the others (found among what was just read)."""
        found, notes = Journal(self.store, self.wf.name).reconcile({"object": self.target_read.objects,
                                                                    "group": self.groups or {}})
        self.notes.extend(notes)
        if found["object"] - managed or found["group"] - managed_groups:
            managed, managed_groups = managed | found["object"], managed_groups | found["group"]
            _save_ids(self.store, self.scope, "managed", managed)
            _save_ids(self.store, self.scope, "managed_groups", managed_groups)
        return managed, managed_groups

    # -- guard --------------------------------------------------------------------------------------------------
    def guard(self):
        plan, wf = self.plan, self.wf
        self.baseline = _load_int(self.store, self.scope, "source_in_scope")
        reason = None
        if plan.source_incomplete:
            reason = plan.source_incomplete + ", so nobody is deprovisioned this run: fix the source"
        elif not wf.force_deletes:
            reason = check_source_shrink(wf, plan, self.baseline)
        self.held = withhold(plan, reason) if reason else 0
        if self.held:
            self.result["withheld"] = {"deprovisions": len(plan.withheld),
                                       "group_removals": plan.withheld_leaver_removals, "reason": reason,
                                       "objects": [op.label for op in plan.withheld[:RESULT_ERRORS]]}
            self.notes.append("%d deprovision(s) withheld: %s" % (len(plan.withheld), reason))
        self.full_plan = plan.to_result(self.reference_attributes)
        self._set_plan_result()
        threshold = check_deletion_threshold(wf, plan)
        self.result["deletion_threshold"] = threshold
        if threshold["exceeded"] and not self.check_mode:
            self.run_id = self.store.start_run(wf.name, "stopped")
            self.store.finish_run(self.run_id, "stopped", _nothing_applied(), [threshold["message"]])
            self._report("stopped", [], None, plan.summary())
            raise DeletionThresholdExceeded(threshold["message"], self.result)
        if threshold["exceeded"]:
            self.notes.append(threshold["message"])

    def _set_plan_result(self):
        limit = self.params.get("plan_limit")
        if limit is None:
            limit = DEFAULT_PLAN_LIMIT * (10 if self.verbosity else 1)
        self.result["plan"], truncated = bound_plan(self.full_plan, limit)
        self.result["plan_truncated"] = truncated

    def finish_plan(self):
        plan = self.plan
        summary = plan.summary()
        self.result.update(changed=plan.has_changes(), summary=summary, failed_objects=len(plan.errors),
                           stats=_stats(self.source, self.target), timings=self.timings)
        self._set_errors(plan.errors)
        self._report("plan", plan.errors, None, summary)
        return self.result

    # -- apply --------------------------------------------------------------------------------------------------
    def apply(self):
        wf, store, plan = self.wf, self.store, self.plan
        _mark_interrupted(store, wf.name)
        self.run_id = store.start_run(wf.name, "delta" if wf.delta else "full")
        self.result["run_id"] = self.run_id
        t0 = time.time()
        journal = Journal(store, wf.name, self.run_id)
        outcome = None
        try:
            if plan.has_changes():
                self.progress.stage("applying", "%d to create, %d to update, %d to deprovision" % (
                    len(plan.creates), len(plan.updates), len(plan.deprovisions)))
                self.applier = Applier(plan, self.target, wf, self.log, journal=journal,
                                       rechoose=self.planner.rechoose, progress=self.progress)
                outcome = self.applier.run()
                self.target.flush()
            self.run.outcome = outcome
            self._commit(outcome, journal)
        except BaseException as exc:
            message = exc.msg if isinstance(exc, IdsyncError) else "%s: %s" % (type(exc).__name__, exc)
            # History says what was applied before the failure, never what was planned.
            applied = self.applier.counts() if self.applier is not None else _nothing_applied()
            store.finish_run(self.run_id, "failed", applied, [message])
            self._report("failed", list(plan.errors) + [{"object": wf.name, "error": message}],
                         self.applier.outcome if self.applier is not None else None, applied)
            raise
        self.timings["apply"] = round(time.time() - t0, 3)
        return self.finish_applied(outcome)

    def _commit(self, outcome, journal):
        """Only after the writes: the delta positions, and the objects this workflow manages."""
        wf, plan, store, scope = self.wf, self.plan, self.store, self.scope
        self.source.commit_delta()
        self.target.commit_delta()
        managed_after = set(plan.managed)
        groups_after = set(plan.managed_groups)
        deprovisioned_after = set(t for t in self.deprovisioned if t in plan.managed)
        if outcome is not None:
            managed_after |= set(outcome.created.values())
            managed_after -= outcome.deleted
            groups_after |= set(outcome.groups_created.values())
            if wf.deprovision_action == "disable":
                deprovisioned_after |= outcome.deprovisioned
            deprovisioned_after -= set(t for t in plan.restored if t in outcome.updated)
            deprovisioned_after -= outcome.deleted
        _save_ids(store, scope, "managed", managed_after)
        if not self.held and plan.in_scope != self.baseline:
            # The guard compares the next run with a run that deprovisioned normally, never a withheld one.
            store.set_state(scope, "source_in_scope", str(plan.in_scope))
        if self.deprovisioned or deprovisioned_after:
            _save_ids(store, scope, "deprovisioned", deprovisioned_after)
        if wf.memberships or self.managed_groups:
            _save_ids(store, scope, "managed_groups", groups_after)
        journal.clear(outcome.created if outcome is not None else ())   # ownership is in the managed set now

    def finish_applied(self, outcome):
        plan = self.plan
        errors = list(plan.errors)
        summary = plan.summary()
        if outcome is not None:
            errors.extend(outcome.errors)
            summary.update(dict((k, v) for k, v in self.applier.counts().items() if k != "failed"))
            self.result["reference_warnings"].extend(outcome.warnings[:RESULT_ERRORS])
        summary["failed"] = len(set(e.get("source") or e.get("id") or e.get("object") for e in errors))
        waited = ((self.result.get("stats") or _stats(self.source, self.target)).get("target") or {}).get(
            "paced_wait_seconds")
        if waited:
            self.notes.append("waited %d s in all on the target's write limit (writes were paced to what it accepts)"
                              % waited)
        status = "failed" if errors or self.held else "succeeded"
        self.store.finish_run(self.run_id, status, summary, [_error_line(e) for e in errors[:MAX_RECORDED_ERRORS]])
        self.timings["total"] = round(time.time() - self.started, 3)
        self.result.update(changed=bool(outcome is not None and outcome.changed), summary=summary,
                           failed_objects=summary["failed"], stats=_stats(self.source, self.target),
                           timings=self.timings)
        self._set_errors(errors)
        self._report(status, errors, outcome, summary)
        return self.result

    def _set_errors(self, errors):
        self.result["errors"] = errors[:VERBOSE_RESULT_ERRORS if self.verbosity else RESULT_ERRORS]

    # -- report -------------------------------------------------------------------------------------------------
    def _report(self, status, errors, outcome, summary):
        """Write the run report (never failing the run for it) and name it in the result."""
        self.timings.setdefault("total", round(time.time() - self.started, 3))
        report = {
            "format": 1, "workflow": self.wf.name, "run_id": self.run_id, "check_mode": self.check_mode,
            "status": status, "started": _iso(self.started), "finished": _iso(time.time()),
            "source": self.source_label, "target": self.target_label, "summary": summary,
            "timings": self.timings, "stats": _stats(self.source, self.target), "notes": list(self.notes),
            "rows": report_rows(self.full_plan, outcome, errors), "unchanged": self.plan.unchanged,
        }
        if self.result.get("withheld"):
            report["withheld"] = self.result["withheld"]
        try:
            paths = write_run_report(report_paths(self.store.location, self.wf.name, run_id=self.run_id,
                                                  now=self.started), report)
            prune_reports(os.path.dirname(paths["json"]), keep=KEEP_REPORTS)
        except (OSError, IdsyncError) as exc:
            self.notes.append("the run report could not be written: %s" % exc)
            return
        self.result["report"] = paths


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
                          % (side, endpoint.connection, store.display_location), option=side + ".connection")
    return record


def _mark_interrupted(store, workflow_name):
    """Runs of this workflow still 'running' while we hold its lock were interrupted (process killed): they are
    marked, with what they had applied."""
    for run in store.runs(workflow_name, limit=20):
        if run.get("status") == "running":
            store.finish_run(run["id"], "interrupted", run.get("applied") or _nothing_applied(),
                             ["the run stopped before it finished (process killed or host down); this run "
                              "(id %s) was marked when the next one started" % run["id"]])


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
    for side, connector in (("source", source), ("target", target)):
        stats = connector.stats() if connector is not None else None
        if stats:
            out[side] = stats
    return out


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class DeletionThresholdExceeded(IdsyncError):
    def __init__(self, msg, result):
        self.result = result
        super(DeletionThresholdExceeded, self).__init__(msg, {"code": "DeletionThresholdExceeded"})
