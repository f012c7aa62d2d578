"""The csv connector: parsing (malformed lines reported with their number), writing (atomic, byte-identical)."""
import codecs
import os
import stat

import pytest

from ansible_collections.idsync.entra.plugins.module_utils.connectors import get_connector
from ansible_collections.idsync.entra.plugins.module_utils.connectors.base import Change
from ansible_collections.idsync.entra.plugins.module_utils.connectors.csv import CsvFileError
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError


def connector(path, context=None, **settings):
    settings.setdefault("key", ["EmployeeID"])
    return get_connector({"name": "hr", "connector": "csv", "settings": dict(settings, path=str(path))}, context or {})


def write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_reads_rows_by_key(tmp_path):
    path = write(tmp_path / "hr.csv", "EmployeeID,Name\nE1,Ann\nE2,Bob\n")
    result = connector(path).read("row", ["Name"])
    assert result.objects == {"E1": {"EmployeeID": "E1", "Name": "Ann"}, "E2": {"EmployeeID": "E2", "Name": "Bob"}}
    assert result.rejected == []


MALFORMED = (b"EmployeeID,Name,Dept\n"
             b"E1,Ann,Sales\n"
             b"E2,Bob\n"                       # line 3: too few fields
             b"E3,Carl,IT,extra\n"             # line 4: too many
             b"E4,D\xffn,IT\n"                 # line 5: not UTF-8
             b",Nobody,IT\n"                   # line 6: empty key
             b"E5,\"Multi\nline\",IT\n"        # lines 7-8: a quoted line break (a row per line by default)
             b"E1,Ann again,Sales\n"           # line 9: duplicate of line 2
             b"\n"
             b"E6,Fay,HR\n")


def test_malformed_rows_are_reported_with_line_numbers_and_skipped(tmp_path):
    result = connector(write(tmp_path / "hr.csv", MALFORMED)).read("row", [])
    assert sorted(result.objects) == ["E6"]
    errors = dict((r["object"], r["error"]) for r in result.rejected)
    assert errors["hr.csv line 3"] == "expected 3 fields, found 2"
    assert errors["hr.csv line 4"] == "expected 3 fields, found 4"
    assert "0xff" in errors["hr.csv line 5"] and "UTF-8" in errors["hr.csv line 5"]
    assert "empty key" in errors["hr.csv line 6"]
    assert errors["hr.csv line 7"] == "a quote opened at column 4 is never closed"
    assert "duplicate key 'E1'" in errors["hr.csv line 9"] and "line 2" in errors["hr.csv line 9"]
    assert "duplicate key 'E1'" in errors["hr.csv line 2"]
    keys = dict((r["object"], r.get("key")) for r in result.rejected)
    # a key is salvaged only where it is exact: the fields before an open quote, a row of the right width
    assert keys["hr.csv line 7"] == "E5" and keys["hr.csv line 5"] == "E4" and keys["hr.csv line 2"] == "E1"
    # a row of the wrong width or a fragment of a line holds no key that can be trusted: the read is incomplete
    assert keys["hr.csv line 3"] is None and keys["hr.csv line 4"] is None and keys["hr.csv line 8"] is None
    assert "hold no readable key" in result.incomplete


def test_multiline_mode_reads_quoted_line_breaks(tmp_path):
    result = connector(write(tmp_path / "hr.csv", MALFORMED), multiline=True).read("row", [])
    assert sorted(result.objects) == ["E5", "E6"]
    assert result.objects["E5"]["Name"] == "Multi\nline"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_bom_is_accepted_either_way_and_kept(tmp_path, encoding):
    data = codecs.BOM_UTF8 + "EmployeeID;Name\r\nE1;Zoë\r\n".encode("utf-8")
    path = write(tmp_path / "hr.csv", data)
    conn = connector(path, delimiter=";", encoding=encoding)
    result = conn.read("row", [])
    assert result.objects == {"E1": {"EmployeeID": "E1", "Name": "Zoë"}}
    conn.apply("row", [Change("create", "E2", attributes={"EmployeeID": "E2", "Name": "Bob"})])
    assert conn.flush() is True
    assert path.read_bytes() == data + b"E2;Bob\r\n"


