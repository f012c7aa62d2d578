"""Real HR data: a generated export with the names a real company has (a quarter of the full names shared, accents,
apostrophes, Chinese, Greek and Cyrillic names, one name over 64 characters) synced into the tenant emulator with
throttling and replication delay on; Graph's limits caught in check mode; bounded output; the run report in a real
browser."""
import json
from collections import Counter
from pathlib import Path

import pytest

from test_report_browser import chromium, dump_dom  # noqa: F401  (the browser fixture)
from test_sync_csv_to_entra import SyncEnv

import generate_hr_file_path  # noqa: F401  (puts tools/ on sys.path)
import generate_hr_file  # noqa: E402

COUNT = 1200


@pytest.fixture
def env(tmp_path, emulator):
    return SyncEnv(tmp_path, emulator)


@pytest.fixture
def people():
    rows = generate_hr_file.generate(COUNT, seed=8, duplicate_names=0.25, realistic=True)
    names = Counter((p["FirstName"], p["LastName"]) for p in rows)
    shared = sum(n for n in names.values() if n > 1)
    assert shared >= 0.2 * COUNT                                   # the input is what the issue describes
    assert any(len(p["FirstName"] + " " + p["LastName"]) > 64 for p in rows)
    assert any(ord(c) > 0x2e80 for p in rows for c in p["LastName"])   # CJK
    assert any("'" in p["LastName"] for p in rows)
    return rows


def write_hr(path, rows):
    with open(str(path), "w", encoding="utf-8") as handle:
        generate_hr_file.write(rows, handle)


def workflow(env, domain=None, job_title="Title"):
    domain = domain or env.domain
    first_last = "<< (FirstName ~ '.' ~ LastName) | strip_accents | mail_safe | lower >>@" + domain
    initial_last = "<< (FirstName[:1] ~ '.' ~ LastName) | strip_accents | mail_safe | lower >>@" + domain
    return {
        "name": "hr_real", "store": str(env.store),
        "source": {"connector": "csv", "path": str(env.hr), "key": ["EmployeeID"], "object_type": "row",
                   "scope": "<< Status == 'Active' >>"},
        "target": {"connection": "contoso", "object_type": "user"},
        "match": [{"source": "EmployeeID", "target": "employeeId"}],
        "steps": {
            "create": {"attributes": {
                "userPrincipalName": {"unique": [first_last, initial_last,
                                                 "<< 'e' ~ EmployeeID >>@" + domain]},
                "mailNickname": "<< target.userPrincipalName.split('@')[0] >>",
                "accountEnabled": True}, "password": "generate"},
            "update": {"attributes": {
                "displayName": "<< FirstName >> << LastName >>", "givenName": "FirstName", "surname": "LastName",
                "department": "Department", "jobTitle": job_title, "manager": {"reference": "ManagerID"}}},
            "deprovision": {"action": "disable"},
        },
        "memberships": [{"group": "<< Department >> staff", "create_missing": True}],
    }


def test_real_names_all_get_accounts_managers_and_groups_then_nothing_to_do(env, people, chromium):  # noqa: F811
    write_hr(env.hr, people)
    active = dict((p["EmployeeID"], p) for p in people if p["Status"] == "Active")
    env.admin.admin("PUT", "settings", {"throttling": True, "replication_delay_ms": 1000})
    run = env.run(workflow(env))
    assert run.rc == 0, run
    result = run.task("sync")
    assert result["errors"] == [] and result["failed_objects"] == 0
    assert result["summary"]["created"] == len(active)

    dump = env.admin.dump()
    users = [u for u in dump["objects"]["user"] if u.get("employeeId")]
    assert sorted(u["employeeId"] for u in users) == sorted(active)            # one user per in-scope row
    upns = [u["userPrincipalName"].lower() for u in users]
    assert len(set(upns)) == len(upns)
    by_id = dict((u["id"], u["employeeId"]) for u in users)
    managers = dict((by_id[uid], by_id.get(mid)) for uid, mid in dump["managerOf"].items() if uid in by_id)
    assert managers == dict((e, p["ManagerID"]) for e, p in active.items() if p["ManagerID"] in active)
    # a shared name got the second candidate (initial.surname); names with no Latin letters the employee id
    assert any(len(upn.split(".")[0]) == 1 for upn in upns)
    assert any(upn.startswith("e1") for upn in upns)

    # the report of that run: every created object is a row, and the page shows them
    report = json.loads(Path(result["report"]["json"]).read_text())
    assert report["status"] == "succeeded"
    assert sum(1 for row in report["rows"] if row["outcome"] == "created") == len(active)
    page = dump_dom(chromium, Path(result["report"]["html"]).as_uri())
    assert len(page.rows) == len(report["rows"])

    env.admin.reset_stats()
    again = env.run(workflow(env))
    assert again.rc == 0 and again.task("sync")["changed"] is False, again
    assert env.admin.stats()["writes"] == 0


def test_a_rule_that_breaks_a_limit_is_caught_in_check_mode_and_the_output_stays_small(env, people,
                                                                                       chromium):  # noqa: F811
    write_hr(env.hr, people)
    env.admin.reset_stats()
    run = env.run(workflow(env, job_title="<< Title ~ ' of ' ~ Department ~ ' and ' ~ Title * 20 >>"), check=True)
    result = run.task("sync")
    active = sum(1 for p in people if p["Status"] == "Active")
    assert run.rc != 0 and result["failed_objects"] == active
    first = result["errors"][0]
    assert first["rule"] == "steps.update.attributes.jobTitle" and "Microsoft Graph allows at most 128" in first["error"]
    assert len(result["errors"]) == 20                                       # the first 20; the report has them all
    assert env.admin.stats()["writes"] == 0

    # every object fails (a domain the tenant does not have): the task output stays small
    run = env.run(workflow(env, domain="fabrikam.invalid"))
    result = run.task("sync")
    assert run.rc != 0 and result["failed_objects"] == active
    assert len(run.stdout) < 50 * 1024, len(run.stdout)
    assert "not a verified domain" in result["msg"]
    page = dump_dom(chromium, Path(result["report"]["html"]).as_uri() + "#outcome=failed")
    failed = [row for row in page.rows if row["outcome"] == "failed"]
    assert len(failed) == result["failed_objects"] and page.shown() == [page.rows.index(r) for r in failed]
