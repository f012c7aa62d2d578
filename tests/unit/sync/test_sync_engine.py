"""The engine end to end on an in-memory Graph (FakeGraph) and real CSV files and store: no network."""
import json

import pytest

from ansible_collections.idsync.entra.plugins.module_utils.connectors import get_connector
from ansible_collections.idsync.entra.plugins.module_utils.connectors.azure_ad import AzureAdConnector
from ansible_collections.idsync.entra.plugins.module_utils.store import LockedError
from ansible_collections.idsync.entra.plugins.module_utils.sync.engine import (
    DeletionThresholdExceeded, run_workflow,
)
from fakegraph import FakeGraph

HEADER = "EmployeeID,GivenName,Surname,Department,Title,ManagerID,Status\n"
PEOPLE = [
    "E1,Ada,Boss,Management,CEO,,Active",
    "E2,Bob,Rep,Sales,Rep,E1,Active",
    "E3,Cy,Dev,IT,Dev,E4,Active",
    "E4,Di,Lead,IT,Lead,E1,Active",
    "E5,Ed,Gone,Sales,Rep,E1,Inactive",
]


class Env:
    def __init__(self, tmp_path, store):
        self.tmp = tmp_path
        self.store = store
        self.graph = FakeGraph()
        self.hr = tmp_path / "hr.csv"
        store.put_connection("hr", "csv", {"path": str(self.hr), "key": ["EmployeeID"]})
        store.put_connection("contoso", "azure_ad", {"tenant_id": "t", "application_id": "a"})
        self.contexts = []

    def write_hr(self, rows):
        self.hr.write_text(HEADER + "\n".join(rows) + "\n")

    def factory(self, record, context):
        self.contexts.append(context)
        if record["connector"] == "azure_ad":
            return AzureAdConnector(record, dict(context, sleep=lambda s: None), graph=self.graph)
        return get_connector(record, context)

    def run(self, params, check_mode=False):
        return run_workflow(params, check_mode=check_mode, store=self.store, connector_factory=self.factory)

    def by_upn(self):
        return dict((u["userPrincipalName"], u) for u in self.graph.users.values())


def hr_params(**extra):
    params = {
        "name": "hr_to_entra",
        "source": {"connection": "hr", "object_type": "row", "scope": "<< Status == 'Active' >>"},
        "target": {"connection": "contoso", "object_type": "user"},
        "match": [{"source": "EmployeeID", "target": "employeeId"}],
        "steps": {
            "create": {"attributes": {
                "userPrincipalName": "<< (GivenName ~ '.' ~ Surname) | lower >>@contoso.example",
                "displayName": "<< GivenName >> << Surname >>", "accountEnabled": True},
                "password": "generate"},
            "update": {"attributes": {"department": "Department", "jobTitle": "Title",
                                      "manager": {"reference": "ManagerID"}}},
            "deprovision": {"action": "disable"},
        },
        "memberships": [{"group": "<< Department >> staff", "create_missing": True}],
    }
    params.update(extra)
    return params


@pytest.fixture
def env(tmp_path, store):
    e = Env(tmp_path, store)
    e.write_hr(PEOPLE)
    return e


def test_initial_load_then_noop_with_zero_writes(env):
    result = env.run(hr_params())
    assert result["changed"] is True
    assert result["errors"] == []
    summary = result["summary"]
    assert (summary["created"], summary["groups_created"], summary["membership_added"]) == (4, 3, 4)
    users = env.by_upn()
    ids = dict((u["employeeId"], u["id"]) for u in users.values())
    assert env.graph.manager == {ids["E2"]: ids["E1"], ids["E3"]: ids["E4"], ids["E4"]: ids["E1"]}
    assert users["ada.boss@contoso.example"]["accountEnabled"] is True
    groups = dict((g["displayName"], set(env.graph.members[g["id"]])) for g in env.graph.groups.values())
    assert groups == {"Management staff": {ids["E1"]}, "Sales staff": {ids["E2"]}, "IT staff": {ids["E3"], ids["E4"]}}
    # the password was sent, but is in no result
    posts = [body for method, url, body in env.graph.writes() if method == "POST" and url == "/users"]
    assert all(len(b["passwordProfile"]["password"]) >= 16 for b in posts)
    assert "password" not in json.dumps(result).replace("password: generate", "")

    writes = env.graph.stats["writes"]
    again = env.run(hr_params())
    assert again["changed"] is False
    assert env.graph.stats["writes"] == writes             # zero write requests
    assert again["summary"]["unchanged"] == 4
    assert again["summary"]["created"] == again["summary"]["updated"] == 0
    history = env.store.runs("hr_to_entra")
    assert [r["status"] for r in history] == ["succeeded", "succeeded"]


