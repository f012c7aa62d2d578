"""Placeholder for `make demo` (the lead replaces it): start the tenant emulator, show its endpoints, then read the
tenant's organization, through the collection's tenant_info module when it exists, else with plain msal + requests.
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def load_test_fixtures():
    """tests/conftest.py by path: its start_emulator() is the one way the emulator is started."""
    spec = importlib.util.spec_from_file_location("idsync_tests_conftest", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tenant_info(endpoints) -> int:
    admin = endpoints["admin"]
    args = {
        "tenant_id": endpoints["tenant_id"],
        "client_id": admin["client_id"],
        "client_secret": admin["client_secret"],
        "authority_host": endpoints["authority_host"],
        "graph_endpoint": endpoints["graph_endpoint"],
        "ca_path": endpoints["ca_path"],
    }
    ansible = Path(sys.executable).with_name("ansible")
    command = [str(ansible if ansible.exists() else "ansible"), "localhost", "-i", "localhost,", "-c", "local",
               "-m", "idsync.entra.tenant_info", "-a", json.dumps(args),
               "-e", f"ansible_python_interpreter={sys.executable}"]
    return subprocess.run(command, cwd=str(ROOT), check=False).returncode


def print_organization(endpoints) -> int:
    import msal
    import requests

    ca_path = endpoints["ca_path"]

    class CaBoundSession(requests.Session):
        # REQUESTS_CA_BUNDLE would override Session.verify; a per-request verify always wins.
        def request(self, method, url, *args, **kwargs):
            kwargs["verify"] = ca_path
            return super().request(method, url, *args, **kwargs)

    app = msal.ConfidentialClientApplication(
        endpoints["admin"]["client_id"], client_credential=endpoints["admin"]["client_secret"],
        authority=f"{endpoints['authority_host']}/{endpoints['tenant_id']}", instance_discovery=False,
        http_client=CaBoundSession())
    token = app.acquire_token_for_client([GRAPH_SCOPE])
    if "access_token" not in token:
        print(f"token request failed: {token.get('error_description')}")
        return 1
    response = CaBoundSession().get(f"{endpoints['graph_endpoint']}/v1.0/organization",
                                    headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30)
    print(json.dumps(response.json(), indent=2))
    return 0 if response.ok else 1


def main() -> int:
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / "collections"))
    fixtures = load_test_fixtures()
    with tempfile.TemporaryDirectory(prefix="idsync-demo-") as state_dir:
        emulator = fixtures.start_emulator(state_dir)
        try:
            shown = {key: value for key, value in emulator.endpoints.items() if key not in ("admin", "emulator_key")}
            print("Tenant emulator endpoints:")
            print(json.dumps(shown, indent=2))
            if (ROOT / "plugins" / "modules" / "tenant_info.py").exists():
                return run_tenant_info(emulator.endpoints)
            return print_organization(emulator.endpoints)
        finally:
            emulator.process.terminate()
            emulator.process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
