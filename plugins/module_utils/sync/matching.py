# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Comparable keys of values (matching, lookups, group names) and the truth of a scope rule's result."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import RuleError
from ansible_collections.idsync.entra.plugins.module_utils.sync.values import describe_type, empty

_FALSE_TEXT = frozenset(["", "false", "no", "n", "0", "off", "none", "null"])


def plain(rule, value):
    """``value`` when it is text, a number, a boolean, null or a list of those; else a RuleError naming the rule."""
    for item in (value if isinstance(value, (list, tuple)) else (value,)):
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise RuleError(rule.name, "the rule gave %s, not a value" % describe_type(item))
    return value


def truthy(value):
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_TEXT
    return bool(value)


def match_values(raw, case_sensitive):
    """The keys a value matches on: stripped text, case-folded unless ``case_sensitive``; one per list item."""
    if empty(raw):
        return ()
    items = raw if isinstance(raw, (list, tuple, set, frozenset)) else (raw,)
    out = []
    for item in items:
        if empty(item):
            continue
        if isinstance(item, bool):
            text = "true" if item else "false"
        else:
            text = str(item).strip()
        if not text:
            continue
        out.append(text if case_sensitive else text.casefold())
    return tuple(out)
