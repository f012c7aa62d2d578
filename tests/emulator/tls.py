"""The emulator's own certificate authority and HTTPS server certificate.

Both are generated with `cryptography` on first start, kept in the state directory and reused on restart, so a
client that trusted `DIR/ca.pem` once keeps trusting the emulator. The server certificate names the loopback
addresses and the real Microsoft hosts (login, Graph, Exchange Online for every national cloud), so a client whose
DNS or proxy sends those names to the emulator can still verify TLS with nothing but `ca.pem`.
"""
import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_IP_ADDRESSES = ("127.0.0.1", "::1")
SERVER_DNS_NAMES = (
    "localhost",
    "login.microsoftonline.com",
    "graph.microsoft.com",
    "login.microsoftonline.us",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
    "microsoftgraph.chinacloudapi.cn",
    "outlook.office365.com",
    "outlook.office365.us",
)
CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=825)
# Regenerate a stored certificate this long before it expires, so a long-lived state dir never serves a dead one.
RENEWAL_MARGIN = datetime.timedelta(days=30)


class CertificateFiles:
    """Paths of the PEM files the emulator keeps in its state directory."""

    def __init__(self, state_dir):
        state_dir = Path(state_dir)
        self.ca_cert = state_dir / "ca.pem"
        self.ca_key = state_dir / "ca-key.pem"
        self.server_cert = state_dir / "server.pem"
        self.server_key = state_dir / "server-key.pem"


def ensure_certificates(state_dir) -> CertificateFiles:
    """Create (or reuse) the CA and server certificate under `state_dir`; return their paths."""
    files = CertificateFiles(state_dir)
    ca_cert, ca_key = _load_or_create_ca(files)
    if not _server_certificate_usable(files, ca_cert):
        _create_server_certificate(files, ca_cert, ca_key)
    return files


def server_ssl_context(files: CertificateFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(files.server_cert), str(files.server_key))
    return context


def new_rsa_key(bits=2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_private_key(path: Path, key) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private_file(path, pem)


def load_private_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def self_signed_certificate(key, common_name: str, lifetime: datetime.timedelta) -> x509.Certificate:
    """A plain self-signed certificate (used for the token-signing key, whose JWKS entry carries x5c/x5t)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        _certificate_builder(name, name, key.public_key(), lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _load_or_create_ca(files: CertificateFiles):
    if files.ca_cert.exists() and files.ca_key.exists():
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        if cert.not_valid_after_utc - RENEWAL_MARGIN > _now():
            return cert, load_private_key(files.ca_key)
    key = new_rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idsync.entra tenant emulator CA")])
    cert = (
        _certificate_builder(name, name, key.public_key(), CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private_key(files.ca_key, key)
    _write_atomically(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    # A new CA invalidates any server certificate it did not sign.
    files.server_cert.unlink(missing_ok=True)
    return cert, key


def _server_certificate_usable(files: CertificateFiles, ca_cert: x509.Certificate) -> bool:
    if not (files.server_cert.exists() and files.server_key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc - RENEWAL_MARGIN <= _now():
        return False
    return _subject_alternative_names(cert) == _wanted_alternative_names()


def _create_server_certificate(files: CertificateFiles, ca_cert: x509.Certificate, ca_key) -> None:
    # ECDSA P-256: every TLS client accepts it, and its handshake costs far less CPU than RSA-2048. Werkzeug closes
    # every connection, so each request pays a handshake; this keeps throttling tests that hammer the emulator fast.
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        _certificate_builder(ca_cert.subject, subject, key.public_key(), SERVER_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_alternative_names()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private_key(files.server_key, key)
    _write_atomically(files.server_cert, cert.public_bytes(serialization.Encoding.PEM))


def _alternative_names():
    names = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IP_ADDRESSES]
    names += [x509.DNSName(host) for host in SERVER_DNS_NAMES]
    return names


def _wanted_alternative_names():
    return {str(name.value) for name in _alternative_names()}


def _subject_alternative_names(cert: x509.Certificate):
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {str(name.value) for name in extension.value}


def _certificate_builder(issuer, subject, public_key, lifetime):
    # Backdate a little so a client whose clock runs slightly behind still accepts the certificate.
    not_before = _now() - datetime.timedelta(hours=1)
    return (
        x509.CertificateBuilder()
        .issuer_name(issuer)
        .subject_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
    )


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, readable by the owner only from the first byte on."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)
    os.replace(temporary, path)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
