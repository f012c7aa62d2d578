"""Delta reads, ranged retrieval, uniqueness look-ups and OpenLDAP workflows against the real servers (the engine
called in-process, so the connector's request counters can be checked exactly)."""
import csv
import sys

import pytest

from ansible_runner import COLLECTIONS
from ldap_servers import AD_PASSWORD, LDAP_LIMITED, LDAP_LIMITED_SIZE, LDAP_PASSWORD
from sync_support import write_people

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils.connectors import get_connector  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.names import canonical_dn  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.store import Store  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.sync.engine import run_workflow  # noqa: E402


def directory_to_csv(store, out, kind, delta=True):
    """Directory users -> a CSV file: the simplest target, so the source's reads are what is measured."""
    key = "employeeID" if kind == "active_directory" else "employeeNumber"
    with Store(str(store)) as s:
        s.put_connection("people_file", "csv", {"path": str(out), "key": ["EmployeeID"]})
    return {
        "name": "dir_to_csv", "store": str(store),
        "source": {"connection": "corp", "object_type": "user"},
        "target": {"connection": "people_file", "object_type": "row"},
        "match": [{"source": key, "target": "EmployeeID"}],
        "steps": {"create": {"attributes": {"EmployeeID": key, "Name": "displayName", "Title": "title"}},
                  "update": {"attributes": {"Name": "displayName", "Title": "title"}},
                  "deprovision": {"action": "delete"}},
        "delta": delta,
        "connection_secrets": {"corp": {"bind_password": AD_PASSWORD if kind == "active_directory" else LDAP_PASSWORD}},
    }


def rows(path):
    with open(path, newline="") as handle:
        return dict((r["EmployeeID"], r) for r in csv.DictReader(handle))


@pytest.mark.parametrize("kind", ["active_directory", "ldap"])
def test_delta_after_ten_changes_reads_only_those(tmp_path, request, kind):
    directory = request.getfixturevalue("ad" if kind == "active_directory" else "openldap")
    dns = [directory.add_user("Person %02d" % n, "P%02d" % n, displayName="Person %02d" % n, title="Staff")
           for n in range(40)]
    store = tmp_path / "store.db"
    with Store(str(store)) as s:
        s.put_connection("corp", kind, directory.settings())
    out = tmp_path / "people.csv"
    options = directory_to_csv(store, out, kind)
    first = run_workflow(options)
    assert first["reads"]["source"]["mode"] == "delta (initial)" and first["summary"]["created"] == 40, first
    again = run_workflow(options)
    assert again["reads"]["source"]["mode"] == "delta" and again["changed"] is False, again
    assert again["stats"]["source"]["delta_changed"] == 0

    # ten changes: eight titles, one new person, one deleted
    for dn in dns[:8]:
        directory.modify(dn, title="Lead")
    directory.add_user("Person 99", "P99", displayName="Person 99", title="New")
    directory.conn.delete(dns[39])
    result = run_workflow(options)
    assert result["reads"]["source"]["mode"] == "delta", result
    assert result["stats"]["source"]["delta_changed"] == 10, result["stats"]
    s = result["summary"]
    assert (s["updated"], s["created"], s["deprovisioned"]) == (8, 1, 1), s
    table = rows(out)
    assert table["P00"]["Title"] == "Lead" and table["P99"]["Name"] == "Person 99" and "P39" not in table
    if kind == "active_directory":
        # only the changed entries come back with their attributes (the rest are anchors and the position)
        assert result["stats"]["source"]["entries"] <= 2 * 10 + 3, result["stats"]
    assert run_workflow(options)["changed"] is False


