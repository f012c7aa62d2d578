# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback: append every task result (as the task's register would see it) to the JSON-lines file
named by IDSYNC_TEST_RESULTS, so integration tests can assert on structured results of real ansible-playbook runs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: idsync_record
type: aggregate
short_description: Record task results as JSON lines (idsync.entra integration tests)
description:
  - Writes one JSON object per task result to the file named by E(IDSYNC_TEST_RESULTS).
requirements:
  - enable in configuration
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "idsync_record"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, status, result):
        path = os.environ.get("IDSYNC_TEST_RESULTS")
        if not path:
            return
        try:
            data = json.loads(json.dumps(result._result, default=str))
        except (TypeError, ValueError):
            data = {"unserializable": True}
        record = {
            "task": result._task.get_name(),
            "host": result._host.get_name(),
            "status": status,
            "result": data,
        }
        with open(path, "a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def v2_runner_on_ok(self, result, **kwargs):
        self._write("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._write("failed", result)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._write("skipped", result)

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._write("unreachable", result)
