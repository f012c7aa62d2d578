"""idsync.entra.app_registration and idsync.entra.app_registration_info through real ansible-playbook runs against
the tenant emulator.

The admin identity is the emulator's admin application (client secret), except in the device code tests, where the
action plugin signs the emulator's admin user in on the controller. Created applications are then checked the way
the connector will use them: plain msal gets a token with the application's certificate, and the token's ``roles``
must hold exactly the requested permissions.
"""
import importlib.util
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import msal
import pytest

from ansible_runner import COLLECTIONS, VENV_BIN, PYTHON, ansible_env, run_playbook
from adhoc_support import VerifyingSession, msal_certificate_token, token_claims

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils import keypair  # noqa: E402


def _root_conftest():
    """tests/conftest.py under its own name (tests/integration/conftest.py is the one called ``conftest``)."""
    spec = importlib.util.spec_from_file_location("idsync_root_conftest",
                                                  Path(__file__).resolve().parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


start_emulator = _root_conftest().start_emulator

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
LEAST_PRIVILEGE = ["User.ReadWrite.All", "Group.ReadWrite.All", "Organization.Read.All"]
APP_NAME = "idsync connector"


# ------------------------------------------------------------------------------------------------ helpers

def make_pair(directory, name):
    directory = Path(directory)
    return keypair.ensure_certificate({
        "certificate_path": str(directory / ("%s.crt" % name)),
        "private_key_path": str(directory / ("%s.key" % name)),
        "subject": "CN=%s" % name,
    })


def admin_auth(emulator):
    e = emulator.endpoints
    return {
        "tenant_id": e["tenant_id"],
        "client_id": e["admin"]["client_id"],
        "client_secret": e["admin"]["client_secret"],
        "authority_host": e["authority_host"],
        "graph_endpoint": e["graph_endpoint"],
        "ca_path": e["ca_path"],
    }


def endpoint_auth(emulator):
    e = emulator.endpoints
    return {"tenant_id": e["tenant_id"], "authority_host": e["authority_host"],
            "graph_endpoint": e["graph_endpoint"], "ca_path": e["ca_path"]}


def app_task(emulator, name="app", auth=None, **options):
    args = dict(admin_auth(emulator) if auth is None else auth)
    args.update(options)
    return {"name": name, "idsync.entra.app_registration": args, "register": "r"}


def info_task(emulator, name="info", **options):
    args = dict(admin_auth(emulator))
    args.update(options)
    return {"name": name, "idsync.entra.app_registration_info": args, "register": "r"}


def certificate_token(emulator, app_id, pair):
    """A token for the application through plain msal with its certificate (what the connector will do)."""
    with open(pair["private_key_path"]) as handle:
        key = handle.read()
    return msal_certificate_token(emulator.endpoints, app_id, key, pair["thumbprint"])


def token_roles(result):
    return sorted(token_claims(result)["roles"])


class AdminGraph:
    """Plain Graph calls as the emulator's admin application (to set the stage, and to look behind the module)."""

    def __init__(self, emulator):
        e = emulator.endpoints
        self.base = e["graph_endpoint"].rstrip("/") + "/v1.0"
        self.session = VerifyingSession(e["ca_path"])
        app = msal.ConfidentialClientApplication(
            e["admin"]["client_id"], client_credential=e["admin"]["client_secret"],
            authority="%s/%s" % (e["authority_host"], e["tenant_id"]), http_client=self.session,
            instance_discovery=False, token_cache=msal.TokenCache())
        result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
        self.session.headers["Authorization"] = "Bearer " + result["access_token"]

    def call(self, method, path, **kwargs):
        response = self.session.request(method, self.base + path, timeout=60, **kwargs)
        return response.status_code, (response.json() if response.content else None)

    def apps_named(self, name):
        status, body = self.call("GET", "/applications", params={"$filter": "displayName eq '%s'" % name})
        assert status == 200, body
        return body["value"]


def writes(emulator):
    return emulator.admin("GET", "stats")["writes"]


@pytest.fixture
def pki(tmp_path):
    return tmp_path / "pki"


@pytest.fixture
def cert_a(pki):
    return make_pair(pki, "connector-a")


@pytest.fixture
def cert_b(pki):
    return make_pair(pki, "connector-b")


# ------------------------------------------------------------------------------------------------ tests

def test_create_from_nothing_then_no_change_and_certificate_token(emulator, tmp_path, cert_a):
    task = app_task(emulator, display_name=APP_NAME, certificates=[cert_a["certificate_path"]],
                    api_permissions={"Microsoft Graph": LEAST_PRIVILEGE}, admin_consent=True)
    first = run_playbook(tmp_path, [task])
    assert first.rc == 0, first
    created = first.task("app")
    assert created["changed"] is True
    assert created["tenant_id"] == emulator.tenant_id
    assert re.match(r"^[0-9a-f-]{36}$", created["app_id"])
    assert created["object_id"] and created["service_principal_id"]
    assert created["certificate_thumbprints"] == [cert_a["thumbprint"]]
    assert created["api_permissions"] == {"Microsoft Graph": sorted(LEAST_PRIVILEGE)}
    assert created["granted_permissions"] == {"Microsoft Graph": sorted(LEAST_PRIVILEGE)}
    assert "create application 'idsync connector'" in created["changes"]

    # The second run reads only: no write request reaches Graph, and nothing is reported changed.
    emulator.admin("POST", "stats/reset")
    second = run_playbook(tmp_path, [task])
    assert second.rc == 0, second
    again = second.task("app")
    assert again["changed"] is False
    assert again["changes"] == []
    assert again["app_id"] == created["app_id"]
    assert writes(emulator) == 0
    assert "changed=0" in second.stdout

    # The connector's view: the certificate signs in, and the token holds exactly the requested permissions.
    assert token_roles(certificate_token(emulator, created["app_id"], cert_a)) == sorted(LEAST_PRIVILEGE)
    assert len(AdminGraph(emulator).apps_named(APP_NAME)) == 1


def test_find_by_app_id_rename_and_info(emulator, tmp_path, cert_a):
    run = run_playbook(tmp_path, [app_task(emulator, display_name="old name", certificates=[cert_a["certificate_path"]])])
    assert run.rc == 0, run
    app_id = run.task("app")["app_id"]

    run = run_playbook(tmp_path, [
        app_task(emulator, app_id=app_id, display_name="new name", sign_in_audience="AzureADMultipleOrgs"),
        info_task(emulator, "by id", app_id=app_id),
        info_task(emulator, "by name", display_name="new name"),
        info_task(emulator, "old name", display_name="old name"),
        info_task(emulator, "all", details=False),
    ])
    assert run.rc == 0, run
    renamed = run.task("app")
    assert renamed["changed"] is True and renamed["app_id"] == app_id
    assert renamed["display_name"] == "new name" and renamed["sign_in_audience"] == "AzureADMultipleOrgs"
    by_id = run.task("by id")["applications"]
    assert [a["app_id"] for a in by_id] == [app_id]
    assert by_id[0]["certificate_thumbprints"] == [cert_a["thumbprint"]]
    assert by_id[0]["service_principal_id"] == renamed["service_principal_id"]
    assert by_id[0]["certificates"][0]["thumbprint"] == cert_a["thumbprint"]
    assert [a["app_id"] for a in run.task("by name")["applications"]] == [app_id]
    assert run.task("old name")["applications"] == []
    everything = run.task("all")["applications"]
    assert app_id in [a["app_id"] for a in everything]
    assert emulator.endpoints["admin"]["client_id"] in [a["app_id"] for a in everything]
    assert "granted_permissions" not in everything[0]


def test_info_reads_every_page(emulator, tmp_path):
    graph = AdminGraph(emulator)
    for chunk in range(6):
        requests_ = [{"id": str(i), "method": "POST", "url": "/applications",
                      "headers": {"Content-Type": "application/json"},
                      "body": {"displayName": "bulk %03d" % (chunk * 20 + i)}} for i in range(20)]
        status, body = graph.call("POST", "/$batch", json={"requests": requests_})
        assert status == 200 and all(r["status"] == 201 for r in body["responses"]), body
    run = run_playbook(tmp_path, [info_task(emulator, details=False)])
    assert run.rc == 0, run
    names = [a["display_name"] for a in run.task("info")["applications"]]
    assert len([n for n in names if n.startswith("bulk ")]) == 120


def test_unknown_permission_lists_close_matches(emulator, tmp_path, cert_a):
    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, certificates=[cert_a["certificate_path"]],
                                           api_permissions={"Microsoft Graph": ["User.ReadWrite.Al", "Group.ReadWrit.All"]},
                                           admin_consent=True)])
    assert run.rc != 0
    failed = run.task("app")
    assert failed["_status"] == "failed"
    assert "Unknown application permission 'User.ReadWrite.Al' for Microsoft Graph" in failed["msg"]
    assert "'User.ReadWrite.All'" in failed["msg"]
    assert "'Group.ReadWrite.All'" in failed["msg"]
    # Names are resolved before anything is written.
    assert AdminGraph(emulator).apps_named(APP_NAME) == []

    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME,
                                           api_permissions={"Microsoft Graf": ["User.Read.All"]})])
    assert run.rc != 0
    assert "No API named 'Microsoft Graf'" in run.task("app")["msg"]
    assert "'Microsoft Graph'" in run.task("app")["msg"]

    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, directory_roles=["Exchange Admin"])])
    assert run.rc != 0
    assert "Unknown directory role 'Exchange Admin'" in run.task("app")["msg"]
    assert "'Exchange Administrator'" in run.task("app")["msg"]
    assert AdminGraph(emulator).apps_named(APP_NAME) == []


