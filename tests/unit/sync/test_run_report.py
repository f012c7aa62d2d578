"""The run report writer: paths, private atomic files, pruning, escaping, no secrets, JSON and HTML content."""
import base64
import hashlib
import json
import os
import re
import stat
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from ansible_collections.idsync.entra.plugins.module_utils import keypair
from ansible_collections.idsync.entra.plugins.module_utils.sync import run_report
from ansible_collections.idsync.entra.plugins.module_utils.sync.run_report import (
    prune_reports, render_html, report_paths, workflow_dir_name, write_run_report,
)

XSS = "<script>alert(1)</script>"


def sample_report(**overrides):
    report = {
        "format": 1, "workflow": "hr_to_entra", "run_id": 12, "check_mode": False, "status": "failed",
        "started": "2026-11-30T08:00:00Z", "finished": "2026-11-30T08:01:10Z",
        "source": "hr_file (csv row)", "target": "contoso (azure_ad user)",
        "summary": {"created": 1, "updated": 1, "deprovisioned": 1, "unchanged": 297, "failed": 1,
                    "membership_added": 2, "membership_removed": 1, "groups_created": 1},
        "timings": {"read_source": 0.1, "read_target": 1.2, "plan": 0.3, "apply": 4.0, "total": 5.7},
        "stats": {"requests": 40, "writes": 12, "retries": 0, "throttled": 0},
        "notes": ["2 rows were rejected"],
        "rows": [
            {"outcome": "created", "object": "ada.lovelace@contoso.com", "source": "E000001", "id": None,
             "changes": {"displayName": {"before": None, "after": "Ada Lovelace"},
                         "department": {"before": None, "after": "R&D"}}},
            {"outcome": "updated", "object": "bob@contoso.com", "source": "E000002", "id": "guid-2",
             "changes": {"jobTitle": {"before": "A", "after": "B"}}},
            {"outcome": "deprovisioned", "object": "cy@contoso.com", "id": "guid-3",
             "changes": {"accountEnabled": {"before": True, "after": False}}},
            {"outcome": "failed", "object": "di@contoso.com", "source": "E000004", "error": "the UPN is taken",
             "rule": "steps.create.attributes.userPrincipalName", "step": "create"},
            {"outcome": "membership", "object": "Sales staff", "id": "guid-g",
             "changes": {"members": {"add": ["ada", "bob"], "remove": ["cy"]}}},
            {"outcome": "group created", "object": "Sales staff",
             "changes": {"displayName": {"before": None, "after": "Sales staff"}}},
        ],
        "unchanged": 297,
    }
    report.update(overrides)
    return report


class TableRows(HTMLParser):
    """The page's body rows: data-outcome and cell texts per <tr> of #rows tbody."""

    def __init__(self, page):
        HTMLParser.__init__(self)
        self.rows, self.in_body, self.cell = [], False, None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append({"outcome": dict(attrs).get("data-outcome"), "cells": []})
        elif tag == "td" and self.in_body:
            self.cell = []
        elif tag == "br" and self.cell is not None:
            self.cell.append("\n")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_body = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1]["cells"].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


# -- paths ---------------------------------------------------------------------------------------------------------

def test_paths_of_a_run_and_of_a_plan(tmp_path):
    store = str(tmp_path / "idsync" / "store.db")
    reports = tmp_path / "idsync" / "reports" / "hr_to_entra"
    assert report_paths(store, "hr_to_entra", run_id=12) == {
        "json": str(reports / "run-12.json"), "html": str(reports / "run-12.html")}
    moment = datetime(2026, 11, 30, 9, 5, 7, tzinfo=timezone(timedelta(hours=1)))
    assert report_paths(store, "hr_to_entra", now=moment)["json"] == str(reports / "plan-20261130T080507Z.json")
    assert report_paths(store, "hr_to_entra", now=0)["html"] == str(reports / "plan-19700101T000000Z.html")
    assert report_paths(store, "hr_to_entra", now=datetime(2026, 1, 2, 3, 4, 5))["json"].endswith(
        "plan-20260102T030405Z.json")


