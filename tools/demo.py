"""`make demo`: the collection's main job, end to end, against the bundled tenant emulator.

1. start the emulator (HTTPS, its own CA) in .demo/;
2. automatic configuration (playbooks/auto_configure.yml): certificate, app registration with admin consent,
   the named connection, "Test connection";
3. sync the bundled HR file into Entra users and department groups (playbooks/hr_to_entra.yml);
4. run both again: changed=0;
5. change one person's title and remove another in a copy of the file: one update, one deprovision.
"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import start_emulator  # noqa: E402  (the same launcher the tests use)

DEMO = ROOT / ".demo"
VENV_BIN = Path(sys.executable).parent


def main():
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    banner("Starting the tenant emulator")
    emulator = start_emulator(DEMO / "emulator", "--auto-approve")  # device code sign-in, approved at once
    try:
        run_demo(emulator)
    finally:
        emulator.process.terminate()
        emulator.process.wait(timeout=10)


def run_demo(emulator):
    endpoints = emulator.endpoints
    print(f"  tenant {endpoints['tenant_id']} ({endpoints['tenant_domain']}) at {endpoints['graph_endpoint']}")
    vars_file = write_vars(endpoints)

    banner("Automatic configuration: certificate, app registration + admin consent, connection, test")
    playbook("auto_configure.yml", vars_file)
    banner("Sync the HR file (301 people, two of them called Alan Martin) into Entra ID users and department groups")
    output = playbook("hr_to_entra.yml", vars_file)
    show_namesakes(output, ["100001", "100300"])

    banner("Run both again: nothing to do")
    playbook("auto_configure.yml", vars_file, expect_changed=0)
    playbook("hr_to_entra.yml", vars_file, expect_changed=0)

    changed_file, promoted, leaver = edited_copy(ROOT / "playbooks" / "files" / "hr_people.csv")
    banner(f"HR changes: {promoted} gets a new title, {leaver} leaves")
    playbook("hr_to_entra.yml", vars_file, "-e", f"hr_file={changed_file}", "--diff")
    banner("Done. The emulator state is in .demo/; `make emulator` runs one in the foreground.")


def write_vars(endpoints):
    # The administrator signs in by device code (the emulator approves it), so no secret is written anywhere.
    settings = {
        "auto_configuration_admin": {"method": "device_code"},
        "auto_configuration_authority_host": endpoints["authority_host"],
        "auto_configuration_graph_endpoint": endpoints["graph_endpoint"],
        "auto_configuration_ca_path": endpoints["ca_path"],
        "auto_configuration_store": str(DEMO / "store.db"),
        "auto_configuration_certificate_path": str(DEMO / "certs" / "entra.crt"),
        "auto_configuration_private_key_path": str(DEMO / "certs" / "entra.key"),
        "hr_store": str(DEMO / "store.db"),
    }
    path = DEMO / "vars.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def edited_copy(source):
    """A copy of the HR file with one person promoted and one active person (not a manager) removed."""
    with open(source, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    managers = {row["ManagerID"] for row in rows}
    active = [row for row in rows if row["Status"] == "Active" and row["EmployeeID"] not in managers]
    promoted, leaver = active[10], active[20]
    promoted["Title"] = "Principal " + promoted["Title"]
    rows.remove(leaver)
    target = DEMO / "hr_people_changed.csv"
    with open(target, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return target, full_name(promoted), full_name(leaver)


def full_name(row):
    return f"{row['FirstName']} {row['LastName']} ({row['EmployeeID']})"


def show_namesakes(output, employee_ids):
    """The sign-in names the unique-value rule chose, read from the run report the sync wrote."""
    found = re.search(r"report: (\S+\.html)", output)
    if not found:
        raise SystemExit("the sync printed no report path")
    html = Path(found.group(1))
    report = json.loads(html.with_suffix(".json").read_text())
    for row in report["rows"]:
        if row.get("source") in employee_ids and row["outcome"] == "created":
            upn = row["changes"]["userPrincipalName"]["after"]
            print(f"  {row['source']} {row['changes']['displayName']['after']:12} -> {upn}")
    print(f"  run report: {html}  (open it in a browser: filter by outcome, search)")


def playbook(name, vars_file, *extra, expect_changed=None):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_NOCOLOR="1",
               PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_DISPLAY_SKIPPED_HOSTS="false")
    command = [str(VENV_BIN / "ansible-playbook"), str(ROOT / "playbooks" / name), "-e", f"@{vars_file}", *extra]
    print(f"$ ansible-playbook playbooks/{name} {' '.join(extra)}".rstrip(), flush=True)
    result = subprocess.run(command, env=env, text=True, capture_output=True, check=False)
    show(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"ansible-playbook {name} failed (exit {result.returncode})")
    changed = int(re.search(r"changed=(\d+)", result.stdout.split("PLAY RECAP")[-1]).group(1))
    if expect_changed is not None and changed != expect_changed:
        raise SystemExit(f"expected changed={expect_changed} from {name}, got changed={changed}")
    return result.stdout


def show(output):
    """The lines a person wants: task names with their status, summaries, diffs and the recap."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("changed:", "ok:", "fatal:")) and index and lines[index - 1].startswith("TASK ["):
            task = lines[index - 1][6:].split("]")[0].split(" : ")[-1]
            print(f"  {line.split(':')[0]:8} {task}")
        elif '"msg":' in line:
            print("  => " + json.loads("{" + line.strip() + "}")["msg"])
        elif line.startswith("--- before: "):
            print("   " + line[len("--- before: "):])
        elif line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            print("     " + line)
        elif line.startswith("localhost") and "changed=" in line:
            print("  recap: " + " ".join(line.split()[2:5]))


def banner(text):
    print(f"\n== {text}", flush=True)


if __name__ == "__main__":
    main()
