# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin for idsync.entra.sync: live progress of a long run in the ansible-playbook output.

The module runs as any module does (on the managed node, usually the controller itself with ``connection:
local``). While it runs, the module keeps its progress in ``<store dir>/progress/<workflow>.json``; this plugin runs
the module in a helper thread and, on the task's own thread, reads that file and prints a line through Ansible's
display: when the stage changes, each ~10 % of the writes, or every 10 s (every 2 s with -v). Why not ``async`` +
``async_status``: that costs a module execution per poll and only ever shows "ASYNC POLL ... finished=0"; reading
a local file costs nothing. On other connections (the file is on another host) and for ``async`` tasks the module
simply runs; the result is the same either way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import threading
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.idsync.entra.plugins.module_utils.sync.progress import describe, progress_path

display = Display()

POLL_S = 1.0
QUIET_S = 3.0            # a run shorter than this prints nothing
EVERY_S = 10.0
EVERY_VERBOSE_S = 2.0
STEP = 0.1               # a line per 10 % of the writes


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_async = True
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        module_name = self._task.resolved_action or self._task.action
        args = self._task.args
        if self._task.async_val or self._connection.transport != "local" or not args.get("name"):
            result.update(self._execute_module(module_name=module_name, task_vars=task_vars,
                                               wrap_async=self._task.async_val))
            return result
        path = progress_path(args.get("store"), args["name"])
        outcome = {}

        def work():
            try:
                outcome["result"] = self._execute_module(module_name=module_name, task_vars=task_vars)
            except BaseException as exc:  # pylint: disable=broad-except  # re-raised on the task's thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="idsync-sync-module")
        worker.start()
        Watcher(path, args["name"], task_vars.get("inventory_hostname", "localhost")).watch(worker)
        if "error" in outcome:
            raise outcome["error"]
        result.update(outcome["result"])
        return result


class Watcher(object):
    """Prints a progress line now and then while ``worker`` runs."""

    def __init__(self, path, workflow, host):
        self.path = path
        self.prefix = "idsync.entra.sync %s (%s): " % (workflow, host)
        self.started = time.time()
        self.every = EVERY_VERBOSE_S if display.verbosity else EVERY_S
        self.last_line = None
        self.last_at = 0.0
        self.last_stage = None
        self.last_step = -1

    def watch(self, worker):
        while worker.is_alive():
            worker.join(POLL_S)
            if worker.is_alive() and time.time() - self.started >= QUIET_S:
                self.tick()

    def tick(self):
        state = self._read()
        if not state or state.get("started", 0) < self.started - 5:
            return                        # nothing yet, or a file left by an earlier run
        line = describe(state)
        total = state.get("writes_total") or 0
        step = int((state.get("writes_done") or 0) * 1.0 / total / STEP) if total else -1
        now = time.time()
        due = (state.get("stage") != self.last_stage or step > self.last_step or now - self.last_at >= self.every)
        if due and line != self.last_line:
            display.display(self.prefix + line)
            self.last_line, self.last_at = line, now
            self.last_stage, self.last_step = state.get("stage"), step

    def _read(self):
        try:
            with open(os.path.expanduser(self.path)) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None
