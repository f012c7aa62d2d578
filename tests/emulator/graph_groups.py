"""/groups: create, read, update, delete, members and owners."""
import odata
from directory_records import new_group_record
from graph_core import (MEMBER_KINDS, add_expanded_links, context_fragment, created, directory_object_schema,
                        get_any_visible, get_visible, id_from_reference, invalid_object_identifier, is_guid,
                        list_entities, list_links, no_content, ok, reference_body, render, split_binds, text,
                        validate_properties)
from graph_errors import bad_request, invalid_value, not_found
from graph_limits import check_lengths_and_formats, refused_value
from graph_permissions import CREATE_GROUPS, READ_GROUPS, WRITE_GROUPS, WRITE_MEMBERS, require
from graph_schema import GROUP
from graph_uniqueness import check_addresses_unique
from graph_users import count_segment

# Learn: "Create group" / "Add members": at most 20 members and owners can be bound in one request.
MAX_LINK_CHANGES = 20


def group_indexes(directory):
    return {"id": lambda value: directory.get("group", value)}


# ---------------------------------------------------------------------- collection
def list_groups(svc, call):
    require(call.claims, READ_GROUPS)
    select = odata.parse_select(call.args.get("$select"), GROUP)
    expand = parse_group_expand(call)

    def render_group(record):
        out = render(GROUP, record, select)
        if expand:
            add_expanded_links(call, record, out, *expand)
        return out
    return list_entities(call, "group", GROUP, indexes=group_indexes(call.directory), render_one=render_group,
                         expandable=True)


def parse_group_expand(call):
    directory_object = directory_object_schema()
    return odata.parse_expand(call.args.get("$expand"), GROUP,
                              {"members": directory_object, "owners": directory_object})


def count_groups(svc, call):
    require(call.claims, READ_GROUPS)
    return count_segment(call, "group", GROUP)


def create_group(svc, call):
    """Learn: "Create group": displayName, mailEnabled, mailNickname and securityEnabled are required; only
    Microsoft 365 groups (groupTypes Unified) and security groups can be created through Graph."""
    require(call.claims, CREATE_GROUPS)
    body = call.json_body()
    binds = split_binds(body)
    values = validate_properties(GROUP, body, annotations={f"{k}@odata.bind" for k in binds})
    for required in ("displayName", "mailEnabled", "mailNickname", "securityEnabled"):
        if values.get(required) in (None, ""):
            raise invalid_value(required, GROUP.resource)
    check_lengths_and_formats(GROUP.resource, values)
    unified = "Unified" in (values.get("groupTypes") or [])
    if values["mailEnabled"] and not unified:
        raise invalid_value("mailEnabled", GROUP.resource)
    if unified and not values["mailEnabled"]:
        raise invalid_value("mailEnabled", GROUP.resource)
    links = resolve_binds(call, binds)
    record = new_group_record(call.directory.new_id(), values, call.directory.default_domain())
    if record.get("mail"):
        # Learn (group resource): mailNickname is "unique for Microsoft 365 groups"; their address is an SMTP
        # proxy address, unique across every object.
        check_addresses_unique(call.directory, [record["mail"]])
    call.directory.add("group", record)
    apply_binds(call.directory, record["id"], links)
    return created({"@odata.context": call.context("groups/$entity"), **render(GROUP, record)})


def resolve_binds(call, binds):
    """members@odata.bind / owners@odata.bind references: at most 20 in total, each must exist."""
    if sum(len(refs) for refs in binds.values()) > MAX_LINK_CHANGES:
        # Observed (microsoft-graph-docs #6016) and documented on "Create group".
        raise bad_request("A resource cannot contain more than 20 link changes")
    links = {}
    for relation, refs in binds.items():
        if relation not in ("members", "owners"):
            raise bad_request(f"Invalid property '{relation}@odata.bind'.")
        ids = []
        for ref in refs:
            object_id = id_from_reference(ref)
            if not is_guid(object_id):
                raise invalid_object_identifier(object_id)
            get_any_visible(call, object_id)
            ids.append(object_id)
        links[relation] = ids
    return links


def apply_binds(directory, group_id, links):
    for member_id in links.get("members", []):
        directory.add_member(group_id, member_id)
    for owner_id in links.get("owners", []):
        directory.add_owner(group_id, owner_id)