def test_duplicate_display_names_fail_clearly(emulator, tmp_path):
    graph = AdminGraph(emulator)
    ids = []
    for dummy in range(2):
        status, body = graph.call("POST", "/applications", json={"displayName": "twin"})
        assert status == 201, body
        ids.append(body["appId"])
    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [app_task(emulator, display_name="twin", admin_consent=True)])
    assert run.rc != 0
    msg = run.task("app")["msg"]
    assert "2 applications are named 'twin'" in msg
    for app_id in ids:
        assert app_id in msg
    assert "app_id" in msg
    assert writes(emulator) == 0
    assert len(graph.apps_named("twin")) == 2

    # app_id picks one of them.
    run = run_playbook(tmp_path, [app_task(emulator, app_id=ids[0], display_name="twin")])
    assert run.rc == 0, run
    assert run.task("app")["app_id"] == ids[0]


def test_certificate_rotation_add_then_exclusive(emulator, tmp_path, cert_a, cert_b):
    base = dict(display_name=APP_NAME, api_permissions={"Microsoft Graph": LEAST_PRIVILEGE}, admin_consent=True)
    run = run_playbook(tmp_path, [app_task(emulator, certificates=[cert_a["certificate_path"]], **base)])
    assert run.rc == 0, run
    app_id = run.task("app")["app_id"]

    # Step one: add the new certificate; both keys work.
    with open(cert_b["certificate_path"]) as handle:
        pem_b = handle.read()
    run = run_playbook(tmp_path, [app_task(emulator, certificates=[pem_b], certificate_mode="add", **base)], diff=True)
    assert run.rc == 0, run
    added = run.task("app")
    assert added["changed"] is True
    assert added["certificate_thumbprints"] == sorted([cert_a["thumbprint"], cert_b["thumbprint"]])
    assert added["diff"]["before"]["certificate_thumbprints"] == [cert_a["thumbprint"]]
    for pair in (cert_a, cert_b):
        assert token_roles(certificate_token(emulator, app_id, pair)) == sorted(LEAST_PRIVILEGE)

    # Adding it again changes nothing.
    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [app_task(emulator, certificates=[pem_b], certificate_mode="add", **base)])
    assert run.rc == 0 and run.task("app")["changed"] is False
    assert writes(emulator) == 0

    # Last step: only the new certificate is left; the old one no longer signs in.
    run = run_playbook(tmp_path, [app_task(emulator, certificates=[cert_b["certificate_path"]],
                                           certificate_mode="exclusive", **base)])
    assert run.rc == 0, run
    dropped = run.task("app")
    assert dropped["changed"] is True
    assert dropped["certificate_thumbprints"] == [cert_b["thumbprint"]]
    assert any(c.startswith("remove AsymmetricX509Cert key %s" % cert_a["thumbprint"]) for c in dropped["changes"])
    old = certificate_token(emulator, app_id, cert_a)
    assert "access_token" not in old and "AADSTS700027" in old.get("error_description", ""), old
    assert token_roles(certificate_token(emulator, app_id, cert_b)) == sorted(LEAST_PRIVILEGE)

    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [app_task(emulator, certificates=[cert_b["certificate_path"]],
                                           certificate_mode="exclusive", **base)])
    assert run.rc == 0 and run.task("app")["changed"] is False
    assert writes(emulator) == 0


