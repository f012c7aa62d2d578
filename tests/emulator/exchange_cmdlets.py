"""The cmdlets the emulated Exchange Online runs: `run(store, cmdlet, params, mailboxes)` -> (results, warnings).

Each cmdlet checks its parameters the way PowerShell binds them (an unknown one is a ParameterBindingException) and
answers with the objects the real cmdlet outputs (New-* and Get-* the object, Set-*/Add-*/Remove-* nothing).
"""
from exchange_recipients import (COMMON_SET, MAX_RESULT_SIZE, READ, RESULT_SIZE_WARNING, CmdletError, not_found,
                                 opath_filter, parameter_error)

CONTACT, MAIL_USER = "MailContact", "MailUser"
GROUP, DYNAMIC = "MailUniversalDistributionGroup", "DynamicDistributionGroup"
MAILBOX = "UserMailbox"
ALL = (MAILBOX, CONTACT, MAIL_USER, GROUP, DYNAMIC)
GROUP_SET = COMMON_SET | {"PrimarySmtpAddress", "Description", "MemberJoinRestriction", "MemberDepartRestriction",
                          "RequireSenderAuthenticationEnabled", "BypassSecurityGroupManagerCheck", "ManagedBy"}
NOUNS = {"Mailbox": (MAILBOX,), "MailContact": (CONTACT,), "MailUser": (MAIL_USER,), "DistributionGroup": (GROUP,),
         "DynamicDistributionGroup": (DYNAMIC,), "Recipient": ALL}
SETTABLE = {"Mailbox": COMMON_SET, "MailContact": COMMON_SET | {"ExternalEmailAddress", "PrimarySmtpAddress"},
            "MailUser": COMMON_SET | {"ExternalEmailAddress"}, "DistributionGroup": GROUP_SET}


def _check(params, allowed):
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise parameter_error(unknown[0])


def _required(params, *names):
    missing = [n for n in names if params.get(n) in (None, "", [])]
    if missing:
        raise CmdletError("ParameterBindingException", "Cannot process command because of one or more missing "
                          f"mandatory parameters: {' '.join(missing)}.")


def _result_size(params):
    size = params.get("ResultSize", MAX_RESULT_SIZE)
    if str(size).lower() == "unlimited":
        return None
    try:
        return max(0, int(size))
    except (TypeError, ValueError):
        raise CmdletError("ParameterBindingException", f"Cannot bind parameter 'ResultSize'. Cannot convert value "
                          f"\"{size}\" to type \"Microsoft.Exchange.Data.Unlimited\".") from None


def _get(store, kinds, params, mailboxes, extra=()):
    _check(params, READ | set(extra))
    if params.get("Identity"):
        return [store.find(params["Identity"], kinds, mailboxes)], []
    records = store._of(kinds, mailboxes)
    if params.get("RecipientTypeDetails"):
        wanted = {str(v).lower() for v in _list(params["RecipientTypeDetails"])}
        records = [r for r in records if r["RecipientTypeDetails"].lower() in wanted]
    if params.get("Filter"):
        records = list(filter(opath_filter(params["Filter"]), records))
    limit = _result_size(params)
    if limit is not None and len(records) > limit:
        return records[:limit], [RESULT_SIZE_WARNING]
    return records, []


def _set(store, noun, params, mailboxes):
    _check(params, SETTABLE[noun] | {"Confirm"})
    _required(params, "Identity")
    record = store.find(params["Identity"], NOUNS[noun], mailboxes)
    changes = store.apply_set(record, params, mailboxes, SETTABLE[noun] | {"Confirm"})
    if record["RecipientTypeDetails"] == MAILBOX:
        store.mailbox_changes.setdefault(record["ExternalDirectoryObjectId"], {}).update(changes)
    else:
        record.update(changes)
    return [], []


def _remove(store, noun, params, mailboxes):
    _check(params, {"Identity", "Confirm", "BypassSecurityGroupManagerCheck"})
    _required(params, "Identity")
    record = store.find(params["Identity"], NOUNS[noun], mailboxes)
    store._release(record)
    del store.objects[record["Guid"]]
    store.members.pop(record["Guid"], None)
    for members in store.members.values():
        if record["Guid"] in members:
            members.remove(record["Guid"])
    return [], []


def new_mail_contact(store, params, mailboxes):
    _check(params, {"Name", "ExternalEmailAddress", "Alias", "DisplayName", "PrimarySmtpAddress", "FirstName",
                    "LastName", "Initials"})
    _required(params, "Name", "ExternalEmailAddress")
    external = str(params["ExternalEmailAddress"]).split(":", 1)[-1]
    primary = params.get("PrimarySmtpAddress") or external
    record = store._base(CONTACT, params["Name"], params.get("Alias") or store._alias(params["Name"]),
                         params.get("DisplayName"), primary, ExternalEmailAddress=f"SMTP:{external}",
                         FirstName=params.get("FirstName") or "", LastName=params.get("LastName") or "")
    return [store.add(record, mailboxes)], []