# ---------------------------------------------------------------------- single group
def get_group(svc, call, group_id):
    require(call.claims, READ_GROUPS)
    record = get_visible(call, "group", group_id)
    select = odata.parse_select(call.args.get("$select"), GROUP)
    expand = parse_group_expand(call)
    out = {"@odata.context": call.context(context_fragment(GROUP, select, entity=True)),
           **render(GROUP, record, select)}
    if expand:
        add_expanded_links(call, record, out, *expand)
    return ok(out)


def update_group(svc, call, group_id):
    """Learn: "Update group" (204). Learn: "Add members" example 2: PATCH with members@odata.bind adds up to 20
    members at once; if any reference is invalid or already a member, nothing is added."""
    body = call.json_body()
    binds = split_binds(body)
    values = validate_properties(GROUP, body, annotations={f"{k}@odata.bind" for k in binds})
    require(call.claims, WRITE_GROUPS if values or "owners" in binds else WRITE_MEMBERS)
    record = get_visible(call, "group", group_id)
    links = resolve_binds(call, binds)
    already = [m for m in links.get("members", []) if m in call.directory.members.get(group_id, {})]
    if already:
        raise members_already_exist()
    if "displayName" in values and not values["displayName"]:
        raise refused_value("displayName", GROUP.resource)  # Learn: "can't be cleared during updates"
    check_lengths_and_formats(GROUP.resource, values)
    if values:
        call.directory.update("group", record["id"], values)
    apply_binds(call.directory, record["id"], links)
    return no_content()


def delete_group(svc, call, group_id):
    """Learn: "Delete group": Microsoft 365 groups go to deletedItems for 30 days; security groups are deleted
    permanently."""
    require(call.claims, WRITE_GROUPS)
    record = get_visible(call, "group", group_id)
    if "Unified" in (record.get("groupTypes") or []):
        call.directory.soft_delete("group", group_id)
    else:
        call.directory.hard_delete("group", group_id)
    return no_content()


# ---------------------------------------------------------------------- members / owners
def members_already_exist():
    return bad_request("One or more added object references already exist for the following modified properties: "
                       "'members'.")


def list_members(svc, call, group_id):
    """Learn: "List group members": directoryObjects with @odata.type, paged."""
    require(call.claims, READ_GROUPS)
    get_visible(call, "group", group_id)
    return list_links(call, call.directory.members.get(group_id, {}))


def list_owners(svc, call, group_id):
    require(call.claims, READ_GROUPS)
    get_visible(call, "group", group_id)
    return list_links(call, call.directory.owners.get(group_id, {}))


def count_members(svc, call, group_id):
    require(call.claims, READ_GROUPS)
    get_visible(call, "group", group_id)
    if not odata.is_eventual(call.headers):
        raise bad_request("$count is not currently supported.")
    return text(len(call.directory.members.get(group_id, {})))


def add_member(svc, call, group_id):
    """Learn: "Add members": POST /groups/{id}/members/$ref, 204; 400 when already a member, 404 when the
    object does not exist."""
    require(call.claims, WRITE_MEMBERS)
    get_visible(call, "group", group_id)
    member_id = reference_body(call)
    kind, _ = get_any_visible(call, member_id)
    if kind not in MEMBER_KINDS:
        raise not_found(member_id)
    if member_id in call.directory.members.get(group_id, {}):
        raise members_already_exist()
    call.directory.add_member(group_id, member_id)
    return no_content()


def remove_member(svc, call, group_id, member_id):
    """Learn: "Remove member": DELETE /groups/{id}/members/{memberId}/$ref, 204."""
    require(call.claims, WRITE_MEMBERS)
    get_visible(call, "group", group_id)
    if member_id not in call.directory.members.get(group_id, {}):
        raise not_found(member_id)
    call.directory.remove_member(group_id, member_id)
    return no_content()


def add_owner(svc, call, group_id):
    require(call.claims, WRITE_GROUPS)
    get_visible(call, "group", group_id)
    owner_id = reference_body(call)
    kind, _ = get_any_visible(call, owner_id)
    if kind not in ("user", "servicePrincipal"):
        raise not_found(owner_id)
    if owner_id in call.directory.owners.get(group_id, {}):
        raise bad_request("One or more added object references already exist for the following modified "
                          "properties: 'owners'.")
    call.directory.add_owner(group_id, owner_id)
    return no_content()


def remove_owner(svc, call, group_id, owner_id):
    require(call.claims, WRITE_GROUPS)
    get_visible(call, "group", group_id)
    if owner_id not in call.directory.owners.get(group_id, {}):
        raise not_found(owner_id)
    call.directory.remove_owner(group_id, owner_id)
    return no_content()

