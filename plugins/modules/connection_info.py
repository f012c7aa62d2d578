#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: connection_info
short_description: List or show the connections in the idsync connection store
version_added: "0.1.0"
description:
  - Lists all connections in the idsync store, or shows one by name, without secrets.
  - With O(test=true), runs "Test connection" for each (see M(idsync.entra.connection)).
author:
  - idsync.entra maintainers (@idsync)
options:
  name:
    description:
      - Show only this connection. An unknown name returns an empty list.
    type: str
  store:
    description:
      - The idsync store, either the path of a SQLite file (created V(0600), its directory V(0700), when missing), or
        the URL of a PostgreSQL database (V(postgresql://user@host:5432/dbname), needs the Python package
        C(psycopg)), which jobs on any node share (AWX / Automation Platform, see docs/awx.md).
      - If not set, the value of the E(IDSYNC_STORE) environment variable is used, else V(~/.idsync/store.db).
      - A password in the URL is never shown; prefer E(PGPASSWORD) or C(~/.pgpass).
      - A SQLite store that does not exist is not created; the result is then empty.
    type: str
  test:
    description:
      - Test each listed connection and return the result under RV(connections[].test).
    type: bool
    default: false
  required_permissions:
    description:
      - Microsoft Graph application permissions the test of an V(azure_ad) connection requires.
      - Defaults to what each connector needs.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
requirements:
  - msal >= 1.28, requests and cryptography >= 42 (O(test=true) of an V(azure_ad) connection)
seealso:
  - module: idsync.entra.connection
"""

EXAMPLES = r"""
- name: List all connections
  idsync.entra.connection_info:
  register: all_connections

- name: Test one connection
  idsync.entra.connection_info:
    name: contoso
    test: true
  register: contoso

- name: Fail when the connection does not test green
  ansible.builtin.assert:
    that: contoso.connections[0].test.ok
    fail_msg: "{{ contoso.connections[0].test.error }}"
"""

RETURN = r"""
connections:
  description: The connections, sorted by name (one or none when O(name) is given).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Connection name.
      type: str
      sample: contoso
    connector:
      description: Connector type.
      type: str
      sample: azure_ad
    settings:
      description: Connector settings, never a secret.
      type: dict
      sample: {"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "tenant_environment": "azure_global"}
    created:
      description: When the connection was first saved (UTC, ISO 8601).
      type: str
      sample: "2025-01-01T10:00:00Z"
    updated:
      description: When the connection was last changed (UTC, ISO 8601).
      type: str
      sample: "2025-01-02T10:00:00Z"
    test:
      description: Result of "Test connection" (see M(idsync.entra.connection)).
      returned: when O(test=true)
      type: dict
      sample: {"ok": true, "granted_permissions": ["User.ReadWrite.All"], "missing_permissions": [], "error": null}
store:
  description: Absolute path of the store that was read.
  returned: always
  type: str
  sample: /home/sync/.idsync/store.db
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError
from ansible_collections.idsync.entra.plugins.module_utils import connections
from ansible_collections.idsync.entra.plugins.module_utils.store import hide_store_password


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            store=dict(type="str"),
            test=dict(type="bool", default=False),
            required_permissions=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    hide_store_password(module)
    try:
        result = connections.connection_info(module.params)
    except IdsyncError as exc:
        module.fail_json(msg=exc.msg, error=exc.to_result())
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="Unexpected error reading the idsync store: %s" % exc, exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
