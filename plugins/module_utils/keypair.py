# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ensure a connector certificate + private key on disk (the logic behind ``idsync.entra.certificate``).

A valid existing pair is reused; it is regenerated when missing, unreadable, mismatched, not what was asked for
(subject, key type, key size) or expiring within ``renew_before_days``. Files holding a private key are written
0600 atomically (a 0600 temporary file in the same directory, renamed over the target), certificates 0644.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import os
import re
import stat
import tempfile
import traceback

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.idsync.entra.plugins.module_utils.certs import certificate_time, key_matches_certificate
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.files import make_private_directory

KEY_MODE = 0o600
CERT_MODE = 0o644
DEFAULT_SUBJECT = "CN=idsync.entra connector"
RSA_DEFAULT_SIZE = 2048
RSA_MIN_SIZE = 2048
EC_CURVES = {256: "SECP256R1", 384: "SECP384R1", 521: "SECP521R1"}
EC_DEFAULT_SIZE = 256
# Back-date notBefore a little so a freshly made certificate is valid on machines whose clock is slightly behind.
BACKDATE = datetime.timedelta(minutes=5)

_PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)
_PEM_KEY_RE = re.compile(rb"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----.+?-----END \1-----\s*", re.S)


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(value):
    return value.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_subject(text):
    """``CN=a,O=b`` (RFC 4514) or ``/CN=a/O=b`` (OpenSSL style) -> x509.Name."""
    value = (text or "").strip()
    if not value:
        raise ConfigError("subject must not be empty (for example CN=idsync.entra connector).", option="subject")
    if value.startswith("/"):
        parts = [p for p in re.split(r"(?<!\\)/", value[1:]) if p]
        value = ",".join(reversed([p.replace(",", "\\,") for p in parts]))
    try:
        name = x509.Name.from_rfc4514_string(value)
    except Exception:  # pylint: disable=broad-except
        raise ConfigError("subject '%s' is not a distinguished name such as CN=idsync.entra connector,O=Contoso." % text,
                          option="subject")
    if not len(name):
        raise ConfigError("subject '%s' names no attribute." % text, option="subject")
    return name


