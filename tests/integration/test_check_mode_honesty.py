"""Check mode is the plan of the real run: the shipped HR playbook, run with --check on a changed file, plans object
by object what the real run then does (the two run reports compared), and the first --check on a fresh store works."""
import json
import subprocess

import pytest

from ansible_runner import PYTHON, ROOT, VENV_BIN, ansible_env
from test_sync_csv_to_entra import SyncEnv

import generate_hr_file_path  # noqa: F401  (puts tools/ on sys.path)
import generate_hr_file  # noqa: E402


@pytest.fixture
def env(tmp_path, emulator):
    return SyncEnv(tmp_path, emulator)


def hr_playbook(env, *extra):
    extra_vars = {"hr_file": str(env.hr), "hr_store": str(env.store), "hr_entra_connection": "contoso",
                  "hr_user_domain": env.domain}
    cmd = [str(VENV_BIN / "ansible-playbook"), str(ROOT / "playbooks" / "hr_to_entra.yml"), "-e",
           json.dumps(extra_vars), "-e", "ansible_python_interpreter=%s" % PYTHON] + list(extra)
    done = subprocess.run(cmd, env=ansible_env(env.tmp), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done.stdout


def latest_report(env, prefix):
    reports = sorted((env.store.parent / "reports" / "hr_to_entra").glob(prefix + "*.json"),
                     key=lambda p: p.stat().st_mtime)
    return json.loads(reports[-1].read_text())


def outcomes(report):
    return sorted((row["outcome"], row["object"], json.dumps(row.get("changes"), sort_keys=True))
                  for row in report["rows"])


def test_the_plan_of_check_mode_is_what_the_real_run_does(env):
    people = generate_hr_file.generate(120, seed=5)
    with open(str(env.hr), "w", encoding="utf-8") as handle:
        generate_hr_file.write(people, handle)
    first = hr_playbook(env, "--check")                         # the first --check, on a fresh store
    assert "created 0" not in first and "(plan)" in first
    hr_playbook(env)
    changed = [dict(p) for p in people]
    for person in changed[10:15]:
        person["Title"] = "Principal " + person["Title"]
    leavers = [p["EmployeeID"] for p in changed[30:33] if p["EmployeeID"] not in {q["ManagerID"] for q in changed}]
    changed = [p for p in changed if p["EmployeeID"] not in leavers]
    changed.append(dict(people[20], EmployeeID="109999", Title="New hire"))      # a namesake joins
    with open(str(env.hr), "w", encoding="utf-8") as handle:
        generate_hr_file.write(changed, handle)
    hr_playbook(env, "--check", "--diff")
    plan = latest_report(env, "plan-")
    hr_playbook(env)
    applied = latest_report(env, "run-")
    assert outcomes(plan) == outcomes(applied)
    kinds = [row["outcome"] for row in applied["rows"]]
    assert kinds.count("updated") >= 5 and kinds.count("created") == 1 and kinds.count("deprovisioned") == len(leavers)
