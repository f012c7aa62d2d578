"""Errors of the emulated identity platform, in the token endpoint's shape (Microsoft Learn "Microsoft Entra
authentication and authorization error codes": `error`, `error_description` "AADSTSnnnnn: text\\r\\nTrace ID: ...",
`error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`), and the JSON responses the endpoints send."""
import datetime
import json
import uuid

from werkzeug.wrappers import Response

# Microsoft.IdentityModel's default ClockSkew (5 minutes): tolerated on assertion and access-token lifetimes.
CLOCK_SKEW_S = 300


class AadError(Exception):
    """An error of the identity platform, rendered in Microsoft's token-endpoint error shape."""

    def __init__(self, status: int, error: str, code: int, text: str):
        super().__init__(f"AADSTS{code}: {text}")
        self.status, self.error, self.code, self.text = status, error, code, text

    def response(self, correlation_id: str | None = None, login_host: str = "login.microsoftonline.com") -> Response:
        trace_id = str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.text}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://{login_host}/error?code={self.code}",
        }
        return json_response(body, self.status)


def invalid_client(code: int, text: str) -> AadError:
    # invalid_client is answered with HTTP 401 by the real service (observed, REFERENCE.md).
    return AadError(401, "invalid_client", code, text)


def missing_parameter(name: str) -> AadError:
    # reference-error-codes: AADSTS900144 "The request body must contain the following parameter: '{name}'."
    return AadError(400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def malformed_assertion() -> AadError:
    # reference-error-codes: AADSTS50027 InvalidJwtToken ("token format isn't proper").
    return AadError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")


class _FederationErrors:
    """The error constructors identity_workload.verify_federated_assertion raises with."""
    AadError = AadError
    clock_skew = CLOCK_SKEW_S

    @staticmethod
    def invalid_client(code, text):
        return invalid_client(code, text)

    @staticmethod
    def malformed():
        return malformed_assertion()


def json_response(body, status=200, headers=None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)
    response.headers["Cache-Control"] = "no-store, no-cache"
    return response
