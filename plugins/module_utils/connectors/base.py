# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The small interface every connector implements, so the sync engine never knows which system it talks to.

A connector serves one connection (a record from the store) and exposes:

``object_types()``
    the names of the object types it can read and write (``user``, ``group``, ``row``...).
``schema(object_type)``
    ``{attribute name: AttributeSpec}``: what the engine may read and write, which attributes are multi-valued,
    references to other objects, read-only, or required when creating.
``read(object_type, attributes, scope_filter=None, delta=False)``
    a ``ReadResult``: ``objects`` ``{object id: {attribute: value}}`` holding (at least) ``attributes``; ``full``
    says whether this is the complete object set; ``notes`` are sentences for the run summary (e.g. "the delta link
    expired; read everything"); ``rejected`` lists input the connector could not read (a malformed CSV row), each
    ``{"object": where, "error": why, "attributes": what could be read}``; ``incomplete`` is None, or a sentence
    saying why the read may lack objects it could not identify (a rejected row without a readable key, a file
    broken from some line on): the engine then deprovisions no one, since a missing object may not have left.
``apply(object_type, changes)``
    performs a list of ``Change`` and returns one ``ChangeResult`` per change, in order. One failing object never
    stops the others; only a failure of the connection as a whole raises.
``flush()``
    makes everything applied so far durable (the CSV connector writes its file here; Graph writes are immediate).
``ownership_attribute(object_type)``
    the attribute that carries the name of the workflow managing an object (sync/ownership.py), or None when the
    system has none. The engine reads it with the objects, writes it on creates and on matched objects lacking it,
    and treats objects carrying the workflow's name as managed. A connector may withdraw it after a read (returning
    None from then on) when the system turns out not to have it.
``commit_delta()``
    persists the delta position reached by ``read(..., delta=True)``; the engine calls it only after a
    successful apply, so an interrupted run reads the same changes again.

Values are plain JSON types. A reference attribute holds the referenced object's id (the connector's own id: a
Graph object id, a CSV key), a multi-valued reference a list of ids.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


# Attribute value types the engine normalises and compares.
STRING = "string"
BOOLEAN = "boolean"
INTEGER = "integer"
DATETIME = "datetime"


class AttributeSpec(object):
    """What one attribute of an object type is."""

    __slots__ = ("name", "type", "multi_valued", "ordered", "reference", "read_only", "required_on_create",
                 "case_insensitive", "write_only", "separator", "comparison_key", "escape", "max_length",
                 "unique_in", "plain")

    def __init__(self, name, type=STRING, multi_valued=False, ordered=False, reference=None, read_only=False,
                 required_on_create=False, case_insensitive=False, write_only=False, separator=None,
                 comparison_key=None, escape=None, max_length=None, unique_in=None):
        self.name = name
        self.type = type
        self.multi_valued = multi_valued
        self.ordered = ordered              # multi-valued attributes compare as sets unless ordered
        self.reference = reference          # object type the value(s) refer to, or None
        self.read_only = read_only
        self.required_on_create = required_on_create
        self.case_insensitive = case_insensitive  # e.g. ids; values compare case-sensitively otherwise
        self.write_only = write_only        # never read back (passwordProfile)
        self.separator = separator          # a text attribute may take a list, joined with this (CSV cells)
        # text -> the key values compare by (a DN's canonical form); implies a case-insensitive comparison
        self.comparison_key = comparison_key
        # text -> text applied to each value a template interpolates for this attribute (RFC 4514 inside a DN)
        self.escape = escape
        self.max_length = max_length        # the system refuses longer values (sAMAccountName: 20)
        # values must be unique among these object types of the system, e.g. ("user", "group") for sAMAccountName
        self.unique_in = tuple(unique_in) if unique_in else None
        # single-valued text compared as it is: normalisation's fast path
        self.plain = type == STRING and not multi_valued and not case_insensitive and comparison_key is None

    def to_dict(self):
        return dict((k, getattr(self, k)) for k in self.__slots__
                    if k not in ("plain", "comparison_key", "escape"))

    def __repr__(self):
        return "AttributeSpec(%r)" % (self.to_dict(),)


def specs(items):
    """{name: AttributeSpec} from ``[(name,), (name, {spec keyword arguments}), ...]``: a schema table."""
    out = {}
    for item in items:
        name, kwargs = item[0], (item[1] if len(item) > 1 else {})
        out[name] = AttributeSpec(name, **kwargs)
    return out


class Uniqueness(object):
    """How the target keeps values of one attribute unique, for the engine's unique-value rule.

    ``read``: attributes of the target object type whose values occupy the value space (read with the objects);
    ``other_types``: {object type: [attributes]} of other object types that occupy it too (read once per run);
    ``keys_of(obj)``: the raw values an existing object occupies (default: its ``read`` attributes);
    ``case_insensitive``: compare as the directory does; ``max_length``: the attribute's limit; ``local_max``: for
    ``local@domain`` values, the limit of the local part (a counter or a cut goes there, before the ``@``).
    """
    __slots__ = ("read", "other_types", "keys_of", "case_insensitive", "max_length", "local_max")

    def __init__(self, read, other_types=None, keys_of=None, case_insensitive=False, max_length=None,
                 local_max=None):
        self.read = list(read)
        self.other_types = dict(other_types or {})
        self.keys_of = keys_of or self._values_of
        self.case_insensitive = case_insensitive
        self.max_length = max_length
        self.local_max = local_max

    def _values_of(self, obj):
        out = []
        for attribute in self.read:
            value = obj.get(attribute)
            out.extend(value if isinstance(value, (list, tuple)) else [value])
        return out

    def key(self, value):
        text = str(value).strip()
        return text.casefold() if self.case_insensitive else text


