"""AWX-shaped jobs: playbooks run by ansible-runner (AWX's job runner), each job in its own private data directory
with an empty HOME, credentials injected as AWX injects them (the built-in Azure Resource Manager credential for the
administrator's app, the idsync.entra credential type of extensions/awx for the connector's key and the store).

1. configures the application and syncs (PostgreSQL store);
2. runs the same template on "another node" (fresh HOME, same store): no new certificate, 0 writes;
3. syncs leavers: deprovisioned;
4. a job on a SQLite store it lost (fresh HOME, no PostgreSQL) rebuilds ownership from Entra and deprovisions the
   next leavers the same way.
"""
import pytest
import yaml

from awx_support import AZURE_RM_FIELDS, AZURE_RM_INJECTORS, idsync_credential_type, inject, run_job
from sync_support import COLLECTIONS, EmulatorAdmin, hr_workflow, make_people, write_people

import sys
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.idsync.entra.plugins.module_utils import keypair  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.store import Store  # noqa: E402

APP_NAME = "idsync.entra connector"


def write_project(project, domain):
    """The job templates' project, as AWX checks it out: two playbooks and the HR file."""
    (project / "files").mkdir(parents=True)
    workflow = hr_workflow(domain=domain)
    workflow["target"]["connection"] = "entra"
    save_hr = {"name": "Save the HR file connection", "idsync.entra.connection": {
        "name": "hr_file", "connector": "csv", "path": "{{ playbook_dir }}/files/hr.csv", "key": ["EmployeeID"]}}
    sync = {"name": "Sync HR to Entra", "idsync.entra.sync": workflow}
    configure = [{
        "name": "Configure the Entra connection and sync HR", "hosts": "all", "gather_facts": False,
        "roles": [{"role": "idsync.entra.auto_configuration", "vars": {
            "auto_configuration_tenant_id": "{{ lookup('ansible.builtin.env', 'AZURE_TENANT') }}",
            "auto_configuration_admin": {
                "method": "client_secret", "client_id": "{{ lookup('ansible.builtin.env', 'AZURE_CLIENT_ID') }}",
                "client_secret": "{{ lookup('ansible.builtin.env', 'AZURE_SECRET') }}"},
            "auto_configuration_authority_host": "{{ emulator_authority_host }}",
            "auto_configuration_graph_endpoint": "{{ emulator_graph_endpoint }}",
            "auto_configuration_ca_path": "{{ emulator_ca_path }}",
            "auto_configuration_test_retries": 3, "auto_configuration_test_delay": 1}}],
        "tasks": [save_hr, sync]}]
    sync_only = [{"name": "Sync HR to Entra", "hosts": "all", "gather_facts": False, "tasks": [save_hr, sync]}]
    (project / "configure_and_sync.yml").write_text(yaml.safe_dump(configure, sort_keys=False))
    (project / "sync.yml").write_text(yaml.safe_dump(sync_only, sort_keys=False))


@pytest.fixture
def awx(tmp_path, emulator, postgres_url):
    class Awx:
        pass
    env = Awx()
    env.admin = EmulatorAdmin(emulator)
    env.project = tmp_path / "scm"
    write_project(env.project, emulator.endpoints["tenant_domain"])
    env.people = make_people(60)
    ep = emulator.endpoints
    env.extra_vars = {"emulator_authority_host": ep["authority_host"], "emulator_graph_endpoint": ep["graph_endpoint"],
                      "emulator_ca_path": ep["ca_path"]}
    # The administrator made the connector's key pair once and keeps it in the idsync.entra credential.
    pair = keypair.ensure_certificate({"certificate_path": str(tmp_path / "kp" / "c.crt"),
                                       "private_key_path": str(tmp_path / "kp" / "c.key"),
                                       "subject": "CN=" + APP_NAME})
    env.thumbprint = pair["thumbprint"]
    user, _, rest = postgres_url[len("postgresql://"):].partition("@")
    name, _, password = user.partition(":")
    env.store_url = "postgresql://%s@%s" % (name, rest)
    env.azure = inject({"inputs": {"fields": [{"id": f} for f in AZURE_RM_FIELDS]}, "injectors": AZURE_RM_INJECTORS},
                       {"client": ep["admin"]["client_id"], "secret": ep["admin"]["client_secret"],
                        "tenant": ep["tenant_id"], "subscription": "00000000-0000-0000-0000-000000000000"},
                       tmp_path)
    env.idsync = inject(idsync_credential_type(), {
        "tenant_id": ep["tenant_id"], "certificate": (tmp_path / "kp" / "c.crt").read_text(),
        "private_key": (tmp_path / "kp" / "c.key").read_text(), "store_url": env.store_url,
        "store_password": password}, tmp_path)
    env.password = password
    env.postgres_url = postgres_url
    return env


def key_credentials(admin):
    app = admin.call("GET", "/applications", params={"$filter": "displayName eq '%s'" % APP_NAME})["value"][0]
    return app["keyCredentials"]