def test_check_mode_writes_nothing_and_returns_the_plan(env):
    result = env.run(hr_params(), check_mode=True)
    assert result["changed"] is True
    assert env.graph.writes() == [] and env.graph.users == {}
    assert len(result["plan"]["create"]) == 4
    created = dict((c["object"], c) for c in result["plan"]["create"])
    assert created["bob.rep@contoso.example"]["attributes"]["manager"] == "ada.boss@contoso.example (new)"
    assert sorted(g["group"] for g in result["plan"]["groups_create"]) == ["IT staff", "Management staff",
                                                                          "Sales staff"]
    assert env.store.runs("hr_to_entra") == []


def test_change_one_remove_one(env):
    env.run(hr_params())
    rows = list(PEOPLE)
    rows[2] = "E3,Cy,Dev,Sales,Senior Dev,E4,Active"          # moved to Sales, new title
    del rows[1]                                                # E2 left
    env.write_hr(rows)
    plan = env.run(hr_params(), check_mode=True)["plan"]
    assert [u["object"] for u in plan["update"]] == ["cy.dev@contoso.example"]
    assert plan["update"][0]["changes"] == {"department": {"before": "IT", "after": "Sales"},
                                            "jobTitle": {"before": "Dev", "after": "Senior Dev"}}
    assert [d["object"] for d in plan["deprovision"]] == ["bob.rep@contoso.example"]
    memberships = dict((m["group"], m) for m in plan["memberships"])
    assert memberships["Sales staff"] == {"group": "Sales staff", "id": memberships["Sales staff"]["id"],
                                          "add": ["cy.dev@contoso.example"], "remove": ["bob.rep@contoso.example"]}
    assert memberships["IT staff"]["remove"] == ["cy.dev@contoso.example"]
    result = env.run(hr_params())
    s = result["summary"]
    assert (s["updated"], s["deprovisioned"], s["membership_added"], s["membership_removed"]) == (1, 1, 1, 2)
    assert env.by_upn()["bob.rep@contoso.example"]["accountEnabled"] is False
    assert env.run(hr_params())["changed"] is False


def test_deletion_threshold_stops_before_any_write(env):
    env.run(hr_params())
    env.write_hr(PEOPLE[:1])
    writes = env.graph.stats["writes"]
    with pytest.raises(DeletionThresholdExceeded) as exc:
        env.run(hr_params(deletion_threshold=2, source_shrink_guard=0))
    assert "3" in exc.value.msg and "force_deletes" in exc.value.msg
    assert env.graph.stats["writes"] == writes
    assert env.store.runs("hr_to_entra")[0]["status"] == "stopped"
    result = env.run(hr_params(deletion_threshold=2, force_deletes=True))
    assert result["summary"]["deprovisioned"] == 3


def test_default_threshold_protects_a_small_tenant(env):
    people = ["E%d,P,N%d,Sales,Rep,,Active" % (n, n) for n in range(10, 40)]
    env.write_hr(people)
    env.run(hr_params())
    env.write_hr(people[:26])                   # 4 of 30 leave: more than 10 %, rounded up (3)
    with pytest.raises(DeletionThresholdExceeded) as exc:
        env.run(hr_params(source_shrink_guard=0))
    assert "3 (the smaller of 500 objects and 10% of the 30 objects the workflow manages)" in exc.value.msg
    env.write_hr(people[:27])
    assert env.run(hr_params(source_shrink_guard=0))["summary"]["deprovisioned"] == 3


def test_two_runs_never_overlap(env):
    with env.store.lock("sync:hr_to_entra"):
        with pytest.raises(LockedError) as exc:
            env.run(hr_params())
    assert "sync:hr_to_entra" in exc.value.msg
    assert env.graph.writes() == []


def test_one_bad_object_does_not_stop_the_run(env):
    env.graph.add_user(userPrincipalName="bob.rep@contoso.example", displayName="Squatter")
    result = env.run(hr_params())
    assert [e["object"] for e in result["errors"]] == ["bob.rep@contoso.example"]
    assert "already exists" in result["errors"][0]["error"]
    assert result["summary"]["created"] == 3 and result["summary"]["failed"] == 1
    assert env.store.runs("hr_to_entra")[0]["status"] == "failed"


