#!/usr/bin/env python3
"""Benchmark (not a test): what faults, throttling, duplicate names and failures cost a sync, against the emulator.

Scenarios (``--only`` picks one; each prints figures, then a Markdown table):

  faults      N people through a network that drops 2 % of the connections (before or after the service handled
              them), answers 5 % 429 and 3 % 503: runs until converged (target: one), failed objects, duplicates;
  transient   N people fault-free, then with 10 % transient faults (5 % 429 + 5 % 503, no throttling): wall time
              ratio (target: at most 1.5x);
  pacing      N people with the emulator's throttling on (Graph's 3,000 writes per 150 s per app): rejected attempts
              per accepted write (target <= 0.05), accepted rate past the burst (target >= 95 % of 20/s); then two
              workflows of N/4 people each on one application at once; then a throttling-off run with and without
              the pacer (not slowed: same time +- noise);
  unique      the extra Graph requests of a unique-userPrincipalName rule over N people with 30 % duplicate names
              (check mode, so reads only);
  output      the size of the ansible-playbook output of an N-object run where every object fails (target < 50 kB).

    .venv/bin/python benchmarks/reliability_bench.py --count 10000                 # all of it (~1 h on 2 cores)
    .venv/bin/python benchmarks/reliability_bench.py --only transient --count 1000
"""
import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tools"))
from sync_bench import Bench, Row, log, module_params, run_module  # noqa: E402
from sync_support import hr_workflow, make_people, write_people  # noqa: E402
from ansible_runner import run_playbook  # noqa: E402
import generate_hr_file  # noqa: E402

from ansible_collections.idsync.entra.plugins.module_utils.connectors import get_connector  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.sync.engine import run_workflow  # noqa: E402

DOCUMENTED_RATE = 20.0
NETWORK = [{"path": "^/v1.0/", "status": "drop", "rate": 0.02, "seed": 1, "phase": "either"},
           {"path": "^/v1.0/", "status": 429, "rate": 0.05, "seed": 2, "retry_after": 1},
           {"path": "^/v1.0/", "status": 503, "rate": 0.03, "seed": 3, "retry_after": 1}]
TRANSIENT = [{"path": "^/v1.0/", "status": 429, "rate": 0.05, "seed": 4, "retry_after": 1},
             {"path": "^/v1.0/", "status": 503, "rate": 0.05, "seed": 5, "retry_after": 1}]


