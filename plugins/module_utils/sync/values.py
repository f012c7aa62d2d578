# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Value normalisation: the one place that decides whether a desired value equals the current one.

Rules: ``None``, ``""`` and ``[]`` are the same (no value); text compares case-sensitively (a changed letter case
is a real change Graph accepts) except where the attribute says otherwise (object ids, a directory's DNs and
names), and then the value is still written as the rule produced it; multi-valued attributes
compare as sets unless they are ordered; booleans and integers are coerced from their text forms so a CSV's
``TRUE`` equals Graph's ``true``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import BOOLEAN, INTEGER

_TRUE = frozenset(["true", "yes", "y", "1", "on", "enabled", "t"])
_FALSE = frozenset(["false", "no", "n", "0", "off", "disabled", "f"])


# C0 controls but tab, line feed and carriage return, and DEL: never written to any system.
_CONTROL_RE = re.compile(u"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ValueError_(Exception):
    """A value cannot be converted to the attribute's type (the engine names the rule and the object)."""


def describe_type(value):
    """What a non-plain value is, for a person: "a function", "a dictionary", "an object of type Cycler"."""
    if callable(value):
        return "a function"
    if isinstance(value, dict):
        return "a dictionary"
    return "an object of type %s" % type(value).__name__


def check_text(text):
    """Refuse text holding control characters (NUL and the like), naming the first."""
    bad = _CONTROL_RE.search(text)
    if bad:
        raise ValueError_("the value holds control character U+%04X at position %d; it is never written"
                          % (ord(bad.group(0)), bad.start() + 1))
    return text


def empty(value):
    return value is None or value == "" or (isinstance(value, (list, tuple, set, frozenset)) and not value)


def _scalar(value, spec):
    kind = spec.type if spec is not None else None
    if kind == BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError_("%r is not a boolean (true/false)" % (value,))
    if kind == INTEGER:
        if isinstance(value, bool):
            raise ValueError_("%r is not an integer" % (value,))
        try:
            return int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ValueError_("%r is not an integer" % (value,))
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict) and "id" in value:  # a Graph reference object
        text = str(value["id"])
    elif isinstance(value, (int, float)):
        text = str(value)
    else:
        # A rule gave a function, a dictionary or an object: its Python form is never a value to write.
        raise ValueError_("the rule gave %s, not a text, number, boolean or list" % describe_type(value))
    if spec is not None and (spec.case_insensitive or spec.comparison_key is not None):
        return FoldedText(text, spec.comparison_key)
    return text


def desired_value(value, spec):
    """``normalize`` for a value a rule computed, to be written: text with control characters is refused too."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, str):
                check_text(item)
            elif isinstance(item, (list, tuple, dict)) or not (item is None or isinstance(item, (int, float))):
                raise ValueError_("the rule gave a list holding %s; a list holds texts, numbers or booleans"
                                  % describe_type(item))
    return normalize(value, spec)


class FoldedText(str):
    """Text that compares (and hashes) case-insensitively, or by the attribute's ``comparison_key``, but is written
    as the rule produced it: ``Zoe@Contoso.example`` equals ``zoe@contoso.example`` and is written capitalised."""
    __slots__ = ("key",)

    def __new__(cls, text, comparison_key=None):
        self = str.__new__(cls, text)
        self.key = comparison_key(text) if comparison_key is not None else text.casefold()
        return self

    def __eq__(self, other):
        if isinstance(other, FoldedText):
            return self.key == other.key
        if isinstance(other, str):
            return self.key == other.casefold()
        return NotImplemented

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return hash(self.key)

    def __lt__(self, other):
        return self.key < (other.key if isinstance(other, FoldedText) else str(other).casefold())


def normalize(value, spec):
    """The comparable form of ``value`` for attribute ``spec`` (an AttributeSpec or None): None, a scalar, or a tuple
    (multi-valued: sorted unless ordered). Raises ValueError_ when a value does not fit the type."""
    if value.__class__ is str and (spec is None or spec.plain):      # the common case, kept fast
        return value if value != "" else None
    if empty(value):
        return None
    if spec is not None and spec.multi_valued:
        if isinstance(value, (list, tuple, set, frozenset)):
            items = value
        elif isinstance(value, str) and spec.separator:
            items = value.split(spec.separator)
        else:
            items = [value]
        out = []
        for item in items:
            if empty(item):
                continue
            if isinstance(item, str):
                item = item.strip() if spec.separator else item
                if not item:
                    continue
            out.append(_scalar(item, spec))
        if not out:
            return None
        if spec.ordered:
            return tuple(out)
        return tuple(sorted(set(out), key=_sort_key))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [v for v in value if not empty(v)]
        if not items:
            return None
        if len(items) == 1:
            return _scalar(items[0], spec)
        if spec is not None and spec.separator:
            return spec.separator.join(_scalar(v, None) for v in items)
        raise ValueError_("%d values given for the single-valued attribute %s" % (len(items), spec.name if spec else "?"))
    return _scalar(value, spec)


def _sort_key(item):
    if isinstance(item, FoldedText):
        return ("str", item.key)
    return (type(item).__name__, item)


def to_output(value):
    """A normalised value as plain JSON (tuples become lists)."""
    if isinstance(value, tuple):
        return list(value)
    return value
