"""The roles idsync.entra.auto_configuration and idsync.entra.manual_configuration, through real
``ansible-playbook playbooks/auto_configure.yml`` / ``playbooks/manual_configure.yml`` runs against the tenant
emulator, with the variables in a vars file passed as ``-e @file`` (as a person or AWX would).

The admin identity is the emulator's admin application (client secret), except in one run with device code sign-in
(an emulator started with --auto-approve) and one with a ready access token fetched with plain requests.
What the roles create is checked from outside: plain msal gets a token with the application's certificate, plain
Graph calls read the application's key credentials, and the SQLite store is read directly.

Module-level cases of the modules themselves live in test_app_registration.py, test_connection.py and
test_certificate.py; this file tests the roles as a whole.
"""
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from ansible_runner import COLLECTIONS, PYTHON, ROOT, VENV_BIN, PlaybookRun, ansible_env
from adhoc_support import VerifyingSession, msal_certificate_token, token_claims

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils import keypair  # noqa: E402

AUTO_PLAYBOOK = ROOT / "playbooks" / "auto_configure.yml"
MANUAL_PLAYBOOK = ROOT / "playbooks" / "manual_configure.yml"
LEAST_PRIVILEGE = ["User.ReadWrite.All", "Group.ReadWrite.All", "Organization.Read.All"]
READ_ONLY = ["User.Read.All", "Group.Read.All", "Organization.Read.All"]
APP_NAME = "idsync roles itest"
CONNECTION = "entra-itest"
RECAP_RE = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)",
                      re.M)


