"""idsync.entra.certificate through real ansible-playbook runs."""
import base64
import datetime
import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_runner import COLLECTIONS, run_playbook

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils import certs  # noqa: E402


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def cert_task(name="cert", **options):
    return {"name": name, "idsync.entra.certificate": options, "register": "r"}


@pytest.fixture
def paths(tmp_path):
    d = tmp_path / "pki"
    return {"certificate_path": str(d / "connector.crt"), "private_key_path": str(d / "connector.key")}


def assert_no_key_material(run):
    assert "PRIVATE KEY" not in run.output
    for record in run.records:
        assert "PRIVATE KEY" not in str(record["result"])


def test_create_then_idempotent(tmp_path, paths):
    run = run_playbook(tmp_path, [cert_task(**paths)])
    assert run.rc == 0, run
    r = run.task("cert")
    assert r["changed"] is True
    assert "create" in r["reason"]
    assert len(r["thumbprint"]) == 40 and r["thumbprint"] == r["thumbprint"].upper()
    assert len(r["thumbprint_sha256"]) == 64
    assert r["subject"] == "CN=idsync.entra connector"
    assert r["key_type"] == "rsa" and r["key_size"] == 2048
    assert r["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "private_key" not in r
    assert_no_key_material(run)
    # files: key 0600, cert 0644; the directory we created is private
    assert mode(paths["private_key_path"]) == 0o600
    assert mode(paths["certificate_path"]) == 0o644
    assert mode(os.path.dirname(paths["private_key_path"])) == 0o700
    # what the client layer loads agrees with what the module returned
    info = certs.load_certificate(paths["certificate_path"], paths["private_key_path"])
    assert info.thumbprint_sha1 == r["thumbprint"]
    assert info.thumbprint_sha256 == r["thumbprint_sha256"]
    der = base64.b64decode(r["certificate_base64"])
    assert der == info.certificate.public_bytes(serialization.Encoding.DER)
    assert x509.load_pem_x509_certificate(r["certificate"].encode()).public_bytes(serialization.Encoding.DER) == der
    not_after = datetime.datetime.fromisoformat(r["not_after"].replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(days=729) < not_after - now <= datetime.timedelta(days=730)
    # no temp files left behind
    assert sorted(os.listdir(os.path.dirname(paths["certificate_path"]))) == ["connector.crt", "connector.key"]

    again = run_playbook(tmp_path, [cert_task(**paths)])
    assert again.rc == 0, again
    r2 = again.task("cert")
    assert r2["changed"] is False
    assert r2["thumbprint"] == r["thumbprint"]
    assert "valid until" in r2["reason"]
    assert "changed=0" in again.stdout


def test_check_mode_creates_nothing(tmp_path, paths):
    run = run_playbook(tmp_path, [cert_task(**paths)], check=True, diff=True)
    assert run.rc == 0, run
    r = run.task("cert")
    assert r["changed"] is True
    assert r["reason"].startswith("would create")
    assert r["thumbprint"] is None
    assert r["diff"]["before"] == {}
    assert r["diff"]["after"]["thumbprint"] == "(new)"
    assert r["diff"]["after"]["subject"] == "CN=idsync.entra connector"
    assert not os.path.exists(os.path.dirname(paths["certificate_path"]))


def test_diff_shows_before_and_after(tmp_path, paths):
    first = run_playbook(tmp_path, [cert_task(**paths)], diff=True)
    assert first.rc == 0, first
    r1 = first.task("cert")
    assert r1["diff"]["before"] == {}
    assert r1["diff"]["after"] == {
        "thumbprint": r1["thumbprint"],
        "not_after": r1["not_after"],
        "subject": "CN=idsync.entra connector",
        "key_type": "rsa",
        "key_size": 2048,
    }
    assert r1["thumbprint"] in first.stdout  # rendered by the default callback

    # without --diff, no diff key
    plain = run_playbook(tmp_path, [cert_task(**paths)])
    assert "diff" not in plain.task("cert")

    change = run_playbook(tmp_path, [cert_task(subject="CN=other,O=Contoso", key_size=3072, **paths)], diff=True)
    assert change.rc == 0, change
    r2 = change.task("cert")
    assert r2["changed"] is True
    assert r2["diff"]["before"]["thumbprint"] == r1["thumbprint"]
    assert r2["diff"]["after"]["subject"] == "CN=other,O=Contoso"
    assert r2["diff"]["after"]["key_size"] == 3072
    assert r2["diff"]["after"]["thumbprint"] == r2["thumbprint"] != r1["thumbprint"]


def test_expiring_soon_is_renewed(tmp_path, paths):
    short = run_playbook(tmp_path, [cert_task(valid_days=10, renew_before_days=5, **paths)])
    assert short.rc == 0, short
    old = short.task("cert")
    # still outside renew_before_days = 5: kept
    kept = run_playbook(tmp_path, [cert_task(valid_days=10, renew_before_days=5, **paths)])
    assert kept.task("cert")["changed"] is False

    # check mode: reports the renewal, touches nothing
    before_bytes = Path(paths["certificate_path"]).read_bytes()
    check = run_playbook(tmp_path, [cert_task(**paths)], check=True)
    rc = check.task("cert")
    assert rc["changed"] is True and "expires on" in rc["reason"] and "renew_before_days (30)" in rc["reason"]
    assert Path(paths["certificate_path"]).read_bytes() == before_bytes

    renew = run_playbook(tmp_path, [cert_task(**paths)])  # default renew_before_days 30 > 10 days left
    assert renew.rc == 0, renew
    new = renew.task("cert")
    assert new["changed"] is True
    assert "regenerate" in new["reason"] and "expires on" in new["reason"]
    assert new["thumbprint"] != old["thumbprint"]
    assert mode(paths["private_key_path"]) == 0o600


def test_passphrase_and_pfx(tmp_path, paths):
    pfx = str(tmp_path / "pki" / "connector.pfx")
    task = cert_task(passphrase="correct horse battery", pfx_path=pfx, **paths)
    run = run_playbook(tmp_path, [task])
    assert run.rc == 0, run
    r = run.task("cert")
    assert "correct horse battery" not in run.output
    assert b"ENCRYPTED PRIVATE KEY" in Path(paths["private_key_path"]).read_bytes()
    assert mode(paths["private_key_path"]) == 0o600
    assert mode(pfx) == 0o600
    info = certs.load_certificate(paths["certificate_path"], paths["private_key_path"], "correct horse battery")
    assert info.thumbprint_sha1 == r["thumbprint"]
    key, cert, _extra = pkcs12.load_key_and_certificates(Path(pfx).read_bytes(), b"correct horse battery")
    assert cert.fingerprint(hashes.SHA1()).hex().upper() == r["thumbprint"]
    assert key is not None

    again = run_playbook(tmp_path, [task])
    assert again.task("cert")["changed"] is False, again

    # no passphrase for an encrypted key: a clear failure, files untouched
    key_bytes = Path(paths["private_key_path"]).read_bytes()
    nopass = run_playbook(tmp_path, [cert_task(**paths)])
    assert nopass.rc != 0
    assert nopass.failed("cert")
    assert "is encrypted" in nopass.task("cert")["msg"]
    wrong = run_playbook(tmp_path, [cert_task(passphrase="wrong", **paths)])
    assert wrong.failed("cert")
    assert "Cannot decrypt" in wrong.task("cert")["msg"]
    assert "wrong" not in wrong.task("cert")["msg"].replace("Cannot decrypt", "")
    assert Path(paths["private_key_path"]).read_bytes() == key_bytes

    # PFX deleted: rewritten from the same pair
    os.unlink(pfx)
    rewrite = run_playbook(tmp_path, [task])
    rr = rewrite.task("cert")
    assert rr["changed"] is True and "PFX" in rr["reason"] and rr["thumbprint"] == r["thumbprint"]
    assert os.path.exists(pfx)


def test_add_passphrase_to_existing_key_keeps_certificate(tmp_path, paths):
    first = run_playbook(tmp_path, [cert_task(**paths)])
    thumb = first.task("cert")["thumbprint"]
    enc = run_playbook(tmp_path, [cert_task(passphrase="s3cret-pass", **paths)])
    r = enc.task("cert")
    assert r["changed"] is True and "encrypt" in r["reason"]
    assert r["thumbprint"] == thumb
    assert b"ENCRYPTED PRIVATE KEY" in Path(paths["private_key_path"]).read_bytes()


def test_combined_pem(tmp_path):
    path = str(tmp_path / "connector.pem")
    run = run_playbook(tmp_path, [cert_task(certificate_path=path)])
    assert run.rc == 0, run
    r = run.task("cert")
    data = Path(path).read_bytes()
    assert b"PRIVATE KEY" in data and b"BEGIN CERTIFICATE" in data
    assert mode(path) == 0o600
    assert r["private_key_path"] == path
    assert certs.load_certificate(path).thumbprint_sha1 == r["thumbprint"]
    assert run_playbook(tmp_path, [cert_task(certificate_path=path)]).task("cert")["changed"] is False


def test_mismatched_key_is_regenerated(tmp_path, paths):
    first = run_playbook(tmp_path, [cert_task(**paths)]).task("cert")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    Path(paths["private_key_path"]).write_bytes(
        other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    run = run_playbook(tmp_path, [cert_task(**paths)])
    r = run.task("cert")
    assert r["changed"] is True and "does not match" in r["reason"]
    assert r["thumbprint"] != first["thumbprint"]
    certs.load_certificate(paths["certificate_path"], paths["private_key_path"])  # matches again


def test_missing_key_is_regenerated(tmp_path, paths):
    run_playbook(tmp_path, [cert_task(**paths)])
    os.unlink(paths["private_key_path"])
    r = run_playbook(tmp_path, [cert_task(**paths)]).task("cert")
    assert r["changed"] is True and "no private key" in r["reason"]


def test_loose_key_mode_is_fixed(tmp_path, paths):
    first = run_playbook(tmp_path, [cert_task(**paths)]).task("cert")
    os.chmod(paths["private_key_path"], 0o644)
    run = run_playbook(tmp_path, [cert_task(**paths)], check=True)
    assert run.task("cert")["changed"] is True
    assert mode(paths["private_key_path"]) == 0o644  # check mode left it
    r = run_playbook(tmp_path, [cert_task(**paths)]).task("cert")
    assert r["changed"] is True and "0644 to 0600" in r["reason"]
    assert r["thumbprint"] == first["thumbprint"]
    assert mode(paths["private_key_path"]) == 0o600


def test_force_regenerates(tmp_path, paths):
    first = run_playbook(tmp_path, [cert_task(**paths)]).task("cert")
    r = run_playbook(tmp_path, [cert_task(force=True, **paths)]).task("cert")
    assert r["changed"] is True and "force" in r["reason"] and r["thumbprint"] != first["thumbprint"]


def test_ec_key(tmp_path, paths):
    r = run_playbook(tmp_path, [cert_task(key_type="ec", **paths)]).task("cert")
    assert r["key_type"] == "ec" and r["key_size"] == 256
    assert run_playbook(tmp_path, [cert_task(key_type="ec", **paths)]).task("cert")["changed"] is False
    # asking for RSA replaces the EC pair
    r2 = run_playbook(tmp_path, [cert_task(**paths)]).task("cert")
    assert r2["changed"] is True and "the key is ec 256, wanted rsa 2048" in r2["reason"]


def test_invalid_options(tmp_path, paths):
    cases = [
        ("small rsa", {"key_size": 1024}, "key_size 1024 is too small"),
        ("renew window", {"valid_days": 30, "renew_before_days": 30},
         "renew_before_days (30) must be less than valid_days (30)"),
        ("bad subject", {"subject": "not a dn"}, "is not a distinguished name"),
        ("bad curve", {"key_type": "ec", "key_size": 2048}, "not a supported EC curve size"),
    ]
    tasks = []
    for name, options, _message in cases:
        task = cert_task(name, **dict(paths, **options))
        task["ignore_errors"] = True
        tasks.append(task)
    run = run_playbook(tmp_path, tasks)
    for name, _options, message in cases:
        r = run.task(name)
        assert r["_status"] == "failed" and message in r["msg"], (name, r)
    assert not os.path.exists(paths["certificate_path"])


def test_state_absent(tmp_path, paths):
    pfx = str(tmp_path / "pki" / "c.pfx")
    run_playbook(tmp_path, [cert_task(pfx_path=pfx, **paths)])
    check = run_playbook(tmp_path, [cert_task(state="absent", pfx_path=pfx, **paths)], check=True)
    assert check.task("cert")["changed"] is True and os.path.exists(paths["private_key_path"])
    run = run_playbook(tmp_path, [cert_task(state="absent", pfx_path=pfx, **paths)], diff=True)
    r = run.task("cert")
    assert r["changed"] is True
    assert sorted(r["removed"]) == sorted([paths["certificate_path"], paths["private_key_path"], pfx])
    assert r["diff"]["after"] == {} and r["diff"]["before"]["subject"] == "CN=idsync.entra connector"
    assert not any(os.path.exists(p) for p in (paths["certificate_path"], paths["private_key_path"], pfx))
    assert run_playbook(tmp_path, [cert_task(state="absent", **paths)]).task("cert")["changed"] is False


def test_key_never_world_readable_even_with_permissive_umask(tmp_path, paths):
    """Run ansible with umask 000: the key file and its temporary file are still 0600."""
    old = os.umask(0)
    try:
        rerun = run_playbook(tmp_path / "u", [cert_task(**paths)])
    finally:
        os.umask(old)
    assert rerun.rc == 0, rerun
    assert mode(paths["private_key_path"]) == 0o600
