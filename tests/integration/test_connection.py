"""idsync.entra.connection and idsync.entra.connection_info through real ansible-playbook runs.

The "Test connection" cases run against the tenant emulator: the test registers its own certificate on a new
application with the emulator's admin (client secret) through plain Graph calls, consents Graph app roles, and
lets the module sign in with that certificate.
"""
import json
import os
import sqlite3
import stat
import sys
from pathlib import Path

import pytest
import requests

from ansible_runner import COLLECTIONS, run_playbook

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils import keypair  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.store import Store  # noqa: E402

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "0b7a8d6e-3f9c-4b1e-9a2d-5c6e7f8a9b0c"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EMULATOR_READY = (Path(__file__).resolve().parents[1] / "emulator" / "graph.py").exists()
needs_emulator = pytest.mark.skipif(not EMULATOR_READY, reason="tests/emulator/graph.py is not there yet")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def make_pair(directory, name="connector", **options):
    directory = Path(directory)
    params = {
        "certificate_path": str(directory / ("%s.crt" % name)),
        "private_key_path": str(directory / ("%s.key" % name)),
    }
    params.update(options)
    result = keypair.ensure_certificate(params)
    return {
        "certificate_path": result["certificate_path"],
        "private_key_path": result["private_key_path"],
        "thumbprint": result["thumbprint"],
        "thumbprint_sha256": result["thumbprint_sha256"],
        "certificate_base64": result["certificate_base64"],
    }


@pytest.fixture
def pair(tmp_path):
    return make_pair(tmp_path / "pki")


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "state" / "store.db")


def conn_task(_task="conn", **options):
    return {"name": _task, "idsync.entra.connection": options, "register": "r"}


def info_task(_task="info", **options):
    return {"name": _task, "idsync.entra.connection_info": options, "register": "r"}


def azure_options(pair, store_path, **extra):
    options = {
        "name": "contoso",
        "connector": "azure_ad",
        "tenant_id": TENANT,
        "application_id": APP,
        "certificate_thumbprint": pair["thumbprint"],
        "certificate_path": pair["certificate_path"],
        "private_key_path": pair["private_key_path"],
        "store": store_path,
    }
    options.update(extra)
    return options


def changed(options, **updates):
    result = dict(options)
    result.update(updates)
    return result


def store_rows(store_path):
    """Everything in the connections table, timestamps included (to prove 'unchanged')."""
    if not os.path.exists(store_path):
        return None
    with Store(store_path) as s:
        return s.list_connections()


# -- saving -------------------------------------------------------------------------------------------------------

def test_save_idempotent_and_diff(tmp_path, pair, store_path):
    run = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path))], diff=True)
    assert run.rc == 0, run
    r = run.task("conn")
    assert r["changed"] is True
    assert r["msg"] == "connection contoso created"
    settings = r["connection"]["settings"]
    assert settings == {
        "auth": "certificate",
        "tenant_id": TENANT,
        "application_id": APP,
        "certificate_thumbprint": pair["thumbprint"],
        "certificate_path": pair["certificate_path"],
        "private_key_path": pair["private_key_path"],
        "tenant_environment": "azure_global",
    }
    assert r["connection"]["created"] and r["connection"]["updated"]
    assert r["diff"]["before"] == {}
    assert r["diff"]["after"]["settings"] == settings
    assert "test" not in r
    # the store file and its directory are private
    assert mode(store_path) == 0o600
    assert mode(os.path.dirname(store_path)) == 0o700
    with Store(store_path) as s:
        assert s.get_connection("contoso")["settings"] == settings

    again = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path))], diff=True)
    r2 = again.task("conn")
    assert r2["changed"] is False, again
    assert r2["msg"] == "connection contoso is up to date"
    assert r2["connection"]["updated"] == r["connection"]["updated"]
    assert "changed=0" in again.stdout

    # thumbprint given lower-case with separators, GUIDs upper-case: still the same connection
    colon = ":".join(pair["thumbprint"][i:i + 2] for i in range(0, 40, 2)).lower()
    variant = azure_options(pair, store_path, certificate_thumbprint=colon, tenant_id=TENANT.upper(),
                            application_id=APP.upper())
    same = run_playbook(tmp_path, [conn_task(**variant)])
    assert same.task("conn")["changed"] is False, same

    # a real change: the diff shows the settings before and after
    ch = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path, tenant_environment="azure_gcc_high"))],
                      diff=True)
    rc = ch.task("conn")
    assert rc["changed"] is True and rc["msg"] == "connection contoso updated"
    assert rc["diff"]["before"]["settings"]["tenant_environment"] == "azure_global"
    assert rc["diff"]["after"]["settings"]["tenant_environment"] == "azure_gcc_high"
    assert rc["connection"]["created"] == r["connection"]["created"]


