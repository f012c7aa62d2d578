"""POST /$batch. Learn: "Combine multiple HTTP requests using JSON batching":
- a body {"requests": [...]} of at most 20 items, each with id (unique, not case-sensitive), method, a URL
  relative to the service root, optional headers and body (a body needs a Content-Type header);
- the batch answers 200 with {"responses": [{"id", "status", "headers", "body"}]} whatever the items did, or
  400 when the batch itself is malformed;
- dependsOn sequences items; an item whose dependency failed gets 424 Failed Dependency;
- each item is evaluated against throttling on its own (a 429 appears as that item's response).
Items run through the same dispatcher as top-level requests. Extra properties on items are ignored.
"""
from urllib.parse import parse_qsl, urlsplit

from werkzeug.datastructures import Headers, MultiDict

from graph_core import Call, ok
from graph_errors import GraphError

MAX_REQUESTS = 20


def batch_error(message):
    return GraphError(400, "BadRequest", message)


def run_batch(svc, call):
    items = _validated_items(call)
    results = {}
    for item in _execution_order(items):
        results[item["id"].lower()] = _run_item(svc, call, item, results)
    responses = [_response(item, results[item["id"].lower()]) for item in items]
    return ok({"responses": responses})


def _validated_items(call):
    body = call.body
    if call.raw_body_invalid or not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise batch_error("Invalid batch payload format.")
    items = body["requests"]
    if len(items) > MAX_REQUESTS:
        # Observed wording (microsoftgraph-postman-collections #9).
        raise batch_error("Number of requests inside batch exceeds the limit.")
    seen = set()
    for item in items:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k)
                                                  for k in ("id", "method", "url")):
            raise batch_error("Invalid batch payload format.")
        if item["id"].lower() in seen:
            raise batch_error(f"Batch request contains duplicate request id '{item['id']}'.")
        seen.add(item["id"].lower())
        headers = item.get("headers") or {}
        if item.get("body") is not None and not any(k.lower() == "content-type" for k in headers):
            raise batch_error(f"Write request id : {item['id']} does not contain Content-Type header or body.")
    for item in items:
        for dependency in _depends_on(item):
            if dependency.lower() not in seen:
                raise batch_error(f"Request id '{item['id']}' depends on unknown request id '{dependency}'.")
    return items


def _depends_on(item):
    value = item.get("dependsOn") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _execution_order(items):
    """Dependencies first (a stable topological order); a cycle makes the batch malformed."""
    by_id = {item["id"].lower(): item for item in items}
    ordered, state = [], {}

    def visit(item):
        key = item["id"].lower()
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            raise batch_error("Invalid batch payload format.")
        state[key] = "visiting"
        for dependency in _depends_on(item):
            visit(by_id[dependency.lower()])
        state[key] = "done"
        ordered.append(item)

    for item in items:
        visit(item)
    return ordered


def _run_item(svc, call, item, results):
    failed = [d for d in _depends_on(item) if results[d.lower()][0] >= 400]
    if failed:
        error = GraphError(424, "FailedDependency", "The dependent request failed.")
        return error.status, {"Content-Type": "application/json"}, error.body(
            _now(), call.request_id, call.client_request_id)
    url = item["url"] if item["url"].startswith("/") else "/" + item["url"]
    parts = urlsplit(url)
    headers = Headers(list((item.get("headers") or {}).items()))
    gated = svc.item_gate(call.claims, item["method"].upper(), parts.path, parts.query) if svc.item_gate else None
    if gated is not None:
        return gated
    sub_call = Call(method=item["method"].upper(), path=parts.path,
                    args=MultiDict(parse_qsl(parts.query, keep_blank_values=True)), headers=headers,
                    body=item.get("body"), claims=call.claims, base=call.base, directory=call.directory,
                    client_request_id=headers.get("client-request-id") or call.client_request_id)
    return svc.execute(sub_call)


def _response(item, result):
    status, headers, body = result
    response = {"id": item["id"], "status": status, "headers": dict(headers or {})}
    if body is not None:
        response["body"] = body
    return response


def _now():
    from graph_core import graph_date
    return graph_date()
