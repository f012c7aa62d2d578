"""Exchange Online recipients for the tenant emulator, and the cmdlets that read and write them.

Properties and parameters follow the exchange-ps reference on Microsoft Learn (Get-Recipient, Get-/Set-Mailbox,
New-/Set-/Get-/Remove-MailContact, Get-/Set-/Remove-MailUser, New-/Set-/Get-/Remove-DistributionGroup,
Get-/Add-/Remove-/Update-DistributionGroupMember, Get-DynamicDistributionGroup, Get-AcceptedDomain). Errors carry the
.NET exception class Exchange reports in `details[].message` ("ErrorId|Class|Text", REFERENCE.md); the texts are the
ones PowerShell prints for these exceptions ("The recipient ... is already a member of the group ...").

Mail contacts, mail users and (dynamic) distribution groups live here. Mailboxes belong to Entra users: a user the
tenant marks as licensed (a non-empty `assignedLicenses`) gets one once provisioning is done (`ready(user)`); what
Set-Mailbox changes is kept here, keyed by the user id.
"""
import re
import uuid

MAX_RESULT_SIZE = 1000
# The warning Exchange prints when -ResultSize is left at its default and more objects exist.
RESULT_SIZE_WARNING = ("By default, only the first 1000 items are returned. Use the ResultSize parameter to specify the "
                       "number of items returned. To return all items, specify \"-ResultSize Unlimited\".")
CUSTOM = tuple(f"CustomAttribute{n}" for n in range(1, 16))
EXTENSION = tuple(f"ExtensionCustomAttribute{n}" for n in range(1, 6))
COMMON_SET = {"Identity", "Name", "Alias", "DisplayName", "EmailAddresses", "HiddenFromAddressListsEnabled",
              *CUSTOM, *EXTENSION}
READ = {"Identity", "ResultSize", "Filter"}
_NAMESPACE = "Microsoft.Exchange"
EXCEPTIONS = {  # short name -> (full class name, error id)
    "ManagementObjectNotFoundException": (f"{_NAMESPACE}.Configuration.Tasks.ManagementObjectNotFoundException",
                                          "Ex6F9304"),
    "ProxyAddressExistsException": (f"{_NAMESPACE}.Data.Directory.ProxyAddressExistsException", "ExB4C8E1"),
    "ADObjectAlreadyExistsException": (f"{_NAMESPACE}.Data.Directory.ADObjectAlreadyExistsException", "Ex9A1D3F"),
    "MemberAlreadyExistsException": (f"{_NAMESPACE}.Management.Tasks.MemberAlreadyExistsException", "Ex5E2B77"),
    "MemberNotFoundException": (f"{_NAMESPACE}.Management.Tasks.MemberNotFoundException", "Ex3C90AA"),
    "ParameterBindingException": ("System.Management.Automation.ParameterBindingException", "Ex0B1F55"),
    "CommandNotFoundException": ("System.Management.Automation.CommandNotFoundException", "Ex0C2A66"),
    "DataValidationException": (f"{_NAMESPACE}.Data.DataValidationException", "Ex7D4E12"),
}


class CmdletError(Exception):
    """A cmdlet's error: HTTP status, error code and the exception's short name."""

    def __init__(self, exception, text, status=400, code="BadRequest"):
        super().__init__(text)
        self.exception, self.text, self.status, self.code = exception, text, status, code

    def detail(self):
        full, error_id = EXCEPTIONS[self.exception]
        return f"{error_id}|{full}|{self.text}"


def not_found(identity):
    return CmdletError("ManagementObjectNotFoundException", f"The operation couldn't be performed because object "
                       f"'{identity}' couldn't be found on 'EMULATORPR01DC001.PROD.OUTLOOK.COM'.", 404, "NotFound")


def _address_key(address):
    kind, _, value = str(address).partition(":")
    return f"{kind.lower()}:{value.lower()}" if value else f"smtp:{kind.lower()}"


