"""Microsoft Graph v1.0 (and beta, treated alike) over the emulator's directory.

GraphService.handle() turns a Werkzeug request into a Call, routes it by path segments and returns a Werkzeug
response. $batch items go through GraphService.execute(), the same dispatcher, one by one.
"""
import json
import re
import uuid
from urllib.parse import unquote

from werkzeug.wrappers import Response

import graph_apps as apps
import graph_directory as directory_api
import graph_domains as domains
import graph_extensions as extensions
import graph_federated as federated
import graph_groups as groups
import graph_users as users
from graph_apps import Key
from graph_batch import batch_error, run_batch
from graph_core import Call, dumps, error_result
from graph_delta import groups_delta, users_delta
from graph_errors import GraphError, method_not_allowed, unknown_segment

ID = object()   # route placeholder: an id, a UPN or an alternate key segment

# Learn: "Use query parameters": functions and casts may be written with or without their namespace
# (microsoft.graph.delta == delta), and functions with or without "()".
FUNCTIONS = {"delta", "addpassword", "removepassword", "restore"}
CASTS = {"user", "group", "application", "serviceprincipal"}


def _deleted_list(kind):
    return lambda svc, call: directory_api.list_deleted(svc, call, kind)


def _nested_batch(svc, call):
    raise batch_error("Nested batch requests are not supported.")


