"""Ownership survives losing the store: users and groups carry the name of the workflow that manages them (a
directory extension on the connector's application), so a run on an empty store rebuilds what it manages from
Entra and deprovisions leavers exactly as a run with the store does. Real ansible-playbook runs, emulator tenant."""
import shutil

import pytest

from ansible_runner import run_playbook
from sync_support import EmulatorAdmin, hr_workflow, make_people, save_connections, write_people


class OwnedEnv:
    def __init__(self, tmp_path, emulator):
        self.tmp = tmp_path
        self.admin = EmulatorAdmin(emulator)
        self.domain = emulator.endpoints["tenant_domain"]
        self.settings = self.admin.register_sync_app(tmp_path / "pki")
        app = self.admin.call("GET", "/applications(appId='%s')" % self.settings["application_id"])
        definition = self.admin.call("POST", "/applications/%s/extensionProperties" % app["id"], {
            "name": "idsyncWorkflow", "dataType": "String", "targetObjects": ["User", "Group"]})
        self.mark = definition["name"]
        self.settings["ownership_attribute"] = self.mark
        self.hr = tmp_path / "hr.csv"
        self.contractors = tmp_path / "contractors.csv"

    def store(self, name):
        """A store as a fresh job makes it: the connections only (no state, no history)."""
        path = self.tmp / name / "store.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_connections(path, self.settings, {"hr_file": {"path": str(self.hr), "key": ["EmployeeID"]},
                                               "contractors_file": {"path": str(self.contractors),
                                                                    "key": ["EmployeeID"]}})
        return path

    def run(self, store, name="hr_to_entra", source="hr_file", **extra):
        options = hr_workflow(name=name, store=store, domain=self.domain, **extra)
        options["source"]["connection"] = source
        return run_playbook(self.tmp, [{"name": "sync", "idsync.entra.sync": options}]).task("sync")

    def users(self):
        return dict((u["employeeId"], u) for u in self.admin.list("/users", {
            "$select": "id,employeeId,accountEnabled,%s" % self.mark}) if u.get("employeeId"))

    def groups(self):
        return dict((g["displayName"], g) for g in self.admin.list("/groups", {"$select": "id,displayName,%s" % self.mark}))


@pytest.fixture
def env(tmp_path, emulator):
    return OwnedEnv(tmp_path, emulator)


def test_a_lost_store_deprovisions_leavers_as_the_store_would(env):
    people = make_people(60)
    write_people(env.hr, people)
    first = env.store("job1")
    r = env.run(first)
    assert r["summary"]["created"] == 60 and r["summary"]["failed"] == 0, r
    users = env.users()
    assert set(u[env.mark] for u in users.values()) == {"hr_to_entra"}
    assert set(g[env.mark] for g in env.groups().values()) == {"hr_to_entra"}

    leavers = [p["EmployeeID"] for p in people[:5]]
    write_people(env.hr, people[5:])
    # The same run twice: with the store (a copy) and on a new, empty store.
    with_store = env.tmp / "job2-with-store"
    shutil.copytree(first.parent, with_store)
    check = run_playbook(env.tmp, [{"name": "sync", "idsync.entra.sync": dict(
        hr_workflow(store=with_store / "store.db", domain=env.domain))}], check=True).task("sync")
    lost = env.run(env.store("job2-lost-store"))
    assert "summary" in lost, lost["msg"]
    assert lost["summary"]["deprovisioned"] == 5 == check["summary"]["deprovisioned"], lost
    assert lost["summary"]["membership_removed"] == check["summary"]["membership_removed"]
    assert sorted(d["object"] for d in lost["plan"]["deprovision"]) == sorted(
        d["object"] for d in check["plan"]["deprovision"])
    assert any("carrying this workflow's mark" in n for n in lost["notes"])
    users = env.users()
    assert [e for e in leavers if users[e]["accountEnabled"] is False] == leavers
    assert set(users[e][env.mark] for e in leavers) == {"hr_to_entra (deprovisioned)"}   # ours, and disabled by us

    env.admin.reset_stats()
    again = env.run(env.store("job3-lost-again"))
    assert again["changed"] is False and env.admin.stats()["writes"] == 0, again

    # Two leavers come back, and an administrator disables someone who stayed: on yet another empty store, the
    # returning people are enabled (their mark says this workflow disabled them), the other account stays disabled.
    suspended = people[10]["EmployeeID"]
    env.admin.call("PATCH", "/users/%s" % users[suspended]["id"], {"accountEnabled": False})
    write_people(env.hr, people[3:])
    back = env.run(env.store("job4-returning"))
    assert back["summary"]["updated"] == 2 and back["summary"]["failed"] == 0, back
    users = env.users()
    assert [e for e in leavers if users[e]["accountEnabled"]] == leavers[3:]
    assert [users[e][env.mark] for e in leavers[3:]] == ["hr_to_entra", "hr_to_entra"]
    assert users[suspended]["accountEnabled"] is False and users[suspended][env.mark] == "hr_to_entra"


def test_two_workflows_on_one_tenant_and_a_rename(env):
    people = make_people(12)
    write_people(env.hr, people[:8])
    contractors = [dict(p, EmployeeID="C" + p["EmployeeID"][1:]) for p in people[8:]]
    write_people(env.contractors, contractors)
    store = env.store("shared")
    assert env.run(store)["summary"]["created"] == 8
    assert env.run(store, name="contractors", source="contractors_file", memberships=False)["summary"]["created"] == 4
    users = env.users()
    assert set(users[c["EmployeeID"]][env.mark] for c in contractors) == {"contractors"}

    # hr_to_entra on a lost store, told to consider every object with an employeeId: it still never touches the
    # contractors' accounts, which another workflow marked.
    steps = dict(hr_workflow(domain=env.domain)["steps"], deprovision={"action": "disable", "scope": "match_key"})
    r = env.run(env.store("lost"), steps=steps)
    assert r["summary"]["deprovisioned"] == 0, r
    assert all(u["accountEnabled"] for u in env.users().values())

    # Renamed: the objects marked with the old name are the workflow's, and take the new name.
    write_people(env.hr, people[1:8])
    renamed = env.run(env.store("renamed"), name="hr_sync", previous_names=["hr_to_entra"], deletion_threshold=5)
    assert renamed["summary"]["deprovisioned"] == 1, renamed
    users = env.users()
    assert users[people[0]["EmployeeID"]]["accountEnabled"] is False
    assert set(users[p["EmployeeID"]][env.mark] for p in people[1:8]) == {"hr_sync"}
    assert set(users[c["EmployeeID"]][env.mark] for c in contractors) == {"contractors"}