def test_thumbprint_taken_from_certificate_when_omitted(tmp_path, pair, store_path):
    options = azure_options(pair, store_path)
    del options["certificate_thumbprint"]
    r = run_playbook(tmp_path, [conn_task(**options)]).task("conn")
    assert r["connection"]["settings"]["certificate_thumbprint"] == pair["thumbprint"]
    # the SHA-256 thumbprint is accepted too; the SHA-1 one is stored
    r2 = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path, certificate_thumbprint=pair["thumbprint_sha256"]))])
    assert r2.task("conn")["changed"] is False, r2


def test_check_mode_changes_nothing(tmp_path, pair, store_path):
    # fresh: the store is not even created
    run = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path))], check=True, diff=True)
    r = run.task("conn")
    assert r["changed"] is True and r["msg"] == "connection contoso would be created"
    assert r["diff"]["after"]["settings"]["tenant_id"] == TENANT
    assert r["connection"]["created"] is None
    assert not os.path.exists(store_path)
    assert not os.path.exists(os.path.dirname(store_path))

    run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path))])
    before = store_rows(store_path)
    upd = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path, tenant_environment="azure_china"))],
                       check=True, diff=True)
    ru = upd.task("conn")
    assert ru["changed"] is True and "would be updated" in ru["msg"]
    assert ru["connection"]["settings"]["tenant_environment"] == "azure_china"
    assert store_rows(store_path) == before

    gone = run_playbook(tmp_path, [conn_task(name="contoso", state="absent", store=store_path)],
                        check=True)
    assert gone.task("conn")["changed"] is True
    assert store_rows(store_path) == before


def _prepare_existing(tmp_path, pair, store_path):
    run = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path))])
    assert run.rc == 0, run
    return store_rows(store_path)


def test_bad_input_is_a_clear_error_and_store_unchanged(tmp_path, pair, store_path):
    """Each bad input fails its task with a clear message; the saved connection stays exactly as it was.

    All cases run as tasks of one playbook (ignore_errors), to keep the number of ansible-playbook runs down.
    """
    before = _prepare_existing(tmp_path, pair, store_path)
    other = make_pair(tmp_path / "other")
    missing_key = str(tmp_path / "nope.key")
    cases = [
        ("bad tenant", {"tenant_id": "not-a-guid"},
         "tenant_id 'not-a-guid' is neither a GUID nor a domain: pass the Directory (tenant) ID as the Azure portal shows it"),
        ("bad application", {"application_id": "1234"},
         "application_id '1234' is not a GUID: pass the Application (client) ID"),
        ("bad thumbprint format", {"certificate_thumbprint": "XYZ"},
         "certificate_thumbprint: 'XYZ' is not a certificate thumbprint"),
        ("http graph endpoint", {"graph_endpoint": "http://graph.example"}, "graph_endpoint must be an https:// URL"),
        ("csv option on azure_ad", {"path": "/tmp/x.csv"}, "path does not apply to a azure_ad connection"),
        ("thumbprint mismatch", {"certificate_thumbprint": other["thumbprint"]},
         "Certificate thumbprint %s does not match the certificate at %s (its thumbprint is %s)."
         % (other["thumbprint"], pair["certificate_path"], pair["thumbprint"])),
        ("key of another certificate", {"private_key_path": other["private_key_path"]},
         "does not belong to the certificate"),
        ("missing key file", {"private_key_path": missing_key},
         "private_key_path '%s' does not exist" % missing_key),
    ]
    tasks = []
    for task_name, change, _message in cases:
        task = conn_task(task_name, **azure_options(pair, store_path, **change))
        task["ignore_errors"] = True
        tasks.append(task)
    tasks.append({"name": "loosen key", "ansible.builtin.file": {"path": pair["private_key_path"], "mode": "0644"}})
    world = conn_task("world-readable key", **azure_options(pair, store_path, tenant_environment="azure_gcc"))
    world["ignore_errors"] = True
    tasks.append(world)
    cases.append(("world-readable key", None,
                  "Private key file '%s' is readable by others (mode 0644): restrict it to its owner with 'chmod 600"
                  % pair["private_key_path"]))
    run = run_playbook(tmp_path, tasks)
    assert run.rc == 0, run  # all failures ignored
    for task_name, _change, message in cases:
        r = run.task(task_name)
        assert r["_status"] == "failed", (task_name, r)
        assert message in r["msg"], (task_name, r["msg"])
        assert "connection" not in r
    assert store_rows(store_path) == before


