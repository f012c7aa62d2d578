# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Strict reading of a delimited text file: every row is either read exactly or rejected with its line number.

An identity sync must never mistake a broken file for a shorter one: a row that disappears from the read looks like
a person who left. So the reader

* reads **one record per line** by default: a quote left open ends with its line (that line is rejected) instead of
  swallowing the lines after it; ``multiline: true`` accepts quoted fields spanning lines (RFC 4180), and then a
  quote left open, or a multi-line record that cannot be read, means nothing after it can be trusted;
* rejects a row whose field count differs from the header's, a field longer than ``max_field_length``, a control
  character (NUL and the other C0 controls but tab; line breaks outside ``multiline``), bytes that are not UTF-8,
  an empty or duplicate key;
* says for each rejected row which key it holds when that can be read, so the engine protects that object; and
  marks the read **incomplete** when a rejected row's key cannot be read or the structure broke, so the engine
  deprovisions no one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import codecs
import csv
import re

KEY_SEPARATOR = "|"
DEFAULT_MAX_FIELD_LENGTH = 8192
# C0 controls but tab, and DEL. Line breaks are checked separately (allowed only inside multi-line fields).
_CONTROL_RE = re.compile(u"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK_RE = re.compile(u"[\r\n]")


class HeaderError(Exception):
    """The header row cannot be used (the file as a whole is refused)."""

    def __init__(self, line, message):
        self.line = line
        self.message = message
        super(HeaderError, self).__init__("line %d (the header): %s" % (line, message))


class Row(object):
    __slots__ = ("values", "raw", "line", "dirty")

    def __init__(self, values, raw, line):
        self.values = values
        self.raw = raw
        self.line = line
        self.dirty = False


class Rejection(object):
    """A row that was not read: where, why, the key it holds (or None when unreadable) and the fields read."""
    __slots__ = ("line", "error", "key", "attributes")

    def __init__(self, line, error, key, attributes):
        self.line = line
        self.error = error
        self.key = key
        self.attributes = attributes


class Parsed(object):
    """What ``parse`` returns. ``entries`` keeps the file's order for byte-exact rewriting: ("raw", bytes) for blank
    or rejected lines, ("row", key) for rows. ``broken_at`` is the line from which nothing was read (None when the
    whole file was read)."""

    def __init__(self):
        self.header = None
        self.header_raw = None
        self.rows = {}
        self.entries = []
        self.rejected = []
        self.rejected_keys = {}           # key -> line of a rejected row holding it
        self.suspect_keys = {}            # key -> line of a rejected row that may hold it (a plain split's guess)
        self.broken_at = None
        self.bom = False
        self.newline = "\n"

    @property
    def complete(self):
        """True when every row was read or its key is known: only then may a missing key mean "left"."""
        return self.broken_at is None and all(r.key for r in self.rejected)


def describe_character(char):
    names = {u"\x00": "NUL", u"\x7f": "DEL", u"\r": "a carriage return", u"\n": "a line break"}
    return names.get(char, "control character U+%04X" % ord(char))


class Reader(object):
    """Parses the bytes of one file. ``key``: key columns; ``multiline``: accept quoted line breaks."""

    def __init__(self, key, delimiter=",", multiline=False, max_field_length=DEFAULT_MAX_FIELD_LENGTH):
        self.key = list(key)
        self.delimiter = delimiter
        self.multiline = multiline
        self.max_field_length = max_field_length

    # -- public -------------------------------------------------------------------------------------------------
    def parse(self, data):
        out = Parsed()
        if data.startswith(codecs.BOM_UTF8):
            out.bom = True
            data = data[len(codecs.BOM_UTF8):]
        raw_lines = data.splitlines(True)
        if raw_lines:
            first = raw_lines[0]
            out.newline = "\r\n" if first.endswith(b"\r\n") else ("\r" if first.endswith(b"\r") else "\n")
        old_limit = csv.field_size_limit()
        # Fields are measured by us, with a line number; csv's own limit would drop the whole row unread.
        csv.field_size_limit(max(old_limit, 64 * 1024 * 1024))
        try:
            records = self._records_multiline(raw_lines) if self.multiline else self._records_by_line(raw_lines)
            self._collect(records, out)
        finally:
            csv.field_size_limit(old_limit)
        return out

    # -- records: (first line, last line, raw bytes, fields or None, problem or None) ----------------------------
    def _records_by_line(self, raw_lines):
        for number, raw in enumerate(raw_lines, 1):
            text, problem = _decode(raw)
            body = text.rstrip("\r\n")
            fields = None
            if problem is None:
                try:
                    fields = next(csv.reader([body], delimiter=self.delimiter, strict=True), [])
                except csv.Error as exc:
                    problem = _csv_problem(exc, body)
            yield number, number, raw, fields, problem, body

    def _records_multiline(self, raw_lines):
        texts = []
        problems = {}
        for number, raw in enumerate(raw_lines, 1):
            text, problem = _decode(raw)
            texts.append(text)
            if problem:
                problems[number] = problem
        reader = csv.reader(texts, delimiter=self.delimiter, strict=True)
        previous = 0
        while True:
            start = previous + 1
            try:
                fields = next(reader)
                problem = None
            except StopIteration:
                return
            except csv.Error as exc:
                fields = None
                problem = _csv_problem(exc, texts[start - 1] if start <= len(texts) else "")
            end = max(reader.line_num, start)
            previous = end
            problem = problem or next((problems[n] for n in range(start, end + 1) if n in problems), None)
            body = "".join(texts[start - 1:end]).rstrip("\r\n")
            yield start, end, b"".join(raw_lines[start - 1:end]), fields, problem, body
            if fields is None and end >= len(texts):
                return

    # -- rows -----------------------------------------------------------------------------------------------------
    def _collect(self, records, out):
        seen = {}
        width = None
        for start, end, raw, fields, problem, body in records:
            if out.broken_at is not None:
                out.entries.append(("raw", raw))
                continue
            if out.header is None:
                if fields == [] and problem is None:
                    out.entries.append(("raw", raw))
                    continue
                if problem:
                    raise HeaderError(start, problem)
                self._set_header(fields, start, out)
                out.header_raw = raw
                if out.missing_key:
                    return                # the caller refuses the file, naming the columns
                width = len(fields)
                continue
            if fields == [] and problem is None:
                out.entries.append(("raw", raw))          # a blank line: kept, not a row
                continue
            problem = problem or self._field_problem(fields, width)
            if problem:
                self._reject(out, start, problem, fields, body, raw)
                if end > start or (self.multiline and fields is None):
                    # A record that ran over several lines and could not be read: its end is a guess.
                    out.broken_at = start
                continue
            key_values = [fields[out.key_index[c]].strip() for c in self.key]
            if not all(key_values):
                self._reject(out, start, "empty key column %s" % ", ".join(
                    c for c, v in zip(self.key, key_values) if not v), fields, body, raw)
                continue
            key = KEY_SEPARATOR.join(key_values)
            first_line = seen.get(key) or out.rejected_keys.get(key)
            if first_line is not None:
                self._reject(out, start, "duplicate key '%s' (also on line %d); both rows skipped"
                             % (key, first_line), fields, body, raw)
                row = out.rows.pop(key, None)
                if row is not None:
                    out.rejected.append(Rejection(row.line, "duplicate key '%s' (also on line %d); both rows "
                                                  "skipped" % (key, start), key, self._attributes(out, row.values)))
                    out.entries[out.entries.index(("row", key))] = ("raw", row.raw)
                continue
            seen[key] = start
            out.rows[key] = Row(fields, raw, start)
            out.entries.append(("row", key))

    def _set_header(self, fields, line, out):
        header = [f.strip() for f in fields]
        if header and header[0].startswith(u"\ufeff"):
            header[0] = header[0][1:]
        names = set()
        for column in header:
            if not column:
                raise HeaderError(line, "a column has no name")
            if column in names:
                raise HeaderError(line, "column '%s' appears twice" % column)
            names.add(column)
        out.header = header
        out.index = dict((c, i) for i, c in enumerate(header))
        missing = [c for c in self.key if c not in names]
        out.key_index = dict((c, out.index[c]) for c in self.key if c in out.index)
        out.missing_key = missing

    def _field_problem(self, fields, width):
        if len(fields) != width:
            return "expected %d fields, found %d" % (width, len(fields))
        for position, value in enumerate(fields):
            if len(value) > self.max_field_length:
                return "field %d is %d characters long, more than max_field_length %d" % (
                    position + 1, len(value), self.max_field_length)
            bad = _CONTROL_RE.search(value) or (None if self.multiline else _LINE_BREAK_RE.search(value))
            if bad:
                return "field %d holds %s" % (position + 1, describe_character(bad.group(0)))
        return None

    def _reject(self, out, line, error, fields, body, raw):
        key, attributes = self._salvage(out, fields, body)
        out.rejected.append(Rejection(line, error, key, attributes))
        if key is not None:
            out.rejected_keys.setdefault(key, line)
        guess = [part.strip().strip('"') for part in body.split(self.delimiter)]
        guessed = [guess[out.key_index[c]] if out.key_index[c] < len(guess) else "" for c in self.key]
        if all(guessed):
            # Not trusted to protect anyone, but enough to refuse writing a second row with that key.
            out.suspect_keys.setdefault(KEY_SEPARATOR.join(guessed), line)
        out.entries.append(("raw", raw))

    def _salvage(self, out, fields, body):
        """The key and attributes a rejected row holds, when they can be read without guessing: from its fields
        when their count is right, else from the fields before the first quote (a plain split is exact there)."""
        if fields is None or len(fields) != len(out.header):
            plain = body.split(self.delimiter)
            quote = next((i for i, part in enumerate(plain) if '"' in part), len(plain))
            fields = plain[:quote]
            if fields and len(plain) != len(out.header) and quote == len(plain):
                fields = []          # no quote, yet a wrong count: a delimiter too many or too few somewhere
        attributes = {}
        for column, position in out.index.items():
            if position < len(fields):
                value = fields[position]
                if not _CONTROL_RE.search(value) and len(value) <= self.max_field_length:
                    attributes[column] = value
        key_values = [attributes.get(c, "").strip() for c in self.key]
        key = KEY_SEPARATOR.join(key_values) if all(key_values) else None
        return key, dict((k, v) for k, v in attributes.items() if v)

    @staticmethod
    def _attributes(out, values):
        return dict((c, v) for c, v in zip(out.header, values) if v)


def _decode(raw):
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return raw.decode("utf-8", "replace"), "byte 0x%02x at column %d is not valid UTF-8" % (
            raw[exc.start], exc.start + 1)


def _csv_problem(exc, text):
    message = str(exc)
    if "unexpected end of data" in message:
        quote = text.find('"')
        return "a quote opened%s is never closed" % (" at column %d" % (quote + 1) if quote >= 0 else "")
    return "not valid CSV: %s" % message