def test_permissions_change_and_consent_revoked(emulator, tmp_path, cert_a):
    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, certificates=[cert_a["certificate_path"]],
                                           api_permissions={"Microsoft Graph": LEAST_PRIVILEGE}, admin_consent=True,
                                           directory_roles=["Exchange Administrator"])])
    assert run.rc == 0, run
    app_id = run.task("app")["app_id"]
    assert run.task("app")["directory_roles"] == ["Exchange Administrator"]

    # Fewer permissions (one given by app role id, one by the API's appId), and no directory role any more.
    wanted = {GRAPH_APP_ID: ["User.Read.All", "df021288-bdef-4463-88db-98f22de89214", "Organization.Read.All"]}
    run = run_playbook(tmp_path, [app_task(emulator, app_id=app_id, api_permissions=wanted, admin_consent=True,
                                           directory_roles=[])], diff=True)
    assert run.rc == 0, run
    result = run.task("app")
    assert result["changed"] is True
    assert result["granted_permissions"] == {"Microsoft Graph": ["Organization.Read.All", "User.Read.All"]}
    assert result["directory_roles"] == []
    assert "revoke admin consent for Microsoft Graph/Group.ReadWrite.All" in result["changes"]
    assert "remove directory role 'Exchange Administrator'" in result["changes"]
    assert token_roles(certificate_token(emulator, app_id, cert_a)) == ["Organization.Read.All", "User.Read.All"]
    # --diff is printed by the callback.
    assert "Group.ReadWrite.All" in run.stdout and "consented_permissions" in run.stdout