def test_group_readable_key_on_fresh_store(tmp_path, pair, store_path):
    os.chmod(pair["private_key_path"], 0o640)
    run = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path))])
    assert run.failed("conn")
    assert "readable by its group" in run.task("conn")["msg"]
    assert not os.path.exists(store_path)  # validation happens before the store is opened


def test_encrypted_key_needs_passphrase_which_is_never_stored(tmp_path, store_path):
    pair = make_pair(tmp_path / "enc", passphrase="pass-phrase-123")
    run = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path))])
    assert run.failed("conn") and "is encrypted" in run.task("conn")["msg"]
    ok = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path, private_key_passphrase="pass-phrase-123"))])
    assert ok.rc == 0, ok
    assert "pass-phrase-123" not in ok.output
    assert "pass-phrase-123" not in json.dumps(store_rows(store_path))


def test_update_authentication_data_from_client_secret(tmp_path, pair, store_path):
    """A connection saved by an older setup with a client secret is switched to the certificate in place."""
    with Store(store_path):
        pass
    db = sqlite3.connect(store_path)
    legacy = {"auth": "client_secret", "tenant_id": TENANT, "client_id": APP, "client_secret": "legacy-s3cret-value",
              "tenant_environment": "azure_global"}
    db.execute("INSERT INTO connections VALUES (?, ?, ?, ?, ?)",
               ("contoso", "azure_ad", json.dumps(legacy), "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"))
    db.commit()
    db.close()

    info = run_playbook(tmp_path, [info_task(store=store_path, name="contoso")])
    listed = info.task("info")["connections"]
    assert listed[0]["settings"]["auth"] == "client_secret"
    assert "client_secret" not in listed[0]["settings"]
    assert "legacy-s3cret-value" not in info.output

    run = run_playbook(tmp_path, [conn_task(**azure_options(pair, store_path))], diff=True)
    r = run.task("conn")
    assert r["changed"] is True, run
    assert "switched from client secret to certificate" in r["msg"]
    assert "legacy-s3cret-value" not in run.output
    assert "client_secret" not in r["diff"]["before"]["settings"]
    rec = Store(store_path).get_connection("contoso")
    assert rec["created"] == "2020-01-01T00:00:00Z"
    assert rec["settings"]["auth"] == "certificate"
    assert "client_secret" not in rec["settings"] and "client_id" not in rec["settings"]
    assert rec["settings"]["certificate_thumbprint"] == pair["thumbprint"]


def test_state_absent(tmp_path, pair, store_path):
    _prepare_existing(tmp_path, pair, store_path)
    run = run_playbook(tmp_path, [conn_task(name="contoso", state="absent", store=store_path)],
                       diff=True)
    r = run.task("conn")
    assert r["changed"] is True and r["diff"]["after"] == {} and r["diff"]["before"]["name"] == "contoso"
    assert store_rows(store_path) == []
    again = run_playbook(tmp_path, [conn_task(name="contoso", state="absent", store=store_path)])
    assert again.task("conn")["changed"] is False


# -- csv ----------------------------------------------------------------------------------------------------------

