# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Workflow configuration: the module options turned into a validated ``Workflow``.

Two stages, both before anything is written anywhere:

1. ``Workflow.from_params(params)``: shape checks and rule compilation (bad expressions fail here, naming the rule);
2. ``validate_workflow(workflow, ...)``: every attribute a rule reads exists in the source schema (the CSV header,
   the known Entra attributes), every attribute it writes exists in the target schema and is writable, references
   go to reference attributes, required attributes of a create are covered.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import re

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError
from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import (
    ConstantRule, DirectRule, ExpressionRule, ReferenceRule, UniqueRule, parse_rule,
)
from ansible_collections.idsync.entra.plugins.module_utils.sync.safety import DEFAULT_SHRINK_GUARD, Threshold

DEFAULT_DELETION_THRESHOLD = 500     # Microsoft Entra Connect's "prevent accidental deletes" default
DEFAULT_DELETION_PERCENT = 10        # ... and never more than a tenth of what the workflow manages
DEPROVISION_ACTIONS = ("none", "disable", "delete")
DEPROVISION_SCOPES = ("managed", "match_key")
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


# A file source is given inline most often; systems with credentials are saved connections.
INLINE_CONNECTORS = ("csv",)


class Endpoint(object):
    """One side of a workflow. ``connection`` names a saved connection; or ``inline`` holds {connector, settings...}
    given in the task itself, so check mode plans from exactly the data the real run reads."""
    __slots__ = ("connection", "object_type", "scope", "filter", "multi_valued", "inline")

    def __init__(self, connection, object_type, scope=None, filter=None, multi_valued=None, inline=None):
        self.connection = connection
        self.object_type = object_type
        self.scope = scope
        self.filter = filter
        self.multi_valued = list(multi_valued or [])
        self.inline = inline


class MatchPair(object):
    __slots__ = ("source", "target", "case_sensitive")

    def __init__(self, source, target, case_sensitive=False):
        self.source = source
        self.target = target
        self.case_sensitive = case_sensitive


class Membership(object):
    """Groups derived from each source object: ``group`` is a rule giving the group name(s) of the object."""
    __slots__ = ("name", "group", "object_type", "match_attribute", "create_missing", "remove", "group_type",
                 "description")

    def __init__(self, name, group, object_type="group", match_attribute="displayName", create_missing=False,
                 remove=True, group_type="security", description=None):
        self.name = name
        self.group = group
        self.object_type = object_type
        self.match_attribute = match_attribute
        self.create_missing = create_missing
        self.remove = remove
        self.group_type = group_type
        self.description = description


