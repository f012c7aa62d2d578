"""Ownership marks in planning (pure): creates and unmarked matches get the workflow's name, a previous name is
rewritten, objects another workflow marked are never deprovisioned, and the engine's managed set grows from marks."""
from fakegraph import FakeGraph

from ansible_collections.idsync.entra.plugins.module_utils.connectors.azure_ad import AzureAdConnector
from ansible_collections.idsync.entra.plugins.module_utils.sync.config import Workflow, validate_workflow
from ansible_collections.idsync.entra.plugins.module_utils.sync.ownership import Ownership, ownership_for
from ansible_collections.idsync.entra.plugins.module_utils.sync.plan import Planner

from test_sync_plan import CSV_HEADER, params, person, user

MARK = "extension_0123456789abcdef0123456789abcdef_idsyncWorkflow"
ENTRA = AzureAdConnector({"name": "contoso", "connector": "azure_ad", "settings": {"ownership_attribute": MARK}}, {},
                         graph=FakeGraph())


def plan(source, target, managed=(), previous=(), deprovisioned=()):
    p = params()
    p["previous_names"] = list(previous)
    wf = Workflow.from_params(p)
    source_schema = dict((c, None) for c in CSV_HEADER)
    validate_workflow(wf, source_schema, ENTRA.schema("user"), "hr", "contoso", ENTRA, None)
    ownership = ownership_for(ENTRA, "user", wf.name, wf.previous_names)
    planner = Planner(wf, source_schema, ENTRA.schema("user"), ENTRA)
    marked = ownership.claimed(dict(target)) | set(managed)
    return planner.plan(dict((s["EmployeeID"], s) for s in source), dict(target), managed=marked,
                        ownership=ownership, deprovisioned=set(deprovisioned))


def test_the_connector_names_the_attribute_only_when_the_connection_does():
    assert ENTRA.ownership_attribute("user") == MARK and ENTRA.ownership_attribute("group") == MARK
    plain = AzureAdConnector({"name": "c", "connector": "azure_ad", "settings": {}}, {}, graph=FakeGraph())
    assert plain.ownership_attribute("user") is None and ownership_for(plain, "user", "wf") is None


def test_creates_and_unmarked_matches_get_the_mark():
    result = plan([person("1", "Ada", "Lovelace"), person("2", "Alan", "Turing")],
                  [user("t2", "2", "alan.turing@contoso.example")])
    assert result.creates[0].attributes[MARK] == "hr_to_entra"
    assert result.updates[0].changes == {MARK: (None, "hr_to_entra")}


def test_marked_leavers_are_deprovisioned_without_the_store_and_foreign_ones_never():
    target = [user("t1", "1", "ada@contoso.example", **{MARK: "hr_to_entra"}),
              user("t2", "2", "alan@contoso.example", **{MARK: "contractors"}),
              user("t3", "3", "grace@contoso.example")]
    result = plan([], target, managed=["t2"])                      # even a stale store entry cannot claim t2
    assert [op.tid for op in result.deprovisions] == ["t1"]
    # The mark stays, and says that this workflow disabled the account.
    assert result.deprovisions[0].changes == {"accountEnabled": (True, False),
                                              MARK: ("hr_to_entra", "hr_to_entra (deprovisioned)")}


def test_a_renamed_workflow_recognises_and_rewrites_its_old_name():
    target = [user("t1", "1", "ada@contoso.example", **{MARK: "hr_old"}),
              user("t2", "2", "alan@contoso.example", **{MARK: "hr_old"})]
    result = plan([person("1", "Ada", "Lovelace", dept="Sales", title="Rep")], target, previous=["hr_old"])
    assert [op.tid for op in result.deprovisions] == ["t2"]
    assert result.updates[0].changes[MARK] == ("hr_old", "hr_to_entra")
    without = plan([person("1", "Ada", "Lovelace")], target)
    assert without.deprovisions == [] and MARK not in (without.updates[0].changes if without.updates else {})


def test_marks_compare_exactly():
    ownership = Ownership(MARK, "hr", ["old"])
    assert ownership.is_ours({MARK: "hr"}) and ownership.is_ours({MARK: " old "})
    assert ownership.is_foreign({MARK: "HR2"}) and not ownership.is_foreign({MARK: ""})
    assert ownership.needs_mark({}) and ownership.needs_mark({MARK: "old"}) and not ownership.needs_mark({MARK: "x"})


def test_a_deprovisioned_mark_is_ours_and_says_so():
    ownership = Ownership(MARK, "hr", ["old"])
    objects = {"a": {MARK: "hr (deprovisioned)"}, "b": {MARK: "old (deprovisioned)"}, "c": {MARK: "hr"},
               "d": {MARK: "other (deprovisioned)"}, "e": {}}
    assert ownership.claimed(objects) == {"a", "b", "c"} and ownership.foreign(objects) == {"d"}
    assert ownership.deprovisioned(objects) == {"a", "b"}
    assert ownership.needs_mark(objects["a"]) and not ownership.needs_mark(objects["c"])   # a returning person


def test_a_returning_leaver_gets_the_plain_mark_back():
    target = [user("t1", "1", "ada@contoso.example", enabled=False, **{MARK: "hr_to_entra (deprovisioned)"})]
    result = plan([person("1", "Ada", "Lovelace")], target, deprovisioned=["t1"])
    assert result.updates[0].changes[MARK] == ("hr_to_entra (deprovisioned)", "hr_to_entra")
    assert result.updates[0].changes["accountEnabled"] == (False, True) and result.deprovisions == []
