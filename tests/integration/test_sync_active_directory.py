"""idsync.entra.sync with a real Samba Active Directory domain controller, through real ansible-playbook runs:
HR CSV -> AD, AD -> Entra (tenant emulator), Entra -> AD writeback."""
import json
import sys

import ldap3
import pytest

from ansible_runner import COLLECTIONS, run_playbook
from ldap_servers import AD_PASSWORD
from sync_support import EmulatorAdmin, save_connections, write_people

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.names import canonical_dn  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.store import Store  # noqa: E402



def same_dn(a, b):
    return canonical_dn(a) == canonical_dn(b)

PEOPLE = [
    {"EmployeeID": "E1", "GivenName": "Zoë", "Surname": "Smith, Jr.", "Department": "Sales", "Title": "Rep",
     "ManagerID": "E3", "Status": "Active"},
    # a name that would break a filter or a DN that were not escaped
    {"EmployeeID": "E2", "GivenName": "Bob", "Surname": "*)(objectClass=*", "Department": "IT", "Title": "Admin",
     "ManagerID": "E3", "Status": "Active"},
    {"EmployeeID": "E4", "GivenName": "Nia", "Surname": "Inactive", "Department": "IT", "Title": "Dev",
     "ManagerID": "E3", "Status": "Inactive"},
    {"EmployeeID": "E3", "GivenName": "Cleo", "Surname": "Chef", "Department": "Management", "Title": "CEO",
     "ManagerID": "", "Status": "Active"},
]


def hr_to_ad(store, ad, **extra):
    options = {
        "name": "hr_to_ad",
        "store": str(store),
        "source": {"connection": "hr_file", "object_type": "row", "scope": "<< Status == 'Active' >>"},
        "target": {"connection": "corp_ad", "object_type": "user"},
        "match": [{"source": "EmployeeID", "target": "employeeID"}],
        "steps": {
            "create": {"attributes": {
                "userPrincipalName": "<< (GivenName ~ '.' ~ Surname) | mail_safe | lower >>@idsync.test",
                "givenName": "GivenName", "sn": "Surname", "enabled": True},
                "password": "generate"},
            "update": {"attributes": {
                "dn": "CN=<< GivenName >> << Surname >>,OU=<< Department >>," + ad.people,
                "displayName": "<< GivenName >> << Surname >>",
                "department": "Department", "title": "Title", "manager": {"reference": "ManagerID"}}},
            "deprovision": {"action": "disable"},
        },
        "memberships": [{"group": "<< Department >> staff", "create_missing": True}],
        "connection_secrets": {"corp_ad": {"bind_password": AD_PASSWORD}},
    }
    options.update(extra)
    return options


class AdEnv:
    def __init__(self, tmp_path, ad):
        self.tmp = tmp_path
        self.ad = ad
        self.store = tmp_path / "state" / "store.db"
        self.store.parent.mkdir(parents=True, exist_ok=True)
        self.hr = tmp_path / "hr.csv"
        save_connections(self.store, csv_files={"hr_file": {"path": str(self.hr), "key": ["EmployeeID"]}})
        with Store(str(self.store)) as store:
            store.put_connection("corp_ad", "active_directory", ad.settings(create_ous=True))

    def run(self, options, check=False, diff=False):
        return run_playbook(self.tmp, [{"name": "sync", "idsync.entra.sync": options, "register": "r"}],
                            check=check, diff=diff)

    def groups(self):
        """group name -> set of member employee ids."""
        by_dn = dict((u["dn"].lower(), eid) for eid, u in self.ad.users().items())
        out = {}
        for entry in self.ad.entries(self.ad.groups, "(objectClass=group)", ["displayName", "member"]):
            out[str(entry.displayName)] = set(by_dn.get(m.lower(), m) for m in entry.member.values)
        return out


@pytest.fixture
def env(tmp_path, ad):
    return AdEnv(tmp_path, ad)


