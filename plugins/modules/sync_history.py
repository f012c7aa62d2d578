#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sync_history
short_description: Read the run history of sync workflows
version_added: "0.1.0"
description:
  - Returns the runs recorded by M(idsync.entra.sync) in the idsync store, newest first, each with its start and
    end, status, counts and the errors of the objects that failed.
  - "Statuses: V(running) (now, or never finished), V(succeeded), V(failed) (some objects failed, or the run
    stopped on an error), V(stopped) (the deletion threshold stopped it before any change), V(interrupted) (the
    process was killed; marked by the next run)."
author:
  - idsync.entra contributors (!UNKNOWN)
options:
  name:
    description:
      - The workflow whose runs to return. All workflows when omitted.
    type: str
  store:
    description:
      - The idsync store, either the path of a SQLite file (created V(0600), its directory V(0700), when missing), or
        the URL of a PostgreSQL database (V(postgresql://user@host:5432/dbname), needs the Python package
        C(psycopg)), which jobs on any node share (AWX / Automation Platform, see docs/awx.md).
      - If not set, the value of the E(IDSYNC_STORE) environment variable is used, else V(~/.idsync/store.db).
      - A password in the URL is never shown; prefer E(PGPASSWORD) or C(~/.pgpass).
      - A SQLite store that does not exist gives an empty history.
    type: str
  limit:
    description:
      - Return at most this many runs.
    type: int
    default: 20
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Nothing to compare.
seealso:
  - module: idsync.entra.sync
"""

EXAMPLES = r"""
- name: The last five runs of a workflow
  idsync.entra.sync_history:
    name: hr_to_entra
    limit: 5
  register: history

- name: Show the last run
  ansible.builtin.debug:
    msg: "{{ history.runs[0].status }}: {{ history.runs[0].counts }}"
"""

RETURN = r"""
runs:
  description: The runs, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    id: {description: Run id., type: int}
    workflow: {description: Workflow name., type: str}
    mode: {description: "V(full), V(delta) or V(stopped).", type: str}
    status: {description: "V(running), V(succeeded), V(failed), V(stopped) or V(interrupted).", type: str}
    started: {description: "Start time (UTC, ISO 8601).", type: str}
    finished: {description: "End time (UTC, ISO 8601).", type: str}
    counts:
      description: created, updated, deprovisioned, unchanged, failed, membership_added, membership_removed.
      type: dict
    errors: {description: One line per failed object (at most 200)., type: list, elements: str}
  sample:
    - id: 7
      workflow: hr_to_entra
      mode: full
      status: succeeded
      started: "2025-01-01T10:00:00Z"
      finished: "2025-01-01T10:00:04Z"
      counts: {created: 0, updated: 1, deprovisioned: 1, unchanged: 298, failed: 0}
      errors: []
last:
  description: The newest run (the first of RV(runs)), or null.
  returned: always
  type: dict
"""


from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError
from ansible_collections.idsync.entra.plugins.module_utils.module import IdsyncModule


def main():
    module = IdsyncModule(
        argument_spec=dict(
            name=dict(type="str"),
            store=dict(type="str"),
            limit=dict(type="int", default=20),
        ),
        graph=False,
        supports_check_mode=True,
    )
    from ansible_collections.idsync.entra.plugins.module_utils.store import (
        Store, display_location, resolve_location, store_exists,
    )
    location = resolve_location(module.params["store"])
    shown = display_location(location)
    if not store_exists(location):
        module.exit_json(changed=False, runs=[], last=None, store=shown)
    try:
        with Store(location) as store:
            runs = store.runs(module.params.get("name"), limit=module.params["limit"])
    except IdsyncError as exc:
        module.fail_from(exc)
    module.exit_json(changed=False, runs=runs, last=runs[0] if runs else None, store=shown)


if __name__ == "__main__":
    main()
