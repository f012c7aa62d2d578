"""/users: create, read, update, delete, manager, memberOf, directReports."""
import odata
from directory_records import new_user_record
from graph_core import (context_fragment, created, get_visible, is_guid, list_entities, no_content, ok, page_of_links,
                        record_getter, reference_body, relationship_filter, render, text, validate_properties,
                        visible)
from graph_errors import bad_request, invalid_value, not_found
from graph_limits import check_lengths_and_formats, check_user_principal_name, refused_value
from graph_permissions import READ_USERS, WRITE_USERS, require
from graph_schema import GROUP, USER
from graph_uniqueness import check_addresses_unique, check_upn_unique, proxy_addresses_with_mail


def user_indexes(directory):
    return {"id": lambda value: directory.get("user", value), "userPrincipalName": directory.user_by_name}


def resolve_user(call, key):
    """Learn: "Get user": a user is addressed by id or by userPrincipalName."""
    directory = call.directory
    record = directory.get("user", key) if is_guid(key) else directory.user_by_name(key)
    if not visible(call, record):
        raise not_found(key)
    return record


# ---------------------------------------------------------------------- collection
def list_users(svc, call):
    require(call.claims, READ_USERS)
    expand = parse_expand(call.args.get("$expand"))
    select = odata.parse_select(call.args.get("$select"), USER)

    def render_user(record):
        out = render(USER, record, select)
        if expand is not None:
            add_expanded_manager(call, record, out, expand)
        return out
    return list_entities(call, "user", USER, indexes=user_indexes(call.directory), render_one=render_user,
                         expandable=True)


def count_users(svc, call):
    """Learn: "Advanced query capabilities": the $count segment needs ConsistencyLevel: eventual."""
    require(call.claims, READ_USERS)
    return count_segment(call, "user", USER)


def count_segment(call, kind, schema):
    """GET /{collection}/$count, text/plain; Learn: only with ConsistencyLevel: eventual."""
    if not odata.is_eventual(call.headers):
        raise bad_request("$count is not currently supported.")
    parsed = odata.parse_filter(call.args.get("$filter"), schema, record_getter(schema), advanced=True)
    records = call.directory.objects[kind].values()
    return text(sum(1 for r in records if visible(call, r) and (parsed is None or parsed.matches(r))))


def create_user(svc, call):
    """Learn: "Create user": accountEnabled, displayName, mailNickname, passwordProfile and userPrincipalName are
    required; the 201 response carries the default property set."""
    require(call.claims, WRITE_USERS)
    body = call.json_body()
    values = validate_properties(USER, body)
    for required in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName"):
        if values.get(required) in (None, ""):
            raise invalid_value(required, USER.resource)
    password = _password_from(values.pop("passwordProfile", None))
    if password is None:
        raise bad_request("A password must be specified to create a new user.")
    check_lengths_and_formats(USER.resource, values)
    check_user_principal_name(call.directory, values["userPrincipalName"])
    check_upn_unique(call.directory, values["userPrincipalName"])
    if values.get("mail"):
        check_addresses_unique(call.directory, [values["mail"]])
    check_password_complexity(password)
    record = new_user_record(call.directory.new_id(), values)
    record["_password"] = password
    call.directory.add("user", record)
    return created({"@odata.context": call.context("users/$entity"), **render(USER, record)})


def _password_from(profile):
    if not isinstance(profile, dict):
        return None
    password = profile.get("password")
    return password if isinstance(password, str) and password else None


def check_password_complexity(password):
    """Learn: "Password policies and account restrictions in Microsoft Entra ID": 8 to 256 characters and three
    of: lowercase, uppercase, digits, symbols."""
    classes = [any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isdigit() for c in password), any(not c.isalnum() for c in password)]
    if not 8 <= len(password) <= 256 or sum(classes) < 3:
        raise bad_request("The specified password does not comply with password complexity requirements. Please "
                          "provide a different password.")


# ---------------------------------------------------------------------- single user
def get_user(svc, call, key):
    require(call.claims, READ_USERS)
    record = resolve_user(call, key)
    select = odata.parse_select(call.args.get("$select"), USER)
    expand = parse_expand(call.args.get("$expand"))
    out = {"@odata.context": call.context(context_fragment(USER, select, entity=True)), **render(USER, record, select)}
    if expand is not None:
        add_expanded_manager(call, record, out, expand)
    return ok(out)


