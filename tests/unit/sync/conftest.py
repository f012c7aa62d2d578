"""Unit tests of the sync engine and its connectors: pure, no network, no emulator."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
COLLECTIONS = ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture
def store(tmp_path):
    from ansible_collections.idsync.entra.plugins.module_utils.store import Store
    with Store(str(tmp_path / "store.db")) as st:
        yield st
