# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One bound LDAP connection through ldap3: servers tried in order, LDAPS or StartTLS with certificate validation,
simple bind, paged searches (RFC 2696), ranged retrieval of large multi-valued attributes (AD), writes, and one
clear sentence for every failure. The password lives only in this object's memory; it is never logged."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import traceback

LDAP3_IMPORT_ERROR = None
try:
    import ssl
    import ldap3
    from ldap3.core import exceptions as ldap3_exceptions
    HAS_LDAP3 = True
except ImportError:  # pragma: no cover - reported by LdapSession with missing_required_lib wording
    HAS_LDAP3 = False
    LDAP3_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError, register_secret  # noqa: E402

PAGED_RESULTS = "1.2.840.113556.1.4.319"      # RFC 2696
SHOW_DELETED = "1.2.840.113556.1.4.417"       # MS-ADTS 3.1.1.3.4.1.14
DEFAULT_PAGE_SIZE = 500                        # below AD's MaxPageSize (1000)
_RANGE_RE = re.compile(r"^(?P<name>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.I)
# AD puts the Win32 error in the diagnostic message of a failed bind: "... data 52e, v4563".
_AD_BIND_DATA = {
    "525": "the bind account does not exist",
    "52e": "the directory rejected the bind DN or password (invalid credentials)",
    "530": "the bind account may not log on at this time",
    "531": "the bind account may not log on from this workstation",
    "532": "the bind account's password has expired",
    "533": "the bind account is disabled",
    "701": "the bind account has expired",
    "773": "the bind account must change its password first",
    "775": "the bind account is locked out",
}


class LdapError(IdsyncError):
    """An LDAP operation failed; ``msg`` is one sentence without secrets, ``code`` the LDAP result code."""

    def __init__(self, msg, code=None, kind="LdapError"):
        self.code = code
        super(LdapError, self).__init__(msg, {"code": kind, "ldap_result": code})


class LdapUnavailable(LdapError):
    """No server could be reached or the TLS handshake failed (the run stops)."""


def _entries(response):
    return len([e for e in response or [] if e.get("type") == "searchResEntry"])


def result_sentence(result, what):
    """``what`` failed: a sentence from an ldap3 result dict (code, description, diagnostic message)."""
    code = result.get("result")
    message = (result.get("message") or "").strip().rstrip("\x00")
    description = result.get("description") or "error"
    if code == 49:
        data = re.search(r"data ([0-9a-f]{3})", message)
        return _AD_BIND_DATA.get(data.group(1) if data else "52e", _AD_BIND_DATA["52e"])
    if code == 32:
        matched = result.get("matched")
        return "%s failed: no such entry%s" % (what, " (the nearest existing one is %s)" % matched if matched else "")
    if code == 50:
        text = "%s failed: the bind account lacks the right to do it (insufficient access rights)" % what
    elif code in (8, 13):
        text = "%s failed: the directory requires an encrypted connection (use tls: ldaps or starttls)" % what
    elif code == 53 and "0000052D" in message.upper():
        text = "%s failed: the password does not meet the domain's password policy" % what
    elif code == 68:
        text = "%s failed: an entry with that name already exists" % what
    else:
        text = "%s failed: %s (LDAP %s)" % (what, description, code)
    if message and not (code == 53 and "0000052D" in message.upper()):
        text += ": " + message.split("\n", 1)[0][:300]
    return text


def _tls_sentence(uri, error):
    text = str(error)
    if "doesn't match" in text or "hostname" in text.lower() or "match any name" in text:
        return "The TLS certificate of %s does not name that host (connect with the name in its certificate)" % uri
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ("The TLS certificate of %s is not trusted: give ca_path the CA that issued it (certificate "
                "validation is on by default)" % uri)
    if "WRONG_VERSION_NUMBER" in text or "wrong version" in text or "unknown protocol" in text.lower():
        return "%s does not speak TLS on that port (LDAPS is usually port 636; use tls: starttls on 389)" % uri
    return None


class LdapSession(object):
    """``servers``: URIs tried in order. ``tls``: ``ldaps``, ``starttls`` or ``none``. ``stats`` counts requests."""

    def __init__(self, servers, bind_dn, password, tls="ldaps", ca_path=None, validate_certs=True, timeout=10,
                 page_size=DEFAULT_PAGE_SIZE, label="LDAP"):
        if not HAS_LDAP3:
            raise IdsyncError("The ldap and active_directory connectors need the Python library ldap3 "
                              "(pip install ldap3) on the host that runs the module")
        self.servers = list(servers)
        self.bind_dn = bind_dn
        self._password = password
        register_secret(password)         # scrubbed from any message, should a library ever echo it
        self.tls = tls
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.page_size = page_size or DEFAULT_PAGE_SIZE
        self.label = label
        self.conn = None
        self.server_uri = None
        self.stats = {"searches": 0, "pages": 0, "entries": 0, "writes": 0}

    # -- connecting -------------------------------------------------------------------------------------------
    def _tls_config(self):
        if self.tls == "none":
            return None
        kwargs = {"validate": ssl.CERT_REQUIRED if self.validate_certs else ssl.CERT_NONE,
                  "version": ssl.PROTOCOL_TLS_CLIENT}
        if self.ca_path:
            import os
            if os.path.isdir(self.ca_path):
                kwargs["ca_certs_path"] = self.ca_path
            else:
                kwargs["ca_certs_file"] = self.ca_path
        return ldap3.Tls(**kwargs)

    def open(self):
        """Connect and bind to the first server that answers; raises LdapUnavailable / LdapError."""
        if self.conn is not None:
            return self.conn
        if not self._password:
            raise LdapError("Connection %s: no bind password was given (pass it each run, e.g. connection_secrets: "
                            "{<connection>: {bind_password: ...}}; the store never keeps it)" % self.label,
                            kind="MissingPassword")
        problems = []
        for uri in self.servers:
            use_ssl = self.tls == "ldaps"
            server = ldap3.Server(uri, use_ssl=use_ssl, tls=self._tls_config(), get_info=ldap3.NONE,
                                  connect_timeout=self.timeout)
            conn = ldap3.Connection(server, user=self.bind_dn, password=self._password, auto_bind=ldap3.AUTO_BIND_NONE,
                                    raise_exceptions=False, receive_timeout=max(30, self.timeout * 6),
                                    check_names=False, return_empty_attributes=False, read_only=False,
                                    auto_referrals=False, auto_range=False)   # ranges: full_values(), counted
            try:
                conn.open(read_server_info=False)
                if self.tls == "starttls" and not conn.start_tls(read_server_info=False):
                    raise LdapUnavailable("StartTLS with %s failed: %s" % (uri, conn.result.get("description")))
            except ldap3_exceptions.LDAPException as exc:
                sentence = _tls_sentence(uri, exc)
                if sentence:
                    raise LdapUnavailable(sentence, kind="TlsError")
                problems.append("%s: %s" % (uri, _socket_reason(exc)))
                continue
            except ssl.SSLError as exc:
                raise LdapUnavailable(_tls_sentence(uri, exc) or "TLS with %s failed: %s" % (uri, exc),
                                      kind="TlsError")
            if not conn.bind():
                result = dict(conn.result)
                conn.unbind()
                code = result.get("result")
                if code == 49:
                    raise LdapError("Bind to %s as %s failed: %s" % (
                        uri, self.bind_dn, result_sentence(result, "bind")), code=49, kind="InvalidCredentials")
                if code in (8, 13):
                    raise LdapError("Bind to %s failed: the directory refuses a simple bind without TLS (use tls: "
                                    "ldaps or starttls)" % uri, code=code, kind="StrongerAuthRequired")
                raise LdapError("Bind to %s as %s failed: %s" % (uri, self.bind_dn, result_sentence(result, "bind")),
                                code=code)
            self.conn = conn
            self.server_uri = uri
            return conn
        raise LdapUnavailable("Connection %s: no directory server answered (%s)" % (self.label, "; ".join(problems)),
                              kind="Unreachable")

    def close(self):
        if self.conn is not None:
            try:
                self.conn.unbind()
            except Exception:  # pylint: disable=broad-except
                pass
            self.conn = None

    @property
    def encrypted(self):
        return self.tls in ("ldaps", "starttls")

    # -- reading ----------------------------------------------------------------------------------------------
    def search(self, base, scope, search_filter, attributes, controls=None, paged=True):
        """Yield (dn, raw attributes {name: [bytes]}) of every entry; pages through large results. Referrals
        (AD's DomainDnsZones) are skipped. A missing base raises LdapError with code 32."""
        conn = self.open()
        ldap_scope = {"base": ldap3.BASE, "one": ldap3.LEVEL, "subtree": ldap3.SUBTREE}[scope]
        cookie = None
        entries_before = self.stats["entries"]
        self.stats["searches"] += 1
        while True:
            kwargs = {}
            if paged and scope != "base":
                kwargs["paged_size"] = self.page_size
                kwargs["paged_cookie"] = cookie
            ok = conn.search(base, search_filter, search_scope=ldap_scope, attributes=list(attributes) or ["1.1"],
                             controls=controls, **kwargs)
            self.stats["pages"] += 1
            result = conn.result
            code = result.get("result")
            if code == 4 and scope != "base":
                # The server's size limit also bounds paged searches (OpenLDAP's default is 500 entries for any
                # account but the rootdn: https://openldap.org/doc/admin24/limits.html). A cut list would make
                # everyone after the cut look gone, so it is an error, never data.
                raise LdapError(
                    "Searching %s for %s stopped at the directory's size limit after %d entries: the list would be "
                    "incomplete, so nothing is read from it. Let the bind account %s read every entry (OpenLDAP: "
                    "limits dn.exact=\"%s\" size=unlimited; Active Directory: the MaxResultSetSize LDAP policy), or "
                    "narrow the search base" % (base, search_filter,
                                                self.stats["entries"] - entries_before + _entries(conn.response),
                                                self.bind_dn, self.bind_dn), code=4, kind="SizeLimitExceeded")
            if not ok and code not in (0, 4):   # 4 on a base search: the one entry is there
                if code == 32 and scope == "base":
                    return
                raise LdapError(result_sentence(result, "Searching %s for %s" % (base, search_filter)), code=code)
            for entry in conn.response or []:
                if entry.get("type") != "searchResEntry":
                    continue
                self.stats["entries"] += 1
                yield entry["dn"], entry.get("raw_attributes") or {}
            cookie = None
            if paged and scope != "base":
                control = (result.get("controls") or {}).get(PAGED_RESULTS) or {}
                cookie = (control.get("value") or {}).get("cookie")
            if not cookie:
                return

    def read_entry(self, dn, attributes, controls=None):
        for found_dn, raw in self.search(dn, "base", "(objectClass=*)", attributes, controls=controls, paged=False):
            return found_dn, raw
        return None, None

    def full_values(self, dn, raw, attribute):
        """All values of ``attribute`` of an entry, following AD's ranged retrieval (``member;range=0-1499``,
        MS-ADTS 3.1.1.3.1.3.3) when the server cut the list."""
        values = []
        ranged = None
        for name, vals in raw.items():
            if name.lower() == attribute.lower():
                return list(vals)
            match = _RANGE_RE.match(name)
            if match and match.group("name").lower() == attribute.lower():
                ranged = (match, vals)
        if ranged is None:
            return values
        match, vals = ranged
        values.extend(vals)
        while match.group("high") != "*":
            low = int(match.group("high")) + 1
            found_dn, more = self.read_entry(dn, ["%s;range=%d-*" % (attribute, low)])
            match = None
            for name, vals in (more or {}).items():
                candidate = _RANGE_RE.match(name)
                if candidate and candidate.group("name").lower() == attribute.lower():
                    match = candidate
                    values.extend(vals)
            if match is None:
                # A member list cut short would read as members removed: fail rather than take access away.
                raise LdapError("Reading %s of %s stopped at value %d: the server did not return the next range (the "
                                "entry changed or went away while it was read); run again" % (attribute, dn, low),
                                kind="IncompleteRange")
        return values

    def root_dse(self, attributes):
        dn, raw = self.read_entry("", attributes)
        return dict((k, [_text(v) for v in vals]) for k, vals in (raw or {}).items())

    # -- writing ----------------------------------------------------------------------------------------------
    def _check(self, ok, what):
        self.stats["writes"] += 1
        if not ok:
            result = self.conn.result
            raise LdapError(result_sentence(result, what), code=result.get("result"))

    def add(self, dn, object_classes, attributes):
        conn = self.open()
        self._check(conn.add(dn, list(object_classes), attributes), "Creating %s" % dn)

    def modify(self, dn, changes, what=None):
        """``changes``: {attribute: [(ldap3.MODIFY_ADD|DELETE|REPLACE, [values])]}."""
        conn = self.open()
        self._check(conn.modify(dn, changes), what or "Updating %s" % dn)

    def modify_dn(self, dn, new_rdn, new_superior=None):
        conn = self.open()
        self._check(conn.modify_dn(dn, new_rdn, delete_old_dn=True, new_superior=new_superior),
                    "Renaming %s" % dn)

    def delete(self, dn):
        conn = self.open()
        self._check(conn.delete(dn), "Deleting %s" % dn)

    def set_password_rfc3062(self, dn, password):
        """RFC 3062 Password Modify: the server hashes and stores it (OpenLDAP)."""
        conn = self.open()
        ok = conn.extend.standard.modify_password(user=dn, new_password=password)
        self._check(bool(ok), "Setting the initial password of %s" % dn)


def _socket_reason(exc):
    text = str(exc)
    if "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused"
    if "timed out" in text:
        return "timed out"
    if "Name or service not known" in text or "Errno -2" in text:
        return "unknown host name"
    return text.split("\n", 1)[0][:200]


def _text(value):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value
