# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Public certificates as Entra application key credentials: reading PEM / DER (never a private key), the SHA-1
thumbprint the portal shows, and the thumbprint of a keyCredential Graph returns."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import os
import re

from ansible_collections.idsync.entra.plugins.module_utils import certs
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError

THUMBPRINT_RE = re.compile(r"^[0-9a-fA-F]{40}$")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(value):
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PublicCertificate(object):
    """A certificate to register as a keyCredential: DER bytes, SHA-1 thumbprint (upper-case hex, as the
    portal shows it), subject and validity. Never holds a private key."""

    def __init__(self, der, source):
        if not certs.HAS_CRYPTOGRAPHY:
            raise ConfigError("The Python library 'cryptography' is required on the managed node to read certificates.")
        self.der = der
        self.source = source
        self.thumbprint = hashlib.sha1(der).hexdigest().upper()
        cert = certs.x509.load_der_x509_certificate(der)
        self.subject = cert.subject.rfc4514_string()
        self.not_before = certs.certificate_time(cert, "not_valid_before")
        self.not_after = certs.certificate_time(cert, "not_valid_after")

    @property
    def display_name(self):
        name = self.subject or self.thumbprint
        return name[:90]

    def key_credential(self):
        """The keyCredential to add: no keyId and no customKeyIdentifier (Graph assigns them; sending them is
        refused in some cases), validity taken from the certificate itself."""
        return {
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "key": base64.b64encode(self.der).decode("ascii"),
            "displayName": self.display_name,
            "startDateTime": _iso(self.not_before),
            "endDateTime": _iso(self.not_after),
        }


def ders_from_pem(data):
    """DER bytes of every CERTIFICATE block of a PEM text; no other block (a private key) is kept."""
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    ders = []
    for match in re.finditer(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S):
        body = "".join(match.group(1).split())
        try:
            ders.append(base64.b64decode(body))
        except (binascii.Error, ValueError):
            raise ConfigError("A CERTIFICATE block in the PEM text is not valid base64.", option="certificates")
    return ders


def load_public_certificate(item):
    """One ``certificates`` entry (a PEM string, or the path of a PEM or DER certificate file on the managed
    node) -> :class:`PublicCertificate`. When a PEM holds a chain, the first certificate is the one registered."""
    if not certs.HAS_CRYPTOGRAPHY:
        raise ConfigError("The Python library 'cryptography' is required on the managed node to read certificates.")
    if not isinstance(item, str) or not item.strip():
        raise ConfigError("Each entry of certificates must be a PEM certificate or the path of one.",
                          option="certificates")
    text = item.strip()
    if "-----BEGIN" in text:
        ders = ders_from_pem(text)
        source = "PEM text (first line '{0}')".format(text.splitlines()[0][:40])
        if not ders:
            raise ConfigError("An entry of certificates holds PEM text without a CERTIFICATE block (pass the public "
                              "certificate, never the private key).", option="certificates")
    else:
        path = os.path.abspath(os.path.expanduser(text))
        source = path
        if not os.path.isfile(path):
            raise ConfigError("Certificate file '{0}' does not exist on the managed node (certificates takes PEM text "
                              "or paths of public certificate files).".format(path), option="certificates")
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            raise ConfigError("Certificate file '{0}' cannot be read: {1}.".format(path, exc.strerror or exc),
                              option="certificates")
        if b"-----BEGIN" in data:
            ders = ders_from_pem(data)
            if not ders:
                raise ConfigError("File '{0}' holds no CERTIFICATE block: pass the public certificate file, not the "
                                  "private key.".format(path), option="certificates")
        else:
            ders = [data]
    try:
        cert = PublicCertificate(ders[0], source)
    except ValueError as exc:
        raise ConfigError("'{0}' is not a valid X.509 certificate: {1}.".format(source, exc), option="certificates")
    if cert.not_after <= _now():
        raise ConfigError("Certificate {0} ({1}, from {2}) expired on {3}: Entra ID refuses expired keys; renew it "
                          "first.".format(cert.thumbprint, cert.subject, source, _iso(cert.not_after)),
                          option="certificates")
    return cert


def credential_thumbprint(credential):
    """SHA-1 thumbprint (upper-case hex) of a keyCredential: computed from ``key`` when Graph returned it (it
    does under ``$select=keyCredentials`` only), else read from ``customKeyIdentifier`` (which defaults to the
    thumbprint; Graph serialises it as base64 of the 20 bytes, or as the hex text itself)."""
    key = credential.get("key")
    if key:
        try:
            raw = base64.b64decode(key)
        except (binascii.Error, ValueError, TypeError):
            raw = None
        if raw:
            if raw.lstrip().startswith(b"-----BEGIN"):
                ders = ders_from_pem(raw)
                raw = ders[0] if ders else None
            if raw:
                return hashlib.sha1(raw).hexdigest().upper()
    custom = credential.get("customKeyIdentifier")
    if custom:
        custom = str(custom).strip()
        if THUMBPRINT_RE.match(custom):
            return custom.upper()
        try:
            raw = base64.b64decode(custom)
        except (binascii.Error, ValueError, TypeError):
            raw = None
        if raw:
            if len(raw) == 20:
                return binascii.hexlify(raw).decode("ascii").upper()
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                text = ""
            if THUMBPRINT_RE.match(text):
                return text.upper()
    return None


def is_certificate_credential(credential):
    return (credential.get("type") or "AsymmetricX509Cert") == "AsymmetricX509Cert" and \
        (credential.get("usage") or "Verify") == "Verify"
