# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The idsync store: one SQLite database holding named connections, sync state (delta links), cached target
snapshots, run history and advisory locks.

* The database file is created 0600 (its directory 0700 when we create it) before SQLite writes a byte, and every
  connection runs with umask 077 while it opens, so the WAL / shared-memory files SQLite adds next to it are never
  group- or world-readable either (SQLite also copies the database file's mode onto them).
* The schema is versioned with ``PRAGMA user_version``; migrations are forward-only and each runs in one
  transaction together with the version bump. A database written by a newer idsync.entra is refused.
* Records never hold key material, secrets or tokens: ``put_connection`` refuses such settings keys.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import socket
import sqlite3
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError

DEFAULT_STORE_PATH = "~/.idsync/store.db"

# Settings keys a connection record must never hold (compared case-insensitively, at any nesting depth).
FORBIDDEN_SETTINGS_KEYS = frozenset(("client_secret", "access_token", "private_key", "password", "passphrase"))

BUSY_TIMEOUT_SECONDS = 30.0


class StoreError(IdsyncError):
    """The store cannot be opened, migrated or used."""

    def __init__(self, msg, details=None):
        details = dict(details or {})
        details.setdefault("code", "StoreError")
        super(StoreError, self).__init__(msg, details)


class LockedError(IdsyncError):
    """A named lock is held by another live process."""

    def __init__(self, msg, holder=None):
        self.holder = dict(holder or {})
        super(LockedError, self).__init__(msg, {"code": "Locked", "lock": self.holder})


# Forward-only migrations: MIGRATIONS[n] brings a database from user_version n to n + 1.
# Never edit a released entry; append a new one.
MIGRATIONS = [
    # 0 -> 1: initial schema
    (
        """
        CREATE TABLE connections (
            name TEXT PRIMARY KEY,
            connector TEXT NOT NULL,
            settings TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE state (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated TEXT NOT NULL,
            PRIMARY KEY (scope, key)
        )
        """,
        """
        CREATE TABLE snapshot_objects (
            scope TEXT NOT NULL,
            object_id TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (scope, object_id)
        )
        """,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            workflow TEXT NOT NULL,
            mode TEXT NOT NULL,
            status TEXT NOT NULL,
            started TEXT NOT NULL,
            finished TEXT,
            counts TEXT NOT NULL DEFAULT '{}',
            errors TEXT NOT NULL DEFAULT '[]',
            host TEXT,
            pid INTEGER
        )
        """,
        "CREATE INDEX runs_workflow ON runs (workflow, id)",
        """
        CREATE TABLE locks (
            name TEXT PRIMARY KEY,
            owner TEXT,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            pid_start TEXT,
            token TEXT NOT NULL,
            acquired TEXT NOT NULL
        )
        """,
    ),
]

MIGRATIONS.append(
    # 1 -> 2: the ownership journal (a create's workflow and source key, written before the request is sent) and
    # what a run applied so far (so an interrupted run's history says what it did, not what it planned)
    (
        """
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            workflow TEXT NOT NULL,
            run_id INTEGER,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            lookup TEXT NOT NULL,
            target_id TEXT,
            created TEXT NOT NULL
        )
        """,
        "CREATE INDEX journal_workflow ON journal (workflow, id)",
        "ALTER TABLE runs ADD COLUMN applied TEXT",
    )
)

SCHEMA_VERSION = len(MIGRATIONS)


def _now():
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _dumps(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def find_forbidden_keys(settings, prefix=""):
    """Return the dotted names of settings keys that would hold a secret (recursing into dicts and lists)."""
    found = []
    if isinstance(settings, dict):
        for key, value in settings.items():
            name = "%s%s" % (prefix, key)
            if str(key).lower() in FORBIDDEN_SETTINGS_KEYS:
                found.append(name)
            found.extend(find_forbidden_keys(value, name + "."))
    elif isinstance(settings, (list, tuple)):
        for index, value in enumerate(settings):
            found.extend(find_forbidden_keys(value, "%s%d." % (prefix, index)))
    return found


def redact_settings(settings):
    """A copy of ``settings`` without any secret-bearing keys (for records written by older setups)."""
    if isinstance(settings, dict):
        return dict((k, redact_settings(v)) for k, v in settings.items() if str(k).lower() not in FORBIDDEN_SETTINGS_KEYS)
    if isinstance(settings, list):
        return [redact_settings(v) for v in settings]
    return settings


def _process_start_time(pid):
    """The kernel's start time of ``pid`` (Linux /proc), used to tell a live holder from a recycled pid."""
    try:
        with open("/proc/%d/stat" % pid, "r") as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing parenthesis.
    fields = data[data.rfind(")") + 2:].split()
    # fields[0] is field 3 (state); starttime is field 22.
    try:
        return fields[19]
    except IndexError:
        return None


def _process_state(pid):
    try:
        with open("/proc/%d/stat" % pid, "r") as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    fields = data[data.rfind(")") + 2:].split()
    return fields[0] if fields else None


def pid_alive(pid, pid_start=None):
    """Whether a process with this pid (and, when known, this start time) is running on this host."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        if exc.errno != errno.EPERM:  # EPERM: exists, owned by someone else
            return False
    if _process_state(pid) in ("Z", "X"):  # zombie / dead: exited, waiting to be reaped
        return False
    if pid_start is not None:
        current = _process_start_time(pid)
        if current is not None and current != pid_start:
            return False  # the pid was recycled by an unrelated process
    return True


def _ensure_private_file(path):
    """Create ``path`` 0600 (without writing to it) if missing; tighten an existing file that is wider."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        old = os.umask(0o077)
        try:
            os.makedirs(directory, 0o700)
        except OSError as exc:
            raise StoreError("Cannot create the directory %s for the idsync store: %s" % (directory, exc.strerror or exc))
        finally:
            os.umask(old)
    old = os.umask(0o077)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError("Cannot open the idsync store at %s: %s" % (path, exc.strerror or exc))
    finally:
        os.umask(old)
    try:
        mode = os.fstat(fd).st_mode & 0o777
        if mode & 0o077:
            try:
                os.fchmod(fd, 0o600)
            except OSError:
                raise StoreError(
                    "The idsync store %s is readable by other users (mode %04o) and its mode cannot be changed to 0600"
                    % (path, mode)
                )
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path + suffix
        try:
            if os.stat(side).st_mode & 0o077:
                os.chmod(side, 0o600)
        except OSError:
            pass


class Store:
    """The idsync SQLite store. Usable as a context manager; one instance per thread."""

    def __init__(self, path=None, shared_between_threads=False):
        """``shared_between_threads``: the caller serialises every use with its own lock (the write pacer)."""
        self.path = os.path.abspath(os.path.expanduser(path or DEFAULT_STORE_PATH))
        _ensure_private_file(self.path)
        old = os.umask(0o077)
        try:
            try:
                self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                                           check_same_thread=not shared_between_threads)
            except sqlite3.Error as exc:
                raise StoreError("Cannot open the idsync store at %s: %s" % (self.path, exc))
            try:
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA busy_timeout = %d" % int(BUSY_TIMEOUT_SECONDS * 1000))
                self._db.execute("PRAGMA foreign_keys = ON")
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":  # e.g. a file system without shared memory: fall back to a rollback journal
                    self._db.execute("PRAGMA journal_mode = DELETE")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
            except sqlite3.DatabaseError as exc:
                self._db.close()
                raise StoreError("%s is not a usable idsync store: %s" % (self.path, exc))
            except Exception:
                self._db.close()
                raise
        finally:
            os.umask(old)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    @contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (writers serialize on the database lock)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    @property
    def schema_version(self):
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self, migrations=None):
        migrations = MIGRATIONS if migrations is None else migrations
        known = len(migrations)
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > known:
                raise StoreError(
                    "The idsync store %s has schema version %d, newer than this idsync.entra knows (%d). It was "
                    "written by a newer release: upgrade the idsync.entra collection (schemas are never downgraded)."
                    % (self.path, version, known)
                )
            if version == 0 and known:
                # A fresh file, or something else entirely: refuse a non-empty database that is not ours.
                tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                if tables:
                    raise StoreError(
                        "%s holds tables (%s) but no idsync schema version; refusing to use it as the idsync store."
                        % (self.path, ", ".join(sorted(tables)))
                    )
            for step in range(version, known):
                for statement in migrations[step]:
                    if callable(statement):
                        statement(db)
                    else:
                        db.execute(statement)
                db.execute("PRAGMA user_version = %d" % (step + 1))

    # -- connections -----------------------------------------------------------------------------------------
    @staticmethod
    def _connection_row(row):
        return {
            "name": row["name"],
            "connector": row["connector"],
            "settings": json.loads(row["settings"]),
            "created": row["created"],
            "updated": row["updated"],
        }

    def get_connection(self, name):
        row = self._db.execute("SELECT * FROM connections WHERE name = ?", (name,)).fetchone()
        return self._connection_row(row) if row else None

    def list_connections(self):
        return [self._connection_row(r) for r in self._db.execute("SELECT * FROM connections ORDER BY name")]

    def put_connection(self, name, connector, settings):
        if not name or not isinstance(name, str):
            raise ConfigError("A connection needs a non-empty name")
        if not connector or not isinstance(connector, str):
            raise ConfigError("Connection %s needs a connector type" % name)
        if not isinstance(settings, dict):
            raise ConfigError("Connection %s: settings must be a dictionary" % name)
        forbidden = find_forbidden_keys(settings)
        if forbidden:
            raise ConfigError(
                "Connection %s: the store never holds secrets or key material; remove the settings %s (keep keys in "
                "files referenced by path, and pass secrets at run time)" % (name, ", ".join(sorted(forbidden)))
            )
        data = _dumps(settings)
        now = _now()
        with self._transaction() as db:
            row = db.execute("SELECT connector, settings FROM connections WHERE name = ?", (name,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO connections (name, connector, settings, created, updated) VALUES (?, ?, ?, ?, ?)",
                    (name, connector, data, now, now),
                )
            elif row["connector"] != connector or json.loads(row["settings"]) != settings:
                db.execute(
                    "UPDATE connections SET connector = ?, settings = ?, updated = ? WHERE name = ?",
                    (connector, data, now, name),
                )

    def delete_connection(self, name):
        with self._transaction() as db:
            return db.execute("DELETE FROM connections WHERE name = ?", (name,)).rowcount > 0

    # -- state (delta links etc.) ----------------------------------------------------------------------------
    def get_state(self, scope, key):
        row = self._db.execute("SELECT value FROM state WHERE scope = ? AND key = ?", (scope, key)).fetchone()
        return row["value"] if row else None

    def set_state(self, scope, key, value):
        with self._transaction() as db:
            if value is None:
                db.execute("DELETE FROM state WHERE scope = ? AND key = ?", (scope, key))
            else:
                db.execute(
                    "INSERT INTO state (scope, key, value, updated) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                    (scope, key, str(value), _now()),
                )

    def update_state(self, scope, key, change):
        """Read-modify-write one state value in a single transaction (other processes wait): ``change(old text or
        None)`` returns ``(new text, result)``; ``result`` is returned."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM state WHERE scope = ? AND key = ?", (scope, key)).fetchone()
            value, result = change(row["value"] if row else None)
            db.execute(
                "INSERT INTO state (scope, key, value, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                (scope, key, str(value), _now()),
            )
        return result

    def clear_state(self, scope):
        """Forget every key of a scope (e.g. to force a full run)."""
        with self._transaction() as db:
            db.execute("DELETE FROM state WHERE scope = ?", (scope,))

    # -- snapshots (cached last-known target state) ----------------------------------------------------------
    def put_snapshot(self, scope, objects):
        """Replace the whole snapshot of ``scope`` with ``objects`` ({object id: JSON-able dict})."""
        with self._transaction() as db:
            db.execute("DELETE FROM snapshot_objects WHERE scope = ?", (scope,))
            db.executemany(
                "INSERT INTO snapshot_objects (scope, object_id, data) VALUES (?, ?, ?)",
                ((scope, str(oid), _dumps(obj)) for oid, obj in objects.items()),
            )

    def get_snapshot(self, scope):
        return dict(
            (r["object_id"], json.loads(r["data"]))
            for r in self._db.execute("SELECT object_id, data FROM snapshot_objects WHERE scope = ?", (scope,))
        )

    def update_snapshot(self, scope, upserts=None, removed=None):
        """Apply a delta to the snapshot of ``scope``: upsert ``upserts`` and drop the ids in ``removed``."""
        with self._transaction() as db:
            if upserts:
                db.executemany(
                    "INSERT INTO snapshot_objects (scope, object_id, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (scope, object_id) DO UPDATE SET data = excluded.data",
                    ((scope, str(oid), _dumps(obj)) for oid, obj in upserts.items()),
                )
            if removed:
                db.executemany(
                    "DELETE FROM snapshot_objects WHERE scope = ? AND object_id = ?",
                    ((scope, str(oid)) for oid in removed),
                )

    def delete_snapshot(self, scope):
        with self._transaction() as db:
            db.execute("DELETE FROM snapshot_objects WHERE scope = ?", (scope,))

    # -- run history -----------------------------------------------------------------------------------------
    def start_run(self, workflow, mode):
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (workflow, mode, status, started, host, pid) VALUES (?, ?, 'running', ?, ?, ?)",
                (workflow, mode, _now(), socket.gethostname(), os.getpid()),
            )
            return cursor.lastrowid

    def finish_run(self, run_id, status, counts=None, errors=None):
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE runs SET status = ?, finished = ?, counts = ?, errors = ? WHERE id = ?",
                (status, _now(), _dumps(counts or {}), _dumps(list(errors or [])), run_id),
            )
            if cursor.rowcount == 0:
                raise StoreError("No run with id %s in the idsync store %s" % (run_id, self.path))

    def record_applied(self, run_id, counts):
        """What a running run has applied so far (kept if the process dies)."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET applied = ? WHERE id = ?", (_dumps(counts or {}), run_id))

    # -- the ownership journal -------------------------------------------------------------------------------
    def journal_add(self, workflow, run_id, entries):
        """Record creates about to be sent: ``entries`` [(kind, source key, {attribute: value} to find it by)].
        Returns their journal ids, in order."""
        ids = []
        with self._transaction() as db:
            for kind, source, lookup in entries:
                cursor = db.execute(
                    "INSERT INTO journal (workflow, run_id, kind, source, lookup, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (workflow, run_id, kind, str(source), _dumps(lookup), _now()))
                ids.append(cursor.lastrowid)
        return ids

    def journal_complete(self, completed):
        """``completed``: {journal id: target id} of creates that succeeded."""
        with self._transaction() as db:
            db.executemany("UPDATE journal SET target_id = ? WHERE id = ?",
                           [(str(tid), jid) for jid, tid in completed.items()])

    def journal(self, workflow):
        rows = self._db.execute("SELECT * FROM journal WHERE workflow = ? ORDER BY id", (workflow,))
        return [{"id": r["id"], "run_id": r["run_id"], "kind": r["kind"], "source": r["source"],
                 "lookup": json.loads(r["lookup"]), "target_id": r["target_id"], "created": r["created"]}
                for r in rows]

    def journal_remove(self, ids):
        with self._transaction() as db:
            db.executemany("DELETE FROM journal WHERE id = ?", [(i,) for i in ids])

    def runs(self, workflow=None, limit=20):
        query = "SELECT * FROM runs"
        args = []
        if workflow is not None:
            query += " WHERE workflow = ?"
            args.append(workflow)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(int(limit))
        result = []
        for row in self._db.execute(query, args):
            result.append(
                {
                    "id": row["id"],
                    "workflow": row["workflow"],
                    "mode": row["mode"],
                    "status": row["status"],
                    "started": row["started"],
                    "finished": row["finished"],
                    "counts": json.loads(row["counts"]),
                    "errors": json.loads(row["errors"]),
                    "applied": json.loads(row["applied"]) if row["applied"] else None,
                    "host": row["host"],
                    "pid": row["pid"],
                }
            )
        return result

    # -- locks -----------------------------------------------------------------------------------------------
    def lock_holder(self, name):
        """The current holder of lock ``name`` ({owner, host, pid, acquired}) or None."""
        row = self._db.execute("SELECT * FROM locks WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return {"name": row["name"], "owner": row["owner"], "host": row["host"], "pid": row["pid"], "acquired": row["acquired"]}

    def break_lock(self, name):
        """Remove lock ``name`` whoever holds it (for a holder on another host known to be gone)."""
        with self._transaction() as db:
            return db.execute("DELETE FROM locks WHERE name = ?", (name,)).rowcount > 0

    def _acquire(self, name, owner):
        host = socket.gethostname()
        pid = os.getpid()
        token = uuid.uuid4().hex
        with self._transaction() as db:
            row = db.execute("SELECT * FROM locks WHERE name = ?", (name,)).fetchone()
            if row is not None:
                stale = row["host"] == host and not pid_alive(row["pid"], row["pid_start"])
                if not stale:
                    holder = {
                        "name": name,
                        "owner": row["owner"],
                        "host": row["host"],
                        "pid": row["pid"],
                        "acquired": row["acquired"],
                    }
                    where = "process %s on %s" % (row["pid"], row["host"])
                    if row["host"] != host:
                        hint = (
                            " It is held from another host, so its liveness cannot be checked here; if that process is "
                            "gone, remove the lock with Store.break_lock(%r)." % name
                        )
                    else:
                        hint = " Wait for it to finish and retry."
                    raise LockedError(
                        "%s is locked by %s (%s) since %s.%s"
                        % (name, row["owner"] or "another run", where, row["acquired"], hint),
                        holder,
                    )
                db.execute("DELETE FROM locks WHERE name = ?", (name,))
            db.execute(
                "INSERT INTO locks (name, owner, host, pid, pid_start, token, acquired) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, owner, host, pid, _process_start_time(pid), token, _now()),
            )
        return token

    def _release(self, name, token):
        for attempt in range(5):
            try:
                with self._transaction() as db:
                    db.execute("DELETE FROM locks WHERE name = ? AND token = ?", (name, token))
                return
            except sqlite3.OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    @contextmanager
    def lock(self, name, owner=None):
        """Hold the named lock for the duration of the block.

        Raises LockedError (naming the holder and since when) while another live process holds it. A lock left by
        a process that died on this host is taken over. The lock is released on exit, also on exceptions.
        """
        token = self._acquire(name, owner)
        try:
            yield self
        finally:
            self._release(name, token)
