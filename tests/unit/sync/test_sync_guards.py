"""Broken input never deprovisions: strict CSV reading, protection of rejected rows, the source shrink guard."""
import pytest

from test_sync_engine import HEADER, Env, hr_params

PEOPLE = ["E%03d,Pat,Person%03d,Sales,Rep,,Active" % (n, n) for n in range(1, 41)]


@pytest.fixture
def env(tmp_path, store):
    e = Env(tmp_path, store)
    e.write_hr(PEOPLE)
    first = e.run(hr_params())
    assert first["summary"]["created"] == 40
    return e


def enabled(env):
    return sorted(u["employeeId"] for u in env.graph.users.values() if u.get("accountEnabled"))


def write_lines(env, lines):
    env.hr.write_bytes((HEADER + "\n".join(lines) + "\n").encode("utf-8") if isinstance(lines[0], str)
                       else HEADER.encode() + b"\n".join(lines) + b"\n")


def test_a_stray_quote_rejects_its_line_only_and_protects_its_person(env):
    lines = list(PEOPLE)
    lines[9] = 'E010,Pat,"Person010,Sales,Rep,,Active'          # a quote never closed
    del lines[30]                                               # E031 left
    write_lines(env, lines)
    result = env.run(hr_params())
    assert [e["object"] for e in result["errors"]] == ["hr.csv line 11"]
    assert "never closed" in result["errors"][0]["error"]
    assert result["summary"]["deprovisioned"] == 1              # E031 only; the 30 people after line 11 are read
    assert "E010" in enabled(env) and "E031" not in enabled(env)


def test_a_row_whose_key_cannot_be_read_withholds_every_deprovision(env):
    lines = list(PEOPLE)
    lines[4] = "E005,Pat,Person005,Sales"                        # field count off: who it is is a guess
    del lines[20]
    write_lines(env, lines)
    result = env.run(hr_params())
    assert result["summary"]["deprovisioned"] == 0
    # E005 (unreadable) and E021 (gone) would both have been disabled without the guard
    assert result["withheld"]["deprovisions"] == 2 and "no readable key" in result["withheld"]["reason"]
    assert len(enabled(env)) == 40


def test_a_person_in_scope_without_a_match_value_withholds_every_deprovision(env):
    lines = list(PEOPLE)
    lines[6] = "E007,Pat,Person007,Sales,,,Active"               # still employed; the match rule gives nothing today
    del lines[20]                                               # E021 left
    write_lines(env, lines)
    result = env.run(hr_params(match=[{"source": "<< EmployeeID if Title else '' >>", "target": "employeeId"}]))
    assert result["summary"]["deprovisioned"] == 0
    # E007's own account (matched to nothing) and E021's would both have been disabled without the guard
    assert result["withheld"]["deprovisions"] == 2, result["withheld"]
    assert "no usable value for the match attribute(s)" in result["withheld"]["reason"]
    assert "first: E007" in result["withheld"]["reason"] and len(enabled(env)) == 40


def test_a_huge_field_and_control_characters_reject_the_row_but_protect_its_person(env):
    lines = [line.encode("utf-8") for line in PEOPLE]
    lines[2] = ("E003,Pat,%s,Sales,Rep,,Active" % ("x" * 1000000)).encode("utf-8")
    lines[3] = b"E004,Pat,Person004,Sa\x00les,Rep,,Active"
    write_lines(env, lines)
    result = env.run(hr_params())
    errors = dict((e["object"], e["error"]) for e in result["errors"])
    assert "max_field_length" in errors["hr.csv line 4"] and "NUL" in errors["hr.csv line 5"]
    assert result["summary"]["deprovisioned"] == 0 and "withheld" not in result
    assert len(enabled(env)) == 40
    assert all("\x00" not in (u.get("department") or "") for u in env.graph.users.values())


def test_a_header_only_file_withholds_deprovisions_until_forced(env):
    env.hr.write_text(HEADER)
    result = env.run(hr_params())
    assert result["withheld"]["deprovisions"] == 40 and "0 objects in scope" in result["withheld"]["reason"]
    assert len(enabled(env)) == 40
    again = env.run(hr_params())                                # the baseline stays that of the last normal run
    assert again["withheld"]["deprovisions"] == 40
    forced = env.run(hr_params(force_deletes=True, deletion_threshold=100))
    assert forced["summary"]["deprovisioned"] == 40 and enabled(env) == []


