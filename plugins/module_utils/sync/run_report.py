# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run report: a JSON document and a self-contained HTML page per sync run, beside the store.

``<store dir>/reports/<workflow>/run-<run id>.{json,html}`` for an applied run, ``plan-<UTC time>.{json,html}`` for a
check-mode plan. Files are written atomically and 0600, the report directories are 0700. Whatever the engine
passes, an attribute or change named like a password or a secret reaches neither file.

The page needs nothing outside itself. Its rows are rendered here, so it reads fine without script; a few lines of
inline script add a filter by outcome, a search box and an "N of M rows" counter, kept in the URL fragment
(``#outcome=failed&q=smith``). Its Content-Security-Policy allows that script and style (by hash) and nothing else.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import os
import re
import time
from datetime import datetime, timezone
from html import escape

from ansible_collections.idsync.entra.plugins.module_utils.keypair import atomic_write

FILE_MODE = 0o600
DIR_MODE = 0o700
SECRET_NAME = re.compile(r"passw(or)?d|pwd|secret", re.IGNORECASE)
REPORT_FILE = re.compile(r"^(run-(\d+)|plan-(\d{8}T\d{6}Z))\.(json|html)$")
OUTCOMES = ("created", "updated", "deprovisioned", "failed", "membership", "group created")
SUMMARY_ORDER = ("created", "updated", "deprovisioned", "unchanged", "failed", "membership_added",
                 "membership_removed", "groups_created")
TIMING_ORDER = ("read_source", "read_target", "plan", "apply", "total")
STATS_ORDER = ("requests", "writes", "retries", "throttled")

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:1.5rem;}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.muted,.flow{color:#59636e}.badge{font-size:.8rem;padding:.1rem .5rem;border-radius:1rem;color:#fff;
background:#59636e;vertical-align:middle}.s-succeeded{background:#1a7f37}.s-failed{background:#cf222e}
.s-stopped,.s-interrupted{background:#9a6700}.s-plan{background:#0969da}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem;margin:.5rem 0}dt{color:#59636e}dd{margin:0}
ul.counts{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0;margin:0}
ul.counts li{border:1px solid #d1d9e0;border-radius:.4rem;padding:.3rem .7rem}ul.counts b{font-size:1.1rem}
#filters{display:flex;flex-wrap:wrap;gap:.3rem}
.controls{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.8rem 0 .4rem}
button{font:inherit;border:1px solid #d1d9e0;background:#f6f8fa;border-radius:.4rem;padding:.2rem .6rem;cursor:pointer}
button[aria-pressed=true]{background:#0969da;border-color:#0969da;color:#fff}
input[type=search]{font:inherit;padding:.2rem .5rem;min-width:16rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;
border-bottom:1px solid #d1d9e0;overflow-wrap:anywhere}thead th{position:sticky;top:0;background:#f6f8fa}
td.id{font:12px ui-monospace,monospace;color:#59636e}td.outcome{font-weight:600;white-space:nowrap;
border-left:4px solid #d1d9e0}.add{color:#1a7f37}.remove{color:#cf222e}.error{color:#cf222e}
.o-created td.outcome{color:#1a7f37;border-left-color:#1a7f37}.o-updated td.outcome{color:#0969da;
border-left-color:#0969da}.o-deprovisioned td.outcome{color:#9a6700;border-left-color:#9a6700}
.o-failed td.outcome{color:#cf222e;border-left-color:#cf222e}.o-failed{background:#fff5f5}
.o-membership td.outcome{color:#8250df;border-left-color:#8250df}.o-group-created td.outcome{color:#1b7c83;
border-left-color:#1b7c83}[hidden]{display:none!important}
"""

SCRIPT = """
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("#rows tbody tr"));
  var texts = rows.map(function (row) {
    return Array.prototype.map.call(row.cells, function (cell) { return cell.textContent; }).join("\\n").toLowerCase();
  });
  var buttons = Array.prototype.slice.call(document.querySelectorAll("#filters button"));
  var search = document.getElementById("search"), counter = document.getElementById("counter");
  var state = {outcome: "", q: ""};
  function readHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    state.outcome = params.get("outcome") || "";
    if (state.outcome === "all") { state.outcome = ""; }
    state.q = params.get("q") || "";
    search.value = state.q;
  }
  function writeHash() {
    var params = new URLSearchParams();
    if (state.outcome) { params.set("outcome", state.outcome); }
    if (state.q) { params.set("q", state.q); }
    try { history.replaceState(null, "", "#" + params.toString()); } catch (e) { /* the filter still applies */ }
  }
  function show() {
    var q = state.q.toLowerCase(), shown = 0;
    rows.forEach(function (row, i) {
      var visible = (!state.outcome || row.getAttribute("data-outcome") === state.outcome) &&
        texts[i].indexOf(q) !== -1;
      if (row.hidden === visible) { row.hidden = !visible; }
      if (visible) { shown += 1; }
    });
    buttons.forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-outcome") === state.outcome));
    });
    counter.textContent = shown + " of " + rows.length + " rows";
  }
  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      state.outcome = button.getAttribute("data-outcome");
      writeHash();
      show();
    });
  });
  search.addEventListener("input", function () { state.q = search.value; writeHash(); show(); });
  window.addEventListener("hashchange", function () { readHash(); show(); });
  document.getElementById("controls").hidden = false;
  readHash();
  show();
})();
"""


def _csp_hash(text):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; style-src %s; script-src %s" % (
    _csp_hash(STYLE), _csp_hash(SCRIPT))


# -- where reports live ------------------------------------------------------------------------------------------

def workflow_dir_name(workflow):
    """The workflow's name made safe as one directory name; a name that had to change gets a short hash of the
    original, so two workflows never share a directory (``../x`` -> ``_x-<hash>``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", workflow or "").strip(".")[:80]
    if name and name == workflow:
        return name
    digest = hashlib.sha256((workflow or "").encode("utf-8")).hexdigest()[:8]
    return "%s-%s" % (name or "workflow", digest)


def _utc_stamp(now):
    if now is None:
        now = time.time()
    if isinstance(now, datetime):
        moment = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    else:
        moment = datetime.fromtimestamp(now, timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def report_paths(store_path, workflow, run_id=None, now=None):
    """``{"json": ..., "html": ...}``: ``run-<run_id>`` for an applied run, ``plan-<UTC time of now>`` otherwise."""
    store_dir = os.path.dirname(os.path.abspath(os.path.expanduser(store_path)))
    directory = os.path.join(store_dir, "reports", workflow_dir_name(workflow))
    stem = "run-%d" % int(run_id) if run_id is not None else "plan-" + _utc_stamp(now)
    return {"json": os.path.join(directory, stem + ".json"), "html": os.path.join(directory, stem + ".html")}


# -- writing and pruning -----------------------------------------------------------------------------------------

def without_secrets(value):
    """``value`` with every mapping key named like a password or secret dropped, at any depth."""
    if isinstance(value, dict):
        return dict((key, without_secrets(item)) for key, item in value.items() if not SECRET_NAME.search(str(key)))
    if isinstance(value, (list, tuple)):
        return [without_secrets(item) for item in value]
    return value


def _private_dirs(workflow_dir):
    """Create ``reports/<workflow>`` (what is missing, 0700) and make both levels 0700; a parent not named
    ``reports`` (paths not made by report_paths) keeps its mode."""
    old = os.umask(0o077)
    try:
        os.makedirs(workflow_dir, DIR_MODE, exist_ok=True)
    finally:
        os.umask(old)
    os.chmod(workflow_dir, DIR_MODE)
    if os.path.basename(os.path.dirname(workflow_dir)) == "reports":
        os.chmod(os.path.dirname(workflow_dir), DIR_MODE)


def _json_default(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def report_json(report):
    return json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False, default=_json_default) + "\n"


def write_run_report(paths, report):
    """Write the report's JSON and HTML (secrets dropped) to ``paths`` (from report_paths); returns ``paths``.
    Raises OSError (or ConfigError from atomic_write) when the files cannot be written."""
    clean = without_secrets(report)
    _private_dirs(os.path.dirname(paths["json"]))
    atomic_write(paths["json"], report_json(clean).encode("utf-8"), FILE_MODE)
    atomic_write(paths["html"], render_html(clean).encode("utf-8"), FILE_MODE)
    return paths


def _report_order(match, mtime):
    run_number, plan_time = match.group(2), match.group(3)
    return (mtime, ("run", int(run_number)) if run_number else ("plan", plan_time))


def prune_reports(workflow_dir, keep=100):
    """Keep the newest ``keep`` reports (a report: its .json and .html) in one workflow's directory, by modification
    time; returns the paths removed. Files that are not reports are left alone."""
    try:
        names = os.listdir(workflow_dir)
    except FileNotFoundError:
        return []
    newest = {}
    for name in names:
        match = REPORT_FILE.match(name)
        if not match:
            continue
        try:
            mtime = os.stat(os.path.join(workflow_dir, name)).st_mtime
        except FileNotFoundError:
            continue
        stem, order = match.group(1), _report_order(match, mtime)
        if stem not in newest or order > newest[stem]:
            newest[stem] = order
    removed = []
    for stem in sorted(newest, key=newest.get, reverse=True)[max(keep, 0):]:
        for extension in (".json", ".html"):
            path = os.path.join(workflow_dir, stem + extension)
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


# -- the page ----------------------------------------------------------------------------------------------------

def _text(value):
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(item) for item in value) if value else "(none)"
    return str(value)


def _e(value):
    return escape(_text(value), quote=True)


def _e_or_blank(value):
    return "" if value is None else _e(value)


def _css_name(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _ordered(mapping, order):
    mapping = mapping or {}
    return [k for k in order if k in mapping] + sorted(k for k in mapping if k not in order)


def _change_lines(changes):
    lines = []
    for name in sorted(changes or {}):
        change = changes[name]
        prefix = "" if name == "members" else "%s: " % escape(name)
        if isinstance(change, dict) and ("add" in change or "remove" in change):
            lines.extend('<span class="add">%s+%s</span>' % (prefix, _e(v)) for v in change.get("add") or [])
            lines.extend('<span class="remove">%s-%s</span>' % (prefix, _e(v)) for v in change.get("remove") or [])
        elif isinstance(change, dict) and ("before" in change or "after" in change):
            lines.append("%s: %s \u2192 %s" % (escape(name), _e(change.get("before")), _e(change.get("after"))))
        else:
            lines.append("%s: %s" % (escape(name), _e(change)))
    return "<br>".join(lines)


def _error_cell(row):
    if not row.get("error"):
        return ""
    where = ["%s %s" % (label, escape(str(row[key]))) for key, label in (("rule", "rule"), ("step", "step"))
             if row.get(key)]
    detail = '<br><small class="muted">%s</small>' % " \u00b7 ".join(where) if where else ""
    return _e(row["error"]) + detail


def _row(row):
    outcome = _text(row.get("outcome"))
    cells = (_e(outcome), _e(row.get("object")), _e_or_blank(row.get("source")), _e_or_blank(row.get("id")),
             _change_lines(row.get("changes")), _error_cell(row))
    return ('<tr class="%s" data-outcome="%s"><td class="outcome">%s</td><td>%s</td><td>%s</td><td class="id">%s</td>'
            '<td>%s</td><td class="error">%s</td></tr>') % (("o-" + _css_name(outcome), escape(outcome)) + cells)


def outcome_counts(rows):
    counts = {}
    for row in rows:
        outcome = _text(row.get("outcome"))
        counts[outcome] = counts.get(outcome, 0) + 1
    return [(outcome, counts[outcome]) for outcome in _ordered(counts, OUTCOMES)]


def _title(report):
    kind = "run %s" % report["run_id"] if report.get("run_id") is not None else "plan"
    return "%s \u00b7 %s \u00b7 %s" % (_text(report.get("workflow")), kind, _text(report.get("status")))


def _header(report):
    kind = "run %s" % report["run_id"] if report.get("run_id") is not None else "plan"
    status = _text(report.get("status"))
    facts = [("Started", report.get("started")), ("Finished", report.get("finished")),
             ("Mode", "check mode: nothing was written" if report.get("check_mode") else "applied")]
    return ('<header><h1 id="title">%s <span class="muted">%s</span> <span class="badge %s">%s</span></h1>'
            '<div class="flow">%s \u2192 %s</div><dl class="facts">%s</dl></header>') % (
        _e(report.get("workflow")), _e(kind), "s-" + _css_name(status), _e(status),
        _e(report.get("source")), _e(report.get("target")),
        "".join("<dt>%s</dt><dd>%s</dd>" % (label, _e(value)) for label, value in facts))


def _flat(mapping):
    """Stats may be flat ({requests: 40}) or per side ({target: {requests: 40}})."""
    out = {}
    for key, value in (mapping or {}).items():
        if isinstance(value, dict):
            out.update(("%s %s" % (key, inner), v) for inner, v in value.items())
        else:
            out[key] = value
    return out


def _seconds(value):
    return "%.2f s" % value if isinstance(value, (int, float)) and not isinstance(value, bool) else _text(value)


def _summary(report):
    summary, timings, stats = report.get("summary") or {}, report.get("timings") or {}, _flat(report.get("stats"))
    counts = "".join("<li><b>%s</b> %s</li>" % (_e(summary[k]), escape(k.replace("_", " ")))
                     for k in _ordered(summary, SUMMARY_ORDER))
    times = " \u00b7 ".join("%s %s" % (escape(k.replace("_", " ")), escape(_seconds(timings[k])))
                            for k in _ordered(timings, TIMING_ORDER))
    requests = " \u00b7 ".join("%s %s" % (escape(k), _e(stats[k])) for k in _ordered(stats, STATS_ORDER))
    return ('<section><h2>Summary</h2><ul class="counts" id="summary">%s</ul><p class="muted">Timings: %s</p>'
            '<p class="muted">Requests: %s</p></section>') % (counts, times or "(none)", requests or "(none)")


def _notes(report):
    notes = report.get("notes") or []
    if not notes:
        return ""
    return '<section><h2>Notes</h2><ul id="notes">%s</ul></section>' % "".join("<li>%s</li>" % _e(n) for n in notes)


def _controls(rows):
    buttons = ['<button type="button" data-outcome="" aria-pressed="true">all %d</button>' % len(rows)]
    buttons.extend('<button type="button" data-outcome="%s" aria-pressed="false">%s %d</button>'
                   % (escape(outcome), escape(outcome), count) for outcome, count in outcome_counts(rows))
    return ('<div class="controls" id="controls" hidden><span id="filters" role="group" aria-label="Filter by '
            'outcome">%s</span><input type="search" id="search" placeholder="Search rows" aria-label="Search '
            'rows"></div><p id="counter" aria-live="polite">%d of %d rows</p>') % ("".join(buttons), len(rows),
                                                                                   len(rows))


def _table(report, rows):
    unchanged = report.get("unchanged", (report.get("summary") or {}).get("unchanged"))
    footer = "" if unchanged is None else \
        '<p class="muted">%s unchanged object(s): counted, not listed.</p>' % _e(unchanged)
    return ('<table id="rows"><thead><tr><th>Outcome</th><th>Object</th><th>Source key</th><th>Id</th>'
            '<th>Changes</th><th>Error</th></tr></thead><tbody>\n%s\n</tbody></table>%s') % (
        "\n".join(_row(row) for row in rows), footer)


def render_html(report):
    """The whole page as text; ``report`` should already be free of secrets (write_run_report sees to it)."""
    rows = report.get("rows") or []
    return "\n".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="%s">' % CSP,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title><style>%s</style></head><body>" % (escape(_title(report)), STYLE),
        _header(report), _summary(report), _notes(report),
        '<section><h2>Objects</h2>%s%s</section>' % (_controls(rows), _table(report, rows)),
        "<script>%s</script>" % SCRIPT,
        "</body></html>\n",
    ])