class Reliability(Bench):
    def options(self, env, **extra):
        return hr_workflow(store=env["store"], domain=env["domain"], **extra)

    def employee_counts(self):
        return Counter(u["employeeId"] for u in self.admin.list("/users", {"$select": "id,employeeId"})
                       if u.get("employeeId"))

    def faults(self, count):
        log("\n== %d people through a faulty network (2 %% drops, 5 %% 429, 3 %% 503) ==" % count)
        env = self.fresh_tenant("faults")
        write_people(env["hr"], make_people(count))
        for fault in NETWORK:
            self.emulator.admin("POST", "faults", fault)
        runs = 0
        while runs < 5:
            runs += 1
            row = self.measure("faulty network, run %d" % runs, count, self.options(env))
            if not row.result.get("failed"):
                break
        stats = self.admin.stats()
        self.emulator.admin("DELETE", "faults")
        counts = self.employee_counts()
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        row.note = "converged in %d run(s); %d users, %d duplicates; faults injected %s" % (
            runs, len(counts), duplicates, stats.get("faults_by_status"))
        log("  " + row.note)
        target = (row.result.get("stats") or {}).get("target") or {}
        log("  client: unknown outcomes %s, adopted %s, creates re-sent %s, items retried %s" % (
            target.get("unknown_outcomes"), target.get("adopted"), target.get("resent_creates"),
            target.get("retried_items")))

    def transient(self, count):
        log("\n== %d people fault-free, then with 10 %% transient faults (5 %% 429 + 5 %% 503) ==" % count)
        people = make_people(count)
        env = self.fresh_tenant("clean")
        write_people(env["hr"], people)
        clean = self.measure("fault-free load", count, self.options(env))
        env = self.fresh_tenant("transient")
        write_people(env["hr"], people)
        for fault in TRANSIENT:
            self.emulator.admin("POST", "faults", fault)
        faulty = self.measure("10 % transient faults", count, self.options(env))
        self.emulator.admin("DELETE", "faults")
        faulty.note = "%.2fx the fault-free time (target <= 1.5x)" % (faulty.wall / clean.wall)
        log("  " + faulty.note)

    def pacing(self, count):
        log("\n== pacing under Graph's write limit: %d people, throttling ON ==" % count)
        env = self.fresh_tenant("paced", throttling=True)
        write_people(env["hr"], make_people(count))
        row = self.measure("paced load, throttling ON", count, self.options(env), sampler=True)
        self._rejections(row)
        self._two_workflows(count // 4)
        self._pacer_off_and_on(count)

    def _rejections(self, row):
        accepted = row.accepted_writes
        samples = row.extra.get("samples") or []
        burst_end = next((t for t, writes, _throttled in samples if writes >= 3000), None)
        tail = [(t, w) for t, w, _th in samples if burst_end is not None and t >= burst_end]
        rate = (tail[-1][1] - tail[0][1]) / (tail[-1][0] - tail[0][0]) if len(tail) > 1 and tail[-1][0] > tail[0][0] \
            else None
        row.note = "%.3f rejected attempts per accepted write (target <= 0.05); past the burst %s" % (
            row.throttled / float(accepted or 1),
            ("%.1f writes/s = %d %% of the limit (target >= 95 %%)" % (rate, 100 * rate / DOCUMENTED_RATE))
            if rate else "n/a")
        log("  " + row.note)

    def _two_workflows(self, each):
        log("\n== two workflows of %d people each, one application, at once ==" % each)
        env = self.fresh_tenant("two", throttling=True)
        people = make_people(each * 2)
        halves = {"first": people[:each], "second": people[each:]}
        options = {}
        for name, rows in halves.items():
            path = env["tmp"] / ("%s.csv" % name)
            write_people(path, rows)
            opts = self.options(env, name="hr_" + name, memberships=False)
            opts["source"] = {"connector": "csv", "path": str(path), "key": ["EmployeeID"], "object_type": "row",
                              "scope": "<< Status == 'Active' >>"}
            options[name] = opts
        self.admin.reset_stats()
        results = {}
        threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, run_module(options[n])))
                   for n in options]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - t0
        stats = self.admin.stats()
        row = Row("two workflows, one app", each * 2, wall, stats, {"failed_objects": sum(
            r.get("failed_objects") or 0 for r in results.values())})
        self.rows.append(row)
        past_burst = max(0, row.accepted_writes - 3000)
        row.note = "%.3f rejected attempts per accepted write; %d accepted in %.0f s (%.1f/s after the burst)" % (
            row.throttled / float(row.accepted_writes or 1), row.accepted_writes, wall,
            past_burst / max(1.0, wall - 3000 / 200.0))
        self.report(row)
        log("  " + row.note)

    def _pacer_off_and_on(self, count):
        log("\n== throttling OFF: the pacer costs nothing ==")
        people = make_people(count)
        for label, pacer in (("without the pacer", False), ("with the pacer", True), ("without the pacer (again)",
                                                                                     False), ("with the pacer (again)",
                                                                                              True)):
            env = self.fresh_tenant("nopace-%s" % pacer)
            write_people(env["hr"], people)
            factory = None if pacer else _without_pacer
            self.admin.reset_stats()
            t0 = time.perf_counter()
            result = run_workflow(module_params(self.options(env)), connector_factory=factory)
            row = Row("throttling off, %s" % label, count, time.perf_counter() - t0, self.admin.stats(), result)
            self.rows.append(row)
            self.report(row)

    def unique(self, count):
        log("\n== unique userPrincipalName over %d people with 30 %% duplicate names (check mode) ==" % count)
        rows = generate_hr_file.generate(count, seed=3, duplicate_names=0.3)
        env = self.fresh_tenant("unique")
        with open(str(env["hr"]), "w", encoding="utf-8") as handle:
            generate_hr_file.write(rows, handle)
        figures = {}
        for label, unique in (("plain rule", False), ("unique rule", True)):
            options = _hr_generated(env, unique)
            self.admin.reset_stats()
            t0 = time.perf_counter()
            result = run_workflow(module_params(options), check_mode=True)
            row = Row("plan, %s" % label, count, time.perf_counter() - t0, self.admin.stats(), result)
            self.rows.append(row)
            self.report(row)
            figures[label] = row
        extra = figures["unique rule"].requests - figures["plain rule"].requests
        upns = [c["attributes"]["userPrincipalName"] for c in figures["unique rule"].result["plan"]["create"]]
        fallback = sum(1 for u in upns if u.startswith("e") and u.split("@")[0][1:].isdigit())
        figures["unique rule"].note = ("%d extra Graph request(s) for %d people (the groups' addresses, read once); "
                                       "%d shared names fell back to the employee id" % (extra, count, fallback))
        log("  " + figures["unique rule"].note)

    def output(self, count):
        log("\n== output of a %d-object run where every object fails ==" % count)
        env = self.fresh_tenant("output")
        write_people(env["hr"], make_people(count))
        options = self.options(env)
        options["steps"]["create"]["attributes"]["userPrincipalName"] = "<< EmployeeID >>@fabrikam.invalid"
        self.admin.reset_stats()
        t0 = time.perf_counter()
        run = run_playbook(env["tmp"], [{"name": "sync", "idsync.entra.sync": options}])
        row = Row("every object fails (ansible-playbook)", count, time.perf_counter() - t0, self.admin.stats(),
                  run.task("sync"))
        row.note = "rc %d, %d bytes of output (target < 50 kB)" % (run.rc, len(run.stdout))
        self.rows.append(row)
        log("  " + row.note)


