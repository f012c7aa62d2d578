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


# -- real directory servers ----------------------------------------------------------------------------------------
import os  # noqa: E402

from ldap_servers import Directory, OpenLdap, SambaDC, ServerStartError, ensure_packages  # noqa: E402
from tls_ca import TestCA  # noqa: E402


def _worker_index():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


@pytest.fixture(scope="session")
def directory_ca(tmp_path_factory):
    try:
        ensure_packages()
    except ServerStartError as exc:
        pytest.fail(str(exc))
    return TestCA(tmp_path_factory.mktemp("directory-ca"))


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory, directory_ca):
    """One Samba AD DC per test session (per xdist worker); a DC that cannot start fails the tests that use it."""
    dc = SambaDC(tmp_path_factory.mktemp("samba"), directory_ca, index=_worker_index())
    try:
        dc.provision()
        dc.start()
    except ServerStartError as exc:
        dc.stop()
        pytest.fail("the Samba AD DC did not start: %s" % exc)
    yield dc
    dc.stop()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory, directory_ca):
    server = OpenLdap(tmp_path_factory.mktemp("slapd"), directory_ca)
    try:
        server.start()
    except ServerStartError as exc:
        server.stop()
        pytest.fail("OpenLDAP slapd did not start: %s" % exc)
    yield server
    server.stop()


@pytest.fixture
def ad(samba_dc):
    """This test's own OU (with People and Groups) in the session's Samba DC."""
    directory = Directory(samba_dc, "active_directory")
    yield directory
    directory.close()


@pytest.fixture
def openldap(slapd):
    directory = Directory(slapd, "ldap")
    yield directory
    directory.close()
