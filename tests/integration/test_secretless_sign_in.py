"""Sign-in without secrets against the emulator: workload identity federation (a token from a test OIDC issuer,
validated by the emulator the way Entra ID does) and managed identity (the emulator's instance metadata endpoint),
through idsync.entra modules run by ansible-playbook, plus the federated credential the auto configuration role's
app_registration task adds."""
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from adhoc_support import ORGANIZATION_READ_ALL
from ansible_runner import run_playbook

AUDIENCE = "api://AzureADTokenExchange"
SUBJECT = "system:serviceaccount:awx:awx-job"


def _app_without_key(graph_admin):
    """An app registration with a service principal, Organization.Read.All consented, no key, no secret."""
    from adhoc_support import GRAPH_APP_ID
    created = graph_admin.call("POST", "/applications", {"displayName": "idsync secretless"})
    sp = graph_admin.call("POST", "/servicePrincipals", {"appId": created["appId"]})
    graph_sp = graph_admin.call("GET", "/servicePrincipals",
                                params={"$filter": "appId eq '%s'" % GRAPH_APP_ID})["value"][0]
    graph_admin.call("POST", "/servicePrincipals/%s/appRoleAssignedTo" % graph_sp["id"],
                     {"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": ORGANIZATION_READ_ALL})
    return created


