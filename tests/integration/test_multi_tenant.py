"""playbooks/multi_tenant.yml with three emulator tenants in one ansible-playbook run (--forks 3): each tenant gets
its own users and groups, under its own workflow (own lock, managed set and history) in one store; a second run
changes nothing; a leaver in one tenant is deprovisioned there only; the tenants really ran side by side."""
import pytest

from multi_tenant_support import host_result, run_multi_tenant, start_tenants, stop_tenants, write_inventory
from sync_support import COLLECTIONS, make_people, write_people

import sys
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.idsync.entra.plugins.module_utils.store import Store  # noqa: E402

SYNC_TASK = "Sync the tenant's people into its users and department groups"
SIZES = {"contoso": 12, "fabrikam": 20, "tailspin": 7}


@pytest.fixture
def tenants(tmp_path):
    started = start_tenants(tmp_path, sorted(SIZES))
    yield started
    stop_tenants(started)


def test_three_tenants_in_one_run_with_three_forks(tmp_path, tenants):
    people = {}
    for tenant in tenants:
        people[tenant.name] = make_people(SIZES[tenant.name], seed=len(tenant.name))
        write_people(tenant.hr_file, people[tenant.name])
    inventory = write_inventory(tmp_path / "inventory.yml", tenants)
    store = tmp_path / "state" / "store.db"

    run, _wall = run_multi_tenant(tmp_path / "run1", inventory, forks=3, store=store)
    assert run.rc == 0, run
    for tenant in tenants:
        result = host_result(run, SYNC_TASK, tenant.name)
        assert result["summary"]["created"] == SIZES[tenant.name], (tenant.name, result["summary"])
        users = [u for u in tenant.admin.list("/users", {"$select": "employeeId,%s" % tenant.mark})
                 if u.get("employeeId")]
        assert len(users) == SIZES[tenant.name]
        assert set(u[tenant.mark] for u in users) == {"hr_to_entra_" + tenant.name}
    with Store(str(store)) as s:
        runs = s.runs(limit=None)
        assert sorted(r["workflow"] for r in runs) == sorted("hr_to_entra_" + n for n in SIZES)
        spans = sorted((r["started"], r["finished"]) for r in runs)
    # Side by side: some tenant started before another one finished.
    assert any(spans[i + 1][0] <= spans[i][1] for i in range(len(spans) - 1)), spans

    for tenant in tenants:
        tenant.admin.reset_stats()
    write_people(tenants[0].hr_file, people[tenants[0].name][1:])       # one leaver in the first tenant
    run, _wall = run_multi_tenant(tmp_path / "run2", inventory, forks=3, store=store)
    assert run.rc == 0, run
    first = host_result(run, SYNC_TASK, tenants[0].name)
    assert first["summary"]["deprovisioned"] == 1, first["summary"]
    for tenant in tenants[1:]:
        assert host_result(run, SYNC_TASK, tenant.name)["changed"] is False
        assert tenant.admin.stats()["writes"] == 0
