"""/applications/{id}/extensionProperties: directory extension definitions (Learn: "extensionProperty resource type",
"Create extensionProperty", "List extensionProperties", "Delete extensionProperty").

- POST with ``name``, ``dataType`` and ``targetObjects`` defines ``extension_{appId without dashes}_{name}``; users
  and groups then take that property in request bodies, ``$select`` and ``$filter``, like a declared property, and
  return it only when selected (Learn: "Add custom data to resources using extensions").
- Creating one needs Application.ReadWrite.OwnedBy (on an owned app) or Application.ReadWrite.All; listing needs
  Application.Read.All; ``$filter`` supports ``eq`` on ``name``.
- Deleting the definition (or its application) makes the values unreachable.
The wording of the duplicate-name error is not documented; the emulator's is marked so.
"""
import re
import uuid

from graph_core import created, no_content, ok
from graph_errors import bad_request, not_found
from graph_permissions import READ_APPS, require
from graph_schema import bind_directory

DATA_TYPES = {"String": "str", "Boolean": "bool", "Integer": "str", "LargeInteger": "str", "DateTime": "str",
              "Binary": "str"}
TARGET_OBJECTS = ("User", "Group", "AdministrativeUnit", "Application", "Device", "Organization")
NAME = re.compile(r"^[A-Za-z0-9_]{1,120}$")


def rebuild_index(directory):
    """directory.extension_index from the live applications' definitions (O(applications), on change only)."""
    index = {}
    for app in directory.objects["application"].values():
        for definition in app.get("_extensionProperties") or []:
            kind = DATA_TYPES.get(definition["dataType"], "str")
            index[definition["name"].lower()] = (definition["name"], kind, set(definition["targetObjects"]))
    directory.extension_index = index
    bind_directory(directory)


def _render(definition, select=None):
    out = {k: v for k, v in definition.items() if not k.startswith("_")}
    return {k: v for k, v in out.items() if not select or k in select or k == "id"}


def list_extension_properties(svc, call, ref):
    from graph_apps import resolve_application
    require(call.claims, READ_APPS)
    app = resolve_application(call, ref)
    items = list(app.get("_extensionProperties") or [])
    wanted = _name_filter(call.args.get("$filter"))
    if wanted is not None:
        items = [d for d in items if d["name"].lower() == wanted.lower()]
    select = [s.strip() for s in (call.args.get("$select") or "").split(",") if s.strip()] or None
    return ok({"@odata.context": call.context("applications('%s')/extensionProperties" % app["id"]),
               "value": [_render(d, select) for d in items]})


def _name_filter(raw):
    if not raw:
        return None
    match = re.fullmatch(r"\s*name\s+eq\s+'((?:[^']|'')*)'\s*", raw)
    if not match:
        raise bad_request("Unsupported or invalid query filter clause specified for property 'name' of resource "
                          "'ExtensionProperty'.")
    return match.group(1).replace("''", "'")


def create_extension_property(svc, call, ref):
    from graph_apps import require_app_write, resolve_application
    app = resolve_application(call, ref)
    require_app_write(call, app)
    body = call.json_body()
    name, data_type, targets = body.get("name"), body.get("dataType"), body.get("targetObjects")
    if not isinstance(name, str) or not NAME.match(name):
        raise bad_request("Invalid value specified for property 'name' of resource 'ExtensionProperty'.")
    if data_type not in DATA_TYPES:
        raise bad_request("Invalid value specified for property 'dataType' of resource 'ExtensionProperty'.")
    if not isinstance(targets, list) or not targets or any(t not in TARGET_OBJECTS for t in targets):
        raise bad_request("Invalid value specified for property 'targetObjects' of resource 'ExtensionProperty'.")
    full_name = "extension_%s_%s" % (app["appId"].replace("-", ""), name)
    definitions = app.setdefault("_extensionProperties", [])
    if any(d["name"].lower() == full_name.lower() for d in definitions):
        # Wording not documented by Microsoft (the emulator's own).
        raise bad_request("An extension property with the name '%s' already exists." % full_name)
    definition = {"id": str(uuid.uuid4()), "deletedDateTime": None, "appDisplayName": app.get("displayName"),
                  "dataType": data_type, "isMultiValued": bool(body.get("isMultiValued")),
                  "isSyncedFromOnPremises": False, "name": full_name, "targetObjects": list(targets)}
    definitions.append(definition)
    rebuild_index(call.directory)
    return created({"@odata.context": call.context("applications('%s')/extensionProperties/$entity" % app["id"]),
                    **_render(definition)})


def get_extension_property(svc, call, ref, extension_id):
    from graph_apps import resolve_application
    require(call.claims, READ_APPS)
    app = resolve_application(call, ref)
    for definition in app.get("_extensionProperties") or []:
        if definition["id"] == extension_id:
            return ok(_render(definition))
    raise not_found(extension_id)


def delete_extension_property(svc, call, ref, extension_id):
    from graph_apps import require_app_write, resolve_application
    app = resolve_application(call, ref)
    require_app_write(call, app)
    definitions = app.get("_extensionProperties") or []
    kept = [d for d in definitions if d["id"] != extension_id]
    if len(kept) == len(definitions):
        raise not_found(extension_id)
    app["_extensionProperties"] = kept
    rebuild_index(call.directory)
    return no_content()