def test_csv_connection(tmp_path, store_path):
    csv_path = tmp_path / "hr.csv"
    csv_path.write_text("employeeId;givenName;groups\n1;Ann;a|b\n2;Bob;\n", encoding="utf-8")
    options = {"name": "hr", "connector": "csv", "path": str(csv_path), "delimiter": ";", "key": ["employeeId"],
               "multi_value_separator": "|", "store": store_path}
    run = run_playbook(tmp_path, [conn_task(test=True, **options)])
    assert run.rc == 0, run
    r = run.task("conn")
    assert r["changed"] is True
    assert r["connection"]["settings"] == {"path": str(csv_path), "delimiter": ";", "encoding": "utf-8",
                                           "key": ["employeeId"], "multi_value_separator": "|"}
    assert r["test"]["ok"] is True and r["test"]["columns"] == ["employeeId", "givenName", "groups"]
    assert r["test"]["rows"] == 2
    assert run_playbook(tmp_path, [conn_task(**options)]).task("conn")["changed"] is False

    before = store_rows(store_path)
    bad = run_playbook(tmp_path, [conn_task(test=True, **changed(options, key=["personnelNumber"], encoding="utf-8-sig"))])
    rb = bad.task("conn")
    assert rb["_status"] == "failed"
    assert "key column(s) personnelNumber are not in the header" in rb["msg"] and "left unchanged" in rb["msg"]
    assert rb["test"]["ok"] is False
    assert store_rows(store_path) == before

    wrong = run_playbook(tmp_path, [conn_task(**changed(options, tenant_id=TENANT))])
    assert wrong.failed("conn") and "tenant_id does not apply to a csv connection" in wrong.task("conn")["msg"]
    same_sep = run_playbook(tmp_path, [conn_task(**changed(options, multi_value_separator=";"))])
    assert same_sep.failed("conn") and "must differ from delimiter" in same_sep.task("conn")["msg"]


# -- connection_info ----------------------------------------------------------------------------------------------

def test_connection_info(tmp_path, pair, store_path):
    missing = run_playbook(tmp_path, [info_task(store=store_path)])
    assert missing.task("info")["connections"] == [] and not os.path.exists(store_path)

    csv_path = tmp_path / "x.csv"
    csv_path.write_text("id\n1\n")
    run = run_playbook(tmp_path, [
        conn_task("a", **azure_options(pair, store_path)),
        conn_task("b", name="files", connector="csv", path=str(csv_path), key=["id"], store=store_path),
        info_task("all", store=store_path),
        info_task("one", store=store_path, name="files", test=True),
        info_task("none", store=store_path, name="nope"),
    ], check=False)
    assert run.rc == 0, run
    all_ = run.task("all")
    assert all_["changed"] is False
    assert [c["name"] for c in all_["connections"]] == ["contoso", "files"]
    assert all_["connections"][0]["settings"]["certificate_thumbprint"] == pair["thumbprint"]
    one = run.task("one")["connections"]
    assert len(one) == 1 and one[0]["test"]["ok"] is True
    assert run.task("none")["connections"] == []
    # check mode: same answer
    chk = run_playbook(tmp_path, [info_task("all", store=store_path)], check=True)
    assert [c["name"] for c in chk.task("all")["connections"]] == ["contoso", "files"]


# -- Test connection against the emulator ------------------------------------------------------------------------

class TenantAdmin:
    """Plain Graph calls with the emulator's admin app (client secret), to set up what the modules then use."""

    def __init__(self, emulator):
        self.emu = emulator
        ep = emulator.endpoints
        self.verify = ep["ca_path"]
        self.graph = ep["graph_endpoint"].rstrip("/")
        if not self.graph.endswith("/v1.0"):
            self.graph += "/v1.0"
        token = requests.post(
            "%s/%s/oauth2/v2.0/token" % (ep["authority_host"].rstrip("/"), ep["tenant_id"]),
            data={
                "grant_type": "client_credentials",
                "client_id": ep["admin"]["client_id"],
                "client_secret": ep["admin"]["client_secret"],
                "scope": "https://graph.microsoft.com/.default",
            },
            verify=self.verify,
            timeout=60,
        )
        token.raise_for_status()
        self.headers = {"Authorization": "Bearer " + token.json()["access_token"]}

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        response = requests.request(method, self.graph + path, json=body, headers=self.headers, verify=self.verify, timeout=60)
        assert response.status_code in ok, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def register_app(self, pair, permissions, name="idsync connector test"):
        app = self.call("POST", "/applications", {
            "displayName": name,
            "keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": pair["certificate_base64"],
                                "displayName": "CN=idsync.entra connector"}],
        })
        sp = self.call("POST", "/servicePrincipals", {"appId": app["appId"]})
        graph_sp = self.call("GET", "/servicePrincipals?$filter=appId eq '%s'" % GRAPH_APP_ID)["value"][0]
        roles = dict((r["value"], r["id"]) for r in graph_sp["appRoles"])
        for permission in permissions:
            self.call("POST", "/servicePrincipals/%s/appRoleAssignedTo" % graph_sp["id"], {
                "principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": roles[permission]})
        return app["appId"]