def test_interrupted_run_resumes_without_duplicates(env):
    class Boom(Exception):
        pass

    original = env.graph.batch
    calls = {"n": 0}

    def dying_batch(requests, **options):
        calls["n"] += 1
        if calls["n"] == 2:                   # after the creates, before the references
            raise Boom("killed")
        return original(requests, **options)

    env.graph.batch = dying_batch
    with pytest.raises(Boom):
        env.run(hr_params())
    env.graph.batch = original
    assert len(env.graph.users) == 4
    assert env.store.runs("hr_to_entra")[0]["status"] == "failed"
    result = env.run(hr_params())
    assert result["summary"]["created"] == 0
    assert len(env.graph.users) == 4                           # no duplicates
    assert len(env.graph.manager) == 3
    assert env.run(hr_params())["changed"] is False


def test_replication_lag_on_new_objects_is_waited_out(env):
    env.graph.lag_new = 2                                       # each new object 404s twice
    result = env.run(hr_params())
    assert result["errors"] == []
    assert len(env.graph.manager) == 3
    assert env.run(hr_params())["changed"] is False


def test_delta_noop_costs_two_requests_and_expiry_falls_back(env):
    params = hr_params(delta=True)
    first = env.run(params)
    assert first["reads"]["target"]["mode"] == "delta (initial)"
    env.run(params)                                             # sees the first run's own writes
    before = env.graph.stats["requests"]
    third = env.run(params)
    assert third["changed"] is False
    assert env.graph.stats["requests"] - before == 2            # users/delta + groups/delta
    assert third["reads"]["target"]["mode"] == "delta"
    env.graph.epoch += 1                                        # the delta links expire
    fourth = env.run(params)
    assert fourth["changed"] is False
    assert any("expired" in note for note in fourth["notes"])
    assert fourth["reads"]["target"]["mode"] == "delta (initial)"


def test_delta_sees_changes_made_elsewhere(env):
    params = hr_params(delta=True)
    env.run(params)
    env.run(params)
    bob = env.by_upn()["bob.rep@contoso.example"]
    env.graph.users[bob["id"]]["jobTitle"] = "Hacked"
    env.graph.changes.append(("user", bob["id"]))
    result = env.run(params)
    assert [u["object"] for u in result["plan"]["update"]] == ["bob.rep@contoso.example"]
    assert env.graph.users[bob["id"]]["jobTitle"] == "Rep"


def test_entra_to_csv_export_is_byte_identical_on_rerun(env, tmp_path):
    env.run(hr_params())
    export = tmp_path / "export.csv"
    env.store.put_connection("export", "csv", {"path": str(export), "key": ["EmployeeID"]})
    params = {
        "name": "entra_to_csv",
        "source": {"connection": "contoso", "object_type": "user"},
        "target": {"connection": "export", "object_type": "row"},
        "match": [{"source": "employeeId", "target": "EmployeeID"}],
        "steps": {"create": {"attributes": {"EmployeeID": "employeeId"}},
                  "update": {"attributes": {"UPN": "userPrincipalName", "Department": "department",
                                            "Enabled": "accountEnabled", "ManagerID": {"reference": "manager"}}},
                  "deprovision": {"action": "delete"}},
        "delta": True,
    }
    first = env.run(params)
    assert first["summary"]["created"] == 4
    text = export.read_bytes()
    lines = text.decode().splitlines()
    assert lines[0] == "EmployeeID,UPN,Department,Enabled,ManagerID"
    assert "E3,cy.dev@contoso.example,IT,true,E4" in lines
    mtime = export.stat().st_mtime_ns
    second = env.run(params)
    assert second["changed"] is False
    assert export.read_bytes() == text and export.stat().st_mtime_ns == mtime
    # a change in Entra flows to the file; only that row changes
    env.write_hr([PEOPLE[0], "E2,Bob,Rep,Support,Rep,E1,Active"] + PEOPLE[2:])
    env.run(hr_params())
    third = env.run(params)
    assert third["summary"]["updated"] == 1
    assert export.read_bytes() == text.replace(b"E2,bob.rep@contoso.example,Sales", b"E2,bob.rep@contoso.example,Support")


def test_bad_rule_fails_before_reading(env):
    params = hr_params()
    params["steps"]["update"]["attributes"]["jobTitle"] = "<< Title | nope >>"
    from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
    with pytest.raises(ConfigError) as exc:
        env.run(params)
    assert "steps.update.attributes.jobTitle" in exc.value.msg
    params = hr_params()
    params["steps"]["update"]["attributes"]["jobTitle"] = "Titel"
    with pytest.raises(ConfigError) as exc:
        env.run(params)
    assert "Titel" in exc.value.msg
    assert env.graph.log == []                  # not even a read


