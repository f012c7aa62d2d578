"""Real directory servers for the tests: a Samba Active Directory domain controller and an OpenLDAP slapd, each on
loopback, with TLS certificates from a test CA made here with ``cryptography``. No LDAP fake anywhere.

Samba has no LDAP port option, so each DC gets its own loopback address (127.0.0.x, added to ``lo`` when missing):
one DC per pytest worker, provisioned once per session (~10 s); each test works in its own OU.
"""
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import ldap3

ROOT = Path(__file__).resolve().parents[2]
# samba-dsdb-modules and samba-vfs-modules: only Recommends of samba, but provisioning a DC fails without them.
PACKAGES = ["samba", "samba-dsdb-modules", "samba-vfs-modules", "samba-ad-provision", "slapd", "ldap-utils", "iproute2"]
AD_REALM = "IDSYNC.TEST"
AD_DOMAIN = "IDSYNC"
AD_BASE = "DC=idsync,DC=test"
AD_ADMIN = "Administrator@idsync.test"
AD_PASSWORD = "Adm1n!Passw0rd-test"
LDAP_BASE = "dc=example,dc=org"
LDAP_ADMIN = "cn=admin,dc=example,dc=org"
LDAP_PASSWORD = "ldap-admin-secret"
# An ordinary account under a size limit of 3 entries, as OpenLDAP limits every account but the rootdn (500 by default).
LDAP_LIMITED = "cn=limited reader,dc=example,dc=org"
LDAP_LIMITED_SIZE = 3


class ServerStartError(RuntimeError):
    pass


