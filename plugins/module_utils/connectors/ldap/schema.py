# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the two directory dialects look like to the sync engine: object types, attributes, anchors, object classes,
and the conversion of raw LDAP values (bytes) to the engine's plain JSON values and back. Pure, no I/O."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import (
    BOOLEAN, DATETIME, INTEGER, specs,
)
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.names import (
    canonical_dn, escape_dn_value, guid_from_bytes, rdn_value,
)

# userAccountControl bits (MS-ADTS 2.2.16)
UAC_ACCOUNTDISABLE = 0x2
UAC_NORMAL_ACCOUNT = 0x200
SAM_ACCOUNT_NAME_MAX = 20                 # for users; AD refuses longer ones (MS-ADTS 3.1.1.5.2.2)
_SAM_UNSAFE = re.compile(r'["/\\\[\]:;|=,+*?<>@\s]+')   # characters AD refuses in sAMAccountName


# Virtual attributes: ``dn`` (the entry's name, compared as a DN, values interpolated into a rule escaped per
# RFC 4514), ``enabled`` (AD: not userAccountControl bit 2), ``memberOfNames`` (AD: the names of memberOf groups).
DN = ("dn", {"required_on_create": True, "comparison_key": canonical_dn, "escape": escape_dn_value})
READ_ONLY_TIME = {"read_only": True, "type": DATETIME}

AD_USER = specs([
    DN,
    ("objectGUID", {"read_only": True, "case_insensitive": True}),
    ("cn", {"read_only": True}), ("name", {"read_only": True}),
    ("sAMAccountName", {"required_on_create": True, "case_insensitive": True,
                        "max_length": SAM_ACCOUNT_NAME_MAX, "unique_in": ("user", "group")}),
    ("userPrincipalName", {"case_insensitive": True, "unique_in": ("user",)}),
    ("mail", {"case_insensitive": True, "unique_in": ("user", "group")}),
    # the prefix's case means something (SMTP: primary, smtp: secondary); values are unique without it
    ("proxyAddresses", {"multi_valued": True, "unique_in": ("user", "group")}),
    ("displayName",), ("givenName",), ("sn",), ("initials",), ("department",), ("title",), ("company",),
    ("employeeID",), ("employeeNumber",), ("employeeType",), ("telephoneNumber",), ("mobile",),
    ("facsimileTelephoneNumber",), ("physicalDeliveryOfficeName",), ("streetAddress",), ("l",), ("st",),
    ("postalCode",), ("c",), ("co",), ("description",), ("info",), ("wWWHomePage",),
    ("otherTelephone", {"multi_valued": True}),
    ("manager", {"reference": "user", "case_insensitive": True}),
    ("enabled", {"type": BOOLEAN}),
    ("userAccountControl", {"type": INTEGER}),
    ("memberOf", {"multi_valued": True, "read_only": True, "comparison_key": canonical_dn}),
    ("memberOfNames", {"multi_valued": True, "read_only": True, "case_insensitive": True}),
    ("whenCreated", READ_ONLY_TIME), ("whenChanged", READ_ONLY_TIME),
])

AD_GROUP = specs([
    DN,
    ("objectGUID", {"read_only": True, "case_insensitive": True}),
    ("cn", {"read_only": True}), ("name", {"read_only": True}),
    ("sAMAccountName", {"required_on_create": True, "case_insensitive": True, "unique_in": ("user", "group")}),
    ("displayName",), ("description",), ("info",),
    ("mail", {"case_insensitive": True, "unique_in": ("user", "group")}),
    ("groupType", {"type": INTEGER}),
    ("member", {"reference": "user", "multi_valued": True, "case_insensitive": True}),
    ("managedBy", {"reference": "user", "case_insensitive": True}),
    ("whenCreated", READ_ONLY_TIME), ("whenChanged", READ_ONLY_TIME),
])

AD_OU = specs([
    DN,
    ("objectGUID", {"read_only": True, "case_insensitive": True}),
    ("ou", {"read_only": True}), ("description",),
])

LDAP_USER = specs([
    DN,
    ("entryUUID", {"read_only": True, "case_insensitive": True}),
    ("cn", {"required_on_create": True}), ("sn", {"required_on_create": True}),
    ("uid", {"case_insensitive": True, "unique_in": ("user",)}),
    ("mail", {"case_insensitive": True, "unique_in": ("user",)}),
    ("givenName",), ("displayName",), ("initials",), ("title",), ("employeeNumber",), ("employeeType",),
    ("departmentNumber",), ("o",), ("ou",), ("telephoneNumber",), ("mobile",), ("facsimileTelephoneNumber",),
    ("street",), ("l",), ("st",), ("postalCode",), ("description",), ("preferredLanguage",),
    ("roomNumber",), ("labeledURI",),
    ("manager", {"reference": "user", "case_insensitive": True}),
    ("createTimestamp", READ_ONLY_TIME), ("modifyTimestamp", READ_ONLY_TIME),
])

LDAP_GROUP = specs([
    DN,
    ("entryUUID", {"read_only": True, "case_insensitive": True}),
    ("cn", {"required_on_create": True}), ("description",), ("o",), ("ou",), ("businessCategory",),
    ("member", {"reference": "user", "multi_valued": True, "case_insensitive": True}),
    ("owner", {"reference": "user", "case_insensitive": True}),
    ("createTimestamp", READ_ONLY_TIME), ("modifyTimestamp", READ_ONLY_TIME),
])

LDAP_OU = specs([
    DN,
    ("entryUUID", {"read_only": True, "case_insensitive": True}),
    ("ou", {"required_on_create": True}), ("description",),
])

DN_REFERENCES = ("manager", "member", "managedBy", "owner")
BINARY = frozenset(["objectguid", "objectsid"])


