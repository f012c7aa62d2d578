#!/usr/bin/env python3
"""Benchmark (not a test): the microsoft_365 connector against the tenant emulator's Exchange Online.

Starts its own emulator (``--latency-ms`` on every request, Exchange throttling off), registers an app with
Exchange.ManageAsApp and the Exchange Recipient Administrator role, writes a partner file of ``--contacts`` rows in
``--groups`` companies, and runs, in process as ``idsync.entra.sync`` would (options checked against the module's
argument spec):

1. initial load: the partner file -> mail contacts (New-MailContact + Set-MailContact per contact);
2. memberships: the same workflow with "Partners <Company>" distribution groups (created, then members added);
3. no-op re-run of (2) over every contact and group: reads only;
4. the same no-op through a real ansible-playbook run.

Figures come from the emulator's Exchange statistics, reset before each run: ``requests`` = HTTP requests to
InvokeCommand (pages included), ``write cmdlets`` = cmdlets other than Get-*. It prints a Markdown table.

    .venv/bin/python benchmarks/exchange_bench.py                       # 5,000 contacts, 500 groups
    .venv/bin/python benchmarks/exchange_bench.py --contacts 500 --groups 50 --latency-ms 0   # a smoke run
"""
import argparse
import csv
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tests" / "integration", ROOT / "tests", ROOT / "collections"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from conftest import start_emulator  # noqa: E402  (tests/conftest.py: the emulator process)
from exchange_support import ExchangeAdmin, save_microsoft_365  # noqa: E402
from sync_support import save_connections  # noqa: E402
from ansible_runner import run_playbook  # noqa: E402

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.sync.engine import run_workflow  # noqa: E402
from ansible_collections.idsync.entra.plugins.modules.sync import argument_spec  # noqa: E402


def log(text=""):
    print(text, flush=True)


def workflow(store, memberships):
    options = {
        "name": "partners_bench", "store": str(store),
        "source": {"connection": "partners", "object_type": "row"},
        "target": {"connection": "exchange", "object_type": "mail_contact"},
        "match": [{"source": "PartnerID", "target": "CustomAttribute1"}],
        "steps": {"create": {"attributes": {"Name": "<< GivenName >> << Surname >> (<< PartnerID >>)",
                                            "CustomAttribute1": "PartnerID"}},
                  "update": {"attributes": {"DisplayName": "<< GivenName >> << Surname >>",
                                            "ExternalEmailAddress": "Email", "CustomAttribute2": "Company"}}},
    }
    if memberships:
        options["memberships"] = [{"group": "Partners << Company >>", "object_type": "distribution_group",
                                   "match_attribute": "DisplayName", "create_missing": True}]
    return options


def params(options):
    checked = ArgumentSpecValidator(argument_spec()).validate(options)
    if checked.error_messages:
        raise SystemExit("bad workflow options: %s" % "; ".join(checked.error_messages))
    return checked.validated_parameters


def write_partners(path, contacts, groups):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["PartnerID", "GivenName", "Surname", "Email", "Company"])
        for n in range(contacts):
            company = "Company%04d" % (n % groups)
            writer.writerow(["P%06d" % n, "Given%d" % n, "Surname%d" % n, "p%06d@%s.example" % (n, company.lower()),
                             company])


def measure(admin, label, call):
    admin.exchange("POST", "stats/reset")
    started = time.perf_counter()
    result = call()
    wall = time.perf_counter() - started
    stats = admin.exchange("GET", "stats")
    writes = sum(v for k, v in stats["cmdlets"].items() if not k.startswith("Get-"))
    row = {"scenario": label, "seconds": round(wall, 1), "requests": stats["requests"], "writes": writes,
           "cmdlets": dict(sorted(stats["cmdlets"].items())), "failed": result.get("failed_objects"),
           "summary": result.get("summary")}
    log("%-60s %7.1f s %7d requests %7d write cmdlets  failed=%s" % (label, wall, row["requests"], writes,
                                                                   row["failed"]))
    log("    %s" % row["cmdlets"])
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--max-in-flight", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="exchange-bench-"))
    log("starting the tenant emulator (latency %d ms per request) in %s ..." % (args.latency_ms, work))
    emulator = start_emulator(work / "emulator", "--latency-ms", str(args.latency_ms))
    rows = []
    try:
        admin = ExchangeAdmin(emulator)
        settings = admin.register_exchange_app(work / "pki", name="idsync exchange bench")
        store = work / "store.db"
        partners = work / "partners.csv"
        write_partners(partners, args.contacts, args.groups)
        save_connections(store, None, {"partners": {"path": str(partners), "key": ["PartnerID"]}})
        save_microsoft_365(store, "exchange", settings)
        contacts_only = params(dict(workflow(store, False), max_in_flight=args.max_in_flight))
        with_groups = params(dict(workflow(store, True), max_in_flight=args.max_in_flight))
        rows.append(measure(admin, "initial load: %d mail contacts" % args.contacts,
                            lambda: run_workflow(contacts_only)))
        rows.append(measure(admin, "memberships: %d distribution groups created, %d members added"
                            % (args.groups, args.contacts), lambda: run_workflow(with_groups)))
        rows.append(measure(admin, "no-op re-run: %d contacts + %d groups (in process)" % (args.contacts, args.groups),
                            lambda: run_workflow(with_groups)))
        task = {"name": "sync", "idsync.entra.sync": dict(workflow(store, True), max_in_flight=args.max_in_flight),
                "register": "r"}
        rows.append(measure(admin, "no-op re-run through ansible-playbook",
                            lambda: run_playbook(work / "play", [task]).task("sync")))
    finally:
        emulator.process.terminate()
    log("\n| scenario | seconds | requests | write cmdlets | failed |\n|---|---:|---:|---:|---:|")
    for row in rows:
        log("| %s | %.1f | %d | %d | %s |" % (row["scenario"], row["seconds"], row["requests"], row["writes"],
                                             row["failed"]))
    log("\nlatency %d ms per request, max_in_flight %d; %s, Python %s, %s"
        % (args.latency_ms, args.max_in_flight, platform.platform(), platform.python_version(), platform.processor()
           or platform.machine()))


if __name__ == "__main__":
    main()