def test_multi_valued_columns_and_composite_keys(tmp_path):
    path = write(tmp_path / "g.csv", "Site,Code,Members\nParis,1,E1; E2\nOslo,1,\n")
    conn = connector(path, {"endpoint": {"multi_valued": ["Members"]}}, key=["Site", "Code"])
    result = conn.read("row", [])
    assert result.objects["Paris|1"]["Members"] == ["E1", "E2"]
    assert result.objects["Oslo|1"]["Members"] == []
    assert conn.schema("row")["Members"].multi_valued


def test_unchanged_file_is_not_written(tmp_path):
    data = "EmployeeID,Name\nE1,\"Ann\"\nE2,Bob"           # quoting and missing final newline kept as they are
    path = write(tmp_path / "hr.csv", data)
    before = os.stat(path).st_mtime_ns
    conn = connector(path)
    conn.read("row", [])
    conn.apply("row", [Change("update", "E1", id="E1", attributes={"Name": "Ann"})])
    assert conn.flush() is False
    assert os.stat(path).st_mtime_ns == before
    assert path.read_text() == data


def test_writes_keep_untouched_rows_byte_for_byte(tmp_path):
    data = 'EmployeeID,Name,Dept\n"E1","Ann","Sales"\nE2,Bob,IT\nE3,Bad\nE4,Dan,IT\n'
    path = write(tmp_path / "hr.csv", data)
    os.chmod(path, 0o640)
    conn = connector(path)
    result = conn.read("row", [])
    assert [r["object"] for r in result.rejected] == ["hr.csv line 4"]
    results = conn.apply("row", [
        Change("update", "E2", id="E2", attributes={"Dept": "Sales, EMEA"}),
        Change("delete", "E4", id="E4"),
        Change("create", "E5", attributes={"EmployeeID": "E5", "Name": "Eve", "Dept": None}),
        Change("create", "E1", attributes={"EmployeeID": "E1", "Name": "Again"}),
        Change("create", "E3", attributes={"EmployeeID": "E3", "Name": "Again"}),
    ])
    assert [r.ok for r in results] == [True, True, True, False, False]
    assert "already exists" in results[3].error
    assert "line 4" in results[4].error and "malformed" in results[4].error
    assert conn.flush() is True
    assert path.read_text() == ('EmployeeID,Name,Dept\n"E1","Ann","Sales"\nE2,Bob,"Sales, EMEA"\nE3,Bad\n'
                                'E5,Eve,\n')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["hr.csv"]      # no temporary file left


def test_new_file_gets_key_and_workflow_columns(tmp_path):
    path = tmp_path / "out.csv"
    conn = connector(path, {"columns": ["EmployeeID", "UPN", "Groups"]})
    assert conn.read("row", []).objects == {}
    assert sorted(conn.schema("row")) == ["EmployeeID", "Groups", "UPN"]
    conn.apply("row", [Change("create", "x", attributes={"EmployeeID": "E1", "UPN": "a@b", "Groups": ["g1", "g2"],
                                                        })])
    conn.flush()
    assert path.read_text() == "EmployeeID,UPN,Groups\nE1,a@b,g1;g2\n"


def test_missing_key_column_and_bad_settings(tmp_path):
    path = write(tmp_path / "hr.csv", "ID,Name\n1,a\n")
    with pytest.raises(ConfigError):
        connector(path).read("row", [])
    with pytest.raises(ConfigError):
        connector(path, encoding="latin-1")
    with pytest.raises(ConfigError):
        get_connector({"name": "x", "connector": "csv", "settings": {"path": str(path)}})
    with pytest.raises(CsvFileError):
        connector(write(tmp_path / "dup.csv", "EmployeeID,A,A\n"), key=["EmployeeID"]).read("row", [])


def test_key_columns_cannot_change(tmp_path):
    path = write(tmp_path / "hr.csv", "EmployeeID,Name\nE1,Ann\n")
    conn = connector(path)
    conn.read("row", [])
    result = conn.apply("row", [Change("update", "E1", id="E1", attributes={"EmployeeID": "E9"})])
    assert not result[0].ok
