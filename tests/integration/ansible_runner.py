"""Run a real ``ansible-playbook`` against localhost and get every task's result back as a dict.

    run = run_playbook(tmp_path, [{"name": "cert", "idsync.entra.certificate": {...}}], check=True, diff=True)
    assert run.rc == 0
    assert run.task("cert")["changed"] is True

The play runs on localhost (connection local) with the venv's Python as interpreter, the collection found through
ANSIBLE_COLLECTIONS_PATH=<repo>/collections, and a test-only callback (callback_plugins/idsync_record.py) that
records each task result. HOME and Ansible's temp dirs point into the test's directory.
"""
import json
import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
COLLECTIONS = ROOT / "collections"
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"


class PlaybookRun:
    def __init__(self, rc, stdout, stderr, records):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.records = records

    @property
    def output(self):
        return self.stdout + self.stderr

    def task(self, name):
        """The result of the (last) task called ``name``: the dict a ``register`` would hold, plus ``_status``."""
        matches = [r for r in self.records if r["task"] == name]
        if not matches:
            raise AssertionError("no result for task %r; tasks: %s\n%s" % (name, [r["task"] for r in self.records], self.output))
        result = dict(matches[-1]["result"])
        result["_status"] = matches[-1]["status"]
        return result

    def failed(self, name):
        return self.task(name)["_status"] == "failed"

    def __repr__(self):
        return "PlaybookRun(rc=%s)\n%s" % (self.rc, self.output[-6000:])


def ansible_env(work_dir, extra=None):
    work_dir = Path(work_dir)
    home = work_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "PATH": "%s:%s" % (VENV_BIN, env.get("PATH", "")),
            "HOME": str(home),
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_CALLBACKS_ENABLED": "idsync_record",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_LOCAL_TEMP": str(work_dir / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(work_dir / "ansible-remote"),
            "ANSIBLE_CONFIG": str(work_dir / "no-ansible.cfg"),
        }
    )
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    if extra:
        env.update(extra)
    return env


def run_playbook(work_dir, tasks, check=False, diff=False, extra_vars=None, env=None, timeout=600, name="play"):
    """Write a one-play playbook (``tasks`` on localhost) into ``work_dir`` and run it with ansible-playbook."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    index = len(list(work_dir.glob("%s-*.yml" % name)))
    playbook = work_dir / ("%s-%d.yml" % (name, index))
    results = work_dir / ("%s-%d.results.jsonl" % (name, index))
    play = [{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    cmd = [
        str(VENV_BIN / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        str(playbook),
        "-e",
        "ansible_python_interpreter=%s" % PYTHON,
    ]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    run_env = ansible_env(work_dir, env)
    run_env["IDSYNC_TEST_RESULTS"] = str(results)
    proc = subprocess.run(cmd, cwd=str(work_dir), env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    records = []
    if results.exists():
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, records)