class Dialect(object):
    """Active Directory or generic LDAP v3 (OpenLDAP)."""

    def __init__(self, kind):
        self.kind = kind
        self.ad = kind == "active_directory"
        self.anchor = "objectGUID" if self.ad else "entryUUID"
        if self.ad:
            self.schemas = {"user": AD_USER, "group": AD_GROUP, "organizational_unit": AD_OU}
            self.filters = {"user": "(&(objectCategory=person)(objectClass=user))", "group": "(objectClass=group)",
                            "organizational_unit": "(objectClass=organizationalUnit)"}
            self.object_classes = {"user": ["top", "person", "organizationalPerson", "user"],
                                   "group": ["top", "group"], "organizational_unit": ["top", "organizationalUnit"]}
        else:
            self.schemas = {"user": LDAP_USER, "group": LDAP_GROUP, "organizational_unit": LDAP_OU}
            self.filters = {"user": "(objectClass=inetOrgPerson)", "group": "(objectClass=groupOfNames)",
                            "organizational_unit": "(objectClass=organizationalUnit)"}
            self.object_classes = {"user": ["top", "person", "organizationalPerson", "inetOrgPerson"],
                                   "group": ["top", "groupOfNames"],
                                   "organizational_unit": ["top", "organizationalUnit"]}

    def label_attributes(self, object_type):
        if object_type == "user":
            return ["userPrincipalName", "displayName", "sAMAccountName", "dn"] if self.ad else \
                ["uid", "displayName", "cn", "dn"]
        if object_type == "group":
            return ["displayName", "cn", "dn"] if self.ad else ["cn", "dn"]
        return ["ou", "dn"]

    def ldap_attributes(self, object_type, names):
        """The LDAP attributes to request for engine attribute ``names`` (virtual ones mapped), anchor included."""
        schema = self.schemas[object_type]
        wanted = set([self.anchor])
        for name in names:
            if name == "dn" or name not in schema or schema[name].write_only:
                continue
            if name == "enabled":
                wanted.add("userAccountControl")
            elif name == "memberOfNames":
                wanted.add("memberOf")
            else:
                wanted.add(name)
        return sorted(wanted)

    def create_defaults(self, object_type):
        if self.ad and object_type == "user":
            return ("sAMAccountName",)
        if object_type == "group":
            return ("dn", "sAMAccountName") if self.ad else ("dn", "cn")   # from the name and the group base
        if object_type == "organizational_unit":
            return ("ou",)
        return ()

    def disable_attributes(self, object_type):
        # OpenLDAP has no standard "disabled" (ppolicy's pwdAccountLockedTime is optional): delete or set instead.
        return {"enabled": False} if self.ad and object_type == "user" else None


# -- values -------------------------------------------------------------------------------------------------------

def decode_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def generalized_time_to_iso(text):
    """``20250102103000.0Z`` (RFC 4517 GeneralizedTime) -> ``2025-01-02T10:30:00Z``."""
    match = re.match(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})", text or "")
    if not match:
        return text
    return "%s-%s-%sT%s:%s:%sZ" % match.groups()


def convert_entry(dialect, object_type, dn, raw, full_values, names):
    """Raw LDAP values -> {engine attribute: value} for ``names`` (plus the internal ``dn``). References stay DNs
    here (the connector maps them to ids). ``full_values(attribute)`` returns every value of a ranged attribute."""
    schema = dialect.schemas[object_type]
    lowered = dict((k.lower(), v) for k, v in raw.items())
    obj = {"dn": dn}
    for name in names:
        spec = schema.get(name)
        if spec is None or name == "dn" or spec.write_only:
            continue
        if name == "enabled":
            uac = _integer(lowered.get("useraccountcontrol"))
            obj[name] = None if uac is None else not (uac & UAC_ACCOUNTDISABLE)
            continue
        if name == "memberOfNames":
            obj[name] = sorted(rdn_value(decode_text(v)) for v in full_values("memberOf"))
            continue
        if name.lower() in BINARY:
            vals = lowered.get(name.lower()) or []
            obj[name] = guid_from_bytes(vals[0]) if vals and name.lower() == "objectguid" else None
            continue
        if spec.multi_valued:
            obj[name] = [decode_text(v) for v in full_values(name)]
            continue
        vals = lowered.get(name.lower()) or []
        if not vals:
            obj[name] = None
        elif spec.type == INTEGER:
            obj[name] = _integer(vals)
        elif spec.type == DATETIME:
            obj[name] = generalized_time_to_iso(decode_text(vals[0]))
        else:
            obj[name] = decode_text(vals[0])
    return obj


def anchor_of(dialect, raw):
    for key, vals in raw.items():
        if key.lower() == dialect.anchor.lower() and vals:
            return guid_from_bytes(vals[0]) if dialect.ad else decode_text(vals[0]).lower()
    return None


def _integer(vals):
    if not vals:
        return None
    value = vals[0] if isinstance(vals, (list, tuple)) else vals
    try:
        return int(decode_text(value))
    except (TypeError, ValueError):
        return None


def ldap_value(spec, value):
    """An engine value -> the LDAP string form (booleans TRUE/FALSE per RFC 4517, integers as text)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def sam_account_name(text, limit=SAM_ACCOUNT_NAME_MAX):
    """A pre-Windows 2000 logon name from a UPN prefix or a name: AD's forbidden characters removed, accents
    stripped, cut to ``limit`` characters (20 for users), no trailing dot."""
    from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import strip_accents
    name = _SAM_UNSAFE.sub("", strip_accents(text or ""))
    return name[:limit].rstrip(".") or None


def ad_password_value(password):
    """unicodePwd: the password in double quotes, UTF-16LE (MS-ADTS 3.1.1.3.1.5.2)."""
    return ('"%s"' % password).encode("utf-16-le")