def update_user(svc, call, key):
    """Learn: "Update user": 204 No Content."""
    require(call.claims, WRITE_USERS)
    record = resolve_user(call, key)
    values = validate_properties(USER, call.json_body())
    if "passwordProfile" in values:
        password = _password_from(values.pop("passwordProfile"))
        if password is None:
            raise invalid_value("passwordProfile", USER.resource)
        check_password_complexity(password)
        record["_password"] = password
    if "displayName" in values and not values["displayName"]:
        raise refused_value("displayName", USER.resource)  # Learn: "it can't be cleared during updates"
    check_lengths_and_formats(USER.resource, values)
    if "userPrincipalName" in values:
        check_user_principal_name(call.directory, values["userPrincipalName"] or "")
        check_upn_unique(call.directory, values["userPrincipalName"], record["id"])
    if values.get("mail"):
        check_addresses_unique(call.directory, [values["mail"]], record["id"])
        values["proxyAddresses"] = proxy_addresses_with_mail(record, values["mail"])
    if values:
        call.directory.update("user", record["id"], values)
    return no_content()


def delete_user(svc, call, key):
    """Learn: "Delete user": the user goes to deletedItems, restorable for 30 days."""
    require(call.claims, WRITE_USERS)
    record = resolve_user(call, key)
    call.directory.soft_delete("user", record["id"])
    return no_content()


# ---------------------------------------------------------------------- manager
def manager_missing():
    # Learn: "List manager" returns 404 when no manager is assigned; Graph names the navigation property.
    return not_found("manager")


def get_manager(svc, call, key):
    require(call.claims, READ_USERS)
    record = resolve_user(call, key)
    manager_id = call.directory.manager_of.get(record["id"])
    manager = call.directory.get("user", manager_id) if manager_id else None
    if manager is None:
        raise manager_missing()
    select = odata.parse_select(call.args.get("$select"), USER)
    return ok({"@odata.context": call.context("directoryObjects/$entity"),
               **render(USER, manager, select, kind_annotation=True)})


def set_manager(svc, call, key):
    """Learn: "Assign manager": PUT /users/{id}/manager/$ref with an @odata.id, 204 No Content."""
    require(call.claims, WRITE_USERS)
    record = resolve_user(call, key)
    manager_id = reference_body(call)
    manager = get_visible(call, "user", manager_id)
    call.directory.set_manager(record["id"], manager["id"])
    return no_content()


def remove_manager(svc, call, key):
    require(call.claims, WRITE_USERS)
    record = resolve_user(call, key)
    if record["id"] not in call.directory.manager_of:
        raise manager_missing()
    call.directory.remove_manager(record["id"])
    return no_content()


def parse_expand(raw):
    """Learn "List users" example: $expand=manager($select=id,displayName). None when absent, else the select."""
    expanded = odata.parse_expand(raw, USER, {"manager": USER})
    return None if expanded is None else (expanded[1] or [])


def add_expanded_manager(call, record, out, select):
    manager_id = call.directory.manager_of.get(record["id"])
    manager = call.directory.get("user", manager_id) if manager_id else None
    if manager is not None:
        out["manager"] = render(USER, manager, select or None, kind_annotation=True)


def list_direct_reports(svc, call, key):
    require(call.claims, READ_USERS)
    record = resolve_user(call, key)
    select = odata.parse_select(call.args.get("$select"), USER)
    reports = [call.directory.get("user", i) for i in call.directory.reports.get(record["id"], {})]
    reports = [r for r in reports if r is not None]
    return page_of_links(call, reports, lambda r: render(USER, r, select, kind_annotation=True), "directoryObjects")


# ---------------------------------------------------------------------- memberOf
def list_member_of(svc, call, key):
    """Learn: "List a user's direct memberships": groups and activated directory roles."""
    require(call.claims, READ_USERS)
    record = resolve_user(call, key)
    return page_of_links(call, memberships(call.directory, record["id"]),
                         lambda item: render_membership(item, call), "directoryObjects",
                         match=relationship_filter(call))


def memberships(directory, object_id):
    items = [("group", directory.get("group", gid)) for gid in directory.member_of.get(object_id, {})]
    for template_id in directory.user_directory_role_template_ids(object_id):
        role = directory.activate_directory_role(template_id)
        items.append(("directoryRole", role))
    return [(kind, r) for kind, r in items if r is not None]


def render_membership(item, call):
    kind, record = item
    if kind == "group":
        select = odata.parse_select(call.args.get("$select"), GROUP, extra=USER.properties)
        return render(GROUP, record, [s for s in select if s in GROUP.properties] if select else None,
                      kind_annotation=True)
    return {"@odata.type": "#microsoft.graph.directoryRole", **record}

