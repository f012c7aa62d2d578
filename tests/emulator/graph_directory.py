"""/organization, directory roles and role management, /directory/deletedItems and /directoryObjects."""
import odata
from directory_records import ROLE_TEMPLATE_BY_ID, TENANT_EPOCH
from graph_core import (created, get_any_visible, is_guid, list_links, no_content, ok, page_of_links, record_getter,
                        reference_body, render, render_directory_object, visible)
from graph_errors import bad_request, invalid_value, not_found, unknown_segment
from graph_permissions import (READ_APPS, READ_GROUPS, READ_ORGANIZATION, READ_ROLES, READ_USERS, WRITE_APPS,
                               WRITE_GROUPS, WRITE_ROLES, WRITE_USERS, require)
from graph_schema import EntitySchema, SCHEMAS

READ_ACCESS = {"user": READ_USERS, "group": READ_GROUPS, "application": READ_APPS, "servicePrincipal": READ_APPS}
WRITE_ACCESS = {"user": WRITE_USERS, "group": WRITE_GROUPS, "application": WRITE_APPS, "servicePrincipal": WRITE_APPS}

ROLE_ASSIGNMENT = EntitySchema(
    name="unifiedRoleAssignment", resource="RoleAssignment", collection="roleManagement/directory/roleAssignments",
    properties={"id": "str", "principalId": "guid", "roleDefinitionId": "str", "directoryScopeId": "str",
                "appScopeId": "str"})


# ---------------------------------------------------------------------- organization
def organization_record(directory):
    """Learn: "organization resource type" / "Get organization"."""
    return {
        "id": directory.tenant_id, "deletedDateTime": None, "businessPhones": [], "city": None, "country": None,
        "countryLetterCode": "US", "createdDateTime": TENANT_EPOCH, "defaultUsageLocation": None,
        "displayName": directory.display_name, "isMultipleDataLocationsForServicesEnabled": None,
        "marketingNotificationEmails": [], "onPremisesLastSyncDateTime": None, "onPremisesSyncEnabled": None,
        "partnerTenantType": None, "postalCode": None, "preferredLanguage": "en",
        "securityComplianceNotificationMails": [], "securityComplianceNotificationPhones": [], "state": None,
        "street": None, "technicalNotificationMails": [], "tenantType": "AAD", "assignedPlans": [],
        "privacyProfile": None, "provisionedPlans": [], "verifiedDomains": directory.verified_domains(),
    }


def list_organization(svc, call):
    require(call.claims, READ_ORGANIZATION)
    org = _select(organization_record(call.directory), call.args.get("$select"))
    return ok({"@odata.context": call.context("organization"), "value": [org]})


def get_organization(svc, call, org_id):
    require(call.claims, READ_ORGANIZATION)
    if org_id.lower() != call.directory.tenant_id.lower():
        raise not_found(org_id)
    org = _select(organization_record(call.directory), call.args.get("$select"))
    return ok({"@odata.context": call.context("organization/$entity"), **org})


def _select(record, raw):
    if raw is None:
        return record
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in record]
    if unknown:
        raise bad_request("Parsing OData Select and Expand failed: Could not find a property named "
                          f"'{unknown[0]}' on type 'microsoft.graph.organization'.", code="BadRequest")
    return {n: record[n] for n in names}


# ---------------------------------------------------------------------- directory roles (legacy API)
def list_directory_roles(svc, call):
    """Learn: "List directoryRoles": only activated roles are listed."""
    require(call.claims, READ_ROLES)
    roles = list(call.directory.directory_roles.values())
    return page_of_links(call, roles, lambda r: dict(r), "directoryRoles")


def resolve_directory_role(call, ref):
    key = getattr(ref, "name", None)
    if key is not None:
        if key.lower() != "roletemplateid":
            raise unknown_segment(f"directoryRoles({ref})")
        found = [r for r in call.directory.directory_roles.values() if r["roleTemplateId"] == ref.value]
        if not found:
            raise not_found(ref.value)
        return found[0]
    role = call.directory.directory_roles.get(ref)
    if role is None:
        raise not_found(ref)
    return role


def get_directory_role(svc, call, ref):
    require(call.claims, READ_ROLES)
    return ok({"@odata.context": call.context("directoryRoles/$entity"), **resolve_directory_role(call, ref)})