def test_hr_to_ad_creates_in_department_ous_moves_disables_and_reruns_clean(env):
    ad = env.ad
    write_people(env.hr, PEOPLE)
    plan = env.run(hr_to_ad(env.store, ad), check=True, diff=True)
    assert plan.rc == 0, plan
    assert plan.task("sync")["summary"]["created"] == 3
    assert ad.users() == {}                                            # check mode wrote nothing

    run = env.run(hr_to_ad(env.store, ad))
    assert run.rc == 0, run
    r = run.task("sync")
    assert (r["summary"]["created"], r["summary"]["failed"], r["summary"]["groups_created"]) == (3, 0, 3), r
    users = ad.users()
    assert sorted(users) == ["E1", "E2", "E3"]
    assert users["E1"]["dn"] == "CN=Zoë Smith\\, Jr.,OU=Sales,%s" % ad.people      # RFC 4514 escaping
    assert same_dn(users["E2"]["dn"], "CN=Bob *)(objectClass\\=*,OU=IT,%s" % ad.people)   # Samba writes = as \\3D
    assert users["E1"]["manager"] == users["E3"]["dn"]                 # the manager was created after E1
    assert users["E1"]["userAccountControl"] == "512"                    # enabled: it has a password
    assert users["E1"]["pwdLastSet"] == "0"                            # must change the password at next logon
    assert users["E1"]["sAMAccountName"] == "zoe.smithjr"
    assert env.groups() == {"Sales staff": {"E1"}, "IT staff": {"E2"}, "Management staff": {"E3"}}
    assert "unicodePwd" not in run.output and AD_PASSWORD not in run.output
    assert AD_PASSWORD.encode() not in env.store.read_bytes()

    # the same data again: nothing to do, not a single write
    run = env.run(hr_to_ad(env.store, ad))
    r = run.task("sync")
    assert r["changed"] is False and r["summary"]["unchanged"] == 3, r
    assert r["stats"]["target"]["writes"] == 0

    # E1 moves to IT with a new title (renamed and moved by the DN rule), E2 leaves
    people = [dict(PEOPLE[0], Department="IT", Title="Senior Rep", Surname="Smith"), PEOPLE[2], PEOPLE[3]]
    write_people(env.hr, people)
    guid_before = ad.entries(users["E1"]["dn"], "(objectClass=user)", ["objectGUID"])[0].objectGUID.value
    run = env.run(hr_to_ad(env.store, ad), diff=True)
    assert run.rc == 0, run
    r = run.task("sync")
    assert (r["summary"]["updated"], r["summary"]["deprovisioned"], r["summary"]["created"]) == (1, 1, 0), r
    assert "hr_to_ad: zoe.smithjr@idsync.test (update)" in run.stdout                 # --diff shows the move
    assert "hr_to_ad: bob.objectclass@idsync.test (disable)" in run.stdout
    change = r["plan"]["update"][0]["changes"]
    assert change["dn"] == {"before": "CN=Zoë Smith\\, Jr.,OU=Sales," + ad.people,
                            "after": "CN=Zoë Smith,OU=IT," + ad.people}
    users = ad.users()
    assert users["E1"]["dn"] == "CN=Zoë Smith,OU=IT," + ad.people
    moved = ad.entries(users["E1"]["dn"], "(objectClass=user)", ["objectGUID"])[0].objectGUID.value
    assert moved == guid_before                                        # the same object, matched by objectGUID
    assert users["E1"]["title"] == "Senior Rep"
    assert users["E2"]["userAccountControl"] == "514"                    # the leaver is disabled, not deleted
    assert env.groups() == {"Sales staff": set(), "IT staff": {"E1"}, "Management staff": {"E3"}}

    run = env.run(hr_to_ad(env.store, ad))
    r = run.task("sync")
    assert r["changed"] is False and r["stats"]["target"]["writes"] == 0, r


def test_missing_ou_is_named_unless_create_ous(env):
    ad = env.ad
    with Store(str(env.store)) as store:
        store.put_connection("corp_ad", "active_directory", ad.settings(create_ous=False))
    write_people(env.hr, PEOPLE[:1])
    options = hr_to_ad(env.store, ad, memberships=[])
    options["steps"]["update"]["attributes"].pop("manager")
    run = env.run(options)
    assert run.rc != 0
    error = run.task("sync")["errors"][0]["error"]
    assert error == ("Creating CN=Zoë Smith\\, Jr.,OU=Sales,%s failed: its container OU=Sales,%s does not exist "
                     "(create it, or set create_ous: true on the connection)" % (ad.people, ad.people)), error