def test_group_workflow_fills_members_from_a_member_column(env, tmp_path):
    env.run(hr_params(memberships=[]))
    groups_file = tmp_path / "groups.csv"
    groups_file.write_text("Group,Description,Members\nProject X,Secret,E1;E2\nProject Y,,E3; E9\n")
    env.store.put_connection("groups_file", "csv", {"path": str(groups_file), "key": ["Group"]})
    params = {
        "name": "groups",
        "source": {"connection": "groups_file", "object_type": "row"},
        "target": {"connection": "contoso", "object_type": "group"},
        "match": [{"source": "Group", "target": "displayName"}],
        "steps": {"create": {"attributes": {"displayName": "Group"}},
                  "update": {"attributes": {"description": "Description",
                                            "members": {"reference": "Members", "lookup": "employeeId",
                                                        "separator": ";"}}}},
    }
    result = env.run(params)
    assert result["summary"]["created"] == 2
    assert any("E9" in w for w in result["reference_warnings"])
    ids = dict((u["employeeId"], u["id"]) for u in env.graph.users.values())
    groups = dict((g["displayName"], g) for g in env.graph.groups.values())
    assert groups["Project X"]["securityEnabled"] is True and groups["Project X"]["mailNickname"] == "Project-X"
    assert sorted(env.graph.members[groups["Project X"]["id"]]) == sorted([ids["E1"], ids["E2"]])
    assert env.graph.members[groups["Project Y"]["id"]] == [ids["E3"]]
    groups_file.write_text("Group,Description,Members\nProject X,Secret,E2;E4\nProject Y,,E3; E9\n")
    result = env.run(params)
    plan = result["plan"]["update"]
    assert plan[0]["changes"]["members"] == {"add": ["di.lead@contoso.example"], "remove": ["ada.boss@contoso.example"]}
    assert sorted(env.graph.members[groups["Project X"]["id"]]) == sorted([ids["E2"], ids["E4"]])
    assert env.run(params)["changed"] is False


def test_missing_or_empty_source_file_is_an_error_not_an_empty_source(env):
    from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError
    env.run(hr_params())
    env.hr.write_text("")
    with pytest.raises(IdsyncError) as exc:
        env.run(hr_params())
    assert "has no header row" in exc.value.msg
    env.hr.unlink()
    with pytest.raises(IdsyncError) as exc:
        env.run(hr_params())
    assert "does not exist" in exc.value.msg
    assert all(u["accountEnabled"] for u in env.graph.users.values())


def test_a_returning_person_is_enabled_again_but_others_disabled_by_hand_are_not(env):
    env.run(hr_params())
    ids = dict((u["employeeId"], u["id"]) for u in env.graph.users.values())
    env.graph.users[ids["E3"]]["accountEnabled"] = False          # an admin locked E3 by hand
    env.write_hr([p for p in PEOPLE if not p.startswith("E2,")])
    result = env.run(hr_params())
    assert result["summary"]["deprovisioned"] == 1
    assert env.graph.users[ids["E2"]]["accountEnabled"] is False
    env.write_hr(PEOPLE)                                          # E2 is back
    result = env.run(hr_params())
    changes = dict((u["object"], u["changes"]) for u in result["plan"]["update"])
    assert changes == {"bob.rep@contoso.example": {"accountEnabled": {"before": False, "after": True}}}
    assert env.graph.users[ids["E2"]]["accountEnabled"] is True
    assert env.graph.users[ids["E3"]]["accountEnabled"] is False  # not this workflow's doing: left alone
    assert env.run(hr_params())["changed"] is False


def test_delta_sees_a_manager_removed_elsewhere(env):
    params = hr_params(delta=True)
    env.run(params)
    env.run(params)
    bob = env.by_upn()["bob.rep@contoso.example"]
    del env.graph.manager[bob["id"]]
    env.graph.changes.append(("user", bob["id"]))
    result = env.run(params)
    assert [u["changes"] for u in result["plan"]["update"]] == [
        {"manager": {"before": None, "after": "ada.boss@contoso.example"}}]
    assert bob["id"] in env.graph.manager


def test_connection_secrets_reach_only_their_connector(env):
    from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
    env.run(hr_params(connection_secrets={"contoso": {"client_secret": "s3cret"}}), check_mode=True)
    by_side = dict((c["side"], c) for c in env.contexts[-2:])
    assert by_side["target"]["auth_overrides"] == {"client_secret": "s3cret"}
    assert "auth_overrides" not in by_side["source"]
    with pytest.raises(ConfigError):
        env.run(hr_params(connection_secrets={"other": {"client_secret": "x"}}), check_mode=True)
