"""What every Graph handler shares: the call context, response tuples, rendering with $select, collection paging
and request-body validation."""
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote

import odata
from graph_errors import (GraphError, bad_request, invalid_property, invalid_value, not_found, read_only,
                          unsupported_query)
from graph_schema import SCHEMAS, EntitySchema

LINK_SAFE = "$'(),:@/"
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


@dataclass
class Call:
    """One Graph request, top-level or a $batch item."""
    method: str
    path: str               # without the version prefix, e.g. "/users/abc"
    args: object            # MultiDict of query options
    headers: object         # case-insensitive mapping
    body: object            # parsed JSON (dict/list) or None when there was no body
    claims: dict
    base: str               # absolute service root, e.g. "https://127.0.0.1:8443/v1.0"
    directory: object
    raw_body_invalid: bool = False
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_request_id: str = ""

    def json_body(self):
        """Learn: "Microsoft Graph error responses": an unreadable payload is a 400 BadRequest."""
        if self.raw_body_invalid or not isinstance(self.body, dict):
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                                "header is set and payload is of valid JSON format.")
        return self.body

    def link(self, path, params):
        """An absolute link back into the service, built from the request's own host so clients can follow it."""
        query = "&".join(f"{quote(k, safe='$')}={quote(str(v), safe=LINK_SAFE)}" for k, v in params)
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def context(self, fragment):
        return f"{self.base}/$metadata#{fragment}"


def graph_date():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------------- results: (status, headers, body)
def ok(body, status=200):
    return status, {"Content-Type": JSON_TYPE, "OData-Version": "4.0", "Cache-Control": "no-cache"}, body


def created(body):
    return ok(body, 201)


def no_content():
    return 204, {"Cache-Control": "no-cache"}, None


def text(value):
    return 200, {"Content-Type": "text/plain", "Cache-Control": "no-cache"}, str(value)


def error_result(error: GraphError, call):
    headers = {"Content-Type": "application/json", "Cache-Control": "no-cache", **error.headers}
    return error.status, headers, error.body(graph_date(), call.request_id, call.client_request_id)


# ---------------------------------------------------------------------- rendering
def render(schema, record, select=None, kind_annotation=False):
    """A record as Graph returns it: default or selected properties, never internal keys or write-only values.
    Learn: "keyCredential resource type": key is only returned when keyCredentials is explicitly selected."""
    names = select or schema.default_select or schema.properties
    out = {"@odata.type": f"#{schema.odata_type}"} if kind_annotation else {}
    for name in names:
        if name in schema.hidden:
            out[name] = None
            continue
        value = record.get(name)
        if value is None:
            value = schema.default_value(name)
        if name in ("keyCredentials", "passwordCredentials"):
            value = [_public_credential(c, include_key=bool(select) and name in select) for c in value]
        out[name] = value
    return out


def _public_credential(credential, include_key):
    out = {k: v for k, v in credential.items() if not k.startswith("_")}
    if "key" in out and not include_key:
        out["key"] = None
    if "secretText" in out:
        out["secretText"] = None
    return out


def context_fragment(schema, select, entity=False, collection=None):
    name = collection or schema.collection
    if select:
        name += "(" + ",".join(select) + ")"
    return name + ("/$entity" if entity else "")


# ---------------------------------------------------------------------- lookups honouring replication delay
def visible(call, record):
    return record is not None and not call.directory.is_replicating(record)


def get_visible(call, kind, object_id):
    record = call.directory.get(kind, object_id)
    if not visible(call, record):
        raise not_found(object_id)
    return record


def get_any_visible(call, object_id):
    kind, record = call.directory.find(object_id)
    if not visible(call, record):
        raise not_found(object_id)
    return kind, record


# ---------------------------------------------------------------------- collections
def record_getter(schema):
    def get(record, prop):
        value = record.get(prop)
        return schema.default_value(prop) if value is None else value
    return get


