"""idsync.entra.sync with the microsoft_365 connector (Exchange Online recipients), through real ansible-playbook runs
against the tenant emulator's Exchange Online: mail contacts and distribution groups from an HR file, Entra groups to
distribution groups, mailbox and mail user updates, a dynamic group read into a file, check mode, idempotence (a
re-run sends no write cmdlet), a proxy address conflict and throttling mid-run."""
import csv
import io
import sys

import pytest

from ansible_runner import COLLECTIONS, run_playbook
from exchange_support import ExchangeAdmin, save_microsoft_365, wait_for_mailboxes
from sync_support import save_connections

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

PARTNER_COLUMNS = ["PartnerID", "GivenName", "Surname", "Email", "Company", "Status"]
PARTNERS = [
    {"PartnerID": "P1", "GivenName": "Ana", "Surname": "Souza", "Email": "ana@fabrikam.example", "Company": "Fabrikam",
     "Status": "Active"},
    {"PartnerID": "P2", "GivenName": "Bo", "Surname": "Lindqvist", "Email": "bo@fabrikam.example",
     "Company": "Fabrikam", "Status": "Active"},
    {"PartnerID": "P3", "GivenName": "Chen", "Surname": "Wei", "Email": "chen@tailspin.example",
     "Company": "Tailspin", "Status": "Active"},
    {"PartnerID": "P4", "GivenName": "Dee", "Surname": "Okafor", "Email": "dee@tailspin.example",
     "Company": "Tailspin", "Status": "Inactive"},
]


class Env:
    def __init__(self, tmp_path, emulator, role=True):
        self.tmp = tmp_path
        self.admin = ExchangeAdmin(emulator)
        self.store = tmp_path / "state" / "store.db"
        self.store.parent.mkdir(parents=True, exist_ok=True)
        self.partners = tmp_path / "partners.csv"
        self.settings = self.admin.register_exchange_app(tmp_path / "pki")
        entra = dict((k, v) for k, v in self.settings.items() if k not in ("exchange_endpoint", "service_principal_id"))
        save_connections(self.store, entra, {"partners_file": {"path": str(self.partners), "key": ["PartnerID"]}})
        save_microsoft_365(self.store, "exchange", self.settings)

    def write_partners(self, rows):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=PARTNER_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.partners.write_text(buffer.getvalue())

    def run(self, options, check=False, diff=False):
        options = dict(options, store=str(self.store))
        return run_playbook(self.tmp, [{"name": "sync", "idsync.entra.sync": options, "register": "r"}],
                            check=check, diff=diff)

    def contacts(self):
        return dict((r["CustomAttribute1"], r) for r in self.admin.recipients("MailContact"))


def partners_workflow(**extra):
    options = {
        "name": "partners_to_exchange",
        "source": {"connection": "partners_file", "object_type": "row", "scope": "<< Status == 'Active' >>"},
        "target": {"connection": "exchange", "object_type": "mail_contact"},
        "match": [{"source": "PartnerID", "target": "CustomAttribute1"}],
        "steps": {
            "create": {"attributes": {"Name": "<< GivenName >> << Surname >> (<< PartnerID >>)",
                                      "CustomAttribute1": "PartnerID"}},
            "update": {"attributes": {"DisplayName": "<< GivenName >> << Surname >>", "ExternalEmailAddress": "Email",
                                      "CustomAttribute2": "Company"}},
            "deprovision": {"action": "delete"},
        },
        "memberships": [{"group": "Partners << Company >>", "object_type": "distribution_group",
                         "match_attribute": "DisplayName", "create_missing": True}],
        "deletion_threshold": 10,
    }
    options.update(extra)
    return options


def lowered(addresses):
    return sorted(a.lower() for a in addresses)


@pytest.fixture
def env(tmp_path, emulator):
    return Env(tmp_path, emulator)