class Workflow(object):
    def __init__(self):
        self.name = None
        self.source = None
        self.target = None
        self.match = []
        self.create = None            # {attribute: Rule} or None (no creation step)
        self.password = False
        self.force_change_password = True
        self.update = None            # {attribute: Rule} or None
        self.deprovision_action = "none"
        self.deprovision_set = {}     # {attribute: Rule} (constants / expressions over the target object)
        self.deprovision_scope = "managed"
        self.memberships = []
        self.create_order = []        # attribute names in evaluation order (target.X read after X is computed)
        self.update_order = []
        self.members_attribute = "members"   # the group type's member list (set by validate_workflow)
        self.delta = False
        self.threshold = Threshold(DEFAULT_DELETION_THRESHOLD, DEFAULT_DELETION_PERCENT)
        self.shrink_guard = DEFAULT_SHRINK_GUARD
        self.force_deletes = False
        self.previous_names = []      # names this workflow had: target objects marked with them are its own

    # -- helpers -------------------------------------------------------------------------------------------------
    def create_rules(self):
        """The rules that populate a new object: create's, with update's on top (no second run to converge)."""
        if self.create is None:
            return {}
        rules = dict(self.create)
        rules.update(self.update or {})
        return rules

    def rules(self):
        """Every (rule, target attribute) pair that reads the source."""
        out = []
        for attrs in (self.create or {}, self.update or {}):
            for attribute, rule in attrs.items():
                out.append((rule, attribute))
        return out

    def source_attributes(self):
        """Source attributes the workflow reads (for $select / validation)."""
        names = set()
        for rule, _attribute in self.rules():
            names |= rule.source_attributes()
        for pair in self.match:
            names |= pair.source.source_attributes()
        if self.source.scope is not None:
            names |= self.source.scope.source_attributes()
        for membership in self.memberships:
            names |= membership.group.source_attributes()
        for rule in self.reference_rules():
            if rule.by:
                names.add(rule.by)
        return names

    def target_attributes(self):
        """Target attributes the workflow compares or writes."""
        names = set()
        for attrs in (self.create or {}, self.update or {}):
            names |= set(attrs)
        for pair in self.match:
            names.add(pair.target)
        names |= set(self.deprovision_set)
        return names

    def reference_rules(self):
        out = []
        for attrs in (self.create or {}, self.update or {}):
            for rule in attrs.values():
                if isinstance(rule, ReferenceRule):
                    out.append(rule)
        return out

    # -- parsing -------------------------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params):
        wf = cls()
        wf.name = _required_text(params, "name")
        previous = params.get("previous_names") or []
        if not isinstance(previous, list) or not all(isinstance(n, str) and n.strip() for n in previous):
            raise ConfigError("previous_names: give the names this workflow had before, as a list of text",
                              option="previous_names")
        wf.previous_names = [n.strip() for n in previous if n.strip() != wf.name]
        wf.source = _endpoint(params.get("source"), "source", scope_allowed=True)
        wf.target = _endpoint(params.get("target"), "target", scope_allowed=False)

        match = params.get("match") or []
        if not isinstance(match, list) or not match:
            raise ConfigError("match: give at least one {source: <source attribute>, target: <target attribute>} pair",
                              option="match")
        for index, pair in enumerate(match):
            where = "match[%d]" % index
            if not isinstance(pair, dict) or not pair.get("source") or not pair.get("target"):
                raise ConfigError("%s: each pair needs source and target" % where, option=where)
            rule = parse_rule(where + ".source", pair["source"])
            if not isinstance(rule, (DirectRule, ExpressionRule)):
                raise ConfigError("%s.source: match on a source attribute or an expression" % where, option=where)
            wf.match.append(MatchPair(rule, pair["target"], bool(pair.get("case_sensitive", False))))

        steps = params.get("steps") or {}
        if not isinstance(steps, dict):
            raise ConfigError("steps must be a dictionary with create, update and/or deprovision", option="steps")
        unknown = set(steps) - set(["create", "update", "deprovision"])
        if unknown:
            raise ConfigError("steps: unknown step(s) %s; the steps are create, update and deprovision"
                              % ", ".join(sorted(unknown)), option="steps")
        create = steps.get("create")
        if create is not None:
            wf.create = _attributes(create.get("attributes"), "steps.create.attributes")
            password = create.get("password")
            if password not in (None, "generate", "none"):
                raise ConfigError("steps.create.password: use 'generate' (a random password that meets Entra's "
                                  "complexity rules, never returned or logged) or leave it out",
                                  option="steps.create.password")
            wf.password = password == "generate"
            if create.get("force_change_password") is not None:
                wf.force_change_password = bool(create.get("force_change_password"))
        update = steps.get("update")
        if update is not None:
            wf.update = _attributes(update.get("attributes"), "steps.update.attributes")
            unique = sorted(a for a, r in wf.update.items() if isinstance(r, UniqueRule))
            if unique:
                raise ConfigError("steps.update.attributes.%s: unique values are chosen once, at creation; move the "
                                  "rule to steps.create" % unique[0], option="steps.update.attributes")
        if wf.create is not None:
            both = sorted(a for a, r in wf.create.items() if isinstance(r, UniqueRule) and a in (wf.update or {}))
            if both:
                raise ConfigError("steps.create.attributes.%s is a unique value, chosen once; it cannot also be "
                                  "kept up to date by steps.update (that would rename the object)" % both[0],
                                  option="steps.create.attributes")
        wf.create_order = evaluation_order(wf.create_rules(), "steps.create/update")
        wf.update_order = evaluation_order(wf.update or {}, "steps.update")
        deprovision = steps.get("deprovision")
        if deprovision is not None:
            action = deprovision.get("action") or ("none" if not deprovision.get("set") else "none")
            if action not in DEPROVISION_ACTIONS:
                raise ConfigError("steps.deprovision.action: '%s' is not one of %s (use set: {...} to change "
                                  "attributes)" % (action, ", ".join(DEPROVISION_ACTIONS)),
                                  option="steps.deprovision.action")
            wf.deprovision_action = action
            wf.deprovision_set = dict(
                (name, parse_rule("steps.deprovision.set.%s" % name, spec, constants_only=True))
                for name, spec in (deprovision.get("set") or {}).items())
            if action == "delete" and wf.deprovision_set:
                raise ConfigError("steps.deprovision: set has no effect with action: delete",
                                  option="steps.deprovision")
            scope = deprovision.get("scope") or "managed"
            if scope not in DEPROVISION_SCOPES:
                raise ConfigError("steps.deprovision.scope: '%s' is not one of %s"
                                  % (scope, ", ".join(DEPROVISION_SCOPES)), option="steps.deprovision.scope")
            wf.deprovision_scope = scope
        if wf.create is None and wf.update is None and wf.deprovision_action == "none" and not wf.deprovision_set \
                and not params.get("memberships"):
            raise ConfigError("steps: the workflow does nothing; give create, update, deprovision or memberships",
                              option="steps")

        for index, spec in enumerate(params.get("memberships") or []):
            where = "memberships[%d]" % index
            if not isinstance(spec, dict) or spec.get("group") in (None, ""):
                raise ConfigError("%s: give group, a source attribute or expression naming the group(s) of each "
                                  "object (e.g. \"<< Department >> staff\")" % where, option=where)
            rule = parse_rule(where + ".group", spec["group"])
            if not isinstance(rule, (DirectRule, ExpressionRule)):
                raise ConfigError("%s.group: name the group(s) with a source attribute or an expression" % where,
                                  option=where)
            group_type = spec.get("group_type") or "security"
            if group_type not in ("security", "microsoft365"):
                raise ConfigError("%s.group_type: use security or microsoft365" % where, option=where)
            wf.memberships.append(Membership(
                where, rule,
                object_type=spec.get("object_type") or "group",
                match_attribute=spec.get("match_attribute") or "displayName",
                create_missing=bool(spec.get("create_missing", False)),
                remove=bool(spec.get("remove", True)),
                group_type=group_type,
                description=spec.get("description"),
            ))

        wf.delta = bool(params.get("delta", False))
        wf.threshold = parse_threshold(params.get("deletion_threshold"))
        guard = params.get("source_shrink_guard")
        if guard is not None:
            if isinstance(guard, bool) or not isinstance(guard, int) or not 0 <= guard <= 100:
                raise ConfigError("source_shrink_guard: give a percentage from 0 (off) to 100",
                                  option="source_shrink_guard")
            wf.shrink_guard = guard
        wf.force_deletes = bool(params.get("force_deletes", False))
        return wf


