"""The execution environment: `ansible-builder create` turns extensions/awx/execution-environment.yml into a build
context whose build installs the collection and, through the collection's meta/execution-environment.yml, its Python
(requirements.txt) and system (bindep.txt) needs; the introspection the build runs finds them in this collection."""
import subprocess
from pathlib import Path

import yaml

from ansible_runner import COLLECTIONS, VENV_BIN

ROOT = Path(__file__).resolve().parents[2]


def test_ansible_builder_context_installs_the_collection_and_its_needs(tmp_path):
    definition = yaml.safe_load((ROOT / "extensions" / "awx" / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}

    context = tmp_path / "context"
    proc = subprocess.run([str(VENV_BIN / "ansible-builder"), "create", "-f",
                           str(ROOT / "extensions" / "awx" / "execution-environment.yml"), "-c", str(context),
                           "--output-filename", "Containerfile"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert {"name": "idsync.entra"} in galaxy["collections"]
    assert "ansible-galaxy collection install" in containerfile       # the collection goes into the image ...
    assert "introspect" in containerfile and "assemble" in containerfile   # ... then its declared needs

    # The introspection the build runs, over this collection as installed (collections/ansible_collections/...).
    script = context / "_build" / "scripts" / "introspect.py"
    pip_out, bindep_out = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    proc = subprocess.run([str(VENV_BIN / "python"), str(script), "introspect", str(COLLECTIONS),
                           "--write-pip", str(pip_out), "--write-bindep", str(bindep_out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    python_needs = pip_out.read_text()
    for package in ("msal", "requests", "cryptography", "jinja2", "psycopg[binary]"):
        assert package in python_needs and "# from collection idsync.entra" in python_needs, (package, python_needs)
    system_needs = bindep_out.read_text()
    assert "libpq5 [platform:dpkg]" in system_needs and "libpq [platform:rpm]" in system_needs, system_needs