def _root_conftest():
    """tests/conftest.py under its own name (tests/integration/conftest.py is the one called ``conftest``)."""
    spec = importlib.util.spec_from_file_location("idsync_root_conftest_roles",
                                                  Path(__file__).resolve().parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


start_emulator = _root_conftest().start_emulator


def _stop(emu):
    emu.process.terminate()
    try:
        emu.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        emu.process.kill()


# ------------------------------------------------------------------------------------------------ running the playbooks

class RoleRun(PlaybookRun):
    def recap(self):
        """PLAY RECAP counts of localhost: dict ok/changed/unreachable/failed/skipped."""
        matches = RECAP_RE.findall(self.stdout)
        assert matches, self
        return dict(zip(("ok", "changed", "unreachable", "failed", "skipped"), (int(n) for n in matches[-1])))

    def find(self, fragment):
        """The result of the (last) task whose name contains ``fragment`` (role tasks carry templated names)."""
        matches = [r for r in self.records if fragment in r["task"]]
        if not matches:
            raise AssertionError("no result for a task named like %r; tasks: %s\n%s"
                                 % (fragment, [r["task"] for r in self.records], self.output[-4000:]))
        result = dict(matches[-1]["result"])
        result["_status"] = matches[-1]["status"]
        return result

    def find_all(self, fragment):
        return [dict(r["result"], _status=r["status"]) for r in self.records if fragment in r["task"]]

    def fact(self):
        """The role's connection fact (``auto_configuration_connection`` or ``manual_configuration_connection``) as
        the playbook's post task shows it."""
        shown = self.find("Show the connection")
        return next(shown[key] for key in ("auto_configuration_connection", "manual_configuration_connection")
                    if key in shown)


def run_role(work_dir, playbook, variables, *flags, timeout=600):
    """``ansible-playbook <playbook> -e @<vars file>`` with the test callback; vars file and results in work_dir."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    index = len(list(work_dir.glob("vars-*.yml")))
    vars_file = work_dir / ("vars-%d.yml" % index)
    results = work_dir / ("results-%d.jsonl" % index)
    vars_file.write_text(yaml.safe_dump(variables, sort_keys=False))
    env = ansible_env(work_dir)
    env["IDSYNC_TEST_RESULTS"] = str(results)
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "-e", "@%s" % vars_file,
           "-e", "ansible_python_interpreter=%s" % PYTHON] + list(flags)
    proc = subprocess.run(cmd, cwd=str(work_dir), env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    records = []
    if results.exists():
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return RoleRun(proc.returncode, proc.stdout, proc.stderr, records)


def secret_admin(emu):
    return {"method": "client_secret", "client_id": emu.admin_app["client_id"],
            "client_secret": emu.admin_app["client_secret"]}


def auto_vars(emu, base, admin=None, **extra):
    ep = emu.endpoints
    base = Path(base)
    variables = {
        "auto_configuration_tenant_id": ep["tenant_id"],
        "auto_configuration_admin": admin or secret_admin(emu),
        "auto_configuration_app_name": APP_NAME,
        "auto_configuration_permissions": {"Microsoft Graph": list(LEAST_PRIVILEGE)},
        "auto_configuration_connection_name": CONNECTION,
        "auto_configuration_store": str(base / "state" / "store.db"),
        "auto_configuration_certificate_path": str(base / "pki" / "connector.crt"),
        "auto_configuration_private_key_path": str(base / "pki" / "connector.key"),
        "auto_configuration_authority_host": ep["authority_host"],
        "auto_configuration_graph_endpoint": ep["graph_endpoint"],
        "auto_configuration_ca_path": ep["ca_path"],
        "auto_configuration_test_delay": 1,
    }
    variables.update(extra)
    return variables


def manual_vars(emu, fact, certificate_path, private_key_path, store, **extra):
    ep = emu.endpoints
    variables = {
        "manual_configuration_tenant_id": fact["tenant_id"],
        "manual_configuration_application_id": fact["application_id"],
        "manual_configuration_certificate_thumbprint": fact["certificate_thumbprint"],
        "manual_configuration_certificate_path": str(certificate_path),
        "manual_configuration_private_key_path": str(private_key_path),
        "manual_configuration_tenant_environment": "azure_global",
        "manual_configuration_connection_name": "manual-itest",
        "manual_configuration_store": str(store),
        "manual_configuration_authority_host": ep["authority_host"],
        "manual_configuration_graph_endpoint": ep["graph_endpoint"],
        "manual_configuration_ca_path": ep["ca_path"],
    }
    variables.update(extra)
    return variables


# ------------------------------------------------------------------------------------------------ looking from outside

def sha1_thumbprint(certificate_path):
    pem = Path(certificate_path).read_text()
    body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S).group(1)
    return hashlib.sha1(base64.b64decode("".join(body.split()))).hexdigest().upper()


def certificate_token(emu, app_id, private_key_path, thumbprint):
    """Plain msal, as the connector will do it: a client credentials token with the application's certificate."""
    return msal_certificate_token(emu.endpoints, app_id, Path(private_key_path).read_text(), thumbprint)


def admin_token(emu):
    """An app-only Microsoft Graph token of the emulator's admin application, with plain requests."""
    ep = emu.endpoints
    response = requests.post(
        "%s/%s/oauth2/v2.0/token" % (ep["authority_host"], ep["tenant_id"]),
        data={"grant_type": "client_credentials", "client_id": ep["admin"]["client_id"],
              "client_secret": ep["admin"]["client_secret"], "scope": "https://graph.microsoft.com/.default"},
        verify=ep["ca_path"], timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


class Graph:
    """Plain Graph reads as the admin application."""

    def __init__(self, emu):
        self.base = emu.endpoints["graph_endpoint"].rstrip("/") + "/v1.0"
        self.session = VerifyingSession(emu.endpoints["ca_path"])
        self.session.headers["Authorization"] = "Bearer " + admin_token(emu)

    def get(self, path, **params):
        response = self.session.get(self.base + path, params=params, timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def apps_named(self, name):
        return self.get("/applications", **{"$filter": "displayName eq '%s'" % name})["value"]

    def key_thumbprints(self, app_id):
        """SHA-1 thumbprints of the application's certificate key credentials (from the keys themselves)."""
        apps = self.get("/applications", **{"$filter": "appId eq '%s'" % app_id, "$select": "keyCredentials"})["value"]
        assert len(apps) == 1, apps
        return sorted(hashlib.sha1(base64.b64decode(k["key"])).hexdigest().upper()
                      for k in apps[0]["keyCredentials"] if k.get("key"))


def store_connections(store):
    """Every row of the store's connections table (timestamps included, to prove 'unchanged')."""
    if not os.path.exists(store):
        return None
    # Read-write on purpose: a read-only reader of a WAL database leaves its -wal/-shm files behind; this one
    # (SQLite gives them the database file's mode) removes them when it closes.
    db = sqlite3.connect(store, timeout=10)
    try:
        return sorted(db.execute("SELECT name, connector, settings, created, updated FROM connections").fetchall())
    finally:
        db.close()


def store_connection(store, name):
    rows = [r for r in (store_connections(store) or []) if r[0] == name]
    return json.loads(rows[0][2]) if rows else None


def file_digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def files_under(path):
    path = Path(path)
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


# ------------------------------------------------------------------------------------------------ auto, then manual

@pytest.fixture(scope="module")
def tenant(tmp_path_factory):
    """An emulator of this module's own (the per-test ``emulator`` fixture resets the shared one): the auto role run
    twice from nothing, then the manual role reusing the result. Later tests only read what these runs left."""
    emu = start_emulator(tmp_path_factory.mktemp("emulator-roles"))
    base = tmp_path_factory.mktemp("auto")
    variables = auto_vars(emu, base)
    started = time.monotonic()
    first = run_role(base / "run", AUTO_PLAYBOOK, variables)
    first_seconds = time.monotonic() - started
    emu.admin("POST", "stats/reset")
    second = run_role(base / "run", AUTO_PLAYBOOK, variables)
    stats_second = emu.admin("GET", "stats")
    yield {"emu": emu, "base": base, "vars": variables, "first": first, "second": second,
           "stats_second": stats_second, "first_seconds": first_seconds}
    _stop(emu)


def test_auto_configuration_from_nothing_then_idempotent(tenant):
    emu, variables, first, second = tenant["emu"], tenant["vars"], tenant["first"], tenant["second"]
    assert first.rc == 0, first
    recap = first.recap()
    assert recap["failed"] == 0 and recap["changed"] >= 3, first  # certificate, application, connection
    assert first.find("Ensure the connector certificate")["changed"] is True
    assert first.find("Ensure application")["changed"] is True
    assert first.find("Save and test connection")["changed"] is True

    # The fact the tasks that follow rely on.
    fact = first.fact()
    thumbprint = sha1_thumbprint(variables["auto_configuration_certificate_path"])
    assert fact["name"] == CONNECTION
    assert fact["tenant_id"] == emu.tenant_id
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", fact["application_id"]), fact
    assert fact["certificate_thumbprint"] == thumbprint
    assert fact["tenant_environment"] == "azure_global"
    assert fact["test"]["ok"] is True, fact
    assert sorted(fact["test"]["granted_permissions"]) == sorted(LEAST_PRIVILEGE)
    assert fact["test"]["missing_permissions"] == []

    # Exactly one application of that name, holding exactly our certificate.
    graph = Graph(emu)
    apps = graph.apps_named(APP_NAME)
    assert [a["appId"] for a in apps] == [fact["application_id"]]
    assert graph.key_thumbprints(fact["application_id"]) == [thumbprint]

    # The saved connection: settings and paths, no key material; store and key private.
    store = variables["auto_configuration_store"]
    settings = store_connection(store, CONNECTION)
    assert settings["tenant_id"] == emu.tenant_id
    assert settings["application_id"] == fact["application_id"]
    assert settings["certificate_thumbprint"] == thumbprint
    assert settings["certificate_path"] == variables["auto_configuration_certificate_path"]
    assert settings["private_key_path"] == variables["auto_configuration_private_key_path"]
    assert "PRIVATE KEY" not in Path(store).read_bytes().decode("latin-1")
    assert mode(variables["auto_configuration_private_key_path"]) == 0o600
    assert mode(store) == 0o600

    # Plain msal with the certificate: the token's roles are exactly the requested permissions.
    claims = token_claims(certificate_token(emu, fact["application_id"],
                                            variables["auto_configuration_private_key_path"], thumbprint))
    assert sorted(claims["roles"]) == sorted(LEAST_PRIVILEGE), claims
    assert claims["tid"] == emu.tenant_id

    # Second run: nothing to do, and nothing written to Graph.
    assert second.rc == 0, second
    assert second.recap()["changed"] == 0, second
    assert second.recap()["failed"] == 0, second
    assert tenant["stats_second"]["writes"] == 0, tenant["stats_second"]
    assert second.fact()["certificate_thumbprint"] == thumbprint
    assert second.fact()["application_id"] == fact["application_id"]
    assert second.fact()["test"]["ok"] is True
    assert graph.key_thumbprints(fact["application_id"]) == [thumbprint]


@pytest.fixture(scope="module")
def manual(tenant):
    """The manual role with the first auto run's IDs and key pair, into a store of its own, run twice."""
    assert tenant["first"].rc == 0, tenant["first"]
    emu, auto = tenant["emu"], tenant["vars"]
    base = tenant["base"] / "manual"
    variables = manual_vars(emu, tenant["first"].fact(), auto["auto_configuration_certificate_path"],
                            auto["auto_configuration_private_key_path"], base / "state" / "store.db")
    first = run_role(base / "run", MANUAL_PLAYBOOK, variables)
    second = run_role(base / "run", MANUAL_PLAYBOOK, variables)
    return {"emu": emu, "base": base, "vars": variables, "first": first, "second": second}


def test_manual_configuration_with_the_first_runs_ids(tenant, manual):
    variables, first, second = manual["vars"], manual["first"], manual["second"]
    auto_fact = tenant["first"].fact()
    assert first.rc == 0, first
    assert first.recap()["changed"] == 1, first
    conn = first.find("Save and test connection")
    assert conn["changed"] is True
    assert conn["test"]["ok"] is True, conn
    assert conn["test"]["missing_permissions"] == []
    fact = first.fact()
    assert fact == dict(auto_fact, name="manual-itest"), (fact, auto_fact)
    store = variables["manual_configuration_store"]
    assert mode(store) == 0o600
    settings = store_connection(store, "manual-itest")
    assert settings["application_id"] == auto_fact["application_id"]
    assert settings["certificate_thumbprint"] == auto_fact["certificate_thumbprint"]

    assert second.rc == 0, second
    assert second.recap()["changed"] == 0, second
    assert second.fact()["test"]["ok"] is True


def _bad_cases(tmp, variables):
    """name -> (variables, key words every message must hold). Each differs from the good inputs in one thing."""
    other = keypair.ensure_certificate({"certificate_path": str(tmp / "other.crt"),
                                        "private_key_path": str(tmp / "other.key"), "subject": "CN=other"})
    world = tmp / "world.key"
    shutil.copyfile(variables["manual_configuration_private_key_path"], world)
    os.chmod(world, 0o644)
    good_thumbprint = variables["manual_configuration_certificate_thumbprint"]
    assert other["thumbprint"] != good_thumbprint

    def bad(**changes):
        return dict(variables, **changes)

    return {
        "malformed tenant": (bad(manual_configuration_tenant_id="contoso-tenant-0001"),
                             ["tenant", "GUID", "contoso-tenant-0001"]),
        "malformed application": (bad(manual_configuration_application_id="1234-not-a-guid"),
                                  ["application", "GUID", "1234-not-a-guid"]),
        "unknown tenant": (bad(manual_configuration_tenant_id=str(uuid.UUID(int=0xC0FFEE))),
                           ["tenant", str(uuid.UUID(int=0xC0FFEE)), "not found", "left unchanged"]),
        "unknown application": (bad(manual_configuration_application_id=str(uuid.UUID(int=0xBADA99))),
                                ["application", str(uuid.UUID(int=0xBADA99)), "not found", "left unchanged"]),
        "thumbprint mismatch": (bad(manual_configuration_certificate_thumbprint=other["thumbprint"]),
                                ["thumbprint", other["thumbprint"], "does not match"]),
        "key file missing": (bad(manual_configuration_private_key_path=str(tmp / "missing.key")),
                             ["private_key_path", str(tmp / "missing.key"), "does not exist"]),
        "key world-readable": (bad(manual_configuration_private_key_path=str(world)),
                               [str(world), "readable by others", "chmod 600"]),
        # valid inputs, but the test fails: the application lacks a permission the test is told to require
        "permission missing": (bad(manual_configuration_tenant_environment="azure_gcc",
                                   manual_configuration_permissions=LEAST_PRIVILEGE + ["Directory.ReadWrite.All"]),
                               ["Directory.ReadWrite.All", "left unchanged"]),
    }


def test_manual_configuration_bad_inputs_leave_the_store_unchanged(manual, tmp_path):
    """Each bad input (one run each, in parallel) fails with one clear sentence, and the store keeps the earlier
    working connection of the same name byte for byte; it still tests green afterwards."""
    assert manual["second"].rc == 0, manual["second"]
    variables = manual["vars"]
    store = variables["manual_configuration_store"]
    before_rows, before_digest = store_connections(store), file_digest(store)
    assert [r[0] for r in before_rows] == ["manual-itest"]

    cases = _bad_cases(tmp_path, variables)
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        runs = dict(zip(cases, pool.map(
            lambda item: run_role(tmp_path / re.sub(r"\W", "_", item[0]), MANUAL_PLAYBOOK, item[1][0]),
            cases.items())))

    problems = []
    for name, (_, words) in cases.items():
        run = runs[name]
        if run.rc == 0:
            problems.append("%s: the run passed\n%s" % (name, run.output[-3000:]))
            continue
        result = run.find("Save and test connection")
        msg = result.get("msg", "")
        if result["_status"] != "failed":
            problems.append("%s: the connection task did not fail: %s" % (name, result))
        missing = [w for w in words if w.lower() not in msg.lower()]
        if missing:
            problems.append("%s: message %r lacks %s" % (name, msg, missing))
        # one clear sentence: one line, no traceback, no secret
        if "\n" in msg.strip() or "Traceback" in msg or len(msg) > 400 or "PRIVATE KEY" in msg:
            problems.append("%s: not one clear sentence: %r" % (name, msg))
        if [r for r in run.records if "Show the connection" in r["task"]]:
            problems.append("%s: the play went on after the failure" % name)
    missing_permission = runs["permission missing"].find("Save and test connection")
    if missing_permission.get("test", {}).get("missing_permissions") != ["Directory.ReadWrite.All"]:
        problems.append("permission missing: test result %r" % missing_permission.get("test"))
    assert not problems, "\n".join(problems)

    # Nothing of it reached the store, not even a timestamp.
    assert store_connections(store) == before_rows
    assert file_digest(store) == before_digest

    # The earlier working connection of that name still works, untouched.
    again = run_role(tmp_path / "again", MANUAL_PLAYBOOK, variables)
    assert again.rc == 0, again
    assert again.recap()["changed"] == 0, again
    assert again.fact()["test"]["ok"] is True
    assert store_connections(store) == before_rows


# ------------------------------------------------------------------------------------------------ rotation

class RotationWatcher(threading.Thread):
    """While the rotation runs: the application's key credentials as Graph shows them, and a token with whatever
    connection the store holds at that moment (the credential a sync would use), over and over."""

    def __init__(self, emu, app_id, store, name):
        super().__init__(daemon=True)
        self.emu, self.app_id, self.store, self.name = emu, app_id, store, name
        self.graph = Graph(emu)
        self.stop = threading.Event()
        self.key_sets = []
        self.thumbprints_used = []
        self.failures = []
        self.checks = 0

    def run(self):
        try:
            self._watch()
        except Exception as exc:  # pylint: disable=broad-except
            self.failures.append(("watcher stopped", repr(exc)))

    def _watch(self):
        while not self.stop.is_set():
            keys = tuple(self.graph.key_thumbprints(self.app_id))
            if not self.key_sets or self.key_sets[-1] != keys:
                self.key_sets.append(keys)
            settings = store_connection(self.store, self.name)
            try:
                result = certificate_token(self.emu, self.app_id, settings["private_key_path"],
                                           settings["certificate_thumbprint"])
            except (OSError, ValueError) as exc:  # a staged file went away between the two reads
                result = {"error": repr(exc)}
            if "access_token" in result:
                self.checks += 1
                if not self.thumbprints_used or self.thumbprints_used[-1] != settings["certificate_thumbprint"]:
                    self.thumbprints_used.append(settings["certificate_thumbprint"])
            elif store_connection(self.store, self.name) == settings:
                # the connection did not change under us: the saved credential really did not work
                self.failures.append((settings, result.get("error"), result.get("error_description")))
            time.sleep(0.25)


def test_rotation_keeps_a_working_credential(emulator, tmp_path):
    variables = auto_vars(emulator, tmp_path / "out")
    key_path = variables["auto_configuration_private_key_path"]
    cert_path = variables["auto_configuration_certificate_path"]
    store = variables["auto_configuration_store"]
    first = run_role(tmp_path / "run", AUTO_PLAYBOOK, variables)
    assert first.rc == 0, first
    app_id = first.fact()["application_id"]
    old_thumbprint = first.fact()["certificate_thumbprint"]
    old_key = tmp_path / "old.key"
    shutil.copyfile(key_path, old_key)
    assert "access_token" in certificate_token(emulator, app_id, old_key, old_thumbprint)

    # Rotation in check mode reports the new certificate and changes nothing (no .next files, nothing in Graph).
    dump, files, rows = emulator.admin("GET", "dump"), files_under(tmp_path / "out"), store_connections(store)
    check = run_role(tmp_path / "run", AUTO_PLAYBOOK, dict(variables, auto_configuration_rotate_certificate=True),
                     "--check", "--diff")
    assert check.rc == 0, check
    assert check.find("Create the next connector certificate")["changed"] is True
    assert emulator.admin("GET", "dump") == dump
    assert files_under(tmp_path / "out") == files and store_connections(store) == rows

    watcher = RotationWatcher(emulator, app_id, store, CONNECTION)
    watcher.start()
    try:
        rotation = run_role(tmp_path / "run", AUTO_PLAYBOOK,
                            dict(variables, auto_configuration_rotate_certificate=True))
    finally:
        watcher.stop.set()
        watcher.join(timeout=30)
    assert rotation.rc == 0, rotation
    new_thumbprint = rotation.fact()["certificate_thumbprint"]
    assert new_thumbprint != old_thumbprint

    # Old and new keys overlapped on the application, and the role saw both when it switched.
    assert (old_thumbprint,) == watcher.key_sets[0], watcher.key_sets
    assert tuple(sorted([old_thumbprint, new_thumbprint])) in watcher.key_sets, watcher.key_sets
    assert watcher.key_sets[-1] == (new_thumbprint,), watcher.key_sets
    assert sorted(rotation.find_all("Ensure application")[0]["certificate_thumbprints"]) == \
        sorted([old_thumbprint, new_thumbprint])
    # The saved connection worked at every moment it was looked at, first with the old, then the new credential.
    assert watcher.failures == [], watcher.failures
    assert watcher.checks >= 5, watcher.checks
    assert watcher.thumbprints_used[0] == old_thumbprint and watcher.thumbprints_used[-1] == new_thumbprint, \
        watcher.thumbprints_used
    tests = [r for r in rotation.find_all("Save and test connection") if r["_status"] != "skipped"]
    assert len(tests) >= 2 and all(r["_status"] == "ok" and r["test"]["ok"] for r in tests), tests

    # At the end: green, the old key gone from the application and refused, the new pair at the configured paths.
    fact = rotation.fact()
    assert fact["test"]["ok"] is True, fact
    assert Graph(emulator).key_thumbprints(app_id) == [new_thumbprint]
    refused = certificate_token(emulator, app_id, old_key, old_thumbprint)
    assert "access_token" not in refused
    assert "AADSTS700027" in refused.get("error_description", ""), refused
    assert sha1_thumbprint(cert_path) == new_thumbprint
    assert sorted(token_claims(certificate_token(emulator, app_id, key_path, new_thumbprint))["roles"]) == \
        sorted(LEAST_PRIVILEGE)
    assert mode(key_path) == 0o600
    pki_files = files_under(Path(key_path).parent)
    assert sorted(pki_files) == ["connector.crt", "connector.key"], pki_files  # no .next files left
    settings = store_connection(store, CONNECTION)
    assert settings["certificate_thumbprint"] == new_thumbprint
    assert (settings["certificate_path"], settings["private_key_path"]) == (cert_path, key_path)

    # A run without rotation afterwards has nothing to do.
    emulator.admin("POST", "stats/reset")
    after = run_role(tmp_path / "run", AUTO_PLAYBOOK, variables)
    assert after.rc == 0, after
    assert after.recap()["changed"] == 0, after
    assert emulator.admin("GET", "stats")["writes"] == 0
    assert after.fact()["certificate_thumbprint"] == new_thumbprint


# ------------------------------------------------------------------------------------------------ realism

def test_roles_succeed_with_replication_delay_and_throttling(emulator, tmp_path):
    emulator.admin("PUT", "settings", {"replication_delay_ms": 3000, "throttling": True})
    # Throttled answers (429 + Retry-After) on the calls each step depends on, once each ...
    for method, path in (("POST", r"/applications$"), ("POST", r"/servicePrincipals$"),
                         ("POST", r"/appRoleAssignedTo$"), ("GET", r"/organization$")):
        emulator.admin("POST", "faults", {"path": path, "method": method, "status": 429, "count": 1, "retry_after": 1})
    # ... and Graph unavailable for longer than one "Test connection" retries (6 attempts): the role's own
    # test-retry loop (auto_configuration_test_retries / _delay) has to carry the run through.
    emulator.admin("POST", "faults", {"path": r"/organization$", "method": "GET", "status": 503, "count": 6,
                                      "retry_after": 0})
    variables = auto_vars(emulator, tmp_path / "out", auto_configuration_test_delay=2)
    run = run_role(tmp_path / "run", AUTO_PLAYBOOK, variables)
    assert run.rc == 0, run
    fact = run.fact()
    assert fact["test"]["ok"] is True, fact
    assert run.find("Save and test connection")["attempts"] >= 2, run.find("Save and test connection")
    stats = emulator.admin("GET", "stats")
    assert stats["faults"] >= 10, stats  # every injected fault was met, and retried through
    settings = emulator.admin("GET", "settings")
    assert settings["replication_delay_ms"] == 3000 and settings["throttling"] is True, settings
    claims = token_claims(certificate_token(emulator, fact["application_id"],
                                            variables["auto_configuration_private_key_path"],
                                            fact["certificate_thumbprint"]))
    assert sorted(claims["roles"]) == sorted(LEAST_PRIVILEGE)

    # The manual role, in the same conditions, with what the auto role made.
    emulator.admin("POST", "faults", {"path": r"/organization$", "method": "GET", "status": 429, "count": 1,
                                      "retry_after": 1})
    manual_run = run_role(tmp_path / "manual", MANUAL_PLAYBOOK, manual_vars(
        emulator, fact, variables["auto_configuration_certificate_path"],
        variables["auto_configuration_private_key_path"], tmp_path / "manual-store.db"))
    assert manual_run.rc == 0, manual_run
    assert manual_run.fact()["test"]["ok"] is True


# ------------------------------------------------------------------------------------------------ check mode

def test_check_mode_on_a_fresh_tenant_creates_nothing_then_access_token_run(emulator, tmp_path):
    token = admin_token(emulator)
    out = tmp_path / "out"
    variables = auto_vars(emulator, out, auto_configuration_admin={"method": "access_token", "access_token": token})
    before = emulator.admin("GET", "dump")
    emulator.admin("POST", "stats/reset")
    check = run_role(tmp_path / "run", AUTO_PLAYBOOK, variables, "--check", "--diff")
    assert check.rc == 0, check
    assert emulator.admin("GET", "dump") == before
    assert emulator.admin("GET", "stats")["writes"] == 0
    assert files_under(out) == [], files_under(out)

    # It reports what it would create ...
    assert check.recap()["changed"] >= 2, check
    cert = check.find("Ensure the connector certificate")
    assert cert["changed"] is True and cert["reason"].startswith("would create"), cert
    app = check.find("Ensure application")
    assert app["changed"] is True and app["app_id"] is None, app
    assert any("create" in c and APP_NAME in c for c in app["changes"]), app["changes"]
    assert any("consent" in c.lower() or "grant" in c.lower() for c in app["changes"]), app["changes"]
    # ... and --diff shows it.
    assert "--- before" in check.stdout and "+++ after" in check.stdout, check
    assert '+    "display_name": "%s"' % APP_NAME in check.stdout, check
    assert '-    "state": "absent"' in check.stdout and '+    "state": "present"' in check.stdout, check
    assert '+    "thumbprint": "(new)"' in check.stdout, check
    for permission in LEAST_PRIVILEGE:
        assert '"%s"' % permission in check.stdout
    assert token not in check.output and token not in json.dumps(check.records)

    # The real run with the ready access token does all of it; the token is never stored.
    real = run_role(tmp_path / "run", AUTO_PLAYBOOK, variables)
    assert real.rc == 0, real
    fact = real.fact()
    assert fact["test"]["ok"] is True
    assert len(Graph(emulator).apps_named(APP_NAME)) == 1
    assert token not in real.output and token not in json.dumps(real.records)
    assert token.encode() not in Path(variables["auto_configuration_store"]).read_bytes()
    claims = token_claims(certificate_token(emulator, fact["application_id"],
                                            variables["auto_configuration_private_key_path"],
                                            fact["certificate_thumbprint"]))
    assert sorted(claims["roles"]) == sorted(LEAST_PRIVILEGE)


# ------------------------------------------------------------------------------------------------ device code

@pytest.fixture(scope="module")
def auto_approve_emulator(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emulator-roles-auto-approve"), "--auto-approve",
                         "--device-code-interval", "1")
    yield emu
    _stop(emu)


def test_device_code_sign_in_without_tenant_id(auto_approve_emulator, tmp_path):
    """Device code sign-in, the tenant left out (the admin's home tenant), and a non-default permission set: the
    token of the created application holds exactly those permissions."""
    emu = auto_approve_emulator
    variables = auto_vars(emu, tmp_path / "out", auto_configuration_admin={"method": "device_code"},
                          auto_configuration_tenant_id="",
                          auto_configuration_permissions={"Microsoft Graph": list(READ_ONLY)})
    run = run_role(tmp_path / "run", AUTO_PLAYBOOK, variables)
    assert run.rc == 0, run
    assert "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code" \
        in run.stdout, run
    fact = run.fact()
    assert fact["tenant_id"] == emu.tenant_id
    assert fact["test"]["ok"] is True
    assert sorted(fact["test"]["granted_permissions"]) == sorted(READ_ONLY)
    claims = token_claims(certificate_token(emu, fact["application_id"],
                                            variables["auto_configuration_private_key_path"],
                                            fact["certificate_thumbprint"]))
    assert sorted(claims["roles"]) == sorted(READ_ONLY), claims
    assert "eyJ" not in run.stdout + json.dumps(run.records)


DEVICE_CODE_PROMPT = "To sign in, use a web browser to open the page https://microsoft.com/devicelogin"


def test_device_code_asks_only_when_an_administrator_is_needed(auto_approve_emulator, tmp_path):
    """Once the connection works with its own certificate, runs (check mode included, the tenant given as a domain
    too) sign nobody in and change nothing; asking for a permission the token lacks brings the sign-in back."""
    emu = auto_approve_emulator
    variables = auto_vars(emu, tmp_path / "out", auto_configuration_admin={"method": "device_code"},
                          auto_configuration_tenant_id="", auto_configuration_app_name="idsync sign-in once")
    first = run_role(tmp_path / "run", AUTO_PLAYBOOK, variables)
    assert first.rc == 0, first
    assert DEVICE_CODE_PROMPT in first.stdout, first

    for label, extra, flags in (("again", {}, ()), ("check", {}, ("--check", "--diff")),
                                ("domain", {"auto_configuration_tenant_id": emu.endpoints["tenant_domain"]}, ())):
        emu.admin("POST", "stats/reset")
        run = run_role(tmp_path / label, AUTO_PLAYBOOK, dict(variables, **extra), *flags)
        assert run.rc == 0, (label, run)
        assert DEVICE_CODE_PROMPT not in run.stdout, (label, run)
        assert all(r["_status"] == "skipped" for r in run.find_all("Ensure application")), (label, run)
        assert run.recap()["changed"] == 0, (label, run)
        assert emu.admin("GET", "stats")["writes"] == 0, label
        assert run.fact()["application_id"] == first.fact()["application_id"], label
        assert run.fact()["test"]["ok"] is True, label

    # A permission the connector's token does not hold needs the administrator again.
    wider = dict(variables, auto_configuration_permissions={"Microsoft Graph": LEAST_PRIVILEGE + ["Application.Read.All"]})
    more = run_role(tmp_path / "more", AUTO_PLAYBOOK, wider)
    assert more.rc == 0, more
    assert DEVICE_CODE_PROMPT in more.stdout, more
    assert more.find("Ensure application")["changed"] is True, more
    assert "Application.Read.All" in more.fact()["test"]["granted_permissions"]


@pytest.mark.parametrize("playbook, variables, expected, not_expected", [
    (AUTO_PLAYBOOK, {"auto_configuration_admin": {"method": "client_secret", "client_id": "x"}},
     ["method is client_secret", "client_secret"], ["certificate_path", "access_token", "tenant_id"]),
    (AUTO_PLAYBOOK, {"auto_configuration_admin": {"method": "certificate", "client_id": "x", "certificate_path": "/c"}},
     ["auto_configuration_admin.method=certificate needs auto_configuration_tenant_id"], ["client_secret"]),
    (AUTO_PLAYBOOK, {"auto_configuration_admin": {"method": "access_token"}},
     ["method is access_token", "access_token"], ["client_secret", "certificate_path", "tenant_id"]),
    (MANUAL_PLAYBOOK, {"manual_configuration_application_id": "x", "manual_configuration_certificate_thumbprint": "x",
                       "manual_configuration_certificate_path": "/c"},
     ["manual_configuration_tenant_id"], ["An azure_ad connection"]),
], ids=["secret-without-secret", "certificate-without-tenant", "token-without-token", "manual-without-tenant"])
def test_role_validation_names_only_the_rule_that_failed(playbook, variables, expected, not_expected, tmp_path):
    run = run_role(tmp_path, playbook, variables)
    assert run.rc != 0, run
    failed = [r for r in run.records if r["status"] == "failed"]
    assert len(failed) == 1, run
    msg = failed[0]["result"]["msg"]
    assert all(word in msg for word in expected), msg
    assert not any(word in msg for word in not_expected), msg


# ------------------------------------------------------------------------------------------------ docs

@pytest.mark.parametrize("role", ["auto_configuration", "manual_configuration"])
def test_ansible_doc_renders_the_role(role, tmp_path):
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    assert options
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "-t", "role", "idsync.entra.%s" % role],
                          env=ansible_env(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    missing = [name for name in options if name not in proc.stdout]
    assert not missing, (missing, proc.stdout)
    assert spec["argument_specs"]["main"]["short_description"] in proc.stdout