def list_entities(call, kind, schema, *, indexes=None, render_one=None, expandable=False):
    """GET on an entity set: $select, $filter, $search, $top, $count, $orderby and $skiptoken paging.

    Sequential pages resume after the last returned object's sequence number (O(page)); filtered pages scan
    forward from there. Objects still inside the replication window are left out, as a replica that has not
    received them would."""
    args, directory = call.args, call.directory
    advanced = odata.is_advanced(call.headers, args)
    select = odata.parse_select(args.get("$select"), schema)
    if not expandable:
        odata.parse_expand(args.get("$expand"), schema, {})
    top = odata.page_size(args)
    parsed = odata.parse_filter(args.get("$filter"), schema, record_getter(schema), advanced)
    search = odata.parse_search(args.get("$search"), schema, call.headers)
    if search is not None:
        parsed = _with_search(parsed, search)
    order = odata.parse_orderby(args.get("$orderby"), schema, advanced, parsed is not None)
    token = _page_token(args)
    source = _candidates(directory, kind, parsed, order, indexes, token)
    matches = (r for r in source if visible(call, r) and (parsed is None or parsed.matches(r)))
    page, more = _take(matches, top)
    render_one = render_one or (lambda r: render(schema, r, select))
    body = {"@odata.context": call.context(context_fragment(schema, select))}
    if advanced:
        body["@odata.count"] = _count(directory, kind, parsed, indexes, call)
    body["value"] = [render_one(r) for r in page]
    if more:
        by_offset = order or _lookup(parsed, indexes)
        next_token = {"o": token.get("o", 0) + len(page)} if by_offset else {"p": page[-1]["_seq"]}
        body["@odata.nextLink"] = call.link(call.path, _params_without_skiptoken(args) +
                                            [("$skiptoken", odata.encode_token(next_token))])
    return ok(body)


class _SearchOnly:
    lookup = None

    def __init__(self, matches):
        self.matches = matches


def _with_search(parsed, search):
    """$search and $filter together must both match."""
    if parsed is None:
        return _SearchOnly(search)
    matches = parsed.matches
    parsed.matches = lambda record: matches(record) and search(record)
    return parsed


def _page_token(args):
    raw = args.get("$skiptoken")
    if raw is None:
        return {}
    token = odata.decode_token(raw)
    if not isinstance(token, dict):
        raise odata.expired_page_token()
    return token


def _lookup(parsed, indexes):
    if parsed is None or parsed.lookup is None or not indexes:
        return None
    prop, values = parsed.lookup
    return (indexes[prop], values) if prop in indexes else None


def _candidates(directory, kind, parsed, order, indexes, token):
    lookup = _lookup(parsed, indexes)
    if lookup:
        resolve, values = lookup
        found, seen = [], set()
        for value in values:
            record = resolve(value) if isinstance(value, str) else None
            if record is not None and record["id"] not in seen:
                seen.add(record["id"])
                found.append(record)
        return iter(found[token.get("o", 0):])
    if order:
        prop, descending = order
        records = sorted(directory.objects[kind].values(),
                         key=lambda r: ((r.get(prop) or "").lower(), r["_seq"]), reverse=descending)
        return iter(records[token.get("o", 0):])
    return directory.iter_kind(kind, token.get("p", -1))


def _take(iterator, top):
    page = []
    for record in iterator:
        if len(page) == top:
            return page, True
        page.append(record)
    return page, False


def _count(directory, kind, parsed, indexes, call):
    if parsed is None:
        return sum(1 for r in directory.objects[kind].values() if visible(call, r))
    source = _candidates(directory, kind, parsed, None, indexes, {})
    return sum(1 for r in source if visible(call, r) and parsed.matches(r))


def _params_without_skiptoken(args):
    return [(k, v) for k, v in args.items(multi=True) if k != "$skiptoken"]


def page_of_links(call, items, render_one, context, top=None, match=None):
    """Paging for relationship collections (members, memberOf, owners, assignments): offset tokens.
    `match` filters the items first (a parsed $filter)."""
    top = top or odata.page_size(call.args)
    if match is not None:
        items = [item for item in items if match(item)]
    token = _page_token(call.args)
    offset = token.get("o", 0)
    page = items[offset:offset + top]
    body = {"@odata.context": call.context(context)}
    if odata.is_advanced(call.headers, call.args):
        body["@odata.count"] = len(items)
    body["value"] = [render_one(item) for item in page]
    if offset + top < len(items):
        body["@odata.nextLink"] = call.link(call.path, _params_without_skiptoken(call.args) +
                                            [("$skiptoken", odata.encode_token({"o": offset + top}))])
    return ok(body)


# ---------------------------------------------------------------------- directoryObject collections
MEMBER_KINDS = ("user", "group", "servicePrincipal")
# Learn: "List groups" ($expand=members): an expanded navigation property carries at most 20 objects.
MAX_EXPANDED = 20


