"""Planning: pure, no network. Matching, updates, creates, references, deprovision, memberships, safety."""
import pytest

from fakegraph import FakeGraph

from ansible_collections.idsync.entra.plugins.module_utils.connectors.azure_ad import AzureAdConnector
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.sync.config import (
    Workflow, parse_threshold, validate_workflow,
)
from ansible_collections.idsync.entra.plugins.module_utils.sync.plan import Pending, Planner
from ansible_collections.idsync.entra.plugins.module_utils.sync.safety import check_deletion_threshold

ENTRA = AzureAdConnector({"name": "contoso", "connector": "azure_ad", "settings": {}}, {}, graph=FakeGraph())
CSV_HEADER = ["EmployeeID", "GivenName", "Surname", "Department", "Title", "ManagerID", "Status", "Email"]


def params(**overrides):
    base = {
        "name": "hr_to_entra",
        "source": {"connection": "hr", "object_type": "row", "scope": "<< Status == 'Active' >>"},
        "target": {"connection": "contoso", "object_type": "user"},
        "match": [{"source": "EmployeeID", "target": "employeeId"}],
        "steps": {
            "create": {"attributes": {
                "userPrincipalName": "<< (GivenName ~ '.' ~ Surname) | lower | strip_accents >>@contoso.example",
                "displayName": "<< GivenName >> << Surname >>",
                "accountEnabled": True}, "password": "generate"},
            "update": {"attributes": {"department": "Department", "jobTitle": "Title",
                                      "manager": {"reference": "ManagerID"}}},
            "deprovision": {"action": "disable"},
        },
    }
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def person(eid, given, surname, dept="Sales", title="Rep", manager="", status="Active", email=""):
    return {"EmployeeID": eid, "GivenName": given, "Surname": surname, "Department": dept, "Title": title,
            "ManagerID": manager, "Status": status, "Email": email}


def user(tid, eid, upn, dept="Sales", title="Rep", manager=None, enabled=True, **extra):
    obj = {"employeeId": eid, "userPrincipalName": upn, "displayName": upn.split("@")[0], "department": dept,
           "jobTitle": title, "manager": manager, "accountEnabled": enabled}
    obj.update(extra)
    return tid, obj


def make_plan(p=None, source=(), target=(), managed=(), rejected=(), groups=None, managed_groups=()):
    wf = Workflow.from_params(p or params())
    source_schema = dict((c, None) for c in CSV_HEADER)
    schema = ENTRA.schema("user")
    validate_workflow(wf, source_schema, schema, "hr", "contoso", ENTRA, ENTRA.schema("group"))
    planner = Planner(wf, source_schema, schema, ENTRA, ENTRA.schema("group"))
    return planner.plan(dict((s["EmployeeID"], s) for s in source), dict(target), managed=set(managed),
                        rejected=list(rejected), groups=groups, managed_groups=set(managed_groups))


def test_creates_with_match_key_and_defaults():
    plan = make_plan(source=[person("E1", "Zoë", "Ærø")])
    assert len(plan.creates) == 1
    op = plan.creates[0]
    assert op.attributes["userPrincipalName"] == "zoe.aero@contoso.example"
    assert op.attributes["employeeId"] == "E1"               # the match key is always written
    assert op.attributes["mailNickname"] == "zoe.aero"        # connector default from the UPN
    assert op.attributes["department"] == "Sales"             # update rules hold at creation
    assert "passwordProfile" not in op.attributes
    assert plan.summary()["created"] == 1


def test_no_op_when_everything_matches():
    plan = make_plan(source=[person("E1", "A", "B", manager="E2"), person("E2", "C", "D")],
                     target=[user("t1", "E1", "a.b@contoso.example", manager="T2"),
                             user("T2", "E2", "c.d@contoso.example")])
    assert not plan.has_changes()
    assert plan.unchanged == 2
    assert plan.errors == []


def test_updates_only_changed_attributes_and_normalises_empties():
    plan = make_plan(source=[person("E1", "A", "B", dept="IT", title="")],
                     target=[user("t1", "e1", "a.b@contoso.example", title=None)])
    assert len(plan.updates) == 1
    assert plan.updates[0].changes == {"department": ("Sales", "IT")}    # "" == None: not a change
    result = plan.to_result(["manager"])
    assert result["update"][0]["changes"]["department"] == {"before": "Sales", "after": "IT"}
    assert result["update"][0]["object"] == "a.b@contoso.example"


