"""Support for the sync integration tests (and benchmarks/): an app registration with the sync permissions in the
tenant emulator, a store with the connections, synthetic HR files, and emulator statistics.

Set-up talks to the emulator as its admin app with plain ``requests``; the code under test only ever signs in with
the certificate of the app registered here.
"""
import csv
import io
import random
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils import keypair  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.store import Store  # noqa: E402

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
SYNC_ROLES = {
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Group.ReadWrite.All": "62a82d76-70ea-41e2-9197-370581804d09",
    "Organization.Read.All": "498476ce-e0fe-48b0-b801-37ba7e2685c6",
}
HR_COLUMNS = ["EmployeeID", "GivenName", "Surname", "Department", "Title", "ManagerID", "Status"]
DEPARTMENTS = ["Sales", "Marketing", "Engineering", "Support", "Finance", "Legal", "Operations", "Research",
               "Human Resources", "Facilities"]
GIVEN = ["Ada", "Bruno", "Chloé", "Dmitri", "Eva", "François", "Greta", "Hiro", "Inès", "Jonas", "Kalani", "Léa",
         "Mateo", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tomás", "Uma", "Viktor", "Wen", "Ximena",
         "Yusuf", "Zoë"]
SURNAMES = ["Andersen", "Baptiste", "Çelik", "Dubois", "Eriksson", "Fernández", "García", "Hansen", "Ibáñez",
            "Jürgens", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrović", "Quiroga", "Rossi",
            "Schäfer", "Tanaka", "Ueda", "Virtanen", "Weiß", "Xu", "Yılmaz", "Zieliński"]


