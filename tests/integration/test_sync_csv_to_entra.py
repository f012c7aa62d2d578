"""idsync.entra.sync from an HR CSV file into the tenant emulator, through real ansible-playbook runs."""
import json
import sys

import pytest

from ansible_runner import COLLECTIONS, run_playbook
from sync_support import EmulatorAdmin, hr_workflow, make_people, save_connections, write_people

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils.store import Store  # noqa: E402


class SyncEnv:
    """An app with the sync permissions in the emulator, a store with ``contoso`` + ``hr_file``, and the HR file."""

    def __init__(self, tmp_path, emulator):
        self.tmp = tmp_path
        self.emulator = emulator
        self.admin = EmulatorAdmin(emulator)
        self.domain = emulator.endpoints["tenant_domain"]
        self.store = tmp_path / "state" / "store.db"
        self.store.parent.mkdir(parents=True, exist_ok=True)
        self.hr = tmp_path / "hr.csv"
        self.settings = self.admin.register_sync_app(tmp_path / "pki")
        save_connections(self.store, self.settings, {"hr_file": {"path": str(self.hr), "key": ["EmployeeID"]}})

    def options(self, **extra):
        return hr_workflow(store=self.store, domain=self.domain, **extra)

    def run(self, options, check=False, diff=False, name="sync", extra_tasks=()):
        task = {"name": name, "idsync.entra.sync": options, "register": "r"}
        return run_playbook(self.tmp, [task] + list(extra_tasks), check=check, diff=diff)

    def run_history(self, name="hr_to_entra"):
        with Store(str(self.store)) as store:
            return store.runs(name, limit=20)

    def users(self):
        """employeeId -> user (from the emulator's dump), for the users this workflow made."""
        return dict((u["employeeId"], u) for u in self.admin.list("/users", {
            "$select": "id,employeeId,userPrincipalName,department,jobTitle,accountEnabled,displayName"})
            if u.get("employeeId"))

    def managers(self):
        users = self.users()
        by_id = dict((u["id"], eid) for eid, u in users.items())
        out = {}
        for eid, user in users.items():
            data = self.admin.call("GET", "/users/%s/manager" % user["id"], expect=(200, 404))
            if data and "id" in data:
                out[eid] = by_id.get(data["id"])
        return out

    def groups(self):
        """displayName -> set of member employeeIds."""
        users = self.users()
        by_id = dict((u["id"], eid) for eid, u in users.items())
        out = {}
        for group in self.admin.list("/groups", {"$select": "id,displayName"}):
            members = self.admin.list("/groups/%s/members" % group["id"], {"$select": "id"})
            out[group["displayName"]] = set(by_id.get(m["id"], m["id"]) for m in members)
        return out


@pytest.fixture
def env(tmp_path, emulator):
    return SyncEnv(tmp_path, emulator)


PEOPLE = [
    {"EmployeeID": "E1", "GivenName": "Zoë", "Surname": "Ærøskøbing", "Department": "Sales", "Title": "Rep",
     "ManagerID": "E3", "Status": "Active"},
    {"EmployeeID": "E2", "GivenName": "Bob", "Surname": "O'Brien", "Department": "IT", "Title": "Admin",
     "ManagerID": "E3", "Status": "Active"},
    {"EmployeeID": "E4", "GivenName": "Nia", "Surname": "Inactive", "Department": "IT", "Title": "Dev",
     "ManagerID": "E3", "Status": "Inactive"},
    # the manager comes last: created in the same run, after the people who report to her
    {"EmployeeID": "E3", "GivenName": "Cleo", "Surname": "Chef", "Department": "Management", "Title": "CEO",
     "ManagerID": "", "Status": "Active"},
]