def test_contacts_and_distribution_groups_from_hr_file(env):
    env.write_partners(PARTNERS)
    run = env.run(partners_workflow())
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["summary"]["created"] == 3 and r["summary"]["groups_created"] == 2, r["summary"]
    contacts = env.contacts()
    assert sorted(contacts) == ["P1", "P2", "P3"]
    assert contacts["P1"]["ExternalEmailAddress"] == "SMTP:ana@fabrikam.example"
    assert contacts["P1"]["DisplayName"] == "Ana Souza" and contacts["P1"]["CustomAttribute2"] == "Fabrikam"
    assert contacts["P1"]["Name"] == "Ana Souza (P1)"
    assert env.admin.members("Partners Fabrikam") == ["Ana Souza (P1)", "Bo Lindqvist (P2)"]
    assert env.admin.members("Partners Tailspin") == ["Chen Wei (P3)"]

    # A re-run reads and sends no write cmdlet.
    env.admin.exchange("POST", "stats/reset")
    again = env.run(partners_workflow())
    assert again.rc == 0 and again.task("sync")["changed"] is False, again
    assert env.admin.write_cmdlets() == {}

    # Bo moves to Tailspin, Chen leaves, Ana's address changes: check mode plans it and writes nothing.
    changed = [dict(PARTNERS[0], Email="ana.souza@fabrikam.example"), dict(PARTNERS[1], Company="Tailspin"),
               PARTNERS[3]]
    env.write_partners(changed)
    env.admin.exchange("POST", "stats/reset")
    check = env.run(partners_workflow(), check=True)
    assert check.rc == 0, check
    plan = check.task("sync")["plan"]
    assert len(plan["update"]) == 2 and len(plan["deprovision"]) == 1, plan
    assert env.admin.write_cmdlets() == {}
    assert sorted(env.contacts()) == ["P1", "P2", "P3"]

    applied = env.run(partners_workflow())
    assert applied.rc == 0, applied
    contacts = env.contacts()
    assert sorted(contacts) == ["P1", "P2"]
    assert contacts["P1"]["ExternalEmailAddress"] == "SMTP:ana.souza@fabrikam.example"
    assert contacts["P2"]["CustomAttribute2"] == "Tailspin"
    assert env.admin.members("Partners Fabrikam") == ["Ana Souza (P1)"]
    assert env.admin.members("Partners Tailspin") == ["Bo Lindqvist (P2)"]
    writes = env.admin.write_cmdlets()
    assert writes.get("Remove-MailContact") == 1 and writes.get("Add-DistributionGroupMember") == 1, writes
    assert "Update-DistributionGroupMember" not in writes

    env.admin.exchange("POST", "stats/reset")
    assert env.run(partners_workflow()).task("sync")["changed"] is False
    assert env.admin.write_cmdlets() == {}


def test_proxy_address_conflict_fails_that_object_only(env):
    rows = [dict(p) for p in PARTNERS[:3]]
    rows.append(dict(PARTNERS[3], Status="Active", Email="ana@fabrikam.example"))   # Ana's address again
    env.write_partners(rows)
    run = env.run(partners_workflow(memberships=[]))
    assert run.rc != 0, run                       # the task fails because an object failed ...
    r = run.task("sync")
    assert r["summary"]["created"] == 3 and r["failed_objects"] == 1, r["summary"]
    (error,) = r["errors"]
    assert "already used by another recipient" in error["error"] and "ana@fabrikam.example" in error["error"]
    assert len(env.contacts()) == 3               # ... after the others were applied


def test_throttled_cmdlets_are_retried_and_nothing_is_lost(env):
    env.write_partners(PARTNERS)
    env.admin.exchange("POST", "faults", {"cmdlet": "New-MailContact", "status": 429, "count": 2, "retry_after": 1})
    env.admin.exchange("POST", "faults", {"cmdlet": "Add-DistributionGroupMember", "status": 429, "count": 1,
                                          "retry_after": 1})
    run = env.run(partners_workflow())
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["stats"]["target"]["throttled"] == 3 and r["stats"]["target"]["retries"] >= 3, r["stats"]
    assert sorted(env.contacts()) == ["P1", "P2", "P3"]
    assert env.admin.members("Partners Fabrikam") == ["Ana Souza (P1)", "Bo Lindqvist (P2)"]


