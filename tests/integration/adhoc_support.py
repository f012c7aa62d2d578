"""Helpers for integration tests that drive the real ``ansible`` / ``ansible-playbook`` CLIs against the tenant
emulator (the ``emulator`` fixture comes from tests/conftest.py; ``run_playbook`` from ansible_runner.py)."""
import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import requests

from ansible_runner import COLLECTIONS, PYTHON, VENV_BIN, ansible_env

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ORGANIZATION_READ_ALL = "498476ce-e0fe-48b0-b801-37ba7e2685c6"
USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"


class AdhocRun:
    def __init__(self, rc, stdout, stderr, result):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.result = result

    @property
    def output(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return "AdhocRun(rc=%s)\n%s" % (self.rc, self.output[-6000:])


def run_adhoc(work_dir, module, args, env=None, check=False, timeout=300):
    """``ansible localhost -m <module> -a <json args>``; returns the host result recorded by the test callback."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    results = work_dir / "adhoc-{0}.results.jsonl".format(len(list(work_dir.glob("adhoc-*.results.jsonl"))))
    run_env = ansible_env(work_dir, env)
    run_env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"  # ad-hoc runs load enabled callbacks only with this
    run_env["IDSYNC_TEST_RESULTS"] = str(results)
    cmd = [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m", module,
           "-a", json.dumps(args), "-e", "ansible_python_interpreter=%s" % PYTHON]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, cwd=str(work_dir), env=run_env, capture_output=True, text=True, timeout=timeout)
    result = None
    if results.exists():
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        if records:
            result = dict(records[-1]["result"])
            result["_status"] = records[-1]["status"]
    return AdhocRun(proc.returncode, proc.stdout, proc.stderr, result)


class GraphAdmin:
    """Plain ``requests`` calls to the emulator's Graph as its admin app (client secret): test set-up only."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.ep = emulator.endpoints
        self.graph = self.ep["graph_endpoint"] + "/v1.0"
        self.verify = self.ep["ca_path"]
        response = requests.post(
            "{0}/{1}/oauth2/v2.0/token".format(self.ep["authority_host"], self.ep["tenant_id"]),
            data={"grant_type": "client_credentials", "client_id": self.ep["admin"]["client_id"],
                  "client_secret": self.ep["admin"]["client_secret"], "scope": "https://graph.microsoft.com/.default"},
            verify=self.verify, timeout=30)
        response.raise_for_status()
        self.headers = {"Authorization": "Bearer " + response.json()["access_token"]}

    def call(self, method, path, body=None, params=None, expect=(200, 201, 204)):
        for _ in range(30):
            response = requests.request(method, self.graph + path, json=body, params=params, headers=self.headers,
                                        verify=self.verify, timeout=30)
            if response.status_code in (404, 400) and "does not" in response.text and method != "GET":
                time.sleep(0.5)  # replication delay, if the emulator simulates one
                continue
            break
        assert response.status_code in expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def create_certificate_app(self, certificate_der, name="idsync-itest", roles=(ORGANIZATION_READ_ALL,)):
        """A new app registration with the certificate registered, its service principal, and consented roles."""
        app = self.call("POST", "/applications", {"displayName": name, "keyCredentials": [{
            "type": "AsymmetricX509Cert", "usage": "Verify", "displayName": "CN=" + name,
            "key": base64.b64encode(certificate_der).decode()}]})
        sp = self.call("POST", "/servicePrincipals", {"appId": app["appId"]})
        graph_sp = self.call("GET", "/servicePrincipals",
                             params={"$filter": "appId eq '{0}'".format(GRAPH_APP_ID)})["value"][0]
        for role in roles:
            self.call("POST", "/servicePrincipals/{0}/appRoleAssignedTo".format(graph_sp["id"]),
                      {"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": role})
        return app


class VerifyingSession(requests.Session):
    """REQUESTS_CA_BUNDLE is set on these machines and would beat Session.verify: pass verify on every request."""

    def __init__(self, ca_path):
        super().__init__()
        self.ca_path = ca_path

    def request(self, method, url, *args, **kwargs):
        kwargs["verify"] = self.ca_path
        return super().request(method, url, *args, **kwargs)


def msal_certificate_token(endpoints, app_id, private_key_pem, thumbprint):
    """Plain msal, as a user (and the connector) would: a client credentials token with the app's certificate."""
    import msal
    app = msal.ConfidentialClientApplication(
        client_id=app_id,
        authority="%s/%s" % (endpoints["authority_host"], endpoints["tenant_id"]),
        client_credential={"private_key": private_key_pem, "thumbprint": thumbprint},
        http_client=VerifyingSession(endpoints["ca_path"]),
        instance_discovery=False,
        token_cache=msal.TokenCache(),
    )
    return app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])


def token_claims(result):
    """The decoded claims of an msal result's access token (asserting there is one)."""
    assert "access_token" in result, result
    payload = result["access_token"].split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))

