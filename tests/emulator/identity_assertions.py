"""Client assertions (Microsoft Learn: certificate-credentials): a JWT signed with a certificate registered on the
application, named by its x5t / x5t#S256 thumbprint, for this token endpoint, within its lifetime. Mixed into
IdentityPlatform, which provides ``profile`` and ``_is_known_instance``."""
import base64
import binascii
import datetime
import time
from urllib.parse import urlsplit

from cryptography import x509

from identity_errors import CLOCK_SKEW_S, AadError, invalid_client, malformed_assertion, missing_parameter
from identity_keys import b64url_decode, certificate_thumbprints, split_jwt, verify_rsa_signature

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CERTIFICATE_CREDENTIALS_DOC = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"


class ClientAssertions:
    def _verify_client_assertion(self, request, client_id: str, application: dict) -> None:
        form = request.form
        assertion_type = form.get("client_assertion_type")
        if not assertion_type:
            raise missing_parameter("client_assertion_type")
        if assertion_type != CLIENT_ASSERTION_TYPE:
            # reference-error-codes: AADSTS90100 InvalidRequestParameter.
            raise AadError(400, "invalid_request", 90100, "client_assertion_type parameter is empty or not valid.")
        try:
            header, claims, signing_input, signature = split_jwt(form["client_assertion"])
        except ValueError:
            raise malformed_assertion() from None
        public_key = self._assertion_key(header, client_id, application)
        if not verify_rsa_signature(public_key, header.get("alg"), signing_input, signature):
            # certificate-credentials / reference-error-codes: AADSTS700027 "Client assertion failed signature
            # validation" (Learn's Java troubleshooting page: "Client assertion contains an invalid signature").
            raise invalid_client(700027, (
                "Client assertion failed signature validation. [Reason - The provided signature value did not match "
                f"the expected signature value., Thumbprint of key used by client: '{_thumbprint_hint(header)}']"
            ))
        self._check_assertion_claims(claims, client_id, request)

    def _assertion_key(self, header: dict, client_id: str, application: dict):
        """The public key of the registered certificate the assertion header names (x5t#S256 or x5t)."""
        if header.get("alg") not in ("RS256", "PS256"):
            raise malformed_assertion()
        header_name = "x5t#S256" if header.get("x5t#S256") else "x5t"
        wanted = str(header.get(header_name) or "").rstrip("=")
        for credential in application.get("keyCredentials") or []:
            der = _credential_der(credential)
            if der and wanted and certificate_thumbprints(der)[header_name] == wanted:
                _check_key_credential_dates(credential, client_id)
                return x509.load_der_x509_certificate(der).public_key()
        raise invalid_client(700027, (
            "The certificate with identifier used to sign the client assertion is not registered on application. "
            f"[Reason - The key was not found., Thumbprint of key used by client: '{_thumbprint_hint(header)}', "
            "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for "
            f"app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments "
            "if you're not using the global cloud.]"
        ))

    def _check_assertion_claims(self, claims: dict, client_id: str, request) -> None:
        if claims.get("iss") != claims.get("sub"):
            # reference-error-codes: AADSTS50048 SubjectMismatchesIssuer.
            raise invalid_client(50048, "Subject mismatches Issuer claim in the client assertion.")
        if claims.get("iss") != client_id:
            # Learn, Azure SDK for Java "Troubleshoot ClientAssertionCredential": AADSTS700021.
            raise invalid_client(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
        if not self._is_token_endpoint_audience(claims.get("aud"), request):
            # Learn, Azure SDK for Java "Troubleshoot ClientAssertionCredential": AADSTS700023.
            raise invalid_client(700023, "Client assertion audience claim does not match Realm issuer.")
        self._check_assertion_lifetime(claims)

    def _check_assertion_lifetime(self, claims: dict) -> None:
        try:
            expires = float(claims["exp"])
            not_before = float(claims.get("nbf", 0))  # MSAL sends no nbf; it is optional
        except (KeyError, TypeError, ValueError):
            raise malformed_assertion() from None
        now = time.time()
        if expires + CLOCK_SKEW_S < now or not_before - CLOCK_SKEW_S > now:
            # Seen from the real service (Azure/login#180, AzureAD MSAL issues): AADSTS700024, invalid_client.
            raise invalid_client(700024, (
                f"Client assertion is not within its valid time range. Current time: {_iso(now)}, assertion valid "
                f"from {_iso(not_before)}, expiry time of assertion {_iso(expires)}. Review the documentation at "
                f"{CERTIFICATE_CREDENTIALS_DOC} ."
            ))

    def _is_token_endpoint_audience(self, audience, request) -> bool:
        """aud must be this token endpoint: any login host (or the emulator's own), tenant id or domain."""
        if not isinstance(audience, str):
            return False
        parts = urlsplit(audience)
        host_ok = parts.scheme == "https" and self._is_known_instance(parts.netloc.lower(), request)
        segments = parts.path.strip("/").split("/")
        path_ok = len(segments) >= 2 and segments[1:] in (["oauth2", "v2.0", "token"], ["oauth2", "token"])
        return host_ok and path_ok and self.profile.names_tenant(segments[0])


def _credential_der(credential: dict) -> bytes | None:
    key = credential.get("key")
    if not key or (credential.get("type") not in (None, "AsymmetricX509Cert")):
        return None
    if credential.get("usage") not in (None, "Verify"):
        return None
    try:
        return base64.b64decode(key)
    except (binascii.Error, ValueError):
        return None


def _check_key_credential_dates(credential: dict, client_id: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = _parse_datetime(credential.get("startDateTime")), _parse_datetime(credential.get("endDateTime"))
    if (start and start > now) or (end and end < now):
        raise invalid_client(700027, (
            "Client assertion failed signature validation. [Reason - The key used is expired., Please visit the "
            f"Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
        ))


def _parse_datetime(value):
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def _thumbprint_hint(header: dict) -> str:
    for name in ("x5t", "x5t#S256"):
        if header.get(name):
            try:
                return b64url_decode(str(header[name])).hex().upper()
            except (binascii.Error, ValueError):
                return str(header[name])
    return ""


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
