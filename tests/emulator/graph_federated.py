"""/applications/{id}/federatedIdentityCredentials (Learn: "federatedIdentityCredential resource type", "Create
federatedIdentityCredential"): ``name`` (unique on the application), ``issuer``, ``subject`` and ``audiences``
(one value, usually ``api://AzureADTokenExchange``) are required; at most 20 per application; the pair issuer +
subject may appear once. The identity platform checks assertions against them (identity_workload.py).
Error wording for the limit and the duplicates is not documented: the emulator's own, marked so."""
import uuid

from graph_core import created, no_content, ok
from graph_errors import bad_request, not_found
from graph_permissions import READ_APPS, require

MAX_PER_APPLICATION = 20


def _credentials(app):
    return app.setdefault("_federatedIdentityCredentials", [])


def _render(credential):
    return {k: v for k, v in credential.items() if not k.startswith("_")}


def _find(app, ref):
    for credential in _credentials(app):
        if ref in (credential["id"], credential["name"]):
            return credential
    raise not_found(ref)


def _validate(body, partial=False):
    values = {}
    for key in ("name", "issuer", "subject", "description"):
        if key in body:
            if body[key] is not None and not isinstance(body[key], str):
                raise bad_request(f"Invalid value specified for property '{key}' of resource "
                                  "'FederatedIdentityCredential'.")
            values[key] = body[key]
    if "audiences" in body:
        audiences = body["audiences"]
        if not isinstance(audiences, list) or len(audiences) != 1 or not isinstance(audiences[0], str):
            raise bad_request("Invalid value specified for property 'audiences' of resource "
                              "'FederatedIdentityCredential'.")
        values["audiences"] = audiences
    if not partial:
        for key in ("name", "issuer", "subject", "audiences"):
            if not values.get(key):
                raise bad_request(f"Invalid value specified for property '{key}' of resource "
                                  "'FederatedIdentityCredential'.")
    return values


def list_credentials(svc, call, ref):
    from graph_apps import resolve_application
    require(call.claims, READ_APPS)
    app = resolve_application(call, ref)
    return ok({"@odata.context": call.context("applications('%s')/federatedIdentityCredentials" % app["id"]),
               "value": [_render(c) for c in _credentials(app)]})


def get_credential(svc, call, ref, credential_id):
    from graph_apps import resolve_application
    require(call.claims, READ_APPS)
    return ok(_render(_find(resolve_application(call, ref), credential_id)))


def create_credential(svc, call, ref):
    from graph_apps import require_app_write, resolve_application
    app = resolve_application(call, ref)
    require_app_write(call, app)
    values = _validate(call.json_body())
    credentials = _credentials(app)
    if len(credentials) >= MAX_PER_APPLICATION:
        raise bad_request("The application already has the maximum of 20 federated identity credentials.")
    for existing in credentials:
        if existing["name"] == values["name"]:
            raise bad_request(f"A federated identity credential named '{values['name']}' already exists.")
        if (existing["issuer"], existing["subject"]) == (values["issuer"], values["subject"]):
            raise bad_request("A federated identity credential with the same issuer and subject already exists.")
    credential = {"id": str(uuid.uuid4()), "description": None, **values}
    credentials.append(credential)
    return created({"@odata.context": call.context("applications('%s')/federatedIdentityCredentials/$entity"
                                                   % app["id"]), **_render(credential)})


def update_credential(svc, call, ref, credential_id):
    from graph_apps import require_app_write, resolve_application
    app = resolve_application(call, ref)
    require_app_write(call, app)
    credential = _find(app, credential_id)
    values = _validate(call.json_body(), partial=True)
    values.pop("name", None)      # Learn: the name cannot be changed after creation
    credential.update(values)
    return no_content()


def delete_credential(svc, call, ref, credential_id):
    from graph_apps import require_app_write, resolve_application
    app = resolve_application(call, ref)
    require_app_write(call, app)
    credential = _find(app, credential_id)
    app["_federatedIdentityCredentials"] = [c for c in _credentials(app) if c is not credential]
    return no_content()