def test_create_update_deprovision_and_idempotent_rerun(env):
    write_people(env.hr, PEOPLE)
    run = env.run(env.options())
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["changed"] is True
    assert r["summary"]["created"] == 3 and r["summary"]["failed"] == 0
    assert r["summary"]["groups_created"] == 3 and r["summary"]["membership_added"] == 3
    users = env.users()
    assert sorted(users) == ["E1", "E2", "E3"]                        # E4 is out of scope
    assert users["E1"]["userPrincipalName"] == "zoe.aeroskobing@" + env.domain
    assert users["E2"]["userPrincipalName"] == "bob.o'brien@" + env.domain
    assert users["E1"]["displayName"] == "Zoë Ærøskøbing"
    assert env.managers() == {"E1": "E3", "E2": "E3"}                   # manager created in the same run
    assert env.groups() == {"Sales staff": {"E1"}, "IT staff": {"E2"}, "Management staff": {"E3"}}
    assert "password" not in json.dumps(r["plan"]) and "passwordProfile" not in run.output

    # the same data again: changed=false and not a single write request
    env.admin.reset_stats()
    run = env.run(env.options())
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["changed"] is False
    assert r["summary"]["unchanged"] == 3
    stats = env.admin.stats()
    assert stats["writes"] == 0, stats
    assert stats["requests"] <= 3, stats

    # one person changes department and title, one leaves
    people = [dict(PEOPLE[0], Department="IT", Title="Senior Rep"), PEOPLE[2], PEOPLE[3]]
    write_people(env.hr, people)
    run = env.run(env.options())
    assert run.rc == 0, run
    r = run.task("sync")
    s = r["summary"]
    assert (s["updated"], s["deprovisioned"], s["created"]) == (1, 1, 0)
    assert (s["membership_added"], s["membership_removed"]) == (1, 2)     # E1 Sales -> IT; E2 leaves IT
    assert r["plan"]["update"][0]["changes"] == {"department": {"before": "Sales", "after": "IT"},
                                                 "jobTitle": {"before": "Rep", "after": "Senior Rep"}}
    users = env.users()
    assert users["E2"]["accountEnabled"] is False                     # deprovisioned: disabled, not deleted
    assert users["E1"]["department"] == "IT"
    assert env.groups() == {"Sales staff": set(), "IT staff": {"E1"}, "Management staff": {"E3"}}

    env.admin.reset_stats()
    run = env.run(env.options())
    assert run.rc == 0 and run.task("sync")["changed"] is False, run
    assert env.admin.stats()["writes"] == 0

    history = run_playbook(env.tmp, [{"name": "history", "idsync.entra.sync_history": {
        "name": "hr_to_entra", "store": str(env.store), "limit": 10}, "register": "h"}])
    runs = history.task("history")["runs"]
    assert [x["status"] for x in runs] == ["succeeded"] * 4
    assert runs[1]["counts"]["deprovisioned"] == 1


def test_check_mode_writes_nothing_and_diff_shows_the_plan(env):
    write_people(env.hr, PEOPLE)
    before = env.admin.dump()
    env.admin.reset_stats()
    run = env.run(env.options(), check=True, diff=True)
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["changed"] is True
    assert env.admin.dump() == before
    stats = env.admin.stats()
    assert stats["writes"] == 0
    created = dict((c["object"], c["attributes"]) for c in r["plan"]["create"])
    upn = "zoe.aeroskobing@" + env.domain
    assert created[upn]["manager"] == "cleo.chef@%s (new)" % env.domain
    assert created[upn]["employeeId"] == "E1"
    assert "passwordProfile" not in created[upn]
    assert "%s (create)" % upn in run.stdout                          # --diff output
    assert "hr_to_entra: group Sales staff (create)" in run.stdout
    with Store(str(env.store)) as store:
        assert store.runs("hr_to_entra") == []                      # check mode records no run


def test_memberships_keep_members_added_by_hand(env):
    write_people(env.hr, PEOPLE)
    assert env.run(env.options()).rc == 0
    groups = dict((g["displayName"], g["id"]) for g in env.admin.list("/groups", {"$select": "id,displayName"}))
    outsider = env.admin.call("POST", "/users", {
        "accountEnabled": True, "displayName": "Outsider", "mailNickname": "outsider",
        "userPrincipalName": "outsider@" + env.domain,
        "passwordProfile": {"password": "Xy1!xy1!Xy1!", "forceChangePasswordNextSignIn": True}})
    env.admin.call("POST", "/groups/%s/members/$ref" % groups["Sales staff"],
                   {"@odata.id": env.admin.graph + "/directoryObjects/" + outsider["id"]})
    # E1 moves from Sales to IT
    write_people(env.hr, [dict(PEOPLE[0], Department="IT")] + PEOPLE[1:])
    run = env.run(env.options())
    assert run.rc == 0, run
    members = env.admin.list("/groups/%s/members" % groups["Sales staff"], {"$select": "id"})
    assert [m["id"] for m in members] == [outsider["id"]]
    assert env.groups()["IT staff"] == {"E1", "E2"}


