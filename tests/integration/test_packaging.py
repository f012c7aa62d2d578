"""What a Galaxy user gets: the tarball holds no local state or secret, installs with sane modes, every module and
role renders in ansible-doc, and module_defaults for the action group idsync.entra.all reaches every module."""
import json
import os
import re
import stat
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_runner import ROOT, VENV_BIN, ansible_env

SECRET = uuid.uuid4().hex  # planted in every secret-bearing file; never written in this file itself
# A PEM private key (a full 64-character body line), the planted secret, a SQLite database: none may be shipped.
SECRET_RE = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\s+[A-Za-z0-9+/=]{64}|" + SECRET.encode() +
                       rb"|\ASQLite format 3")


def _tracked_copy(target):
    """The files git ships (tracked, plus new files not ignored), copied to ``target`` as the repository would be."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=str(ROOT),
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


def _local_state(root):
    """What `make demo`, `make emulator`, `make test` and the old README's `cp` steps leave in a checkout."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    secret_vars = "auto_configuration_admin: {method: client_secret, client_id: x, client_secret: %s}\n" % SECRET
    files = {
        ".demo/certs/contoso.key": key, ".demo/certs/contoso.crt": "-----BEGIN CERTIFICATE-----\n",
        ".demo/emulator/ca.pem": key, ".demo/emulator/signing.key": key,
        ".demo/emulator/endpoints.json": json.dumps({"emulator_key": SECRET, "admin": {"client_secret": SECRET}}),
        ".demo/vars.yml": secret_vars, ".demo/store.db": "SQLite format 3\0",
        ".emulator/ca.pem": key, ".emulator/endpoints.json": json.dumps({"emulator_key": SECRET}),
        ".ansible/tmp/x": "", ".venv/bin/python": "",
        "my-tenant.yml": secret_vars, "contoso.yml": secret_vars, "prod.tenant.yml": secret_vars,
        "playbooks/files/connector.key": key, "playbooks/files/connector.pfx": key, "store.db": "SQLite format 3\0",
        "store.db-wal": "", "tests/output/junk.txt": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    os.chmod(root / ".demo/certs/contoso.key", 0o600)
    return files


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    work = tmp_path_factory.mktemp("build")
    checkout = _tracked_copy(work / "checkout")
    planted = _local_state(checkout)
    proc = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work), "."],
                          cwd=str(checkout), env=ansible_env(work), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = work.glob("idsync-entra-*.tar.gz")
    return {"path": path, "planted": planted, "work": work}


def test_tarball_holds_no_local_state_or_secret(tarball):
    with tarfile.open(tarball["path"]) as archive:
        members = {m.name: m for m in archive.getmembers()}
        contents = {name: archive.extractfile(m).read() for name, m in members.items() if m.isfile()}
    leaked = sorted(name for name in tarball["planted"] if name in members)
    assert not leaked, leaked
    assert not [n for n in members if n.split("/")[0].startswith(".")], sorted(members)
    assert not [n for n in members if n.endswith((".key", ".pem", ".pfx", ".p12", ".db", ".crt"))]
    holding = sorted(name for name, data in contents.items() if SECRET_RE.search(data))
    assert not holding, holding
    # What it must hold: the collection itself and its license.
    for name in ("COPYING", "README.md", "meta/runtime.yml", "plugins/modules/sync.py",
                 "roles/auto_configuration/tasks/main.yml", "playbooks/hr_to_entra.yml"):
        assert name in members, name
    assert b"GNU GENERAL PUBLIC LICENSE" in contents["COPYING"] and b"Version 3" in contents["COPYING"]
    manifest = json.loads(contents["MANIFEST.json"])["collection_info"]
    assert manifest["license"] == ["GPL-3.0-or-later"]
    for url in ("repository", "documentation", "issues"):
        assert manifest[url].startswith("https://github.com/idsync/idsync.entra"), manifest[url]


def test_installed_collection_has_no_key_and_sane_modes(tarball, tmp_path):
    env = ansible_env(tmp_path, {"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections")})
    proc = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", str(tarball["path"]),
                           "-p", str(tmp_path / "collections")], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = tmp_path / "collections" / "ansible_collections" / "idsync" / "entra"
    files = [p for p in installed.rglob("*") if p.is_file()]
    assert files
    assert not [p for p in files if SECRET_RE.search(p.read_bytes())]
    # Nothing world-writable; no private material to protect, so plain 0644/0755 is right.
    assert not [p for p in files if stat.S_IMODE(p.stat().st_mode) & 0o002]


MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_every_module(module, tmp_path):
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "idsync.entra.%s" % module], env=ansible_env(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    assert "idsync.entra.%s" % module in proc.stdout


def test_action_group_all_holds_every_module():
    groups = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]
    assert sorted(groups["all"]) == MODULES
    assert set(groups["graph"]) <= set(MODULES)


def test_module_defaults_for_group_all_reach_every_module(tmp_path):
    """One ``store`` in module_defaults: the connection is saved there, read back, the certificate module accepts it,
    the sync (inline CSV source, saved CSV target) locks and records there, and the history comes from there."""
    store = tmp_path / "state" / "shared.db"
    people = tmp_path / "people.csv"
    people.write_text("EmployeeID,Name\n1,Ada\n2,Grace\n")
    export = tmp_path / "export.csv"
    tasks = [
        {"name": "save", "idsync.entra.connection": {"name": "export_file", "connector": "csv", "path": str(export),
                                                     "key": ["EmployeeID"]}},
        {"name": "info", "idsync.entra.connection_info": {"name": "export_file"}, "register": "info"},
        {"name": "certificate", "idsync.entra.certificate": {"certificate_path": str(tmp_path / "c.crt"),
                                                             "private_key_path": str(tmp_path / "c.key")}},
        {"name": "sync", "idsync.entra.sync": {
            "name": "people_to_file",
            "source": {"connector": "csv", "path": str(people), "key": ["EmployeeID"], "object_type": "row"},
            "target": {"connection": "export_file", "object_type": "row"},
            "match": [{"source": "EmployeeID", "target": "EmployeeID"}],
            "steps": {"create": {"attributes": {"EmployeeID": "EmployeeID", "Name": "Name"}}}}},
        {"name": "history", "idsync.entra.sync_history": {"name": "people_to_file"}},
    ]
    play_file = tmp_path / "play.yml"
    play_file.write_text(yaml.safe_dump([{"name": "defaults", "hosts": "localhost", "gather_facts": False,
                                          "module_defaults": {"group/idsync.entra.all": {"store": str(store)}},
                                          "tasks": tasks}], sort_keys=False))
    env = ansible_env(tmp_path)
    env["IDSYNC_TEST_RESULTS"] = str(tmp_path / "results.jsonl")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play_file),
                           "-e", "ansible_python_interpreter=%s" % (VENV_BIN / "python")], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {r["task"]: r["result"] for r in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines())}
    assert results["info"]["store"] == str(store)
    assert [c["name"] for c in results["info"]["connections"]] == ["export_file"]
    assert results["sync"]["changed"] is True
    assert [r["status"] for r in results["history"]["runs"]][:1] == ["succeeded"], results["history"]
    assert export.read_text().splitlines()[1:] == ["1,Ada", "2,Grace"]
    assert not (Path(env["HOME"]) / ".idsync").exists()  # nothing fell back to the default store
