"""Scale: a tenant of 100,000 users and 10,000 groups, listed the way a full sync reads it.

Learn "Paging Microsoft Graph data": $top up to 999 for directory objects, follow @odata.nextLink to the end.
The emulator must serve this in well under a minute (the aim is under ten seconds end to end).
"""
import time

import requests

USERS, GROUPS = 100_000, 10_000


def test_list_100k_users_with_top_999_and_select(entra):
    seeded = entra.emulator.admin("POST", "seed", {"generate": {"users": USERS, "groups": GROUPS, "seed": 11}})
    assert seeded["users"] == USERS + 1   # plus the bootstrap administrator
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {entra.app_token()}"
    link = f"{entra.base_url}/v1.0/users?$top=999&$select=id,userPrincipalName,department"
    started, ids, pages = time.monotonic(), set(), 0
    while link and pages < 200:
        response = session.get(link, verify=entra.ca_path, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        ids.update(user["id"] for user in body["value"])
        link, pages = body.get("@odata.nextLink"), pages + 1
    elapsed = time.monotonic() - started
    assert len(ids) == USERS + 1 and pages == 101
    assert elapsed < 60, f"listing took {elapsed:.1f}s"

    eventual = {"ConsistencyLevel": "eventual"}
    counted = session.get(f"{entra.base_url}/v1.0/groups?$count=true&$top=1", headers=eventual,
                          verify=entra.ca_path, timeout=60).json()
    assert counted["@odata.count"] == GROUPS
    members = session.get(f"{entra.base_url}/v1.0/groups/{counted['value'][0]['id']}/members?$select=id",
                          verify=entra.ca_path, timeout=60).json()["value"]
    assert 1 <= len(members) <= 40
    with_manager = session.get(f"{entra.base_url}/v1.0/users/{next(iter(ids))}?$expand=manager($select=id)",
                               verify=entra.ca_path, timeout=60)
    assert with_manager.status_code == 200
