"""AWX-shaped jobs for the tests: credentials injected the way AWX's credential types inject them, playbooks run
through the ansible-runner CLI (AWX's job runner) in a private data directory of their own (env/envvars,
env/extravars, inventory/hosts, project/) with a HOME of their own, and the task results read back from the job
events ansible-runner writes under artifacts/, as AWX reads them. (The CLI, not the Python API: this directory's
ansible_runner.py helper shadows the package's name.)

How AWX renders a credential type (awx/main/models/credential/__init__.py, CredentialType.inject_credential):
the injector templates are rendered by Jinja2's ImmutableSandboxedEnvironment over the credential's inputs, an
optional field that was left empty renders as an empty string, ``file`` templates are written to private files
whose paths the other templates reach as ``{{ tower.filename.<name> }}`` (or ``awx.filename``), ``env`` entries
become the job's environment and ``extra_vars`` its extra variables.
"""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible_runner import COLLECTIONS, PYTHON, VENV_BIN  # noqa: F401  (tests/integration/ansible_runner.py)

ROOT = Path(__file__).resolve().parents[2]
CREDENTIAL_TYPE = ROOT / "extensions" / "awx" / "credential_type.yml"

# AWX's built-in "Microsoft Azure Resource Manager" credential (awx/main/models/credential/injectors.py: azure_rm):
# the service principal fields become these variables.
AZURE_RM_INJECTORS = {"env": {"AZURE_SUBSCRIPTION_ID": "{{ subscription }}", "AZURE_CLIENT_ID": "{{ client }}",
                              "AZURE_SECRET": "{{ secret }}", "AZURE_TENANT": "{{ tenant }}"}}
AZURE_RM_FIELDS = ["subscription", "client", "secret", "tenant"]


class InjectedCredential:
    def __init__(self, env, extra_vars, files):
        self.env = env
        self.extra_vars = extra_vars
        self.files = files


def inject(credential_type, inputs, private_dir):
    """What AWX hands a job for one credential of ``credential_type`` ({inputs, injectors}) with ``inputs``."""
    fields = [f["id"] for f in credential_type.get("inputs", {}).get("fields", [])] or list(inputs)
    missing = [f for f in credential_type.get("inputs", {}).get("required", []) if not inputs.get(f)]
    if missing:
        raise ValueError("AWX refuses the credential: required field(s) %s missing" % ", ".join(missing))
    namespace = dict((field, inputs.get(field, "")) for field in fields)
    sandbox = ImmutableSandboxedEnvironment()
    injectors = credential_type.get("injectors") or {}
    files = {}
    for key, template in (injectors.get("file") or {}).items():
        name = key.split(".", 1)[1] if "." in key else "file"
        handle, path = tempfile.mkstemp(dir=str(private_dir), prefix="awx-cred-")
        with os.fdopen(handle, "w") as out:
            out.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, 0o600)
        files[name] = path
    namespace["tower"] = namespace["awx"] = {"filename": files.get("file") if list(files) == ["file"] else files}
    env = dict((k, sandbox.from_string(str(v)).render(**namespace)) for k, v in (injectors.get("env") or {}).items())
    extra_vars = dict((k, sandbox.from_string(str(v)).render(**namespace))
                      for k, v in (injectors.get("extra_vars") or {}).items())
    return InjectedCredential(env, extra_vars, files)


def idsync_credential_type():
    return yaml.safe_load(CREDENTIAL_TYPE.read_text())


class Job:
    """One AWX job's outcome: ``rc``, ``status``, ``stdout`` and ``task(name)`` (the last result of that task)."""

    def __init__(self, rc, private_dir, home, stdout):
        self.rc = rc
        self.private_dir = private_dir
        self.home = home
        self.stdout = stdout
        self.results = {}
        self.status = None
        artifacts = sorted((private_dir / "artifacts").glob("*/"))
        if artifacts:
            status = artifacts[-1] / "status"
            self.status = status.read_text().strip() if status.exists() else None
            events = sorted((artifacts[-1] / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-")[0]))
            for path in events:
                event = json.loads(path.read_text())
                data = event.get("event_data") or {}
                if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped") and data.get("task"):
                    result = dict(data.get("res") or {})
                    result["_status"] = event["event"].split("_")[-1]
                    result["_host"] = data.get("host")
                    self.results.setdefault(data["task"], {})[data.get("host")] = result

    def task(self, name, host=None):
        if name not in self.results:
            raise AssertionError("no result for task %r; tasks: %s\n%s" % (name, list(self.results), self.stdout[-4000:]))
        by_host = self.results[name]
        return by_host[host] if host else by_host[sorted(by_host)[-1]]

    def __repr__(self):
        return "Job(rc=%s, status=%s)\n%s" % (self.rc, self.status, self.stdout[-6000:])


def run_job(work_dir, name, project_dir, playbook, credentials=(), extra_vars=None, inventory=None, forks=None,
            timeout=900):
    """Run ``playbook`` of ``project_dir`` as an AWX job: a new private data dir (the project copied in, as AWX
    checks it out per job) and a new, empty HOME; the credentials' env and extra vars; localhost by default."""
    private_dir = Path(work_dir) / name
    shutil.copytree(str(project_dir), str(private_dir / "project"))
    home = private_dir / "home"
    home.mkdir()
    (private_dir / "env").mkdir()
    (private_dir / "inventory").mkdir()
    env = {"HOME": str(home), "PATH": "%s:%s" % (VENV_BIN, os.environ.get("PATH", "")),
           "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "false",
           "ANSIBLE_LOCAL_TEMP": str(home / ".ansible" / "tmp"), "ANSIBLE_CONFIG": str(private_dir / "none.cfg")}
    if forks:
        env["ANSIBLE_FORKS"] = str(forks)
    variables = {"ansible_python_interpreter": str(PYTHON)}
    for credential in credentials:
        env.update(credential.env)
        variables.update(credential.extra_vars)
    variables.update(extra_vars or {})
    for file_name, data in (("env/envvars", env), ("env/extravars", variables)):
        path = private_dir / file_name
        path.write_text(yaml.safe_dump(data))
        path.chmod(0o600)
    (private_dir / "inventory" / "hosts").write_text(inventory or "localhost ansible_connection=local\n")
    # The job's process sees only what AWX would give it: the credentials' variables, not the test's environment.
    process_env = {"PATH": env["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    proc = subprocess.run([str(VENV_BIN / "ansible-runner"), "run", str(private_dir), "-p", playbook],
                          env=process_env, capture_output=True, text=True, timeout=timeout, check=False)
    return Job(proc.returncode, private_dir, home, proc.stdout + proc.stderr)