def test_case_of_values_matters_but_match_is_case_insensitive():
    plan = make_plan(source=[person("e1", "A", "B", dept="sales")],
                     target=[user("t1", "E1", "a.b@contoso.example")])
    assert plan.matched == {"e1": "t1"}
    assert plan.updates[0].changes == {"department": ("Sales", "sales")}


def test_rename_is_an_update_not_a_create():
    p = params()
    p["steps"]["update"]["attributes"]["userPrincipalName"] = \
        "<< (GivenName ~ '.' ~ Surname) | lower >>@contoso.example"
    plan = make_plan(p, source=[person("E1", "ann", "newname")],
                     target=[user("t1", "E1", "ann.oldname@contoso.example")])
    assert plan.creates == []
    assert plan.updates[0].changes["userPrincipalName"] == ("ann.oldname@contoso.example",
                                                            "ann.newname@contoso.example")


def test_source_matching_two_targets_is_an_error_not_a_guess():
    p = params(match=[{"source": "EmployeeID", "target": "employeeId"},
                      {"source": "Email", "target": "mail"}])
    plan = make_plan(p, source=[person("E1", "A", "B", email="x@y")],
                     target=[user("t1", "E1", "a@c"), user("t2", "E9", "b@c", mail="X@Y")],
                     managed=["t1", "t2"])
    assert plan.updates == [] and plan.creates == []
    assert len(plan.errors) == 1 and "matches 2 target objects" in plan.errors[0]["error"]
    assert plan.deprovisions == []          # neither candidate is deprovisioned while this is unresolved


def test_two_sources_claiming_one_target_fail_both():
    p = params(match=[{"source": "EmployeeID", "target": "employeeId"},
                      {"source": "Email", "target": "mail"}])
    plan = make_plan(p, source=[person("E1", "A", "B"), person("E2", "C", "D", email="a@c")],
                     target=[user("t1", "E1", "a@c", mail="a@c")])
    assert sorted(e["source"] for e in plan.errors) == ["E1", "E2"]
    assert plan.creates == [] and plan.updates == []


def test_duplicate_targets_on_the_match_key():
    plan = make_plan(source=[person("E1", "A", "B")], target=[user("t1", "E1", "a@c"), user("t2", "E1", "b@c")])
    assert "matches 2 target objects" in plan.errors[0]["error"]


def test_sources_that_would_create_the_same_key_are_errors():
    p = params(match=[{"source": "<< Email | lower >>", "target": "mail"}])
    plan = make_plan(p, source=[person("E1", "A", "B", email="a@x"), person("E2", "C", "D", email="A@X")])
    assert plan.creates == []
    assert len(plan.errors) == 2


def test_manager_created_in_the_same_run_is_pending():
    plan = make_plan(source=[person("E1", "Boss", "One"), person("E2", "Rep", "Two", manager="E1"),
                             person("E3", "Old", "Timer", manager="E1")],
                     target=[user("t3", "E3", "old.timer@contoso.example")])
    creates = dict((op.sid, op) for op in plan.creates)
    assert creates["E2"].refs["manager"] == Pending("object", "E1")
    assert plan.updates[0].changes["manager"] == (None, Pending("object", "E1"))
    shown = plan.to_result(["manager"])
    assert shown["update"][0]["changes"]["manager"]["after"] == "boss.one@contoso.example (new)"


def test_manager_outside_scope_is_a_warning_and_left_alone():
    plan = make_plan(source=[person("E2", "Rep", "Two", manager="E9")],
                     target=[user("t2", "E2", "rep.two@contoso.example", manager="tx")])
    assert not plan.has_changes()
    assert "E9" in plan.warnings[0]


def test_manager_removed_when_source_has_none():
    plan = make_plan(source=[person("E2", "Rep", "Two")],
                     target=[user("t2", "E2", "rep.two@contoso.example", manager="tx")])
    assert plan.updates[0].changes == {"manager": ("tx", None)}


