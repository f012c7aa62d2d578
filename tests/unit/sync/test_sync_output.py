"""Bounded task output and report rows."""
from ansible_collections.idsync.entra.plugins.module_utils.sync.report import bound_plan, report_rows
from test_sync_engine import Env, PEOPLE, hr_params


def test_the_plan_is_cut_to_the_limit_with_membership_lists_counting():
    plan = {"create": [{"object": "c%d" % n} for n in range(3)],
            "memberships": [{"group": "g", "add": ["m%d" % n for n in range(10)], "remove": ["x"]}]}
    bounded, truncated = bound_plan(plan, 8)
    assert [c["object"] for c in bounded["create"]] == ["c0", "c1", "c2"]
    member = bounded["memberships"][0]
    assert member["add"] == ["m0", "m1", "m2", "m3"] and member["add_more"] == 6
    assert member["remove"] == [] and member["remove_more"] == 1 and truncated
    whole, truncated = bound_plan(plan, 100)
    assert whole["memberships"][0]["add"] == plan["memberships"][0]["add"] and not truncated


class Outcome:
    def __init__(self, created=None, updated=(), deprovisioned=()):
        self.created = created or {}
        self.updated = set(updated)
        self.deprovisioned = set(deprovisioned)


def test_report_rows_say_what_was_applied_not_what_was_planned():
    plan = {"create": [{"object": "a@x", "source": "E1", "attributes": {"displayName": "A"}},
                       {"object": "b@x", "source": "E2", "attributes": {"displayName": "B"}}],
            "update": [{"object": "c@x", "id": "t3", "source": "E3", "changes": {"jobTitle": {"before": 1, "after": 2}}}],
            "deprovision": [{"object": "d@x", "id": "t4", "changes": {}}]}
    errors = [{"object": "b@x", "source": "E2", "error": "refused"}]
    rows = report_rows(plan, Outcome(created={"E1": "t1"}, updated=["t3"]), errors)
    assert [(r["outcome"], r["object"]) for r in rows] == [("created", "a@x"), ("updated", "c@x"), ("failed", "b@x")]
    assert rows[0]["changes"] == {"displayName": {"before": None, "after": "A"}} and rows[0]["id"] == "t1"
    planned = report_rows(plan, None, [])
    assert [r["outcome"] for r in planned] == ["created", "created", "updated", "deprovisioned"]


def test_a_run_returns_its_report_and_check_mode_writes_one_too(tmp_path, store):
    env = Env(tmp_path, store)
    env.write_hr(PEOPLE)
    plan = env.run(hr_params(), check_mode=True)
    applied = env.run(hr_params())
    assert "plan-" in plan["report"]["html"] and applied["report"]["json"].endswith("run-%d.json" % applied["run_id"])
