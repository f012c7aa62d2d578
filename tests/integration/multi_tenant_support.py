"""Many tenants for playbooks/multi_tenant.yml: one emulator process per tenant, an app registration with the sync
permissions (and the ownership extension) in each, an inventory whose hosts are the tenants, and a real
ansible-playbook run of the playbook with --forks. Used by tests/integration/test_multi_tenant.py and
benchmarks/multi_tenant_bench.py."""
import importlib.util
import json
import subprocess
import time
from pathlib import Path

import yaml

from ansible_runner import PYTHON, VENV_BIN, PlaybookRun, ansible_env
from sync_support import EmulatorAdmin

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "multi_tenant.yml"


def _root_conftest():
    spec = importlib.util.spec_from_file_location("idsync_root_conftest", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Tenant:
    def __init__(self, name, emulator, work_dir):
        self.name = name
        self.emulator = emulator
        self.admin = EmulatorAdmin(emulator)
        self.domain = emulator.endpoints["tenant_domain"]
        self.settings = self.admin.register_sync_app(Path(work_dir) / name / "pki", name="idsync " + name)
        app = self.admin.call("GET", "/applications(appId='%s')" % self.settings["application_id"])
        self.mark = self.admin.call("POST", "/applications/%s/extensionProperties" % app["id"], {
            "name": "idsyncWorkflow", "dataType": "String", "targetObjects": ["User", "Group"]})["name"]
        self.hr_file = Path(work_dir) / name / "hr.csv"

    def host_vars(self):
        s = self.settings
        return {"tenant_id": s["tenant_id"], "tenant_application_id": s["application_id"],
                "tenant_certificate_path": s["certificate_path"], "tenant_private_key_path": s["private_key_path"],
                "tenant_hr_file": str(self.hr_file), "tenant_user_domain": self.domain,
                "tenant_authority_host": s["authority_host"], "tenant_graph_endpoint": s["graph_endpoint"],
                "tenant_ca_path": s["ca_path"], "tenant_ownership_attribute": self.mark}


def start_tenants(work_dir, names, *emulator_args):
    """One emulator process per tenant name; returns the Tenants (stop them with stop_tenants)."""
    start = _root_conftest().start_emulator
    tenants = []
    try:
        for name in names:
            emulator = start(Path(work_dir) / ("emulator-" + name), *emulator_args)
            tenants.append(Tenant(name, emulator, work_dir))
    except BaseException:
        stop_tenants(tenants)
        raise
    return tenants


def stop_tenants(tenants):
    for tenant in tenants:
        tenant.emulator.process.terminate()
    for tenant in tenants:
        try:
            tenant.emulator.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            tenant.emulator.process.kill()


def write_inventory(path, tenants):
    inventory = {"tenants": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": str(PYTHON)},
                             "hosts": dict((t.name, t.host_vars()) for t in tenants)}}
    Path(path).write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def run_multi_tenant(work_dir, inventory, forks, store, extra_vars=None, timeout=1800):
    """ansible-playbook playbooks/multi_tenant.yml; returns (PlaybookRun, wall seconds)."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    results = work_dir / ("multi-tenant-%d.results.jsonl" % time.monotonic_ns())
    variables = {"multi_tenant_store": str(store)}
    variables.update(extra_vars or {})
    env = ansible_env(work_dir, {"IDSYNC_TEST_RESULTS": str(results)})
    started = time.monotonic()
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOK), "--forks",
                           str(forks), "-e", json.dumps(variables)], cwd=str(work_dir), env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, records), wall


def host_result(run, task, host):
    for record in reversed(run.records):
        if record["task"] == task and record["host"] == host:
            return dict(record["result"], _status=record["status"])
    raise AssertionError("no result of %r for %s\n%s" % (task, host, run.output[-4000:]))
