"""`make -s emulator-vars`: the variables that point the roles at a running `make emulator`, as YAML.

    make -s emulator-vars > ~/idsync/emulator.yml
    ansible-playbook playbooks/auto_configure.yml -e @~/idsync/emulator.yml

Reads the emulator's endpoints.json (in EMULATOR_DIR, default .emulator/) and prints the login host, the Graph
endpoint and the emulator's CA for both configuration roles. No secret: the emulator's admin signs in by device code,
which `make emulator AUTO_APPROVE=1` approves at once.
"""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    state = Path(os.environ.get("EMULATOR_DIR") or ROOT / ".emulator")
    endpoints_file = state / "endpoints.json"
    if not endpoints_file.exists():
        sys.exit("%s does not exist: start the emulator first (make emulator AUTO_APPROVE=1)." % endpoints_file)
    endpoints = json.loads(endpoints_file.read_text())
    print("---")
    print("# The tenant emulator at %s (tenant %s, %s)." % (endpoints["graph_endpoint"], endpoints["tenant_id"],
                                                          endpoints["tenant_domain"]))
    for role in ("auto_configuration", "manual_configuration"):
        for key in ("authority_host", "graph_endpoint", "ca_path"):
            print("%s_%s: %s" % (role, key, json.dumps(endpoints[key])))


if __name__ == "__main__":
    main()
