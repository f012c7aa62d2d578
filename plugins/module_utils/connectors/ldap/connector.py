# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``active_directory`` and ``ldap`` connectors: users, groups and organizational units of Active Directory or
a generic LDAP v3 directory (OpenLDAP), as source or target of a sync workflow.

Ids are the anchors (objectGUID / entryUUID), so a renamed or moved object keeps its match. References (manager,
member) are ids in the engine and DNs on the wire. ``dn`` is an attribute like any other: a create puts the object
there, a changed value renames / moves it (modify DN). Multi-valued attributes are written by difference.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import ChangeResult, Connector, ReadResult
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap import schema as dialects
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.delta import DeltaReader
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.names import (
    DnError, and_filters, build_dn, canonical_dn, check_filter, escape_filter_value, parse_dn,
)
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.session import (
    LdapError, LdapSession, LdapUnavailable,
)
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.settings import search_of
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError

MEMBERS_PER_MODIFY = 500
_EXISTS = (20, 68)                        # attributeOrValueExists (OpenLDAP), entryAlreadyExists (AD)
_ABSENT = (16, 32)                        # noSuchAttribute, noSuchObject


class LdapConnector(Connector):
    kind = "ldap"

    def __init__(self, record, context=None, session=None):
        super(LdapConnector, self).__init__(record, context)
        self.dialect = dialects.Dialect(self.kind)
        secrets = self.context.get("auth_overrides") or {}
        unknown = sorted(set(secrets) - set(["bind_password"]))
        if unknown:
            raise ConfigError("connection_secrets.%s: an %s connection takes only bind_password, not %s"
                              % (self.name, self.kind, ", ".join(unknown)), option="connection_secrets")
        self._password = secrets.get("bind_password")
        self._session = session
        self._id_of = {}                  # canonical DN -> id
        self._dn_of = {}                  # id -> DN
        self._current = {}                # id -> object as read (for writes by difference)
        self.member_range_size = self.context.get("member_range_size")   # tests: force ranged retrieval
        self.deltas = DeltaReader(self)

    @property
    def session(self):
        if self._session is None:
            s = self.settings
            self._session = LdapSession(s["servers"], s["bind_dn"], self._password, tls=s.get("tls", "ldaps"),
                                        ca_path=s.get("ca_path"), validate_certs=s.get("validate_certs", True),
                                        timeout=s.get("timeout", 10), page_size=s.get("page_size"),
                                        label=self.name)
        return self._session

    # -- description ----------------------------------------------------------------------------------------
    def object_types(self):
        return ["user", "group", "organizational_unit"]

    def schema(self, object_type):
        self.check_object_type(object_type)
        return dict(self.dialect.schemas[object_type])

    def label_attributes(self, object_type):
        return self.dialect.label_attributes(object_type)

    def supports(self, feature):
        if feature == "disable":
            return self.dialect.ad
        return feature in ("password", "delta", "members")

    def disable_attributes(self, object_type):
        return self.dialect.disable_attributes(object_type)

    def create_defaults(self, object_type):
        return self.dialect.create_defaults(object_type)

    def prepare_create(self, object_type, attributes):
        attributes = dict(attributes)
        if not isinstance(attributes.get("groupType"), int):
            attributes.pop("groupType", None)     # the engine's security / microsoft365: AD makes security groups
        name = attributes.get("displayName") or attributes.get("cn")
        if object_type == "group":
            if not self.dialect.ad and "displayName" in attributes:
                attributes.setdefault("cn", attributes.pop("displayName"))
            if not attributes.get("dn") and name:
                base, _scope, _filter = search_of(self.settings, "group")
                attributes["dn"] = build_dn([[("CN" if self.dialect.ad else "cn", str(name))]] + parse_dn(base))
            if self.dialect.ad:
                attributes.setdefault("sAMAccountName", dialects.sam_account_name(name, limit=64))
        elif object_type == "user" and self.dialect.ad and not attributes.get("sAMAccountName"):
            source = str(attributes.get("userPrincipalName") or "").split("@", 1)[0] or name
            sam = dialects.sam_account_name(source)
            if sam:
                attributes["sAMAccountName"] = sam
        elif object_type == "organizational_unit" and attributes.get("dn") and not attributes.get("ou"):
            attributes["ou"] = parse_dn(attributes["dn"])[0][0][1]
        return attributes

    # -- reading --------------------------------------------------------------------------------------------
    def remember(self, oid, dn):
        self._dn_of[oid] = dn
        self._id_of[canonical_dn(dn)] = oid

    def search_filter(self, object_type, scope_filter=None):
        _base, _scope, configured = search_of(self.settings, object_type)
        return and_filters(self.dialect.filters[object_type], configured, scope_filter)

    def ldap_attributes(self, object_type, names):
        wanted = self.dialect.ldap_attributes(object_type, names)
        if self.member_range_size and "member" in wanted:
            wanted[wanted.index("member")] = "member;range=0-%d" % (int(self.member_range_size) - 1)
        return wanted

    def entries(self, object_type, names, base, scope, search_filter, controls=None):
        """Yield (id, object with DN references) for every entry the search returns."""
        attributes = self.ldap_attributes(object_type, names)
        session = self.session
        for dn, raw in session.search(base, scope, search_filter, attributes, controls=controls):
            oid = dialects.anchor_of(self.dialect, raw)
            if oid is None:
                continue

            def full_values(attribute, dn=dn, raw=raw):
                return session.full_values(dn, raw, attribute)
            obj = dialects.convert_entry(self.dialect, object_type, dn, raw, full_values, names)
            self.remember(oid, dn)
            yield oid, obj

    def ids_of_references(self, object_type, objects):
        """Reference attributes of freshly read ``objects`` hold DNs: map them to ids (in place). A DN outside
        everything read so far is looked up once; one that names nothing is dropped (AD keeps no dangling links)."""
        schema = self.dialect.schemas[object_type]
        references = [name for name, spec in schema.items() if spec.reference]
        for oid, obj in objects.items():
            for name in references:
                if name not in obj:
                    continue
                value = obj[name]
                if isinstance(value, list):
                    own = canonical_dn(obj.get("dn") or "")
                    obj[name] = sorted(filter(None, (self.id_for_dn(v) for v in value if canonical_dn(v) != own)))
                elif value:
                    obj[name] = self.id_for_dn(value)

    def id_for_dn(self, dn):
        key = canonical_dn(dn)
        oid = self._id_of.get(key)
        if oid is None:
            found_dn, raw = self.session.read_entry(dn, [self.dialect.anchor])
            oid = dialects.anchor_of(self.dialect, raw) if raw else None
            self._id_of[key] = oid
            if oid:
                self._dn_of.setdefault(oid, found_dn)
        return oid

    def read(self, object_type, attributes, scope_filter=None, delta=False):
        self.check_object_type(object_type)
        if scope_filter:
            try:
                scope_filter = check_filter(scope_filter, "source.filter")
            except ValueError as exc:
                raise ConfigError(str(exc), option="source.filter")
        names = sorted(set(a for a in attributes if a in self.dialect.schemas[object_type]) | set(["dn"]))
        if delta:
            result = self.deltas.read(object_type, names, scope_filter)
        else:
            base, scope, _configured = search_of(self.settings, object_type)
            objects = dict(self.entries(object_type, names, base, scope, self.search_filter(object_type, scope_filter)))
            self.ids_of_references(object_type, objects)
            result = ReadResult(objects, full=True, mode="full")
        self._current.update(result.objects)
        return result

    def commit_delta(self):
        self.deltas.commit()

    def taken_values(self, object_type, attribute, values):
        """Which of ``values`` some object already holds in ``attribute`` anywhere in the directory (the whole
        naming context, every object type the attribute must be unique in): for unique-value rules. Lower-cased."""
        spec = self.dialect.schemas[object_type].get(attribute)
        types = (spec.unique_in if spec is not None and spec.unique_in else (object_type,))
        classes = "(|%s)" % "".join(self.dialect.filters[t] for t in types if t in self.dialect.filters)
        taken = set()
        values = [v for v in values if v not in (None, "")]
        for start in range(0, len(values), 50):
            chunk = values[start:start + 50]
            wanted = "(|%s)" % "".join("(%s=%s)" % (attribute, escape_filter_value(v)) for v in chunk)
            for _dn, raw in self.session.search(self.naming_context(), "subtree", and_filters(classes, wanted),
                                                [attribute]):
                for key, vals in raw.items():
                    if key.lower() == attribute.lower():
                        taken.update(dialects.decode_text(v).lower() for v in vals)
        return taken

    def naming_context(self):
        """The directory partition holding the base DN (AD: defaultNamingContext), where uniqueness and moves
        are checked. Falls back to the base DN."""
        cached = getattr(self, "_naming_context", None)
        if cached is None:
            dse = self.session.root_dse(["namingContexts", "defaultNamingContext"])
            base = canonical_dn(self.settings["base_dn"])
            contexts = dse.get("defaultNamingContext", []) + dse.get("namingContexts", [])
            cached = next((c for c in contexts if c and (base == canonical_dn(c) or base.endswith(
                "," + canonical_dn(c)))), self.settings["base_dn"])
            self._naming_context = cached
        return cached

    # -- writing --------------------------------------------------------------------------------------------
    def apply(self, object_type, changes):
        self.check_object_type(object_type)
        results = []
        for change in changes:
            try:
                if change.op == "create":
                    results.append(self._create(object_type, change))
                elif change.op == "update":
                    results.append(self._update(object_type, change))
                elif change.op == "delete":
                    results.append(self._delete(change))
                else:
                    results.append(ChangeResult(change.key, False, error="unknown operation %s" % change.op))
            except LdapUnavailable:
                raise
            except (LdapError, DnError) as exc:
                results.append(ChangeResult(change.key, False, id=getattr(exc, "created_id", None) or change.id,
                                            error=getattr(exc, "msg", None) or str(exc)))
        return results

    def dn_for_id(self, oid):
        """Where an object is now: AD takes ``<GUID=...>`` as a DN (MS-ADTS 3.1.1.3.1.2.4), which survives renames
        of the object and its parents; elsewhere the DN read this run, else a search by entryUUID."""
        if self.dialect.ad:
            return "<GUID=%s>" % oid
        dn = self._dn_of.get(oid)
        if dn is None:
            found = list(self.session.search(self.naming_context(), "subtree",
                                             "(entryUUID=%s)" % escape_filter_value(oid), ["entryUUID"]))
            if not found:
                raise LdapError("no entry has the entryUUID %s any more" % oid, code=32)
            dn = found[0][0]
            self.remember(oid, dn)
        return dn

    def _reference_values(self, value):
        ids = value if isinstance(value, (list, tuple)) else [value]
        return [self.dn_for_id(i.get("id") if isinstance(i, dict) else i) for i in ids if i]

    def _entry_values(self, object_type, attributes):
        """Engine attributes -> LDAP attributes of a new entry (empty values left out)."""
        schema = self.dialect.schemas[object_type]
        out = {}
        for name, value in attributes.items():
            spec = schema.get(name)
            if name in ("dn", "enabled") or value in (None, "", []) or spec is None:
                continue
            if spec.reference:
                out[name] = self._reference_values(value)
            elif spec.multi_valued:
                out[name] = [dialects.ldap_value(spec, v) for v in value]
            else:
                out[name] = dialects.ldap_value(spec, value)
        return out

    def _create(self, object_type, change):
        attributes = dict(change.attributes)
        dn = attributes.get("dn")
        if not dn:
            return ChangeResult(change.key, False, error="no dn to create the object at (write a dn rule)")
        dn = build_dn(parse_dn(dn))
        entry = self._entry_values(object_type, attributes)
        ad_user = self.dialect.ad and object_type == "user"
        password = None
        if change.password and object_type == "user":
            if not self.session.encrypted:
                return ChangeResult(change.key, False, error="an initial password needs an encrypted connection "
                                    "(tls: ldaps or starttls); the user was not created")
            from ansible_collections.idsync.entra.plugins.module_utils.connectors.azure_ad import generate_password
            password = generate_password()
        if ad_user:
            enabled = attributes.get("enabled")
            enabled = True if enabled is None and password else bool(enabled)
            uac = int(attributes.get("userAccountControl") or dialects.UAC_NORMAL_ACCOUNT)
            entry["userAccountControl"] = str(uac & ~dialects.UAC_ACCOUNTDISABLE if enabled
                                              else uac | dialects.UAC_ACCOUNTDISABLE)
            if password:
                entry["unicodePwd"] = dialects.ad_password_value(password)
        if object_type == "group" and not self.dialect.ad:
            # groupOfNames needs a member (RFC 4519): the group's own DN holds the place, hidden on read.
            entry["member"] = list(entry.get("member") or []) + [dn]
        self._add_with_parents(dn, self.dialect.object_classes[object_type], entry)
        _dn, raw = self.session.read_entry(dn, [self.dialect.anchor])
        oid = dialects.anchor_of(self.dialect, raw or {})
        if oid is None:
            return ChangeResult(change.key, False, error="created %s but could not read its %s back"
                                % (dn, self.dialect.anchor))
        self.remember(oid, dn)
        try:
            if password and ad_user and change.options.get("force_change_password", True):
                self.session.modify(dn, {"pwdLastSet": [("MODIFY_REPLACE", ["0"])]},
                                    "Requiring a password change at next logon for %s" % dn)
            elif password and not self.dialect.ad:
                self.session.set_password_rfc3062(dn, password)
        except LdapError as exc:
            exc.created_id = oid
            raise
        return ChangeResult(change.key, True, id=oid)

    def _add_with_parents(self, dn, object_classes, entry):
        try:
            self.session.add(dn, object_classes, entry)
            return
        except LdapError as exc:
            if exc.code != 32:
                raise
            parent = build_dn(parse_dn(dn)[1:])
            if not self.settings.get("create_ous"):
                raise LdapError("Creating %s failed: its container %s does not exist (create it, or set create_ous: "
                                "true on the connection)" % (dn, parent), code=32)
        self.ensure_container(parent)
        self.session.add(dn, object_classes, entry)

    def ensure_container(self, dn):
        """Create the organizational units of ``dn`` that do not exist yet, top down (OU= RDNs only)."""
        rdns = parse_dn(dn)
        missing = []
        for depth in range(len(rdns)):            # walk up to the first entry that exists
            found, _raw = self.session.read_entry(build_dn(rdns[depth:]), ["1.1"])
            if found is not None:
                break
            missing.append(depth)
        for depth in reversed(missing):
            current = build_dn(rdns[depth:])
            attr_type, value = rdns[depth][0]
            if attr_type.lower() != "ou":
                raise LdapError("%s does not exist and only organizational units (OU=) are created" % current,
                                code=32)
            self.session.add(current, self.dialect.object_classes["organizational_unit"], {"ou": value})

    def _update(self, object_type, change):
        schema = self.dialect.schemas[object_type]
        if change.attributes.get("dn"):
            # first: the naming attribute (cn) may change with the DN, and only modify DN may change it
            self._move(change.id, change.attributes["dn"])
        dn = self.dn_for_id(change.id)
        current = self._current.get(change.id) or {}
        mods = {}
        for name, value in change.attributes.items():
            spec = schema.get(name)
            if name == "dn" or spec is None:
                continue
            if name == "enabled":
                mods["userAccountControl"] = [("MODIFY_REPLACE", [str(self._uac(dn, bool(value)))])]
            elif spec.reference and not spec.multi_valued:
                mods[name] = [("MODIFY_REPLACE", self._reference_values(value) if value else [])]
            elif spec.multi_valued and not spec.reference:
                mods.update(self._value_difference(dn, name, spec, current, value))
            else:
                mods[name] = [("MODIFY_REPLACE", [dialects.ldap_value(spec, value)] if value not in (None, "")
                               else [])]
        for name, delta in change.member_changes.items():
            self._change_members(dn, name, delta)
        if mods:
            self.session.modify(dn, mods)
        return ChangeResult(change.key, True, id=change.id)

    def _uac(self, dn, enabled):
        _found, raw = self.session.read_entry(dn, ["userAccountControl"])
        uac = dialects._integer((dict((k.lower(), v) for k, v in (raw or {}).items())).get("useraccountcontrol"))
        uac = dialects.UAC_NORMAL_ACCOUNT if uac is None else uac
        return uac & ~dialects.UAC_ACCOUNTDISABLE if enabled else uac | dialects.UAC_ACCOUNTDISABLE

    def _value_difference(self, dn, name, spec, current, value):
        """Add and delete single values of a multi-valued attribute, never replace all of them (RFC 4511 4.6)."""
        if name in current:
            have = list(current.get(name) or [])
        else:
            _found, raw = self.session.read_entry(dn, [name])
            have = [dialects.decode_text(v) for v in self.session.full_values(dn, raw or {}, name)]
        want = [dialects.ldap_value(spec, v) for v in (value or [])]
        fold = (lambda v: v.casefold()) if spec.case_insensitive else (lambda v: v)
        have_keys = set(fold(v) for v in have)
        want_keys = set(fold(v) for v in want)
        operations = []
        remove = [v for v in have if fold(v) not in want_keys]
        add = [v for v in want if fold(v) not in have_keys]
        if remove:
            operations.append(("MODIFY_DELETE", remove))
        if add:
            operations.append(("MODIFY_ADD", add))
        return {name: operations} if operations else {}

    def _change_members(self, dn, name, delta):
        add = self._reference_values(delta.get("add") or [])
        remove = self._reference_values(delta.get("remove") or [])
        for operation, values, benign in (("MODIFY_ADD", add, _EXISTS), ("MODIFY_DELETE", remove, _ABSENT)):
            for start in range(0, len(values), MEMBERS_PER_MODIFY):
                chunk = values[start:start + MEMBERS_PER_MODIFY]
                try:
                    self.session.modify(dn, {name: [(operation, chunk)]}, "Changing the members of %s" % dn)
                except LdapError as exc:
                    if exc.code not in benign + (65,):
                        raise
                    # one value already there (or gone) fails the whole modify: go value by value
                    for value in chunk:
                        self._change_one_member(dn, name, operation, value, benign)

    def _change_one_member(self, dn, name, operation, value, benign):
        try:
            self.session.modify(dn, {name: [(operation, [value])]}, "Changing the members of %s" % dn)
        except LdapError as exc:
            if exc.code in benign:
                return
            if exc.code == 65 and operation == "MODIFY_DELETE" and not self.dialect.ad:
                # the last member of a groupOfNames: its own DN takes the place
                own = self.session.read_entry(dn, ["1.1"])[0] or dn
                self.session.modify(dn, {name: [("MODIFY_ADD", [own]), ("MODIFY_DELETE", [value])]},
                                    "Removing the last member of %s" % dn)
                return
            raise

    def _move(self, oid, new_dn):
        """Rename and/or move an object to ``new_dn`` (modify DN, RFC 4511 4.9) when it is not there already."""
        found, _raw = self.session.read_entry(self.dn_for_id(oid), ["1.1"])
        if found is None:
            raise LdapError("the object %s no longer exists" % oid, code=32)
        if canonical_dn(found) == canonical_dn(new_dn):
            return                        # the engine compares DNs case-insensitively; so does the directory
        target = parse_dn(new_dn)
        new_rdn = build_dn(target[:1])
        new_parent = build_dn(target[1:])
        superior = new_parent if canonical_dn(new_parent) != canonical_dn(build_dn(parse_dn(found)[1:])) else None
        if superior and self.settings.get("create_ous"):
            self.ensure_container(superior)
        try:
            self.session.modify_dn(found, new_rdn, superior)
        except LdapError as exc:
            if exc.code == 32 and superior:
                raise LdapError("Moving %s failed: the container %s does not exist (create it, or set create_ous: "
                                "true on the connection)" % (found, superior), code=32)
            raise
        self.remember(oid, build_dn(target))
        if not self.dialect.ad:
            self._follow_rename(found, build_dn(target))

    def _follow_rename(self, old_dn, new_dn):
        """AD keeps DN references pointing at a renamed object itself; OpenLDAP only with the refint overlay. Where
        it does not, rewrite the member / manager / owner values that still name the old DN."""
        attributes = [a for a in dialects.DN_REFERENCES if a != "managedBy"]
        wanted = "(|%s)" % "".join("(%s=%s)" % (a, escape_filter_value(old_dn)) for a in attributes)
        for dn, raw in list(self.session.search(self.naming_context(), "subtree", wanted, attributes)):
            for attribute, values in raw.items():
                if any(canonical_dn(dialects.decode_text(v)) == canonical_dn(old_dn) for v in values):
                    self.session.modify(dn, {attribute: [("MODIFY_DELETE", [old_dn]), ("MODIFY_ADD", [new_dn])]},
                                        "Pointing %s of %s at the renamed %s" % (attribute, dn, new_dn))

    def _delete(self, change):
        try:
            self.session.delete(self.dn_for_id(change.id))
        except LdapError as exc:
            if exc.code != 32:
                raise                     # already gone: the desired state holds
        return ChangeResult(change.key, True, id=change.id)

    # -- housekeeping ---------------------------------------------------------------------------------------
    def stats(self):
        if self._session is None:
            return {}
        out = dict(self._session.stats)
        out.update(self.deltas.stats)
        if self._session.server_uri:
            out["server"] = self._session.server_uri
        return out

    def close(self):
        if self._session is not None:
            self._session.close()


class ActiveDirectoryConnector(LdapConnector):
    kind = "active_directory"
