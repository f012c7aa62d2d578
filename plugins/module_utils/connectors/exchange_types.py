# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Exchange Online object types of the ``microsoft_365`` connector: their attributes and the cmdlets behind them.

Attribute names are the cmdlets' parameter and property names (``CustomAttribute1``, ``HiddenFromAddressListsEnabled``)
and, as in PowerShell, their case does not matter. Parameters: Microsoft Learn, exchange-ps reference pages of
Get-/Set-Mailbox, New-/Set-/Get-/Remove-MailContact, Get-/Set-/Remove-MailUser, New-/Set-/Get-/Remove-
DistributionGroup, Get-/Add-/Remove-DistributionGroupMember, Get-DynamicDistributionGroup and Get-Recipient.

Two attributes are shaped so that a rule can state them and a re-run compares equal:

- ``EmailAddresses`` holds the proxy addresses *besides the primary SMTP address* (that one is ``PrimarySmtpAddress``
  and is never removed), each with its type prefix as Exchange shows it (``smtp:``, ``X500:``...); the connector
  writes the difference with ``@{Add=...; Remove=...}``.
- ``ExternalEmailAddress`` is read without the ``SMTP:`` prefix Exchange puts in front of it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import BOOLEAN, AttributeSpec

CUSTOM_ATTRIBUTES = tuple("CustomAttribute%d" % n for n in range(1, 16))
# ExtensionCustomAttribute1-5 are multi-valued in Exchange (Learn: Set-MailContact -ExtensionCustomAttribute1).
EXTENSION_ATTRIBUTES = tuple("ExtensionCustomAttribute%d" % n for n in range(1, 6))


class ObjectType(object):
    """One object type: its schema, cmdlets and what the connector may do with it."""

    def __init__(self, name, noun, specs, operations, new_parameters=(), members=False, labels=None,
                 list_parameters=None):
        self.name = name
        self.noun = noun                      # MailContact -> Get-MailContact, Set-MailContact...
        self.schema = CaseInsensitiveSchema((s.name, s) for s in specs)
        self.operations = frozenset(operations)
        self.new_parameters = frozenset(new_parameters)   # what New-<noun> takes; the rest goes to Set-<noun>
        self.members = members
        self.labels = labels or ["DisplayName", "Name", "PrimarySmtpAddress"]
        self.list_parameters = dict(list_parameters or {})

    def cmdlet(self, verb):
        return "%s-%s" % (verb, self.noun)

    def can(self, operation):
        return operation in self.operations


class CaseInsensitiveSchema(dict):
    """Canonical names as keys; ``get``/``in`` also accept any letter case, as PowerShell parameter names do."""

    def __init__(self, items):
        super(CaseInsensitiveSchema, self).__init__(items)
        self._lower = dict((k.lower(), k) for k in self)

    def canonical(self, name):
        return self._lower.get(str(name).lower()) if isinstance(name, str) else None

    def get(self, name, default=None):
        key = self.canonical(name)
        return dict.get(self, key) if key is not None else default

    def __contains__(self, name):
        return self.canonical(name) is not None


def _spec(name, **kwargs):
    return AttributeSpec(name, **kwargs)


def _recipient_specs(writable=True, primary_writable=False):
    """Attributes every mail recipient has."""
    ro = not writable
    specs = [
        _spec("Guid", read_only=True, case_insensitive=True),
        _spec("ExternalDirectoryObjectId", read_only=True, case_insensitive=True),
        _spec("RecipientTypeDetails", read_only=True),
        _spec("Name", read_only=ro),
        _spec("Alias", read_only=ro),
        _spec("DisplayName", read_only=ro),
        _spec("PrimarySmtpAddress", read_only=not primary_writable, case_insensitive=True),
        _spec("EmailAddresses", multi_valued=True, case_insensitive=True, read_only=ro),
        _spec("HiddenFromAddressListsEnabled", type=BOOLEAN, read_only=ro),
    ]
    specs += [_spec(n, read_only=ro) for n in CUSTOM_ATTRIBUTES]
    specs += [_spec(n, multi_valued=True, read_only=ro) for n in EXTENSION_ATTRIBUTES]
    return specs


