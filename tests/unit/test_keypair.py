"""Unit tests for plugins/module_utils/keypair.py: atomic 0600 writes, subject parsing, renewal decisions."""
import datetime
import os
import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.idsync.entra.plugins.module_utils import keypair  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError  # noqa: E402


@pytest.fixture
def open_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_atomic_write_never_wider_than_0600(tmp_path, monkeypatch, open_umask):
    seen = []
    real_rename = os.rename

    def spy(src, dst):
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        real_rename(src, dst)

    real_write_fdopen = os.fdopen

    def fdopen_spy(fd, *a, **kw):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))  # mode at creation, before any byte is written
        return real_write_fdopen(fd, *a, **kw)

    monkeypatch.setattr(keypair.os, "rename", spy)
    monkeypatch.setattr(keypair.os, "fdopen", fdopen_spy)
    target = tmp_path / "new" / "k.pem"
    keypair.atomic_write(str(target), b"secret", 0o600)
    assert seen == [0o600, 0o600]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(target.parent).st_mode) == 0o700
    assert target.read_bytes() == b"secret"
    assert os.listdir(target.parent) == ["k.pem"]


def test_atomic_write_replaces_loose_file(tmp_path, open_umask):
    target = tmp_path / "k.pem"
    target.write_bytes(b"old")
    os.chmod(target, 0o666)
    keypair.atomic_write(str(target), b"new", 0o600)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600 and target.read_bytes() == b"new"


def test_atomic_write_cleans_up_on_failure(tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keypair.os, "rename", boom)
    with pytest.raises(OSError):
        keypair.atomic_write(str(tmp_path / "k.pem"), b"x", 0o600)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("CN=idsync.entra connector", "CN=idsync.entra connector"),
        ("CN=a,O=Contoso", "CN=a,O=Contoso"),
        ("/O=Contoso/CN=a", "CN=a,O=Contoso"),
    ],
)
def test_parse_subject(text, expected):
    assert keypair.parse_subject(text).rfc4514_string() == expected


def test_parse_subject_rejects_garbage():
    with pytest.raises(ConfigError):
        keypair.parse_subject("no equals sign")


def test_renewal_window(tmp_path):
    params = {"certificate_path": str(tmp_path / "c.pem"), "valid_days": 40, "renew_before_days": 30}
    first = keypair.ensure_certificate(params)
    assert first["changed"]
    same = keypair.ensure_certificate(params)
    assert not same["changed"]
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=11)
    renewed = keypair.ensure_certificate(params, check_mode=True, now=later)
    assert renewed["changed"] and "within renew_before_days (30)" in renewed["reason"]
    expired = keypair.ensure_certificate(params, check_mode=True, now=later + datetime.timedelta(days=40))
    assert "expired on" in expired["reason"]
