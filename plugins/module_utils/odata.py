# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""OData query builders for Microsoft Graph ``$filter`` / ``$select`` with correct literal quoting.

``eq("displayName", "O'Brien")`` -> ``displayName eq 'O''Brien'``; numbers and booleans are bare,
GUIDs are quoted strings (Graph compares ids as strings: ``id eq '0f…'``), ``None`` is ``null``.
The result is a plain string: GraphClient URL-encodes it when it builds the query string.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import re
import uuid

_PROPERTY_RE = re.compile(r"^[A-Za-z_@][A-Za-z0-9_@.#/]*$")


def quote(value):
    """An OData string literal: wrapped in single quotes, embedded single quotes doubled."""
    return "'{0}'".format(str(value).replace("'", "''"))


def literal(value):
    """Render any Python value as an OData literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, uuid.UUID):
        return quote(str(value))
    if isinstance(value, datetime.datetime):
        # DateTimeOffset literals are unquoted: createdDateTime ge 2024-01-01T00:00:00Z
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return quote(value)


def _prop(name):
    if not isinstance(name, str) or not _PROPERTY_RE.match(name):
        raise ValueError("'{0}' is not an OData property path".format(name))
    return name


def eq(prop, value):
    return "{0} eq {1}".format(_prop(prop), literal(value))


def ne(prop, value):
    return "{0} ne {1}".format(_prop(prop), literal(value))


def in_(prop, values):
    """``prop in ('a', 'b')``; Graph limits an ``in`` list to 15 values on most properties, so chunk large lists."""
    values = list(values)
    if not values:
        raise ValueError("in_() needs at least one value")
    return "{0} in ({1})".format(_prop(prop), ", ".join(literal(v) for v in values))


def startswith(prop, value):
    return "startswith({0}, {1})".format(_prop(prop), literal(value))


def any_eq(collection, value, variable="x"):
    """``proxyAddresses/any(x: x eq 'smtp:a@b')``."""
    return "{0}/any({1}: {1} eq {2})".format(_prop(collection), variable, literal(value))


def _join(op, clauses):
    parts = [c for c in clauses if c]
    if not parts:
        raise ValueError("{0}_() needs at least one clause".format(op))
    if len(parts) == 1:
        return parts[0]
    return " {0} ".format(op).join("({0})".format(p) if _needs_parens(p) else p for p in parts)


def _needs_parens(clause):
    # Wrap clauses that themselves combine with and/or (outside of quotes and parentheses).
    depth = 0
    in_quote = False
    for match in re.finditer(r"'|\(|\)| and | or ", clause):
        token = match.group(0)
        if token == "'":
            in_quote = not in_quote
        elif in_quote:
            continue
        elif token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0:
            return True
    return False


def and_(*clauses):
    return _join("and", clauses)


def or_(*clauses):
    return _join("or", clauses)


def not_(clause):
    return "not({0})".format(clause)


def select(props):
    """``$select`` value: a comma-separated list, de-duplicated in order. Accepts a string or an iterable."""
    if isinstance(props, str):
        props = props.split(",")
    seen = []
    for prop in props:
        prop = prop.strip()
        if prop and prop not in seen:
            seen.append(_prop(prop))
    if not seen:
        raise ValueError("select() needs at least one property")
    return ",".join(seen)