def evaluation_order(rules, where):
    """Attribute names of one step in an order where each rule's ``target.X`` inputs come first. A rule reading an
    attribute the step does not compute, or a cycle, is a configuration error naming the rules."""
    order = []
    state = {}                        # name -> "visiting" | "done"

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise ConfigError("%s: the rules read each other in a cycle: %s" % (where, " -> ".join(
                rules[n].name for n in cycle)), option=rules[name].name)
        state[name] = "visiting"
        rule = rules[name]
        for needed in sorted(rule.target_attributes()):
            if needed not in rules:
                raise ConfigError("Rule %s reads target.%s, which %s does not compute" % (rule.name, needed, where),
                                  option=rule.name)
            if isinstance(rules[needed], ReferenceRule):
                raise ConfigError("Rule %s reads target.%s, a reference (an object id): read a source attribute "
                                  "instead" % (rule.name, needed), option=rule.name)
            visit(needed, path + [name])
        state[name] = "done"
        order.append(name)

    for name in sorted(rules):
        visit(name, [])
    return order


def parse_threshold(value):
    """``500`` -> 500 objects; ``"10%"`` -> 10 % of the managed objects; ``{count: 500, percent: 10}`` -> the smaller
    of both. None -> the default (the smaller of 500 and 10 %)."""
    if value is None or value == "":
        return Threshold(DEFAULT_DELETION_THRESHOLD, DEFAULT_DELETION_PERCENT)
    if isinstance(value, dict):
        unknown = set(value) - set(["count", "percent"])
        if unknown or not value:
            raise ConfigError("deletion_threshold: a dictionary takes count and/or percent (got %s)"
                              % ", ".join(sorted(unknown) or ["nothing"]), option="deletion_threshold")
        count = _threshold_count(value["count"]) if value.get("count") is not None else None
        percent = _threshold_percent(value["percent"]) if value.get("percent") is not None else None
        if count is None and percent is None:
            raise ConfigError("deletion_threshold: give count and/or percent", option="deletion_threshold")
        return Threshold(count, percent)
    if isinstance(value, str):
        match = _PERCENT_RE.match(value)
        if match:
            return Threshold(None, _threshold_percent(match.group(1)))
    return Threshold(_threshold_count(value), None)


