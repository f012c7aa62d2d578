# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What both store backends share: errors, the secret filter, and ``SqlStore``, the store API written once over a
small set of backend primitives (``_query``, ``_query_one``, ``_transaction``, ``_insert_returning_id``,
``_select_for_update``).

SQL here uses ``?`` placeholders and ANSI ``INSERT ... ON CONFLICT`` upserts, which SQLite (>= 3.24) and
PostgreSQL (>= 9.5) both understand; the PostgreSQL backend turns ``?`` into ``%s``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket
from datetime import datetime, timezone

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError

DEFAULT_STORE_PATH = "~/.idsync/store.db"

# Settings keys a connection record must never hold (compared case-insensitively, at any nesting depth).
FORBIDDEN_SETTINGS_KEYS = frozenset(("client_secret", "access_token", "private_key", "password", "passphrase",
                                     "certificate_content", "private_key_content"))


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


def now_text():
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def dumps(value):
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


class SqlStore(object):
    """The store API over a SQL connection. Subclasses set ``location`` (what opens the store again: a path or a
    URL, which may hold a password: never show it), ``display_location`` (safe to show) and ``local_dir`` (a local
    directory for run reports and progress files), and implement the primitives below."""

    location = None
    display_location = None
    local_dir = None

    # -- primitives (backend) -------------------------------------------------------------------------------
    def _query(self, sql, args=()):
        """Rows (mappings) of a statement outside an explicit transaction."""
        raise NotImplementedError

    def _query_one(self, sql, args=()):
        rows = self._query(sql, args)
        return rows[0] if rows else None

    def _transaction(self):
        """A context manager: a write transaction whose handle has ``execute(sql, args) -> rowcount``,
        ``fetchone(sql, args)``, ``executemany(sql, rows)`` and ``insert_id(sql, args)``."""
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self.display_location)

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
        row = self._query_one("SELECT * FROM connections WHERE name = ?", (name,))
        return self._connection_row(row) if row else None

    def list_connections(self):
        return [self._connection_row(r) for r in self._query("SELECT * FROM connections ORDER BY name")]

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
        data = dumps(settings)
        now = now_text()
        with self._transaction() as db:
            row = db.fetchone("SELECT connector, settings FROM connections WHERE name = ?", (name,))
            if row is None:
                db.execute("INSERT INTO connections (name, connector, settings, created, updated) VALUES (?, ?, ?, ?, ?)",
                           (name, connector, data, now, now))
            elif row["connector"] != connector or json.loads(row["settings"]) != settings:
                db.execute("UPDATE connections SET connector = ?, settings = ?, updated = ? WHERE name = ?",
                           (connector, data, now, name))

    def delete_connection(self, name):
        with self._transaction() as db:
            return db.execute("DELETE FROM connections WHERE name = ?", (name,)) > 0

    # -- state (delta links, managed sets, the write pacer's bucket) -----------------------------------------
    _UPSERT_STATE = ("INSERT INTO state (scope, key, value, updated) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated = excluded.updated")

    def get_state(self, scope, key):
        row = self._query_one("SELECT value FROM state WHERE scope = ? AND key = ?", (scope, key))
        return row["value"] if row else None

    def set_state(self, scope, key, value):
        with self._transaction() as db:
            if value is None:
                db.execute("DELETE FROM state WHERE scope = ? AND key = ?", (scope, key))
            else:
                db.execute(self._UPSERT_STATE, (scope, key, str(value), now_text()))

    def update_state(self, scope, key, change):
        """Read-modify-write one state value in a single transaction (other processes wait): ``change(old text or
        None)`` returns ``(new text, result)``; ``result`` is returned."""
        with self._transaction() as db:
            row = self._select_for_update(db, scope, key)
            value, result = change(row["value"] if row else None)
            db.execute(self._UPSERT_STATE, (scope, key, str(value), now_text()))
        return result

    def _select_for_update(self, db, scope, key):
        """The state row, locked against other writers until the transaction ends."""
        return db.fetchone("SELECT value FROM state WHERE scope = ? AND key = ?", (scope, key))

    def clear_state(self, scope):
        """Forget every key of a scope (e.g. to force a full run)."""
        with self._transaction() as db:
            db.execute("DELETE FROM state WHERE scope = ?", (scope,))

    # -- snapshots (cached last-known target state) ----------------------------------------------------------
    _UPSERT_SNAPSHOT = ("INSERT INTO snapshot_objects (scope, object_id, data) VALUES (?, ?, ?) "
                        "ON CONFLICT (scope, object_id) DO UPDATE SET data = excluded.data")

    def put_snapshot(self, scope, objects):
        """Replace the whole snapshot of ``scope`` with ``objects`` ({object id: JSON-able dict})."""
        with self._transaction() as db:
            db.execute("DELETE FROM snapshot_objects WHERE scope = ?", (scope,))
            db.executemany("INSERT INTO snapshot_objects (scope, object_id, data) VALUES (?, ?, ?)",
                           [(scope, str(oid), dumps(obj)) for oid, obj in objects.items()])

    def get_snapshot(self, scope):
        return dict((r["object_id"], json.loads(r["data"]))
                    for r in self._query("SELECT object_id, data FROM snapshot_objects WHERE scope = ?", (scope,)))

    def update_snapshot(self, scope, upserts=None, removed=None):
        """Apply a delta to the snapshot of ``scope``: upsert ``upserts`` and drop the ids in ``removed``."""
        with self._transaction() as db:
            if upserts:
                db.executemany(self._UPSERT_SNAPSHOT, [(scope, str(oid), dumps(obj)) for oid, obj in upserts.items()])
            if removed:
                db.executemany("DELETE FROM snapshot_objects WHERE scope = ? AND object_id = ?",
                               [(scope, str(oid)) for oid in removed])

    def delete_snapshot(self, scope):
        with self._transaction() as db:
            db.execute("DELETE FROM snapshot_objects WHERE scope = ?", (scope,))

    # -- run history -----------------------------------------------------------------------------------------
    def start_run(self, workflow, mode):
        with self._transaction() as db:
            return db.insert_id(
                "INSERT INTO runs (workflow, mode, status, started, host, pid) VALUES (?, ?, 'running', ?, ?, ?)",
                (workflow, mode, now_text(), socket.gethostname(), os.getpid()))

    def finish_run(self, run_id, status, counts=None, errors=None):
        with self._transaction() as db:
            count = db.execute("UPDATE runs SET status = ?, finished = ?, counts = ?, errors = ? WHERE id = ?",
                               (status, now_text(), dumps(counts or {}), dumps(list(errors or [])), run_id))
            if count == 0:
                raise StoreError("No run with id %s in the idsync store %s" % (run_id, self.display_location))

    def record_applied(self, run_id, counts):
        """What a running run has applied so far (kept if the process dies)."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET applied = ? WHERE id = ?", (dumps(counts or {}), run_id))

    def add_applied(self, run_id, counts):
        """Add ``counts`` to what a run applied (objects an interrupted run made, found by the next run)."""
        with self._transaction() as db:
            row = db.fetchone("SELECT applied, counts, status FROM runs WHERE id = ?" + self._for_update, (run_id,))
            if row is None:
                return
            column = "applied" if row["status"] == "running" else "counts"
            current = json.loads(row[column] or "{}") or {}
            for key, value in counts.items():
                current[key] = (current.get(key) or 0) + value
            db.execute("UPDATE runs SET %s = ? WHERE id = ?" % column, (dumps(current), run_id))

    _for_update = ""                      # " FOR UPDATE" where the backend locks rows (PostgreSQL)

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
        return [{
            "id": row["id"], "workflow": row["workflow"], "mode": row["mode"], "status": row["status"],
            "started": row["started"], "finished": row["finished"], "counts": json.loads(row["counts"]),
            "errors": json.loads(row["errors"]), "applied": json.loads(row["applied"]) if row["applied"] else None,
            "host": row["host"], "pid": row["pid"],
        } for row in self._query(query, args)]

    # -- the ownership journal -------------------------------------------------------------------------------
    def journal_add(self, workflow, run_id, entries):
        """Record creates about to be sent: ``entries`` [(kind, source key, {attribute: value} to find it by)].
        Returns their journal ids, in order."""
        with self._transaction() as db:
            return [db.insert_id(
                "INSERT INTO journal (workflow, run_id, kind, source, lookup, created) VALUES (?, ?, ?, ?, ?, ?)",
                (workflow, run_id, kind, str(source), dumps(lookup), now_text())) for kind, source, lookup in entries]

    def journal_complete(self, completed):
        """``completed``: {journal id: target id} of creates that succeeded."""
        with self._transaction() as db:
            db.executemany("UPDATE journal SET target_id = ? WHERE id = ?",
                           [(str(tid), jid) for jid, tid in completed.items()])

    def journal(self, workflow):
        rows = self._query("SELECT * FROM journal WHERE workflow = ? ORDER BY id", (workflow,))
        return [{"id": r["id"], "run_id": r["run_id"], "kind": r["kind"], "source": r["source"],
                 "lookup": json.loads(r["lookup"]), "target_id": r["target_id"], "created": r["created"]}
                for r in rows]

    def journal_remove(self, ids):
        with self._transaction() as db:
            db.executemany("DELETE FROM journal WHERE id = ?", [(i,) for i in ids])

    # -- locks (backend) -------------------------------------------------------------------------------------
    def lock_holder(self, name):
        """The current holder of lock ``name`` ({name, owner, host, pid, acquired}) or None."""
        raise NotImplementedError

    def break_lock(self, name):
        raise NotImplementedError

    def lock(self, name, owner=None):
        """A context manager holding the named lock; LockedError when another process holds it."""
        raise NotImplementedError
