"""A test OpenID Connect issuer, standing in for the platforms whose tokens Entra ID accepts through workload identity
federation (AKS's cluster issuer, GitHub Actions, GitLab CI): HTTPS on a loopback port with a certificate of the
emulator's CA (which the emulator trusts when it fetches the keys), ``/.well-known/openid-configuration`` and a
JWKS, and ``mint()`` for RS256 tokens with any issuer, subject, audience and lifetime."""
import base64
import json
import threading
import time
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

AUDIENCE = "api://AzureADTokenExchange"


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class OidcIssuer:
    def __init__(self, emulator_state_dir):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:16]
        state = str(emulator_state_dir)
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True,
                                   ssl_context=(state + "/server.pem", state + "/server-key.pem"))
        self.url = "https://127.0.0.1:%d" % self._server.server_port
        self.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _app(self, environ, start_response):
        request = Request(environ)
        self.requests.append(request.path)
        if request.path == "/.well-known/openid-configuration":
            body = {"issuer": self.url, "jwks_uri": self.url + "/keys", "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}
        elif request.path == "/keys":
            numbers = self.key.public_key().public_numbers()
            body = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                              "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                              "e": _b64(numbers.e.to_bytes(3, "big"))}]}
        else:
            return Response("not found", status=404)(environ, start_response)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)

    def mint(self, subject, audience=AUDIENCE, lifetime=600, issuer=None, key=None):
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        claims = {"iss": issuer or self.url, "sub": subject, "aud": audience, "iat": now, "nbf": now - 5,
                  "exp": now + lifetime, "jti": uuid.uuid4().hex}
        signing_input = "%s.%s" % (_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()))
        signature = (key or self.key).sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64(signature)

    def stop(self):
        self._server.shutdown()
        self._thread.join(timeout=10)