def test_exchange_throttling_budget_outlasted(env):
    env.admin.exchange("PUT", "settings", {"throttling": True, "write_budget": 5, "budget_window_s": 2})
    rows = [{"PartnerID": "T%02d" % n, "GivenName": "Temp", "Surname": "Number%d" % n,
             "Email": "t%02d@contractors.example" % n, "Company": "Contractors", "Status": "Active"} for n in range(12)]
    env.write_partners(rows)
    run = env.run(partners_workflow(memberships=[]))
    assert run.rc == 0, run
    assert run.task("sync")["stats"]["target"]["throttled"] >= 1
    assert len(env.contacts()) == 12


def test_entra_groups_to_distribution_groups_with_mailboxes(env):
    admin = env.admin
    domain = admin.ep["tenant_domain"]
    users = [admin.call("POST", "/users", {"accountEnabled": True, "displayName": name, "mailNickname": name.lower(),
                                           "userPrincipalName": "%s@%s" % (name.lower(), domain),
                                           "passwordProfile": {"password": "Xy!12345678abc"}})
             for name in ("Alex", "Blair", "Casey")]
    group = admin.call("POST", "/groups", {"displayName": "Project Falcon", "mailNickname": "falcon",
                                           "mailEnabled": False, "securityEnabled": True})
    for user in users:
        admin.call("POST", "/groups/%s/members/$ref" % group["id"],
                   {"@odata.id": admin.graph + "/directoryObjects/" + user["id"]})
    admin.exchange("PUT", "settings", {"provisioning_delay_s": 1})
    admin.license(*[u["userPrincipalName"] for u in users[:2]])     # Casey has no Exchange license: no mailbox
    wait_for_mailboxes(admin, 2)
    options = {
        "name": "entra_groups_to_exchange",
        "source": {"connection": "contoso", "object_type": "group", "scope": "<< securityEnabled >>"},
        "target": {"connection": "exchange", "object_type": "distribution_group"},
        "match": [{"source": "id", "target": "CustomAttribute15"}],
        "steps": {
            "create": {"attributes": {"Name": "<< displayName >>", "CustomAttribute15": "id"}},
            "update": {"attributes": {"DisplayName": "displayName",
                                      "members": {"reference": "members", "lookup": "ExternalDirectoryObjectId"}}},
            "deprovision": {"action": "delete"},
        },
    }
    run = env.run(options)
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["summary"]["created"] == 1, r
    assert admin.members("Project Falcon") == ["alex", "blair"]
    assert any("casey" in w.lower() or "no recipient" in w.lower() or "ExternalDirectoryObjectId" in w
               for w in r["reference_warnings"]), r["reference_warnings"]

    admin.call("DELETE", "/groups/%s/members/%s/$ref" % (group["id"], users[0]["id"]))
    rerun = env.run(options)
    assert rerun.rc == 0, rerun
    assert admin.members("Project Falcon") == ["blair"]
    admin.exchange("POST", "stats/reset")
    assert env.run(options).task("sync")["changed"] is False
    assert admin.write_cmdlets() == {}