def activate_directory_role(svc, call):
    """Learn: "Activate directoryRole": POST /directoryRoles {roleTemplateId}, 201."""
    require(call.claims, WRITE_ROLES)
    template_id = call.json_body().get("roleTemplateId")
    if template_id not in ROLE_TEMPLATE_BY_ID:
        raise invalid_value("roleTemplateId", "DirectoryRole")
    role = call.directory.activate_directory_role(template_id)
    return created({"@odata.context": call.context("directoryRoles/$entity"), **role})


def list_directory_role_members(svc, call, ref):
    require(call.claims, READ_ROLES)
    role = resolve_directory_role(call, ref)
    ids = [a["principalId"] for a in call.directory.role_assignments.values()
           if a["roleDefinitionId"] == role["roleTemplateId"] and a["directoryScopeId"] == "/"]
    return list_links(call, dict.fromkeys(ids))


def add_directory_role_member(svc, call, ref):
    """Learn: "Add directory role member": POST /directoryRoles/{id}/members/$ref, 204."""
    require(call.claims, WRITE_ROLES)
    role = resolve_directory_role(call, ref)
    principal_id = reference_body(call)
    get_any_visible(call, principal_id)
    if _find_role_assignment(call.directory, principal_id, role["roleTemplateId"], "/"):
        raise bad_request("One or more added object references already exist for the following modified "
                          "properties: 'members'.")
    call.directory.add_role_assignment(principal_id, role["roleTemplateId"], "/")
    return no_content()


def remove_directory_role_member(svc, call, ref, principal_id):
    require(call.claims, WRITE_ROLES)
    role = resolve_directory_role(call, ref)
    assignment = _find_role_assignment(call.directory, principal_id, role["roleTemplateId"], "/")
    if assignment is None:
        raise not_found(principal_id)
    del call.directory.role_assignments[assignment["id"]]
    return no_content()


def list_role_templates(svc, call):
    require(call.claims, READ_ROLES)
    return page_of_links(call, list(ROLE_TEMPLATE_BY_ID.values()), dict, "directoryRoleTemplates")


def get_role_template(svc, call, template_id):
    require(call.claims, READ_ROLES)
    template = ROLE_TEMPLATE_BY_ID.get(template_id)
    if template is None:
        raise not_found(template_id)
    return ok({"@odata.context": call.context("directoryRoleTemplates/$entity"), **template})


# ---------------------------------------------------------------------- role management (unified RBAC)
def role_definition(template):
    """Learn: "unifiedRoleDefinition resource type": built-in definitions share their id with the template."""
    return {"id": template["id"], "description": template["description"], "displayName": template["displayName"],
            "isBuiltIn": True, "isEnabled": True, "resourceScopes": ["/"], "templateId": template["id"],
            "version": "1", "rolePermissions": []}


def list_role_definitions(svc, call):
    require(call.claims, READ_ROLES)
    definitions = [role_definition(t) for t in ROLE_TEMPLATE_BY_ID.values()]
    raw = call.args.get("$filter")
    if raw:
        schema = EntitySchema(name="unifiedRoleDefinition", resource="RoleDefinition",
                              collection="roleManagement/directory/roleDefinitions",
                              properties={"id": "str", "displayName": "str", "templateId": "str",
                                          "isBuiltIn": "bool", "isEnabled": "bool", "description": "str"})
        parsed = odata.parse_filter(raw, schema, record_getter(schema), advanced=True)
        definitions = [d for d in definitions if parsed.matches(d)]
    return page_of_links(call, definitions, dict, "roleManagement/directory/roleDefinitions")


def get_role_definition(svc, call, definition_id):
    require(call.claims, READ_ROLES)
    template = ROLE_TEMPLATE_BY_ID.get(definition_id)
    if template is None:
        raise not_found(definition_id)
    return ok({"@odata.context": call.context("roleManagement/directory/roleDefinitions/$entity"),
               **role_definition(template)})


def list_role_assignments(svc, call):
    """Learn: "List unifiedRoleAssignments": filterable by principalId and roleDefinitionId."""
    require(call.claims, READ_ROLES)
    assignments = list(call.directory.role_assignments.values())
    raw = call.args.get("$filter")
    if raw:
        parsed = odata.parse_filter(raw, ROLE_ASSIGNMENT, record_getter(ROLE_ASSIGNMENT), advanced=True)
        assignments = [a for a in assignments if parsed.matches(a)]
    return page_of_links(call, assignments, dict, "roleManagement/directory/roleAssignments")


