#!/usr/bin/env python3
"""Benchmark (not a test): the idsync.entra sync engine against the tenant emulator, with latency on every request.

Starts its own emulator (``--latency-ms``, throttling off), registers an app with the sync permissions, and runs
the HR -> Entra workflow of the integration tests (users from a CSV file, department groups, managers) the way the
``idsync.entra.sync`` module does: the task options are validated against the module's own argument spec (which
fills the defaults) and handed to ``engine.run_workflow(params, check_mode=False)``; a run "fails" when it returns
per-object errors, as the module would. One no-op run per size also goes through a real ``ansible-playbook`` to
show what Ansible adds. Measured, per size (``--sizes``):

  initial load, no-op re-run (full read), no-op via ansible-playbook, the first ``delta: true`` round, the delta
  no-op, 1 % of the rows changed (full read, then again with ``delta: true``), an Entra -> CSV export (first
  round, then a delta run after a few changes made in Entra);

then an initial load with the emulator's throttling ON (``--throttled-users``) and ``benchmarks/plan_100k.py``.

Each figure comes from the emulator's own statistics, reset before each run: ``requests`` = Graph HTTP requests (a
``$batch`` envelope is one), ``writes`` = write operations (each POST/PATCH/PUT/DELETE batch item; with throttling
on this includes the items answered 429, so accepted writes = writes - 429s). Nothing here asserts a target: it
prints figures, and a Markdown table at the end.

    .venv/bin/python benchmarks/sync_bench.py                      # sizes 1000,10000; throttled load of 1000
    .venv/bin/python benchmarks/sync_bench.py --quick              # size 1000 only (a smoke run)
    .venv/bin/python benchmarks/sync_bench.py --only throttled --throttled-users 10000     # ~17 min
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tests" / "integration", ROOT / "tests", ROOT / "collections"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from conftest import start_emulator  # noqa: E402  (tests/conftest.py: the emulator process)
from sync_support import (  # noqa: E402  (tests/integration/sync_support.py)
    EmulatorAdmin, hr_workflow, make_people, save_connections, write_people,
)
from ansible_runner import run_playbook  # noqa: E402  (tests/integration/ansible_runner.py)

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.sync.engine import run_workflow  # noqa: E402
from ansible_collections.idsync.entra.plugins.modules.sync import argument_spec  # noqa: E402

WRITE_LIMIT = 3000.0 / 150.0          # per app and tenant: 3,000 writes per 2 min 30 s (REFERENCE.md) = 20/s
WRITE_BURST = 3000                    # the emulator's token bucket starts full: the first 3,000 writes are free
DEPARTMENTS = ["Sales", "Marketing", "Engineering", "Support", "Finance", "Legal", "Operations", "Research",
               "Human Resources", "Facilities"]


def log(text=""):
    print(text, flush=True)


# -- calling the engine as the module does --------------------------------------------------------------------------

def module_params(options):
    """The task options as ``idsync.entra.sync`` receives them: checked against its argument spec, defaults filled."""
    checked = ArgumentSpecValidator(argument_spec()).validate(options)
    if checked.error_messages:
        raise SystemExit("bad workflow options: %s" % "; ".join(checked.error_messages))
    return checked.validated_parameters


def run_module(options):
    """``run_workflow`` as the module calls it; returns the module's result (``failed`` when objects failed)."""
    try:
        result = run_workflow(module_params(options), check_mode=False)
    except IdsyncError as exc:
        return {"failed": True, "msg": exc.msg, "failed_objects": None, "summary": {}, "errors": [exc.msg]}
    result["failed"] = bool(result.get("errors"))
    return result


# -- the bench -----------------------------------------------------------------------------------------------------

class Row(object):
    def __init__(self, scenario, users, wall, stats, result=None, note=""):
        self.scenario = scenario
        self.users = users
        self.wall = wall
        self.requests = stats.get("requests", 0)
        self.writes = stats.get("writes", 0)
        self.throttled = stats.get("throttled", 0)
        self.by_method = stats.get("by_method", {})
        self.result = result or {}
        self.failed = self.result.get("failed_objects")
        self.note = note
        self.extra = {}

    @property
    def accepted_writes(self):
        return self.writes - self.throttled

    @property
    def write_rate(self):
        return self.accepted_writes / self.wall if self.wall > 0 else 0.0

    def as_dict(self):
        return {"scenario": self.scenario, "users": self.users, "wall_s": round(self.wall, 3),
                "requests": self.requests, "writes": self.writes, "throttled": self.throttled,
                "accepted_writes": self.accepted_writes, "writes_per_s": round(self.write_rate, 2),
                "failed_objects": self.failed, "by_method": self.by_method, "note": self.note,
                "summary": self.result.get("summary"), "timings": self.result.get("timings"),
                "reads": self.result.get("reads"), "client_stats": self.result.get("stats"), "extra": self.extra}


