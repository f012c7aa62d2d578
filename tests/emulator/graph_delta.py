"""users/delta and groups/delta.

Learn: "Use delta query to track changes in Microsoft Graph data", "Get incremental changes for users" and
"Get incremental changes for groups":
- the first round enumerates current objects over pages linked by @odata.nextLink ($skiptoken); its last page has
  an @odata.deltaLink ($deltatoken); a later call with that link returns what changed since, the same way;
- $select given on the first call is carried in the tokens; with $select only changes to selected properties
  make an object reappear; `members` (groups) and `manager` (users) can be selected too;
- soft-deleted objects come back as {"id", "@removed": {"reason": "changed"}}, permanently deleted ones with
  reason "deleted"; groups carry `members@delta` (added members, and removed ones with @removed);
- `$deltatoken=latest` returns no data, just a deltaLink from now;
- Learn "user: delta": with `Prefer: return=minimal` a changed object carries only the properties that changed;
  $filter may only name object ids (at most 50);
- tokens expire: Learn (devblog "Duration of change tracking tokens for identity and education resources",
  2020-07-03): "you will receive a BadRequest response with the error code syncStateNotFound and the following
  error message: The sync state generation is not found. The delta token is expired and data must be synchronized
  again."

The directory keeps an append-only change log; a token stores positions in it, so a delta call costs
O(changes since the token), not O(tenant). Delta reads the primary copy: objects inside the replication window
are included (Learn notes delays may happen, but skipping them here would lose them for good).
"""
import time

import odata
from graph_core import ok, render
from graph_errors import GraphError, unsupported_query
from graph_permissions import READ_GROUPS, READ_USERS, require
from graph_schema import GROUP, USER

PAGE_SIZE = 100
DELTA = {"user": (USER, READ_USERS, "manager"), "group": (GROUP, READ_GROUPS, "members")}


def users_delta(svc, call):
    return delta(call, "user")


def groups_delta(svc, call):
    return delta(call, "group")


def sync_state_not_found():
    return GraphError(400, "syncStateNotFound", "The sync state generation is not found. The delta token is expired "
                                                "and data must be synchronized again.")


def delta(call, kind):
    schema, access, navigation = DELTA[kind]
    require(call.claims, access)
    token = _incoming_token(call, kind)
    if token is None:
        token = _first_call(call, kind, schema, navigation)
        if call.args.get("$deltatoken", "").lower() == "latest":
            return _respond(call, schema, token, [], finished=True)
    if token["ph"] == "init":
        items, finished, token = _initial_page(call.directory, kind, schema, token)
    else:
        items, finished, token = _changes_page(call.directory, kind, schema, token, _minimal(call))
    return _respond(call, schema, token, items, finished)


# ---------------------------------------------------------------------- tokens
def _first_call(call, kind, schema, navigation):
    select = odata.parse_select(call.args.get("$select"), schema, extra=(navigation,))
    expand = (call.args.get("$expand") or "").strip().lower()
    # Groups carry members@delta unless a $select leaves members out; users carry manager@delta only on request.
    wants_navigation = (navigation in (select or ()) or expand == navigation or
                        (kind == "group" and select is None))
    return {"t": kind, "e": call.directory.delta_epoch, "i": time.time(), "s": select, "n": wants_navigation,
            "ids": _filtered_ids(call, schema), "ph": "init", "p": -1, "f": call.directory.change_seq()}


def _minimal(call):
    prefer = call.headers.get("Prefer") or ""
    return any(part.strip().lower() == "return=minimal" for part in prefer.split(","))


MAX_FILTERED_IDS = 50


def _filtered_ids(call, schema):
    """Learn: delta supports scoping filters by object id only, e.g. $filter=id eq '...' or id eq '...'."""
    raw = call.args.get("$filter")
    if raw is None:
        return None
    parsed = odata.parse_filter(raw, schema, lambda r, p: r.get(p), advanced=True)
    if parsed.properties != {"id"} or parsed.lookup is None or len(parsed.lookup[1]) > MAX_FILTERED_IDS:
        raise unsupported_query()
    return [str(v) for v in parsed.lookup[1]]


def _incoming_token(call, kind):
    """The state token of a nextLink ($skiptoken) or deltaLink ($deltatoken). Expiry (admin API) voids both;
    the configured lifetime applies to deltaLinks, counted from when they were issued."""
    delta_token = call.args.get("$deltatoken")
    raw = call.args.get("$skiptoken") or delta_token
    if raw is None or raw.lower() == "latest":
        return None
    token = odata.decode_token(raw)
    if not isinstance(token, dict) or token.get("t") != kind:
        raise sync_state_not_found()
    directory = call.directory
    ttl = directory.settings.get("delta_token_ttl_s")
    too_old = ttl is not None and raw == delta_token and time.time() - token["i"] > ttl
    if token.get("e") != directory.delta_epoch or too_old:
        raise sync_state_not_found()
    return token


