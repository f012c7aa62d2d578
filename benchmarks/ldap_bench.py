#!/usr/bin/env python3
"""Benchmark (not a test): the active_directory connector against a real Samba AD DC with 10,000 users.

Starts its own Samba DC (provisioned into a temp dir, on a loopback address, LDAPS with a test CA), then runs the
engine the way ``idsync.entra.sync`` does (options checked against the module's argument spec, then
``engine.run_workflow``) and prints, per step, the wall time and the connector's counters (LDAP searches, pages,
entries read, writes, objects a delta read found changed):

  1. initial load HR CSV -> AD (users created under OU=<Department>, managers, no passwords: the write path);
  2. AD -> CSV, first run (a full read of 10,000 users, 10,000 rows written);
  3. the same again (no-op re-run, full read);
  4. the first ``delta: true`` round (a full read that records the DC's USN);
  5. 100 users changed in AD, then a delta run (reads only the changed ones);
  6. a delta no-op.

    .venv/bin/python benchmarks/ldap_bench.py                  # 10,000 users
    .venv/bin/python benchmarks/ldap_bench.py --users 1000     # a smoke run
"""
import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tests" / "integration", ROOT / "tests", ROOT / "collections"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import ldap3  # noqa: E402

from ldap_servers import AD_PASSWORD, Directory, SambaDC, TestCA, ensure_packages  # noqa: E402
from sync_support import make_people, write_people  # noqa: E402

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.store import Store  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.sync.engine import run_workflow  # noqa: E402
from ansible_collections.idsync.entra.plugins.modules.sync import argument_spec  # noqa: E402


def params(options):
    result = ArgumentSpecValidator(argument_spec()).validate(options)
    if result.error_messages:
        raise SystemExit("bad options: %s" % result.error_messages)
    return result.validated_parameters


def timed(label, options, rows):
    started = time.monotonic()
    result = run_workflow(params(options))
    wall = time.monotonic() - started
    side = "target" if options["target"]["connection"] == "corp_ad" else "source"
    stats = result.get("stats", {}).get(side, {})
    row = {"step": label, "wall_s": round(wall, 2), "searches": stats.get("searches", 0),
           "pages": stats.get("pages", 0), "entries": stats.get("entries", 0), "writes": stats.get("writes", 0),
           "delta_changed": stats.get("delta_changed", "-"), "summary": result["summary"],
           "failed": result["failed_objects"], "mode": result["reads"][side]["mode"]}
    rows.append(row)
    print("%-38s %7.2f s  searches %5d  pages %5d  entries %6d  writes %6d  changed %s  failed %d" % (
        label, wall, row["searches"], row["pages"], row["entries"], row["writes"], row["delta_changed"],
        row["failed"]), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    ensure_packages()
    work = Path(tempfile.mkdtemp(prefix="idsync-ldap-bench-"))
    dc = SambaDC(work / "samba", TestCA(work / "ca"), index=9)
    (work / "samba").mkdir()
    t0 = time.monotonic()
    dc.provision()
    dc.start()
    print("Samba AD DC %s up in %.1f s" % (dc.address, time.monotonic() - t0), flush=True)
    rows = []
    try:
        ad = Directory(dc, "active_directory")
        store = work / "store.db"
        hr = work / "hr.csv"
        people = make_people(args.users)
        write_people(hr, people)
        with Store(str(store)) as s:
            s.put_connection("hr_file", "csv", {"path": str(hr), "key": ["EmployeeID"]})
            s.put_connection("corp_ad", "active_directory", ad.settings(create_ous=True, page_size=1000))
            s.put_connection("export", "csv", {"path": str(work / "export.csv"), "key": ["EmployeeID"]})
        secrets = {"corp_ad": {"bind_password": AD_PASSWORD}}
        load = {
            "name": "hr_to_ad", "store": str(store), "connection_secrets": secrets,
            "source": {"connection": "hr_file", "object_type": "row"},
            "target": {"connection": "corp_ad", "object_type": "user"},
            "match": [{"source": "EmployeeID", "target": "employeeID"}],
            "steps": {"create": {"attributes": {
                "userPrincipalName": "<< (GivenName ~ '.' ~ Surname) | mail_safe | lower >>@idsync.test",
                "givenName": "GivenName", "sn": "Surname"}},
                "update": {"attributes": {"dn": "CN=<< GivenName >> << Surname >>,OU=<< Department >>," + ad.people,
                                          "displayName": "<< GivenName >> << Surname >>", "department": "Department",
                                          "title": "Title", "manager": {"reference": "ManagerID"}}}},
        }
        timed("initial load HR CSV -> AD", load, rows)
        export = {
            "name": "ad_to_csv", "store": str(store), "connection_secrets": secrets,
            "source": {"connection": "corp_ad", "object_type": "user"},
            "target": {"connection": "export", "object_type": "row"},
            "match": [{"source": "employeeID", "target": "EmployeeID"}],
            "steps": {"create": {"attributes": {"EmployeeID": "employeeID"}},
                      "update": {"attributes": {"Name": "displayName", "Department": "department", "Title": "title",
                                                "Account": "sAMAccountName", "Enabled": "enabled"}}},
        }
        timed("AD -> CSV first run (full read)", export, rows)
        timed("AD -> CSV no-op re-run (full read)", export, rows)
        export["delta"] = True
        timed("AD -> CSV first delta round", export, rows)
        changed = ad.entries(ad.people, "(objectClass=user)", ["title"])[:args.changes]
        for entry in changed:
            ad.conn.modify(entry.entry_dn, {"title": [(ldap3.MODIFY_REPLACE, ["Changed"])]})
        timed("AD -> CSV delta after %d changes" % len(changed), export, rows)
        timed("AD -> CSV delta no-op", export, rows)
    finally:
        dc.stop()
    print(json.dumps({"users": args.users, "python": platform.python_version(), "rows": rows}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"users": args.users, "rows": rows}, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