ROUTES = [
    (("$batch",), {"POST": _nested_batch}),
    (("users",), {"GET": users.list_users, "POST": users.create_user}),
    (("users", "$count"), {"GET": users.count_users}),
    (("users", "delta"), {"GET": users_delta}),
    (("users", ID), {"GET": users.get_user, "PATCH": users.update_user, "DELETE": users.delete_user}),
    (("users", ID, "manager"), {"GET": users.get_manager}),
    (("users", ID, "manager", "$ref"), {"PUT": users.set_manager, "DELETE": users.remove_manager}),
    (("users", ID, "memberOf"), {"GET": users.list_member_of}),
    (("users", ID, "directReports"), {"GET": users.list_direct_reports}),
    (("groups",), {"GET": groups.list_groups, "POST": groups.create_group}),
    (("groups", "$count"), {"GET": groups.count_groups}),
    (("groups", "delta"), {"GET": groups_delta}),
    (("groups", ID), {"GET": groups.get_group, "PATCH": groups.update_group, "DELETE": groups.delete_group}),
    (("groups", ID, "members"), {"GET": groups.list_members}),
    (("groups", ID, "members", "$ref"), {"POST": groups.add_member}),
    (("groups", ID, "members", "$count"), {"GET": groups.count_members}),
    (("groups", ID, "members", ID, "$ref"), {"DELETE": groups.remove_member}),
    (("groups", ID, "owners"), {"GET": groups.list_owners}),
    (("groups", ID, "owners", "$ref"), {"POST": groups.add_owner}),
    (("groups", ID, "owners", ID, "$ref"), {"DELETE": groups.remove_owner}),
    (("applications",), {"GET": apps.list_applications, "POST": apps.create_application}),
    (("applications", ID), {"GET": apps.get_application, "PATCH": apps.update_application,
                            "DELETE": apps.delete_application}),
    (("applications", ID, "addpassword"), {"POST": apps.add_password}),
    (("applications", ID, "removepassword"), {"POST": apps.remove_password}),
    (("applications", ID, "extensionProperties"), {"GET": extensions.list_extension_properties,
                                                   "POST": extensions.create_extension_property}),
    (("applications", ID, "extensionProperties", ID), {"GET": extensions.get_extension_property,
                                                       "DELETE": extensions.delete_extension_property}),
    (("applications", ID, "federatedIdentityCredentials"), {"GET": federated.list_credentials,
                                                            "POST": federated.create_credential}),
    (("applications", ID, "federatedIdentityCredentials", ID), {"GET": federated.get_credential,
                                                                "PATCH": federated.update_credential,
                                                                "DELETE": federated.delete_credential}),
    (("applications", ID, "owners"), {"GET": apps.list_application_owners}),
    (("applications", ID, "owners", "$ref"), {"POST": apps.add_application_owner}),
    (("applications", ID, "owners", ID, "$ref"), {"DELETE": apps.remove_application_owner}),
    (("servicePrincipals",), {"GET": apps.list_service_principals, "POST": apps.create_service_principal}),
    (("servicePrincipals", ID), {"GET": apps.get_service_principal, "PATCH": apps.update_service_principal,
                                 "DELETE": apps.delete_service_principal}),
    (("servicePrincipals", ID, "appRoleAssignedTo"), {"GET": apps.list_app_role_assigned_to,
                                                      "POST": apps.grant_app_role_assigned_to}),
    (("servicePrincipals", ID, "appRoleAssignedTo", ID), {"DELETE": apps.revoke_app_role_assigned_to}),
    (("servicePrincipals", ID, "appRoleAssignments"), {"GET": apps.list_app_role_assignments,
                                                       "POST": apps.grant_app_role_assignment}),
    (("servicePrincipals", ID, "appRoleAssignments", ID), {"DELETE": apps.revoke_app_role_assignment}),
    (("servicePrincipals", ID, "owners"), {"GET": apps.list_service_principal_owners}),
    (("organization",), {"GET": directory_api.list_organization}),
    (("domains",), {"GET": domains.list_domains}),
    (("domains", ID), {"GET": domains.get_domain}),
    (("organization", ID), {"GET": directory_api.get_organization}),
    (("directoryRoles",), {"GET": directory_api.list_directory_roles,
                           "POST": directory_api.activate_directory_role}),
    (("directoryRoles", ID), {"GET": directory_api.get_directory_role}),
    (("directoryRoles", ID, "members"), {"GET": directory_api.list_directory_role_members}),
    (("directoryRoles", ID, "members", "$ref"), {"POST": directory_api.add_directory_role_member}),
    (("directoryRoles", ID, "members", ID, "$ref"), {"DELETE": directory_api.remove_directory_role_member}),
    (("directoryRoleTemplates",), {"GET": directory_api.list_role_templates}),
    (("directoryRoleTemplates", ID), {"GET": directory_api.get_role_template}),
    (("roleManagement", "directory", "roleDefinitions"), {"GET": directory_api.list_role_definitions}),
    (("roleManagement", "directory", "roleDefinitions", ID), {"GET": directory_api.get_role_definition}),
    (("roleManagement", "directory", "roleAssignments"), {"GET": directory_api.list_role_assignments,
                                                          "POST": directory_api.create_role_assignment}),
    (("roleManagement", "directory", "roleAssignments", ID), {"GET": directory_api.get_role_assignment,
                                                              "DELETE": directory_api.delete_role_assignment}),
    (("directory", "deletedItems", "microsoft.graph.user"), {"GET": _deleted_list("user")}),
    (("directory", "deletedItems", "microsoft.graph.group"), {"GET": _deleted_list("group")}),
    (("directory", "deletedItems", "microsoft.graph.application"), {"GET": _deleted_list("application")}),
    (("directory", "deletedItems", ID), {"GET": directory_api.get_deleted, "DELETE": directory_api.purge_deleted}),
    (("directory", "deletedItems", ID, "restore"), {"POST": directory_api.restore_deleted}),
    (("directoryObjects", ID), {"GET": directory_api.get_directory_object}),
]


