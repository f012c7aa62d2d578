#!/usr/bin/env python3
"""Benchmark (not a test): playbooks/multi_tenant.yml over N emulator tenants of U users each, against one tenant.

Starts one emulator process per tenant (``--latency-ms`` on every request, throttling off), registers a sync app
with the ownership extension in each, writes an HR file of ``--users`` people per tenant, and times real
``ansible-playbook`` runs of the playbook (wall time, initial loads on fresh tenants and a fresh SQLite store):

  1 tenant                          the reference
  N tenants, --forks 1              one after the other
  N tenants, --forks N              side by side
  N tenants, --forks N, no-op       the re-run that changes nothing

and prints the figures and a Markdown table. Nothing is asserted.

    .venv/bin/python benchmarks/multi_tenant_bench.py                 # 3 tenants x 1,000 users, 20 ms latency
    .venv/bin/python benchmarks/multi_tenant_bench.py --tenants 2 --users 200     # a smoke run
"""
import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tests" / "integration", ROOT / "tests", ROOT / "collections"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from multi_tenant_support import (  # noqa: E402  (tests/integration/multi_tenant_support.py)
    host_result, run_multi_tenant, start_tenants, stop_tenants, write_inventory,
)
from sync_support import make_people, write_people  # noqa: E402

SYNC_TASK = "Sync the tenant's people into its users and department groups"
NAMES = ["contoso", "fabrikam", "tailspin", "northwind", "adatum", "litware", "woodgrove", "proseware"]


def reset(tenants, users):
    for index, tenant in enumerate(tenants):
        tenant.emulator.reset()
        tenant.__init__(tenant.name, tenant.emulator, tenant.hr_file.parent.parent)   # a fresh app in the fresh tenant
        write_people(tenant.hr_file, make_people(users, seed=index + 1))


def measure(label, work, tenants, forks, users, fresh=True):
    if fresh:
        reset(tenants, users)
        store_dir = work / ("store-" + label.replace(" ", "-").replace(",", ""))
        shutil.rmtree(store_dir, ignore_errors=True)
    else:
        store_dir = measure.last_store
    measure.last_store = store_dir
    inventory = write_inventory(work / ("inventory-%d.yml" % len(tenants)), tenants)
    run, wall = run_multi_tenant(work / ("run-" + label.replace(" ", "-").replace(",", "")), inventory, forks,
                                 store_dir / "store.db")
    if run.rc != 0:
        print(run.output[-4000:])
        raise SystemExit("%s: ansible-playbook failed (rc %s)" % (label, run.rc))
    created = sum(host_result(run, SYNC_TASK, t.name).get("summary", {}).get("created", 0) for t in tenants)
    print("%-36s %7.1f s   (%d users created)" % (label, wall, created), flush=True)
    return wall, created


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="idsync-multi-tenant-bench-"))
    names = NAMES[:args.tenants]
    print("machine: %s, %d cores, Python %s" % (platform.platform(), os.cpu_count(), platform.python_version()))
    print("%d tenants x %d users, %d ms latency per request, throttling off\n" % (args.tenants, args.users,
                                                                                args.latency_ms))
    tenants = start_tenants(work, names, "--latency-ms", str(args.latency_ms))
    try:
        rows = []
        rows.append(("1 tenant, forks 1",) + measure("1 tenant, forks 1", work, tenants[:1], 1, args.users))
        rows.append(("%d tenants, forks 1" % args.tenants,)
                    + measure("%d tenants, forks 1" % args.tenants, work, tenants, 1, args.users))
        rows.append(("%d tenants, forks %d" % (args.tenants, args.tenants),)
                    + measure("%d tenants, forks %d" % (args.tenants, args.tenants), work, tenants, args.tenants,
                              args.users))
        rows.append(("%d tenants, forks %d, no-op re-run" % (args.tenants, args.tenants),)
                    + measure("no-op re-run", work, tenants, args.tenants, args.users, fresh=False))
    finally:
        stop_tenants(tenants)
        shutil.rmtree(work, ignore_errors=True)
    reference = rows[0][1]
    print("\n| run | wall time | users created | vs. 1 tenant |\n|---|---|---|---|")
    for label, wall, created in rows:
        print("| %s | %.1f s | %d | %.2fx |" % (label, wall, created, wall / reference))


if __name__ == "__main__":
    main()
