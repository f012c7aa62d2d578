# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Distinguished names (RFC 4514), search filter values (RFC 4515) and object GUIDs: pure functions, no I/O."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import uuid


class DnError(ValueError):
    """A string is not a valid distinguished name; the message says where."""


# RFC 4514 section 2.4: these are escaped anywhere in a value; '#' and ' ' at the start and ' ' at the end.
_DN_SPECIAL = frozenset(',+"\\<>;=')
_TYPE_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)$")


def escape_dn_value(value):
    """One attribute value made safe inside a DN: ``Smith, John`` -> ``Smith\\, John`` (RFC 4514 2.4).

    ``=`` is escaped too (allowed by the RFC, and it keeps AD's own parser from misreading a value)."""
    text = "" if value is None else str(value)
    out = []
    for position, char in enumerate(text):
        if char in _DN_SPECIAL:
            out.append("\\" + char)
        elif char == "\x00":
            out.append("\\00")
        elif position == 0 and char in "# ":
            out.append("\\" + char)
        elif position == len(text) - 1 and char == " ":
            out.append("\\ ")
        else:
            out.append(char)
    return "".join(out)


def _hex_pair(text, index):
    pair = text[index:index + 2]
    if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
        return int(pair, 16)
    return None


def _unescape_value(raw, dn):
    """An RFC 4514 attribute value (escapes resolved, UTF-8 hex pairs decoded); raises DnError."""
    if raw.startswith("#"):
        return raw                        # a BER-encoded value: kept as written
    data = bytearray()
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\":
            byte = _hex_pair(raw, index + 1)
            if byte is not None:
                data.append(byte)
                index += 3
                continue
            if index + 1 < len(raw) and (raw[index + 1] in _DN_SPECIAL or raw[index + 1] in "# "):
                data.extend(raw[index + 1].encode("utf-8"))
                index += 2
                continue
            raise DnError("'%s' is not a valid DN: a backslash at position %d escapes nothing" % (dn, index + 1))
        if char in '"+;<>' or char == "=":
            raise DnError("'%s' is not a valid DN: '%s' in a value must be escaped (\\%s)" % (dn, char, char))
        data.extend(char.encode("utf-8"))
        index += 1
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DnError("'%s' is not a valid DN: its hex escapes are not UTF-8" % dn)


def parse_dn(dn):
    """``'CN=Smith\\, John,OU=People,DC=example,DC=com'`` -> ``[[('CN', 'Smith, John')], [('OU', 'People')], ...]``.

    Multi-valued RDNs (``CN=a+UID=b``) give several pairs. Spaces around ``,``, ``+`` and ``=`` are ignored, as
    the older RFC 2253 form allowed and AD accepts. Raises DnError naming what is wrong."""
    text = "" if dn is None else str(dn)
    if not text.strip():
        return []
    rdns = []
    current = []
    index = 0
    length = len(text)
    while index < length:
        end = text.find("=", index)
        if end < 0:
            raise DnError("'%s' is not a valid DN: '%s' has no '='" % (dn, text[index:].strip()))
        attr_type = text[index:end].strip()
        if not _TYPE_RE.match(attr_type):
            raise DnError("'%s' is not a valid DN: '%s' is not an attribute type" % (dn, attr_type))
        index = end + 1
        start = index
        while index < length and text[index] not in ",+;":
            if text[index] == "\\":
                index += 1
            index += 1
        raw = text[start:index].strip()
        if raw.endswith("\\") and text[start:index].endswith("\\ "):
            raw += " "                    # an escaped trailing space belongs to the value
        if raw == "":
            raise DnError("'%s' is not a valid DN: %s has an empty value" % (dn, attr_type))
        current.append((attr_type, _unescape_value(raw, dn)))
        if index >= length:
            break
        separator = text[index]
        index += 1
        if index >= length:
            raise DnError("'%s' is not a valid DN: it ends with a separator" % dn)
        if separator in ",;":
            rdns.append(current)
            current = []
    if current:
        rdns.append(current)
    return rdns