def describe_key(key):
    """(key_type, key_size) of a private or public key."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa", key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ec", key.curve.key_size
    return type(key).__name__, None


def _public_der(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def certificate_facts(cert, key_type=None, key_size=None):
    if key_type is None:
        key_type, key_size = describe_key(cert.public_key())
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "thumbprint": binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode("ascii").upper(),
        "thumbprint_sha256": binascii.hexlify(cert.fingerprint(hashes.SHA256())).decode("ascii").upper(),
        "not_before": _iso(certificate_time(cert, "not_valid_before")),
        "not_after": _iso(certificate_time(cert, "not_valid_after")),
        "subject": cert.subject.rfc4514_string(),
        "key_type": key_type,
        "key_size": key_size,
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "certificate_base64": base64.b64encode(der).decode("ascii"),
    }


def _diff_view(facts):
    if not facts:
        return {}
    return dict((k, facts.get(k)) for k in ("thumbprint", "not_after", "subject", "key_type", "key_size"))


def _file_mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise ConfigError("Cannot read '%s': %s." % (path, exc.strerror or exc))


def atomic_write(path, data, mode):
    """Write ``data`` to ``path`` so that it never exists with a wider mode than ``mode`` and never half-written.

    The temporary file is created 0600 (mkstemp) in the target's directory, filled, synced, given ``mode``, then
    renamed over ``path``.
    """
    directory = os.path.dirname(path) or "."
    try:
        make_private_directory(directory)
    except OSError as exc:
        raise ConfigError("Cannot create directory '%s': %s." % (directory, exc.strerror or exc))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ConfigError("Cannot write in '%s': %s." % (directory, exc.strerror or exc))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


class _Existing:
    """What is on disk now."""

    def __init__(self):
        self.cert = None
        self.key = None
        self.key_encrypted = False
        self.problem = None  # reason the pair cannot be reused


def _load_existing(cert_path, key_path, passphrase, force):
    existing = _Existing()
    cert_blob = _read(cert_path)
    key_blob = cert_blob if key_path == cert_path else _read(key_path)
    if cert_blob is None:
        existing.problem = "no certificate at %s" % cert_path
    else:
        match = _PEM_CERT_RE.search(cert_blob)
        if not match:
            existing.problem = "%s holds no PEM certificate" % cert_path
        else:
            try:
                existing.cert = x509.load_pem_x509_certificate(match.group(0))
            except Exception:  # pylint: disable=broad-except
                existing.problem = "the certificate in %s cannot be parsed" % cert_path
    if key_blob is None:
        existing.problem = existing.problem or "no private key at %s" % key_path
        return existing
    match = _PEM_KEY_RE.search(key_blob)
    if not match:
        existing.problem = existing.problem or "%s holds no PEM private key" % key_path
        return existing
    pem = match.group(0)
    existing.key_encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in pem
    password = passphrase.encode("utf-8") if passphrase else None
    try:
        existing.key = serialization.load_pem_private_key(pem, password=password if existing.key_encrypted else None)
    except (TypeError, ValueError):
        if not force:
            if existing.key_encrypted and not passphrase:
                raise ConfigError(
                    "The private key at %s is encrypted: pass its passphrase, or force: true to replace the key and "
                    "certificate." % key_path, option="passphrase")
            if existing.key_encrypted:
                raise ConfigError(
                    "Cannot decrypt the private key at %s with the given passphrase: pass the right one, or force: true "
                    "to replace the key and certificate." % key_path, option="passphrase")
        existing.key = None
        existing.problem = existing.problem or "the private key at %s cannot be read" % key_path
    except Exception:  # pylint: disable=broad-except
        existing.key = None
        existing.problem = existing.problem or "the private key at %s cannot be read" % key_path
    return existing


def _generate(key_type, key_size, subject, valid_days):
    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    else:
        key = ec.generate_private_key(getattr(ec, EC_CURVES[key_size])())
    now = _utcnow().replace(microsecond=0)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=key_type == "rsa",
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    return key, cert


def _key_pem(key, passphrase):
    encryption = serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _friendly_name(cert):
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (names[0].value if names else "idsync.entra").encode("utf-8")


def _pfx_bytes(key, cert, passphrase):
    encryption = serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(_friendly_name(cert), key, cert, None, encryption)


def _pfx_current(pfx_path, cert, passphrase):
    """Whether the PFX at pfx_path holds ``cert`` and its key, opened with ``passphrase``."""
    blob = _read(pfx_path)
    if blob is None:
        return False, "no PFX at %s" % pfx_path
    try:
        key, pfx_cert, _extra = pkcs12.load_key_and_certificates(blob, passphrase.encode("utf-8") if passphrase else None)
    except Exception:  # pylint: disable=broad-except
        return False, "the PFX at %s cannot be opened with the given passphrase" % pfx_path
    if pfx_cert is None or key is None or pfx_cert.fingerprint(hashes.SHA256()) != cert.fingerprint(hashes.SHA256()):
        return False, "the PFX at %s holds another certificate" % pfx_path
    if not key_matches_certificate(pfx_cert, key):
        return False, "the PFX at %s holds a mismatched key" % pfx_path
    return True, None


def _resolve_key_size(key_type, key_size):
    if key_type == "rsa":
        size = key_size or RSA_DEFAULT_SIZE
        if size < RSA_MIN_SIZE:
            raise ConfigError("key_size %d is too small for an RSA key: use %d or more." % (size, RSA_MIN_SIZE), option="key_size")
        if size > 16384 or size % 8:
            raise ConfigError("key_size %d is not a usable RSA key size (use 2048, 3072 or 4096)." % size, option="key_size")
        return size
    if key_type == "ec":
        size = key_size or EC_DEFAULT_SIZE
        if size not in EC_CURVES:
            raise ConfigError("key_size %d is not a supported EC curve size: use 256, 384 or 521." % size, option="key_size")
        return size
    raise ConfigError("key_type must be rsa or ec, got '%s'." % key_type, option="key_type")


def _paths(params):
    cert_path = os.path.abspath(os.path.expanduser(params["certificate_path"]))
    key_path = params.get("private_key_path")
    key_path = os.path.abspath(os.path.expanduser(key_path)) if key_path else cert_path
    pfx_path = params.get("pfx_path")
    pfx_path = os.path.abspath(os.path.expanduser(pfx_path)) if pfx_path else None
    if pfx_path and pfx_path in (cert_path, key_path):
        raise ConfigError("pfx_path must differ from certificate_path and private_key_path.", option="pfx_path")
    return cert_path, key_path, pfx_path


def _absent(cert_path, key_path, pfx_path, check_mode):
    before = {}
    existing = [p for p in (cert_path, key_path, pfx_path) if p and os.path.lexists(p)]
    existing = list(dict.fromkeys(existing))
    blob = _read(cert_path) if os.path.exists(cert_path) else None
    if blob:
        match = _PEM_CERT_RE.search(blob)
        if match:
            try:
                before = _diff_view(certificate_facts(x509.load_pem_x509_certificate(match.group(0))))
            except Exception:  # pylint: disable=broad-except
                before = {}
    result = {
        "changed": bool(existing),
        "reason": ("removed %s" % ", ".join(existing)) if existing else "no certificate or key files to remove",
        "removed": existing,
        "diff": {"before": before, "after": {}},
    }
    if check_mode:
        if existing:
            result["reason"] = "would remove %s" % ", ".join(existing)
        return result
    for path in existing:
        try:
            os.unlink(path)
        except OSError as exc:
            raise ConfigError("Cannot remove '%s': %s." % (path, exc.strerror or exc))
    return result


def ensure_certificate(params, check_mode=False, now=None):
    """Make the files match ``params`` (the module's options); return the module result (without ``diff`` mode
    filtering: the caller drops ``diff`` when --diff is off)."""
    if not HAS_CRYPTOGRAPHY:
        raise ConfigError("The Python library 'cryptography' is required on the managed node for idsync.entra.certificate.")
    cert_path, key_path, pfx_path = _paths(params)
    if params.get("state", "present") == "absent":
        return _absent(cert_path, key_path, pfx_path, check_mode)

    key_type = params.get("key_type") or "rsa"
    key_size = _resolve_key_size(key_type, params.get("key_size"))
    subject = parse_subject(params.get("subject") or DEFAULT_SUBJECT)
    valid_days = params.get("valid_days") or 730
    renew_before = params.get("renew_before_days")
    renew_before = 30 if renew_before is None else renew_before
    if valid_days < 1:
        raise ConfigError("valid_days must be at least 1.", option="valid_days")
    if renew_before < 0:
        raise ConfigError("renew_before_days must not be negative.", option="renew_before_days")
    if renew_before >= valid_days:
        raise ConfigError(
            "renew_before_days (%d) must be less than valid_days (%d), or every run would renew the certificate."
            % (renew_before, valid_days), option="renew_before_days")
    passphrase = params.get("passphrase") or None
    force = bool(params.get("force"))
    now = now or _utcnow()
    combined = key_path == cert_path

    existing = _load_existing(cert_path, key_path, passphrase, force)
    before = _diff_view(certificate_facts(existing.cert)) if existing.cert is not None else {}

    # -- decide: reuse or regenerate -----------------------------------------------------------------------------
    regenerate = None
    if force:
        regenerate = "force: true"
    elif existing.problem:
        regenerate = existing.problem
    elif not key_matches_certificate(existing.cert, existing.key):
        regenerate = "the private key at %s does not match the certificate at %s" % (key_path, cert_path)
    else:
        have_type, have_size = describe_key(existing.key)
        not_after = certificate_time(existing.cert, "not_valid_after")
        if (have_type, have_size) != (key_type, key_size):
            regenerate = "the key is %s %s, wanted %s %s" % (have_type, have_size, key_type, key_size)
        elif existing.cert.subject != subject:
            regenerate = "the subject is %s, wanted %s" % (existing.cert.subject.rfc4514_string(), subject.rfc4514_string())
        elif not_after <= now:
            regenerate = "the certificate expired on %s" % _iso(not_after)
        elif not_after - now <= datetime.timedelta(days=renew_before):
            regenerate = "the certificate expires on %s, within renew_before_days (%d)" % (_iso(not_after), renew_before)
        elif certificate_time(existing.cert, "not_valid_before") > now + BACKDATE:
            regenerate = "the certificate is not valid before %s" % _iso(certificate_time(existing.cert, "not_valid_before"))

    reasons = []
    writes = []  # (path, bytes or None when only the mode changes, mode)
    if regenerate:
        action = "create" if not existing.cert and not existing.key else "regenerate"
        reasons.append("%s the key and certificate: %s" % (action, regenerate))
        if check_mode:
            facts = {"thumbprint": None, "thumbprint_sha256": None, "not_before": _iso(now - BACKDATE),
                     "not_after": _iso(now + datetime.timedelta(days=valid_days)), "subject": subject.rfc4514_string(),
                     "key_type": key_type, "key_size": key_size, "certificate": None, "certificate_base64": None}
            after = _diff_view(facts)
            after["thumbprint"] = "(new)"
            if pfx_path:
                reasons.append("write the PFX at %s" % pfx_path)
        else:
            key, cert = _generate(key_type, key_size, subject, valid_days)
            facts = certificate_facts(cert, key_type, key_size)
            after = _diff_view(facts)
            cert_pem = cert.public_bytes(serialization.Encoding.PEM)
            key_pem = _key_pem(key, passphrase)
            if combined:
                writes.append((cert_path, key_pem + cert_pem, KEY_MODE))
            else:
                writes.append((key_path, key_pem, KEY_MODE))
                writes.append((cert_path, cert_pem, CERT_MODE))
            if pfx_path:
                writes.append((pfx_path, _pfx_bytes(key, cert, passphrase), KEY_MODE))
    else:
        key, cert = existing.key, existing.cert
        facts = certificate_facts(cert, *describe_key(key))
        after = _diff_view(facts)
        # Same pair; bring the files to the asked-for shape.
        if passphrase and not existing.key_encrypted:
            reasons.append("encrypt the private key at %s with the passphrase" % key_path)
            key_bytes = _key_pem(key, passphrase)
        elif not passphrase and existing.key_encrypted:  # not reachable: loading needs the passphrase
            key_bytes = _key_pem(key, None)
        else:
            key_bytes = None
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        if combined:
            if key_bytes is not None:
                writes.append((cert_path, key_bytes + cert_pem, KEY_MODE))
        else:
            if key_bytes is not None:
                writes.append((key_path, key_bytes, KEY_MODE))
        # Modes: a file holding the key is 0600, a certificate alone 0644.
        written = set(p for p, _d, _m in writes)
        wanted_modes = [(cert_path, KEY_MODE if combined else CERT_MODE)]
        if not combined:
            wanted_modes.append((key_path, KEY_MODE))
        for path, wanted in wanted_modes:
            current = _file_mode(path)
            if path not in written and current is not None and current != wanted:
                reasons.append("set the mode of %s from %04o to %04o" % (path, current, wanted))
                writes.append((path, None, wanted))
        if pfx_path:
            ok, why = _pfx_current(pfx_path, cert, passphrase)
            if not ok:
                reasons.append("write the PFX: %s" % why)
                writes.append((pfx_path, _pfx_bytes(key, cert, passphrase), KEY_MODE))
            else:
                current = _file_mode(pfx_path)
                if current != KEY_MODE:
                    reasons.append("set the mode of %s from %04o to %04o" % (pfx_path, current, KEY_MODE))
                    writes.append((pfx_path, None, KEY_MODE))

    changed = bool(reasons)
    if not check_mode:
        for path, data, mode in writes:
            if data is None:
                try:
                    os.chmod(path, mode)
                except OSError as exc:
                    raise ConfigError("Cannot change the mode of '%s': %s." % (path, exc.strerror or exc))
            else:
                atomic_write(path, data, mode)

    if changed:
        reason = "; ".join(reasons)
        if check_mode:
            reason = "would " + reason
    else:
        reason = "the existing key and certificate are valid until %s and match the request" % facts["not_after"]

    result = dict(facts)
    result.update({
        "changed": changed,
        "reason": reason,
        "certificate_path": cert_path,
        "private_key_path": key_path,
        "pfx_path": pfx_path,
        "diff": {"before": before, "after": after},
    })
    return result