def emulator_options(emulator, pair, store_path, app_id, **extra):
    ep = emulator.endpoints
    options = azure_options(pair, store_path, tenant_id=ep["tenant_id"], application_id=app_id,
                            authority_host=ep["authority_host"], graph_endpoint=ep["graph_endpoint"], ca_path=ep["ca_path"])
    options.update(extra)
    return options


@needs_emulator
def test_test_connection_green(tmp_path, emulator, pair, store_path):
    admin = TenantAdmin(emulator)
    app_id = admin.register_app(pair, ["User.ReadWrite.All", "Group.ReadWrite.All", "Organization.Read.All"])
    run = run_playbook(tmp_path, [conn_task(test=True, **emulator_options(emulator, pair, store_path, app_id))])
    assert run.rc == 0, run
    r = run.task("conn")
    assert r["changed"] is True
    t = r["test"]
    assert t["ok"] is True and t["error"] is None, t
    assert t["organization"]["id"] == emulator.endpoints["tenant_id"]
    assert t["granted_permissions"] == ["Group.ReadWrite.All", "Organization.Read.All", "User.ReadWrite.All"]
    assert t["missing_permissions"] == []
    rec = store_rows(store_path)[0]
    assert rec["settings"]["ca_path"] == emulator.endpoints["ca_path"]
    assert "access_token" not in json.dumps(rec) and "eyJ" not in json.dumps(rec)

    # idempotent, still tested (in check mode too: the test only reads)
    again = run_playbook(tmp_path, [conn_task(test=True, **emulator_options(emulator, pair, store_path, app_id))], check=True)
    ra = again.task("conn")
    assert ra["changed"] is False and ra["test"]["ok"] is True, again

    info = run_playbook(tmp_path, [info_task(store=store_path, test=True)])
    assert info.task("info")["connections"][0]["test"]["ok"] is True, info


@needs_emulator
def test_test_connection_names_missing_permissions(tmp_path, emulator, pair, store_path):
    admin = TenantAdmin(emulator)
    app_id = admin.register_app(pair, ["User.ReadWrite.All"])
    run = run_playbook(tmp_path, [conn_task(test=True, **emulator_options(emulator, pair, store_path, app_id))])
    r = run.task("conn")
    assert r["_status"] == "failed"
    assert r["test"]["missing_permissions"] == ["Group.ReadWrite.All", "Organization.Read.All"]
    assert "Group.ReadWrite.All, Organization.Read.All" in r["msg"]
    assert "nothing was saved" in r["msg"]
    # one message: the refused GET /organization is the missing consent's consequence, not a second problem
    assert "GET /organization" not in r["msg"] and r["msg"].count(";") == 1, r["msg"]
    assert not os.path.exists(store_path) or store_rows(store_path) == []

    # GET /organization needs Organization.Read.All (or Directory.Read.All): a custom requirement without it still
    # fails on that read; one the app fully meets passes
    partial = run_playbook(tmp_path, [conn_task(test=True, required_permissions=["User.ReadWrite.All"],
                                                **emulator_options(emulator, pair, store_path, app_id))])
    rp = partial.task("conn")
    assert rp["_status"] == "failed" and rp["test"]["missing_permissions"] == []
    assert "GET /organization failed" in rp["msg"]

    other = make_pair(tmp_path / "other")
    app2 = admin.register_app(other, ["User.ReadWrite.All", "Organization.Read.All"], name="second")
    ok = run_playbook(tmp_path, [conn_task(test=True, required_permissions=["User.ReadWrite.All", "Organization.Read.All"],
                                           **emulator_options(emulator, other, store_path, app2))])
    assert ok.rc == 0, ok.output[-3000:]
    assert ok.task("conn")["test"]["ok"] is True
    default = run_playbook(tmp_path, [conn_task(test=True, **emulator_options(emulator, other, store_path, app2))])
    rd = default.task("conn")
    assert rd["_status"] == "failed" and rd["test"]["missing_permissions"] == ["Group.ReadWrite.All"]
    assert "lacks the Microsoft Graph application permission Group.ReadWrite.All" in rd["msg"]
    assert "left unchanged" in rd["msg"]