class GraphService:
    def __init__(self, directory, item_gate=None):
        self.directory = directory
        self.item_gate = item_gate

    # ------------------------------------------------------------------ entry points
    def handle(self, request, claims: dict, path: str) -> Response:
        version, _, rest = path.lstrip("/").partition("/")
        request_id = request.environ.get("emulator.request_id") or _client_request_id(request.headers)
        call = Call(method=request.method.upper(), path="/" + rest, args=request.args, headers=request.headers,
                    body=None, claims=claims, base=request.host_url.rstrip("/") + "/" + version,
                    directory=self.directory, request_id=request_id,
                    client_request_id=request.environ.get("emulator.client_request_id")
                    or request.headers.get("client-request-id") or request_id)
        call.body, call.raw_body_invalid = _parse_body(request.get_data(cache=True))
        if call.path.rstrip("/").lower() == "/$batch":
            result = self._batch(call)
        else:
            result = self.execute(call)
        return _to_response(result)

    def execute(self, call):
        """Route one call and run it under the directory lock; Graph errors become error responses."""
        with self.directory.lock:
            if self.directory.extension_index is None:
                extensions.rebuild_index(self.directory)
            else:
                extensions.bind_directory(self.directory)
            try:
                handler, params = route(call.method, call.path)
                return handler(self, call, *params)
            except GraphError as error:
                return error_result(error, call)

    def _batch(self, call):
        # Not under the lock as a whole: items take it one at a time, and item_gate may sleep.
        try:
            if call.method != "POST":
                raise method_not_allowed()
            return run_batch(self, call)
        except GraphError as error:
            return error_result(error, call)


# ---------------------------------------------------------------------- routing
def route(method, path):
    segments = parse_segments(path)
    path_matched = False
    for pattern, handlers in ROUTES:
        params = _match(pattern, segments)
        if params is None:
            continue
        path_matched = True
        if method in handlers:
            return handlers[method], params
    if path_matched:
        raise method_not_allowed()
    raise unknown_segment(_first_unknown(segments))


def _match(pattern, segments):
    if len(pattern) != len(segments):
        return None
    params = []
    for expected, actual in zip(pattern, segments):
        if expected is ID:
            if isinstance(actual, str) and (actual.startswith("$") or actual.lower() in FUNCTIONS):
                return None
            params.append(actual)
        elif not isinstance(actual, str) or actual.lower() != expected.lower():
            return None
    return params


def _first_unknown(segments):
    known = {p.lower() for pattern, _ in ROUTES for p in pattern if isinstance(p, str)}
    for segment in segments:
        if isinstance(segment, str) and segment.lower() not in known:
            return segment
    return str(segments[-1]) if segments else ""


KEY_SEGMENT = re.compile(r"^([A-Za-z]+)\((.*)\)$")
KEY_VALUE = re.compile(r"^(?:([A-Za-z]+)=)?'((?:[^']|'')*)'$")


def parse_segments(path):
    """Path segments with alternate keys split out: applications(appId='x') -> ["applications", Key(appId, x)]."""
    segments = []
    for raw in _split_outside_quotes(path):
        segment = unquote(raw)
        match = KEY_SEGMENT.match(segment)
        if match and match.group(2).strip():
            segments.append(match.group(1))
            segments.append(_key(match.group(2).strip()))
            continue
        segments.append(_normalise(segment))
    return segments


def _key(text):
    match = KEY_VALUE.match(text)
    if not match:
        return text
    name, value = match.group(1), match.group(2).replace("''", "'")
    return Key(name, value) if name else value


def _normalise(segment):
    """delta(), microsoft.graph.delta and graph.delta are the same function; graph.user is microsoft.graph.user."""
    name = segment[:-2] if segment.endswith("()") else segment
    lowered = name.lower()
    for prefix in ("microsoft.graph.", "graph."):
        if lowered.startswith(prefix):
            short = lowered[len(prefix):]
            if short in FUNCTIONS:
                return short
            if short in CASTS:
                return "microsoft.graph." + short
    return name if lowered not in FUNCTIONS else lowered


def _split_outside_quotes(path):
    parts, current, quoted = [], [], False
    for char in path.strip("/"):
        if char == "'":
            quoted = not quoted
        if char == "/" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p]


# ---------------------------------------------------------------------- request / response plumbing
def _parse_body(raw):
    if not raw or not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def _client_request_id(headers):
    return headers.get("client-request-id") or str(uuid.uuid4())


def _to_response(result):
    status, headers, body = result
    if body is None:
        payload = b""
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = dumps(body).encode()
    return Response(payload, status=status, headers=headers)
