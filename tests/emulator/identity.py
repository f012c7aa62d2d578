"""Microsoft identity platform (v2.0 endpoints) for the tenant emulator.

Serves what MSAL and plain OAuth clients call: OpenID Connect discovery, instance discovery, the JWKS, the token
endpoint (client credentials with a secret or a certificate assertion, device code, refresh token) and the device
authorization endpoint. Access tokens are RS256 JWTs signed with the emulator's own key; Graph requests are checked
against that key here (`verify_graph_token`).

Errors follow the shape in Microsoft Learn "Microsoft Entra authentication and authorization error codes"
(https://learn.microsoft.com/entra/identity-platform/reference-error-codes): `error`, `error_description`
("AADSTSnnnnn: text\\r\\nTrace ID: ...\\r\\nCorrelation ID: ...\\r\\nTimestamp: ..."), `error_codes`, `timestamp`,
`trace_id`, `correlation_id`, `error_uri`.
"""
import hashlib
import json
import secrets
import threading
import time
from urllib.parse import urlsplit

from werkzeug.wrappers import Response

import identity_workload as workload
from identity_assertions import CLIENT_ASSERTION_TYPE, ClientAssertions
from identity_device import DeviceFlow, DeviceFlows
from identity_errors import (CLOCK_SKEW_S, AadError, _FederationErrors, invalid_client,  # noqa: F401 (server.py)
                             json_response, missing_parameter)
from identity_keys import GraphAuthError, SigningKey, TenantProfile, b64url_encode  # noqa: F401 (server.py)
# Hosts and resources of each national cloud; the emulator stands in for one of them (serve --cloud).
from national_clouds import (CLOUDS, DEFAULT_CLOUD, EXCHANGE_APP_ID, GRAPH_APP_ID, INSTANCE_METADATA, LOGIN_HOSTS,
                             bare_host)

# First-party public clients that may start a device code flow in any tenant without an app registration there.
FIRST_PARTY_PUBLIC_CLIENTS = {
    "14d82eec-204b-4c2f-b7e8-296a70dab67e": "Microsoft Graph Command Line Tools",
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": "Microsoft Azure CLI",
}
META_TENANTS = frozenset({"common", "organizations", "consumers"})
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# v2-oauth2-client-creds-grant-flow: "expires_in": 3599, "ext_expires_in": 3599.
ACCESS_TOKEN_LIFETIME_S = 3599
DEVICE_CODE_LIFETIME_S = 900  # v2-oauth2-device-code: "the user has 15 minutes to sign in"
VERIFICATION_URI = "https://microsoft.com/devicelogin"


# ---------------------------------------------------------------------------------------------------------------
# The identity platform


