# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The SQLite backend of the idsync store (``Store("~/.idsync/store.db")``): one file holding named connections,
sync state (delta links), cached target snapshots, run history, the ownership journal and advisory locks.

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
import os
import socket
import sqlite3
import time
import uuid
from contextlib import contextmanager

from ansible_collections.idsync.entra.plugins.module_utils.files import make_private_directory
from ansible_collections.idsync.entra.plugins.module_utils.store_common import (
    DEFAULT_STORE_PATH, LockedError, SqlStore, StoreError, now_text,
)

BUSY_TIMEOUT_SECONDS = 30.0


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
    return now_text()


def _proc_stat_field(pid, number):
    """Field ``number`` (1-based, as in proc(5)) of /proc/<pid>/stat, or None (no such process, not Linux)."""
    try:
        with open("/proc/%d/stat" % pid, "r") as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing parenthesis.
    fields = data[data.rfind(")") + 2:].split()
    index = number - 3
    return fields[index] if 0 <= index < len(fields) else None


def _process_start_time(pid):
    """The kernel's start time of ``pid`` (field 22), used to tell a live holder from a recycled pid."""
    return _proc_stat_field(pid, 22)


def _process_state(pid):
    return _proc_stat_field(pid, 3)


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
    try:
        make_private_directory(directory)
    except OSError as exc:
        raise StoreError("Cannot create the directory %s for the idsync store: %s" % (directory, exc.strerror or exc))
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


class _SqliteTransaction(object):
    """The handle ``SqlStore`` writes through inside ``_transaction``."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql, args=()):
        return self.db.execute(sql, args).rowcount

    def fetchone(self, sql, args=()):
        return self.db.execute(sql, args).fetchone()

    def executemany(self, sql, rows):
        self.db.executemany(sql, rows)

    def insert_id(self, sql, args=()):
        return self.db.execute(sql, args).lastrowid


class SqliteStore(SqlStore):
    """The idsync SQLite store. Usable as a context manager; one instance per thread."""

    def __init__(self, path=None, shared_between_threads=False):
        """``shared_between_threads``: the caller serialises every use with its own lock (the write pacer)."""
        self.path = os.path.abspath(os.path.expanduser(path or DEFAULT_STORE_PATH))
        self.location = self.display_location = self.path
        self.local_dir = os.path.dirname(self.path)
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

    def _query(self, sql, args=()):
        return self._db.execute(sql, args).fetchall()

    @contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (writers serialize on the database lock)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTransaction(self._db)
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
        self._db.execute("BEGIN IMMEDIATE")
        try:
            db = self._db
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
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

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
            return db.execute("DELETE FROM locks WHERE name = ?", (name,)) > 0

    def _acquire(self, name, owner):
        host = socket.gethostname()
        pid = os.getpid()
        token = uuid.uuid4().hex
        with self._transaction() as handle:
            db = handle.db
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


# The name older code and tests use for the SQLite store.
Store = SqliteStore
