# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Certificates for app-only sign-in: load PEM or PFX, thumbprints as the Azure portal shows them, key pairing.

Errors name the file, never its contents.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import datetime
import os
import re
import stat
import traceback
from collections import namedtuple

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError


CertificateInfo = namedtuple("CertificateInfo", [
    "certificate",        # cryptography x509.Certificate
    "private_key",        # cryptography private key object, or None when the files hold no key
    "certificate_pem",    # str, PEM of the certificate alone
    "private_key_pem",    # str, unencrypted PKCS#8 PEM of the key (for msal), or None
    "thumbprint_sha1",    # upper-case hex, no separators (what the Azure portal shows)
    "thumbprint_sha256",  # upper-case hex, no separators
    "not_before",         # timezone-aware UTC datetime
    "not_after",          # timezone-aware UTC datetime
    "subject",            # RFC 4514 string, e.g. CN=idsync
    "certificate_der_b64",  # base64 of the DER certificate (Graph keyCredentials[].key)
    "key_path",           # the file the private key came from, or None
])

_HEX_RE = re.compile(r"^[0-9A-F]+$")
_PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_PEM_KEY_RE = re.compile(rb"-----BEGIN ((?:RSA |EC |ENCRYPTED |DSA )?PRIVATE KEY)-----.+?-----END \1-----", re.S)


def _require_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise ConfigError("The Python library 'cryptography' is required on the managed node for certificate "
                          "credentials.")


def normalize_thumbprint(value):
    """Return a thumbprint as upper-case hex without separators.

    Accepts lower or upper case, with ``:``, spaces or ``-`` between bytes (as copied from the portal,
    openssl or PowerShell). Raises ValueError for anything that is not 20 (SHA-1) or 32 (SHA-256) bytes of hex.
    """
    if value is None:
        raise ValueError("a certificate thumbprint is required")
    text = re.sub(r"[\s:\-]", "", str(value)).upper()
    # An invisible left-to-right mark often comes along when copying from the Windows certificate dialog.
    text = text.replace(u"\u200e", "").replace(u"\u200f", "")
    if not text or not _HEX_RE.match(text) or len(text) not in (40, 64):
        raise ValueError("'{0}' is not a certificate thumbprint: expected 40 (SHA-1) or 64 (SHA-256) hex "
                         "digits".format(str(value)[:100]))
    return text


def key_matches_certificate(certificate, private_key):
    """True when ``private_key`` is the key of ``certificate``'s public key."""
    _require_cryptography()
    if certificate is None or private_key is None:
        return False
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    try:
        return certificate.public_key().public_bytes(enc, fmt) == private_key.public_key().public_bytes(enc, fmt)
    except Exception:  # pylint: disable=broad-except
        return False


