"""idsync.entra.sync from the tenant emulator into a CSV file (export), and delta processing, through real
ansible-playbook runs."""
import pytest

from sync_support import make_people, save_connections, write_people
from test_sync_csv_to_entra import SyncEnv


@pytest.fixture
def env(tmp_path, emulator):
    e = SyncEnv(tmp_path, emulator)
    e.export = tmp_path / "export" / "users.csv"
    e.export.parent.mkdir()
    save_connections(e.store, csv_files={"export_file": {"path": str(e.export), "key": ["EmployeeID"],
                                                         "delimiter": ";", "encoding": "utf-8-sig"}})
    write_people(e.hr, make_people(25))
    run = e.run(e.options())
    assert run.rc == 0, run
    return e


def export_options(env, **extra):
    options = {
        "name": "entra_to_csv",
        "store": str(env.store),
        "source": {"connection": "contoso", "object_type": "user", "scope": "<< employeeId != '' >>"},
        "target": {"connection": "export_file", "object_type": "row"},
        "match": [{"source": "employeeId", "target": "EmployeeID"}],
        "steps": {
            "create": {"attributes": {"EmployeeID": "employeeId"}},
            "update": {"attributes": {
                "UPN": "userPrincipalName",
                "Name": "displayName",
                "Department": "department",
                "Enabled": "accountEnabled",
                "ManagerID": {"reference": "manager"},
            }},
            "deprovision": {"action": "delete"},
        },
    }
    options.update(extra)
    return options


def test_export_is_idempotent_to_the_byte(env):
    run = env.run(export_options(env))
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["summary"]["created"] == 25
    data = env.export.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfEmployeeID;UPN;Name;Department;Enabled;ManagerID\n")
    rows = dict((line.split(";")[0], line.split(";")) for line in data.decode("utf-8-sig").splitlines()[1:])
    people = dict((p["EmployeeID"], p) for p in make_people(25))
    assert all(rows[eid][5] == people[eid]["ManagerID"] for eid in people)   # references as the manager's key
    assert rows["E000002"][4] == "true"
    stat_before = env.export.stat()
    env.admin.reset_stats()
    run = env.run(export_options(env))
    assert run.rc == 0, run
    assert run.task("sync")["changed"] is False
    assert env.export.read_bytes() == data
    assert env.export.stat().st_mtime_ns == stat_before.st_mtime_ns         # not even rewritten
    assert env.admin.stats()["writes"] == 0

    # a change in Entra changes exactly that row; a deleted user's row goes away
    users = env.users()
    managers = set(p["ManagerID"] for p in people.values())
    leaver = next(eid for eid in sorted(people) if eid not in managers and eid != "E000005")
    env.admin.call("PATCH", "/users/%s" % users["E000005"]["id"], {"department": "Special; Ops"})
    env.admin.call("DELETE", "/users/%s" % users[leaver]["id"])
    run = env.run(export_options(env))
    assert run.rc == 0, run
    s = run.task("sync")["summary"]
    assert (s["updated"], s["deprovisioned"]) == (1, 1)
    lines = env.export.read_bytes().decode("utf-8-sig").splitlines()
    before_lines = data.decode("utf-8-sig").splitlines()
    assert len(lines) == len(before_lines) - 1
    changed = [line for line in lines if line not in before_lines]
    assert len(changed) == 1 and changed[0].startswith('E000005;') and '"Special; Ops"' in changed[0]


def test_delta_export_and_expired_delta_link(env):
    options = export_options(env, delta=True)
    run = env.run(options)
    assert run.rc == 0, run
    assert run.task("sync")["reads"]["source"]["mode"] == "delta (initial)"
    data = env.export.read_bytes()
    env.admin.reset_stats()
    run = env.run(options)
    r = run.task("sync")
    assert r["changed"] is False and r["reads"]["source"]["mode"] == "delta"
    stats = env.admin.stats()
    assert stats["requests"] <= 3 and stats["writes"] == 0, stats

    users = env.users()
    env.admin.call("PATCH", "/users/%s" % users["E000003"]["id"], {"department": "Moved"})
    run = env.run(options)
    r = run.task("sync")
    assert r["summary"]["updated"] == 1 and r["reads"]["source"]["mode"] == "delta"

    env.admin.admin("POST", "expire-delta-tokens")
    env.admin.call("PATCH", "/users/%s" % users["E000004"]["id"], {"department": "Moved too"})
    run = env.run(options)
    assert run.rc == 0, run
    r = run.task("sync")
    assert any("expired" in note and "read every user again" in note for note in r["notes"]), r["notes"]
    assert r["reads"]["source"]["mode"] == "delta (initial)"
    assert r["summary"]["updated"] == 1                                       # the change was not lost
    env.admin.reset_stats()
    run = env.run(options)
    assert run.task("sync")["changed"] is False
    assert env.admin.stats()["requests"] <= 3
    assert data != env.export.read_bytes()


def test_csv_to_entra_delta_noop_costs_at_most_three_requests(env):
    options = env.options(delta=True)
    run = env.run(options)                       # the initial delta rounds (and nothing to write)
    assert run.rc == 0 and run.task("sync")["changed"] is False, run
    env.admin.reset_stats()
    run = env.run(options)
    r = run.task("sync")
    assert r["changed"] is False and r["reads"]["target"]["mode"] == "delta"
    stats = env.admin.stats()
    assert stats["writes"] == 0 and stats["requests"] <= 3, stats
    # a change in the HR file still goes through on a delta run
    people = make_people(25)
    people[0]["Title"] = "Chief Tester"
    write_people(env.hr, people)
    run = env.run(options)
    assert run.task("sync")["summary"]["updated"] == 1
    run = env.run(options)
    assert run.task("sync")["changed"] is False                 # the snapshot saw the run's own write