def test_jobs_on_any_node_share_the_postgresql_store(tmp_path, awx):
    write_people(awx.project / "files" / "hr.csv", awx.people)
    job1 = run_job(tmp_path, "job1", awx.project, "configure_and_sync.yml", [awx.azure, awx.idsync], awx.extra_vars)
    assert job1.rc == 0, job1
    assert job1.task("Sync HR to Entra")["summary"]["created"] == 60
    assert [k["customKeyIdentifier"] for k in key_credentials(awx.admin)] == [awx.thumbprint]
    assert awx.password not in job1.stdout and "PRIVATE KEY" not in job1.stdout

    awx.admin.reset_stats()
    job2 = run_job(tmp_path, "job2", awx.project, "configure_and_sync.yml", [awx.azure, awx.idsync], awx.extra_vars)
    assert job2.rc == 0, job2
    assert job2.task("Sync HR to Entra")["changed"] is False
    assert job2.task("Explain a new key pair")["_status"] == "skipped"
    assert awx.admin.stats()["writes"] == 0
    assert len(key_credentials(awx.admin)) == 1                      # the same certificate, no second one

    write_people(awx.project / "files" / "hr.csv", awx.people[5:])
    job3 = run_job(tmp_path, "job3", awx.project, "sync.yml", [awx.idsync], awx.extra_vars)
    assert job3.rc == 0, job3
    summary = job3.task("Sync HR to Entra")["summary"]
    assert (summary["deprovisioned"], summary["created"]) == (5, 0), summary
    with Store(awx.postgres_url) as store:
        runs = store.runs("hr_to_entra")
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    assert len(set(r["host"] for r in runs)) == 1                    # (one machine here; AWX would show nodes)

    # A job on a SQLite store of its own (no IDSYNC_STORE): nothing remembered, marks rebuild what it manages.
    write_people(awx.project / "files" / "hr.csv", awx.people[10:])
    sqlite_only = inject(idsync_credential_type(), {
        "tenant_id": awx.idsync.env["AZURE_TENANT_ID"], "certificate": awx.idsync.env["IDSYNC_CLIENT_CERTIFICATE"],
        "private_key": awx.idsync.env["IDSYNC_CLIENT_PRIVATE_KEY"]}, tmp_path)
    job4 = run_job(tmp_path, "job4", awx.project, "configure_and_sync.yml", [awx.azure, sqlite_only], awx.extra_vars)
    assert job4.rc == 0, job4
    result = job4.task("Sync HR to Entra")
    assert (result["summary"]["deprovisioned"], result["summary"]["created"]) == (5, 0), result["summary"]
    assert (job4.home / ".idsync" / "store.db").exists()
    disabled = [u for u in awx.admin.list("/users", {"$select": "employeeId,accountEnabled"})
                if u.get("employeeId") and u["accountEnabled"] is False]
    assert sorted(u["employeeId"] for u in disabled) == sorted(p["EmployeeID"] for p in awx.people[:10])
    assert len(key_credentials(awx.admin)) == 1


def test_a_job_without_the_key_replaces_only_the_roles_own_certificate(tmp_path, awx):
    """No key given and none on this node: the role makes one and replaces the certificate it registered before,
    saying so, and leaves a certificate someone else added."""
    write_people(awx.project / "files" / "hr.csv", awx.people[:3])
    no_key = inject(idsync_credential_type(), {"tenant_id": awx.idsync.env["AZURE_TENANT_ID"],
                                               "store_url": awx.store_url, "store_password": awx.password}, tmp_path)
    first = run_job(tmp_path, "first", awx.project, "configure_and_sync.yml", [awx.azure, no_key], awx.extra_vars)
    assert first.rc == 0, first
    app = awx.admin.call("GET", "/applications", params={"$filter": "displayName eq '%s'" % APP_NAME})["value"][0]
    other = keypair.ensure_certificate({"certificate_path": str(tmp_path / "o" / "o.crt"),
                                        "private_key_path": str(tmp_path / "o" / "o.key"), "subject": "CN=break glass"})
    keys = awx.admin.call("GET", "/applications/%s" % app["id"], params={"$select": "keyCredentials"})["keyCredentials"]
    awx.admin.call("PATCH", "/applications/%s" % app["id"], {"keyCredentials": keys + [{
        "type": "AsymmetricX509Cert", "usage": "Verify", "displayName": "CN=break glass",
        "key": other["certificate_base64"]}]})
    second = run_job(tmp_path, "second", awx.project, "configure_and_sync.yml", [awx.azure, no_key], awx.extra_vars)
    assert second.rc == 0, second
    assert "replaced" in second.task("Say why the application's earlier certificate is replaced")["msg"]
    names = sorted(k["displayName"] for k in key_credentials(awx.admin))
    assert names == ["CN=break glass", "CN=" + APP_NAME]
    assert second.task("Sync HR to Entra")["_status"] == "ok"