@pytest.mark.parametrize("workflow", ["../x", "..", ".", "", "a/../../b", "/etc", "..\\x", "x\x00y", "ünï côdé"])
def test_workflow_names_stay_inside_reports(tmp_path, workflow):
    reports = os.path.realpath(str(tmp_path / "reports"))
    path = os.path.realpath(report_paths(str(tmp_path / "store.db"), workflow, run_id=1)["json"])
    directory = os.path.dirname(path)
    assert os.path.dirname(directory) == reports
    assert re.match(r"^[A-Za-z0-9_.-]+$", os.path.basename(directory))


def test_plain_names_are_kept_and_changed_names_never_collide():
    assert workflow_dir_name("hr_to_entra") == "hr_to_entra"
    assert workflow_dir_name("HR.v2-daily") == "HR.v2-daily"
    assert len(set(workflow_dir_name(n) for n in ("a/b", "a_b", "a b", "a?b"))) == 4


# -- writing -------------------------------------------------------------------------------------------------------

def test_files_are_0600_and_directories_0700_whatever_the_umask(tmp_path):
    (tmp_path / "reports").mkdir(mode=0o755)
    os.chmod(str(tmp_path / "reports"), 0o755)
    paths = report_paths(str(tmp_path / "store.db"), "hr_to_entra", run_id=1)
    old = os.umask(0)
    try:
        assert write_run_report(paths, sample_report()) == paths
    finally:
        os.umask(old)
    assert mode(paths["json"]) == 0o600 and mode(paths["html"]) == 0o600
    assert mode(tmp_path / "reports") == 0o700 and mode(tmp_path / "reports" / "hr_to_entra") == 0o700


def test_only_report_directories_are_tightened(tmp_path):
    os.chmod(str(tmp_path), 0o755)
    write_run_report({"json": str(tmp_path / "mine" / "r.json"), "html": str(tmp_path / "mine" / "r.html")},
                     sample_report())
    assert mode(tmp_path) == 0o755 and mode(tmp_path / "mine") == 0o700


