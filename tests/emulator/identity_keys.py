"""Keys and identity of the emulated tenant: base64url/JWT helpers, the persistent tenant profile (tenant id, domain,
admin credentials, admin-API key) and the RSA key that signs every token. No HTTP here."""
import base64
import binascii
import datetime
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

import tls


class GraphAuthError(Exception):
    """A Graph request whose bearer token is missing or invalid (Graph answers 401 InvalidAuthenticationToken)."""



# ---------------------------------------------------------------------------------------------------------------
# Base64url and JWT helpers (signatures checked with cryptography, no JWT library needed)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    text = text.strip().rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def split_jwt(token: str):
    """Return (header, payload, signing_input, signature) without verifying; ValueError when malformed."""
    try:
        header_part, payload_part, signature_part = token.split(".")
        header = json.loads(b64url_decode(header_part))
        payload = json.loads(b64url_decode(payload_part))
        signature = b64url_decode(signature_part)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise ValueError("malformed JWT") from error
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("malformed JWT")
    return header, payload, f"{header_part}.{payload_part}".encode("ascii"), signature


def verify_rsa_signature(public_key, algorithm: str, signing_input: bytes, signature: bytes) -> bool:
    """RS256 = RSASSA-PKCS1-v1_5 + SHA-256; PS256 = RSASSA-PSS + SHA-256, salt = digest length (RFC 7518 3.5)."""
    if algorithm == "RS256":
        scheme = padding.PKCS1v15()
    elif algorithm == "PS256":
        scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    else:
        return False
    try:
        public_key.verify(signature, signing_input, scheme, hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def certificate_thumbprints(der: bytes) -> dict:
    """x5t / x5t#S256 header values (RFC 7515 4.1.7-8) of a certificate, without base64 padding."""
    return {
        "x5t": b64url_encode(hashlib.sha1(der).digest()),
        "x5t#S256": b64url_encode(hashlib.sha256(der).digest()),
    }


# ---------------------------------------------------------------------------------------------------------------
# Persistent identity of the emulated tenant


@dataclass
class TenantProfile:
    """Tenant id, domain, admin credentials and admin-API key: generated once per state dir, then reused."""

    tenant_id: str
    tenant_domain: str
    display_name: str
    admin_client_id: str
    admin_client_secret: str
    admin_username: str
    admin_password: str
    emulator_key: str

    FILE_NAME = "tenant.json"

    @classmethod
    def load_or_create(cls, state_dir) -> "TenantProfile":
        path = Path(state_dir) / cls.FILE_NAME
        if path.exists():
            return cls(**json.loads(path.read_text()))
        profile = cls.generate()
        tls.write_private_file(path, json.dumps(asdict(profile), indent=2).encode("utf-8"))
        return profile

    @classmethod
    def generate(cls) -> "TenantProfile":
        name = "idsyncemu" + secrets.token_hex(3)
        domain = f"{name}.onmicrosoft.com"
        return cls(
            tenant_id=str(uuid.uuid4()),
            tenant_domain=domain,
            display_name=f"{name} (idsync.entra emulator)",
            admin_client_id=str(uuid.uuid4()),
            admin_client_secret=_client_secret_value(),
            admin_username=f"admin@{domain}",
            admin_password=secrets.token_urlsafe(18),
            emulator_key=secrets.token_urlsafe(32),
        )

    def admin(self) -> dict:
        return {
            "client_id": self.admin_client_id,
            "client_secret": self.admin_client_secret,
            "username": self.admin_username,
            "password": self.admin_password,
        }

    def names_tenant(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id.lower(), self.tenant_domain.lower())


def _client_secret_value() -> str:
    # Entra client secret values are 40 characters with a "~" after a 3-character hint; clients only pass them on.
    return secrets.token_urlsafe(2)[:3] + "8Q~" + secrets.token_urlsafe(34)[:34]


class SigningKey:
    """The RSA key that signs every token, with a self-signed certificate so the JWKS carries x5c and x5t."""

    KEY_FILE, CERT_FILE = "signing-key.pem", "signing-cert.pem"

    def __init__(self, private_key, certificate: x509.Certificate):
        self.private_key = private_key
        self.certificate = certificate
        self.der = certificate.public_bytes(serialization.Encoding.DER)
        # Entra's JWKS uses the base64url SHA-1 certificate thumbprint as both kid and x5t.
        self.kid = certificate_thumbprints(self.der)["x5t"]

    @classmethod
    def load_or_create(cls, state_dir) -> "SigningKey":
        key_path, cert_path = Path(state_dir) / cls.KEY_FILE, Path(state_dir) / cls.CERT_FILE
        if key_path.exists() and cert_path.exists():
            return cls(tls.load_private_key(key_path), x509.load_pem_x509_certificate(cert_path.read_bytes()))
        key = tls.new_rsa_key()
        certificate = tls.self_signed_certificate(key, "idsync.entra emulator token signing", datetime.timedelta(days=3650))
        tls.write_private_key(key_path, key)
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(key, certificate)

    def sign(self, payload: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid}
        signing_input = f"{_json_part(header)}.{_json_part(payload)}".encode("ascii")
        signature = self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"

    def verify(self, token: str) -> dict:
        """Return the payload of a token this key signed; GraphAuthError otherwise."""
        try:
            header, payload, signing_input, signature = split_jwt(token)
        except ValueError:
            raise GraphAuthError("IDX14100: JWT is not well formed, there are no dots (.).") from None
        if header.get("alg") != "RS256" or header.get("kid") != self.kid:
            raise GraphAuthError("Access token validation failure.")
        if not verify_rsa_signature(self.private_key.public_key(), "RS256", signing_input, signature):
            raise GraphAuthError("Access token validation failure.")
        return payload

    def jwks(self, issuer: str) -> dict:
        numbers = self.private_key.public_key().public_numbers()
        return {"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url_encode(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url_encode(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "x5c": [base64.b64encode(self.der).decode("ascii")],
            "issuer": issuer,
        }]}


def _json_part(value: dict) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode("utf-8"))



def constant_time_equals(left: str | None, right: str) -> bool:
    return left is not None and hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))
