"""An in-memory stand-in for GraphClient (only what the azure_ad connector uses), for fast unit tests.

It keeps users, groups, managers and members, answers list/delta reads and $batch writes like Graph does
(201 with the new object, 204, 404 Request_ResourceNotFound, 400 "already exist" for members@odata.bind), counts
requests and writes, and can make new objects 404 for their first N writes (replication lag).
"""
import itertools
import uuid
from urllib.parse import parse_qs, urlsplit

from ansible_collections.idsync.entra.plugins.module_utils.errors import GraphError
from ansible_collections.idsync.entra.plugins.module_utils.graph import BatchResult

BASE = "https://graph.example/v1.0"


def _not_found(oid):
    return {"error": {"code": "Request_ResourceNotFound",
                      "message": "Resource '%s' does not exist or one of its queried reference-property objects are "
                                 "not present." % oid}}


class FakeGraph:
    base_url = BASE

    def __init__(self, page_size=999, delta_page_size=100):
        self.users = {}
        self.groups = {}
        self.manager = {}
        self.members = {}
        self.changes = []                 # (kind, id)
        self.epoch = 0
        self.page_size = page_size
        self.delta_page_size = delta_page_size
        self.stats = {"requests": 0, "writes": 0, "retries": 0, "throttled": 0, "batches": 0}
        self.lag = {}                     # id -> number of writes naming it that 404 first
        self.lag_new = 0                  # lag given to every created object
        self.log = []
        self.fail = {}                    # (method, url) -> status to answer once
        self.verified_domains = ["contoso.example"]

    # -- seeding -----------------------------------------------------------------------------------------------
    def add_user(self, **attrs):
        oid = attrs.pop("id", None) or str(uuid.uuid4())
        attrs.setdefault("accountEnabled", True)
        self.users[oid] = dict(attrs, id=oid)
        self.changes.append(("user", oid))
        return oid

    def add_group(self, **attrs):
        oid = attrs.pop("id", None) or str(uuid.uuid4())
        members = attrs.pop("members", [])
        self.groups[oid] = dict(attrs, id=oid)
        self.members[oid] = list(members)
        self.changes.append(("group", oid))
        return oid

    # -- reads -------------------------------------------------------------------------------------------------
    def _select(self, obj, select):
        if not select:
            return dict(obj)
        out = {"id": obj["id"]}
        for name in select:
            if name in ("manager", "members"):
                continue
            out[name] = obj.get(name)
        return out

    def list(self, path, params=None, headers=None):
        return list(self.iter_items(path, params, headers))

    def iter_items(self, path, params=None, headers=None):
        for page in self.iter_pages(path, params, headers):
            for item in page.get("value", []):
                yield item

    def iter_pages(self, path, params=None, headers=None):
        params = dict(params or {})
        if "://" in path:
            parts = urlsplit(path)
            query = dict((k, v[0]) for k, v in parse_qs(parts.query).items())
            path = parts.path[len("/v1.0"):]
            params.update(query)
        self.stats["requests"] += 1
        self.log.append(("GET", path, params))
        if path.endswith("/delta"):
            yield from self._delta(path, params)
            return
        if path == "/organization":
            yield {"value": [{"id": "org", "verifiedDomains": [{"name": d, "isVerified": True}
                                                               for d in self.verified_domains]}]}
            return
        kind = "user" if path == "/users" else "group"
        store = self.users if kind == "user" else self.groups
        select = [s for s in (params.get("$select") or "").split(",") if s]
        top = int(params.get("$top") or 100)
        items = []
        for obj in store.values():
            item = self._select(obj, select)
            if "manager" in (params.get("$expand") or "") and obj["id"] in self.manager:
                item["manager"] = {"@odata.type": "#microsoft.graph.user", "id": self.manager[obj["id"]]}
            items.append(item)
        chunks = [items[i:i + top] for i in range(0, len(items), top)] or [[]]
        for number, chunk in enumerate(chunks):
            if number:
                self.stats["requests"] += 1
            page = {"value": chunk}
            if number < len(chunks) - 1:
                page["@odata.nextLink"] = "next"
            yield page

    def _delta(self, path, params):
        kind = "user" if path.startswith("/users") else "group"
        token = params.get("$deltatoken")
        if token is not None:
            epoch, position, select = token.split(":", 2)
            if int(epoch) != self.epoch:
                raise GraphError(400, "syncStateNotFound", "The sync state generation is not found.")
            select = select.split(",") if select else []
            changed = []
            for change_kind, oid in self.changes[int(position):]:
                if change_kind == kind and oid not in changed:
                    changed.append(oid)
            items = [self._delta_item(kind, oid, select) for oid in changed]
        else:
            select = [s for s in (params.get("$select") or "").split(",") if s]
            store = self.users if kind == "user" else self.groups
            items = [self._delta_item(kind, oid, select) for oid in store]
        chunks = [items[i:i + self.delta_page_size] for i in range(0, len(items), self.delta_page_size)] or [[]]
        for number, chunk in enumerate(chunks):
            if number:
                self.stats["requests"] += 1
            page = {"value": chunk}
            if number < len(chunks) - 1:
                page["@odata.nextLink"] = "next"
            else:
                page["@odata.deltaLink"] = "%s/%ss/delta?$deltatoken=%d:%d:%s" % (
                    BASE, kind, self.epoch, len(self.changes), ",".join(select))
            yield page

    def _delta_item(self, kind, oid, select):
        store = self.users if kind == "user" else self.groups
        obj = store.get(oid)
        if obj is None:
            return {"id": oid, "@removed": {"reason": "deleted"}}
        item = self._select(obj, select)
        if kind == "group" and "members" in select:
            item["members@delta"] = [{"@odata.type": "#microsoft.graph.user", "id": m} for m in self.members[oid]]
        if kind == "user" and "manager" in select and oid in self.manager:
            item["manager@delta"] = [{"@odata.type": "#microsoft.graph.user", "id": self.manager[oid]}]
        return item

    # -- writes ------------------------------------------------------------------------------------------------
    def batch(self, requests, max_in_flight=1, hand_back=False):
        results = []
        for start in range(0, len(requests), 20):
            self.stats["requests"] += 1
            self.stats["batches"] += 1
            for request in requests[start:start + 20]:
                self.stats["writes"] += 1
                self.log.append((request["method"], request["url"], request.get("body")))
                status, body = self._write(request)
                results.append(BatchResult(status, {}, body, method=request["method"], url=request["url"]))
        return results

    def _lagging(self, *ids):
        for oid in ids:
            if self.lag.get(oid):
                self.lag[oid] -= 1
                return oid
        return None

    def _write(self, request):
        method, url, body = request["method"], request["url"], request.get("body") or {}
        forced = self.fail.pop((method, url), None)
        if forced:
            return forced, {"error": {"code": "Forced", "message": "forced failure"}}
        parts = [p for p in url.split("/") if p]
        collection = parts[0]
        store = self.users if collection == "users" else self.groups
        kind = "user" if collection == "users" else "group"
        if method == "POST" and len(parts) == 1:
            if kind == "user" and any(u.get("userPrincipalName", "").lower() == body.get("userPrincipalName", "").lower()
                                      for u in self.users.values()):
                return 400, {"error": {"code": "Request_BadRequest", "message": "Another object with the same value "
                                       "for property userPrincipalName already exists."}}
            oid = str(uuid.uuid4())
            obj = dict(body, id=oid)
            obj.pop("passwordProfile", None)
            store[oid] = obj
            if kind == "group":
                self.members[oid] = []
            self.changes.append((kind, oid))
            if self.lag_new:
                self.lag[oid] = self.lag_new
            return 201, dict(obj)
        oid = parts[1]
        lagging = self._lagging(oid)
        if lagging or oid not in store:
            return 404, _not_found(oid)
        if len(parts) == 2:
            if method == "PATCH":
                binds = body.get("members@odata.bind")
                if binds is not None:
                    ids = [b.rsplit("/", 1)[-1] for b in binds]
                    lag = self._lagging(*ids)
                    if lag or any(i not in self.users and i not in self.groups for i in ids):
                        return 404, _not_found(lag or ids[0])
                    if any(i in self.members[oid] for i in ids):
                        return 400, {"error": {"code": "Request_BadRequest", "message": "One or more added object "
                                               "references already exist for the following modified properties: "
                                               "'members'."}}
                    self.members[oid].extend(ids)
                    self.changes.append((kind, oid))
                    return 204, None
                store[oid].update(body)
                self.changes.append((kind, oid))
                return 204, None
            if method == "DELETE":
                del store[oid]
                self.manager.pop(oid, None)
                for members in self.members.values():
                    if oid in members:
                        members.remove(oid)
                self.changes.append((kind, oid))
                return 204, None
        if parts[2] == "manager":
            if method == "PUT":
                mid = body["@odata.id"].rsplit("/", 1)[-1]
                if self._lagging(mid) or mid not in self.users:
                    return 404, _not_found(mid)
                self.manager[oid] = mid
            else:
                if oid not in self.manager:
                    return 404, _not_found("manager")
                del self.manager[oid]
            self.changes.append(("user", oid))
            return 204, None
        if parts[2] == "members":
            if method == "POST":
                mid = body["@odata.id"].rsplit("/", 1)[-1]
                if mid in self.members[oid]:
                    return 400, {"error": {"code": "Request_BadRequest", "message": "One or more added object "
                                           "references already exist for the following modified properties: 'members'."}}
                self.members[oid].append(mid)
            else:
                mid = parts[3]
                if mid not in self.members[oid]:
                    return 404, _not_found(mid)
                self.members[oid].remove(mid)
            self.changes.append(("group", oid))
            return 204, None
        return 400, {"error": {"code": "BadRequest", "message": "unsupported %s %s" % (method, url)}}

    def writes(self):
        return [entry for entry in self.log if entry[0] != "GET"]


_ids = itertools.count(1)