def check_key_file_permissions(path):
    """Raise ConfigError when the private key file at ``path`` can be read or written by group or others.

    Like ssh, a key that other accounts can read is treated as already leaked: the fix is ``chmod 600``.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError("Cannot read private key file '{0}': {1}.".format(path, exc.strerror or exc),
                          option="private_key_path")
    if mode & 0o077:
        who = "others" if mode & 0o007 else "its group"
        raise ConfigError(
            "Private key file '{0}' is readable by {1} (mode {2:04o}): restrict it to its owner with "
            "'chmod 600 {0}'.".format(path, who, stat.S_IMODE(mode)), option="private_key_path",
            details={"mode": "{0:04o}".format(stat.S_IMODE(mode))})


def _read(path, option):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise ConfigError("Cannot read {0} '{1}': {2}.".format(option, path, exc.strerror or exc), option=option)


def certificate_time(cert, name):
    """``not_valid_before`` / ``not_valid_after`` of ``cert`` as an aware UTC datetime, on any cryptography."""
    value = getattr(cert, name + "_utc", None)
    if value is None:  # cryptography < 42
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def _load_pem_key(blob, path, passphrase):
    # An empty passphrase (an unset optional AWX credential field renders as "") means none.
    password = (passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase) or None
    try:
        return serialization.load_pem_private_key(blob, password=password)
    except TypeError:
        if password is None:
            raise ConfigError("The private key in '{0}' is encrypted: pass its passphrase in "
                              "private_key_passphrase.".format(path), option="private_key_passphrase")
        raise ConfigError("The private key in '{0}' is not encrypted, but a passphrase was given: drop "
                          "private_key_passphrase.".format(path), option="private_key_passphrase")
    except ValueError:
        if password is not None:
            raise ConfigError("Cannot decrypt the private key in '{0}': the passphrase is wrong, or the key format "
                              "is not supported.".format(path), option="private_key_passphrase")
        raise ConfigError("'{0}' does not hold a readable PEM private key.".format(path), option="private_key_path")
    except Exception:  # pylint: disable=broad-except
        raise ConfigError("'{0}' does not hold a supported private key.".format(path), option="private_key_path")


def _is_pfx(path, blob):
    return path.lower().endswith((".pfx", ".p12")) or (b"-----BEGIN" not in blob and blob[:1] == b"\x30")


def load_certificate(certificate_path, private_key_path=None, passphrase=None):
    """Load a certificate (and its private key when the files hold one) into a :class:`CertificateInfo`.

    - PEM with both the certificate and its key, or the certificate in ``certificate_path`` and the key in
      ``private_key_path``; a PEM chain is fine, the certificate that matches the key is used (else the first);
    - PFX / PKCS#12 (``.pfx``/``.p12`` or DER content), with ``passphrase`` if it has one.
    Raises ConfigError naming the file (never its contents) when something does not fit.
    """
    _require_cryptography()
    certificate_path = os.path.abspath(os.path.expanduser(str(certificate_path)))
    blob = _read(certificate_path, "certificate_path")
    key_blob = None
    if private_key_path:
        private_key_path = os.path.abspath(os.path.expanduser(str(private_key_path)))
        key_blob = _read(private_key_path, "private_key_path")
    return _load_blobs(blob, certificate_path, _is_pfx(certificate_path, blob), key_blob, private_key_path,
                       passphrase)


def load_certificate_content(certificate_content, private_key_content=None, passphrase=None):
    """Like :func:`load_certificate`, from the text of the files (an AWX credential injects them): PEM (certificate
    and key together, or the key in ``private_key_content``), or a base64-encoded PFX. Messages name the options,
    never the content."""
    _require_cryptography()
    blob = certificate_content.encode("utf-8") if isinstance(certificate_content, str) else certificate_content
    pfx = False
    if b"-----BEGIN" not in blob:
        try:
            decoded = binascii.a2b_base64(b"".join(blob.split()))
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded[:1] != b"\x30":
            raise ConfigError("certificate_content holds neither a PEM certificate nor a base64-encoded PFX.",
                              option="certificate_content")
        blob, pfx = decoded, True
    key_blob = None
    if private_key_content:
        key_blob = private_key_content.encode("utf-8") if isinstance(private_key_content, str) else private_key_content
    info = _load_blobs(blob, "certificate_content", pfx, key_blob, "private_key_content" if key_blob else None,
                       passphrase)
    return info._replace(key_path=None)


def _load_blobs(blob, certificate_path, pfx, key_blob, private_key_path, passphrase):
    """The certificate in ``blob`` (named ``certificate_path`` in messages) with its key from ``blob`` or
    ``key_blob`` (named ``private_key_path``)."""
    key = None
    key_path = None
    extra_certs = []

    if pfx:
        password = (passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase) or None
        try:
            key, cert, extra_certs = pkcs12.load_key_and_certificates(blob, password)
        except ValueError:
            raise ConfigError("Cannot open PFX file '{0}': the passphrase is wrong or missing, or the file is not "
                              "PKCS#12.".format(certificate_path), option="certificate_path")
        if cert is None:
            raise ConfigError("PFX file '{0}' holds no certificate.".format(certificate_path),
                              option="certificate_path")
        if key is not None:
            key_path = certificate_path
        candidates = [cert] + list(extra_certs or [])
    else:
        pem_certs = _PEM_CERT_RE.findall(blob)
        if not pem_certs:
            raise ConfigError("'{0}' holds no PEM certificate (-----BEGIN CERTIFICATE-----).".format(certificate_path),
                              option="certificate_path")
        candidates = []
        for pem in pem_certs:
            try:
                candidates.append(x509.load_pem_x509_certificate(pem))
            except ValueError:
                raise ConfigError("'{0}' holds a certificate that cannot be parsed.".format(certificate_path),
                                  option="certificate_path")
        key_match = _PEM_KEY_RE.search(blob)
        if key_match:
            key = _load_pem_key(key_match.group(0), certificate_path, passphrase)
            key_path = certificate_path

    if key_blob is not None:
        key_match = _PEM_KEY_RE.search(key_blob)
        if not key_match:
            raise ConfigError("'{0}' holds no PEM private key (-----BEGIN PRIVATE KEY-----).".format(private_key_path),
                              option="private_key_path")
        key = _load_pem_key(key_match.group(0), private_key_path, passphrase)
        key_path = private_key_path

    cert = candidates[0]
    if key is not None:
        matching = [c for c in candidates if key_matches_certificate(c, key)]
        if not matching:
            raise ConfigError(
                "The private key in '{0}' does not belong to the certificate in '{1}': pass the key that was "
                "generated with that certificate.".format(key_path, certificate_path), option="private_key_path")
        cert = matching[0]

    certificate_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    private_key_pem = None
    if key is not None:
        private_key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
        ).decode("ascii")
    der = cert.public_bytes(serialization.Encoding.DER)
    return CertificateInfo(
        certificate=cert,
        private_key=key,
        certificate_pem=certificate_pem,
        private_key_pem=private_key_pem,
        thumbprint_sha1=binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode("ascii").upper(),
        thumbprint_sha256=binascii.hexlify(cert.fingerprint(hashes.SHA256())).decode("ascii").upper(),
        not_before=certificate_time(cert, "not_valid_before"),
        not_after=certificate_time(cert, "not_valid_after"),
        subject=cert.subject.rfc4514_string(),
        certificate_der_b64=binascii.b2a_base64(der).decode("ascii").strip(),
        key_path=key_path,
    )


def check_validity(info, now=None, path=None):
    """Raise ConfigError when the certificate is not yet valid or has expired."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    where = " in '{0}'".format(path) if path else ""
    if now < info.not_before:
        raise ConfigError("The certificate{0} (thumbprint {1}) is not valid before {2}: check the clock, or use another "
                          "certificate.".format(where, info.thumbprint_sha1, info.not_before.isoformat()),
                          option="certificate_path")
    if now > info.not_after:
        raise ConfigError("The certificate{0} (thumbprint {1}) expired on {2}: create a new certificate and register it "
                          "on the application.".format(where, info.thumbprint_sha1, info.not_after.isoformat()),
                          option="certificate_path")