def _threshold_count(value):
    if isinstance(value, bool):
        raise ConfigError("deletion_threshold: give a number of objects (500), a percentage ('10%') or "
                          "{count: 500, percent: 10}", option="deletion_threshold")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError("deletion_threshold: '%s' is neither a number of objects (500) nor a percentage ('10%%')"
                          % value, option="deletion_threshold")
    if number < 0:
        raise ConfigError("deletion_threshold must not be negative", option="deletion_threshold")
    return number


def _threshold_percent(value):
    try:
        percent = float(value)
    except (TypeError, ValueError):
        raise ConfigError("deletion_threshold: percent '%s' is not a number" % value, option="deletion_threshold")
    if not 0 <= percent <= 100:
        raise ConfigError("deletion_threshold: %g%% is not between 0 and 100%%" % percent, option="deletion_threshold")
    return percent


def _required_text(params, key):
    value = params.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("%s is required" % key, option=key)
    return value


def _endpoint(spec, where, scope_allowed):
    if not isinstance(spec, dict) or bool(spec.get("connection")) == bool(spec.get("connector")):
        raise ConfigError("%s: give either connection (a connection name saved with idsync.entra.connection) or "
                          "connector with its settings inline (connector: csv, path: ..., key: [...]), and "
                          "object_type" % where, option=where)
    from ansible_collections.idsync.entra.plugins.module_utils.connections import CSV_SETTINGS
    inline = None
    if spec.get("connector"):
        if spec["connector"] not in INLINE_CONNECTORS:
            raise ConfigError("%s.connector: only %s can be given inline; save a %s connection with "
                              "idsync.entra.connection and name it with connection" % (
                                  where, ", ".join(INLINE_CONNECTORS), spec["connector"]), option=where)
        inline = dict((k, spec[k]) for k in ("connector",) + CSV_SETTINGS if spec.get(k) is not None)
    else:
        given = [k for k in CSV_SETTINGS if spec.get(k) is not None]
        if given:
            raise ConfigError("%s: %s belong%s to an inline connector; with connection: %s the saved connection's "
                              "settings apply" % (where, ", ".join(given), "s" if len(given) == 1 else "",
                                                  spec["connection"]), option=where)
    scope = None
    if spec.get("scope") not in (None, ""):
        if not scope_allowed:
            raise ConfigError("%s.scope is only supported on the source" % where, option=where)
        scope = parse_rule(where + ".scope", spec["scope"])
        if isinstance(scope, DirectRule):   # "Active" alone: an attribute whose truth puts the object in scope
            pass
        elif not isinstance(scope, (ExpressionRule, ConstantRule)):
            raise ConfigError("%s.scope: write a condition such as \"<< Status == 'Active' >>\"" % where,
                              option=where)
    multi = spec.get("multi_valued") or []
    if isinstance(multi, str):
        multi = [multi]
    name = spec.get("connection") or where        # an inline connection is named after its side
    return Endpoint(name, spec.get("object_type"), scope=scope, filter=spec.get("filter"), multi_valued=multi,
                    inline=inline)


def _attributes(spec, where):
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ConfigError("%s must be a dictionary of target attribute: rule" % where, option=where)
    return dict((name, parse_rule("%s.%s" % (where, name), rule)) for name, rule in spec.items())


# ----------------------------------------------------------------------------------------------------------------
# Validation against the connectors' schemas
# ----------------------------------------------------------------------------------------------------------------

def _suggest(name, known):
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    if not close:
        lowered = dict((k.lower(), k) for k in known)
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return (" (did you mean %s?)" % " or ".join(close)) if close else ""


def _check_source(rule, source_schema, source_label):
    if source_schema is None:
        return
    for name in sorted(rule.source_attributes()):
        if name not in source_schema:
            raise ConfigError("Rule %s: unknown source attribute '%s' in %s%s" % (
                rule.name, name, source_label, _suggest(name, source_schema)), option=rule.name)


def members_attribute(group_schema):
    """The attribute listing a group's members: ``members`` (Graph), else the group type's only multi-valued
    reference attribute (LDAP's ``member``); None when there is none."""
    if not group_schema:
        return None
    if "members" in group_schema:
        return "members"
    names = [name for name, spec in group_schema.items() if spec.reference and spec.multi_valued]
    return names[0] if len(names) == 1 else None


