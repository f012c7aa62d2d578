"""idsync.entra.sync under a hostile service: throttling and injected 503s during a large load, an interrupted run,
and Entra's replication delay (a new object 404s for a moment)."""
import os
import signal
import subprocess
import time
from collections import Counter

import pytest
import yaml

from ansible_runner import PYTHON, VENV_BIN, ansible_env
from test_sync_csv_to_entra import SyncEnv
from sync_support import make_people, write_people

@pytest.fixture
def env(tmp_path, emulator):
    return SyncEnv(tmp_path, emulator)


def employee_counts(env):
    users = env.admin.list("/users", {"$select": "id,employeeId"})
    return Counter(u["employeeId"] for u in users if u.get("employeeId"))


def test_throttling_and_503s_during_a_2000_user_load_lose_nothing(env):
    people = make_people(2000)
    write_people(env.hr, people)
    env.admin.admin("PUT", "settings", {"throttling": True})
    env.admin.admin("POST", "faults", {"path": r"\$batch$", "status": 503, "count": 3, "retry_after": 1})
    env.admin.admin("POST", "faults", {"path": r"/users$", "method": "POST", "status": 503, "count": 25})
    env.admin.admin("POST", "faults", {"path": r"/manager/\$ref$", "status": 429, "count": 25, "retry_after": 1})
    env.admin.reset_stats()
    run = env.run(env.options())
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["errors"] == []
    assert r["summary"]["created"] == 2000 and r["summary"]["failed"] == 0
    stats = env.admin.stats()
    assert stats["faults"] >= 50, stats
    counts = employee_counts(env)
    assert len(counts) == 2000 and set(counts.values()) == {1}        # every one, exactly once
    managers = env.managers()
    assert managers == dict((p["EmployeeID"], p["ManagerID"]) for p in people if p["ManagerID"])
    groups = env.groups()
    assert sum(len(m) for m in groups.values()) == 2000
    env.admin.reset_stats()
    run = env.run(env.options())
    assert run.rc == 0 and run.task("sync")["changed"] is False, run
    assert env.admin.stats()["writes"] == 0


def _start_playbook(env, options):
    play = [{"name": "play", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "sync", "idsync.entra.sync": options}]}]
    path = env.tmp / "killed.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(path),
           "-e", "ansible_python_interpreter=%s" % PYTHON]
    return subprocess.Popen(cmd, cwd=str(env.tmp), env=ansible_env(env.tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _descendants(pid):
    """Every process below ``pid`` (Ansible runs the module in processes of its own sessions)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for child in children.get(current, []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(process):
    victims = [process.pid] + _descendants(process.pid)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)
    return victims


def test_interrupted_run_is_resumed_without_duplicates(env):
    people = make_people(300)
    write_people(env.hr, people)
    env.admin.admin("PUT", "settings", {"latency_ms": 150})
    env.admin.reset_stats()
    options = env.options(max_in_flight=1)
    process = _start_playbook(env, options)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if env.admin.stats()["writes"] >= 120:        # some creates are done, most of the run is not
                break
            if process.poll() is not None:
                pytest.fail("the run ended before it could be interrupted: %s" % process.stdout.read().decode())
            time.sleep(0.1)
        _kill_tree(process)                               # ansible-playbook and the module process
    finally:
        if process.poll() is None:
            _kill_tree(process)
    time.sleep(1.0)                                       # requests already on the wire land
    partial = employee_counts(env)
    assert 0 < len(partial) < 300

    env.admin.admin("PUT", "settings", {"latency_ms": 0})
    run = env.run(env.options())
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["errors"] == []
    assert r["summary"]["created"] == 300 - len(partial)
    counts = employee_counts(env)
    assert len(counts) == 300 and set(counts.values()) == {1}        # no duplicates
    assert env.managers() == dict((p["EmployeeID"], p["ManagerID"]) for p in people if p["ManagerID"])
    assert sum(len(m) for m in env.groups().values()) == 300
    run = env.run(env.options())
    assert run.rc == 0 and run.task("sync")["changed"] is False, run

    history = env.run_history()
    statuses = [h["status"] for h in history]
    assert statuses == ["succeeded", "succeeded", "interrupted"], history


def test_replication_delay_of_new_objects_is_waited_out(env):
    write_people(env.hr, make_people(40))
    env.admin.admin("PUT", "settings", {"replication_delay_ms": 1500})
    run = env.run(env.options())
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["errors"] == [] and r["summary"]["created"] == 40
    env.admin.admin("PUT", "settings", {"replication_delay_ms": 0})
    run = env.run(env.options())
    assert run.task("sync")["changed"] is False, run


def test_a_long_run_shows_its_progress_and_a_short_one_stays_quiet(env):
    write_people(env.hr, make_people(200))
    env.admin.admin("PUT", "settings", {"latency_ms": 120})
    run = env.run(env.options(max_in_flight=1))
    assert run.rc == 0, run
    lines = [line for line in run.stdout.splitlines() if line.startswith("idsync.entra.sync hr_to_entra (localhost): ")]
    assert any("applying" in line and " writes" in line for line in lines), run.stdout[-3000:]
    assert len(lines) <= 14                                    # a line per 10 % or 10 s, not per wave
    env.admin.admin("PUT", "settings", {"latency_ms": 0})
    quiet = env.run(env.options())
    assert "idsync.entra.sync hr_to_entra" not in quiet.stdout
