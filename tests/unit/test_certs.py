"""certs.py: PEM/PFX loading, thumbprints as the portal shows them, key pairing, key file permissions."""
import binascii
import datetime
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, NoEncryption, pkcs12

from idsync_testlib import cert_pem, key_pem, make_cert, make_key, write
from ansible_collections.idsync.entra.plugins.module_utils import certs
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError


@pytest.fixture
def pair():
    return make_cert("idsync-sync-app")


def sha1_upper(cert):
    return binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode().upper()


def test_combined_pem(tmp_path, pair):
    cert, key = pair
    path = write(tmp_path / "app.pem", cert_pem(cert) + key_pem(key))
    info = certs.load_certificate(path)
    assert info.thumbprint_sha1 == sha1_upper(cert)
    assert len(info.thumbprint_sha1) == 40 and info.thumbprint_sha1.isupper()
    assert info.thumbprint_sha256 == binascii.hexlify(cert.fingerprint(hashes.SHA256())).decode().upper()
    assert info.subject == "CN=idsync-sync-app"
    assert info.not_before.tzinfo is not None and info.not_after > info.not_before
    assert info.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert info.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert info.key_path == path
    assert certs.key_matches_certificate(info.certificate, info.private_key)


def test_key_first_and_traditional_rsa_key(tmp_path, pair):
    cert, key = pair
    path = write(tmp_path / "app.pem", key_pem(key, traditional=True) + cert_pem(cert))
    assert certs.load_certificate(path).thumbprint_sha1 == sha1_upper(cert)


def test_separate_key_file(tmp_path, pair):
    cert, key = pair
    cpath = write(tmp_path / "app.crt", cert_pem(cert), 0o644)
    kpath = write(tmp_path / "app.key", key_pem(key))
    info = certs.load_certificate(cpath, kpath)
    assert info.key_path == kpath and info.private_key is not None


def test_certificate_only(tmp_path, pair):
    cert, _ = pair
    info = certs.load_certificate(write(tmp_path / "app.crt", cert_pem(cert), 0o644))
    assert info.private_key is None and info.private_key_pem is None


def test_chain_picks_the_certificate_of_the_key(tmp_path, pair):
    cert, key = pair
    ca, _ = make_cert("some CA", ca=True)
    path = write(tmp_path / "chain.pem", cert_pem(ca) + cert_pem(cert) + key_pem(key))
    assert certs.load_certificate(path).thumbprint_sha1 == sha1_upper(cert)


def test_ec_key(tmp_path):
    cert, key = make_cert("ec", key=make_key("ec"))
    info = certs.load_certificate(write(tmp_path / "ec.pem", cert_pem(cert) + key_pem(key)))
    assert info.thumbprint_sha1 == sha1_upper(cert)


def test_mismatched_key_names_both_files_not_the_key(tmp_path, pair):
    cert, _ = pair
    other = make_key()
    cpath = write(tmp_path / "app.crt", cert_pem(cert), 0o644)
    kpath = write(tmp_path / "other.key", key_pem(other))
    with pytest.raises(ConfigError) as info:
        certs.load_certificate(cpath, kpath)
    assert cpath in info.value.msg and kpath in info.value.msg
    assert "does not belong to the certificate" in info.value.msg
    assert "PRIVATE KEY" not in info.value.msg and "MII" not in info.value.msg


def test_encrypted_key(tmp_path, pair):
    cert, key = pair
    path = write(tmp_path / "enc.pem", cert_pem(cert) + key_pem(key, passphrase="pa55word"))
    assert certs.load_certificate(path, passphrase="pa55word").private_key is not None
    with pytest.raises(ConfigError, match="is encrypted: pass its passphrase"):
        certs.load_certificate(path)
    with pytest.raises(ConfigError, match="Cannot decrypt the private key") as info:
        certs.load_certificate(path, passphrase="Xq9-not-it")
    assert "Xq9-not-it" not in info.value.msg


def test_pfx(tmp_path, pair):
    cert, key = pair
    blob = pkcs12.serialize_key_and_certificates(b"app", key, cert, None, BestAvailableEncryption(b"pfxpass"))
    path = write(tmp_path / "app.pfx", blob)
    info = certs.load_certificate(path, passphrase="pfxpass")
    assert info.thumbprint_sha1 == sha1_upper(cert) and info.key_path == path
    with pytest.raises(ConfigError, match="Cannot open PFX file"):
        certs.load_certificate(path, passphrase="nope")
    plain = write(tmp_path / "plain.p12", pkcs12.serialize_key_and_certificates(b"a", key, cert, None, NoEncryption()))
    assert certs.load_certificate(plain).private_key is not None


def test_not_a_certificate(tmp_path):
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        certs.load_certificate(write(tmp_path / "x.pem", b"hello"))
    with pytest.raises(ConfigError, match="Cannot read certificate_path"):
        certs.load_certificate(str(tmp_path / "missing.pem"))


@pytest.mark.parametrize("value", [
    "3a5f0c1d2e4b6a7980abcdef0123456789abcdef",
    "3A:5F:0C:1D:2E:4B:6A:79:80:AB:CD:EF:01:23:45:67:89:AB:CD:EF",
    "3a 5f 0c 1d 2e 4b 6a 79 80 ab cd ef 01 23 45 67 89 ab cd ef",
    " 3A5F0C1D2E4B6A7980ABCDEF0123456789ABCDEF\n",
    u"\u200e3a5f0c1d2e4b6a7980abcdef0123456789abcdef",
])
def test_normalize_thumbprint(value):
    assert certs.normalize_thumbprint(value) == "3A5F0C1D2E4B6A7980ABCDEF0123456789ABCDEF"


def test_normalize_sha256_thumbprint():
    assert certs.normalize_thumbprint("ab" * 32) == "AB" * 32


@pytest.mark.parametrize("value", ["", None, "xyz", "3A5F", "3A5F0C1D2E4B6A7980ABCDEF0123456789ABCDEG", "ab" * 21])
def test_normalize_thumbprint_rejects(value):
    with pytest.raises(ValueError):
        certs.normalize_thumbprint(value)


@pytest.mark.parametrize("mode, fails, who", [(0o600, False, None), (0o400, False, None), (0o640, True, "its group"),
                                              (0o644, True, "others"), (0o604, True, "others")])
def test_key_file_permissions(tmp_path, mode, fails, who):
    path = write(tmp_path / "k.pem", b"x", mode)
    if not fails:
        certs.check_key_file_permissions(path)
        return
    with pytest.raises(ConfigError) as info:
        certs.check_key_file_permissions(path)
    assert "readable by " + who in info.value.msg
    assert "chmod 600 " + path in info.value.msg


def test_check_validity(tmp_path):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=40)
    cert, key = make_cert("old", not_before=old, days=10)
    info = certs.load_certificate(write(tmp_path / "old.pem", cert_pem(cert) + key_pem(key)))
    with pytest.raises(ConfigError, match="expired on"):
        certs.check_validity(info)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    cert, key = make_cert("future", not_before=future)
    info = certs.load_certificate(write(tmp_path / "f.pem", cert_pem(cert) + key_pem(key)))
    with pytest.raises(ConfigError, match="is not valid before"):
        certs.check_validity(info)


def test_key_matches_certificate(pair):
    cert, key = pair
    assert certs.key_matches_certificate(cert, key)
    assert not certs.key_matches_certificate(cert, make_key())
    assert not certs.key_matches_certificate(cert, make_key("ec"))
    assert not certs.key_matches_certificate(cert, None)
    assert os.environ is not None