def test_deletion_threshold_stops_the_run(env):
    write_people(env.hr, PEOPLE)
    assert env.run(env.options()).rc == 0
    write_people(env.hr, PEOPLE[3:])                                   # two of three active people vanish
    before = env.admin.dump()
    run = env.run(env.options(deletion_threshold=1, source_shrink_guard=0))
    assert run.rc != 0
    r = run.task("sync")
    assert r["_status"] == "failed"
    assert "deletion threshold" in r["msg"] and "force_deletes" in r["msg"]
    assert r["deletion_threshold"]["deprovisions"] == 2
    assert env.admin.dump() == before                                  # nothing at all was written
    run = env.run(env.options(deletion_threshold="33%", source_shrink_guard=0))
    assert run.rc != 0 and "33%" in run.task("sync")["msg"]
    run = env.run(env.options(deletion_threshold=1, force_deletes=True))
    assert run.rc == 0, run
    assert run.task("sync")["summary"]["deprovisioned"] == 2


def test_malformed_csv_lines_are_reported_and_skipped(env):
    lines = ["EmployeeID,GivenName,Surname,Department,Title,ManagerID,Status",
             "E1,Ann,Able,Sales,Rep,,Active",
             "E2,Ben,Baker,Sales,Rep,Active",                             # line 3: a field is missing
             "E3,Cat,Cole,IT,Dev,,Active",
             "E1,Ann,Again,IT,Dev,,Active"]                               # line 5: duplicate key
    env.hr.write_bytes(("\n".join(lines) + "\n").encode() + b"E5,D\xe9b,Dunn,IT,Dev,,Active\n")   # line 6: latin-1
    run = env.run(env.options())
    assert run.rc != 0
    r = run.task("sync")
    assert r["_status"] == "failed"
    errors = dict((e["object"], e["error"]) for e in r["errors"])
    assert errors["hr.csv line 3"] == "expected 7 fields, found 6"
    assert "duplicate key 'E1'" in errors["hr.csv line 5"] and "duplicate key 'E1'" in errors["hr.csv line 2"]
    assert "not valid UTF-8" in errors["hr.csv line 6"]
    assert "failed, everything else was applied" in r["msg"]
    assert sorted(env.users()) == ["E3"]                               # the good row went through
    env.admin.reset_stats()
    run = env.run(env.options())
    assert run.task("sync")["summary"]["failed"] == 4
    assert env.admin.stats()["writes"] == 0


@pytest.mark.parametrize("rule,expected", [
    ("<< (GivenName ~ '.' ~ Surname) | lowr >>", "No filter named 'lowr'"),
    ("<< GivenName ~ >>", "is not valid"),
    ("<< GivenName ~ Surnam >>", "unknown source attribute 'Surnam'"),
])
def test_bad_rules_fail_before_anything_is_read(env, rule, expected):
    write_people(env.hr, PEOPLE)
    options = env.options()
    options["steps"]["create"]["attributes"]["displayName"] = rule
    env.admin.reset_stats()
    run = env.run(options)
    assert run.rc != 0
    msg = run.task("sync")["msg"]
    assert "steps.create.attributes.displayName" in msg and expected in msg, msg
    assert env.admin.stats()["requests"] == 0


def test_unknown_target_attribute_names_the_rule(env):
    write_people(env.hr, PEOPLE)
    options = env.options()
    options["steps"]["update"]["attributes"]["jobtitle"] = "Title"
    run = env.run(options)
    msg = run.task("sync")["msg"]
    assert "steps.update.attributes.jobtitle" in msg and "did you mean jobTitle" in msg, msg


def test_second_run_fails_clearly_while_one_holds_the_lock(env):
    write_people(env.hr, PEOPLE)
    with Store(str(env.store)) as store:
        with store.lock("sync:hr_to_entra", owner="another run"):
            run = env.run(env.options())
    assert run.rc != 0
    msg = run.task("sync")["msg"]
    assert "sync:hr_to_entra is locked by another run" in msg, msg
    assert env.users() == {}
    assert env.run(env.options()).rc == 0                             # free again afterwards


def test_rules_reach_the_module_untemplated(env):
    """`<< >>` rules need no !unsafe, and Ansible's own {{ }} still works next to them."""
    write_people(env.hr, PEOPLE[:1] + PEOPLE[3:])
    options = env.options()
    options["steps"]["create"]["attributes"]["companyName"] = "{{ company }} << Department >>"
    task = {"name": "sync", "idsync.entra.sync": options, "register": "r", "vars": {"company": "Contoso"}}
    run = run_playbook(env.tmp, [task])
    assert run.rc == 0, run
    created = dict((c["source"], c["attributes"]) for c in run.task("sync")["plan"]["create"])
    assert created["E1"]["companyName"] == "Contoso Sales"
    assert created["E1"]["userPrincipalName"] == "zoe.aeroskobing@" + env.domain


