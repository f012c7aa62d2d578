"""idsync.entra.tenant_info through the real ``ansible`` and ``ansible-playbook`` CLIs against the tenant emulator:
client secret and certificate sign-in, module_defaults for group/idsync.entra.graph, one clear sentence for each
token error with no secret in the output, retries through injected faults, and ansible-doc."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_runner import COLLECTIONS, VENV_BIN, ansible_env, run_playbook
from adhoc_support import ORGANIZATION_READ_ALL, USER_READ_ALL, run_adhoc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from idsync_testlib import cert_pem, key_pem, make_cert, write  # noqa: E402

EMULATOR_READY = (Path(__file__).resolve().parents[1] / "emulator" / "graph.py").exists()
needs_emulator = pytest.mark.skipif(not EMULATOR_READY, reason="tests/emulator is not there yet")


def make_pem(directory, name, mode=0o600):
    cert, key = make_cert(name)
    path = write(Path(directory) / (name + ".pem"), cert_pem(cert) + key_pem(key), mode)
    import binascii
    from cryptography.hazmat.primitives import hashes
    thumb = binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode().upper()
    return path, cert.public_bytes(serialization.Encoding.DER), thumb


@needs_emulator
def test_adhoc_client_secret(tmp_path, emulator, emulator_auth):
    secret = emulator.admin_app["client_secret"]
    args = dict(emulator_auth, client_id=emulator.admin_app["client_id"], client_secret=secret,
                required_permissions=["Organization.Read.All"])
    run = run_adhoc(tmp_path, "idsync.entra.tenant_info", args, check=True)
    assert run.rc == 0, run
    result = run.result
    assert result["changed"] is False
    assert result["tenant_id"] == emulator.tenant_id
    assert result["organization"]["id"] == emulator.tenant_id
    assert any(d["name"] == emulator.endpoints["tenant_domain"] for d in result["organization"]["verifiedDomains"])
    assert result["organization"]["displayName"]
    assert result["tenant_environment"] == "azure_global"
    assert result["endpoints"] == {"authority": "{0}/{1}".format(emulator.endpoints["authority_host"],
                                                                 emulator.tenant_id),
                                   "graph_url": emulator.endpoints["graph_endpoint"] + "/v1.0"}
    assert "Organization.Read.All" in result["granted_permissions"]
    assert result["granted_permissions"] == sorted(result["granted_permissions"])
    assert result["credential"] == {"type": "client_secret", "client_id": emulator.admin_app["client_id"]}
    assert secret not in run.output


@needs_emulator
def test_playbook_certificate_with_module_defaults(tmp_path, emulator, emulator_auth, graph_admin):
    path, der, thumb = make_pem(tmp_path, "itest-app")
    app = graph_admin.create_certificate_app(der, roles=(ORGANIZATION_READ_ALL, USER_READ_ALL))
    colon_thumb = ":".join(thumb[i:i + 2] for i in range(0, 40, 2)).lower()
    defaults = dict(emulator_auth, client_id=app["appId"], certificate_path=path)
    tasks = [{"name": "with defaults", "module_defaults": {"group/idsync.entra.graph": defaults}, "block": [
        {"name": "info", "idsync.entra.tenant_info": {"required_permissions": ["User.Read.All"]}},
        {"name": "info with thumbprint", "idsync.entra.tenant_info": {"certificate_thumbprint": colon_thumb}},
        {"name": "missing permission", "idsync.entra.tenant_info": {"required_permissions": ["User.ReadWrite.All"]},
         "ignore_errors": True},
    ]}]
    run = run_playbook(tmp_path, tasks)
    assert run.rc == 0, run
    info = run.task("info")
    assert info["_status"] == "ok" and info["tenant_id"] == emulator.tenant_id
    assert info["granted_permissions"] == ["Organization.Read.All", "User.Read.All"]
    assert info["credential"]["type"] == "certificate" and info["credential"]["thumbprint"] == thumb
    assert info["credential"]["client_id"] == app["appId"]
    assert run.task("info with thumbprint")["_status"] == "ok"
    missing = run.task("missing permission")
    assert missing["_status"] == "failed"
    assert missing["msg"] == ("Application {0} lacks the Microsoft Graph application permission(s) User.ReadWrite.All "
                              "in tenant {1}: add them under API permissions and grant admin consent.".format(
                                  app["appId"], emulator.tenant_id))
    assert "PRIVATE KEY" not in run.output


@needs_emulator
def test_token_errors_are_one_clear_sentence(tmp_path, emulator, emulator_auth, graph_admin):
    admin = emulator.admin_app
    wrong_secret = "Wr0ng~SecretValue.that-must-not-leak"
    registered, der, _ = make_pem(tmp_path, "registered")
    app = graph_admin.create_certificate_app(der)
    unregistered, _, unregistered_thumb = make_pem(tmp_path, "unregistered")
    loose, _, _ = make_pem(tmp_path, "loose", mode=0o644)
    _, _, registered_thumb = make_pem(tmp_path / "..", "other")  # a thumbprint of some other certificate
    base = dict(emulator_auth)
    # Secrets come from variables, as they would from a vault: ansible prints the failing task's source.
    cases = {
        "unknown tenant": dict(base, tenant_id="nosuchtenant.onmicrosoft.com", client_id=admin["client_id"],
                               client_secret="{{ admin_secret }}"),
        "unknown app": dict(base, client_id="22222222-2222-2222-2222-222222222222",
                            client_secret="{{ admin_secret }}"),
        "wrong secret": dict(base, client_id=admin["client_id"], client_secret="{{ wrong_secret }}"),
        "certificate not registered": dict(base, client_id=app["appId"], certificate_path=unregistered),
        "thumbprint mismatch": dict(base, client_id=app["appId"], certificate_path=registered,
                                    certificate_thumbprint=registered_thumb),
        "key world-readable": dict(base, client_id=app["appId"], certificate_path=loose),
    }
    tasks = [{"name": name, "idsync.entra.tenant_info": args, "ignore_errors": True} for name, args in cases.items()]
    run = run_playbook(tmp_path, tasks, extra_vars={"admin_secret": admin["client_secret"],
                                                    "wrong_secret": wrong_secret})
    assert run.rc == 0, run
    tenant = emulator.tenant_id
    expected = {
        "unknown tenant": "Tenant 'nosuchtenant.onmicrosoft.com' was not found in azure_global ({0}): check tenant_id "
                          "(the Directory (tenant) ID GUID or a verified domain of the tenant) and "
                          "tenant_environment.".format(emulator.endpoints["authority_host"].split("://")[1]),
        "unknown app": "Application '22222222-2222-2222-2222-222222222222' was not found in tenant '{0}': check "
                       "client_id (the Application (client) ID of the app registration) and that the application "
                       "exists in, or was consented to, that tenant.".format(tenant),
        "wrong secret": "The client secret for application {0} in tenant {1} is not valid: pass the secret's Value "
                        "(not its Secret ID) from Certificates & secrets, or create a new client "
                        "secret.".format(admin["client_id"], tenant),
        "certificate not registered": "The certificate with thumbprint {0} is not registered on application {1} in "
                                      "tenant {2}: upload it under Certificates & secrets, or pass the thumbprint of a "
                                      "certificate that is.".format(unregistered_thumb, app["appId"], tenant),
    }
    for name, sentence in expected.items():
        result = run.task(name)
        assert result["_status"] == "failed", name
        assert result["msg"] == sentence, (name, result["msg"])
        assert result["error"]["code"].startswith("AADSTS") and result["error"]["trace_id"], name
    mismatch = run.task("thumbprint mismatch")
    assert mismatch["_status"] == "failed"
    assert "certificate_thumbprint {0} does not match the certificate in '{1}'".format(registered_thumb, registered) \
        in mismatch["msg"]
    assert run.task("key world-readable")["msg"] == (
        "Private key file '{0}' is readable by others (mode 0644): restrict it to its owner with "
        "'chmod 600 {0}'.".format(loose))
    for secret in (admin["client_secret"], wrong_secret):
        assert secret not in run.output
    assert "PRIVATE KEY" not in run.output and "eyJ" not in run.output


@needs_emulator
def test_transient_faults_are_retried(tmp_path, emulator, emulator_auth):
    emulator.admin("POST", "faults", {"path": "/v1.0/organization", "method": "GET", "count": 2, "status": 503,
                                      "retry_after": 1})
    emulator.admin("POST", "stats/reset")
    args = dict(emulator_auth, client_id=emulator.admin_app["client_id"],
                client_secret=emulator.admin_app["client_secret"])
    run = run_adhoc(tmp_path, "idsync.entra.tenant_info", args)
    assert run.rc == 0, run
    stats = emulator.admin("GET", "stats")
    assert stats["faults"] == 2  # (the emulator injects faults on Graph only; token retries are unit-tested)
    assert stats["by_method"].get("GET", 0) >= 3  # the organization GET was retried twice


@needs_emulator
def test_adhoc_access_token_names_its_tenant(tmp_path, emulator, graph_admin):
    token = graph_admin.headers["Authorization"][len("Bearer "):]
    run = run_adhoc(tmp_path, "idsync.entra.tenant_info", {
        "access_token": token, "graph_endpoint": emulator.endpoints["graph_endpoint"],
        "ca_path": emulator.endpoints["ca_path"]})
    assert run.rc == 0, run
    assert run.result["tenant_id"] == emulator.tenant_id and run.result["credential"]["type"] == "access_token"
    assert token not in run.output


def test_ansible_doc_renders(tmp_path):
    env = ansible_env(tmp_path)
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "idsync.entra.tenant_info"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "[WARNING]" not in proc.stderr and "[ERROR]" not in proc.stderr
    for word in ("tenant_environment", "certificate_path", "azure_gcc_high", "granted_permissions", "EXAMPLES"):
        assert word in proc.stdout, word
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "--json", "idsync.entra.tenant_info"], env=env,
                          capture_output=True, text=True, timeout=120)
    doc = json.loads(proc.stdout)["idsync.entra.tenant_info"]
    options = doc["doc"]["options"]
    assert {"tenant_id", "client_id", "client_secret", "certificate_path", "access_token", "ca_path",
            "required_permissions"} <= set(options)
    assert doc["return"]["granted_permissions"]["type"] == "list"
    assert os.path.isdir(str(COLLECTIONS))


@needs_emulator
def test_named_connection_fills_the_auth_options(tmp_path, emulator, emulator_auth, graph_admin):
    path, der, thumb = make_pem(tmp_path, "itest-connection")
    app = graph_admin.create_certificate_app(der, roles=(ORGANIZATION_READ_ALL,))
    store = str(tmp_path / "store.db")
    save = dict(emulator_auth, name="contoso", connector="azure_ad", application_id=app["appId"],
                certificate_path=path, store=store)
    tasks = [
        {"name": "save", "idsync.entra.connection": save},
        {"name": "info", "idsync.entra.tenant_info": {"connection": "contoso", "store": store}},
        {"name": "unknown", "idsync.entra.tenant_info": {"connection": "nosuch", "store": store},
         "ignore_errors": True},
    ]
    run = run_playbook(tmp_path, tasks)
    assert run.rc == 0, run
    info = run.task("info")
    assert info["tenant_id"] == emulator.tenant_id
    assert info["credential"] == dict(info["credential"], type="certificate", client_id=app["appId"], thumbprint=thumb)
    assert info["granted_permissions"] == ["Organization.Read.All"]
    unknown = run.task("unknown")
    assert unknown["_status"] == "failed" and "nosuch" in unknown["msg"] and store in unknown["msg"]
