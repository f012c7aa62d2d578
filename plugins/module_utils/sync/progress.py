# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where a running sync is, for whoever watches it.

The engine and the Graph writer report stages ("reading", "planning", "applying"), writes done out of the total,
and waits on Graph's write limit. With a ``path`` the state is written there (JSON, atomically, at most once a
second): the ``idsync.entra.sync`` action plugin reads it while the module runs and prints a line now and then
(see docs/architecture.md, "Live progress").
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import threading
import time

FLUSH_EVERY_S = 1.0


def progress_path(store_path, workflow):
    """Where a run of ``workflow`` keeps its progress: ``<store dir>/progress/<workflow>.json`` (one run of a
    workflow at a time holds its lock, so the name is enough). The action plugin computes the same path."""
    from ansible_collections.idsync.entra.plugins.module_utils.sync.run_report import workflow_dir_name
    from ansible_collections.idsync.entra.plugins.module_utils.store import local_dir
    directory = os.path.join(local_dir(store_path), "progress")
    return os.path.join(directory, workflow_dir_name(workflow) + ".json")


class Progress(object):
    def __init__(self, path=None, clock=time.time):
        self.path = path
        if path:
            try:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            except OSError:
                self.path = None
        self._clock = clock
        self._lock = threading.Lock()
        self._flushed = 0.0
        self.state = {"stage": "starting", "detail": None, "writes_done": 0, "writes_total": None,
                      "waiting": None, "started": clock()}

    def stage(self, name, detail=None):
        with self._lock:
            self.state.update(stage=name, detail=detail, writes_done=0, writes_total=None, waiting=None)
        self._flush(force=True)

    def writes(self, done, total):
        with self._lock:
            self.state.update(writes_done=done, writes_total=total, waiting=None)
        self._flush()

    def waiting(self, left, rate):
        """The run waits on the service's write limit: ``left`` writes at ``rate`` per second."""
        with self._lock:
            self.state["waiting"] = {"writes_left": left, "rate": round(rate, 1),
                                     "seconds": int(left / rate) if rate else None}
        self._flush()

    def close(self):
        """The run is over: its progress file goes."""
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def line(self):
        """The state as one line: "applying: 1,200 of 10,000 writes; waiting on the write limit: ..."."""
        return describe(self.state)

    def _flush(self, force=False):
        if not self.path:
            return
        now = self._clock()
        with self._lock:
            if not force and now - self._flushed < FLUSH_EVERY_S:
                return
            self._flushed = now
            data = json.dumps(dict(self.state, updated=now), separators=(",", ":"))
        temp = "%s.%d.tmp" % (self.path, os.getpid())
        try:
            with open(temp, "w") as handle:
                handle.write(data)
            os.replace(temp, self.path)
        except OSError:
            pass                          # progress is a courtesy: never fail a run for it


def describe(state):
    """One line for a progress state (as ``Progress.state`` or read back from its file)."""
    text = state.get("stage") or ""
    if state.get("detail"):
        text += " (%s)" % state["detail"]
    total = state.get("writes_total")
    if total:
        text += ": %s of %s writes" % (format(state.get("writes_done") or 0, ","), format(total, ","))
    waiting = state.get("waiting")
    if waiting and waiting.get("rate"):
        text += "; waiting on Graph's write limit: %s writes left at %g/s, about %d s" % (
            format(waiting["writes_left"], ","), waiting["rate"], waiting.get("seconds") or 0)
    return text