def get_role_assignment(svc, call, assignment_id):
    require(call.claims, READ_ROLES)
    assignment = call.directory.role_assignments.get(assignment_id)
    if assignment is None:
        raise not_found(assignment_id)
    return ok({"@odata.context": call.context("roleManagement/directory/roleAssignments/$entity"), **assignment})


def create_role_assignment(svc, call):
    """Learn: "Create unifiedRoleAssignment": principalId, roleDefinitionId and directoryScopeId ("/" for the
    tenant); 201 with the assignment."""
    require(call.claims, WRITE_ROLES)
    body = call.json_body()
    principal_id, definition_id = body.get("principalId"), body.get("roleDefinitionId")
    scope = body.get("directoryScopeId")
    if not is_guid(principal_id or ""):
        raise invalid_value("principalId", "RoleAssignment")
    if definition_id not in ROLE_TEMPLATE_BY_ID:
        raise not_found(definition_id)
    if scope != "/":
        raise invalid_value("directoryScopeId", "RoleAssignment")
    kind, _ = get_any_visible(call, principal_id)
    if _find_role_assignment(call.directory, principal_id, definition_id, scope):
        raise bad_request("A conflicting object with one or more of the specified property values is present in "
                          "the directory.")
    assignment = call.directory.add_role_assignment(principal_id, definition_id, scope)
    return created({"@odata.context": call.context("roleManagement/directory/roleAssignments/$entity"),
                    **assignment})


def delete_role_assignment(svc, call, assignment_id):
    require(call.claims, WRITE_ROLES)
    if assignment_id not in call.directory.role_assignments:
        raise not_found(assignment_id)
    del call.directory.role_assignments[assignment_id]
    return no_content()


def _find_role_assignment(directory, principal_id, definition_id, scope):
    for assignment in directory.role_assignments.values():
        if (assignment["principalId"], assignment["roleDefinitionId"], assignment["directoryScopeId"]) == \
                (principal_id, definition_id, scope):
            return assignment
    return None


# ---------------------------------------------------------------------- deleted items
def list_deleted(svc, call, kind):
    """Learn: "List deleted items": the collection must be cast to a type, e.g. .../microsoft.graph.user."""
    require(call.claims, READ_ACCESS[kind])
    schema = SCHEMAS[kind]
    select = odata.parse_select(call.args.get("$select"), schema)
    records = [e["record"] for e in call.directory.deleted.values() if e["kind"] == kind]
    names = list(select) if select else None
    if names is not None and "deletedDateTime" not in names:
        names.append("deletedDateTime")
    return page_of_links(call, records, lambda r: render(schema, r, names or _deleted_defaults(schema)),
                         f"directory/deletedItems/{schema.odata_type}")


def _deleted_defaults(schema):
    return list(schema.default_select or schema.properties) + (
        ["deletedDateTime"] if schema.default_select else [])


def _deleted_entry(call, object_id):
    entry = call.directory.deleted.get(object_id)
    if entry is None:
        raise not_found(object_id)
    return entry


def get_deleted(svc, call, object_id):
    entry = _deleted_entry(call, object_id)
    require(call.claims, READ_ACCESS[entry["kind"]])
    schema = SCHEMAS[entry["kind"]]
    return ok({"@odata.context": call.context("directory/deletedItems/$entity"),
               **render(schema, entry["record"], _deleted_defaults(schema), kind_annotation=True)})


def restore_deleted(svc, call, object_id):
    """Learn: "Restore deleted item": 200 with the restored object."""
    entry = _deleted_entry(call, object_id)
    require(call.claims, WRITE_ACCESS[entry["kind"]])
    kind, record = call.directory.restore(object_id)
    return ok({"@odata.context": call.context("directoryObjects/$entity"),
               **render_directory_object(kind, record)})


def purge_deleted(svc, call, object_id):
    """Learn: "Permanently delete an item": 204."""
    entry = _deleted_entry(call, object_id)
    require(call.claims, WRITE_ACCESS[entry["kind"]])
    call.directory.purge(object_id)
    return no_content()


# ---------------------------------------------------------------------- directoryObjects
def get_directory_object(svc, call, object_id):
    """Learn: "Get directoryObject": any object by id, with its @odata.type."""
    kind, record = call.directory.find(object_id)
    if kind not in READ_ACCESS or not visible(call, record):
        raise not_found(object_id)
    require(call.claims, READ_ACCESS[kind])
    return ok({"@odata.context": call.context("directoryObjects/$entity"), **render_directory_object(kind, record)})
