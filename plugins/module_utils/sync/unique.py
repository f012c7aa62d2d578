# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Choosing unique values (``{unique: [candidate, ...]}``) without a request per object.

Microsoft's provisioning service has ``SelectUniqueValue`` (the first free candidate; when none is free the object
is not provisioned); identity managers add a counter. We do both: the first free candidate wins, and when every
candidate is taken the first gets a number, ``john.smith2@contoso.com``, ``john.smith3@...`` (before the ``@`` for
``local@domain`` values, else at the end), cut so it still fits the attribute's limit.

"Free" is decided against what the run already read (every object of the target type, plus the other types the
connector names, e.g. groups' addresses in Entra) and the values chosen earlier in the same run, compared the way
the target compares them. The choice is deterministic: same input, same order, same values.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ValueChooser(object):
    """The free-value index of one attribute for one run."""

    def __init__(self, uniqueness, object_sets=()):
        self.uniqueness = uniqueness
        self.taken = set()
        self._next = {}                   # key of a first candidate -> the next counter to try
        for objects in object_sets:
            for obj in objects.values():
                for value in uniqueness.keys_of(obj):
                    if value not in (None, ""):
                        self.taken.add(uniqueness.key(value))

    def choose(self, candidates):
        """The value for one new object: the first free candidate, else the first with a counter. Candidates are
        text (empty ones are skipped); each is first cut to the attribute's limit. None when no candidate has a
        value."""
        fitted = [self.fit(c) for c in candidates if c not in (None, "")]
        fitted = [c for c in fitted if c]
        if not fitted:
            return None
        for value in fitted:
            if self.uniqueness.key(value) not in self.taken:
                self.take(value)
                return value
        first = fitted[0]
        base = self.uniqueness.key(first)
        number = self._next.get(base, 2)
        while True:
            value = self.numbered(first, number)
            number += 1
            if self.uniqueness.key(value) not in self.taken:
                break
        self._next[base] = number
        self.take(value)
        return value

    def take(self, value):
        self.taken.add(self.uniqueness.key(value))

    def release(self, value):
        """A value chosen for an object that failed before it was written is free again."""
        self.taken.discard(self.uniqueness.key(value))

    # -- shapes ---------------------------------------------------------------------------------------------------
    def _split(self, value):
        if self.uniqueness.local_max and "@" in value:
            local, domain = value.rsplit("@", 1)
            return local, "@" + domain
        return value, ""

    def _room(self, domain):
        """How many characters the part before ``domain`` may have (None: no limit)."""
        limits = []
        if domain and self.uniqueness.local_max:
            limits.append(self.uniqueness.local_max)
        if self.uniqueness.max_length:
            limits.append(self.uniqueness.max_length - len(domain))
        return min(limits) if limits else None

    def fit(self, value):
        """``value`` cut to the attribute's limits (the local part of ``local@domain``); dots left at the cut go."""
        value = str(value).strip()
        local, domain = self._split(value)
        room = self._room(domain)
        if room is not None and len(local) > room:
            local = local[:room].rstrip(".") if domain else local[:room]
        return local + domain

    def numbered(self, value, number):
        suffix = str(number)
        local, domain = self._split(value)
        room = self._room(domain)
        if room is not None and len(local) + len(suffix) > room:
            local = local[:max(0, room - len(suffix))]
            if domain:
                local = local.rstrip(".")
        return local + suffix + domain
