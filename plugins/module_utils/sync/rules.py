# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Attribute rules: direct, constant, expression and reference.

A rule is written in YAML as one of:

* ``Department``: a plain string names a source attribute (direct rule);
* ``true`` / ``42`` / ``null``: a non-string scalar is a constant; ``{value: "Contoso"}`` a constant of any type;
* ``"<< (GivenName ~ '.' ~ Surname) | lower >>@contoso.example"``: a string holding ``<< >>`` (or ``<% %>``) is
  an **expression**: a Jinja2 template evaluated in Jinja2's sandbox over the source object's attributes.
  ``<<``/``>>`` and ``<%``/``%>`` are not Ansible's delimiters, so Ansible passes the rule to the module untouched
  and no ``!unsafe`` is needed. ``{expression: "..."}`` is the same, written explicitly;
* ``{attribute: "Employee ID"}``: a direct rule for an attribute whose name would otherwise read as something else;
* ``{reference: ManagerID}``: the source attribute holds the key of another source object (or with
  ``lookup: employeeId``, a value of that target attribute); the engine writes the matching target object's id.

A template that is exactly one ``<< expression >>`` returns the expression's own value (a list from ``split``, a
boolean from a comparison); anything else renders to text. An empty result (``""``, ``[]``, ``None``) means "no
value".
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import traceback
import unicodedata

JINJA2_IMPORT_ERROR = None
try:
    from jinja2 import StrictUndefined, Undefined, nodes
    from jinja2.exceptions import TemplateError, TemplateSyntaxError, UndefinedError
    from jinja2.sandbox import SandboxedEnvironment
    HAS_JINJA2 = True
except ImportError:  # pragma: no cover - jinja2 comes with ansible-core; ansible-test's import test runs without it
    HAS_JINJA2 = False
    JINJA2_IMPORT_ERROR = traceback.format_exc()

    class TemplateError(Exception):
        pass

    class TemplateSyntaxError(TemplateError):
        pass

    class UndefinedError(TemplateError):
        pass

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError


class RuleError(Exception):
    """A rule failed for one object (bad data, not a bad rule): the engine records it against that object."""

    def __init__(self, rule, message):
        self.rule = rule
        self.message = message
        super(RuleError, self).__init__("rule %s: %s" % (rule, message))


# ----------------------------------------------------------------------------------------------------------------
# Filters
# ----------------------------------------------------------------------------------------------------------------

_SPECIAL_LETTERS = {
    u"ß": u"ss", u"ẞ": u"SS", u"æ": u"ae", u"Æ": u"AE", u"ø": u"o", u"Ø": u"O", u"œ": u"oe", u"Œ": u"OE",
    u"ł": u"l", u"Ł": u"L", u"đ": u"d", u"Đ": u"D", u"ð": u"d", u"Ð": u"D", u"þ": u"th", u"Þ": u"Th",
    u"ı": u"i", u"ħ": u"h", u"Ħ": u"H",
}
_SPECIAL_RE = re.compile(u"[%s]" % u"".join(_SPECIAL_LETTERS))
_MAIL_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._'-]+")


def _text(value):
    if value is None:
        return u""
    if isinstance(value, (list, tuple)):
        return u" ".join(_text(v) for v in value)
    return value if isinstance(value, str) else str(value)


def strip_accents(value):
    """``Zoë Ærøskøbing-Łódź`` -> ``Zoe AEroskobing-Lodz``: letters without their diacritics, for UPNs."""
    text = _SPECIAL_RE.sub(lambda m: _SPECIAL_LETTERS[m.group(0)], _text(value))
    decomposed = unicodedata.normalize("NFKD", text)
    return u"".join(c for c in decomposed if not unicodedata.combining(c))


def mail_safe(value):
    """Accents stripped, then every character that may not appear in a mail nickname / UPN prefix removed."""
    return _MAIL_UNSAFE_RE.sub(u"", strip_accents(value)).strip(u".")


def regex_replace(value, pattern, replacement=u"", ignorecase=False, count=0):
    flags = re.I if ignorecase else 0
    return re.sub(pattern, replacement, _text(value), count=count, flags=flags)


def regex_search(value, pattern, group=0, ignorecase=False):
    """The first match of ``pattern`` (or its ``group``), or "" when it does not match."""
    match = re.search(pattern, _text(value), re.I if ignorecase else 0)
    if not match:
        return u""
    return match.group(group) or u""


