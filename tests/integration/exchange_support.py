"""Support for the Microsoft 365 connector tests (and benchmarks/exchange_bench.py): an app registration with the
Exchange Online permission and role in the tenant emulator, connections in a store, and the emulated Exchange's
admin API (licenses, faults, statistics, dump).

Set-up talks to the emulator as its admin app with plain ``requests``; the code under test signs in with the
certificate of the app registered here.
"""
import time

import requests

from sync_support import GRAPH_APP_ID, SYNC_ROLES, EmulatorAdmin  # noqa: F401 - GRAPH_APP_ID for callers
from ansible_collections.idsync.entra.plugins.module_utils.store import Store

EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
MANAGE_AS_APP = "dc50a0fb-09a3-484d-be87-e023b12c6440"
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
EXCHANGE_RECIPIENT_ADMINISTRATOR = "31392ffb-586c-42d1-9346-e59415a2cc4e"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"


class ExchangeAdmin(EmulatorAdmin):
    """EmulatorAdmin plus the Exchange parts: permission and role for an app, licenses, faults, stats, dump."""

    def register_exchange_app(self, workdir, name="idsync exchange test", permission=True,
                              role=EXCHANGE_RECIPIENT_ADMINISTRATOR, graph_roles=tuple(SYNC_ROLES.values())):
        """An app with a certificate, the Graph sync roles, Exchange.ManageAsApp (unless ``permission`` is false) and
        the directory role ``role`` (None: none). Returns the connection settings (exchange_endpoint included)."""
        settings = self.register_sync_app(workdir, name=name, roles=graph_roles)
        sp = self.call("GET", "/servicePrincipals", params={"$filter": "appId eq '%s'" % settings["application_id"]})
        sp_id = sp["value"][0]["id"]
        if permission:
            exchange = self.call("GET", "/servicePrincipals",
                                 params={"$filter": "appId eq '%s'" % EXCHANGE_APP_ID})["value"][0]
            self.call("POST", "/servicePrincipals/%s/appRoleAssignedTo" % exchange["id"],
                      {"principalId": sp_id, "resourceId": exchange["id"], "appRoleId": MANAGE_AS_APP})
        if role:
            self.assign_role(sp_id, role)
        settings["exchange_endpoint"] = self.ep["exchange_endpoint"]
        settings["service_principal_id"] = sp_id
        return settings

    def assign_role(self, principal_id, role):
        self.call("POST", "/roleManagement/directory/roleAssignments",
                  {"principalId": principal_id, "roleDefinitionId": role, "directoryScopeId": "/"})

    def exchange(self, method, path, payload=None):
        return self.admin(method, "exchange/" + path, payload)

    def license(self, *users):
        return self.exchange("POST", "licenses", {"users": list(users)})

    def recipients(self, kind=None):
        dump = self.exchange("GET", "dump")
        records = dump["recipients"] + dump["mailboxes"]
        return [r for r in records if kind is None or r["RecipientTypeDetails"] == kind]

    def members(self, group_name):
        dump = self.exchange("GET", "dump")
        everyone = dict((r["Guid"], r["Name"]) for r in dump["recipients"] + dump["mailboxes"])
        group = next(r for r in dump["recipients"] if r["Name"] == group_name)
        return sorted(everyone.get(g, g) for g in dump["members"].get(group["Guid"], []))

    def write_cmdlets(self):
        stats = self.exchange("GET", "stats")
        return dict((k, v) for k, v in stats["cmdlets"].items() if not k.startswith("Get-"))

    def invoke_as_admin_app(self, cmdlet, parameters):
        """Run a cmdlet as the emulator's bootstrap admin app (set-up only; it holds no Exchange role, so it gets one)."""
        token = requests.post("%s/%s/oauth2/v2.0/token" % (self.ep["authority_host"], self.ep["tenant_id"]), data={
            "grant_type": "client_credentials", "client_id": self.ep["admin"]["client_id"],
            "client_secret": self.ep["admin"]["client_secret"], "scope": "https://outlook.office365.com/.default"},
            verify=self.verify, timeout=30).json()["access_token"]
        response = requests.post("%s/adminapi/beta/%s/InvokeCommand" % (self.ep["exchange_endpoint"], self.ep["tenant_id"]),
                                 json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}},
                                 headers={"Authorization": "Bearer " + token}, verify=self.verify, timeout=60)
        return response


def save_microsoft_365(store_path, name, settings):
    """A microsoft_365 connection record (the same settings as azure_ad plus exchange_endpoint)."""
    keep = dict((k, v) for k, v in settings.items() if k != "service_principal_id")
    with Store(str(store_path)) as store:
        store.put_connection(name, "microsoft_365", keep)


def wait_for_mailboxes(admin, count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(admin.recipients("UserMailbox")) >= count:
            return
        time.sleep(0.25)
    raise AssertionError("no %d mailboxes after %ss" % (count, timeout))