def test_check_mode_on_a_fresh_tenant_creates_nothing(emulator, tmp_path, cert_a):
    dump_before = emulator.admin("GET", "dump")
    emulator.admin("POST", "stats/reset")
    task = app_task(emulator, display_name=APP_NAME, certificates=[cert_a["certificate_path"]],
                    api_permissions={"Microsoft Graph": LEAST_PRIVILEGE}, admin_consent=True,
                    directory_roles=["Exchange Administrator"])
    run = run_playbook(tmp_path, [task], check=True, diff=True)
    assert run.rc == 0, run
    result = run.task("app")
    assert result["changed"] is True
    assert result["app_id"] is None
    assert writes(emulator) == 0
    assert emulator.admin("GET", "dump") == dump_before
    changes = result["changes"]
    assert changes[0] == "create application 'idsync connector'"
    assert "create service principal for 'idsync connector'" in changes
    assert "grant admin consent for Microsoft Graph/User.ReadWrite.All" in changes
    assert "assign directory role 'Exchange Administrator'" in changes
    assert any(c.startswith("add certificate %s" % cert_a["thumbprint"]) for c in changes)
    diff = result["diff"]
    assert diff["before"] == {"state": "absent"}
    assert diff["after"]["state"] == "present"
    assert diff["after"]["certificate_thumbprints"] == [cert_a["thumbprint"]]
    assert diff["after"]["consented_permissions"] == {"Microsoft Graph": sorted(LEAST_PRIVILEGE)}
    assert diff["after"]["directory_roles"] == ["Exchange Administrator"]
    # The default callback prints the diff.
    assert '+    "display_name": "idsync connector"' in run.stdout or "+  display_name" in run.stdout or \
        '"display_name": "idsync connector"' in run.stdout

    # Check mode against an existing application reports the change, writes nothing.
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, api_permissions={
        "Microsoft Graph": LEAST_PRIVILEGE + ["Directory.Read.All"]}, admin_consent=True)], check=True)
    assert run.rc == 0, run
    assert run.task("app")["changed"] is True
    assert "grant admin consent for Microsoft Graph/Directory.Read.All" in run.task("app")["changes"]
    assert writes(emulator) == 0