def substring(value, start, length=None):
    """``substring(0, 8)``: ``length`` characters from ``start`` (0-based); negative ``start`` counts from the end."""
    text = _text(value)
    if length is None:
        return text[start:]
    if start < 0:
        end = start + length
        return text[start:end if end < 0 else None]
    return text[start:start + length]


def truncate(value, length):
    """Hard cut at ``length`` characters (unlike Jinja2's word-aware truncate with an ellipsis)."""
    return _text(value)[:length]


def is_empty(value):
    return value is None or value == u"" or (isinstance(value, (list, tuple, set, frozenset)) and not value)


def default_if_empty(value, default=u""):
    """``value`` unless it is empty (``""``, ``[]``, null), then ``default``."""
    return default if is_empty(value) else value


def split(value, separator=None):
    """A string split into a list (empty items dropped); a list stays a list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    parts = _text(value).split(separator)
    return [p.strip() if separator is not None else p for p in parts if p.strip()]


def join(value, separator=u""):
    """Items joined by ``separator``; a plain string is returned as it is (Jinja2's join would split it)."""
    if value is None:
        return u""
    if isinstance(value, str):
        return value
    return separator.join(_text(v) for v in value if not is_empty(v))


FILTERS = {
    "strip_accents": strip_accents,
    "mail_safe": mail_safe,
    "regex_replace": regex_replace,
    "regex_search": regex_search,
    "substring": substring,
    "truncate": truncate,
    "default_if_empty": default_if_empty,
    "split": split,
    "join": join,
}


class NotAValue(Exception):
    """An expression inside a text template gave something that has no text form to write."""


def _finalize(value):
    """Each ``<< >>`` inside a larger text: plain values only, so a function or a dict never lands in an attribute as
    its Python form (``<function ...>``)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        raise NotAValue("a list inside text gives its Python form; join it (| join(', ')) or make the whole rule "
                        "one << expression >>")
    from ansible_collections.idsync.entra.plugins.module_utils.sync.values import describe_type
    raise NotAValue("an expression gave %s, which has no text form" % describe_type(value))


def _create_environment():
    env = SandboxedEnvironment(
        finalize=_finalize,
        variable_start_string="<<",
        variable_end_string=">>",
        block_start_string="<%",
        block_end_string="%>",
        comment_start_string="<#",
        comment_end_string="#>",
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.tests["empty"] = is_empty
    env.globals["is_empty"] = is_empty
    return env


ENV = _create_environment() if HAS_JINJA2 else None

_SINGLE_EXPRESSION_RE = re.compile(r"^\s*<<(?P<expr>.*?)>>\s*$", re.S)
_TEMPLATE_MARKERS = ("<<", "<%", "<#")
# A "single expression" rule must not contain another delimiter inside it.
_NESTED_RE = re.compile(r"<<|>>|<%|%>")

# Names an expression may use that are not source attributes.
EXPRESSION_GLOBALS = frozenset(["source", "target", "is_empty", "range", "dict", "lipsum", "cycler", "joiner",
                                "namespace", "true", "false", "none", "True", "False", "None"])


def is_expression(text):
    return isinstance(text, str) and any(m in text for m in _TEMPLATE_MARKERS)


# ----------------------------------------------------------------------------------------------------------------
# Rules
# ----------------------------------------------------------------------------------------------------------------

class Rule(object):
    kind = None
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def source_attributes(self):
        """Source attribute names this rule reads (statically known ones)."""
        return set()

    def target_attributes(self):
        """Target attributes of the same step this rule reads (``target.X``): they are computed first."""
        return set()

    def evaluate(self, obj, context=None, target=None):
        """The rule's value for source object ``obj``; ``target`` holds the values already computed for the same
        target object in the same step."""
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError


class DirectRule(Rule):
    kind = "direct"
    __slots__ = ("attribute",)

    def __init__(self, name, attribute):
        super(DirectRule, self).__init__(name)
        self.attribute = attribute

    def source_attributes(self):
        return set([self.attribute])

    def evaluate(self, obj, context=None, target=None):
        return obj.get(self.attribute)

    def describe(self):
        return self.attribute


class ConstantRule(Rule):
    kind = "constant"
    __slots__ = ("value",)

    def __init__(self, name, value):
        super(ConstantRule, self).__init__(name)
        self.value = value

    def evaluate(self, obj, context=None, target=None):
        return self.value

    def describe(self):
        return {"value": self.value}


def _static_items(ast, name):
    """Attribute names read as ``name.X`` / ``name['X']``, and whether ``name`` is also used otherwise."""
    items = set()
    static_uses = 0
    for node in ast.find_all((nodes.Getitem, nodes.Getattr)):
        target = node.node
        if isinstance(target, nodes.Name) and target.name == name:
            if isinstance(node, nodes.Getattr):
                items.add(node.attr)
                static_uses += 1
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                items.add(node.arg.value)
                static_uses += 1
    all_uses = sum(1 for node in ast.find_all(nodes.Name) if node.name == name and node.ctx == "load")
    return items, all_uses > static_uses


def _expression_variables(ast):
    """Variables a template reads: undeclared names, plus ``source['Some Column']`` / ``source.Column`` items.
    Third value: whether ``source`` is also used in a way that cannot be read statically (``source[name]``);
    fourth: the ``target.X`` attributes it reads (values computed for the same object in the same step)."""
    from jinja2 import meta
    names = set(meta.find_undeclared_variables(ast))
    items, dynamic = _static_items(ast, "source")
    target_items, target_dynamic = _static_items(ast, "target")
    if target_dynamic:
        raise ValueError("read target attributes by name (target.userPrincipalName or target['mail'])")
    return names, items, dynamic, target_items


CACHE_LIMIT = 20000
_IMPURE = frozenset(["lipsum", "cycler", "joiner", "range", "namespace", "random", "shuffle"])


class ExpressionRule(Rule):
    """A template over the source object's attributes. Results are memoised on the values of the attributes the
    template reads (expressions are pure), so "<< Department >> staff" over 100,000 people renders a few times."""
    kind = "expression"
    __slots__ = ("text", "_compiled", "_native", "variables", "targets", "_keys", "_target_keys", "_cache")

    def __init__(self, name, text):
        super(ExpressionRule, self).__init__(name)
        self.text = text
        try:
            ast = ENV.parse(text)
            names, items, dynamic, targets = _expression_variables(ast)
        except TemplateSyntaxError as exc:
            raise ConfigError("Rule %s: the expression %r is not valid: %s"
                              % (name, text, exc.message), option=name)
        except ValueError as exc:
            raise ConfigError("Rule %s: %s in %r" % (name, exc, text), option=name)
        self.variables = (names - EXPRESSION_GLOBALS) | items
        self.targets = frozenset(targets)
        impure = dynamic or any(n.name in _IMPURE for n in ast.find_all((nodes.Name, nodes.Filter)))
        self._keys = None if impure else tuple(sorted(self.variables))
        self._target_keys = tuple(sorted(self.targets))
        self._cache = {}
        single = _SINGLE_EXPRESSION_RE.match(text)
        try:
            if single and not _NESTED_RE.search(single.group("expr")):
                self._native = True
                self._compiled = ENV.compile_expression(single.group("expr"), undefined_to_none=False)
            else:
                self._native = False
                self._compiled = ENV.from_string(text)
        except TemplateError as exc:
            raise ConfigError("Rule %s: the expression %r is not valid: %s"
                              % (name, text, getattr(exc, "message", None) or exc), option=name)

    def source_attributes(self):
        return set(self.variables)

    def target_attributes(self):
        return set(self.targets)

    def escape_values_with(self, escape):
        """Pass every value interpolated into this template through ``escape`` (the target attribute's syntax asks
        for it, e.g. RFC 4514 for a DN). A rule that is one whole expression keeps its value as it is."""
        if self._native or escape is None:
            return
        self._compiled = ENV.overlay(finalize=lambda value: escape(_text(_finalize(value)))).from_string(self.text)
        self._cache = {}

    def evaluate(self, obj, context=None, target=None):
        keys = self._keys
        if keys is not None:
            key = tuple([_freeze(obj.get(k)) for k in keys])
            if self._target_keys:
                key += tuple([_freeze((target or {}).get(k)) for k in self._target_keys])
            try:
                found = self._cache.get(key, _MISSING)
            except TypeError:           # an unhashable value: evaluate without the cache
                found = key = _MISSING
            if found is not _MISSING:
                if isinstance(found, RuleError):
                    raise found
                return _thaw(found)
            value = _MISSING
            try:
                value = self._evaluate(obj, context, target)
            except RuleError as exc:
                value = exc
                raise
            finally:
                if key is not _MISSING and value is not _MISSING:
                    if len(self._cache) >= CACHE_LIMIT:
                        self._cache.clear()
                    self._cache[key] = _freeze(value) if not isinstance(value, RuleError) else value
            return value
        return self._evaluate(obj, context, target)

    def _evaluate(self, obj, context=None, target=None):
        variables = context if context is not None else expression_context(obj)
        if self.targets:
            variables = dict(variables, target=dict(target or {}))
        try:
            if self._native:
                value = self._compiled(**variables)
                if isinstance(value, Undefined):
                    value._fail_with_undefined_error()
                return value
            return self._compiled.render(variables)
        except UndefinedError as exc:
            raise RuleError(self.name, "%s in %s" % (exc.message, self.text))
        except NotAValue as exc:
            raise RuleError(self.name, "%s in %s" % (exc, self.text))
        except RuleError:
            raise
        except Exception as exc:  # any runtime error of the user's expression belongs to this object
            raise RuleError(self.name, "%s: %s in %s" % (type(exc).__name__, exc, self.text))

    def describe(self):
        return self.text


class ReferenceRule(Rule):
    """``{reference: ManagerID}``: the value(s) of a source attribute identify other objects.

    ``by``: the source attribute the value is compared with (default: the source object's key / id);
    ``lookup``: instead, a target attribute the value is looked up in (``employeeId``), on ``object_type`` (default:
    the workflow's target type; for ``members`` the referenced type from the schema).
    ``separator``: split a text value into several references (a member list column).
    """
    kind = "reference"
    __slots__ = ("attribute", "by", "lookup", "lookup_type", "separator")

    def __init__(self, name, attribute, by=None, lookup=None, lookup_type=None, separator=None):
        super(ReferenceRule, self).__init__(name)
        self.attribute = attribute
        self.by = by
        self.lookup = lookup
        self.lookup_type = lookup_type
        self.separator = separator

    def source_attributes(self):
        return set([self.attribute])

    def evaluate(self, obj, context=None, target=None):
        """The raw referring value(s) as a list of non-empty strings."""
        value = obj.get(self.attribute)
        if value is None or value == "":
            return []
        if isinstance(value, (list, tuple, set, frozenset)):
            values = list(value)
        elif self.separator is not None and isinstance(value, str):
            values = value.split(self.separator)
        else:
            values = [value]
        out = []
        for item in values:
            if isinstance(item, dict):  # a Graph reference {"id": ...}
                item = item.get("id")
            if item is None:
                continue
            item = item.strip() if isinstance(item, str) else str(item)
            if item:
                out.append(item)
        return out

    def describe(self):
        out = {"reference": self.attribute}
        if self.by:
            out["by"] = self.by
        if self.lookup:
            out["lookup"] = self.lookup
        return out


class UniqueRule(Rule):
    """``{unique: [candidate, candidate, ...]}``: the first candidate value that is free in the target (and not
    chosen for another object in the same run) wins; when all are taken, the first gets a counter
    (``john.smith2@contoso.com``). Create-only: the engine picks the value (``sync.unique``)."""
    kind = "unique"
    __slots__ = ("candidates",)

    def __init__(self, name, candidates):
        super(UniqueRule, self).__init__(name)
        self.candidates = candidates

    def source_attributes(self):
        return set().union(*[c.source_attributes() for c in self.candidates])

    def target_attributes(self):
        return set().union(*[c.target_attributes() for c in self.candidates])

    def evaluate(self, obj, context=None, target=None):
        """Every candidate's value, in order (the engine chooses among them)."""
        return [c.evaluate(obj, context, target) for c in self.candidates]

    def describe(self):
        return {"unique": [c.describe() for c in self.candidates]}


_MISSING = object()


def _freeze(value):
    if isinstance(value, list):
        return ("\x00list",) + tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return ("\x00dict",) + tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _thaw(value):
    if isinstance(value, tuple) and value and value[0] == "\x00list":
        return [_thaw(v) for v in value[1:]]
    if isinstance(value, tuple) and value and value[0] == "\x00dict":
        return dict((k, _thaw(v)) for k, v in value[1:])
    return value


def expression_context(obj):
    """Variables for an expression: each attribute (null shown as ""), plus ``source`` (the whole object)."""
    variables = {}
    for key, value in obj.items():
        variables[key] = u"" if value is None else value
    variables["source"] = variables.copy()
    return variables


_RULE_KEYS = frozenset(["value", "expression", "attribute", "reference", "by", "lookup", "object_type", "separator",
                        "unique"])


def parse_rule(name, spec, constants_only=False):
    """Turn the YAML form of a rule into a Rule; ``name`` (e.g. ``steps.update.attributes.jobTitle``) is used in
    every message. Raises ConfigError for a malformed rule (before anything is read or written)."""
    if isinstance(spec, dict):
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise ConfigError("Rule %s: unknown key(s) %s; a rule is an attribute name, a constant, an expression "
                              "'<< ... >>', {value: ...}, {expression: ...}, {attribute: ...} or {reference: ...}"
                              % (name, ", ".join(sorted(unknown))), option=name)
        if "unique" in spec:
            return _parse_unique(name, spec, constants_only)
        kinds = [k for k in ("value", "expression", "attribute", "reference") if k in spec]
        if len(kinds) != 1:
            raise ConfigError("Rule %s: give exactly one of value, expression, attribute or reference (got %s)"
                              % (name, ", ".join(kinds) or "none"), option=name)
        kind = kinds[0]
        if constants_only and kind != "value":
            raise ConfigError("Rule %s: only constant values are allowed here" % name, option=name)
        if kind != "reference" and (set(spec) - set([kind])):
            raise ConfigError("Rule %s: %s is only valid with reference" % (
                name, ", ".join(sorted(set(spec) - set([kind])))), option=name)
        if kind == "value":
            return ConstantRule(name, spec["value"])
        if kind == "expression":
            if not isinstance(spec["expression"], str):
                raise ConfigError("Rule %s: expression must be text" % name, option=name)
            text = spec["expression"]
            if not is_expression(text):
                text = "<< %s >>" % text   # {expression: "GivenName ~ ' ' ~ Surname"} without delimiters
            return ExpressionRule(name, text)
        if kind == "attribute":
            if not isinstance(spec["attribute"], str) or not spec["attribute"]:
                raise ConfigError("Rule %s: attribute must be a non-empty attribute name" % name, option=name)
            return DirectRule(name, spec["attribute"])
        attribute = spec["reference"]
        if not isinstance(attribute, str) or not attribute:
            raise ConfigError("Rule %s: reference must name a source attribute" % name, option=name)
        return ReferenceRule(name, attribute, by=spec.get("by"), lookup=spec.get("lookup"),
                             lookup_type=spec.get("object_type"), separator=spec.get("separator"))
    if isinstance(spec, str):
        if constants_only:
            return ConstantRule(name, spec)
        if is_expression(spec):
            return ExpressionRule(name, spec)
        if not spec.strip():
            raise ConfigError("Rule %s: an empty string is not an attribute name; write {value: ''} for an empty "
                              "constant" % name, option=name)
        return DirectRule(name, spec)
    if spec is None or isinstance(spec, (bool, int, float, list)):
        return ConstantRule(name, spec)
    raise ConfigError("Rule %s: cannot read a rule from %r" % (name, spec), option=name)


def _parse_unique(name, spec, constants_only):
    if constants_only or set(spec) != set(["unique"]):
        raise ConfigError("Rule %s: unique stands alone ({unique: [candidate, ...]}) and only in steps.create"
                          % name, option=name)
    candidates = spec["unique"]
    if isinstance(candidates, (str, dict)):
        candidates = [candidates]
    if not isinstance(candidates, list) or not candidates:
        raise ConfigError("Rule %s: unique takes a list of candidate rules, best first" % name, option=name)
    parsed = []
    for index, candidate in enumerate(candidates):
        rule = parse_rule("%s.unique[%d]" % (name, index), candidate)
        if isinstance(rule, (ReferenceRule, UniqueRule)):
            raise ConfigError("Rule %s.unique[%d]: a candidate is an expression, an attribute or a constant"
                              % (name, index), option=name)
        parsed.append(rule)
    return UniqueRule(name, parsed)
