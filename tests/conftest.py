"""Shared fixtures: a real tenant emulator process per test session (per xdist worker)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# These machines (and many corporate hosts) set both; the client must make ca_path win regardless.
for _var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    if os.path.exists(SYSTEM_BUNDLE):
        os.environ.setdefault(_var, SYSTEM_BUNDLE)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / "collections"))


class Emulator:
    """A running emulator: its endpoints.json plus a client for the /_emulator admin API."""

    def __init__(self, process, state_dir):
        self.process = process
        self.state_dir = Path(state_dir)
        self.endpoints = json.loads((self.state_dir / "endpoints.json").read_text())
        self.base_url = self.endpoints["graph_endpoint"]
        self.ca_path = self.endpoints["ca_path"]
        self.tenant_id = self.endpoints["tenant_id"]
        self.admin_app = self.endpoints["admin"]

    def admin(self, method, path, payload=None):
        response = requests.request(
            method,
            f"{self.base_url}/_emulator/{path.lstrip('/')}",
            json=payload,
            headers={"X-Emulator-Key": self.endpoints["emulator_key"]},
            verify=self.ca_path,
            timeout=60,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self):
        self.admin("POST", "reset")


def start_emulator(state_dir, *extra_args, timeout=60):
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    endpoints = state_dir / "endpoints.json"
    if endpoints.exists():
        endpoints.unlink()
    log = open(state_dir / "emulator.log", "wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "emulator"), "serve", "--port", "0", "--state-dir", str(state_dir), *extra_args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while not endpoints.exists():
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited with {process.returncode}: {(state_dir / 'emulator.log').read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("emulator did not write endpoints.json in time")
        time.sleep(0.05)
    return Emulator(process, state_dir)


@pytest.fixture(scope="session")
def emulator_process(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emulator"))
    yield emu
    emu.process.terminate()
    try:
        emu.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        emu.process.kill()


@pytest.fixture
def emulator(emulator_process):
    """The session's emulator, reset to its seeded state (default settings, no faults) for each test."""
    emulator_process.reset()
    yield emulator_process


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server of the tests' own (tests/postgres_server.py), one per session and xdist worker."""
    from postgres_server import PostgresServer
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A URL (with its password) of a new, empty database on the tests' PostgreSQL server."""
    return postgres_server.create_database()


@pytest.fixture
def oidc_issuer(emulator):
    """A test OpenID Connect issuer (tests/oidc_issuer.py) whose certificate the emulator trusts."""
    from oidc_issuer import OidcIssuer
    issuer = OidcIssuer(emulator.state_dir)
    yield issuer
    issuer.stop()