def build_dn(rdns):
    """The inverse of ``parse_dn``: values escaped per RFC 4514, types as given."""
    return ",".join("+".join("%s=%s" % (t, escape_dn_value(v)) for t, v in rdn) for rdn in rdns)


def canonical_dn(dn):
    """A comparison key: types lower-cased, values unescaped and case-folded (AD and the usual DN-valued
    attributes compare case-insensitively), one form for every spelling of the same DN. Invalid DNs fold as text."""
    try:
        rdns = parse_dn(dn)
    except DnError:
        return str(dn).casefold()
    return ",".join("+".join(sorted("%s=%s" % (t.lower(), escape_dn_value(v.casefold())) for t, v in rdn))
                    for rdn in rdns)


def normalize_dn(dn):
    """The DN rewritten in one clean form (no spaces around separators, minimal escapes), case kept."""
    return build_dn(parse_dn(dn))


def parent_dn(dn):
    rdns = parse_dn(dn)
    return build_dn(rdns[1:])


def rdn_of(dn):
    rdns = parse_dn(dn)
    return build_dn(rdns[:1])


def rdn_value(dn):
    """``CN=Sales staff,OU=Groups,...`` -> ``Sales staff`` (the first value of the first RDN)."""
    try:
        rdns = parse_dn(dn)
    except DnError:
        return None
    return rdns[0][0][1] if rdns else None


def is_within(dn, base, scope="subtree"):
    """Is ``dn`` inside the search ``base`` with ``scope`` (base / one / subtree)? Case-insensitive."""
    entry = canonical_dn(dn)
    top = canonical_dn(base)
    if scope == "base":
        return entry == top
    if not top:
        return scope != "one" or entry.count(",") == 0
    if not entry.endswith("," + top):
        return False
    if scope == "one":
        return canonical_dn(parent_dn(dn)) == top
    return True


# RFC 4515 section 3: '*', '(', ')', '\' and NUL are written as \XX in a filter value; non-ASCII stays UTF-8.
_FILTER_ESCAPES = {"*": "\\2a", "(": "\\28", ")": "\\29", "\\": "\\5c", "\x00": "\\00"}


def escape_filter_value(value):
    """A value made literal inside a search filter: ``*)(objectClass=*`` -> ``\\2a\\29\\28objectClass=\\2a``."""
    if isinstance(value, (bytes, bytearray)):
        return "".join("\\%02x" % b for b in bytearray(value))
    return "".join(_FILTER_ESCAPES.get(c, c) for c in str(value))


def check_filter(text, what):
    """A filter option given by a person must be one parenthesised, balanced LDAP filter; raises ValueError."""
    stripped = (text or "").strip()
    if not stripped.startswith("(") or not stripped.endswith(")"):
        raise ValueError("%s must be an LDAP filter in parentheses, such as (department=Sales); got %s"
                         % (what, text))
    depth = 0
    escaped = False
    for position, char in enumerate(stripped):
        if escaped:
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and position != len(stripped) - 1:
                raise ValueError("%s must be one filter; wrap several in (&...): %s" % (what, text))
            if depth < 0:
                break
    if depth != 0:
        raise ValueError("%s has unbalanced parentheses: %s" % (what, text))
    return stripped


def and_filters(*filters):
    parts = [f for f in filters if f]
    if len(parts) == 1:
        return parts[0]
    return "(&%s)" % "".join(parts)


# objectGUID: 16 bytes; its string form has the first three fields little-endian (MS-DTYP 2.3.4.2).
def guid_from_bytes(raw):
    return str(uuid.UUID(bytes_le=bytes(raw)))


def guid_to_bytes(text):
    return uuid.UUID(str(text).strip("{}")).bytes_le


def looks_like_guid(text):
    try:
        uuid.UUID(str(text).strip("{}"))
        return True
    except (TypeError, ValueError):
        return False