class StatsSampler(threading.Thread):
    """Polls the emulator's statistics (the admin API, not counted as Graph traffic) during a run."""

    def __init__(self, emulator, interval=0.5):
        super(StatsSampler, self).__init__(daemon=True)
        self.emulator = emulator
        self.interval = interval
        self.samples = []                 # (seconds since start, writes, throttled)
        self.halt = threading.Event()
        self.start_time = None

    def run(self):
        self.start_time = time.monotonic()
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.interval)

    def sample(self):
        try:
            stats = self.emulator.admin("GET", "stats")
        except Exception:  # pylint: disable=broad-except
            return
        self.samples.append((time.monotonic() - self.start_time, stats["writes"], stats["throttled"]))

    def stop(self):
        self.halt.set()
        self.join()


class Bench(object):
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.rows = []
        self.emulator = None
        self.admin = None
        self.tenant_index = 0
        self.plan_figures = None

    # -- emulator ---------------------------------------------------------------------------------------------
    def start(self):
        log("starting the tenant emulator (latency %d ms per request, throttling off) ..." % self.args.latency_ms)
        self.emulator = start_emulator(self.workdir / "emulator", "--latency-ms", str(self.args.latency_ms),
                                       "--throttling", "off")
        self.admin = EmulatorAdmin(self.emulator)

    def stop(self):
        if self.emulator is not None:
            self.emulator.process.terminate()
            try:
                self.emulator.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.emulator.process.kill()

    def fresh_tenant(self, label, throttling=False):
        """An empty tenant (the emulator's seeded state), a newly registered sync app, a new store."""
        self.emulator.reset()
        if throttling:
            self.emulator.admin("PUT", "settings", {"throttling": True})
        self.tenant_index += 1
        tmp = self.workdir / ("%02d-%s" % (self.tenant_index, label))
        tmp.mkdir(parents=True)
        env = {"tmp": tmp, "store": tmp / "state" / "store.db", "hr": tmp / "hr.csv",
               "export": tmp / "export" / "users.csv", "domain": self.emulator.endpoints["tenant_domain"]}
        env["store"].parent.mkdir()
        env["export"].parent.mkdir()
        settings = self.admin.register_sync_app(tmp / "pki", name="idsync sync bench")
        save_connections(env["store"], settings, {
            "hr_file": {"path": str(env["hr"]), "key": ["EmployeeID"]},
            "export_file": {"path": str(env["export"]), "key": ["EmployeeID"], "delimiter": ";",
                            "encoding": "utf-8-sig"}})
        return env

    # -- one measured run -------------------------------------------------------------------------------------
    def measure(self, scenario, users, options, note="", sampler=False):
        self.admin.reset_stats()
        watcher = StatsSampler(self.emulator) if sampler else None
        if watcher:
            watcher.start()
        t0 = time.perf_counter()
        result = run_module(options)
        wall = time.perf_counter() - t0
        if watcher:
            watcher.stop()
            watcher.sample()
        row = Row(scenario, users, wall, self.admin.stats(), result, note)
        if watcher:
            row.extra["samples"] = watcher.samples
        self.rows.append(row)
        self.report(row)
        return row

    def report(self, row):
        s = row.result.get("summary") or {}
        reads = row.result.get("reads") or {}
        log("  %-34s %6s users  %8.2f s  %6d requests  %6d writes%s  %7.1f writes/s  failed %s" % (
            row.scenario, row.users, row.wall, row.requests, row.writes,
            (" (%d throttled)" % row.throttled) if row.throttled else "", row.write_rate, row.failed))
        keys = ("created", "updated", "deprovisioned", "unchanged", "membership_added", "membership_removed",
                "groups_created", "failed")
        log("      summary: %s" % ", ".join("%s=%s" % (k, s[k]) for k in keys if k in s))
        if reads:
            log("      reads: %s" % ", ".join("%s %s" % (k, v.get("mode", "")) for k, v in sorted(reads.items())
                                              if isinstance(v, dict) and v.get("mode")))
        if row.result.get("timings"):
            log("      engine timings (s): %s" % json.dumps(row.result["timings"], sort_keys=True))
        if row.by_method:
            log("      operations by method: %s" % json.dumps(row.by_method, sort_keys=True))
        if row.result.get("failed"):
            errors = row.result.get("errors") or []
            log("      !! the run failed: %s" % (row.result.get("msg") or ""))
            for error in errors[:5]:
                log("         %s" % (error,))
        for note in (row.result.get("notes") or [])[:3]:
            log("      note: %s" % note)

    # -- checks outside the timed runs ------------------------------------------------------------------------
    def verify_load(self, people, label):
        """Every HR person exactly once, with the right manager and group (one paged read + one per group)."""
        users = self.admin.list("/users", {"$select": "id,employeeId", "$expand": "manager($select=id)"})
        mine = [u for u in users if u.get("employeeId")]
        by_id = dict((u["id"], u["employeeId"]) for u in mine)
        counts = {}
        for user in mine:
            counts[user["employeeId"]] = counts.get(user["employeeId"], 0) + 1
        expected_managers = dict((p["EmployeeID"], p["ManagerID"]) for p in people if p["ManagerID"])
        managers = dict((u["employeeId"], by_id.get((u.get("manager") or {}).get("id")))
                        for u in mine if u.get("manager"))
        members = 0
        wrong_groups = 0
        dept_of = dict((p["EmployeeID"], p["Department"]) for p in people)
        for group in self.admin.list("/groups", {"$select": "id,displayName"}):
            if not group["displayName"].endswith(" staff"):
                continue
            dept = group["displayName"][:-len(" staff")]
            for member in self.admin.list("/groups/%s/members" % group["id"], {"$select": "id"}):
                members += 1
                if dept_of.get(by_id.get(member["id"])) != dept:
                    wrong_groups += 1
        ok = (len(counts) == len(people) and set(counts.values()) == {1} and managers == expected_managers
              and members == len(people) and wrong_groups == 0)
        text = "%d users (%d duplicated), %d/%d managers right, %d memberships (%d wrong)" % (
            len(counts), sum(1 for v in counts.values() if v > 1),
            sum(1 for k, v in expected_managers.items() if managers.get(k) == v), len(expected_managers),
            members, wrong_groups)
        log("      verified in Entra: %s -> %s" % (text, "OK" if ok else "MISMATCH"))
        return ok, text

    # -- scenarios --------------------------------------------------------------------------------------------
    def size_series(self, count):
        log("\n== %d users (throttling off) ==" % count)
        env = self.fresh_tenant("size-%d" % count)
        people = make_people(count)
        write_people(env["hr"], people)
        options = hr_workflow(store=env["store"], domain=env["domain"])

        row = self.measure("initial load", count, options)
        row.extra["verified"] = self.verify_load(people, "initial")

        self.measure("no-op re-run (full read)", count, options)

        if not self.args.no_playbook:
            self.admin.reset_stats()
            t0 = time.perf_counter()
            run = run_playbook(env["tmp"] / "ansible", [{"name": "sync", "idsync.entra.sync": options}])
            wall = time.perf_counter() - t0
            result = run.task("sync") if run.records else {"failed": True, "msg": run.output[-2000:]}
            if run.rc != 0:
                result.setdefault("failed_objects", None)
                log("      !! ansible-playbook rc=%s: %s" % (run.rc, run.output[-1500:]))
            row = Row("no-op via ansible-playbook", count, wall, self.admin.stats(), result,
                      note="rc=%s changed=%s" % (run.rc, result.get("changed")))
            self.rows.append(row)
            self.report(row)

        delta_options = dict(options, delta=True)
        self.measure("delta: first round (initial)", count, delta_options)
        self.measure("no-op re-run (delta)", count, delta_options)

        changed = change_one_percent(people, salt=1)
        write_people(env["hr"], people)
        self.measure("1 % changed (full read)", count, options,
                     note="%d rows: title, half of them also department" % changed)
        changed = change_one_percent(people, salt=2)
        write_people(env["hr"], people)
        self.measure("1 % changed (delta)", count, delta_options,
                     note="%d rows: title, half of them also department" % changed)

        export = export_options(env["store"])
        self.measure("export Entra->CSV: first round", count, export)
        export_bytes = env["export"].read_bytes()
        touched = self.change_in_entra(count)
        self.measure("export Entra->CSV: delta after changes", count, export, note=touched)
        lines_before = set(export_bytes.decode("utf-8-sig").splitlines())
        lines_after = set(env["export"].read_bytes().decode("utf-8-sig").splitlines())
        log("      export file: %d lines changed or added, %d removed" % (
            len(lines_after - lines_before), len(lines_before - lines_after)))

    def change_in_entra(self, count):
        """A few changes made by someone else in Entra (the admin app): 8 department edits, 1 disabled, 1 deleted."""
        wanted = set("E%06d" % n for n in range(2, count, max(1, count // 10)))
        users = [u for u in self.admin.list("/users", {"$select": "id,employeeId"}) if u.get("employeeId") in wanted]
        users.sort(key=lambda u: u["employeeId"])
        for user in users[:8]:
            self.admin.call("PATCH", "/users/%s" % user["id"], {"department": "Changed in Entra"})
        self.admin.call("PATCH", "/users/%s" % users[8]["id"], {"accountEnabled": False})
        self.admin.call("DELETE", "/users/%s" % users[9]["id"])
        return "8 departments edited, 1 disabled, 1 deleted in Entra"

    def throttled_load(self, count):
        log("\n== %d users, throttling ON (limit %d writes per 150 s = %.0f writes/s per app) ==" % (
            count, WRITE_BURST, WRITE_LIMIT))
        env = self.fresh_tenant("throttled-%d" % count, throttling=True)
        people = make_people(count)
        write_people(env["hr"], people)
        options = hr_workflow(store=env["store"], domain=env["domain"])
        row = self.measure("initial load, throttling ON", count, options, sampler=True)
        self.emulator.admin("PUT", "settings", {"throttling": False})
        row.extra["verified"] = self.verify_load(people, "throttled")
        row.extra["sustained"] = sustained(row.extra.get("samples") or [], row.wall)
        s = row.extra["sustained"]
        log("      accepted writes: %d in %.1f s = %.1f writes/s = %.0f %% of the %.0f writes/s limit (overall)" % (
            row.accepted_writes, row.wall, row.write_rate, 100 * row.write_rate / WRITE_LIMIT, WRITE_LIMIT))
        if row.throttled:
            log("      429 answers: %d, i.e. %.2f write attempts per accepted write; client retries %s" % (
                row.throttled, float(row.writes) / max(1, row.accepted_writes),
                ((row.result.get("stats") or {}).get("target") or {}).get("retries")))
        if s:
            log("      sustained phase (from the first 429 to the end, %.1f s): %d writes = %.1f writes/s = %.0f %% of "
                "the limit" % (s["seconds"], s["writes"], s["rate"], 100 * s["rate"] / WRITE_LIMIT))
        else:
            log("      never throttled: the load's %d writes fit in the bucket's burst of %d, so the run never met the "
                "sustained limit (use --throttled-users 3000 or more for that)" % (row.accepted_writes, WRITE_BURST))

    def plan_100k(self):
        log("\n== benchmarks/plan_100k.py ==")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plan_100k.py")], capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - t0
        output = proc.stdout + proc.stderr
        for line in output.strip().splitlines():
            log("  " + line)
        plan = re.search(r"^plan:\s+([\d.]+) s", output, re.M)
        rss = re.search(r"process peak RSS: (\d+) MB", output)
        self.plan_figures = {"plan_s": float(plan.group(1)) if plan else None,
                             "peak_rss_mb": int(rss.group(1)) if rss else None, "rc": proc.returncode,
                             "script_wall_s": round(wall, 2), "output": output}


def change_one_percent(people, salt):
    """Every 100th row (offset by ``salt``) gets a new title; every other one of them also moves department."""
    changed = 0
    for index in range(salt, len(people), 100):
        row = people[index]
        if row["EmployeeID"] == "E000001":
            continue
        row["Title"] = "Senior Staff %d" % salt
        if changed % 2 == 0:
            current = row["Department"]
            if current in DEPARTMENTS:
                row["Department"] = DEPARTMENTS[(DEPARTMENTS.index(current) + 1) % len(DEPARTMENTS)]
        changed += 1
    return changed


def export_options(store):
    """Entra users -> a CSV file (the export of the integration tests), with delta processing."""
    return {
        "name": "entra_to_csv",
        "store": str(store),
        "source": {"connection": "contoso", "object_type": "user", "scope": "<< employeeId != '' >>"},
        "target": {"connection": "export_file", "object_type": "row"},
        "match": [{"source": "employeeId", "target": "EmployeeID"}],
        "steps": {
            "create": {"attributes": {"EmployeeID": "employeeId"}},
            "update": {"attributes": {"UPN": "userPrincipalName", "Name": "displayName", "Department": "department",
                                      "Title": "jobTitle", "Enabled": "accountEnabled",
                                      "ManagerID": {"reference": "manager"}}},
            "deprovision": {"action": "delete"},
        },
        "delta": True,
    }


def sustained(samples, wall):
    """Writes accepted per second from the first throttled answer to the end of the run (the bucket is empty from
    then on, so this is the rate the limit allows), or None when nothing was throttled or that phase was short."""
    start = next((s for s in samples if s[2] > 0), None)
    if start is None or not samples:
        return None
    end = samples[-1]
    seconds = max(end[0], wall) - start[0]
    if seconds < 10:
        return None
    writes = (end[1] - end[2]) - (start[1] - start[2])
    return {"seconds": round(seconds, 1), "writes": writes, "rate": writes / seconds}


# -- output -----------------------------------------------------------------------------------------------------

def markdown(bench, args):
    lines = ["| scenario | users | wall time | Graph requests | writes | writes/s | failed objects |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in bench.rows:
        writes = "%d" % row.writes
        if row.throttled:
            writes += " (%d accepted, %d answered 429)" % (row.accepted_writes, row.throttled)
        rate = "%.1f" % row.write_rate if row.accepted_writes else "0"
        if row.throttled or "throttling ON" in row.scenario:
            rate += " (%.0f %% of 20/s)" % (100 * row.write_rate / WRITE_LIMIT)
            s = row.extra.get("sustained")
            if s:
                rate += "; sustained %.1f (%.0f %%)" % (s["rate"], 100 * s["rate"] / WRITE_LIMIT)
            elif not row.throttled:
                rate += "; never throttled: all within the 3,000-write burst"
        failed = "-" if row.failed is None else str(row.failed)
        lines.append("| %s | %s | %.2f s | %d | %s | %s | %s |" % (
            row.scenario, "{:,}".format(row.users), row.wall, row.requests, writes, rate, failed))
    if bench.plan_figures:
        p = bench.plan_figures
        lines.append("| plan 100,000 objects (`plan_100k.py`) | 100,000 | %s s (plan only) | - | - | - | "
                     "peak RSS %s MB |" % (p["plan_s"], p["peak_rss_mb"]))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="user counts of the throttling-off series")
    parser.add_argument("--latency-ms", type=int, default=20, help="emulator latency per Graph request")
    parser.add_argument("--throttled-users", type=int, default=1000,
                        help="users of the throttling-ON initial load (0: skip; 10000 takes ~17 min)")
    parser.add_argument("--quick", action="store_true", help="sizes 1000 only (a smoke run)")
    parser.add_argument("--only", choices=["all", "sizes", "throttled", "plan"], default="all")
    parser.add_argument("--no-playbook", action="store_true", help="skip the ansible-playbook no-op runs")
    parser.add_argument("--json", help="also write every figure (and the emulator samples) to this JSON file")
    parser.add_argument("--workdir", help="where the emulator state, stores and CSV files go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="idsync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, workdir)
    log("machine: %s CPUs, %s, Python %s" % (os.cpu_count(), cpu_model(), platform.python_version()))
    log("command: %s" % " ".join([Path(sys.executable).name] + sys.argv))
    started = time.perf_counter()
    try:
        if args.only in ("all", "sizes", "throttled"):
            bench.start()
        if args.only in ("all", "sizes"):
            for count in sizes:
                bench.size_series(count)
        if args.only in ("all", "throttled") and args.throttled_users > 0:
            bench.throttled_load(args.throttled_users)
        if args.only in ("all", "plan"):
            bench.plan_100k()
    finally:
        bench.stop()
    log("\n== results (latency %d ms per Graph request; %.0f s in all) ==\n" % (
        args.latency_ms, time.perf_counter() - started))
    log(markdown(bench, args))
    log("\nwrites = the emulator's write operations (POST/PATCH/PUT/DELETE, each $batch item counted); writes/s = "
        "accepted writes / wall time; with throttling on, the fraction is of the documented per-app limit "
        "(3,000 per 150 s = 20/s), 'sustained' = from the first 429 to the end of the run.")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "latency_ms": args.latency_ms, "rows": [r.as_dict() for r in bench.rows], "plan_100k": bench.plan_figures,
        }, indent=1, default=str))
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log("work directory kept: %s" % workdir)
    return 0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
