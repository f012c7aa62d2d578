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