def test_ad_to_entra_users_and_memberships_follow(tmp_path, ad, emulator):
    admin = EmulatorAdmin(emulator)
    domain = emulator.endpoints["tenant_domain"]
    boss = ad.add_user("Ada Boss", "A1", sAMAccountName="ada.boss", givenName="Ada", sn="Boss", displayName="Ada Boss",
                       department="Board", title="CEO")
    ann = ad.add_user("Ann Able", "A2", sAMAccountName="ann.able", givenName="Ann", sn="Able", displayName="Ann Able",
                      department="Sales", title="Rep", manager=boss)
    ben = ad.add_user("Ben Baker", "A3", sAMAccountName="ben.baker", givenName="Ben", sn="Baker",
                      displayName="Ben Baker", department="IT", title="Dev", manager=boss)
    sales = ad.add_group("Sales team", [ann])
    ad.add_group("Everyone", [boss, ann, ben])
    store = tmp_path / "store.db"
    settings = admin.register_sync_app(tmp_path / "pki")
    save_connections(store, settings)
    with Store(str(store)) as s:
        s.put_connection("corp_ad", "active_directory", ad.settings())
    options = {
        "name": "ad_to_entra", "store": str(store),
        "source": {"connection": "corp_ad", "object_type": "user", "scope": "<< enabled >>"},
        "target": {"connection": "contoso", "object_type": "user"},
        "match": [{"source": "employeeID", "target": "employeeId"}],
        "steps": {
            "create": {"attributes": {"userPrincipalName": "<< sAMAccountName >>@" + domain,
                                      "displayName": "displayName", "accountEnabled": True},
                       "password": "generate"},
            "update": {"attributes": {"givenName": "givenName", "surname": "sn", "department": "department",
                                      "jobTitle": "title", "manager": {"reference": "manager"}}},
            "deprovision": {"action": "disable"},
        },
        "memberships": [{"group": "memberOfNames", "create_missing": True}],
        "connection_secrets": {"corp_ad": {"bind_password": AD_PASSWORD}},
    }
    task = {"name": "sync", "idsync.entra.sync": options, "register": "r"}
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    r = run.task("sync")
    assert r["summary"]["created"] == 3 and r["summary"]["groups_created"] == 2, r
    cloud = dict((u["employeeId"], u) for u in admin.list("/users", {"$select": "id,employeeId,userPrincipalName,"
                                                                               "department,accountEnabled"})
                 if u.get("employeeId"))
    assert cloud["A2"]["userPrincipalName"] == "ann.able@" + domain and cloud["A2"]["department"] == "Sales"
    manager = admin.call("GET", "/users/%s/manager" % cloud["A2"]["id"])
    assert manager["id"] == cloud["A1"]["id"]

    def cloud_groups():
        by_id = dict((u["id"], e) for e, u in cloud.items())
        out = {}
        for group in admin.list("/groups", {"$select": "id,displayName"}):
            members = admin.list("/groups/%s/members" % group["id"], {"$select": "id"})
            out[group["displayName"]] = set(by_id.get(m["id"]) for m in members)
        return out
    assert cloud_groups() == {"Sales team": {"A2"}, "Everyone": {"A1", "A2", "A3"}}

    # Ben joins Sales in AD, Ann is disabled: the membership follows and Ann is disabled in Entra
    ad.conn.modify(sales, {"member": [(ldap3.MODIFY_ADD, [ben])]})
    ad.modify(ann, userAccountControl="514")
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    r = run.task("sync")
    s = r["summary"]
    assert (s["deprovisioned"], s["membership_added"], s["membership_removed"]) == (1, 1, 2), r
    # Ann left the scope: disabled, and out of the groups this workflow fills
    assert cloud_groups() == {"Sales team": {"A3"}, "Everyone": {"A1", "A3"}}
    users = dict((u["employeeId"], u) for u in admin.list("/users", {"$select": "employeeId,accountEnabled"})
                 if u.get("employeeId"))
    assert users["A2"]["accountEnabled"] is False
    run = run_playbook(tmp_path, [task])
    assert run.task("sync")["changed"] is False, run


def test_entra_to_ad_writeback(tmp_path, ad, emulator):
    admin = EmulatorAdmin(emulator)
    domain = emulator.endpoints["tenant_domain"]
    dns = {}
    for number in range(1, 4):
        eid = "W%d" % number
        dns[eid] = ad.add_user("Writer %d" % number, eid, mobile="+1 555 000" if number == 3 else None)
        admin.call("POST", "/users", {
            "accountEnabled": True, "displayName": "Writer %d" % number, "mailNickname": "writer%d" % number,
            "userPrincipalName": "writer%d@%s" % (number, domain), "employeeId": eid,
            "mobilePhone": "+1 555 010%d" % number, "officeLocation": "Floor %d" % number,
            "passwordProfile": {"password": "Xy1!xy1!Xy1!", "forceChangePasswordNextSignIn": True}})
    store = tmp_path / "store.db"
    save_connections(store, admin.register_sync_app(tmp_path / "pki"))
    with Store(str(store)) as s:
        s.put_connection("corp_ad", "active_directory", ad.settings())
    options = {
        "name": "entra_writeback", "store": str(store),
        "source": {"connection": "contoso", "object_type": "user", "scope": "employeeId"},   # people with an id
        "target": {"connection": "corp_ad", "object_type": "user"},
        "match": [{"source": "employeeId", "target": "employeeID"}],
        "steps": {"update": {"attributes": {"mobile": "mobilePhone", "physicalDeliveryOfficeName": "officeLocation",
                                            "mail": "userPrincipalName"}}},
        "connection_secrets": {"corp_ad": {"bind_password": AD_PASSWORD}},
    }
    task = {"name": "sync", "idsync.entra.sync": options, "register": "r"}
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    assert run.task("sync")["summary"]["updated"] == 3
    users = ad.users(attributes=("employeeID", "mobile", "physicalDeliveryOfficeName", "mail"))
    assert users["W3"]["mobile"] == "+1 555 0103" and users["W1"]["physicalDeliveryOfficeName"] == "Floor 1"
    assert users["W2"]["mail"] == "writer2@" + domain
    # AD compares mail case-insensitively: a case-only difference is no change, and nothing is rewritten
    ad.modify(dns["W2"], mail="WRITER2@" + domain.upper())
    run = run_playbook(tmp_path, [task])
    r = run.task("sync")
    assert r["changed"] is False and r["stats"]["target"]["writes"] == 0, json.dumps(r["plan"])
