# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``csv`` connector: a delimited text file, object type ``row``, read and write.

Connection settings: ``path``, ``delimiter`` (default ``,``), ``encoding`` (``utf-8`` or ``utf-8-sig``; a byte order
mark is accepted on read either way and kept on write), ``key`` (the column, or list of columns, that identify a
row), ``multi_value_separator`` (default ``;``). The workflow's ``multi_valued`` option names the columns that hold
several values.

Reading never guesses: a row with the wrong number of fields, an empty or duplicate key, or bytes that are not
UTF-8 is reported with its line number and skipped (both rows of a duplicate key), and the engine leaves whatever
target such a row would match alone.

Writing is atomic (a temporary file in the same directory, then rename, keeping the file's mode); rows that did not
change keep their exact original bytes, and when nothing changed the file is not written at all.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import codecs
import csv
import io
import os
import tempfile

from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import (
    AttributeSpec, ChangeResult, Connector, ReadResult,
)
from ansible_collections.idsync.entra.plugins.module_utils.connectors.csv_reader import (
    DEFAULT_MAX_FIELD_LENGTH, KEY_SEPARATOR, HeaderError, Reader, Row,
)
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError


def to_text(value, separator):
    """A value as CSV cell text: null -> "", booleans lower-case, lists joined with the multi-value separator."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return separator.join(to_text(v, separator) for v in value if v not in (None, ""))
    if isinstance(value, dict) and "id" in value:
        return str(value["id"])
    return value if isinstance(value, str) else str(value)


class CsvFileError(IdsyncError):
    pass


class CsvConnector(Connector):
    kind = "csv"

    def __init__(self, record, context=None):
        super(CsvConnector, self).__init__(record, context)
        settings = self.settings
        path = settings.get("path")
        if not path:
            raise ConfigError("Connection %s: a csv connection needs a path" % self.name)
        self.path = os.path.abspath(os.path.expanduser(path))
        self.delimiter = settings.get("delimiter") or ","
        if len(self.delimiter) != 1:
            raise ConfigError("Connection %s: delimiter must be one character, not %r" % (self.name, self.delimiter))
        self.encoding = (settings.get("encoding") or "utf-8").lower().replace("_", "-")
        if self.encoding in ("utf8",):
            self.encoding = "utf-8"
        if self.encoding not in ("utf-8", "utf-8-sig"):
            raise ConfigError("Connection %s: encoding must be utf-8 or utf-8-sig (UTF-8 with a byte order mark), "
                              "not %s" % (self.name, settings.get("encoding")))
        key = settings.get("key")
        if isinstance(key, str):
            key = [key]
        if not key:
            raise ConfigError("Connection %s: a csv connection needs key (the column or columns that identify a "
                              "row)" % self.name)
        self.key = list(key)
        self.separator = settings.get("multi_value_separator") or ";"
        self.multiline = bool(settings.get("multiline", False))
        self.max_field_length = int(settings.get("max_field_length") or DEFAULT_MAX_FIELD_LENGTH)
        endpoint = self.context.get("endpoint") or {}
        self.multi_valued = set(endpoint.get("multi_valued") or [])
        self.columns_hint = list(self.context.get("columns") or [])
        self._loaded = False
        self._changed = False

    # -- description ----------------------------------------------------------------------------------------
    def object_types(self):
        return ["row"]

    def label_attributes(self, object_type):
        return list(self.key)

    def _spec(self, column):
        return AttributeSpec(column, multi_valued=column in self.multi_valued, separator=self.separator,
                             required_on_create=column in self.key)

    def _require_source_file(self):
        if self.context.get("side") == "source" and self.header is None:
            # A missing or empty source file is an accident (a failed export, a wrong path), never "everyone left".
            raise CsvFileError("Connection %s: the source file %s %s" % (
                self.name, self.path, "does not exist" if self.original is None else "has no header row"))

    def schema(self, object_type):
        self.check_object_type(object_type)
        self._load()
        self._require_source_file()
        columns = self.header if self.header is not None else self._new_header()
        return dict((column, self._spec(column)) for column in columns)

    def id_for_create(self, object_type, attributes):
        parts = []
        for column in self.key:
            value = to_text(attributes.get(column), self.separator).strip()
            if not value:
                return None
            parts.append(value)
        return KEY_SEPARATOR.join(parts)

    def _new_header(self):
        header = list(self.key)
        for column in self.columns_hint:
            if column not in header:
                header.append(column)
        return header

    # -- reading --------------------------------------------------------------------------------------------
    def _load(self):
        if self._loaded:
            return
        self._loaded = True
        self.rows = {}
        self.entries = []                 # file order: ("raw", bytes) or ("row", id)
        self.rejected = []
        self.rejected_keys = {}
        self.header = None
        self.header_raw = None
        self.bom = self.encoding == "utf-8-sig"
        self.newline = "\n"
        self.original = None
        self.mode = None
        self.complete = True
        self.broken_at = None
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
                self.mode = os.fstat(handle.fileno()).st_mode & 0o7777
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CsvFileError("Connection %s: cannot read %s: %s" % (self.name, self.path, exc.strerror or exc))
        self.original = data
        reader = Reader(self.key, delimiter=self.delimiter, multiline=self.multiline,
                        max_field_length=self.max_field_length)
        try:
            parsed = reader.parse(data)
        except HeaderError as exc:
            raise CsvFileError("%s line %d (the header): %s" % (self.path, exc.line, exc.message))
        self.bom = parsed.bom if data else self.bom
        self.newline = parsed.newline
        if parsed.header is None:
            return
        if parsed.missing_key:
            raise ConfigError("Connection %s: key column(s) %s are not in the header of %s (it has %s)"
                              % (self.name, ", ".join(parsed.missing_key), self.path, ", ".join(parsed.header)))
        self.header = parsed.header
        self.header_raw = parsed.header_raw
        self.index = parsed.index
        self.key_index = parsed.key_index
        self.rows = parsed.rows
        self.entries = parsed.entries
        self.rejected_keys = dict(parsed.suspect_keys, **parsed.rejected_keys)
        self.complete = parsed.complete
        self.broken_at = parsed.broken_at
        base = os.path.basename(self.path)
        for item in parsed.rejected:
            self.rejected.append({"object": "%s line %d" % (base, item.line), "error": item.error,
                                  "attributes": item.attributes, "key": item.key})

    def _incomplete_reason(self):
        if self.broken_at is not None:
            return ("%s cannot be read from line %d on (a record there spans lines and cannot be read), so nothing "
                    "after it is known" % (os.path.basename(self.path), self.broken_at))
        unknown = [r["object"] for r in self.rejected if not r.get("key")]
        if unknown:
            return ("%d rejected row(s) of %s hold no readable key (first: %s), so who they are is unknown"
                    % (len(unknown), os.path.basename(self.path), unknown[0]))
        return None

    def _object(self, row):
        obj = {}
        for column, value in zip(self.header, row.values):
            if column in self.multi_valued:
                obj[column] = [v.strip() for v in value.split(self.separator) if v.strip()]
            else:
                obj[column] = value
        return obj

    def read(self, object_type, attributes, scope_filter=None, delta=False):
        self.check_object_type(object_type)
        self.rows = None
        self._loaded = False
        self._load()
        notes = []
        self._require_source_file()
        if self.original is None:
            notes.append("%s does not exist yet" % self.path)
        objects = {}
        if self.header is not None:
            for oid, row in self.rows.items():
                objects[oid] = self._object(row)
        return ReadResult(objects, full=True, notes=notes, rejected=list(self.rejected), mode="full",
                          incomplete=self._incomplete_reason())

    # -- writing --------------------------------------------------------------------------------------------
    def apply(self, object_type, changes):
        self.check_object_type(object_type)
        self._load()
        if self.header is None:
            header = self._new_header()
            self.header = header
            self.index = dict((c, i) for i, c in enumerate(header))
            self.key_index = dict((c, self.index[c]) for c in self.key)
            self.header_raw = None
        results = []
        for change in changes:
            try:
                results.append(self._apply_one(change))
            except IdsyncError as exc:
                results.append(ChangeResult(change.key, False, error=exc.msg))
        return results

    def _cells(self, attributes, base=None):
        values = list(base) if base is not None else [""] * len(self.header)
        for column, value in attributes.items():
            position = self.index.get(column)
            if position is None:
                raise IdsyncError("column '%s' is not in the header of %s" % (column, self.path))
            values[position] = to_text(value, self.separator)
        return values

    def _apply_one(self, change):
        if change.op == "create":
            values = self._cells(change.attributes)
            key_values = [values[self.key_index[c]].strip() for c in self.key]
            if not all(key_values):
                return ChangeResult(change.key, False, error="no value for the key column(s) %s" % ", ".join(self.key))
            oid = KEY_SEPARATOR.join(key_values)
            if oid in self.rows:
                return ChangeResult(change.key, False, error="a row with key '%s' already exists" % oid)
            if oid in self.rejected_keys:
                return ChangeResult(change.key, False, error="line %d holds key '%s' but is malformed; fix it first"
                                    % (self.rejected_keys[oid], oid))
            row = Row(values, None, None)
            row.dirty = True
            self.rows[oid] = row
            self.entries.append(("row", oid))
            self._changed = True
            return ChangeResult(change.key, True, id=oid)
        row = self.rows.get(change.id)
        if row is None:
            return ChangeResult(change.key, False, error="no row with key '%s'" % change.id)
        if change.op == "delete":
            del self.rows[change.id]
            self._changed = True
            return ChangeResult(change.key, True, id=change.id)
        if change.op == "update":
            attributes = dict(change.attributes)
            for attribute, delta in change.member_changes.items():
                position = self.index.get(attribute)
                if position is None:
                    raise IdsyncError("column '%s' is not in the header of %s" % (attribute, self.path))
                current = [v.strip() for v in row.values[position].split(self.separator) if v.strip()]
                removed = set(str(v) for v in delta.get("remove") or [])
                current = [v for v in current if v not in removed]
                current += [str(v) for v in delta.get("add") or [] if str(v) not in current]
                attributes[attribute] = current
            if any(c in attributes for c in self.key):
                return ChangeResult(change.key, False, error="the key column(s) %s of a row cannot change; the "
                                    "workflow matched it on them" % ", ".join(self.key))
            values = self._cells(attributes, row.values)
            if values != row.values:
                row.values = values
                row.dirty = True
                self._changed = True
            return ChangeResult(change.key, True, id=change.id)
        return ChangeResult(change.key, False, error="unknown operation %s" % change.op)

    def render(self):
        """The file's bytes after the changes applied so far."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.delimiter, lineterminator=self.newline,
                            quoting=csv.QUOTE_MINIMAL)
        chunks = []
        if self.bom:
            chunks.append(codecs.BOM_UTF8)

        def ensure_newline():
            if chunks and not chunks[-1].endswith((b"\n", b"\r")) and chunks[-1] != codecs.BOM_UTF8:
                chunks[-1] = chunks[-1] + self.newline.encode("ascii")

        def written(values):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(values)
            return buffer.getvalue().encode("utf-8")

        if self.header_raw is not None:
            chunks.append(self.header_raw)
        else:
            chunks.append(written(self.header))
        for kind, value in self.entries:
            if kind == "raw":
                if value:
                    ensure_newline()
                    chunks.append(value)
                continue
            row = self.rows.get(value)
            if row is None:
                continue                  # deleted
            ensure_newline()
            if row.dirty or row.raw is None:
                chunks.append(written(row.values))
            else:
                chunks.append(row.raw)
        return b"".join(chunks)

    def flush(self):
        if not self._changed:
            return False
        data = self.render()
        self._changed = False
        if self.original is not None and data == self.original:
            return False
        write_atomic(self.path, data, self.mode)
        self.original = data
        for row in self.rows.values():
            row.dirty = False
        return True

    def stats(self):
        return {}


def write_atomic(path, data, mode=None):
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename; keep ``mode`` (or
    use the umask's default for a new file)."""
    directory = os.path.dirname(path) or "."
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