def ensure_packages():
    proc = subprocess.run([str(ROOT / "tools" / "ensure_system_packages.sh")] + PACKAGES, capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise ServerStartError("could not install %s: %s" % (" ".join(PACKAGES), proc.stderr.strip()))


def _wait_port(host, port, process, log, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError("the server exited with %s:\n%s" % (process.returncode, _tail(log)))
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise ServerStartError("nothing listens on %s:%d after %ds:\n%s" % (host, port, timeout, _tail(log)))


def _tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process):
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def loopback_address(index):
    """127.0.0.<30+index> on ``lo`` (Samba binds only to configured addresses); True when this call added it."""
    address = "127.0.0.%d" % (30 + index)
    shown = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
    if (" %s/" % address) in shown:
        return address, False
    proc = subprocess.run(["ip", "addr", "add", "%s/8" % address, "dev", "lo"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ServerStartError("cannot add %s to lo for the Samba DC (needs root): %s" % (address, proc.stderr.strip()))
    return address, True


class SambaDC:
    """A provisioned Samba AD DC serving LDAP and LDAPS on its own loopback address."""

    def __init__(self, workdir, ca, index=0):
        self.dir = Path(workdir)
        self.ca = ca
        self.address, self.added_address = loopback_address(index)
        self.process = None
        self.log = self.dir / "samba.log"

    @property
    def ldaps(self):
        return "ldaps://%s:636" % self.address

    @property
    def ldap(self):
        return "ldap://%s:389" % self.address

    def provision(self):
        target = self.dir / "dc"
        if target.exists():
            shutil.rmtree(target)
        proc = subprocess.run(
            ["samba-tool", "domain", "provision", "--realm=" + AD_REALM, "--domain=" + AD_DOMAIN, "--server-role=dc",
             "--dns-backend=NONE", "--use-rfc2307", "--adminpass=" + AD_PASSWORD, "--targetdir=" + str(target),
             "--option=interfaces=" + self.address, "--option=bind interfaces only=yes"],
            capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise ServerStartError("samba-tool domain provision failed: %s" % (proc.stderr or proc.stdout)[-2000:])
        cert, key = self.ca.issue("dc", ip=self.address, names=["dc.idsync.test"])
        conf = target / "etc" / "smb.conf"
        text = conf.read_text()
        extra = ("\tserver services = ldap\n\tpid directory = {d}/run\n\tlog file = {d}/log.%m\n"
                 "\ttls enabled = yes\n\ttls keyfile = {key}\n\ttls certfile = {cert}\n\ttls cafile = {ca}\n"
                 "\tldap server require strong auth = yes\n"
                 # test DC only: no fsync per transaction (what Samba's own selftest does)
                 "\tldb:nosync = true\n").format(d=target, key=key, cert=cert, ca=self.ca.ca_path)
        lines = [l for l in text.splitlines() if not l.strip().startswith(("server services", "log file"))]
        at = lines.index("[global]") + 1
        conf.write_text("\n".join(lines[:at] + extra.rstrip("\n").split("\n") + lines[at:]) + "\n")
        (target / "run").mkdir(exist_ok=True)
        self.conf = conf

    def start(self):
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(["samba", "-i", "-M", "single", "-s", str(self.conf)], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(self.address, 636, self.process, self.log)
        deadline = time.monotonic() + 60
        while True:                               # the port opens before the directory answers binds
            try:
                self.admin_connection().unbind()
                return
            except Exception as exc:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise ServerStartError("the Samba DC does not accept binds: %s\n%s" % (exc, _tail(self.log)))
                time.sleep(0.3)

    def stop(self):
        _stop(self.process)
        if self.added_address:
            subprocess.run(["ip", "addr", "del", "%s/8" % self.address, "dev", "lo"], capture_output=True)
            self.added_address = False

    def admin_connection(self):
        import ssl
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca.ca_path))
        server = ldap3.Server(self.ldaps, use_ssl=True, tls=tls, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(server, user=AD_ADMIN, password=AD_PASSWORD, auto_bind=True, raise_exceptions=True)


class OpenLdap:
    """slapd with a config file and an MDB database of its own, LDAP + LDAPS on free loopback ports, syncprov on
    (for contextCSN)."""

    def __init__(self, workdir, ca):
        self.dir = Path(workdir)
        self.ca = ca
        self.address = "127.0.0.1"
        self.process = None
        self.log = self.dir / "slapd.log"
        self.port = _free_port()
        self.tls_port = _free_port()

    @property
    def ldaps(self):
        return "ldaps://%s:%d" % (self.address, self.tls_port)

    @property
    def ldap(self):
        return "ldap://%s:%d" % (self.address, self.port)

    def start(self):
        db = self.dir / "db"
        if db.exists():
            shutil.rmtree(db)
        db.mkdir(parents=True)
        cert, key = self.ca.issue("slapd", ip=self.address, names=["localhost"])
        conf = self.dir / "slapd.conf"
        conf.write_text("\n".join([
            "include /etc/ldap/schema/core.schema",
            "include /etc/ldap/schema/cosine.schema",
            "include /etc/ldap/schema/inetorgperson.schema",
            "include /etc/ldap/schema/nis.schema",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "moduleload syncprov",
            "pidfile %s/slapd.pid" % self.dir,
            "TLSCACertificateFile %s" % self.ca.ca_path,
            "TLSCertificateFile %s" % cert,
            "TLSCertificateKeyFile %s" % key,
            "database mdb",
            "maxsize 1073741824",
            'suffix "%s"' % LDAP_BASE,
            'rootdn "%s"' % LDAP_ADMIN,
            "rootpw %s" % LDAP_PASSWORD,
            "directory %s" % db,
            "index objectClass,entryUUID,entryCSN eq",
            'limits dn.exact="%s" size=%d' % (LDAP_LIMITED, LDAP_LIMITED_SIZE),
            "overlay syncprov",
            "",
        ]))
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["slapd", "-d", "0", "-f", str(conf), "-h", "%s/ %s/" % (self.ldap, self.ldaps)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(self.address, self.tls_port, self.process, self.log)
        conn = self.admin_connection()
        conn.add(LDAP_BASE, ["top", "dcObject", "organization"], {"o": "Example", "dc": "example"})
        conn.add(LDAP_LIMITED, ["top", "person"], {"sn": "reader", "userPassword": LDAP_PASSWORD})
        conn.unbind()

    def stop(self):
        _stop(self.process)

    def admin_connection(self):
        import ssl
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca.ca_path))
        server = ldap3.Server(self.ldaps, use_ssl=True, tls=tls, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(server, user=LDAP_ADMIN, password=LDAP_PASSWORD, auto_bind=True, raise_exceptions=True)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Directory:
    """One test's corner of a directory: a fresh OU (AD) / ou (OpenLDAP) with People and Groups under it."""

    def __init__(self, server, kind):
        self.server = server
        self.kind = kind
        self.ad = kind == "active_directory"
        self.conn = server.admin_connection()
        root = AD_BASE if self.ad else LDAP_BASE
        self.base = "OU=t%s,%s" % (uuid.uuid4().hex[:10], root) if self.ad else "ou=t%s,%s" % (uuid.uuid4().hex[:10], root)
        self.people = "OU=People," + self.base if self.ad else "ou=People," + self.base
        self.groups = "OU=Groups," + self.base if self.ad else "ou=Groups," + self.base
        for dn in (self.base, self.people, self.groups):
            self.conn.add(dn, ["top", "organizationalUnit"])

    def settings(self, **extra):
        settings = {
            "servers": [self.server.ldaps], "tls": "ldaps", "ca_path": str(self.server.ca.ca_path),
            "validate_certs": True, "bind_dn": AD_ADMIN if self.ad else LDAP_ADMIN, "base_dn": self.base,
            "search": {"user": {"base": self.people, "scope": "subtree"},
                       "group": {"base": self.groups, "scope": "subtree"}},
            "create_ous": False, "page_size": 500, "timeout": 10,
        }
        settings.update(extra)
        return settings

    @property
    def password(self):
        return AD_PASSWORD if self.ad else LDAP_PASSWORD

    def entries(self, base, search_filter, attributes):
        self.conn.search(base, search_filter, attributes=attributes)
        return list(self.conn.entries)

    def users(self, attributes=("employeeID", "displayName", "department", "title", "manager",
                                "userAccountControl", "sAMAccountName", "userPrincipalName", "pwdLastSet")):
        """employee id -> {attribute: value(s) as text, "dn": dn} of the users under this test's OU."""
        key = "employeeID" if self.ad else "employeeNumber"
        attributes = list(attributes) if self.ad else ["employeeNumber", "displayName", "title", "manager", "cn", "sn",
                                                       "departmentNumber", "mail", "uid"]
        self.conn.search(self.base, "(objectClass=%s)" % ("user" if self.ad else "inetOrgPerson"), attributes=attributes)
        out = {}
        for entry in self.conn.response:
            attrs = entry["attributes"]
            out[str(_one(attrs.get(key)))] = dict((k, _one(v)) for k, v in attrs.items())
            out[str(_one(attrs.get(key)))]["dn"] = entry["dn"]
        return out

    def add_user(self, cn, employee_id, ou=None, **attributes):
        """A user made directly (not through the connector): enabled, with a password in AD."""
        dn = "%s=%s,%s" % ("CN" if self.ad else "cn", ldap3.utils.dn.escape_rdn(cn), ou or self.people)
        if self.ad:
            values = {"sAMAccountName": attributes.pop("sAMAccountName", "u" + uuid.uuid4().hex[:12]),
                      "employeeID": employee_id, "userAccountControl": "512",
                      "unicodePwd": ('"%s"' % AD_PASSWORD).encode("utf-16-le")}
            classes = ["top", "person", "organizationalPerson", "user"]
        else:
            values = {"sn": attributes.pop("sn", cn.split()[-1]), "employeeNumber": employee_id}
            classes = ["top", "person", "organizationalPerson", "inetOrgPerson"]
        values.update(dict((k, v) for k, v in attributes.items() if v is not None))
        self.conn.add(dn, classes, values)
        return dn

    def add_group(self, name, members=(), ou=None):
        dn = "%s=%s,%s" % ("CN" if self.ad else "cn", ldap3.utils.dn.escape_rdn(name), ou or self.groups)
        if self.ad:
            self.conn.add(dn, ["top", "group"], {"sAMAccountName": "g" + uuid.uuid4().hex[:12], "displayName": name,
                                                 **({"member": list(members)} if members else {})})
        else:
            self.conn.add(dn, ["top", "groupOfNames"], {"cn": name, "member": list(members) or [dn]})
        return dn

    def modify(self, dn, **replace):
        self.conn.modify(dn, dict((k, [(ldap3.MODIFY_REPLACE, v if isinstance(v, list) else [v])])
                                  for k, v in replace.items()))

    def members(self, group_dn):
        self.conn.search(group_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["member"])
        return sorted(self.conn.response[0]["attributes"].get("member") or [])

    def close(self):
        self.conn.unbind()


def _one(value):
    if isinstance(value, list):
        return value[0] if len(value) == 1 else (value or None)
    return value