def test_leaving_one_by_one_is_not_a_shrink(env):
    write_lines(env, PEOPLE[:38])                               # 2 of 40 leave: 95 %
    assert env.run(hr_params())["summary"]["deprovisioned"] == 2
    write_lines(env, PEOPLE[:30])                               # 8 of 38 leave: 79 %
    result = env.run(hr_params())
    assert result["withheld"]["deprovisions"] == 8 and result["summary"]["deprovisioned"] == 0
    # creates and updates still apply while deprovisions are withheld
    write_lines(env, PEOPLE[:29] + ["E041,New,Hire,Sales,Rep,,Active"])
    result = env.run(hr_params(source_shrink_guard=70, deletion_threshold=10))
    assert result["summary"]["created"] == 1 and result["summary"]["deprovisioned"] == 9


def test_check_mode_shows_what_is_withheld(env):
    env.hr.write_text(HEADER)
    result = env.run(hr_params(), check_mode=True)
    assert result["withheld"]["deprovisions"] == 40
    assert result["plan"]["deprovision"] == []


@pytest.mark.parametrize("rule,expected", [
    ("<< lipsum >>", "the rule gave a function"),
    ("<< source >>", "the rule gave a dictionary"),
    ("Title: << lipsum >>", "an expression gave a function, which has no text form"),
    ("<< Title ~ '\x00' >>", "control character U+0000"),
    ("<< [Title, lipsum] >>", "a list holding a function"),
    ("x << [Title] >>", "a list inside text"),
])
def test_a_rule_result_that_is_not_a_value_fails_that_object_naming_the_rule(env, rule, expected):
    params = hr_params()
    params["steps"]["update"]["attributes"]["jobTitle"] = rule
    result = env.run(params)
    assert result["failed_objects"] == 40 and len(result["errors"]) == 20     # bounded; the report has all
    error = result["errors"][0]
    assert expected in error["error"] and error["rule"] == "steps.update.attributes.jobTitle", error
    assert all(u.get("jobTitle") == "Rep" for u in env.graph.users.values())


def test_a_group_name_that_is_not_a_value_fails_the_object(env):
    params = hr_params(memberships=[{"group": "<< lipsum >>", "create_missing": True}])
    result = env.run(params)
    assert result["errors"][0]["rule"] == "memberships[0].group"
    assert "function" in result["errors"][0]["error"]


class Killed(BaseException):
    """Stands for the process dying mid-run (kill -9 leaves the same store behind, minus this except clause)."""


def test_a_run_killed_after_its_first_creates_leaves_ownership_and_truthful_history(tmp_path, store):
    env = Env(tmp_path, store)
    env.write_hr(PEOPLE)
    real_batch = env.graph.batch
    calls = {"n": 0}

    def dying_batch(requests, **kwargs):
        calls["n"] += 1
        real_batch(requests[:20], **kwargs)                     # one envelope of creates landed, then death
        raise Killed()

    env.graph.batch = dying_batch
    with pytest.raises(Killed):
        env.run(hr_params())
    created = sorted(u["employeeId"] for u in env.graph.users.values())
    assert len(created) == 20
    history = env.store.runs("hr_to_entra")[0]
    assert history["status"] == "failed" and history["counts"]["created"] == 0    # nothing confirmed applied
    assert len(env.store.journal("hr_to_entra")) == 40
    env.graph.batch = real_batch
    # the people it created leave before the next run: they are still deprovisioned
    leavers = set(created[:10])
    env.write_hr([p for p in PEOPLE if p.split(",")[0] not in leavers])
    result = env.run(hr_params(source_shrink_guard=0, deletion_threshold=40))
    assert "created by an interrupted run were found" in " ".join(result["notes"])
    assert result["summary"]["deprovisioned"] == len(leavers)
    assert leavers.isdisjoint(enabled(env)) and len(enabled(env)) == 40 - len(leavers)
    assert env.store.journal("hr_to_entra") == []
    assert len(set(u["employeeId"] for u in env.graph.users.values())) == len(env.graph.users)   # no duplicates
    # the killed run's history now says what it made, found by the run after it
    assert env.store.runs("hr_to_entra")[1]["counts"]["created"] == 20


def test_the_journal_never_adopts_another_object_holding_the_same_unique_value(tmp_path, store):
    from ansible_collections.idsync.entra.plugins.module_utils.sync.journal import Journal
    store.journal_add("wf", 1, [("object", "E5", {"employeeId": "E5", "userPrincipalName": "john.smith@x"})])
    objects = {"other": {"employeeId": "E9", "userPrincipalName": "john.smith@x"}}
    found, _notes = Journal(store, "wf").reconcile({"object": objects})
    assert found["object"] == set()
    objects["ours"] = {"employeeId": "E5", "userPrincipalName": "JOHN.SMITH@x"}
    objects["other"]["userPrincipalName"] = "john.smith2@x"
    found, _notes = Journal(store, "wf").reconcile({"object": objects})
    assert found["object"] == {"ours"}