def test_larger_load_matches_and_reruns_clean(env):
    people = make_people(120)
    write_people(env.hr, people)
    run = env.run(env.options())
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["summary"]["created"] == 120 and r["errors"] == []
    managers = env.managers()
    expected = dict((p["EmployeeID"], p["ManagerID"]) for p in people if p["ManagerID"])
    assert managers == expected
    env.admin.reset_stats()
    run = env.run(env.options())
    assert run.task("sync")["changed"] is False
    stats = env.admin.stats()
    assert stats["writes"] == 0 and stats["requests"] <= 3, stats


def test_group_members_from_a_member_list_column(env):
    write_people(env.hr, PEOPLE)
    assert env.run(env.options(memberships=[])).rc == 0
    groups_file = env.tmp / "groups.csv"
    groups_file.write_text("Group;Description;Members\nProject X;Secret project;E1, E2\nProject Y;;E3,E404\n")
    save_connections(env.store, csv_files={"groups_file": {"path": str(groups_file), "key": ["Group"],
                                                           "delimiter": ";"}})
    options = {
        "name": "project_groups",
        "store": str(env.store),
        "source": {"connection": "groups_file", "object_type": "row"},
        "target": {"connection": "contoso", "object_type": "group"},
        "match": [{"source": "Group", "target": "displayName"}],
        "steps": {
            "create": {"attributes": {"displayName": "Group"}},
            "update": {"attributes": {"description": "Description",
                                      "members": {"reference": "Members", "lookup": "employeeId",
                                                  "separator": ","}}},
        },
    }
    run = env.run(options)
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["summary"]["created"] == 2
    assert any("E404" in w for w in r["reference_warnings"])
    groups = env.groups()
    assert groups["Project X"] == {"E1", "E2"} and groups["Project Y"] == {"E3"}
    groups_file.write_text("Group;Description;Members\nProject X;Secret project;E2,E3\nProject Y;;E3,E404\n")
    run = env.run(options, check=True)
    change = run.task("sync")["plan"]["update"][0]["changes"]["members"]
    assert change == {"add": ["cleo.chef@" + env.domain], "remove": ["zoe.aeroskobing@" + env.domain]}
    assert env.run(options).rc == 0
    assert env.groups()["Project X"] == {"E2", "E3"}
    env.admin.reset_stats()
    run = env.run(options)
    assert run.task("sync")["changed"] is False and env.admin.stats()["writes"] == 0


def test_deprovision_by_delete_and_by_set(env):
    write_people(env.hr, PEOPLE)
    assert env.run(env.options()).rc == 0
    users = env.users()
    # set: leavers keep their account but are marked and disabled
    write_people(env.hr, [p for p in PEOPLE if p["EmployeeID"] != "E1"])
    options = env.options()
    options["steps"]["deprovision"] = {"action": "disable", "set": {"department": "Leavers", "jobTitle": None}}
    run = env.run(options, diff=True)
    assert run.rc == 0, run
    change = run.task("sync")["plan"]["deprovision"][0]
    assert change["action"] == "disable" and change["changes"] == {
        "accountEnabled": {"before": True, "after": False},
        "department": {"before": "Sales", "after": "Leavers"},
        "jobTitle": {"before": "Rep", "after": None}}
    after = env.users()["E1"]
    assert (after["accountEnabled"], after["department"], after.get("jobTitle")) == (False, "Leavers", None)
    assert env.run(options).task("sync")["changed"] is False
    # delete: the user goes to the recycle bin (restorable for 30 days)
    write_people(env.hr, [p for p in PEOPLE if p["EmployeeID"] not in ("E1", "E2")])
    options["steps"]["deprovision"] = {"action": "delete"}
    options.update(source_shrink_guard=0, deletion_threshold=2)         # two of three leave at once
    run = env.run(options)
    assert run.rc == 0, run
    assert sorted(d["object"] for d in run.task("sync")["plan"]["deprovision"]) == sorted(
        ["zoe.aeroskobing@" + env.domain, "bob.o'brien@" + env.domain])
    assert sorted(env.users()) == ["E3"]
    deleted = env.admin.list("/directory/deletedItems/microsoft.graph.user", {"$select": "id"})
    assert set(u["id"] for u in deleted) >= {users["E1"]["id"], users["E2"]["id"]}
    assert env.run(options).task("sync")["changed"] is False