class ReadResult(object):
    """What ``Connector.read`` returns."""

    __slots__ = ("objects", "full", "notes", "rejected", "requests", "mode", "incomplete")

    def __init__(self, objects, full=True, notes=None, rejected=None, mode="full", incomplete=None):
        self.objects = objects
        self.full = full
        self.notes = list(notes or [])
        self.rejected = list(rejected or [])
        self.mode = mode                    # "full", "delta" or "delta (initial)"
        self.incomplete = incomplete        # None, or why objects missing from this read may still exist


class Change(object):
    """One write the engine asks a connector to make.

    ``op`` is ``create``, ``update`` or ``delete``. ``key`` identifies the change in results (the engine uses the
    source id for creates and the target id otherwise). ``id`` is the target object id (None for creates).
    ``attributes`` holds the values to write (for updates only the changed ones; a reference as the referenced id).
    ``member_changes`` maps a multi-valued reference attribute (``members``) to ``{"add": [...], "remove": [...]}``
    when only the difference is known. ``password`` asks the connector to generate an initial password (never
    returned); ``options`` carries connector-specific switches (``force_change_password``).
    """

    __slots__ = ("op", "key", "id", "attributes", "member_changes", "password", "options")

    def __init__(self, op, key, id=None, attributes=None, member_changes=None, password=False, options=None):
        self.op = op
        self.key = key
        self.id = id
        self.attributes = attributes or {}
        self.member_changes = member_changes or {}
        self.password = password
        self.options = options or {}

    def __repr__(self):
        return "Change(%s %s id=%s attrs=%s members=%s)" % (
            self.op, self.key, self.id, sorted(self.attributes), self.member_changes)


class ChangeResult(object):
    """The outcome of one Change: ``ok``; ``id`` (the new object's id after a create); ``error`` (one sentence);
    ``conflict`` (for a refused create, the attribute whose value another object already holds)."""

    __slots__ = ("key", "ok", "id", "error", "details", "conflict")

    def __init__(self, key, ok, id=None, error=None, details=None, conflict=None):
        self.key = key
        self.ok = ok
        self.id = id
        self.error = error
        self.details = details
        self.conflict = conflict            # a create refused because another object holds this attribute's value

    def __repr__(self):
        return "ChangeResult(%s ok=%s id=%s error=%s)" % (self.key, self.ok, self.id, self.error)


class Connector(object):
    """Base class. ``record`` is the connection record ({name, connector, settings}); ``context`` a dict the engine
    passes: ``store`` (the Store), ``workflow`` (name: scopes delta state), ``check_mode``, ``max_in_flight``,
    ``endpoint`` (the workflow's source/target options for this side: ``multi_valued`` columns...), ``log``
    (a callable taking one sentence)."""

    kind = None

    def __init__(self, record, context=None):
        self.record = record
        self.name = record.get("name")
        self.settings = dict(record.get("settings") or {})
        self.context = dict(context or {})

    # -- description ----------------------------------------------------------------------------------------
    def object_types(self):
        raise NotImplementedError

    def schema(self, object_type):
        raise NotImplementedError

    def check_object_type(self, object_type):
        from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
        if object_type not in self.object_types():
            raise ConfigError("Connection %s (%s) has no object type '%s'; it has: %s"
                              % (self.name, self.kind, object_type, ", ".join(self.object_types())))

    def operations(self, object_type):
        """What a workflow may do with objects of this type: ``read``, ``create``, ``update``, ``delete``."""
        return frozenset(("read", "create", "update", "delete"))

    def label_attributes(self, object_type):
        """Attributes that name an object for people (plans, errors), best first."""
        return []

    def id_for_create(self, object_type, attributes):
        """The id a created object will have, when the connector can tell before creating it (a CSV key), else None."""
        return None

    def create_defaults(self, object_type):
        """Attributes required on create that ``prepare_create`` fills itself when the workflow does not."""
        return ()

    def prepare_create(self, object_type, attributes):
        """Fill connector defaults into the attributes of an object to create (e.g. mailNickname from the UPN).
        Returns the (possibly) extended dict; pure."""
        return attributes

    def uniqueness(self, object_type, attribute):
        """A ``Uniqueness`` for a unique-value rule on ``attribute`` (default: exact values of that attribute)."""
        return Uniqueness([attribute])

    def check_values(self, object_type, attributes):
        """The target's own limits on values about to be written (lengths, characters, allowed domains):
        ``[(attribute, "is 70 characters long; ... allows at most 64")]``, empty when every value fits. It may read,
        once per run and only when a value needs it, what it checks against (a tenant's verified domains)."""
        return []

    def supports(self, feature):
        """Optional features: ``password`` (generate initial passwords), ``disable`` (deprovision by disabling),
        ``delta`` (incremental reads), ``members`` (group membership changes by difference)."""
        return False

    def disable_attributes(self, object_type):
        """The attribute values that disable an object (``{"accountEnabled": False}``)."""
        return None

    def ownership_attribute(self, object_type):
        """The attribute holding the name of the workflow that manages an object of this type, or None."""
        return None

    # -- reading and writing --------------------------------------------------------------------------------
    def read(self, object_type, attributes, scope_filter=None, delta=False):
        raise NotImplementedError

    def apply(self, object_type, changes):
        raise NotImplementedError

    def flush(self):
        return None

    def commit_delta(self):
        return None

    def stats(self):
        """Counters for the result (requests, writes, retries...)."""
        return {}

    def close(self):
        return None
