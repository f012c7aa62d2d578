# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Ownership marks: which workflow manages a target object, written on the object itself, so that a run whose store
was lost (a fresh AWX job, a new controller) still knows what it manages and deprovisions leavers.

A connector names the attribute that carries the mark for an object type (``Connector.ownership_attribute``; None
when the system has none). The engine then

* reads that attribute with the target objects;
* writes the workflow's name into it on every object it creates, and on matched objects (and groups it fills) that
  carry no mark yet;
* treats target objects carrying its name (or one of ``previous_names``, after a rename) as managed, besides those
  the store lists;
* never claims, re-marks or deprovisions an object marked by another workflow: that workflow manages it;
* keeps the mark when it deprovisions, and when it disables a leaver says so in it (``<name> (deprovisioned)``), so
  that a leaver who returns is enabled again even by a run whose store was lost, while an account someone else
  disabled (its mark is the plain name) stays disabled.

The store stays the fast path (delta links, history, the set of deprovisioned objects); the marks make it
rebuildable.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


DEPROVISIONED = " (deprovisioned)"


class Ownership(object):
    """The mark of one workflow on one object type: ``attribute`` holds ``name`` (or ``deprovisioned_mark``)."""

    def __init__(self, attribute, name, previous_names=()):
        self.attribute = attribute
        self.name = name
        self.ours = set([name]) | set(n for n in previous_names or () if n)
        self.deprovisioned_mark = name + DEPROVISIONED

    def mark_of(self, obj):
        value = obj.get(self.attribute) if obj else None
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        return str(value).strip() if value not in (None, "") else None

    def _owner(self, mark):
        """The workflow name a mark carries, and whether it says that workflow deprovisioned the object."""
        if mark is not None and mark.endswith(DEPROVISIONED) and mark[:-len(DEPROVISIONED)] in self.ours:
            return mark[:-len(DEPROVISIONED)], True
        return mark, False

    def is_ours(self, obj):
        return self._owner(self.mark_of(obj))[0] in self.ours

    def is_foreign(self, obj):
        mark = self.mark_of(obj)
        return mark is not None and self._owner(mark)[0] not in self.ours

    def needs_mark(self, obj):
        """A managed (not deprovisioned) object that lacks this workflow's current, plain mark and is ours to mark:
        no mark yet, a previous name of this workflow, or a deprovisioned mark (the object is back)."""
        mark = self.mark_of(obj)
        return mark is None or (self.is_ours(obj) and mark != self.name)

    def claimed(self, objects):
        """Ids of ``objects`` ({id: obj}) that carry this workflow's mark."""
        return set(oid for oid, obj in objects.items() if self.is_ours(obj))

    def deprovisioned(self, objects):
        """Ids of ``objects`` whose mark says this workflow deprovisioned them."""
        return set(oid for oid, obj in objects.items() if self._owner(self.mark_of(obj))[1])

    def foreign(self, objects):
        """Ids of ``objects`` that another workflow marked."""
        return set(oid for oid, obj in objects.items() if self.is_foreign(obj))


def ownership_for(connector, object_type, name, previous_names=()):
    """The Ownership of ``name`` on ``object_type`` of ``connector``, or None when the system carries no marks."""
    if connector is None or object_type is None:
        return None
    attribute = connector.ownership_attribute(object_type)
    return Ownership(attribute, name, previous_names) if attribute else None