class EmulatorAdmin:
    """The emulator's admin app over Graph (test set-up) plus its /_emulator admin API."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.ep = emulator.endpoints
        self.graph = self.ep["graph_endpoint"] + "/v1.0"
        self.verify = self.ep["ca_path"]
        self._headers = None

    @property
    def headers(self):
        if self._headers is None:
            response = requests.post(
                "%s/%s/oauth2/v2.0/token" % (self.ep["authority_host"], self.ep["tenant_id"]),
                data={"grant_type": "client_credentials", "client_id": self.ep["admin"]["client_id"],
                      "client_secret": self.ep["admin"]["client_secret"],
                      "scope": "https://graph.microsoft.com/.default"},
                verify=self.verify, timeout=30)
            response.raise_for_status()
            self._headers = {"Authorization": "Bearer " + response.json()["access_token"]}
        return self._headers

    def call(self, method, path, body=None, params=None, expect=(200, 201, 204)):
        for _ in range(60):
            response = requests.request(method, self.graph + path, json=body, params=params, headers=self.headers,
                                        verify=self.verify, timeout=60)
            if response.status_code in (404, 400) and "does not" in response.text and method != "GET":
                time.sleep(0.25)
                continue
            if response.status_code in (429, 503):
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            break
        assert response.status_code in expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def list(self, path, params=None):
        params = dict(params or {})
        params.setdefault("$top", 999)
        out = []
        page = self.call("GET", path, params=params)
        out.extend(page.get("value", []))
        while page.get("@odata.nextLink"):
            response = requests.get(page["@odata.nextLink"], headers=self.headers, verify=self.verify, timeout=60)
            response.raise_for_status()
            page = response.json()
            out.extend(page.get("value", []))
        return out

    def admin(self, method, path, payload=None):
        return self.emulator.admin(method, path, payload)

    def stats(self):
        return self.admin("GET", "stats")

    def reset_stats(self):
        self.admin("POST", "stats/reset")

    def dump(self):
        return self.admin("GET", "dump")

    def register_sync_app(self, workdir, name="idsync sync test", roles=tuple(SYNC_ROLES.values())):
        """A certificate, an app registration holding it, its service principal and the consented Graph roles.
        Returns the azure_ad connection settings for it."""
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        pair = keypair.ensure_certificate({"certificate_path": str(workdir / "sync.crt"),
                                           "private_key_path": str(workdir / "sync.key")})
        app = self.call("POST", "/applications", {"displayName": name, "keyCredentials": [{
            "type": "AsymmetricX509Cert", "usage": "Verify", "displayName": "CN=" + name,
            "key": pair["certificate_base64"]}]})
        sp = self.call("POST", "/servicePrincipals", {"appId": app["appId"]})
        graph_sp = self.call("GET", "/servicePrincipals",
                             params={"$filter": "appId eq '%s'" % GRAPH_APP_ID})["value"][0]
        for role in roles:
            self.call("POST", "/servicePrincipals/%s/appRoleAssignedTo" % graph_sp["id"],
                      {"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": role})
        return {
            "tenant_id": self.ep["tenant_id"],
            "application_id": app["appId"],
            "certificate_thumbprint": pair["thumbprint"],
            "certificate_path": pair["certificate_path"],
            "private_key_path": pair["private_key_path"],
            "tenant_environment": "azure_global",
            "authority_host": self.ep["authority_host"],
            "graph_endpoint": self.ep["graph_endpoint"],
            "ca_path": self.ep["ca_path"],
        }


def save_connections(store_path, entra_settings=None, csv_files=None):
    """Connections in a store: ``contoso`` (azure_ad) and one csv connection per {name: settings}."""
    with Store(str(store_path)) as store:
        if entra_settings:
            store.put_connection("contoso", "azure_ad", dict(entra_settings))
        for name, settings in (csv_files or {}).items():
            store.put_connection(name, "csv", dict(settings))


def make_people(count, seed=7, departments=DEPARTMENTS):
    """``count`` HR rows with unique names, departments and a manager hierarchy (the first of each department
    reports to E000001, the CEO). Managers come *after* some of their reports in the file."""
    rng = random.Random(seed)
    people = []
    heads = {}
    for number in range(1, count + 1):
        eid = "E%06d" % number
        given = GIVEN[number % len(GIVEN)]
        surname = "%s%d" % (SURNAMES[(number // len(GIVEN)) % len(SURNAMES)], number)
        dept = "Management" if number == 1 else departments[rng.randrange(len(departments))]
        people.append({"EmployeeID": eid, "GivenName": given, "Surname": surname, "Department": dept,
                       "Title": "CEO" if number == 1 else "Staff", "ManagerID": "", "Status": "Active"})
        if number > 1 and dept not in heads:
            heads[dept] = eid
    for row in people[1:]:
        head = heads[row["Department"]]
        row["ManagerID"] = "E000001" if row["EmployeeID"] == head else head
        if row["EmployeeID"] == head:
            row["Title"] = "Head of " + row["Department"]
    # put the CEO last, so most managers are created in the same run after their reports
    return people[1:] + people[:1]


def write_people(path, people, columns=HR_COLUMNS, delimiter=",", bom=False):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    for row in people:
        writer.writerow(dict((c, row.get(c, "")) for c in columns))
    data = buffer.getvalue().encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    Path(path).write_bytes(data)
    return path


def hr_workflow(name="hr_to_entra", store=None, domain="contoso.example", deprovision="disable", memberships=True,
                **extra):
    """The module options of the HR -> Entra workflow used across the tests."""
    options = {
        "name": name,
        "source": {"connection": "hr_file", "object_type": "row", "scope": "<< Status == 'Active' >>"},
        "target": {"connection": "contoso", "object_type": "user"},
        "match": [{"source": "EmployeeID", "target": "employeeId"}],
        "steps": {
            "create": {
                "attributes": {
                    "userPrincipalName": "<< (GivenName ~ '.' ~ Surname) | strip_accents | mail_safe | lower >>@"
                                         + domain,
                    "displayName": "<< GivenName >> << Surname >>",
                    "givenName": "GivenName",
                    "surname": "Surname",
                    "accountEnabled": True,
                },
                "password": "generate",
            },
            "update": {"attributes": {"department": "Department", "jobTitle": "Title",
                                      "manager": {"reference": "ManagerID"}}},
            "deprovision": {"action": deprovision},
        },
    }
    if memberships:
        options["memberships"] = [{"group": "<< Department >> staff", "create_missing": True}]
    if store:
        options["store"] = str(store)
    options.update(extra)
    return options