def validate_workflow(wf, source_schema, target_schema, source_label, target_label, target_connector=None,
                      group_schema=None):
    """Raise ConfigError (naming the rule) for anything that cannot work. Schemas are {name: AttributeSpec};
    ``None`` means "any attribute" (a CSV file that does not exist yet)."""
    def target_spec(rule_name, attribute, writing=True):
        if target_schema is None:
            return None
        spec = target_schema.get(attribute)
        if spec is None:
            raise ConfigError("Rule %s: unknown target attribute '%s' in %s%s" % (
                rule_name, attribute, target_label, _suggest(attribute, target_schema)), option=rule_name)
        if writing and spec.read_only:
            raise ConfigError("Rule %s: '%s' is read-only in %s" % (rule_name, attribute, target_label),
                              option=rule_name)
        return spec

    for index, pair in enumerate(wf.match):
        _check_source(pair.source, source_schema, source_label)
        target_spec("match[%d].target" % index, pair.target, writing=False)

    if wf.source.scope is not None:
        _check_source(wf.source.scope, source_schema, source_label)

    for step, attrs in (("create", wf.create), ("update", wf.update)):
        for attribute, rule in (attrs or {}).items():
            _check_source(rule, source_schema, source_label)
            spec = target_spec(rule.name, attribute)
            if spec is None:
                continue
            if spec.reference and not isinstance(rule, (ReferenceRule, ConstantRule)):
                raise ConfigError("Rule %s: '%s' is a reference to a %s; write {reference: <source attribute>}"
                                  % (rule.name, attribute, spec.reference), option=rule.name)
            if isinstance(rule, ReferenceRule) and not spec.reference:
                # A CSV column receives the referenced object's key: that is a reference on our side.
                if target_schema is not None and not getattr(spec, "reference", None) and spec.type != "string":
                    raise ConfigError("Rule %s: '%s' cannot hold a reference" % (rule.name, attribute),
                                      option=rule.name)
            if isinstance(rule, ReferenceRule) and rule.by:
                _check_source(DirectRule(rule.name, rule.by), source_schema, source_label)
            if isinstance(rule, ExpressionRule) and getattr(spec, "escape", None) is not None:
                rule.escape_values_with(spec.escape)

    for attribute, rule in wf.deprovision_set.items():
        target_spec(rule.name, attribute)

    if wf.create is not None and target_schema is not None:
        provided = set(wf.create) | set(wf.update or {}) | set(p.target for p in wf.match)
        if wf.password:
            provided.add("passwordProfile")
        defaults = set(target_connector.create_defaults(wf.target.object_type)) if target_connector else set()
        missing = [name for name, spec in sorted(target_schema.items())
                   if spec.required_on_create and name not in provided and name not in defaults]
        if missing:
            hint = ""
            if "passwordProfile" in missing:
                hint = " (for passwordProfile write password: generate)"
            raise ConfigError("steps.create.attributes: creating a %s in %s needs %s%s" % (
                wf.target.object_type, target_label, ", ".join(missing), hint), option="steps.create.attributes")

    if target_connector is not None:
        allowed = target_connector.operations(wf.target.object_type)
        for wanted, option, used in (("create", "steps.create", wf.create is not None),
                                     ("delete", "steps.deprovision.action", wf.deprovision_action == "delete")):
            if used and wanted not in allowed:
                raise ConfigError("%s: %s objects cannot be %sd (this connector can %s them)" % (
                    option, target_label, wanted, ", ".join(sorted(allowed))), option=option)

    if wf.password and target_connector is not None and not target_connector.supports("password"):
        raise ConfigError("steps.create.password: %s cannot set passwords" % target_label,
                          option="steps.create.password")
    if wf.deprovision_action == "disable" and target_connector is not None \
            and not target_connector.disable_attributes(wf.target.object_type):
        raise ConfigError("steps.deprovision.action: %s objects cannot be disabled; use delete or set: {...}"
                          % target_label, option="steps.deprovision.action")

    for membership in wf.memberships:
        _check_source(membership.group, source_schema, source_label)
        wf.members_attribute = members_attribute(group_schema)
        if wf.members_attribute is None:
            raise ConfigError("%s: %s has no %s objects with members" % (
                membership.name, target_label, membership.object_type), option=membership.name)
        if membership.match_attribute not in group_schema:
            raise ConfigError("%s.match_attribute: unknown group attribute '%s'%s" % (
                membership.name, membership.match_attribute, _suggest(membership.match_attribute, group_schema)),
                option=membership.name)