def test_replication_delay_and_throttling(emulator, tmp_path, cert_a):
    emulator.admin("PUT", "settings", {"replication_delay_ms": 4000, "throttling": True})
    # Throttle some of the writes as Graph does (429 + Retry-After) on top of the replication delay.
    for path, method in (("/applications$", "POST"), ("/servicePrincipals$", "POST"),
                         ("/appRoleAssignedTo$", "POST"), ("/applications/[^/]+$", "PATCH")):
        emulator.admin("POST", "faults", {"path": path, "method": method, "status": 429, "count": 1,
                                          "retry_after": 1})
    task = app_task(emulator, display_name=APP_NAME, certificates=[cert_a["certificate_path"]],
                    api_permissions={"Microsoft Graph": LEAST_PRIVILEGE}, admin_consent=True,
                    directory_roles=["Exchange Recipient Administrator"], wait_timeout=120)
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    created = run.task("app")
    assert created["changed"] is True
    assert created["granted_permissions"] == {"Microsoft Graph": sorted(LEAST_PRIVILEGE)}
    assert emulator.admin("GET", "stats")["faults"] >= 4

    # Right away, still inside the replication window: found (no twin), nothing to write.
    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    assert run.task("app")["changed"] is False
    assert run.task("app")["app_id"] == created["app_id"]
    assert writes(emulator) == 0
    assert len(AdminGraph(emulator).apps_named(APP_NAME)) == 1
    assert token_roles(certificate_token(emulator, created["app_id"], cert_a)) == sorted(LEAST_PRIVILEGE)


def test_state_absent(emulator, tmp_path, cert_a):
    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, certificates=[cert_a["certificate_path"]],
                                           api_permissions={"Microsoft Graph": LEAST_PRIVILEGE}, admin_consent=True)])
    assert run.rc == 0, run
    created = run.task("app")
    graph = AdminGraph(emulator)

    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, state="absent")], check=True, diff=True)
    assert run.rc == 0 and run.task("app")["changed"] is True
    assert writes(emulator) == 0
    assert run.task("app")["diff"]["after"] == {"state": "absent"}

    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, state="absent")])
    assert run.rc == 0, run
    assert run.task("app")["changed"] is True
    assert run.task("app")["app_id"] == created["app_id"]
    assert graph.apps_named(APP_NAME) == []
    status = graph.call("GET", "/servicePrincipals(appId='%s')" % created["app_id"])[0]
    assert status == 404
    status = graph.call("GET", "/servicePrincipals/%s" % created["service_principal_id"])[0]
    assert status == 404
    assert "access_token" not in certificate_token(emulator, created["app_id"], cert_a)

    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, state="absent")])
    assert run.rc == 0 and run.task("app")["changed"] is False
    assert writes(emulator) == 0
    # Still restorable from deleted items, unless purged.
    status = graph.call("GET", "/directory/deletedItems/%s" % created["object_id"])[0]
    assert status == 200

    run = run_playbook(tmp_path, [app_task(emulator, display_name="purged"),
                                  app_task(emulator, "purge", display_name="purged", state="absent", purge=True)])
    assert run.rc == 0, run
    purged = run.task("purge")
    assert purged["changed"] is True
    assert "purge application %s from deleted items" % purged["app_id"] in purged["changes"]
    assert graph.call("GET", "/directory/deletedItems/%s" % purged["object_id"])[0] == 404


def test_owners(emulator, tmp_path):
    admin_user = emulator.endpoints["admin"]["username"]
    task = app_task(emulator, display_name=APP_NAME, owners=[admin_user])
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    created = run.task("app")
    assert created["owners"] == [admin_user]
    assert "add owner %s" % admin_user in created["changes"]

    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0 and run.task("app")["changed"] is False
    assert writes(emulator) == 0

    graph = AdminGraph(emulator)
    status, body = graph.call("GET", "/users/%s" % admin_user)
    assert status == 200
    run = run_playbook(tmp_path, [app_task(emulator, display_name=APP_NAME, owners=[body["id"]]),
                                  app_task(emulator, "none", display_name=APP_NAME, owners=[]),
                                  app_task(emulator, "unknown", display_name=APP_NAME, owners=["nobody@example.invalid"])])
    assert run.task("app")["changed"] is False
    assert run.task("none")["changed"] is True and run.task("none")["owners"] == []
    assert run.task("unknown")["_status"] == "failed"
    assert "Owner 'nobody@example.invalid' was not found" in run.task("unknown")["msg"]


# ------------------------------------------------------------------------------------------------ device code

