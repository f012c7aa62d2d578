"""Helpers for conformance tests that talk to the emulator the way a user's code would (requests, msal)."""
import base64
import datetime
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

ROOT_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
AAD_ERROR_KEYS = {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}
AAD_DESCRIPTION = re.compile(
    r"^AADSTS(\d+): .+\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: "
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$",
    re.S,
)


class CaBoundSession(requests.Session):
    """A requests session whose `verify` wins over REQUESTS_CA_BUNDLE (REFERENCE.md "CA bundles and requests"),
    optionally sending requests for some hosts (e.g. login.microsoftonline.com) to the emulator instead, with the
    original Host header, the way a DNS override or proxy would. Records every URL it was asked for."""

    def __init__(self, ca_path, redirect_hosts=None, emulator_netloc=None):
        super().__init__()
        self.ca_path = ca_path
        self.redirect_hosts = set(redirect_hosts or ())
        self.emulator_netloc = emulator_netloc
        self.urls = []
        self.forms = []  # form bodies sent (token requests), to inspect what msal signed

    def request(self, method, url, *args, **kwargs):
        self.urls.append(url)
        if isinstance(kwargs.get("data"), dict):
            self.forms.append(dict(kwargs["data"]))
        kwargs["verify"] = self.ca_path
        parts = urlsplit(url)
        if parts.hostname in self.redirect_hosts:
            headers = dict(kwargs.pop("headers", None) or {})
            headers["Host"] = parts.netloc
            url = urlunsplit(parts._replace(netloc=self.emulator_netloc))
            kwargs["headers"] = headers
        return super().request(method, url, *args, **kwargs)


class EntraClient:
    """What a user's code does against the emulator: token requests, Graph calls, msal sessions."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.ca_path = emulator.ca_path
        self.base_url = emulator.base_url
        self.tenant_id = emulator.tenant_id
        self.admin_app = emulator.admin_app

    def token_endpoint(self, tenant=None) -> str:
        return f"{self.base_url}/{tenant or self.tenant_id}/oauth2/v2.0/token"

    def post_token(self, data: dict, tenant=None, **kwargs):
        return requests.post(self.token_endpoint(tenant), data=data, verify=self.ca_path, timeout=30, **kwargs)

    def client_credentials(self, scope=GRAPH_SCOPE, client_id=None, client_secret=None, tenant=None, **extra):
        return self.post_token({
            "grant_type": "client_credentials",
            "client_id": client_id or self.admin_app["client_id"],
            "client_secret": client_secret or self.admin_app["client_secret"],
            "scope": scope,
            **extra,
        }, tenant)

    def app_token(self, scope=GRAPH_SCOPE) -> str:
        response = self.client_credentials(scope)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def get(self, path, **kwargs):
        return requests.get(f"{self.base_url}{path}", verify=self.ca_path, timeout=30, **kwargs)

    def graph(self, method, path, token=None, **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.base_url}{path}", headers=headers, verify=self.ca_path,
                                timeout=30, **kwargs)

    def session(self, redirect_login_hosts=()) -> "CaBoundSession":
        """An http_client for msal; requests for `redirect_login_hosts` go to the emulator."""
        return CaBoundSession(self.ca_path, redirect_login_hosts, urlsplit(self.base_url).netloc)

    def register_certificate(self, certificate, app_id=None) -> None:
        """Upload a certificate to an app registration through Graph, as an administrator would."""
        app_id = app_id or self.admin_app["client_id"]
        response = self.graph("PATCH", f"/v1.0/applications(appId='{app_id}')", self.app_token(),
                              json={"keyCredentials": [certificate.key_credential()]})
        assert response.status_code == 204, response.text

    @staticmethod
    def claims(token: str) -> dict:
        import jwt

        return jwt.decode(token, options={"verify_signature": False})

    @staticmethod
    def assert_aad_error(response, status: int, error: str, code: int) -> dict:
        """The response is a token-endpoint error in Microsoft's exact shape."""
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == AAD_ERROR_KEYS, body
        assert body["error"] == error, body
        assert body["error_codes"] == [code], body
        match = AAD_DESCRIPTION.match(body["error_description"])
        assert match and int(match.group(1)) == code, body["error_description"]
        assert body["error_uri"].endswith(f"?code={code}")
        return body

    @staticmethod
    def assert_graph_error(response, status: int, code: str) -> dict:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code, error
        assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
        assert response.headers["request-id"] and response.headers["client-request-id"]
        return error


@pytest.fixture
def entra(emulator):
    return EntraClient(emulator)


class ClientCertificate:
    """A self-signed client certificate like `New-SelfSignedCertificate` or `openssl req -x509` makes."""

    def __init__(self, common_name="idsync test client", not_after_days=365):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=not_after_days)).sign(self.key, hashes.SHA256())
        )
        self.der = self.certificate.public_bytes(serialization.Encoding.DER)
        self.sha1_hex = self.certificate.fingerprint(hashes.SHA1()).hex().upper()
        self.sha256_hex = self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def private_key_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    def key_credential(self) -> dict:
        """keyCredential as the Graph docs show it for PATCH /applications (key = base64 of the DER cert)."""
        return {"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(self.der).decode(),
                "displayName": "CN=idsync test client"}

    def write_pfx(self, path, passphrase: bytes = b"idsync") -> str:
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            b"idsync test client", self.key, self.certificate, None,
            serialization.BestAvailableEncryption(passphrase)))
        return str(path)


@pytest.fixture(scope="session")
def client_certificate():
    return ClientCertificate()


@pytest.fixture(scope="session")
def certificate_factory():
    """Make further certificates (an unregistered one, a second key...)."""
    return ClientCertificate


@pytest.fixture
def extra_emulator(request, tmp_path):
    """Start further emulators (own flags or state dir) with tests/conftest.py's start_emulator and return an
    EntraClient for each; all are terminated after the test. Usage: extra_emulator("--auto-approve")."""
    root = request.config.pluginmanager.get_plugin(str(ROOT_CONFTEST))
    started = []

    def start(*args, state_dir=None):
        emulator = root.start_emulator(state_dir or tmp_path / f"emulator-{len(started)}", *args)
        started.append(emulator)
        return EntraClient(emulator)

    yield start
    for emulator in started:
        if emulator.process.poll() is None:
            emulator.process.terminate()
            emulator.process.wait(timeout=10)