@needs_emulator
def test_tenant_given_as_a_verified_domain(tmp_path, emulator, pair, store_path):
    """The tenant as a verified domain is saved and tested like its GUID; a domain of no tenant fails the test."""
    admin = TenantAdmin(emulator)
    app_id = admin.register_app(pair, ["User.ReadWrite.All", "Group.ReadWrite.All", "Organization.Read.All"])
    options = emulator_options(emulator, pair, store_path, app_id)
    domain = emulator.endpoints["tenant_domain"]
    run = run_playbook(tmp_path, [conn_task(test=True, **dict(options, tenant_id=domain.upper()))])
    assert run.rc == 0, run
    assert run.task("conn")["test"]["ok"] is True
    assert store_rows(store_path)[0]["settings"]["tenant_id"] == domain.lower()
    wrong = run_playbook(tmp_path, [conn_task(test=True, **dict(options, name="other", tenant_id="fabrikam.example"))])
    msg = wrong.task("conn")["msg"]
    assert wrong.rc != 0 and "Tenant 'fabrikam.example' was not found" in msg, msg
    bad = run_playbook(tmp_path, [conn_task(test=True, **dict(options, name="other", tenant_id="not a tenant"))])
    msg = bad.task("conn")["msg"]
    assert "neither a GUID nor a domain" in msg and "not a tenant" in msg, msg


@needs_emulator
def test_directory_readwrite_covers_user_and_group_write(tmp_path, emulator, pair, store_path):
    admin = TenantAdmin(emulator)
    app_id = admin.register_app(pair, ["Directory.ReadWrite.All", "Organization.Read.All"])
    run = run_playbook(tmp_path, [conn_task(test=True, **emulator_options(emulator, pair, store_path, app_id))])
    assert run.rc == 0, run
    assert run.task("conn")["test"]["missing_permissions"] == []


@needs_emulator
def test_wrong_tenant_environment_names_the_likely_cause(tmp_path, emulator, pair, store_path):
    """The emulator is a global-cloud tenant: a connection saved for GCC High asks for a token for
    https://graph.microsoft.us, which real Entra refuses (AADSTS500011); the test fails with one sentence naming
    tenant_environment, and nothing is saved."""
    admin = TenantAdmin(emulator)
    app_id = admin.register_app(pair, ["User.ReadWrite.All", "Group.ReadWrite.All", "Organization.Read.All"])
    options = emulator_options(emulator, pair, store_path, app_id, tenant_environment="azure_gcc_high")
    run = run_playbook(tmp_path, [conn_task(test=True, **options)])
    r = run.task("conn")
    assert r["_status"] == "failed", r
    assert "tenant_environment (azure_gcc_high) is probably wrong for this tenant" in r["msg"], r["msg"]
    assert "https://graph.microsoft.us" in r["msg"]
    assert not store_rows(store_path)


@needs_emulator
def test_failed_test_leaves_earlier_connection_untouched(tmp_path, emulator, store_path):
    admin = TenantAdmin(emulator)
    good = make_pair(tmp_path / "good")
    app_id = admin.register_app(good, ["User.ReadWrite.All", "Group.ReadWrite.All", "Organization.Read.All"])
    first = run_playbook(tmp_path, [conn_task(test=True, **emulator_options(emulator, good, store_path, app_id))])
    assert first.rc == 0, first
    before = store_rows(store_path)

    # a new certificate that is not registered on the app: the test fails, the saved connection stays
    unregistered = make_pair(tmp_path / "new")
    run = run_playbook(tmp_path, [conn_task(test=True, **emulator_options(emulator, unregistered, store_path, app_id))])
    r = run.task("conn")
    assert r["_status"] == "failed"
    assert "Sign-in failed" in r["msg"] and "left unchanged" in r["msg"]
    assert "not registered on application" in r["msg"]
    assert store_rows(store_path) == before

    # an unknown application
    run = run_playbook(tmp_path, [conn_task(test=True, **emulator_options(
        emulator, good, store_path, "11111111-2222-3333-4444-555555555555"))])
    r = run.task("conn")
    assert r["_status"] == "failed" and "was not found" in r["msg"]
    assert store_rows(store_path) == before