def _respond(call, schema, token, items, finished):
    body = {"@odata.context": call.context(schema.collection + (f"({','.join(token['s'])})" if token["s"] else ""))}
    path = f"/{schema.collection}/delta"
    if finished:
        next_round = {**token, "ph": "chg", "i": time.time(), "o": 0}
        next_round.pop("p", None)
        body["@odata.deltaLink"] = call.link(path, [("$deltatoken", odata.encode_token(next_round))])
    else:
        body["@odata.nextLink"] = call.link(path, [("$skiptoken", odata.encode_token(token))])
    body["value"] = items
    return ok(body)


# ---------------------------------------------------------------------- first round: current state
def _initial_page(directory, kind, schema, token):
    if token["ids"] is not None:
        records = [directory.get(kind, i) for i in token["ids"]]
        source = iter([r for r in records if r is not None and r["_seq"] > token["p"]])
    else:
        source = directory.iter_kind(kind, token["p"])
    items, last_seq = [], token["p"]
    for record in source:
        if len(items) == PAGE_SIZE:
            return items, False, {**token, "p": last_seq}
        items.append(_representation(directory, kind, schema, record, token, all_members=True))
        last_seq = record["_seq"]
    return items, True, token


# ---------------------------------------------------------------------- later rounds: what changed
def _changes_page(directory, kind, schema, token, minimal):
    until = token.get("u", directory.change_seq())
    changed = _collate(directory.changes[token["f"]:until], kind, token["ids"])
    offset = token.get("o", 0)
    ordered = list(changed.items())
    items = []
    for object_id, summary in ordered[offset:offset + PAGE_SIZE]:
        item = _changed_item(directory, kind, schema, object_id, summary, token, minimal)
        if item is not None:
            items.append(item)
    if offset + PAGE_SIZE < len(ordered):
        return items, False, {**token, "u": until, "o": offset + PAGE_SIZE}
    finished = {**token, "f": until, "o": 0}
    finished.pop("u", None)
    return items, True, finished


def _collate(changes, kind, scoped_ids):
    """Per object, in first-change order: which properties changed, whether it was created, and the net
    membership changes."""
    summaries = {}
    for change_kind, object_id, detail in changes:
        if change_kind != kind or (scoped_ids is not None and object_id not in scoped_ids):
            continue
        summary = summaries.setdefault(object_id, {"created": False, "props": set(), "members": {},
                                                   "manager": False})
        if detail in ("created", "restored"):
            summary["created"] = True
        elif detail in ("softDeleted", "hardDeleted"):
            pass
        elif detail and detail[0] in ("member+", "member-"):
            summary["members"][detail[1]] = (detail[0] == "member+", detail[2])
        elif detail and detail[0] == "manager":
            summary["manager"] = True
        else:
            summary["props"].update(detail)
    return summaries


def _changed_item(directory, kind, schema, object_id, summary, token, minimal):
    record = directory.get(kind, object_id)
    if record is None:
        reason = "changed" if object_id in directory.deleted else "deleted"
        return {"id": object_id, "@removed": {"reason": reason}}
    tracked = set(token["s"] or schema.properties)
    navigation_changed = (summary["members"] or summary["manager"]) and token["n"]
    if not (summary["created"] or summary["props"] & tracked or navigation_changed):
        return None
    if summary["created"]:
        return _representation(directory, kind, schema, record, token, all_members=True)
    item = _representation(directory, kind, schema, record, token, all_members=False)
    if minimal:
        item = {k: v for k, v in item.items() if k == "id" or k in summary["props"] or k.endswith("@delta")}
    if kind == "group" and token["n"] and summary["members"]:
        item["members@delta"] = [_member_entry(member_id, member_kind, added)
                                 for member_id, (added, member_kind) in summary["members"].items()]
    return item


def _representation(directory, kind, schema, record, token, all_members):
    select = [s for s in token["s"] if s in schema.properties] if token["s"] else None
    item = render(schema, record, select or (["id"] if token["s"] else None))
    item.setdefault("id", record["id"])
    if token["n"] and kind == "group" and all_members:
        members = directory.members.get(record["id"], {})
        if members:
            item["members@delta"] = [_member_entry(m, directory.kind_of_any(m), True) for m in members]
    if token["n"] and kind == "user":
        manager_id = directory.manager_of.get(record["id"])
        if manager_id:
            item["manager@delta"] = [{"@odata.type": "#microsoft.graph.user", "id": manager_id}]
    return item


def _member_entry(member_id, member_kind, added):
    entry = {"@odata.type": f"#microsoft.graph.{member_kind}", "id": member_id}
    if not added:
        entry["@removed"] = {"reason": "deleted"}
    return entry