def list_links(call, ids):
    select = parse_directory_object_select(call)
    records = []
    for object_id in ids:
        kind, record = call.directory.find(object_id)
        if record is not None:
            records.append((kind, record))
    return page_of_links(call, records, lambda item: render_directory_object(item[0], item[1], select),
                         "directoryObjects", match=relationship_filter(call))


def add_expanded_links(call, record, out, relation, select):
    links = call.directory.members if relation == "members" else call.directory.owners
    rendered = []
    for object_id in list(links.get(record["id"], {}))[:MAX_EXPANDED]:
        kind, linked = call.directory.find(object_id)
        if linked is not None:
            rendered.append(render_directory_object(kind, linked, select))
    out[relation] = rendered


def directory_object_schema():
    """directoryObject collections mix users, groups and service principals: any of their properties may be
    selected or filtered on."""
    properties = {}
    for kind in MEMBER_KINDS:
        properties.update(SCHEMAS[kind].properties)
    return EntitySchema(name="directoryObject", resource="DirectoryObject", collection="directoryObjects",
                        properties=properties, endswith={"mail", "userPrincipalName", "proxyAddresses"})


def parse_directory_object_select(call):
    return odata.parse_select(call.args.get("$select"), directory_object_schema())


def relationship_filter(call):
    """Learn "List group members" example 5: $filter on a relationship such as members or memberOf is an advanced
    query (ConsistencyLevel: eventual and $count=true); without them Graph answers (observed, microsoft-graph-docs
    #12152) "The specified filter to the reference property query is currently not supported.". Items are
    (kind, record) pairs."""
    raw = call.args.get("$filter")
    if raw is None:
        return None
    if not odata.is_advanced(call.headers, call.args):
        raise unsupported_query("The specified filter to the reference property query is currently not supported.")
    schema = directory_object_schema()
    parsed = odata.parse_filter(raw, schema, record_getter(schema), advanced=True)
    return lambda item: parsed.matches(item[1])


def render_directory_object(kind, record, select=None):
    schema = SCHEMAS[kind]
    names = [s for s in select if s in schema.properties] if select else None
    return render(schema, record, names or (["id"] if select else None), kind_annotation=True)


# ---------------------------------------------------------------------- request bodies
KIND_CHECKS = {
    "str": lambda v: isinstance(v, str),
    "guid": lambda v: isinstance(v, str) and _is_guid(v),
    "datetime": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "strlist": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "objlist": lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v),
    "obj": lambda v: isinstance(v, dict),
}


def _is_guid(value):
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def is_guid(value):
    return isinstance(value, str) and _is_guid(value)


def validate_properties(schema, body, *, allowed_read_only=(), annotations=()):
    """The body's settable properties, canonical names as keys. Learn: `@odata.type` and other instance
    annotations are accepted and ignored; unknown properties and read-only ones are rejected."""
    values = {}
    for key, value in body.items():
        if key.startswith("@odata.") or key in annotations:
            continue
        if key not in schema.properties:
            raise invalid_property(key)
        if key in schema.read_only and key not in allowed_read_only:
            raise read_only(key)
        if value is not None and not KIND_CHECKS[schema.properties[key]](value):
            raise invalid_value(key, schema.resource)
        values[key] = value
    return values


def split_binds(body):
    """`members@odata.bind` / `owners@odata.bind` lists of directoryObject URLs, separated from the properties."""
    binds = {}
    for key in list(body):
        if key.endswith("@odata.bind"):
            refs = body[key]
            if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
                raise bad_request(f"Invalid value specified for property '{key}'.")
            binds[key.split("@")[0]] = refs
    return binds


def id_from_reference(url):
    """The object id at the end of an @odata.id / @odata.bind URL such as .../directoryObjects/{id}."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    if tail.startswith("directoryObjects(") or "('" in tail:
        tail = tail.split("'")[1] if "'" in tail else tail
    return tail


def reference_body(call):
    """The object id named by a $ref body {"@odata.id": ".../directoryObjects/{id}"}."""
    reference = call.json_body().get("@odata.id")
    object_id = id_from_reference(reference) if isinstance(reference, str) else ""
    if not is_guid(object_id):
        raise invalid_object_identifier(object_id)
    return object_id


def invalid_object_identifier(value):
    """Observed: a malformed directory object reference is "Invalid object identifier '...'."."""
    return bad_request(f"Invalid object identifier '{value}'.")


def dumps(body):
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
