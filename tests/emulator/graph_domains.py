"""/domains: the tenant's domains. Learn "domain resource type", "List domains", "Get domain"
(https://learn.microsoft.com/graph/api/domain-list). Domains are added through the admin API or a seed."""
from graph_core import ok
from graph_errors import bad_request, not_found
from graph_permissions import READ_DOMAINS, require


def list_domains(svc, call):
    require(call.claims, READ_DOMAINS)
    select = _select(call)
    values = [_render(domain, select) for domain in call.directory.domains.values()]
    return ok({"@odata.context": call.context("domains"), "value": values})


def get_domain(svc, call, name):
    require(call.claims, READ_DOMAINS)
    domain = call.directory.domains.get(str(name).lower())
    if domain is None:
        raise not_found(name)
    return ok({"@odata.context": call.context("domains/$entity"), **_render(domain, _select(call))})


def _select(call):
    raw = call.args.get("$select")
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    sample = next(iter(call.directory.domains.values()))
    unknown = [n for n in names if n not in sample]
    if unknown:
        raise bad_request("Parsing OData Select and Expand failed: Could not find a property named "
                          f"'{unknown[0]}' on type 'microsoft.graph.domain'.", code="BadRequest")
    return names


def _render(domain, select):
    return {name: domain[name] for name in (select or domain)}