def test_a_rewrite_replaces_the_file_and_a_failed_one_leaves_the_old_report(tmp_path, monkeypatch):
    paths = report_paths(str(tmp_path / "store.db"), "hr_to_entra", run_id=1)
    write_run_report(paths, sample_report(status="plan"))
    first_inode = os.stat(paths["json"]).st_ino
    write_run_report(paths, sample_report(status="succeeded"))
    assert os.stat(paths["json"]).st_ino != first_inode            # renamed into place, not rewritten in place
    before = open(paths["json"], "rb").read()

    def broken_rename(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(keypair.os, "rename", broken_rename)
    with pytest.raises(OSError):
        write_run_report(paths, sample_report(status="failed"))
    assert open(paths["json"], "rb").read() == before
    assert sorted(os.listdir(os.path.dirname(paths["json"]))) == ["run-1.html", "run-1.json"]


def test_json_round_trips_and_diffs_well(tmp_path):
    report = sample_report()
    paths = write_run_report(report_paths(str(tmp_path / "store.db"), "hr_to_entra", run_id=12), report)
    text = open(paths["json"], encoding="utf-8").read()
    assert json.loads(text) == report
    assert text == json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def test_secrets_are_dropped_from_both_files(tmp_path):
    report = sample_report()
    report["rows"][0]["changes"].update({
        "passwordProfile": {"before": None, "after": {"password": "Hunter2-profile"}},
        "unicodePwd": {"before": None, "after": "Hunter2-unicode"},
        "clientSecret": {"before": None, "after": "Hunter2-secret"},
        "userPassword": {"before": None, "after": "Hunter2-user"},
    })
    report["rows"][1]["password"] = "Hunter2-row"
    paths = write_run_report(report_paths(str(tmp_path / "store.db"), "hr_to_entra", run_id=12), report)
    for path in paths.values():
        text = open(path, encoding="utf-8").read()
        assert "Hunter2" not in text
        assert not re.search("password|unicodePwd|clientSecret", text)
        assert "Ada Lovelace" in text and "jobTitle" in text
    written = json.load(open(paths["json"], encoding="utf-8"))
    assert sorted(written["rows"][0]["changes"]) == ["department", "displayName"]


# -- pruning -------------------------------------------------------------------------------------------------------

def make_reports(directory, stems, start=1000000000):
    directory.mkdir(parents=True, exist_ok=True)
    for age, stem in enumerate(stems):
        for extension in (".json", ".html"):
            path = directory / (stem + extension)
            path.write_text("{}")
            os.utime(str(path), (start + age, start + age))


def test_pruning_keeps_the_newest_pairs_and_leaves_other_files(tmp_path):
    directory = tmp_path / "reports" / "hr_to_entra"
    make_reports(directory, ["run-9", "plan-20261130T080000Z", "run-10", "run-11", "plan-20261201T080000Z"])
    (directory / "notes.txt").write_text("mine")
    removed = prune_reports(str(directory), keep=3)
    assert sorted(os.path.basename(p) for p in removed) == [
        "plan-20261130T080000Z.html", "plan-20261130T080000Z.json", "run-9.html", "run-9.json"]
    assert sorted(os.listdir(str(directory))) == [
        "notes.txt", "plan-20261201T080000Z.html", "plan-20261201T080000Z.json", "run-10.html", "run-10.json",
        "run-11.html", "run-11.json"]


def test_pruning_breaks_ties_by_run_number_and_tolerates_a_missing_directory(tmp_path):
    directory = tmp_path / "wf"
    make_reports(directory, ["run-10", "run-9", "run-100"])
    for name in os.listdir(str(directory)):
        os.utime(str(directory / name), (5, 5))
    prune_reports(str(directory), keep=1)
    assert sorted(os.listdir(str(directory))) == ["run-100.html", "run-100.json"]
    assert prune_reports(str(directory), keep=0) == [str(directory / "run-100.json"), str(directory / "run-100.html")]
    assert prune_reports(str(tmp_path / "absent")) == []


# -- the page ------------------------------------------------------------------------------------------------------

def test_one_table_row_per_report_row_with_its_outcome():
    report = sample_report()
    report["rows"] = report["rows"] * 50
    page = render_html(report)
    rows = TableRows(page).rows
    assert len(rows) == len(report["rows"]) == 300
    assert [r["outcome"] for r in rows] == [r["outcome"] for r in report["rows"]]
    assert '<p id="counter" aria-live="polite">300 of 300 rows</p>' in page
    assert '<button type="button" data-outcome="failed" aria-pressed="false">failed 50</button>' in page


def test_changes_read_as_before_after_and_members_as_plus_minus():
    cells = dict((r["outcome"], r["cells"]) for r in TableRows(render_html(sample_report())).rows)
    assert cells["created"][1:5] == ["ada.lovelace@contoso.com", "E000001", "",
                                     "department: (none) \u2192 R&D\ndisplayName: (none) \u2192 Ada Lovelace"]
    assert cells["deprovisioned"][4] == "accountEnabled: true \u2192 false"
    assert cells["membership"][4] == "+ada\n+bob\n-cy"
    assert cells["failed"][5] == "the UPN is taken\nrule steps.create.attributes.userPrincipalName \u00b7 step create"


def test_everything_is_escaped():
    report = sample_report(workflow=XSS, source=XSS, notes=[XSS])
    report["rows"][0]["object"] = XSS
    report["rows"][0]["changes"]["displayName"]["after"] = XSS
    report["rows"][4]["changes"]["members"]["add"] = [XSS]
    report["rows"][3]["error"] = XSS
    report["rows"].append({"outcome": 'x" onmouseover="alert(1)', "object": "o"})
    page = render_html(report)
    assert page.count("<script") == 1                             # the page's own script, nothing injected
    assert "alert(1)</script>" not in page
    assert 'onmouseover="' not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 7
    assert TableRows(page).rows[0]["cells"][1] == XSS              # shown as text


def test_the_policy_allows_exactly_the_inline_script_and_style():
    page = render_html(sample_report(check_mode=True, status="plan", run_id=None))
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    style = re.search(r"<style>(.*)</style>", page, re.S).group(1)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)

    def digest(text):
        return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    assert "script-src %s" % digest(script) in policy and "style-src %s" % digest(style) in policy
    assert "default-src 'none'" in policy
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)     # no external asset
    assert "<title>hr_to_entra \u00b7 plan \u00b7 plan</title>" in page


def test_run_report_needs_only_the_standard_library():
    source = open(run_report.__file__, encoding="utf-8").read()
    imported = set(re.findall(r"^(?:from|import) ([\w.]+)", source, re.M))
    assert imported <= {"__future__", "base64", "hashlib", "json", "os", "re", "time", "datetime", "html",
                        "ansible_collections.idsync.entra.plugins.module_utils.keypair"}
