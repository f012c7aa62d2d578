# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The idsync store: named connections, sync state (delta links, managed sets), cached target snapshots, run
history, the ownership journal and workflow locks, behind one API with two backends.

``Store(location)`` opens either

* a SQLite file (a path; the default ``~/.idsync/store.db``): ``store_sqlite.SqliteStore``, or
* a PostgreSQL database (``postgresql://user@host:port/db``): ``store_postgres.PostgresStore``, for jobs that run
  on any node (AWX / Automation Platform).

``resolve_location(value)`` is what every module's ``store`` option goes through: the option, else the
``IDSYNC_STORE`` environment variable, else the default path. Records never hold key material, secrets or tokens.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.idsync.entra.plugins.module_utils.store_common import (  # noqa: F401 pylint: disable=unused-import
    DEFAULT_STORE_PATH, FORBIDDEN_SETTINGS_KEYS, LockedError, SqlStore, StoreError, find_forbidden_keys,
    redact_settings,
)
from ansible_collections.idsync.entra.plugins.module_utils.store_postgres import is_postgres_location, redact_url
from ansible_collections.idsync.entra.plugins.module_utils.store_sqlite import SqliteStore

STORE_ENV_VAR = "IDSYNC_STORE"


def resolve_location(value=None, environ=None):
    """The store to use: ``value``, else ``$IDSYNC_STORE``, else ``~/.idsync/store.db``. Paths come back absolute;
    URLs as given."""
    environ = os.environ if environ is None else environ
    location = value or environ.get(STORE_ENV_VAR) or DEFAULT_STORE_PATH
    location = str(location).strip()
    if is_postgres_location(location):
        return location
    return os.path.abspath(os.path.expanduser(location))


def display_location(location):
    """``location`` as it may be shown: a URL without its password."""
    location = resolve_location(location)
    return redact_url(location) if is_postgres_location(location) else location


def local_dir(location):
    """The local directory for files kept "beside the store" (run reports, progress): the SQLite file's directory,
    or ``~/.idsync`` for a PostgreSQL store."""
    location = resolve_location(location)
    if is_postgres_location(location):
        return os.path.abspath(os.path.expanduser("~/.idsync"))
    return os.path.dirname(location)


def store_exists(location):
    """Whether there is a store to read: a SQLite file that exists, or any PostgreSQL URL (its tables are made on
    first use)."""
    location = resolve_location(location)
    return is_postgres_location(location) or os.path.exists(location)


def Store(location=None, shared_between_threads=False):  # pylint: disable=invalid-name  # used like a class
    """Open the store at ``location`` (see ``resolve_location``); a context manager either way."""
    location = resolve_location(location)
    if is_postgres_location(location):
        from ansible_collections.idsync.entra.plugins.module_utils.store_postgres import PostgresStore
        return PostgresStore(location, shared_between_threads=shared_between_threads)
    return SqliteStore(location, shared_between_threads=shared_between_threads)


def hide_store_password(module):
    """Add the password of a PostgreSQL store URL (option ``store`` or ``$IDSYNC_STORE``) to the module's no_log
    values, so that Ansible masks it wherever the URL would appear (the task's ``invocation`` included)."""
    location = resolve_location(module.params.get("store"))
    if is_postgres_location(location):
        from ansible_collections.idsync.entra.plugins.module_utils.store_postgres import url_password
        module.no_log_values.update(url_password(location))
