#!/usr/bin/env python3
"""Benchmark (not a test): the sync engine plans 100,000 objects in under 10 s and 500 MB.

Builds 100,000 synthetic HR rows and the Entra users they match (1 % with a changed attribute, 1 % new, 1 % gone,
managers, department groups), then times ``Planner.plan`` alone (pure: no I/O) and reports the peak memory of the
whole process (the data sets included).

    .venv/bin/python benchmarks/plan_100k.py [--objects 100000]
"""
import argparse
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.idsync.entra.plugins.module_utils.connectors.azure_ad import AzureAdConnector  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.sync.config import (  # noqa: E402
    Workflow, validate_workflow,
)
from ansible_collections.idsync.entra.plugins.module_utils.sync.plan import Planner  # noqa: E402

DEPARTMENTS = ["Sales", "Marketing", "Engineering", "Support", "Finance", "Legal", "Operations", "Research",
               "Human Resources", "Facilities"]
PARAMS = {
    "name": "bench",
    "source": {"connection": "hr", "object_type": "row", "scope": "<< Status == 'Active' >>"},
    "target": {"connection": "contoso", "object_type": "user"},
    "match": [{"source": "EmployeeID", "target": "employeeId"}],
    "steps": {
        "create": {"attributes": {
            "userPrincipalName": "<< (GivenName ~ '.' ~ Surname) | strip_accents | lower >>@contoso.example",
            "displayName": "<< GivenName >> << Surname >>",
            "givenName": "GivenName", "surname": "Surname", "accountEnabled": True}, "password": "generate"},
        "update": {"attributes": {"department": "Department", "jobTitle": "Title", "officeLocation": "Office",
                                  "manager": {"reference": "ManagerID"}}},
        "deprovision": {"action": "disable"},
    },
    "memberships": [{"group": "<< Department >> staff", "create_missing": True}],
}


def build(count, seed=1):
    rng = random.Random(seed)
    source = {}
    target = {}
    managed = set()
    heads = {}
    for number in range(1, count + 1):
        eid = "E%07d" % number
        dept = DEPARTMENTS[number % len(DEPARTMENTS)]
        heads.setdefault(dept, eid)
        row = {"EmployeeID": eid, "GivenName": "Given%d" % number, "Surname": "Sürname%d" % number,
               "Department": dept, "Title": "Staff", "Office": "Building %d" % (number % 7),
               "ManagerID": heads[dept] if heads[dept] != eid else "", "Status": "Active"}
        source[eid] = row
    ids = {}
    for eid, row in source.items():
        roll = rng.random()
        if roll < 0.01:
            continue                                   # new in HR: a create
        tid = "%08x-0000-4000-8000-%012x" % (int(eid[1:]), int(eid[1:]))
        ids[eid] = tid
    groups = dict(("g-%s" % d, {"displayName": "%s staff" % d, "members": []}) for d in DEPARTMENTS)
    group_ids = dict((d, "g-%s" % d) for d in DEPARTMENTS)
    for eid, tid in ids.items():
        row = source[eid]
        user = {"employeeId": eid, "userPrincipalName": "%s.%s@contoso.example" % (
            row["GivenName"].lower(), row["Surname"].lower().replace("ü", "u")),
            "displayName": "%s %s" % (row["GivenName"], row["Surname"]), "department": row["Department"],
            "jobTitle": row["Title"], "officeLocation": row["Office"], "accountEnabled": True,
            "manager": ids.get(row["ManagerID"])}
        if rng.random() < 0.01:
            user["jobTitle"] = "Old title"             # an update
        target[tid] = user
        managed.add(tid)
        groups[group_ids[row["Department"]]]["members"].append(tid)
    for number in range(count + 1, count + 1 + count // 100):   # 1 % gone from HR: deprovisions
        tid = "%08x-0000-4000-8000-%012x" % (number, number)
        target[tid] = {"employeeId": "E%07d" % number, "userPrincipalName": "gone%d@contoso.example" % number,
                       "accountEnabled": True, "department": "Sales", "jobTitle": "Staff"}
        managed.add(tid)
    return source, target, managed, groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100000)
    parser.add_argument("--tracemalloc", action="store_true", help="also measure Python allocations (slower)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    source, target, managed, groups = build(args.objects)
    built = time.perf_counter() - t0
    connector = AzureAdConnector({"name": "contoso", "connector": "azure_ad", "settings": {}}, {})
    wf = Workflow.from_params(PARAMS)
    source_schema = dict((c, None) for c in ["EmployeeID", "GivenName", "Surname", "Department", "Title", "Office",
                                               "ManagerID", "Status"])
    schema = connector.schema("user")
    validate_workflow(wf, source_schema, schema, "hr", "contoso", connector, connector.schema("group"))
    planner = Planner(wf, source_schema, schema, connector, connector.schema("group"))
    wf.threshold = (10 ** 9, False)
    if args.tracemalloc:
        tracemalloc.start()
    t0 = time.perf_counter()
    plan = planner.plan(source, target, managed=managed, groups=groups, managed_groups=set(groups))
    planned = time.perf_counter() - t0
    result = plan.to_result(["manager"])
    shown = time.perf_counter() - t0 - planned
    traced = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    summary = plan.summary()
    print("objects: %d source, %d target" % (len(source), len(target)))
    print("build data: %.2f s" % built)
    print("plan:       %.2f s  (%s)" % (planned, ", ".join("%s=%s" % kv for kv in sorted(summary.items()))))
    print("to_result:  %.2f s  (%d entries)" % (shown, sum(len(v) for v in result.values())))
    if traced is not None:
        print("plan allocations peak: %.0f MB" % (traced / 1e6))
    print("process peak RSS: %.0f MB" % peak_mb)
    ok = planned < 10 and peak_mb < 500
    print("target (< 10 s, < 500 MB): %s" % ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