@pytest.fixture(scope="module")
def auto_approve_emulator(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emulator-auto-approve"), "--auto-approve")
    yield emu
    emu.process.terminate()
    try:
        emu.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        emu.process.kill()


def test_device_code_sign_in_on_the_controller(auto_approve_emulator, tmp_path, cert_a):
    emulator = auto_approve_emulator
    emulator.reset()
    task = app_task(emulator, auth=endpoint_auth(emulator), admin_sign_in="device_code",
                    display_name=APP_NAME, certificates=[cert_a["certificate_path"]],
                    api_permissions={"Microsoft Graph": LEAST_PRIVILEGE}, admin_consent=True)
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    created = run.task("app")
    assert created["changed"] is True
    assert "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code" \
        in run.stdout
    # The token never shows up: not in the task's echoed arguments, not in the output.
    assert created["invocation"]["module_args"]["access_token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert "eyJ" not in run.stdout + json.dumps(run.records)
    assert token_roles(certificate_token(emulator, created["app_id"], cert_a)) == sorted(LEAST_PRIVILEGE)

    # Without tenant_id, the signed-in account's tenant is used.
    auth = endpoint_auth(emulator)
    auth.pop("tenant_id")
    emulator.admin("POST", "stats/reset")
    run = run_playbook(tmp_path, [app_task(emulator, auth=auth, admin_sign_in="device_code", display_name=APP_NAME,
                                           certificates=[cert_a["certificate_path"]],
                                           api_permissions={"Microsoft Graph": LEAST_PRIVILEGE}, admin_consent=True),
                                  info_task(emulator, "info", display_name=APP_NAME)])
    assert run.rc == 0, run
    assert run.task("app")["changed"] is False
    assert run.task("app")["tenant_id"] == emulator.tenant_id
    assert writes(emulator) == 0

    # Another admin credential together with device_code is a clear error.
    run = run_playbook(tmp_path, [app_task(emulator, admin_sign_in="device_code", display_name=APP_NAME)])
    assert run.rc != 0
    assert "do not also pass client_id, client_secret" in run.task("app")["msg"]


def test_device_code_approved_while_the_play_waits(emulator, tmp_path):
    """The person signs in (here: the admin API stands in for the browser) while ansible-playbook waits."""
    import yaml

    task = app_task(emulator, auth=endpoint_auth(emulator), admin_sign_in="device_code", display_name="waited for",
                    api_permissions={"Microsoft Graph": ["Organization.Read.All"]}, admin_consent=True,
                    device_code_timeout=120)
    playbook = tmp_path / "device.yml"
    playbook.write_text(yaml.safe_dump([{"name": "device", "hosts": "localhost", "gather_facts": False,
                                         "tasks": [task]}], sort_keys=False))
    env = ansible_env(tmp_path, {"PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(
        [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
         "-e", "ansible_python_interpreter=%s" % PYTHON],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    code = None
    deadline = time.monotonic() + 120
    try:
        while code is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"enter the code (\S+) to authenticate", line)
            if match:
                code = match.group(1)
        assert code, "".join(lines)
        # The play is waiting for the sign-in now.
        time.sleep(1.5)
        assert proc.poll() is None
        admin = emulator.endpoints["admin"]
        emulator.admin("POST", "devicecode/approve", {"user_code": code, "username": admin["username"],
                                                      "password": admin["password"]})
        rest = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "changed=1" in output
    assert len(AdminGraph(emulator).apps_named("waited for")) == 1


def test_the_admin_secret_never_reaches_module_arguments_debug_output_or_payloads(emulator, tmp_path):
    secret = emulator.endpoints["admin"]["client_secret"]
    task = {"name": "info", "idsync.entra.app_registration_info": dict(admin_auth(emulator),
                                                                        display_name="nothing such")}
    run = run_playbook(tmp_path, [task], env={"ANSIBLE_DEBUG": "1", "ANSIBLE_KEEP_REMOTE_FILES": "1"})
    assert run.rc == 0, run
    assert run.task("info")["applications"] == []
    assert secret not in run.output                             # ANSIBLE_DEBUG logs module arguments
    payloads = [p for p in (tmp_path / "ansible-remote").rglob("*") if p.is_file()]
    assert payloads                                             # the kept AnsiballZ payloads are there ...
    for path in payloads:                                       # ... and hold a token, never the secret
        assert secret.encode() not in path.read_bytes(), path
