"""/applications and /servicePrincipals, their credentials, owners and app role assignments."""
import base64
import secrets
import string
import uuid
from datetime import timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes

import odata
from directory_records import iso_now, new_application_record, new_service_principal_record, parse_iso
from graph_core import (add_expanded_links, context_fragment, created, directory_object_schema, get_any_visible,
                        is_guid, list_entities, list_links, no_content, ok, page_of_links, reference_body, render,
                        validate_properties, visible)
from graph_errors import GraphError, bad_request, forbidden, invalid_value, not_found, unknown_segment
from graph_permissions import (READ_APP_ROLE_ASSIGNMENTS, READ_APPS, WRITE_APP_ROLE_ASSIGNMENTS, WRITE_APPS,
                               granted_permissions, is_app_only, require)
from graph_schema import APPLICATION, SERVICE_PRINCIPAL

DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"   # Learn: "appRoleAssignment": default app role
SECRET_ALPHABET = string.ascii_letters + string.digits + "~._-"


class Key:
    """An alternate-key path segment such as applications(appId='...')."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __str__(self):
        return f"{self.name}='{self.value}'"


# ---------------------------------------------------------------------- resolving
def find_application(directory, ref):
    if isinstance(ref, Key):
        if ref.name.lower() == "appid":
            return directory.application_by_app_id(ref.value), ref.value
        if ref.name.lower() == "uniquename":
            return directory.application_by_unique_name(ref.value), ref.value
        raise unknown_segment(f"applications({ref})")
    return directory.get("application", ref), ref


def resolve_application(call, ref):
    """Learn: "Get application": by id, or by the alternate keys appId and uniqueName."""
    record, shown = find_application(call.directory, ref)
    if not visible(call, record):
        raise not_found(shown)
    return record


def resolve_service_principal(call, ref):
    """Learn: "Get servicePrincipal": by id or by appId."""
    if isinstance(ref, Key):
        if ref.name.lower() != "appid":
            raise unknown_segment(f"servicePrincipals({ref})")
        record, shown = call.directory.service_principal_by_app_id(ref.value), ref.value
    else:
        record, shown = call.directory.get("servicePrincipal", ref), ref
    if not visible(call, record):
        raise not_found(shown)
    return record


def caller_principal_id(call):
    return call.claims.get("oid")


def require_app_write(call, app):
    """Learn: Application.ReadWrite.OwnedBy only allows managing applications the caller owns."""
    require(call.claims, WRITE_APPS)
    held = granted_permissions(call.claims)
    if is_app_only(call.claims) and "Application.ReadWrite.All" not in held:
        if caller_principal_id(call) not in call.directory.owners.get(app["id"], {}):
            raise forbidden()


# ---------------------------------------------------------------------- applications
def list_applications(svc, call):
    require(call.claims, READ_APPS)
    directory = call.directory
    indexes = {"id": lambda v: directory.get("application", v), "appId": directory.application_by_app_id,
               "uniqueName": directory.application_by_unique_name}
    return list_entities(call, "application", APPLICATION, indexes=indexes,
                         render_one=_renderer(call, APPLICATION), expandable=True)


def get_application(svc, call, ref):
    require(call.claims, READ_APPS)
    record = resolve_application(call, ref)
    select = odata.parse_select(call.args.get("$select"), APPLICATION)
    return ok({"@odata.context": call.context(context_fragment(APPLICATION, select, entity=True)),
               **_renderer(call, APPLICATION)(record)})


def _renderer(call, schema):
    """Render with $select and an optional $expand=owners (Learn: owners is expandable on both types)."""
    select = odata.parse_select(call.args.get("$select"), schema)
    expand = odata.parse_expand(call.args.get("$expand"), schema, {"owners": directory_object_schema()})

    def render_one(record):
        out = render(schema, record, select)
        if expand:
            add_expanded_links(call, record, out, *expand)
        return out
    return render_one


def create_application(svc, call, unique_name=None):
    """Learn: "Create application": 201 with the full object; appId, publisherDomain and createdDateTime are
    assigned by the service and signInAudience defaults to AzureADMyOrg."""
    require(call.claims, WRITE_APPS)
    values = validate_properties(APPLICATION, call.json_body())
    if unique_name is not None:
        values["uniqueName"] = unique_name
    if not values.get("displayName"):
        raise invalid_value("displayName", APPLICATION.resource)
    check_application_conflicts(call.directory, values)
    record = new_application_record(call.directory.new_id(), str(uuid.uuid4()), values["displayName"],
                                    call.directory.domain)
    values["keyCredentials"] = normalize_key_credentials(values.get("keyCredentials"), [])
    record.update({k: v for k, v in values.items() if v is not None})
    call.directory.add("application", record)
    owner = caller_principal_id(call)
    if owner and call.directory.find(owner)[1] is not None:
        call.directory.add_owner(record["id"], owner)
    return created({"@odata.context": call.context("applications/$entity"), **render(APPLICATION, record)})


def check_application_conflicts(directory, values, current_id=None):
    unique_name = values.get("uniqueName")
    if unique_name:
        existing = directory.application_by_unique_name(unique_name)
        if existing and existing["id"] != current_id:
            raise conflict("uniqueName")
    wanted = {u.lower() for u in values.get("identifierUris") or []}
    if wanted:
        for app in directory.applications.values():
            if app["id"] != current_id and wanted & {u.lower() for u in app.get("identifierUris") or []}:
                raise conflict("identifierUris")


def conflict(prop):
    return bad_request(f"Another object with the same value for property {prop} already exists.",
                       details=[{"target": prop, "code": "ObjectConflict"}])


def update_application(svc, call, ref):
    """Learn: "Update application" (204). Learn: "Upsert application": PATCH /applications(uniqueName='x')
    with Prefer: create-if-missing creates the application (201) when it does not exist; without the header a
    missing application is 404."""
    record, shown = find_application(call.directory, ref)
    if not visible(call, record):
        if isinstance(ref, Key) and ref.name.lower() == "uniquename" and _create_if_missing(call):
            return create_application(svc, call, unique_name=ref.value)
        require(call.claims, WRITE_APPS)
        raise not_found(shown)
    require_app_write(call, record)
    values = validate_properties(APPLICATION, call.json_body())
    if "uniqueName" in values and values["uniqueName"] != record.get("uniqueName"):
        # Learn: "application resource type": uniqueName is immutable once set.
        if record.get("uniqueName"):
            raise invalid_value("uniqueName", APPLICATION.resource)
    check_application_conflicts(call.directory, values, record["id"])
    if "keyCredentials" in values:
        values["keyCredentials"] = normalize_key_credentials(values["keyCredentials"], record.get("keyCredentials"))
    if values:
        call.directory.update("application", record["id"], values)
    return no_content()


def _create_if_missing(call):
    prefer = call.headers.get("Prefer") or ""
    return any(part.strip().lower() == "create-if-missing" for part in prefer.split(","))


def delete_application(svc, call, ref):
    """Learn: "Delete application": the application goes to deletedItems; its service principal is removed."""
    record = resolve_application(call, ref)
    require_app_write(call, record)
    sp = call.directory.service_principal_by_app_id(record["appId"])
    if sp:
        call.directory.hard_delete("servicePrincipal", sp["id"])
    call.directory.soft_delete("application", record["id"])
    from graph_extensions import rebuild_index
    rebuild_index(call.directory)         # its directory extensions go with it
    return no_content()


def add_password(svc, call, ref):
    """Learn: "application: addPassword": 200 with the passwordCredential; secretText is only returned here."""
    record = resolve_application(call, ref)
    require_app_write(call, record)
    body = call.body if isinstance(call.body, dict) else {}
    requested = body.get("passwordCredential") or {}
    if not isinstance(requested, dict):
        raise invalid_value("passwordCredential", APPLICATION.resource)
    start = requested.get("startDateTime") or iso_now()
    end = requested.get("endDateTime") or (parse_iso(start) + timedelta(days=730)).strftime("%Y-%m-%dT%H:%M:%SZ")
    secret = new_secret()
    credential = {"customKeyIdentifier": None, "displayName": requested.get("displayName"), "endDateTime": end,
                  "hint": secret[:3], "keyId": str(uuid.uuid4()), "secretText": None, "startDateTime": start}
    stored = dict(credential, _secret=secret)
    call.directory.update("application", record["id"],
                          {"passwordCredentials": [*(record.get("passwordCredentials") or []), stored]})
    return ok({"@odata.context": call.context("microsoft.graph.passwordCredential"),
               **credential, "secretText": secret})


def remove_password(svc, call, ref):
    """Learn: "application: removePassword": 204."""
    record = resolve_application(call, ref)
    require_app_write(call, record)
    key_id = call.json_body().get("keyId")
    remaining = [c for c in record.get("passwordCredentials") or [] if c.get("keyId") != key_id]
    if len(remaining) == len(record.get("passwordCredentials") or []):
        raise invalid_value("keyId", APPLICATION.resource)
    call.directory.update("application", record["id"], {"passwordCredentials": remaining})
    return no_content()


def new_secret():
    """Entra client secrets are 40 characters with '~' in the fourth position; the hint is the first three."""
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    return head + "8Q~" + "".join(secrets.choice(SECRET_ALPHABET) for _ in range(34))


def list_application_owners(svc, call, ref):
    require(call.claims, READ_APPS)
    record = resolve_application(call, ref)
    return list_links(call, call.directory.owners.get(record["id"], {}))


def add_application_owner(svc, call, ref):
    record = resolve_application(call, ref)
    require_app_write(call, record)
    owner_id = reference_body(call)
    kind, _ = get_any_visible(call, owner_id)
    if kind not in ("user", "servicePrincipal"):
        raise not_found(owner_id)
    if owner_id in call.directory.owners.get(record["id"], {}):
        raise bad_request("One or more added object references already exist for the following modified "
                          "properties: 'owners'.")
    call.directory.add_owner(record["id"], owner_id)
    return no_content()


def remove_application_owner(svc, call, ref, owner_id):
    record = resolve_application(call, ref)
    require_app_write(call, record)
    if owner_id not in call.directory.owners.get(record["id"], {}):
        raise not_found(owner_id)
    call.directory.remove_owner(record["id"], owner_id)
    return no_content()


# ---------------------------------------------------------------------- key credentials
def normalize_key_credentials(requested, existing):
    """Learn: "keyCredential resource type" and "Update application": PATCH replaces the whole collection; an
    existing credential is kept by sending it back with its keyId (its key is not returned by reads)."""
    if requested is None:
        return []
    by_key_id = {c.get("keyId"): c for c in existing or []}
    return [_normalize_key_credential(c, by_key_id) for c in requested]


def _normalize_key_credential(credential, existing):
    key_id = credential.get("keyId")
    if not credential.get("key") and key_id in existing:
        return existing[key_id]
    if credential.get("usage") not in ("Verify", "Sign"):
        raise bad_request('The value for the property "usage" in one of your credentials is invalid. Acceptable '
                          'values are Sign, Verify.')
    if credential.get("type") not in ("AsymmetricX509Cert", "X509CertAndPassword"):
        raise invalid_value("type", "KeyCredential")
    if not credential.get("key"):
        # Observed (ansible-collections/azure #1872).
        raise bad_request("KeyValue cannot be null or empty", code="KeyCredentialsInvalidValue")
    certificate = _certificate(credential["key"])
    start = credential.get("startDateTime") or _iso(certificate.not_valid_before_utc)
    end = credential.get("endDateTime") or _iso(certificate.not_valid_after_utc)
    if parse_iso(end) <= parse_iso(start):
        raise bad_request("Key credential end date is invalid.", code="KeyCredentialsInvalidValue")
    thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()
    return {"customKeyIdentifier": credential.get("customKeyIdentifier") or thumbprint,
            "displayName": credential.get("displayName") or certificate.subject.rfc4514_string(),
            "endDateTime": end, "key": credential["key"], "keyId": key_id or str(uuid.uuid4()),
            "startDateTime": start, "type": credential["type"], "usage": credential["usage"]}


def _certificate(encoded):
    try:
        return x509.load_der_x509_certificate(base64.b64decode(encoded, validate=True))
    except (ValueError, TypeError):
        raise bad_request("Key value is invalid certificate", code="KeyCredentialsInvalidValue") from None


def _iso(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------- service principals
def list_service_principals(svc, call):
    require(call.claims, READ_APPS)
    directory = call.directory
    indexes = {"id": lambda v: directory.get("servicePrincipal", v), "appId": directory.service_principal_by_app_id}
    return list_entities(call, "servicePrincipal", SERVICE_PRINCIPAL, indexes=indexes,
                         render_one=_renderer(call, SERVICE_PRINCIPAL), expandable=True)


def get_service_principal(svc, call, ref):
    require(call.claims, READ_APPS)
    record = resolve_service_principal(call, ref)
    select = odata.parse_select(call.args.get("$select"), SERVICE_PRINCIPAL)
    return ok({"@odata.context": call.context(context_fragment(SERVICE_PRINCIPAL, select, entity=True)),
               **_renderer(call, SERVICE_PRINCIPAL)(record)})


def create_service_principal(svc, call):
    """Learn: "Create servicePrincipal": appId is required and must name an application the tenant can see. Right
    after the application is created that can fail with NoBackingApplicationObject until replication completes
    (REFERENCE: observed by terraform-provider-azuread and ARO)."""
    require(call.claims, WRITE_APPS)
    values = validate_properties(SERVICE_PRINCIPAL, call.json_body(), allowed_read_only=())
    app_id = values.get("appId")
    if not is_guid(app_id or ""):
        raise invalid_value("appId", SERVICE_PRINCIPAL.resource)
    if call.directory.service_principal_by_app_id(app_id):
        raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue",
                         "The service principal cannot be created, updated, or restored because the service principal "
                         f"name {app_id} is already in use.")
    app = call.directory.application_by_app_id(app_id)
    if not visible(call, app):
        raise bad_request(f"The appId '{app_id}' of the service principal does not reference a valid application "
                          "object.", details=[{"target": "appId", "code": "NoBackingApplicationObject"}])
    record = new_service_principal_record(call.directory.new_id(), app, call.directory.tenant_id)
    record.update({k: v for k, v in values.items() if v is not None and k != "appId"})
    call.directory.add("servicePrincipal", record)
    return created({"@odata.context": call.context("servicePrincipals/$entity"), **render(SERVICE_PRINCIPAL, record)})


def update_service_principal(svc, call, ref):
    require(call.claims, WRITE_APPS)
    record = resolve_service_principal(call, ref)
    values = validate_properties(SERVICE_PRINCIPAL, call.json_body())
    values.pop("appId", None)
    if "keyCredentials" in values:
        values["keyCredentials"] = normalize_key_credentials(values["keyCredentials"], record.get("keyCredentials"))
    if values:
        call.directory.update("servicePrincipal", record["id"], values)
    return no_content()


def delete_service_principal(svc, call, ref):
    require(call.claims, WRITE_APPS)
    record = resolve_service_principal(call, ref)
    call.directory.hard_delete("servicePrincipal", record["id"])
    return no_content()


# ---------------------------------------------------------------------- app role assignments
def render_assignment(record):
    return {k: v for k, v in record.items() if not k.startswith("_")}


def list_app_role_assigned_to(svc, call, ref):
    """Learn: "List appRoleAssignments granted for a service principal" (assignments where it is the resource)."""
    require(call.claims, READ_APP_ROLE_ASSIGNMENTS)
    sp = resolve_service_principal(call, ref)
    ids = call.directory.assignments_by_resource.get(sp["id"], {})
    return page_of_links(call, [call.directory.assignments[i] for i in ids], render_assignment,
                         f"servicePrincipals('{sp['id']}')/appRoleAssignedTo")


def list_app_role_assignments(svc, call, ref):
    """Learn: "List appRoleAssignments granted to a service principal" (assignments where it is the principal)."""
    require(call.claims, READ_APP_ROLE_ASSIGNMENTS)
    sp = resolve_service_principal(call, ref)
    ids = call.directory.assignments_by_principal.get(sp["id"], {})
    return page_of_links(call, [call.directory.assignments[i] for i in ids], render_assignment,
                         f"servicePrincipals('{sp['id']}')/appRoleAssignments")


def grant_app_role_assigned_to(svc, call, ref):
    """Learn: "Grant an appRoleAssignment for a service principal": POST .../appRoleAssignedTo with principalId,
    resourceId and appRoleId; 201 with the assignment (its id is an opaque string, not a GUID)."""
    require(call.claims, WRITE_APP_ROLE_ASSIGNMENTS)
    resource = resolve_service_principal(call, ref)
    body = call.json_body()
    return _grant(call, resource, body.get("principalId"), body.get("resourceId"), body.get("appRoleId"),
                  f"servicePrincipals('{resource['id']}')/appRoleAssignedTo/$entity")


def grant_app_role_assignment(svc, call, ref):
    """Learn: "Grant an appRoleAssignment to a service principal" (POST .../appRoleAssignments)."""
    require(call.claims, WRITE_APP_ROLE_ASSIGNMENTS)
    principal = resolve_service_principal(call, ref)
    body = call.json_body()
    resource = call.directory.get("servicePrincipal", body.get("resourceId") or "")
    if not visible(call, resource):
        raise not_found(body.get("resourceId"))
    return _grant(call, resource, body.get("principalId"), body.get("resourceId"), body.get("appRoleId"),
                  f"servicePrincipals('{principal['id']}')/appRoleAssignments/$entity", principal["id"])


def _grant(call, resource, principal_id, resource_id, app_role_id, context, expected_principal=None):
    for name, value in (("principalId", principal_id), ("resourceId", resource_id), ("appRoleId", app_role_id)):
        if not is_guid(value or ""):
            raise invalid_value(name, "AppRoleAssignment")
    if resource_id != resource["id"] or (expected_principal and principal_id != expected_principal):
        raise invalid_value("resourceId" if resource_id != resource["id"] else "principalId", "AppRoleAssignment")
    kind, principal = get_any_visible(call, principal_id)
    if kind not in ("user", "group", "servicePrincipal"):
        raise not_found(principal_id)
    roles = {r["id"] for r in resource.get("appRoles") or [] if r.get("isEnabled", True)}
    if app_role_id not in roles and app_role_id != DEFAULT_ACCESS_ROLE:
        # Observed wording when the role id is not defined on the resource's application.
        raise bad_request(f"Permission being assigned was not found on application '{resource['appId']}'.")
    for assignment_id in call.directory.assignments_by_principal.get(principal_id, {}):
        existing = call.directory.assignments[assignment_id]
        if existing["resourceId"] == resource["id"] and existing["appRoleId"] == app_role_id:
            raise bad_request("Permission being assigned already exists on the object.",
                              details=[{"target": "AppRoleId", "code": "InvalidUpdate"}])
    principal_type = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}[kind]
    record = call.directory.new_app_role_assignment(principal, principal_type, resource, app_role_id)
    return created({"@odata.context": call.context(context), **render_assignment(record)})


def revoke_app_role_assigned_to(svc, call, ref, assignment_id):
    """Learn: "Delete appRoleAssignedTo": 204."""
    require(call.claims, WRITE_APP_ROLE_ASSIGNMENTS)
    sp = resolve_service_principal(call, ref)
    if assignment_id not in call.directory.assignments_by_resource.get(sp["id"], {}):
        raise not_found(assignment_id)
    call.directory.remove_app_role_assignment(assignment_id)
    return no_content()


def revoke_app_role_assignment(svc, call, ref, assignment_id):
    require(call.claims, WRITE_APP_ROLE_ASSIGNMENTS)
    sp = resolve_service_principal(call, ref)
    if assignment_id not in call.directory.assignments_by_principal.get(sp["id"], {}):
        raise not_found(assignment_id)
    call.directory.remove_app_role_assignment(assignment_id)
    return no_content()


def list_service_principal_owners(svc, call, ref):
    require(call.claims, READ_APPS)
    sp = resolve_service_principal(call, ref)
    return list_links(call, call.directory.owners.get(sp["id"], {}))