def test_scope_and_deprovision_of_managed_objects_only():
    plan = make_plan(source=[person("E1", "A", "B"), person("E2", "C", "D", status="Inactive")],
                     target=[user("t1", "E1", "a.b@contoso.example"), user("t2", "E2", "c.d@contoso.example"),
                             user("t3", "E3", "gone@contoso.example"),
                             user("t4", "E4", "preexisting@contoso.example"),
                             user("t5", "E5", "already@contoso.example", enabled=False)],
                     managed=["t1", "t2", "t3", "t5"])
    assert sorted(op.tid for op in plan.deprovisions) == ["t2", "t3"]     # left scope, disappeared; t4 untouched
    assert plan.deprovisions[0].changes == {"accountEnabled": (True, False)}
    assert plan.summary()["deprovisioned"] == 2


def test_match_key_scope_deprovisions_preexisting_objects():
    p = params()
    p["steps"]["deprovision"] = {"action": "delete", "scope": "match_key"}
    plan = make_plan(p, source=[], target=[user("t4", "E4", "p@c"), user("t9", "", "admin@c")])
    assert [(op.tid, op.action) for op in plan.deprovisions] == [("t4", "delete")]


def test_rejected_rows_protect_their_targets():
    plan = make_plan(source=[], target=[user("t1", "E1", "a@c")], managed=["t1"],
                     rejected=[{"object": "hr.csv line 3", "error": "expected 8 fields, found 7",
                                "attributes": {"EmployeeID": "E1", "GivenName": "A"}}])
    assert plan.deprovisions == []
    assert plan.errors[0]["object"] == "hr.csv line 3"


def test_deprovision_set_and_threshold():
    p = params()
    p["steps"]["deprovision"] = {"action": "disable", "set": {"department": "Leavers"}}
    p["deletion_threshold"] = "50%"
    target = [user("t%d" % i, "E%d" % i, "u%d@c" % i) for i in range(4)]
    plan = make_plan(p, source=[person("E0", "u0", "x")], target=target, managed=["t0", "t1", "t2", "t3"])
    assert plan.deprovisions[0].changes == {"accountEnabled": (True, False), "department": ("Sales", "Leavers")}
    wf = Workflow.from_params(p)
    verdict = check_deletion_threshold(wf, plan)
    assert verdict["exceeded"] and verdict["deprovisions"] == 3 and verdict["limit"] == 2
    assert "force_deletes" in verdict["message"]
    wf.force_deletes = True
    assert not check_deletion_threshold(wf, plan)["exceeded"]
    wf.force_deletes = False
    wf.threshold = parse_threshold(3)
    assert not check_deletion_threshold(wf, plan)["exceeded"]


@pytest.mark.parametrize("value,expected", [(None, (500, 10)), (10, (10, None)), ("10%", (None, 10.0)),
                                            (" 2.5 % ", (None, 2.5)), ("7", (7, None)), (0, (0, None)),
                                            ({"count": 50, "percent": 5}, (50, 5.0)), ({"percent": 1}, (None, 1.0))])
def test_parse_threshold(value, expected):
    threshold = parse_threshold(value)
    assert (threshold.count, threshold.percent) == expected


@pytest.mark.parametrize("managed,limit", [(300, 30), (5, 1), (10000, 500), (0, 0), (4999, 500), (4001, 401)])
def test_default_threshold_is_the_smaller_of_500_and_a_tenth(managed, limit):
    assert parse_threshold(None).limit(managed) == limit


@pytest.mark.parametrize("value", ["ten", "120%", -1, True, {"count": 1, "other": 2}, {}, {"percent": 101}])
def test_parse_threshold_rejects(value):
    with pytest.raises(ConfigError):
        parse_threshold(value)


def test_memberships_add_remove_and_create_groups():
    p = params(memberships=[{"group": "<< Department >> staff", "create_missing": True}])
    groups = {
        "g1": {"displayName": "Sales staff", "members": ["t1", "t2", "manual"]},
        "g2": {"displayName": "IT staff", "members": []},
    }
    plan = make_plan(p, source=[person("E1", "A", "B"), person("E3", "E", "F", dept="IT"),
                                person("E4", "G", "H", dept="HR")],
                     target=[user("t1", "E1", "a.b@contoso.example"), user("t2", "E2", "c.d@contoso.example"),
                             user("t3", "E3", "e.f@contoso.example", dept="IT")],
                     managed=["t1", "t2", "t3"], groups=groups)
    ops = dict((op.label, op) for op in plan.memberships)
    # t2's source is gone: a leaver's removal (held back by the guards when the source is in doubt)
    assert ops["Sales staff"].add == [] and ops["Sales staff"].leavers == ["t2"]     # manual member kept
    assert ops["Sales staff"].remove == []
    assert ops["IT staff"].add == ["t3"]
    assert [g.name for g in plan.group_creates] == ["HR staff"]
    assert plan.group_creates[0].attributes["securityEnabled"] is True
    assert ops["HR staff"].add == [Pending("object", "E4")]
    assert plan.managed_groups == {"g1", "g2"}