class RecipientStore:
    def __init__(self, tenant_id, domain):
        self.tenant_id = tenant_id
        self.domain = domain
        self.objects = {}          # guid -> record (contacts, mail users, groups, dynamic groups)
        self.members = {}          # group guid -> [member guids]
        self.mailbox_changes = {}  # user id -> {property: value} set by Set-Mailbox
        self.addresses = {}        # address key -> owner guid (mailboxes are checked on the fly)
        self.names = {}            # lower-case Name -> guid

    # -- records ------------------------------------------------------------------------------------------------------
    def _base(self, kind, name, alias, display_name, primary, **extra):
        guid = str(uuid.uuid4())
        record = {"Guid": guid, "Identity": name, "Name": name, "Alias": alias, "DisplayName": display_name or name,
                  "PrimarySmtpAddress": primary, "EmailAddresses": [f"SMTP:{primary}"],
                  "ExternalDirectoryObjectId": str(uuid.uuid4()), "RecipientType": kind, "RecipientTypeDetails": kind,
                  "HiddenFromAddressListsEnabled": False, "DistinguishedName": f"CN={name},OU={self.domain}",
                  **{c: "" for c in CUSTOM}, **{e: [] for e in EXTENSION}}
        record.update(extra)
        return record

    def _alias(self, name):
        return re.sub(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]", "", name)[:64] or "recipient"

    def add(self, record, mailboxes=()):
        """Store a new recipient once its Name and every address are free (checked before anything is claimed)."""
        owner = self.names.get(record["Name"].lower())
        if owner:
            self._claim_name(record["Name"], record["Guid"])
        for address in record["EmailAddresses"]:
            self._claim_address(address, None, record["Name"], mailboxes)
        self.names[record["Name"].lower()] = record["Guid"]
        for address in record["EmailAddresses"]:
            self.addresses[_address_key(address)] = record["Guid"]
        self.objects[record["Guid"]] = record
        return record

    def _claim_name(self, name, guid):
        owner = self.names.get(name.lower())
        if owner and owner != guid:
            raise CmdletError("ADObjectAlreadyExistsException", f"The name \"{name}\" is already being used. "
                              "Please try another name.")
        self.names[name.lower()] = guid

    def _claim_address(self, address, guid, name, mailboxes=(), claim=True):
        key = _address_key(address)
        owner = self.addresses.get(key)
        if owner is None:
            owner = next((m["Guid"] for m in mailboxes if key in {_address_key(a) for a in m["EmailAddresses"]}), None)
        if owner and owner != guid:
            other = self.objects.get(owner, {}).get("Name") or next(
                (m["Name"] for m in mailboxes if m["Guid"] == owner), owner)
            raise CmdletError("ProxyAddressExistsException", f"The proxy address \"{address}\" is already being used "
                              f"by the proxy addresses or LegacyExchangeDN of \"{other}\". Please choose another proxy "
                              "address.")
        if guid is not None and claim:
            self.addresses[key] = guid

    def _release(self, record):
        self.names.pop(record["Name"].lower(), None)
        for address in record["EmailAddresses"]:
            if self.addresses.get(_address_key(address)) == record["Guid"]:
                del self.addresses[_address_key(address)]

    # -- mailboxes from the directory ---------------------------------------------------------------------------------
    def mailbox(self, user):
        nickname = user.get("mailNickname") or user["userPrincipalName"].split("@")[0]
        primary = user.get("mail") or user["userPrincipalName"]
        record = self._base("UserMailbox", nickname, nickname, user.get("displayName"), primary,
                            Guid=str(uuid.uuid5(uuid.NAMESPACE_URL, "mailbox:" + user["id"])),
                            ExternalDirectoryObjectId=user["id"], UserPrincipalName=user["userPrincipalName"])
        record["EmailAddresses"] = [f"SMTP:{primary}", f"smtp:{nickname}@{self.domain}"] \
            if primary.lower() != f"{nickname}@{self.domain}".lower() else [f"SMTP:{primary}"]
        record.update(self.mailbox_changes.get(user["id"], {}))
        return record

    # -- lookups ------------------------------------------------------------------------------------------------------
    def _of(self, kinds, mailboxes):
        out = [r for r in self.objects.values() if r["RecipientTypeDetails"] in kinds]
        if "UserMailbox" in kinds:
            out = mailboxes + out
        return out

    def find(self, identity, kinds, mailboxes):
        record = self.objects.get(str(identity).strip())     # the Guid: the common case, kept O(1)
        if record is not None and record["RecipientTypeDetails"] in kinds:
            return record
        wanted = str(identity).strip().lower()
        for record in self._of(kinds, mailboxes):
            keys = {record["Guid"].lower(), record["ExternalDirectoryObjectId"].lower(), record["Name"].lower(),
                    record["Alias"].lower(), record["PrimarySmtpAddress"].lower(),
                    str(record.get("UserPrincipalName") or "").lower(),
                    *(str(a).split(":", 1)[-1].lower() for a in record["EmailAddresses"])}
            if wanted in keys:
                return record
        raise not_found(identity)

    # -- Set-* --------------------------------------------------------------------------------------------------------
    def apply_set(self, record, params, mailboxes, allowed):
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise parameter_error(unknown[0])
        changes = {}
        for name, value in params.items():
            if name in ("Identity", "BypassSecurityGroupManagerCheck", "Confirm"):
                continue
            if name == "EmailAddresses":
                changes[name] = self._new_addresses(record, value)
            elif name in EXTENSION:
                changes[name] = _multi(record.get(name) or [], value)
            elif name == "ExternalEmailAddress":
                changes[name] = "SMTP:" + str(value).split(":", 1)[-1] if value else None
            elif name == "PrimarySmtpAddress":
                changes["EmailAddresses"] = self._new_addresses(record, {"Add": [f"SMTP:{value}"]})
            elif name == "Description":
                changes[name] = [value] if isinstance(value, str) and value else (value or [])
            elif name in CUSTOM:
                changes[name] = "" if value is None else str(value)
            else:
                changes[name] = value
        if "EmailAddresses" in changes:
            kept = [a for a in changes["EmailAddresses"] if a.startswith("SMTP:")]
            if len(kept) != 1:
                raise CmdletError("DataValidationException", "The e-mail address list must have exactly one primary "
                                  "SMTP address.")
            others = [m for m in mailboxes if m["Guid"] != record["Guid"]]
            for claim in (False, True):     # every address checked before any is claimed
                for address in changes["EmailAddresses"]:
                    self._claim_address(address, record["Guid"], record["Name"], others, claim)
            changes["PrimarySmtpAddress"] = kept[0][5:]
            stale = {_address_key(a) for a in record["EmailAddresses"]} - {_address_key(a)
                                                                         for a in changes["EmailAddresses"]}
            for key in stale:
                if self.addresses.get(key) == record["Guid"]:
                    del self.addresses[key]
        if "Name" in changes and changes["Name"] != record["Name"]:
            self._claim_name(changes["Name"], record["Guid"])
            self.names.pop(record["Name"].lower(), None)
            changes["Identity"] = changes["Name"]
        return changes

    def _new_addresses(self, record, value):
        current = list(record["EmailAddresses"])
        primary = next((a for a in current if a.startswith("SMTP:")), None)
        if isinstance(value, dict):
            lowered = {k.lower(): v for k, v in value.items()}
            adds = _as_list(lowered.get("add"))
            removes = {_address_key(a) for a in _as_list(lowered.get("remove"))}
            if primary and _address_key(primary) in removes:
                raise CmdletError("DataValidationException", f"The primary SMTP address \"{primary[5:]}\" can't be "
                                  "removed. Set another primary address first.")
            out = [a for a in current if _address_key(a) not in removes]
            for address in adds:
                address = address if ":" in address else f"smtp:{address}"
                if address.startswith("SMTP:"):  # a new primary demotes the old one (Learn: Set-MailContact)
                    out = ["smtp:" + a[5:] if a.startswith("SMTP:") else a for a in out]
                out = [a for a in out if _address_key(a) != _address_key(address)] + [address]
            return out
        return [a if ":" in a else f"smtp:{a}" for a in _as_list(value)]