def _without_pacer(record, context):
    connector = get_connector(record, context)
    if record["connector"] == "azure_ad":
        connector.graph.pacer = None
    return connector


def _hr_generated(env, unique):
    upn = "<< (FirstName ~ '.' ~ LastName) | strip_accents | mail_safe | lower >>@" + env["domain"]
    return {
        "name": "hr_unique", "store": str(env["store"]),
        "source": {"connector": "csv", "path": str(env["hr"]), "key": ["EmployeeID"], "object_type": "row"},
        "target": {"connection": "contoso", "object_type": "user"},
        "match": [{"source": "EmployeeID", "target": "employeeId"}],
        "steps": {"create": {"attributes": {
            "userPrincipalName": {"unique": [upn, "<< 'e' ~ EmployeeID >>@" + env["domain"]]} if unique else upn,
            "displayName": "<< FirstName >> << LastName >>", "accountEnabled": True}, "password": "generate"}},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--only", choices=["all", "faults", "transient", "pacing", "nopace", "unique", "output"],
                        default="all")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="idsync-reliability-"))
    bench = Reliability(args, workdir)
    bench.start()
    try:
        for name in ("faults", "transient", "pacing", "unique", "output"):
            if args.only in ("all", name):
                getattr(bench, name)(args.count)
        if args.only == "nopace":
            bench._pacer_off_and_on(args.count)
    finally:
        bench.stop()
    log("\n| scenario | people | wall time | Graph requests | writes (429) | failed | note |")
    log("|---|---:|---:|---:|---:|---:|---|")
    for row in bench.rows:
        log("| %s | %s | %.1f s | %d | %d (%d) | %s | %s |" % (row.scenario, format(row.users, ","), row.wall,
                                                          row.requests, row.writes, row.throttled, row.failed,
                                                          row.note))


if __name__ == "__main__":
    main()
