"""Fixtures for the integration tests; the helpers they use live in adhoc_support.py (importable by name, unlike
conftest modules, which pytest loads once per directory under the same module name)."""
import pytest

from adhoc_support import GraphAdmin


@pytest.fixture
def graph_admin(emulator):
    return GraphAdmin(emulator)


@pytest.fixture
def emulator_auth(emulator):
    """Auth options pointing a module at the emulator (no credential yet)."""
    ep = emulator.endpoints
    return {"tenant_id": ep["tenant_id"], "authority_host": ep["authority_host"],
            "graph_endpoint": ep["graph_endpoint"], "ca_path": ep["ca_path"]}