def _multi(current, value):
    if isinstance(value, dict):
        lowered = {k.lower(): v for k, v in value.items()}
        removes = {str(v) for v in _as_list(lowered.get("remove"))}
        out = [v for v in current if v not in removes]
        return out + [v for v in _as_list(lowered.get("add")) if v not in out]
    return _as_list(value)


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def parameter_error(name):
    return CmdletError("ParameterBindingException", f"A parameter cannot be found that matches parameter name '{name}'.")


_FILTER_RE = re.compile(r"^\s*(\w+)\s+-(eq|ne|like)\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def opath_filter(text):
    """A predicate for the OPATH subset `Property -eq|-ne|-like 'value'` joined with -and (Learn: "Filterable
    properties for the Filter parameter")."""
    tests = []
    for part in re.split(r"\s+-and\s+", text.strip().strip("{}"), flags=re.IGNORECASE):
        match = _FILTER_RE.match(part.strip("() "))
        if not match:
            raise CmdletError("DataValidationException", f"Invalid filter syntax: \"{text}\".")
        prop, op, value = match.group(1), match.group(2).lower(), match.group(3).replace("''", "'")
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in value.split("*")) + "$", re.IGNORECASE)
        tests.append((prop, op, value, pattern))

    def keep(record):
        for prop, op, value, pattern in tests:
            actual = record.get(prop)
            actual = "" if actual is None else str(actual)
            hit = pattern.match(actual) is not None if op == "like" else actual.lower() == value.lower()
            if hit == (op == "ne"):
                return False
        return True
    return keep