MAILBOX = ObjectType(
    "mailbox", "Mailbox",
    _recipient_specs() + [_spec("UserPrincipalName", read_only=True, case_insensitive=True)],
    operations=("read", "update"))

MAIL_CONTACT = ObjectType(
    "mail_contact", "MailContact",
    _recipient_specs(primary_writable=True)
    + [_spec("ExternalEmailAddress", required_on_create=True, case_insensitive=True)],
    operations=("read", "create", "update", "delete"),
    new_parameters=("Name", "ExternalEmailAddress", "Alias", "DisplayName", "PrimarySmtpAddress"))
MAIL_CONTACT.schema["Name"].required_on_create = True

MAIL_USER = ObjectType(
    "mail_user", "MailUser",
    _recipient_specs() + [_spec("ExternalEmailAddress", case_insensitive=True),
                          _spec("UserPrincipalName", read_only=True, case_insensitive=True)],
    operations=("read", "update", "delete"))

DISTRIBUTION_GROUP = ObjectType(
    "distribution_group", "DistributionGroup",
    _recipient_specs(primary_writable=True) + [
        _spec("Description"),
        _spec("MemberJoinRestriction"), _spec("MemberDepartRestriction"),
        _spec("RequireSenderAuthenticationEnabled", type=BOOLEAN),
        _spec("members", reference="recipient", multi_valued=True, case_insensitive=True),
    ],
    operations=("read", "create", "update", "delete"),
    new_parameters=("Name", "DisplayName", "Alias", "PrimarySmtpAddress", "Description", "MemberJoinRestriction",
                    "MemberDepartRestriction", "RequireSenderAuthenticationEnabled", "members"),
    members=True)
DISTRIBUTION_GROUP.schema["Name"].required_on_create = True

DYNAMIC_DISTRIBUTION_GROUP = ObjectType(
    "dynamic_distribution_group", "DynamicDistributionGroup",
    _recipient_specs(writable=False) + [_spec("RecipientFilter", read_only=True)],
    operations=("read",))

RECIPIENT = ObjectType(
    "recipient", "Recipient",
    _recipient_specs(writable=False) + [_spec("RecipientType", read_only=True),
                                        _spec("UserPrincipalName", read_only=True, case_insensitive=True)],
    operations=("read",))

OBJECT_TYPES = dict((t.name, t) for t in (MAILBOX, MAIL_CONTACT, MAIL_USER, DISTRIBUTION_GROUP,
                                          DYNAMIC_DISTRIBUTION_GROUP, RECIPIENT))


# -- values between Exchange and the engine ------------------------------------------------------------------------

def split_addresses(addresses):
    """(primary SMTP address without prefix or None, [the other proxy addresses with their prefixes])."""
    primary, others = None, []
    for address in addresses or []:
        text = str(address)
        if text.startswith("SMTP:"):            # upper-case SMTP: marks the primary (Learn: Set-MailContact)
            primary = text[5:]
        else:
            others.append(text)
    return primary, others


def read_value(name, raw):
    """The engine's view of property ``name`` (canonical) as a Get-* cmdlet returned it."""
    if name == "EmailAddresses":
        return split_addresses(raw)[1]
    if name == "ExternalEmailAddress" and isinstance(raw, str) and raw[:5].lower() == "smtp:":
        return raw[5:]
    if name == "Description" and isinstance(raw, list):
        return "\n".join(str(v) for v in raw) or None
    return raw


def address_difference(before, after, primary):
    """``{"Add": [...], "Remove": [...]}`` turning the secondary addresses ``before`` into ``after`` (compared without
    letter case); the primary address is never removed, nor added again as a secondary."""
    def key(text):
        return str(text).lower()
    have = dict((key(a), a) for a in before or [])
    want = dict((key(a), a) for a in after or [])
    primary_key = ("smtp:" + primary).lower() if primary else None
    add = [a for k, a in want.items() if k not in have and k != primary_key]
    remove = [a for k, a in have.items() if k not in want and k != primary_key]
    out = {}
    if add:
        out["Add"] = add
    if remove:
        out["Remove"] = remove
    return out


def bad_addresses(values):
    """The values that lack a proxy address type prefix (``smtp:alias@contoso.com``)."""
    return [v for v in values or [] if ":" not in str(v) or str(v).split(":", 1)[0] == ""]