class IdentityPlatform(ClientAssertions):
    """Endpoints of login.microsoftonline.com (v2.0) for one emulated tenant."""

    def __init__(self, profile: TenantProfile, signing_key: SigningKey, directory_getter, *, emulator_hosts,
                 settings_getter, on_token_request=None, auto_approve=False, device_code_interval_s=1, cloud=None,
                 ca_bundle=None):
        self.profile = profile
        self.cloud = cloud or CLOUDS[DEFAULT_CLOUD]
        self.signing_key = signing_key
        self._directory = directory_getter
        self._settings = settings_getter
        self._emulator_hosts = frozenset(host.lower() for host in emulator_hosts)
        self._on_token_request = on_token_request or (lambda: None)
        self.auto_approve = auto_approve
        # Entra returns "interval": 5. The emulator answers 1 by default because MSAL sleeps `interval` seconds
        # between polls, and tests should not wait 5 s per poll; `--device-code-interval 5` restores the real value.
        self.device_code_interval_s = device_code_interval_s
        self.device_flows = DeviceFlows()
        self.managed_identities = workload.ManagedIdentities()
        self.issuer_keys = workload.IssuerKeys(ca_bundle)
        self._refresh_tokens = {}
        self._refresh_lock = threading.Lock()

    def reset(self) -> None:
        self.device_flows.clear()
        self.managed_identities.reset()
        with self._refresh_lock:
            self._refresh_tokens.clear()

    # -- discovery ------------------------------------------------------------------------------------------------

    def openid_configuration(self, request, tenant: str) -> Response:
        """GET /{tenant}/v2.0/.well-known/openid-configuration (OpenID Connect discovery, v2.0)."""
        tenant_segment = self._tenant_segment(tenant, request)
        base = f"{request.host_url.rstrip('/')}/{tenant_segment}"
        issuer_tenant = "{tenantid}" if tenant_segment in META_TENANTS else self.profile.tenant_id
        login_host = request.host
        body = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{request.host_url.rstrip('/')}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"https://{self._msgraph_host(login_host)}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
                "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name",
                "tid", "ver", "at_hash", "c_hash", "email",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": None if tenant_segment in META_TENANTS else "NA",
            "cloud_instance_name": self._cloud_instance_name(login_host),
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": self._msgraph_host(login_host),
            "rbac_url": "https://pas.windows.net",
        }
        return json_response(body)

    def instance_discovery(self, request) -> Response:
        """GET /common/discovery/instance: what MSAL calls to validate an authority it does not know."""
        authorization_endpoint = request.args.get("authorization_endpoint")
        if not authorization_endpoint:
            # reference-error-codes: AADSTS50050 MalformedDiscoveryRequest.
            raise AadError(400, "invalid_request", 50050, "The request is malformed.")
        parts = urlsplit(authorization_endpoint)
        instance = self._own_instance_with_port((parts.netloc or "").lower(), request)
        tenant = parts.path.strip("/").split("/")[0] if parts.path.strip("/") else "common"
        if parts.scheme != "https" or not self._is_known_instance(instance, request):
            # reference-error-codes: AADSTS50049 NoSuchInstanceForDiscovery.
            raise AadError(400, "invalid_instance", 50049, "Unknown or invalid instance.")
        return json_response({
            "tenant_discovery_endpoint": f"https://{instance}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": request.args.get("api-version", "1.1"),
            "metadata": self._instance_metadata(request),
        })

    def keys(self, request, tenant: str) -> Response:
        """GET /{tenant}/discovery/v2.0/keys: the public key that verifies the emulator's tokens."""
        self._tenant_segment(tenant, request)
        return json_response(self.signing_key.jwks(f"{request.host_url.rstrip('/')}/{self.profile.tenant_id}/v2.0"))

    # -- device authorization ---------------------------------------------------------------------------------------

    def device_code(self, request, tenant: str) -> Response:
        """POST /{tenant}/oauth2/v2.0/devicecode (Microsoft Learn: v2-oauth2-device-code)."""
        _require_post(request)
        self._tenant_segment(tenant, request)
        form = request.form
        client_id = _required(form, "client_id")
        scopes = _required(form, "scope").split()
        self._check_device_code_client(client_id, tenant)
        self._delegated_resource(scopes)  # fail early on an unknown resource or a scope naming two resources
        flow = self.device_flows.start(client_id, scopes, self._settings().device_code_ttl_s)
        if self.auto_approve:
            self._approve_as_admin(flow)
        return json_response({
            "user_code": flow.user_code,
            "device_code": flow.device_code,
            "verification_uri": VERIFICATION_URI,
            "expires_in": int(round(flow.expires_at - time.time())),
            "interval": self.device_code_interval_s,
            "message": (
                f"To sign in, use a web browser to open the page {VERIFICATION_URI} and enter the code "
                f"{flow.user_code} to authenticate."
            ),
        })

    def approve_device_code(self, user_code: str, username: str, password: str) -> str:
        """Sign the user in for a pending device flow (the admin API stands in for the browser page)."""
        directory = self._directory()
        with directory.lock:
            user = directory.authenticate_user(username, password)
        if user is None:
            raise ValueError("invalid username or password")
        if not self.device_flows.approve(user_code, user):
            raise LookupError(f"no pending device code flow with user code '{user_code}'")
        return user["id"]

    def _approve_as_admin(self, flow: DeviceFlow) -> None:
        directory = self._directory()
        with directory.lock:
            user = directory.authenticate_user(self.profile.admin_username, self.profile.admin_password)
        if user is not None:
            self.device_flows.approve(flow.user_code, user)

    def managed_identity_token(self, request) -> Response:
        """GET /metadata/identity/oauth2/token (the instance metadata service; identity_workload.py)."""
        return workload.managed_identity_token(self, request)

    # -- token endpoint ---------------------------------------------------------------------------------------------

    def token(self, request, tenant: str) -> Response:
        """POST /{tenant}/oauth2/v2.0/token."""
        _require_post(request)
        self._on_token_request()
        tenant_segment = self._tenant_segment(tenant, request)
        grant_type = _required(request.form, "grant_type")
        if grant_type == "client_credentials":
            return self._client_credentials(request, tenant_segment)
        if grant_type == DEVICE_CODE_GRANT:
            return self._device_code_grant(request)
        if grant_type == "refresh_token":
            return self._refresh_token_grant(request)
        # reference-error-codes: AADSTS70003 UnsupportedGrantType.
        raise AadError(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'.")

    def _client_credentials(self, request, tenant_segment: str) -> Response:
        """v2-oauth2-client-creds-grant-flow: a secret or a certificate assertion, scope `{resource}/.default`."""
        if tenant_segment in META_TENANTS:
            # Client credentials need a tenant: /common and /organizations cannot tell which directory to use.
            raise AadError(400, "invalid_request", 50059, (
                "No tenant-identifying information found in either the request or implied by any provided credentials."
            ))
        client_id, appidacr = self._authenticate_client(request, tenant_segment)
        resource = self._client_credentials_resource(request.form)
        directory = self._directory()
        with directory.lock:
            application = directory.application_by_app_id(client_id)
            service_principal_id = directory.service_principal_id(client_id)
            roles = directory.app_roles_granted(client_id, self._resource_app_id(resource))
        if service_principal_id is None:
            raise invalid_client(7000229, (
                f"The client application {client_id} is missing service principal in the tenant "
                f"{self.profile.tenant_id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"
            ))
        claims = self._app_claims(resource, client_id, appidacr, service_principal_id, roles, application)
        return json_response({
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": self.signing_key.sign(claims),
        })

    def _authenticate_client(self, request, tenant_segment: str):
        """Return (client_id, appidacr) of a confidential client, or raise the error Entra gives."""
        form = request.form
        basic = request.authorization if request.authorization and request.authorization.type == "basic" else None
        client_id = form.get("client_id") or (basic.username if basic else None)
        if not client_id:
            raise missing_parameter("client_id")
        directory = self._directory()
        with directory.lock:
            application = directory.application_by_app_id(client_id)
        if application is None:
            raise _application_not_found(client_id, tenant_segment)
        if form.get("client_assertion"):
            if workload.is_external_assertion(form["client_assertion"], client_id, application):
                if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
                    raise AadError(400, "invalid_request", 90100, "client_assertion_type parameter is empty or not valid.")
                workload.verify_federated_assertion(self, form["client_assertion"], client_id, application,
                                                    _FederationErrors)
            else:
                self._verify_client_assertion(request, client_id, application)
            return client_id, "2"  # appidacr 2: certificate (or assertion) credential
        secret = form.get("client_secret") or (basic.password if basic else None)
        if secret:
            with directory.lock:
                valid = directory.check_client_secret(client_id, secret)
            if not valid:
                raise invalid_client(7000215, (
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                    f"secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ))
            return client_id, "1"  # appidacr 1: client secret
        # reference-error-codes: AADSTS7000218.
        raise invalid_client(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")

    def _client_credentials_resource(self, form) -> str:
        scope = _required(form, "scope").strip()
        if len(scope.split()) != 1:
            # reference-error-codes: AADSTS70011 InvalidScope (sample error in the same page).
            raise AadError(400, "invalid_scope", 70011, (
                f"The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't valid."
            ))
        if not scope.endswith("/.default"):
            # AADSTS1002012 as the real service words it (MicrosoftDocs/azure-docs#99862,
            # microsoftgraph/microsoft-graph-docs#14323).
            raise AadError(400, "invalid_scope", 1002012, (
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI)."
            ))
        return self._known_resource(scope[: -len("/.default")])

    def _known_resource(self, resource: str) -> str:
        candidate = resource.rstrip("/")
        # Only this cloud's resources have service principals in the tenant; another cloud's Graph is unknown here
        # (AADSTS500011, wording as the service sends it: microsoft/store-submission#18).
        known = ((self.cloud.graph_resource,) + self.cloud.exchange_resources + (GRAPH_APP_ID,)
                 + tuple(self._emulator_resources()))
        for name in known:
            if candidate.lower() == name.lower():
                return name
        # reference-error-codes: AADSTS500011 InvalidResourceServicePrincipalNotFound.
        raise AadError(400, "invalid_resource", 500011, (
            f"The resource principal named {resource} was not found in the tenant named {self.profile.display_name}. "
            "This can happen if the application has not been installed by the administrator of the tenant or "
            "consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
        ))

    # -- device code and refresh token grants ----------------------------------------------------------------------

    def _device_code_grant(self, request) -> Response:
        form = request.form
        client_id = _required(form, "client_id")
        flow = self.device_flows.get(_required(form, "device_code"))
        if flow is None or flow.client_id != client_id:
            # v2-oauth2-device-code "Expected errors": bad_verification_code (reference-error-codes AADSTS70018).
            raise AadError(400, "bad_verification_code", 70018, "Invalid verification code.")
        if flow.expires_at <= time.time():
            self.device_flows.redeem(flow.device_code)
            # v2-oauth2-device-code: expired_token; reference-error-codes AADSTS70019 CodeExpired.
            raise AadError(400, "expired_token", 70019, "Verification code expired.")
        if flow.user is None:
            # v2-oauth2-device-code: authorization_pending; reference-error-codes AADSTS70016.
            raise AadError(400, "authorization_pending", 70016, (
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling."
            ))
        self._check_public_client(client_id)
        self.device_flows.redeem(flow.device_code)
        return self._delegated_token_response(request, client_id, flow.user, flow.scopes)

    def _refresh_token_grant(self, request) -> Response:
        form = request.form
        client_id = _required(form, "client_id")
        with self._refresh_lock:
            grant = self._refresh_tokens.get(_required(form, "refresh_token"))
        if grant is None or grant["client_id"] != client_id:
            # reference-error-codes: AADSTS9002313 InvalidRequest - Request is malformed or invalid.
            raise AadError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        scopes = form.get("scope", "").split() or grant["scopes"]
        return self._delegated_token_response(request, client_id, grant["user"], scopes)

    def _delegated_token_response(self, request, client_id: str, user: dict, scopes: list) -> Response:
        resource, resource_scopes = self._delegated_resource(scopes)
        directory = self._directory()
        with directory.lock:
            # wids are evaluated at issue time, as Entra does.
            role_template_ids = directory.user_directory_role_template_ids(user["id"])
        scp = _delegated_scp(resource_scopes, scopes)
        claims = self._user_claims(resource, client_id, user, scp, role_template_ids)
        body = {
            "token_type": "Bearer",
            "scope": " ".join(_scope_names_for_response(resource, scp, scopes)),
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": self.signing_key.sign(claims),
        }
        self._add_user_artifacts(body, request, client_id, user, scopes)
        return json_response(body)

    def _add_user_artifacts(self, body: dict, request, client_id: str, user: dict, scopes: list) -> None:
        """id_token (openid), refresh_token (offline_access) and client_info (client_info=1), as Entra returns."""
        if "openid" in scopes:
            body["id_token"] = self.signing_key.sign(self._id_token_claims(request, client_id, user))
        if "offline_access" in scopes:
            refresh_token = secrets.token_urlsafe(64)
            with self._refresh_lock:
                self._refresh_tokens[refresh_token] = {"client_id": client_id, "user": user, "scopes": scopes}
            body["refresh_token"] = refresh_token
        if request.form.get("client_info") == "1":
            info = {"uid": user["id"], "utid": self.profile.tenant_id}
            body["client_info"] = b64url_encode(json.dumps(info).encode("utf-8"))

    def _delegated_resource(self, scopes: list):
        resource, names = _split_delegated_scopes(scopes, self.cloud.graph_resource)
        return self._known_resource(resource), names

    # -- claims ----------------------------------------------------------------------------------------------------------

    def _common_claims(self, audience: str, client_id: str) -> dict:
        now = int(time.time())
        return {
            "aud": audience,
            "iss": f"https://sts.windows.net/{self.profile.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_LIFETIME_S,
            "appid": client_id,
            "azp": client_id,
            "tid": self.profile.tenant_id,
            "uti": b64url_encode(secrets.token_bytes(16)),
            "ver": "1.0",
        }

    def _app_claims(self, resource, client_id, appidacr, service_principal_id, roles, application) -> dict:
        claims = self._common_claims(resource, client_id)
        claims.update({
            "app_displayname": application.get("displayName"),
            "appidacr": appidacr,
            "idp": claims["iss"],
            "idtyp": "app",
            "oid": service_principal_id,
            "sub": service_principal_id,
        })
        if roles:  # Entra omits the roles claim when nothing was granted
            claims["roles"] = sorted(roles)
        return claims

    def _user_claims(self, resource, client_id, user, scp, role_template_ids) -> dict:
        claims = self._common_claims(resource, client_id)
        upn = user.get("userPrincipalName")
        claims.update({
            "acr": "1",
            "amr": ["pwd"],
            "app_displayname": FIRST_PARTY_PUBLIC_CLIENTS.get(client_id),
            "appidacr": "0",  # public client
            "idtyp": "user",
            "name": user.get("displayName"),
            "oid": user["id"],
            "scp": scp,
            # v1 access tokens carry a pairwise subject per app; derive it from user and app.
            "sub": b64url_encode(hashlib.sha256(f"{user['id']}|{client_id}".encode()).digest()),
            "unique_name": upn,
            "upn": upn,
            "wids": list(role_template_ids),
        })
        return {key: value for key, value in claims.items() if value is not None}

    def _id_token_claims(self, request, client_id: str, user: dict) -> dict:
        now = int(time.time())
        return {
            "aud": client_id,
            "iss": f"{request.host_url.rstrip('/')}/{self.profile.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_LIFETIME_S,
            "name": user.get("displayName"),
            "oid": user["id"],
            "preferred_username": user.get("userPrincipalName"),
            "sub": b64url_encode(hashlib.sha256(f"{user['id']}|{client_id}|id".encode()).digest()),
            "tid": self.profile.tenant_id,
            "ver": "2.0",
        }

    # -- Graph bearer tokens ----------------------------------------------------------------------------------------------

    def verify_graph_token(self, authorization: str | None, request) -> dict:
        """Claims of a valid Graph access token from `Authorization: Bearer ...`; GraphAuthError otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphAuthError("Access token is empty.")
        claims = self.signing_key.verify(token.strip())
        now = time.time()
        if float(claims.get("exp", 0)) + CLOCK_SKEW_S < now or float(claims.get("nbf", 0)) - CLOCK_SKEW_S > now:
            raise GraphAuthError("Lifetime validation failed, the token is expired.")
        if claims.get("aud") not in self._graph_audiences(request):
            raise GraphAuthError("Access token validation failure. Invalid audience.")
        if claims.get("tid") != self.profile.tenant_id:
            raise GraphAuthError("Access token validation failure. Invalid issuer.")
        return _with_seam_defaults(claims)

    def _graph_audiences(self, request) -> set:
        """Graph accepts tokens for its own resource only: another cloud's Graph resource is a wrong audience."""
        return {self.cloud.graph_resource, GRAPH_APP_ID} | set(self._own_resources(request))

    # -- helpers ---------------------------------------------------------------------------------------------------------

    def _tenant_segment(self, tenant: str, request) -> str:
        """Validate the {tenant} path segment: the tenant id, its domain, or common/organizations/consumers. The
        login hosts of another national cloud (reached through a DNS override or proxy) do not know this tenant."""
        if tenant.lower() in META_TENANTS:
            return tenant.lower()
        if self.profile.names_tenant(tenant) and self._serves_tenant(request.host):
            return self.profile.tenant_id
        # reference-error-codes: AADSTS90002 InvalidTenantName.
        raise AadError(400, "invalid_tenant", 90002, (
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
            "correct cloud. Check with your subscription administrator, this may happen if there are no active "
            "subscriptions for the tenant."
        ))

    def _check_device_code_client(self, client_id: str, tenant: str) -> None:
        """A first-party public client (Graph Command Line Tools, Azure CLI) or an app registered in the tenant."""
        if client_id in FIRST_PARTY_PUBLIC_CLIENTS:
            return
        directory = self._directory()
        with directory.lock:
            application = directory.application_by_app_id(client_id)
        if application is None:
            raise _application_not_found(client_id, tenant)

    def _check_public_client(self, client_id: str) -> None:
        """An app registration redeems a device code only when it allows public client flows."""
        if client_id in FIRST_PARTY_PUBLIC_CLIENTS:
            return
        directory = self._directory()
        with directory.lock:
            application = directory.application_by_app_id(client_id) or {}
        # Learn "Public client and confidential client applications": without isFallbackPublicClient
        # (Authentication > "Allow public client flows") Entra demands a client credential (AADSTS7000218).
        if not application.get("isFallbackPublicClient"):
            raise invalid_client(7000218, (
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
            ))

    def _instance_metadata(self, request) -> list:
        metadata = [
            {"preferred_network": network, "preferred_cache": cache, "aliases": list(aliases)}
            for network, cache, aliases in INSTANCE_METADATA
        ]
        own = sorted(self._emulator_hosts | {request.host.lower()})
        own = [host for host in own if host not in LOGIN_HOSTS]
        if own:
            metadata.append({"preferred_network": own[0], "preferred_cache": own[0], "aliases": own})
        return metadata

    def _own_instance_with_port(self, instance: str, request) -> str:
        """MSAL drops the port when it asks about an authority ("https://127.0.0.1/{tenant}/..."). The emulator is
        the one instance it knows besides Microsoft's login hosts, so it answers with its real host:port."""
        if ":" in instance.rsplit("]", 1)[-1]:
            return instance
        for host in sorted(self._emulator_hosts):
            if host.rsplit(":", 1)[0] == instance and host != instance:
                return host
        return instance

    def _is_known_instance(self, host: str, request) -> bool:
        return host in LOGIN_HOSTS or host in self._emulator_hosts or host == request.host.lower()

    def _serves_tenant(self, host: str) -> bool:
        """The emulator's own hosts and this cloud's login hosts know the tenant; other clouds' login hosts don't."""
        host = bare_host(host)
        return host not in LOGIN_HOSTS or host in self.cloud.login_hosts

    def _cloud_instance_name(self, login_host: str) -> str:
        host = bare_host(login_host)
        if host not in LOGIN_HOSTS:
            return self.cloud.instance_name
        if host.endswith(".us") or host == "login.usgovcloudapi.net":
            return "microsoftonline.us"
        if host.endswith(".cn"):
            return "partner.microsoftonline.cn"
        return "microsoftonline.com"

    def _msgraph_host(self, login_host: str) -> str:
        """msgraph_host of the cloud a login host belongs to; the emulator's own host serves Graph itself."""
        host = bare_host(login_host)
        if host not in LOGIN_HOSTS:
            return login_host
        if host in self.cloud.login_hosts:
            return self.cloud.graph_host
        return {"microsoftonline.us": "graph.microsoft.us",
                "partner.microsoftonline.cn": "microsoftgraph.chinacloudapi.cn",
                }.get(self._cloud_instance_name(host), "graph.microsoft.com")

    def _resource_app_id(self, resource: str) -> str:
        return EXCHANGE_APP_ID if resource in self.cloud.exchange_resources else GRAPH_APP_ID

    def _emulator_resources(self):
        return [f"https://{host}" for host in self._emulator_hosts]

    def _own_resources(self, request):
        return self._emulator_resources() + [request.host_url.rstrip("/")]


# ---------------------------------------------------------------------------------------------------------------
# Module helpers


def _require_post(request) -> None:
    if request.method != "POST":
        # reference-error-codes: AADSTS900561 BadResourceRequestInvalidRequest.
        raise AadError(400, "invalid_request", 900561, (
            f"The endpoint only accepts POST, OPTIONS requests. Received a {request.method} request."
        ))


def _required(form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise missing_parameter(name)
    return value


def _application_not_found(client_id: str, tenant: str) -> AadError:
    # reference-error-codes: AADSTS700016 UnauthorizedClient_DoesNotMatchRequest.
    return AadError(400, "unauthorized_client", 700016, (
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the "
        "application has not been installed by the administrator of the tenant or consented to by any user in the "
        "tenant. You may have sent your authentication request to the wrong tenant."
    ))


def _split_delegated_scopes(scopes: list, graph_resource: str):
    """(resource, [permission names]) of a delegated request; a bare name ("User.Read") means Microsoft Graph of the
    cloud (Learn: scopes-oidc "if the resource identifier is omitted ... Microsoft Graph is assumed")."""
    resources, names = set(), []
    for scope in scopes:
        if scope in OIDC_SCOPES:
            continue
        resource, name = _resource_and_permission(scope, graph_resource)
        resources.add(resource)
        names.append(name)
    if len(resources) > 1:
        # reference-error-codes: AADSTS700022 InvalidMultipleResourcesScope.
        raise AadError(400, "invalid_scope", 700022, (
            "The provided value for the input parameter scope isn't valid because it contains more than one resource."
        ))
    return (resources.pop() if resources else graph_resource), names


def _resource_and_permission(scope: str, graph_resource: str):
    if "://" in scope or scope.startswith(GRAPH_APP_ID + "/"):
        resource, _, name = scope.rpartition("/")
        return resource.rstrip("/"), name
    return graph_resource, scope


def _delegated_scp(resource_scopes: list, requested: list) -> str:
    """scp: the requested permission names. `.default` stands for what is consented for the client; the emulator
    does not model delegated consent, so it grants the permissions every user consents to at first sign-in."""
    names = [name for name in resource_scopes if name != ".default"]
    if ".default" in resource_scopes:
        names += ["User.Read"]
    names += [scope for scope in requested if scope in ("openid", "profile", "email")]
    return " ".join(dict.fromkeys(names))


def _scope_names_for_response(resource: str, scp: str, requested: list) -> list:
    names = [name if name in OIDC_SCOPES else f"{resource}/{name}" for name in scp.split()]
    return names + [scope for scope in requested if scope == "offline_access"]


def _with_seam_defaults(claims: dict) -> dict:
    """Entra omits empty roles/scp/wids claims; give GraphService the keys it expects either way."""
    claims = dict(claims)
    if claims.get("idtyp") == "user":
        claims.setdefault("scp", "")
        claims.setdefault("wids", [])
    else:
        claims.setdefault("roles", [])
    return claims