def test_mailbox_attributes_and_addresses_are_updated_never_created(env):
    admin = env.admin
    domain = admin.ep["tenant_domain"]
    for name in ("dana", "eli"):
        admin.call("POST", "/users", {"accountEnabled": True, "displayName": name.title(), "mailNickname": name,
                                      "userPrincipalName": "%s@%s" % (name, domain), "employeeId": name.upper(),
                                      "passwordProfile": {"password": "Xy!12345678abc"}})
    admin.exchange("PUT", "settings", {"provisioning_delay_s": 0})
    admin.license("dana@" + domain, "eli@" + domain)
    wait_for_mailboxes(admin, 2)
    people = env.tmp / "people.csv"
    people.write_text("Upn,CostCenter,Hidden,Aliases\n"
                      "dana@%s,CC-100,false,smtp:dana.old@%s;X500:/o=Legacy/cn=dana\n"
                      "eli@%s,CC-200,true,\n" % (domain, domain, domain))
    save_connections(env.store, None, {"people": {"path": str(people), "key": ["Upn"]}})
    options = {
        "name": "mailbox_attributes",
        "source": {"connection": "people", "object_type": "row", "multi_valued": ["Aliases"]},
        "target": {"connection": "exchange", "object_type": "mailbox"},
        "match": [{"source": "Upn", "target": "UserPrincipalName"}],
        "steps": {"update": {"attributes": {"CustomAttribute7": "CostCenter", "HiddenFromAddressListsEnabled": "Hidden",
                                            "EmailAddresses": "Aliases"}}},
    }
    run = env.run(options)
    assert run.rc == 0, run
    mailboxes = dict((m["UserPrincipalName"], m) for m in admin.recipients("UserMailbox"))
    dana, eli = mailboxes["dana@" + domain], mailboxes["eli@" + domain]
    assert dana["CustomAttribute7"] == "CC-100" and eli["HiddenFromAddressListsEnabled"] is True
    # Proxy addresses compare without letter case (as Exchange does); the primary stays.
    assert lowered(dana["EmailAddresses"]) == lowered(["SMTP:dana@" + domain, "smtp:dana.old@" + domain,
                                                       "X500:/o=Legacy/cn=dana"])
    assert "SMTP:dana@" + domain in dana["EmailAddresses"]
    admin.exchange("POST", "stats/reset")
    assert env.run(options).task("sync")["changed"] is False
    assert admin.write_cmdlets() == {}

    # One alias removed: only that one goes.
    people.write_text("Upn,CostCenter,Hidden,Aliases\ndana@%s,CC-100,false,X500:/o=Legacy/cn=dana\n"
                      "eli@%s,CC-200,true,\n" % (domain, domain))
    assert env.run(options).rc == 0
    dana = dict((m["UserPrincipalName"], m) for m in admin.recipients("UserMailbox"))["dana@" + domain]
    assert lowered(dana["EmailAddresses"]) == lowered(["SMTP:dana@" + domain, "X500:/o=Legacy/cn=dana"])

    creating = dict(options, steps={"create": {"attributes": {"DisplayName": "Upn"}}})
    refused = env.run(creating)
    assert refused.rc != 0
    assert "cannot be created" in refused.task("sync")["msg"], refused.task("sync")["msg"]


def test_mail_users_updated_and_deleted_dynamic_groups_read(env):
    admin = env.admin
    admin.exchange("POST", "seed", {"mail_users": 3, "dynamic_distribution_groups": 2})
    users = env.tmp / "mail_users.csv"
    users.write_text("Alias,Dept\nseededmu00000,Finance\nseededmu00001,Legal\nseededmu00002,Finance\n")
    export = env.tmp / "dynamic.csv"
    save_connections(env.store, None, {"mail_users_file": {"path": str(users), "key": ["Alias"]},
                                       "dynamic_export": {"path": str(export), "key": ["Name"]}})
    options = {
        "name": "mail_users",
        "source": {"connection": "mail_users_file", "object_type": "row"},
        "target": {"connection": "exchange", "object_type": "mail_user"},
        "match": [{"source": "Alias", "target": "Alias"}],
        "steps": {"update": {"attributes": {"CustomAttribute3": "Dept"}}, "deprovision": {"action": "delete"}},
        "deletion_threshold": 5,
    }
    assert env.run(options).rc == 0
    assert sorted(r["CustomAttribute3"] for r in admin.recipients("MailUser")) == ["Finance", "Finance", "Legal"]
    users.write_text("Alias,Dept\nseededmu00000,Finance\nseededmu00001,Legal\n")
    assert env.run(options).rc == 0
    assert sorted(r["Alias"] for r in admin.recipients("MailUser")) == ["seededmu00000", "seededmu00001"]

    read_dynamic = {
        "name": "dynamic_to_file",
        "source": {"connection": "exchange", "object_type": "dynamic_distribution_group"},
        "target": {"connection": "dynamic_export", "object_type": "row"},
        "match": [{"source": "Name", "target": "Name"}],
        "steps": {"create": {"attributes": {"Name": "Name", "Address": "PrimarySmtpAddress",
                                            "Filter": "RecipientFilter"}}},
    }
    run = env.run(read_dynamic)
    assert run.rc == 0, run
    rows = list(csv.DictReader(io.StringIO(export.read_text())))
    assert sorted(row["Name"] for row in rows) == ["Seeded Dynamic 0000", "Seeded Dynamic 0001"]
    assert rows[0]["Filter"] == "(RecipientType -eq 'UserMailbox')"