def test_memberships_without_create_missing_report_the_group_once():
    p = params(memberships=[{"group": "Department"}])
    plan = make_plan(p, source=[person("E1", "A", "B"), person("E2", "C", "D")],
                     target=[user("t1", "E1", "a.b@contoso.example")], groups={})
    assert [e["object"] for e in plan.errors] == ["Sales"]


def test_memberships_no_change_when_in_place():
    p = params(memberships=[{"group": "<< Department >> staff"}])
    groups = {"g1": {"displayName": "sales STAFF", "members": ["T1"]}}
    plan = make_plan(p, source=[person("E1", "A", "B")], target=[user("t1", "E1", "a.b@contoso.example")],
                     groups=groups)
    assert plan.memberships == [] and not plan.has_changes()


def test_unknown_source_attribute_fails_validation_naming_the_rule():
    p = params()
    p["steps"]["update"]["attributes"]["jobTitle"] = "Titel"
    with pytest.raises(ConfigError) as exc:
        make_plan(p)
    assert "steps.update.attributes.jobTitle" in exc.value.msg and "Titel" in exc.value.msg
    assert "Title" in exc.value.msg          # suggestion
    p = params()
    p["steps"]["create"]["attributes"]["displayName"] = "<< GivenNam >> << Surname >>"
    with pytest.raises(ConfigError) as exc:
        make_plan(p)
    assert "steps.create.attributes.displayName" in exc.value.msg


def test_unknown_and_read_only_target_attributes_fail_validation():
    p = params()
    p["steps"]["update"]["attributes"]["departmnt"] = "Department"
    with pytest.raises(ConfigError) as exc:
        make_plan(p)
    assert "departmnt" in exc.value.msg and "department" in exc.value.msg
    p = params()
    p["steps"]["update"]["attributes"]["proxyAddresses"] = "Email"
    with pytest.raises(ConfigError) as exc:
        make_plan(p)
    assert "read-only" in exc.value.msg
    p = params()
    p["steps"]["update"]["attributes"]["manager"] = "ManagerID"
    with pytest.raises(ConfigError) as exc:
        make_plan(p)
    assert "reference" in exc.value.msg


def test_create_without_required_attributes_fails_validation():
    p = params()
    del p["steps"]["create"]["password"]
    with pytest.raises(ConfigError) as exc:
        make_plan(p)
    assert "password: generate" in exc.value.msg
    p = params()
    del p["steps"]["create"]["attributes"]["displayName"]
    with pytest.raises(ConfigError) as exc:
        make_plan(p)
    assert "displayName" in exc.value.msg


def test_per_object_rule_errors_do_not_stop_the_plan():
    p = params()
    p["steps"]["update"]["attributes"]["jobTitle"] = "<< (Title | int) // 0 >>"
    plan = make_plan(p, source=[person("E1", "A", "B", title="1"), person("E2", "C", "D", title="2")],
                     target=[user("t1", "E1", "a@c")], managed=["t1"])
    assert len(plan.errors) == 2                       # both objects fail on the rule ...
    assert all("jobTitle" in e["rule"] for e in plan.errors)
    assert plan.deprovisions == []                     # ... and the matched one is not deprovisioned


def test_multi_valued_compare_as_sets():
    p = params()
    p["steps"]["update"]["attributes"] = {"otherMails": "<< Email | split(',') >>",
                                          "businessPhones": "<< Title | split(',') >>"}
    plan = make_plan(p, source=[person("E1", "A", "B", email="b@x,a@x", title="2,1")],
                     target=[user("t1", "E1", "a@c", otherMails=["a@x", "b@x"], businessPhones=["1", "2"])])
    assert list(plan.updates[0].changes) == ["businessPhones"]          # ordered; otherMails is a set