def token_request(emulator, client_id, assertion):
    ep = emulator.endpoints
    return requests.post("%s/%s/oauth2/v2.0/token" % (ep["authority_host"], ep["tenant_id"]), data={
        "grant_type": "client_credentials", "client_id": client_id, "scope": "https://graph.microsoft.com/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion}, verify=ep["ca_path"], timeout=30)


def add_federated_credential(tmp_path, emulator_auth, emulator, app, issuer, subject=SUBJECT):
    """Through idsync.entra.app_registration, as the auto configuration role does."""
    admin = emulator.admin_app
    task = {"name": "federate", "idsync.entra.app_registration": dict(
        emulator_auth, app_id=app["appId"], client_id=admin["client_id"], client_secret=admin["client_secret"],
        admin_sign_in="credentials",
        federated_credentials=[{"name": "awx-on-aks", "issuer": issuer, "subject": subject}])}
    return run_playbook(tmp_path, [task, dict(task, name="again")], name="federate")


def test_federated_token_is_checked_as_entra_does(tmp_path, emulator, emulator_auth, graph_admin, oidc_issuer):
    app = _app_without_key(graph_admin)
    run = add_federated_credential(tmp_path, emulator_auth, emulator, app, oidc_issuer.url)
    assert run.rc == 0, run
    assert run.task("federate")["changed"] is True and run.task("again")["changed"] is False
    assert run.task("again")["federated_credentials"] == ["awx-on-aks"]

    good = token_request(emulator, app["appId"], oidc_issuer.mint(SUBJECT))
    assert good.status_code == 200, good.text
    cases = {
        "wrong subject": (oidc_issuer.mint("system:serviceaccount:other:job"), 70021),
        "wrong issuer": (oidc_issuer.mint(SUBJECT, issuer="https://token.actions.githubusercontent.com"), 70021),
        "wrong audience": (oidc_issuer.mint(SUBJECT, audience="api://something-else"), 70021),
        "expired": (oidc_issuer.mint(SUBJECT, lifetime=-3600), 700024),
        "not the issuer's key": (oidc_issuer.mint(SUBJECT, key=rsa.generate_private_key(65537, 2048)), 700027),
    }
    for what, (assertion, code) in cases.items():
        response = token_request(emulator, app["appId"], assertion)
        assert response.status_code in (400, 401), (what, response.text)
        assert response.json()["error_codes"] == [code], (what, response.text)
    assert "/keys" in oidc_issuer.requests                            # the signature was checked with its keys


def test_modules_sign_in_with_a_federated_token_file(tmp_path, emulator, emulator_auth, graph_admin, oidc_issuer):
    app = _app_without_key(graph_admin)
    assert add_federated_credential(tmp_path, emulator_auth, emulator, app, oidc_issuer.url).rc == 0
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(oidc_issuer.mint(SUBJECT))
    # As AKS workload identity sets it: the module reads the environment only.
    env = {"AZURE_CLIENT_ID": app["appId"], "AZURE_TENANT_ID": emulator.tenant_id,
           "AZURE_FEDERATED_TOKEN_FILE": str(token_file), "AZURE_AUTHORITY_HOST": emulator_auth["authority_host"]}
    task = {"name": "info", "idsync.entra.tenant_info": {k: v for k, v in emulator_auth.items()
                                                          if k in ("graph_endpoint", "ca_path")}}
    run = run_playbook(tmp_path, [task], env=env, name="wif")
    assert run.rc == 0, run
    info = run.task("info")
    assert info["credential"]["type"] == "client_assertion" and info["granted_permissions"] == ["Organization.Read.All"]
    assert open(token_file).read() not in run.output

    token_file.write_text(oidc_issuer.mint("system:serviceaccount:awx:someone-else"))
    run = run_playbook(tmp_path, [task], env=env, name="wif-bad")
    failed = run.task("info")
    assert failed["_status"] == "failed" and "AADSTS70021" in failed["msg"], failed


def test_modules_sign_in_with_the_managed_identity(tmp_path, emulator, emulator_auth, graph_admin):
    app = _app_without_key(graph_admin)
    emulator.admin("PUT", "managed-identity", {"client_id": app["appId"], "user_assigned": []})
    env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": emulator.base_url}   # where msal finds the metadata endpoint
    args = dict(emulator_auth, managed_identity=True)
    tasks = [{"name": "info", "idsync.entra.tenant_info": args},
             {"name": "user-assigned", "idsync.entra.tenant_info": dict(args, client_id="0" * 8 + "-0000-0000-0000-"
                                                                                  + "0" * 12), "ignore_errors": True}]
    run = run_playbook(tmp_path, tasks, env=env, name="mi")
    info = run.task("info")
    assert info["_status"] == "ok", run
    assert info["credential"]["type"] == "managed_identity" and info["granted_permissions"] == ["Organization.Read.All"]
    missing = run.task("user-assigned")
    assert missing["_status"] == "failed" and "Identity not found" in missing["msg"], missing
    # The metadata endpoint itself, as Learn documents it.
    response = requests.get(emulator.base_url + "/metadata/identity/oauth2/token",
                            params={"api-version": "2018-02-01", "resource": "https://graph.microsoft.com"},
                            verify=emulator.ca_path, timeout=30)
    assert response.status_code == 400 and response.json()["error_description"] == "Required metadata header not specified"


def test_auto_configuration_with_a_federated_credential(tmp_path, emulator, emulator_auth, graph_admin, oidc_issuer):
    """The role adds a federated credential instead of a certificate and saves a workload identity connection,
    which signs in with the token file the platform writes (AZURE_FEDERATED_TOKEN_FILE)."""
    token_file = tmp_path / "token"
    token_file.write_text(oidc_issuer.mint(SUBJECT))
    admin = emulator.admin_app
    role = {"name": "configure", "ansible.builtin.include_role": {"name": "idsync.entra.auto_configuration"}, "vars": {
        "auto_configuration_tenant_id": emulator.tenant_id,
        "auto_configuration_admin": {"method": "client_secret", "client_id": admin["client_id"],
                                     "client_secret": admin["client_secret"]},
        "auto_configuration_app_name": "idsync federated",
        "auto_configuration_federated_credential": {"issuer": oidc_issuer.url, "subject": SUBJECT},
        "auto_configuration_authority_host": emulator_auth["authority_host"],
        "auto_configuration_graph_endpoint": emulator_auth["graph_endpoint"],
        "auto_configuration_ca_path": emulator_auth["ca_path"],
        "auto_configuration_test_retries": 2, "auto_configuration_test_delay": 1}}
    info = {"name": "info", "idsync.entra.tenant_info": {"connection": "entra"}}
    fact = {"name": "fact", "ansible.builtin.debug": {"var": "auto_configuration_connection"}}
    run = run_playbook(tmp_path, [role, info, fact], env={"AZURE_FEDERATED_TOKEN_FILE": str(token_file)}, name="role")
    assert run.rc == 0, run
    assert run.task("info")["credential"]["type"] == "client_assertion"
    published = run.task("fact")["auto_configuration_connection"]       # the fact the role documents
    assert (published["name"], published["auth_method"]) == ("entra", "workload_identity")
    app = graph_admin.call("GET", "/applications", params={"$filter": "displayName eq 'idsync federated'"})["value"][0]
    assert app["keyCredentials"] == []                                # no certificate at all
    federated = graph_admin.call("GET", "/applications/%s/federatedIdentityCredentials" % app["id"])["value"]
    assert [(f["issuer"], f["subject"], f["audiences"]) for f in federated] == [(oidc_issuer.url, SUBJECT, [AUDIENCE])]
    again = run_playbook(tmp_path, [role], env={"AZURE_FEDERATED_TOKEN_FILE": str(token_file)}, name="role-again")
    assert again.rc == 0 and not any(r["result"].get("changed") for r in again.records
                                     if r["task"].startswith(("Ensure", "Save"))), again
