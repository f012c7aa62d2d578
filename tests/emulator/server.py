"""The tenant emulator's WSGI application and HTTPS server.

One Werkzeug app serves three surfaces on one port (see docs/architecture.md):
- the Microsoft identity platform (identity.py),
- Microsoft Graph under /v1.0 and /beta (graph.py, behind bearer-token checks, latency, faults and throttling),
- the admin API under /_emulator/ (X-Emulator-Key only; a Graph token never opens it).
"""
import json
import re
import signal
import socket
import threading
import traceback
import uuid
from pathlib import Path

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

import directory_synthetic
import exchange
import faults
import identity
import identity_keys
import national_clouds
import realism
import tls
from directory import Directory
from graph import GraphService

GRAPH_BATCH_PATHS = frozenset({"/v1.0/$batch", "/beta/$batch"})
_SLASH_RUNS = re.compile(r"/{2,}")


def graph_www_authenticate(cloud) -> str:
    """What Graph sends with a 401 (seen on graph.microsoft.com responses), naming the cloud's login host."""
    return (f'Bearer realm="", authorization_uri="https://{cloud.login_hosts[0]}/common/oauth2/authorize", '
            f'client_id="{national_clouds.GRAPH_APP_ID}"')


GRAPH_DIAGNOSTIC = json.dumps({"ServerInfo": {"DataCenter": "Emulator", "Slice": "E", "Ring": "0", "ScaleUnit": "000",
                                              "RoleInstance": "EMULATOR"}})

URL_MAP = Map(
    [
        Rule("/<tenant>/v2.0/.well-known/openid-configuration", endpoint="openid_configuration", methods=["GET"]),
        Rule("/common/discovery/instance", endpoint="instance_discovery", methods=["GET"]),
        Rule("/<tenant>/discovery/v2.0/keys", endpoint="keys", methods=["GET"]),
        Rule("/<tenant>/discovery/keys", endpoint="keys", methods=["GET"]),
        # Token endpoints take every method so a GET gets Entra's AADSTS900561 rather than a bare 405.
        Rule("/<tenant>/oauth2/v2.0/token", endpoint="token"),
        Rule("/<tenant>/oauth2/v2.0/devicecode", endpoint="device_code"),
        Rule("/metadata/identity/oauth2/token", endpoint="managed_identity_token", methods=["GET"]),
        Rule("/v1.0", endpoint="graph"),
        Rule("/v1.0/<path:rest>", endpoint="graph"),
        Rule("/beta", endpoint="graph"),
        Rule("/beta/<path:rest>", endpoint="graph"),
        Rule("/adminapi/beta/<tenant>/InvokeCommand", endpoint="exchange", methods=["POST"]),
        Rule("/_emulator/settings", endpoint="admin_settings", methods=["GET", "PUT"]),
        Rule("/_emulator/faults", endpoint="admin_faults", methods=["GET", "POST", "DELETE"]),
        Rule("/_emulator/stats", endpoint="admin_stats", methods=["GET"]),
        Rule("/_emulator/stats/reset", endpoint="admin_stats_reset", methods=["POST"]),
        Rule("/_emulator/reset", endpoint="admin_reset", methods=["POST"]),
        Rule("/_emulator/dump", endpoint="admin_dump", methods=["GET"]),
        Rule("/_emulator/seed", endpoint="admin_seed", methods=["POST"]),
        Rule("/_emulator/expire-delta-tokens", endpoint="admin_expire_delta_tokens", methods=["POST"]),
        Rule("/_emulator/devicecode/approve", endpoint="admin_approve_device_code", methods=["POST"]),
        Rule("/_emulator/domains", endpoint="admin_domains", methods=["GET", "POST"]),
        Rule("/_emulator/managed-identity", endpoint="admin_managed_identity", methods=["PUT"]),
        Rule("/_emulator/domains/<name>", endpoint="admin_domain", methods=["DELETE"]),
        Rule("/_emulator/objects/<object_id>/proxyAddresses", endpoint="admin_proxy_addresses", methods=["PUT"]),
        Rule("/_emulator/exchange/<path:rest>", endpoint="admin_exchange"),
        Rule("/_emulator/<path:rest>", endpoint="admin_unknown"),
    ],
    # We collapse "//" ourselves (SDKs send /v1.0//users); Werkzeug's merge_slashes would answer with a redirect.
    merge_slashes=False,
    strict_slashes=False,
)