def new_distribution_group(store, params, mailboxes):
    _check(params, {"Name", "DisplayName", "Alias", "PrimarySmtpAddress", "Members", "Type", "Description", "Notes",
                    "ManagedBy", "MemberJoinRestriction", "MemberDepartRestriction",
                    "RequireSenderAuthenticationEnabled"})
    _required(params, "Name")
    alias = params.get("Alias") or store._alias(params["Name"])
    primary = params.get("PrimarySmtpAddress") or f"{alias}@{store.domain}"
    description = params.get("Description")
    record = store._base(GROUP, params["Name"], alias, params.get("DisplayName"), primary,
                         Description=[description] if isinstance(description, str) and description else [],
                         MemberJoinRestriction=params.get("MemberJoinRestriction") or "Closed",
                         MemberDepartRestriction=params.get("MemberDepartRestriction") or "Closed",
                         RequireSenderAuthenticationEnabled=params.get("RequireSenderAuthenticationEnabled", True),
                         GroupType="Universal")
    members = [store.find(m, ALL, mailboxes)["Guid"] for m in _list(params.get("Members"))]
    store.add(record, mailboxes)
    store.members[record["Guid"]] = list(dict.fromkeys(members))
    return [record], []


def group_members(store, params, mailboxes):
    _check(params, {"Identity", "ResultSize"})
    group = store.find(params.get("Identity"), (GROUP,), mailboxes)
    everyone = {r["Guid"]: r for r in store._of(ALL, mailboxes)}
    records = [everyone[m] for m in store.members.get(group["Guid"], []) if m in everyone]
    limit = _result_size(params)
    if limit is not None and len(records) > limit:
        return records[:limit], [RESULT_SIZE_WARNING]
    return records, []


def add_member(store, params, mailboxes):
    _check(params, {"Identity", "Member", "BypassSecurityGroupManagerCheck", "Confirm"})
    _required(params, "Identity", "Member")
    group = store.find(params["Identity"], (GROUP,), mailboxes)
    member = store.find(params["Member"], ALL, mailboxes)
    members = store.members.setdefault(group["Guid"], [])
    if member["Guid"] in members:
        raise CmdletError("MemberAlreadyExistsException", f"The recipient \"{member['Name']}\" is already a member of "
                          f"the group \"{group['Name']}\".")
    members.append(member["Guid"])
    return [], []


def remove_member(store, params, mailboxes):
    _check(params, {"Identity", "Member", "BypassSecurityGroupManagerCheck", "Confirm"})
    _required(params, "Identity", "Member")
    group = store.find(params["Identity"], (GROUP,), mailboxes)
    member = store.find(params["Member"], ALL, mailboxes)
    members = store.members.setdefault(group["Guid"], [])
    if member["Guid"] not in members:
        raise CmdletError("MemberNotFoundException", f"The recipient \"{member['Name']}\" isn't a member of the "
                          f"group \"{group['Name']}\".")
    members.remove(member["Guid"])
    return [], []


def update_members(store, params, mailboxes):
    """Replaces the whole member list (Learn: Update-DistributionGroupMember)."""
    _check(params, {"Identity", "Members", "BypassSecurityGroupManagerCheck", "Confirm"})
    group = store.find(params.get("Identity"), (GROUP,), mailboxes)
    store.members[group["Guid"]] = [store.find(m, ALL, mailboxes)["Guid"] for m in _list(params.get("Members"))]
    return [], []


def new_mail_user(store, params, mailboxes):
    # The REST transport needs -Password as a SecureString encrypted with a Microsoft key (REFERENCE.md).
    raise CmdletError("ParameterBindingException", "Cannot process command because of one or more missing mandatory "
                      "parameters: Password.")


def accepted_domains(store, params, mailboxes):
    _check(params, {"Identity"})
    return [{"Name": store.domain, "DomainName": store.domain, "DomainType": "Authoritative", "Default": True,
             "Guid": store.tenant_id}], []


def _list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def run(store, cmdlet, params, mailboxes):
    """Run one cmdlet against the store; raise CmdletError as the cmdlet would fail."""
    verb, _, noun = cmdlet.partition("-")
    verb = verb.capitalize()
    key = f"{verb}-{noun}"
    special = {"New-MailContact": new_mail_contact, "New-DistributionGroup": new_distribution_group,
               "New-MailUser": new_mail_user, "Get-DistributionGroupMember": group_members,
               "Add-DistributionGroupMember": add_member, "Remove-DistributionGroupMember": remove_member,
               "Update-DistributionGroupMember": update_members, "Get-AcceptedDomain": accepted_domains}
    if key in special:
        return special[key](store, params, mailboxes)
    if verb == "Get" and noun in NOUNS:
        extra = ("RecipientTypeDetails",) if noun == "Recipient" else ()
        return _get(store, NOUNS[noun], params, mailboxes, extra)
    if verb == "Set" and noun in SETTABLE:
        return _set(store, noun, params, mailboxes)
    if verb == "Remove" and noun in ("MailContact", "MailUser", "DistributionGroup"):
        return _remove(store, noun, params, mailboxes)
    raise CmdletError("CommandNotFoundException", f"The term '{cmdlet}' is not recognized as a name of a cmdlet, "
                      "function, script file, or executable program.")


__all__ = ["run", "not_found"]
