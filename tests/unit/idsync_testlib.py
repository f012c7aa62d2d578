"""Shared helpers for the client-layer unit tests: a real scripted HTTP(S) server on 127.0.0.1, a throwaway
PKI made with cryptography, and unsigned JWTs shaped like Entra access tokens."""
import base64
import datetime
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

DROP = object()  # a reply that closes the connection without answering


class Reply:
    def __init__(self, status=200, json_body=None, body=b"", headers=None, delay=0.0):
        self.status = status
        self.json_body = json_body
        self.body = body
        self.headers = dict(headers or {})
        self.delay = delay


class Recorded:
    def __init__(self, method, raw_path, headers, body):
        self.method = method
        self.raw_path = raw_path
        parts = urlsplit(raw_path)
        self.path = unquote(parts.path)
        self.raw_query = parts.query
        self.query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def form(self):
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def __repr__(self):
        return "<{0} {1}>".format(self.method, self.raw_path)


class ScriptedServer:
    """A real threaded HTTP/1.1 server. ``route(method, regex, *replies)``: each matching request takes the
    next reply (the last one repeats); a reply may be a Reply, DROP, or a callable(request) -> Reply/DROP."""

    def __init__(self, ssl_context=None):
        self.routes = []
        self.requests = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.requests.append(rec)
                reply = outer._reply_for(rec)
                if callable(reply) and reply is not DROP:
                    reply = reply(rec)
                if reply is DROP:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body
                headers = dict(reply.headers)
                if reply.json_body is not None:
                    payload = json.dumps(reply.json_body).encode()
                    headers.setdefault("Content-Type", "application/json")
                try:
                    self.send_response(reply.status)
                    for key, value in headers.items():
                        self.send_header(key, str(value))
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if payload:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.port = self.httpd.server_address[1]
        self.url = "{0}://127.0.0.1:{1}".format(scheme, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def route(self, method, pattern, *replies):
        self.routes.append([method.upper(), re.compile(pattern), list(replies)])
        return self

    def _reply_for(self, rec):
        with self._lock:
            for route in reversed(self.routes):  # later routes win
                method, pattern, replies = route
                if method in (rec.method, "*") and pattern.search(rec.path):
                    return replies.pop(0) if len(replies) > 1 else replies[0]
        return Reply(404, {"error": {"code": "Request_ResourceNotFound", "message": "no route " + rec.path}})

    def calls(self, method=None, pattern=None):
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (pattern is None or re.search(pattern, r.path))]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_key(kind="rsa"):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_cert(cn, key=None, issuer_cert=None, issuer_key=None, days=30, not_before=None, san=None, ca=False):
    key = key or make_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = not_before or now - datetime.timedelta(minutes=5)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn))
               .issuer_name(issuer_cert.subject if issuer_cert is not None else _name(cn))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_before + datetime.timedelta(days=days)))
    builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if san:
        import ipaddress
        names = []
        for entry in san:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(entry)))
            except ValueError:
                names.append(x509.DNSName(entry))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert, key


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key, passphrase=None, traditional=False):
    enc = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
           else serialization.NoEncryption())
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)


def write(path, data, mode=0o600):
    path = Path(path)
    path.write_bytes(data)
    os.chmod(path, mode)
    return str(path)


class TLSPki:
    """A CA and a server certificate for 127.0.0.1/localhost, written under ``directory``."""

    def __init__(self, directory):
        directory = Path(directory)
        self.ca_cert, self.ca_key = make_cert("idsync test CA", ca=True, days=2)
        self.server_cert, self.server_key = make_cert("127.0.0.1", issuer_cert=self.ca_cert, issuer_key=self.ca_key,
                                                      san=["127.0.0.1", "localhost"], days=2)
        self.ca_path = write(directory / "ca.pem", cert_pem(self.ca_cert), 0o644)
        self.server_cert_path = write(directory / "server.pem", cert_pem(self.server_cert), 0o644)
        self.server_key_path = write(directory / "server.key", key_pem(self.server_key))

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert_path, self.server_key_path)
        return ctx


# ---------------------------------------------------------------------------------------------------
# tokens and identity-platform bodies
# ---------------------------------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims=None, **extra):
    now = int(time.time())
    payload = {"aud": "https://graph.microsoft.com", "iat": now, "nbf": now, "exp": now + 3600,
               "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "appid": "11111111-1111-1111-1111-111111111111",
               "roles": ["Organization.Read.All", "User.Read.All"]}
    payload.update(claims or {})
    payload.update(extra)
    header = {"typ": "JWT", "alg": "RS256", "kid": "test"}
    return "{0}.{1}.{2}".format(b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()),
                                b64url(b"not-a-real-signature"))


def aadsts_body(code, error, text, tenant=None):
    trace = "0f4b6e1a-1111-4c2b-9d3e-5f6a7b8c9d0e"
    corr = "a1b2c3d4-2222-4e5f-8a9b-0c1d2e3f4a5b"
    stamp = "2025-11-27 00:00:00Z"
    return {
        "error": error,
        "error_description": "AADSTS{0}: {1}\r\nTrace ID: {2}\r\nCorrelation ID: {3}\r\nTimestamp: {4}".format(
            code, text, trace, corr, stamp),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": "https://login.microsoftonline.com/error?code={0}".format(code),
    }


def openid_configuration(base, tenant):
    return {
        "issuer": "{0}/{1}/v2.0".format(base, tenant),
        "authorization_endpoint": "{0}/{1}/oauth2/v2.0/authorize".format(base, tenant),
        "token_endpoint": "{0}/{1}/oauth2/v2.0/token".format(base, tenant),
        "device_authorization_endpoint": "{0}/{1}/oauth2/v2.0/devicecode".format(base, tenant),
        "jwks_uri": "{0}/{1}/discovery/v2.0/keys".format(base, tenant),
    }


def graph_error(status, code, message, request_id="5c2f7c6e-0000-4000-8000-000000000001"):
    return Reply(status, {"error": {"code": code, "message": message,
                                    "innerError": {"date": "2025-11-27T00:00:00", "request-id": request_id,
                                                   "client-request-id": request_id}}},
                 headers={"request-id": request_id})
