"""A real PostgreSQL server for the tests: Debian's postgresql binaries, ``initdb`` into a temporary directory,
listening on a free loopback port with password (SCRAM) authentication and TLS (a certificate for 127.0.0.1 from
the tests' own CA, ``ca_path``; clients choose with ``sslmode``), stopped and removed afterwards.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user that Debian's package
creates. Missing binaries are installed with tools/ensure_system_packages.sh; a server that cannot start is an error
(the fixture fails, never skips).
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tls_ca import TestCA

ROOT = Path(__file__).resolve().parent.parent
SUPERUSER = "idsync_admin"


def _bin_dir():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        subprocess.run([str(ROOT / "tools" / "ensure_system_packages.sh"), "postgresql"], check=True)
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL's initdb was not found under /usr/lib/postgresql/*/bin after installing "
                           "the Debian package postgresql")
    return Path(candidates[-1]).parent


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """``start()`` -> a running server; ``create_database()`` -> a URL of a new, empty database."""

    def __init__(self):
        self.bin = _bin_dir()
        self.base = Path(tempfile.mkdtemp(prefix="idsync-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self.password = "pg-" + uuid.uuid4().hex
        self.process = None
        self._user = None
        if os.geteuid() == 0:
            self._user = pwd.getpwnam("postgres")
            os.chown(self.base, self._user.pw_uid, self._user.pw_gid)
            os.chmod(self.base, 0o700)
        ca = TestCA(self.base / "tls", name="idsync PostgreSQL test CA")
        self.ca_path = ca.ca_path
        self.cert_path, self.key_path = ca.issue("server", ip="127.0.0.1")
        if self._user is not None:            # the server reads its key as postgres, and wants it 0600
            for path in (ca.dir, self.cert_path, self.key_path):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _run(self, *args, **kwargs):
        kwargs.setdefault("check", True)
        kwargs.setdefault("capture_output", True)
        if self._user is not None:
            kwargs["user"] = self._user.pw_uid
            kwargs["group"] = self._user.pw_gid
            kwargs["extra_groups"] = []
        return subprocess.run(list(args), **kwargs)

    def start(self, timeout=60):
        pwfile = self.base / "pw"
        pwfile.write_text(self.password)
        if self._user is not None:
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync", cwd=str(self.base))
        pwfile.unlink()
        log = open(self.base / "server.log", "wb")
        popen_kwargs = {}
        if self._user is not None:
            popen_kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        self.process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", "unix_socket_directories=" + str(self.base), "-c", "fsync=off", "-c", "max_connections=200",
             "-c", "shared_buffers=32MB", "-c", "ssl=on", "-c", "ssl_cert_file=%s" % self.cert_path,
             "-c", "ssl_key_file=%s" % self.key_path],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(self.base), **popen_kwargs)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("PostgreSQL exited with %s: %s" % (self.process.returncode, self.log()[-3000:]))
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if ready.returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("PostgreSQL did not accept connections in %ss: %s" % (timeout, self.log()[-3000:]))
            time.sleep(0.1)

    def log(self):
        path = self.base / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url(self, database="postgres", user=SUPERUSER, password=True):
        secret = ":%s" % self.password if password else ""
        return "postgresql://%s%s@127.0.0.1:%d/%s" % (user, secret, self.port, database)

    def sql(self, statement, database="postgres"):
        """Run one statement as the superuser over the server's own socket (trust, no password)."""
        return self._run(str(self.bin / "psql"), "-h", str(self.base), "-p", str(self.port), "-U", SUPERUSER,
                         "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", statement).stdout.decode()

    def create_database(self, name=None):
        name = name or "idsync_" + uuid.uuid4().hex[:12]
        self.sql('CREATE DATABASE "%s"' % name)
        return self.url(name)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()            # smart shutdown would wait for clients: SIGTERM is "fast"
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)