def test_a_read_cut_by_the_size_limit_fails_and_deprovisions_no_one(tmp_path, openldap):
    """OpenLDAP bounds paged searches by the account's size limit and answers sizeLimitExceeded with the entries so
    far: taken as data, everyone after the cut would be a leaver. The run must fail and change nothing."""
    for n in range(LDAP_LIMITED_SIZE + 3):
        openldap.add_user("Person %02d" % n, "P%02d" % n, displayName="Person %02d" % n, title="Staff")
    store = tmp_path / "store.db"
    with Store(str(store)) as s:
        s.put_connection("corp", "ldap", openldap.settings(page_size=2))   # pages smaller than the limit, too
    out = tmp_path / "people.csv"
    options = directory_to_csv(store, out, "ldap", delta=False)
    assert run_workflow(options)["summary"]["created"] == LDAP_LIMITED_SIZE + 3          # the rootdn has no limit
    with Store(str(store)) as s:
        s.put_connection("corp", "ldap", openldap.settings(page_size=2, bind_dn=LDAP_LIMITED))
    before = out.read_bytes()
    with pytest.raises(IdsyncError) as failed:
        run_workflow(options)
    assert "size limit after %d entries" % LDAP_LIMITED_SIZE in str(failed.value), failed.value
    assert LDAP_LIMITED in str(failed.value) and out.read_bytes() == before


def test_delta_reads_everything_when_another_dc_answers(tmp_path, ad):
    ad.add_user("Solo", "S1", displayName="Solo")
    store = tmp_path / "store.db"
    with Store(str(store)) as s:
        s.put_connection("corp", "active_directory", ad.settings())
    options = directory_to_csv(store, tmp_path / "out.csv", "active_directory")
    run_workflow(options)
    with Store(str(store)) as s:                      # pretend the mark came from another DC
        scope = "delta:dir_to_csv:corp:user"
        state = s.get_state(scope, "delta").replace("CN=NTDS Settings", "CN=NTDS Settings,CN=DC2")
        s.set_state(scope, "delta", state)
    result = run_workflow(options)
    assert result["reads"]["source"]["mode"] == "delta (initial)"
    assert any("another domain controller answered" in n for n in result["notes"]), result["notes"]


def test_large_group_members_come_in_ranges(tmp_path, ad):
    members = [ad.add_user("Member %02d" % n, "M%02d" % n) for n in range(25)]
    ad.add_group("Big group", members)
    record = {"name": "corp", "connector": "active_directory", "settings": ad.settings()}
    connector = get_connector(record, {"auth_overrides": {"bind_password": AD_PASSWORD}, "member_range_size": 10})
    users = connector.read("user", ["employeeID"]).objects
    groups = connector.read("group", ["displayName", "member"]).objects
    (group,) = groups.values()
    assert sorted(group["member"]) == sorted(users)          # 25 ids, fetched as ranges 0-9, 10-19, 20-*
    assert connector.stats()["searches"] == 3               # users, groups (members 0-9), then members 10-*
    connector.close()


def test_organizational_units_are_read_and_created_where_allowed(ad):
    record = {"name": "corp", "connector": "active_directory", "settings": ad.settings(create_ous=True)}
    connector = get_connector(record, {"auth_overrides": {"bind_password": AD_PASSWORD}})
    from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import Change
    attributes = connector.prepare_create("organizational_unit", {"dn": "OU=Lab,OU=R&D," + ad.base,
                                                                  "description": "made by the test"})
    (result,) = connector.apply("organizational_unit", [Change("create", "lab", attributes=attributes)])
    assert result.ok, result.error
    ous = connector.read("organizational_unit", ["ou", "description", "dn"]).objects
    by_name = dict((o["ou"], o) for o in ous.values())
    assert sorted(by_name) == ["Groups", "Lab", "People", "R&D", ad.base.split(",")[0][3:]]
    assert by_name["Lab"]["description"] == "made by the test" and result.id in ous
    connector.close()