class RequestHandler(WSGIRequestHandler):
    # Werkzeug writes the headers and the body separately; with Nagle's algorithm on, the body then waits for the
    # client's delayed ACK (~40 ms per request). TCP_NODELAY keeps the emulator fast enough to hammer.
    disable_nagle_algorithm = True


class DropConnection(Exception):
    """Raised by a handler to close the client's connection without any response (the "drop" fault)."""


class AdminError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Correlation:
    """request-id (new per request) and client-request-id (the client's, else the request-id), as Graph does."""

    def __init__(self, request: Request):
        self.request_id = str(uuid.uuid4())
        self.client_request_id = request.headers.get("client-request-id") or self.request_id

    def stamp(self, response: Response) -> Response:
        response.headers.setdefault("request-id", self.request_id)
        response.headers.setdefault("client-request-id", self.client_request_id)
        return response


class TenantState:
    """A directory and the Graph service over it, swapped as a pair on reset."""

    def __init__(self, directory, graph):
        self.directory = directory
        self.graph = graph


def normalise_path(path: str) -> str:
    """Collapse runs of '/' (the Graph SDKs send '/v1.0//users'); keep everything else as sent."""
    return _SLASH_RUNS.sub("/", path or "/")


class EmulatorApp:
    """The WSGI application. Call `listening_on(host, port)` once the socket is bound, before serving."""

    def __init__(self, state_dir: Path, options):
        self.state_dir = Path(state_dir)
        self.options = options
        self.cloud = national_clouds.CLOUDS[getattr(options, "cloud", None) or national_clouds.DEFAULT_CLOUD]
        self.profile = identity_keys.TenantProfile.load_or_create(self.state_dir)
        self.signing_key = identity_keys.SigningKey.load_or_create(self.state_dir)
        self.seed = _read_seed(options.seed) if options.seed else None
        defaults = realism.Settings(
            latency_ms=options.latency_ms,
            throttling=options.throttling == "on",
            replication_delay_ms=options.replication_delay_ms,
        )
        default_faults = faults.cli_fault_specs(getattr(options, "fault", None) or [],
                                                getattr(options, "fault_path", None) or faults.ALL_GRAPH_PATHS,
                                                getattr(options, "fault_seed", None))
        self.realism = realism.Realism(defaults, self.profile.tenant_id, self._user_count,
                                       default_faults=default_faults)
        self._tenant_lock = threading.Lock()
        self.tenant = self._new_tenant()
        self.identity = None
        self.exchange = exchange.ExchangeOnline(self)

    def listening_on(self, host: str, port: int) -> None:
        self.identity = identity.IdentityPlatform(
            self.profile, self.signing_key, lambda: self.tenant.directory,
            emulator_hosts=_emulator_hosts(host, port),
            settings_getter=lambda: self.realism.settings,
            on_token_request=self.realism.stats.token_request,
            auto_approve=self.options.auto_approve,
            device_code_interval_s=self.options.device_code_interval,
            cloud=self.cloud,
            ca_bundle=str(self.state_dir / "ca.pem"),
        )

    # -- WSGI ---------------------------------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        correlation = Correlation(request)
        try:
            response = self.dispatch(request, correlation)
        except DropConnection:
            _drop(environ)
            raise ConnectionAbortedError("connection dropped by an injected fault") from None
        return correlation.stamp(response)(environ, start_response)

    def dispatch(self, request: Request, correlation: Correlation) -> Response:
        path = normalise_path(request.path)
        adapter = URL_MAP.bind_to_environ(request.environ)
        try:
            endpoint, arguments = adapter.match(path_info=path, method=request.method)
        except MethodNotAllowed as error:
            return _plain_error(405, "Method not allowed.", error.valid_methods)
        except (NotFound, HTTPException):
            return _plain_error(404, f"No emulated endpoint at {path}.")
        if endpoint == "graph":
            return self.graph(request, path, correlation)
        if endpoint == "exchange":
            return self.exchange.handle(request, arguments["tenant"])
        if endpoint.startswith("admin_"):
            return self.admin(request, endpoint, arguments)
        return self.identity_endpoint(request, endpoint, arguments, correlation)

    # -- identity platform --------------------------------------------------------------------------------------------

    def identity_endpoint(self, request, endpoint: str, arguments: dict, correlation: Correlation) -> Response:
        handler = getattr(self.identity, endpoint)
        try:
            return handler(request, **arguments)
        except identity.AadError as error:
            return error.response(request.headers.get("client-request-id") or correlation.request_id,
                                  login_host=self.cloud.login_hosts[0])

    # -- Graph ----------------------------------------------------------------------------------------------------------

    def graph(self, request: Request, path: str, correlation: Correlation) -> Response:
        self.realism.stats.http_request()
        self.realism.latency()
        try:
            claims = self.identity.verify_graph_token(request.headers.get("Authorization"), request)
        except identity.GraphAuthError as error:
            return _graph_error(401, "InvalidAuthenticationToken", str(error), correlation,
                                {"WWW-Authenticate": graph_www_authenticate(self.cloud)})
        rejection, drop_after_answering = self.realism.gate_request(
            claims, request.method, path, request.args.to_dict(flat=False), is_batch=path in GRAPH_BATCH_PATHS
        )
        if rejection is not None:
            response = _rejected(rejection, correlation)
        else:
            response = self._handle_graph(request, claims, path, correlation)
        if drop_after_answering:
            # The request ran and its effects stay; only the answer is lost (the "response" phase of a drop).
            request.get_data()  # a handler that failed early may have left body bytes unread
            raise DropConnection()
        return response

    def _handle_graph(self, request: Request, claims: dict, path: str, correlation: Correlation) -> Response:
        # GraphService may reuse the ids so error bodies and headers agree.
        request.environ["emulator.request_id"] = correlation.request_id
        request.environ["emulator.client_request_id"] = correlation.client_request_id
        try:
            response = self.tenant.graph.handle(request, claims, path)
        except Exception:  # an emulator bug: answer as Graph would (JSON 500), keep the traceback in the log
            traceback.print_exc()
            return _graph_error(500, "generalException", "An unspecified error has occurred.", correlation)
        response.headers.setdefault("x-ms-ags-diagnostic", GRAPH_DIAGNOSTIC)
        return response

    def item_gate(self, claims: dict, method: str, path: str, query_string: str):
        """Called by GraphService before each $batch item: faults and throttling for that item alone."""
        path, _, inline_query = path.partition("?")
        rejection = self.realism.gate_item(claims, method, _versioned(path), query_string or inline_query)
        if rejection is None:
            return None
        request_id = realism.new_request_id()
        return rejection.status, dict(rejection.headers), rejection.body(request_id, request_id)

    # -- admin API ------------------------------------------------------------------------------------------------------

    def admin(self, request: Request, endpoint: str, arguments: dict) -> Response:
        key = request.headers.get("X-Emulator-Key")
        if key is None:
            return _admin_error(401, "The X-Emulator-Key header is required (see endpoints.json).")
        if not identity_keys.constant_time_equals(key, self.profile.emulator_key):
            return _admin_error(403, "The X-Emulator-Key header does not match this emulator.")
        try:
            return getattr(self, endpoint)(request, **arguments)
        except AdminError as error:
            return _admin_error(error.status, str(error))

    def admin_settings(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                self.realism.update_settings(_json_body(request))
            except ValueError as error:
                raise AdminError(400, str(error)) from None
            self._apply_directory_settings(self.tenant.directory)
        return identity.json_response(self.realism.settings.to_dict())

    def admin_managed_identity(self, request: Request) -> Response:
        """The managed identities of "this machine": {"client_id": system-assigned, "user_assigned": [...]}."""
        self.identity.managed_identities.configure(_json_body(request))
        return Response(status=204)

    def admin_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.realism.faults.clear()
            return Response(status=204)
        if request.method == "GET":
            return identity.json_response({"faults": self.realism.faults.describe()})
        try:
            return identity.json_response(self.realism.faults.add(_json_body(request)), 201)
        except ValueError as error:
            raise AdminError(400, str(error)) from None

    def admin_stats(self, request: Request) -> Response:
        return identity.json_response(self.realism.stats.snapshot())

    def admin_stats_reset(self, request: Request) -> Response:
        self.realism.stats.reset()
        return Response(status=204)

    def admin_reset(self, request: Request) -> Response:
        self.reset()
        return Response(status=204)

    def admin_dump(self, request: Request) -> Response:
        directory = self.tenant.directory
        with directory.lock:
            return identity.json_response(directory.dump())

    def admin_seed(self, request: Request) -> Response:
        directory = self.tenant.directory
        try:
            _apply_seed(directory, _json_body(request), self.profile)
        except (KeyError, TypeError, ValueError) as error:
            raise AdminError(400, f"cannot seed: {error}") from None
        self._apply_directory_settings(directory)  # a loaded dump brings its own settings; ours win
        with directory.lock:
            return identity.json_response({"users": directory.user_count()})

    def admin_expire_delta_tokens(self, request: Request) -> Response:
        directory = self.tenant.directory
        with directory.lock:
            directory.expire_delta_tokens()
        return Response(status=204)

    def admin_approve_device_code(self, request: Request) -> Response:
        body = _json_body(request)
        try:
            user_id = self.identity.approve_device_code(
                str(body["user_code"]), str(body["username"]), str(body["password"])
            )
        except KeyError as error:
            raise AdminError(400, f"missing {error}") from None
        except ValueError as error:
            raise AdminError(400, str(error)) from None
        except LookupError as error:
            raise AdminError(404, str(error)) from None
        return identity.json_response({"approved": True, "user_id": user_id})

    def admin_domains(self, request: Request) -> Response:
        """GET: the tenant's domains; POST {"name", "isVerified"?, "isDefault"?, "authenticationType"?} adds one
        (UPNs may then use it when it is verified)."""
        directory = self.tenant.directory
        if request.method == "GET":
            with directory.lock:
                return identity.json_response({"domains": list(directory.domains.values())})
        body = _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise AdminError(400, "'name' (a domain name such as fabrikam.example) is required")
        with directory.lock:
            try:
                domain = directory.add_domain(body["name"], verified=body.get("isVerified", True) is True,
                                              default=body.get("isDefault", False) is True,
                                              authentication_type=body.get("authenticationType", "Managed"))
            except ValueError as error:
                raise AdminError(400, str(error)) from None
            return identity.json_response(domain, 201)

    def admin_domain(self, request: Request, name: str) -> Response:
        directory = self.tenant.directory
        with directory.lock:
            try:
                directory.remove_domain(name)
            except LookupError as error:
                raise AdminError(404, str(error)) from None
            except ValueError as error:
                raise AdminError(400, str(error)) from None
        return Response(status=204)

    def admin_proxy_addresses(self, request: Request, object_id: str) -> Response:
        """PUT {"proxyAddresses": ["SMTP:a@x", "smtp:b@y"]}: what Exchange or Entra Connect would set (read-only in
        Graph). Not checked for uniqueness: the admin API builds test situations, conflicts included."""
        body = _json_body(request)
        addresses = body.get("proxyAddresses") if isinstance(body, dict) else None
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise AdminError(400, "'proxyAddresses' must be a list of strings like \"smtp:alias@domain\"")
        directory = self.tenant.directory
        with directory.lock:
            try:
                directory.set_proxy_addresses(object_id, addresses)
            except LookupError as error:
                raise AdminError(404, str(error)) from None
        return Response(status=204)

    def admin_exchange(self, request: Request, **_) -> Response:
        return self.exchange.admin(request)

    def admin_unknown(self, request: Request, **_) -> Response:
        raise AdminError(404, f"No admin endpoint at {request.path}.")

    # -- tenant lifecycle ---------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seeded state: fresh directory + admin bootstrap (+ --seed), default settings, no faults,
        zero stats, no pending device codes. Tenant id, domain and admin credentials are kept."""
        with self._tenant_lock:
            self.realism.reset()
            if self.identity is not None:
                self.identity.reset()
            self.tenant = self._new_tenant()
            self.exchange.reset()

    def _new_tenant(self) -> TenantState:
        profile = self.profile
        directory = Directory(profile.tenant_id, profile.tenant_domain, profile.display_name)
        with directory.lock:
            directory.bootstrap_admin(
                profile.admin_client_id, profile.admin_client_secret, profile.admin_username, profile.admin_password
            )
        if self.seed is not None:
            _apply_seed(directory, self.seed, profile)
        self._apply_directory_settings(directory)
        return TenantState(directory, GraphService(directory, item_gate=self.item_gate))

    def _apply_directory_settings(self, directory) -> None:
        settings = self.realism.settings
        with directory.lock:
            directory.settings["replication_delay_ms"] = settings.replication_delay_ms
            directory.settings["delta_token_ttl_s"] = settings.delta_token_ttl_s  # None: the directory's default

    def _user_count(self) -> int:
        directory = self.tenant.directory
        with directory.lock:
            return directory.user_count()

    def endpoints_document(self, base_url: str, ca_path: Path) -> dict:
        return {
            "authority_host": base_url,
            "graph_endpoint": base_url,
            "exchange_endpoint": base_url,
            "ca_path": str(ca_path),
            "tenant_id": self.profile.tenant_id,
            "tenant_domain": self.profile.tenant_domain,
            "cloud": self.cloud.name,
            "admin": self.profile.admin(),
            "emulator_key": self.profile.emulator_key,
        }


# ---------------------------------------------------------------------------------------------------------------
# Serving


def serve(options) -> int:
    """Run the emulator until SIGTERM/SIGINT. Writes DIR/endpoints.json once the port is bound."""
    state_dir = Path(options.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    certificates = tls.ensure_certificates(state_dir)
    app = EmulatorApp(state_dir, options)
    server = make_server(options.host, options.port, app, threaded=True, request_handler=RequestHandler,
                         ssl_context=tls.server_ssl_context(certificates))
    app.listening_on(options.host, server.port)
    base_url = f"https://{_url_host(options.host)}:{server.port}"
    _write_json_atomically(state_dir / "endpoints.json", app.endpoints_document(base_url, certificates.ca_cert))
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    print(playbook_variables(app.endpoints_document(base_url, certificates.ca_cert), state_dir / "endpoints.json"),
          flush=True)
    server.serve_forever()  # returns on KeyboardInterrupt (SIGINT, or SIGTERM via the handler) and closes
    return 0


def playbook_variables(endpoints: dict, endpoints_path: Path) -> str:
    """What a user passes to the collection's roles and modules to use this emulator (roles/*/meta/argument_specs.yml,
    playbooks/vars/*.yml). No secrets: the admin client secret and password stay in endpoints.json."""
    common = {"tenant_environment": endpoints["cloud"], "tenant_id": endpoints["tenant_id"],
              "authority_host": endpoints["authority_host"], "graph_endpoint": endpoints["graph_endpoint"],
              "ca_path": endpoints["ca_path"]}
    lines = [f"idsync.entra tenant emulator listening on {endpoints['graph_endpoint']} "
             f"(cloud: {endpoints['cloud']}, state: {endpoints_path.parent})",
             f"Variables for the collection's playbooks (secrets and the admin API key: {endpoints_path}):",
             "  # playbooks/manual_configure.yml (roles/manual_configuration)"]
    lines += [f"  manual_configuration_{name}: {value}" for name, value in common.items()]
    lines += ["  # playbooks/auto_configure.yml (roles/auto_configuration)"]
    lines += [f"  auto_configuration_{name}: {value}" for name, value in common.items()]
    lines += [f"  auto_configuration_admin: {{method: client_secret, client_id: {endpoints['admin']['client_id']}, "
              "client_secret: <admin.client_secret in endpoints.json>}",
              "  # (or method: device_code, approved with POST /_emulator/devicecode/approve or serve --auto-approve)",
              "  # modules (idsync.entra.connection, sync, ...): the same options without the role prefix"]
    return "\n".join(lines)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _emulator_hosts(host: str, port: int) -> set:
    """Host[:port] values a client may use to reach this emulator (Host header, token `aud`, resources)."""
    names = {"127.0.0.1", "localhost", "[::1]", _url_host(host)}
    hosts = {f"{name}:{port}" for name in names}
    if port == 443:
        hosts |= names
    return hosts


def _write_json_atomically(path: Path, document: dict) -> None:
    """Write temp + rename, so a reader polling for the file never sees half of it (it holds secrets: 0600)."""
    tls.write_private_file(path, json.dumps(document, indent=2).encode("utf-8"))


def _read_seed(path) -> dict:
    return json.loads(Path(path).read_text())


def _apply_seed(directory, seed: dict, profile: identity_keys.TenantProfile) -> None:
    """A seed is a dump to load, or {"generate": {"users": N, "groups": M, "seed": S}, "domains": [...]} for synthetic
    data. Both may name extra domains ({"name": "fabrikam.example", "isVerified": true}). A dump
    replaces the whole directory; if it lacks this emulator's admin app, the admin is bootstrapped again so the
    credentials in endpoints.json keep working."""
    if not isinstance(seed, dict):
        raise TypeError("a seed is a JSON object")
    with directory.lock:
        if "generate" in seed:
            for domain in seed.get("domains") or []:  # {"name", "isVerified"?, "isDefault"?}, as in a dump
                directory.load_domain(domain)
            spec = seed["generate"]
            directory_synthetic.generate(directory, int(spec.get("users", 0)), int(spec.get("groups", 0)),
                                         int(spec.get("seed", 0)))
            return
        directory.load(seed)
        if directory.application_by_app_id(profile.admin_client_id) is None:
            directory.bootstrap_admin(profile.admin_client_id, profile.admin_client_secret, profile.admin_username,
                                      profile.admin_password)


def _drop(environ) -> None:
    """Close the client's TCP connection at once: the client sees a reset/EOF instead of a response."""
    connection = environ.get("werkzeug.socket")
    if connection is None:
        return
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _versioned(path: str) -> str:
    """Batch item URLs are relative to the version ('/users' or 'users'); give faults/costs a full path."""
    path = normalise_path("/" + path.lstrip("/"))
    return path if path.startswith(("/v1.0/", "/beta/")) else "/v1.0" + path


def _json_body(request: Request):
    body = request.get_json(silent=True)
    if body is None:
        raise AdminError(400, "the request body must be JSON")
    return body


def _graph_error(status: int, code: str, message: str, correlation: Correlation, headers=None) -> Response:
    body = faults.graph_error_body(code, message, correlation.request_id, correlation.client_request_id)
    response = identity.json_response(body, status, headers)
    response.headers["x-ms-ags-diagnostic"] = GRAPH_DIAGNOSTIC
    return response


def _rejected(rejection: faults.Rejection, correlation: Correlation) -> Response:
    if rejection.drop:
        raise DropConnection()
    return _graph_error(rejection.status, rejection.code, rejection.message, correlation, rejection.headers)


def _admin_error(status: int, message: str) -> Response:
    return identity.json_response({"error": {"code": str(status), "message": message}}, status)


def _plain_error(status: int, message: str, allowed=None) -> Response:
    headers = {"Allow": ", ".join(sorted(allowed))} if allowed else None
    return identity.json_response({"error": {"code": str(status), "message": message}}, status, headers)