def test_unique_value_lookup_escapes_filter_values(ad):
    ad.add_user("Taken", "T1", sAMAccountName="taken.name", mail="taken@idsync.test")
    record = {"name": "corp", "connector": "active_directory", "settings": ad.settings()}
    connector = get_connector(record, {"auth_overrides": {"bind_password": AD_PASSWORD}})
    assert connector.taken_values("user", "sAMAccountName", ["TAKEN.name", "free.name"]) == {"taken.name"}
    # an injected filter matches nothing instead of everything
    assert connector.taken_values("user", "sAMAccountName", ["*)(objectClass=*", "*"]) == set()
    spec = connector.schema("user")["sAMAccountName"]
    assert (spec.max_length, spec.unique_in, spec.case_insensitive) == (20, ("user", "group"), True)
    connector.close()


def test_openldap_hr_sync_groups_rename_and_delete(tmp_path, openldap):
    store = tmp_path / "store.db"
    hr = tmp_path / "hr.csv"
    write_people(hr, [
        {"EmployeeID": "L1", "GivenName": "Lea", "Surname": "Lang", "Department": "Ops", "ManagerID": "L2",
         "Status": "Active", "Title": "Op"},
        {"EmployeeID": "L2", "GivenName": "Max", "Surname": "Moe, Sr.", "Department": "Ops", "ManagerID": "",
         "Status": "Active", "Title": "Boss"},
    ])
    with Store(str(store)) as s:
        s.put_connection("hr_file", "csv", {"path": str(hr), "key": ["EmployeeID"]})
        s.put_connection("corp", "ldap", openldap.settings())
    options = {
        "name": "hr_to_ldap", "store": str(store),
        "source": {"connection": "hr_file", "object_type": "row"},
        "target": {"connection": "corp", "object_type": "user"},
        "match": [{"source": "EmployeeID", "target": "employeeNumber"}],
        "steps": {"create": {"attributes": {"uid": "<< (GivenName ~ '.' ~ Surname) | mail_safe | lower >>"},
                             "password": "generate"},
                  "update": {"attributes": {"dn": "cn=<< GivenName >> << Surname >>," + openldap.people,
                                            "cn": "<< GivenName >> << Surname >>", "sn": "Surname",
                                            "givenName": "GivenName", "title": "Title",
                                            "manager": {"reference": "ManagerID"}}},
                  "deprovision": {"action": "delete"}},
        "memberships": [{"group": "<< Department >> team", "create_missing": True, "match_attribute": "cn"}],
        "connection_secrets": {"corp": {"bind_password": LDAP_PASSWORD}},
    }
    result = run_workflow(options)
    assert result["summary"]["created"] == 2 and result["errors"] == [], result
    users = openldap.users()
    assert canonical_dn(users["L2"]["dn"]) == canonical_dn("cn=Max Moe\\, Sr.,%s" % openldap.people)
    assert users["L1"]["manager"] == users["L2"]["dn"]
    (group,) = openldap.entries(openldap.groups, "(objectClass=groupOfNames)", ["cn", "member"])
    assert str(group.cn) == "Ops team"
    assert sorted(m.lower() for m in group.member.values if m.lower() != group.entry_dn.lower()) == \
        sorted(u["dn"].lower() for u in users.values())
    # the initial password went through RFC 3062, so slapd stored a hash, never the password itself
    (entry,) = openldap.entries(users["L1"]["dn"], "(objectClass=*)", ["userPassword"])
    assert entry.userPassword.value.startswith("{SSHA}"), entry.userPassword.value
    assert run_workflow(options)["changed"] is False

    # Lea is renamed (DN follows), Max leaves (deleted, and out of the group)
    write_people(hr, [{"EmployeeID": "L1", "GivenName": "Lea", "Surname": "Lang-Ng", "Department": "Ops",
                       "ManagerID": "", "Status": "Active", "Title": "Op"}])
    result = run_workflow(options)
    assert (result["summary"]["updated"], result["summary"]["deprovisioned"]) == (1, 1), result["errors"]
    users = openldap.users()
    assert sorted(users) == ["L1"] and users["L1"]["dn"] == "cn=Lea Lang-Ng,%s" % openldap.people
    again = run_workflow(options)
    assert again["changed"] is False, (again["plan"]["memberships"], again["summary"])
