"""The run report page in a real headless browser (Debian's chromium): it renders, it counts, and its own script
filters by outcome and searches, from the URL fragment and from clicks and typing (DevTools protocol over a pipe).

chromium is installed by tools/ensure_system_packages.sh when missing; a machine that cannot get it fails here.
"""
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils.sync.run_report import (  # noqa: E402
    report_paths, write_run_report,
)

CHROMIUM = "/usr/bin/chromium"
# This machine's network is closed: without these chromium stalls on connections it will never get.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BROWSER_TIMEOUT = 120
INJECTED = '<img src=x onerror="document.body.setAttribute(\'data-pwned\', 1)"><script>alert(1)</script>'
OUTCOMES = ["created"] * 12 + ["updated"] * 10 + ["failed"] * 7 + ["deprovisioned"] * 5 + ["membership"] * 4 \
    + ["group created"] * 2
SMITH_ROWS = [1, 14, 23, 24, 35]      # "smith" in an object, a change, an error (upper case), a member
WANG_WEI_ROWS = [2, 9, 16, 23, 30, 37]


def tricky_report():
    """40 rows (7 failed) with markup, quotes, accents, CJK, long names and a needle for the search box."""
    rows = []
    names = [INJECTED, "Zoë O'Brien-D'Angelo", "王伟", "Åsa \"Quote\" Öberg & Co", "Αλέξανδρος Παπαδόπουλος",
             "Фёдор Достоевский", "Maximiliana Wilhelmina Fitzgerald-Montgomery-Worthington-Smythe of Kent"]
    for index, outcome in enumerate(OUTCOMES):
        row = {"outcome": outcome, "object": "%s #%d" % (names[index % len(names)], index),
               "source": "E%06d" % index, "id": "guid-%d" % index}
        if outcome == "failed":
            row.update(error="Graph refused the write (%s)" % names[index % len(names)], step="create",
                       rule="steps.create.attributes.displayName")
        elif outcome == "membership":
            row["changes"] = {"members": {"add": ["ada.%d" % index], "remove": ["cy.%d" % index]}}
        else:
            row["changes"] = {"jobTitle": {"before": "Staff", "after": "Lead <b>%d</b>" % index}}
        rows.append(row)
    rows[1]["object"] = "Anna Smith"
    rows[14]["changes"]["department"] = {"before": None, "after": "Blacksmiths"}
    rows[23]["error"] = "SMITH already exists"
    rows[24]["object"] = "john.smithers@contoso.example"
    rows[35]["changes"]["members"]["add"].append("goldsmith")
    return {"format": 1, "workflow": "hr_to_entra", "run_id": 12, "check_mode": False, "status": "failed",
            "started": "2026-11-30T08:00:00Z", "finished": "2026-11-30T08:01:10Z",
            "source": "hr_file (csv row)", "target": "contoso (azure_ad user)",
            "summary": {"created": 12, "updated": 10, "failed": 7, "unchanged": 260}, "notes": [INJECTED],
            "timings": {"total": 5.7}, "stats": {"requests": 40, "writes": 12}, "rows": rows, "unchanged": 260}


@pytest.fixture(scope="session")
def chromium():
    """The browser, installed when missing (one installer at a time across xdist workers); never a skip."""
    with open(os.path.join(tempfile.gettempdir(), "idsync-ensure-chromium.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(CHROMIUM):
            done = subprocess.run([str(ROOT / "tools" / "ensure_system_packages.sh"), "chromium"],
                                  capture_output=True, text=True, timeout=1800)
            if done.returncode != 0 or not os.path.exists(CHROMIUM):
                pytest.fail("chromium is needed and could not be installed: %s"
                            % (done.stderr.strip() or done.stdout), pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    store = tmp_path_factory.mktemp("report") / "store.db"
    paths = write_run_report(report_paths(str(store), "hr_to_entra", run_id=12), tricky_report())
    return Path(paths["html"]).as_uri()


def run_browser(chromium, arguments, launcher=(), **popen):
    """Start chromium with a fresh profile; returns (process, profile). Its process group is ours to end."""
    profile = tempfile.mkdtemp(prefix="idsync-chromium-")
    process = subprocess.Popen(list(launcher) + [chromium] + FLAGS + ["--user-data-dir=" + profile] + arguments,
                               start_new_session=True, **popen)
    return process, profile


def stop_browser(process, profile):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    shutil.rmtree(profile, ignore_errors=True)


def dump_dom(chromium, url):
    process, profile = run_browser(chromium, ["--virtual-time-budget=5000", "--dump-dom", url],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=BROWSER_TIMEOUT)
    finally:
        stop_browser(process, profile)
    assert process.returncode == 0 and out, err.decode("utf-8", "replace")[-2000:]
    return Page(out.decode("utf-8"))


class Page(HTMLParser):
    """What the browser rendered: the rows (outcome, hidden, text), the counter, the title, injected markers."""

    def __init__(self, dom):
        HTMLParser.__init__(self)
        self.rows, self.counter, self.title, self.pwned, self.controls_shown = [], None, "", False, False
        self._capture = None
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body" and "data-pwned" in attrs:
            self.pwned = True
        if attrs.get("id") == "controls":
            self.controls_shown = "hidden" not in attrs          # the page's script un-hides them
        if tag == "tr" and "data-outcome" in attrs:
            self.rows.append({"outcome": attrs["data-outcome"], "hidden": "hidden" in attrs, "text": ""})
            self._capture = "row"
        elif attrs.get("id") in ("counter", "title"):
            self._capture = attrs["id"]

    def handle_endtag(self, tag):
        if tag in ("tr", "p", "h1"):
            self._capture = None

    def handle_data(self, data):
        if self._capture == "row":
            self.rows[-1]["text"] += data
        elif self._capture == "counter":
            self.counter = (self.counter or "") + data
        elif self._capture == "title":
            self.title += data

    def shown(self):
        return [index for index, row in enumerate(self.rows) if not row["hidden"]]


def test_the_page_renders_every_row_and_counts_them(chromium, page_url):
    page = dump_dom(chromium, page_url)
    assert page.title.split() == ["hr_to_entra", "run", "12", "failed"]
    assert [row["outcome"] for row in page.rows] == OUTCOMES
    assert page.shown() == list(range(40))
    assert page.counter == "40 of 40 rows" and page.controls_shown
    assert "<script>alert(1)</script>" in page.rows[0]["text"] and not page.pwned     # text, never markup
    assert "王伟" in page.rows[2]["text"] and "Zoë O'Brien-D'Angelo" in page.rows[1 + 7]["text"]


def test_the_fragment_filters_by_outcome(chromium, page_url):
    page = dump_dom(chromium, page_url + "#outcome=failed")
    failed = [index for index, outcome in enumerate(OUTCOMES) if outcome == "failed"]
    assert page.shown() == failed and len(failed) == 7
    assert page.counter == "7 of 40 rows"
    page = dump_dom(chromium, page_url + "#outcome=" + quote("group created"))
    assert [page.rows[i]["outcome"] for i in page.shown()] == ["group created"] * 2


def test_the_fragment_searches_case_insensitively_and_combines_with_the_outcome(chromium, page_url):
    page = dump_dom(chromium, page_url + "#q=smith")
    assert page.shown() == SMITH_ROWS
    assert page.counter == "5 of 40 rows"
    page = dump_dom(chromium, page_url + "#outcome=failed&q=SMITH")
    assert page.shown() == [23, 24]
    page = dump_dom(chromium, page_url + "#q=" + quote("王伟"))
    assert page.shown() == WANG_WEI_ROWS


def _above_4(fd):
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 5)
    os.close(fd)
    return moved


class DevTools:
    """The DevTools protocol over --remote-debugging-pipe (chromium reads fd 3, writes fd 4): NUL-ended JSON."""

    def __init__(self, chromium):
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()
        to_browser, from_browser = _above_4(to_browser), _above_4(from_browser)    # so 3<&N 4>&M cannot clash
        launcher = ["/bin/bash", "-c", 'exec "$0" "$@" 3<&%d 4>&%d' % (to_browser, from_browser)]
        self.process, self.profile = run_browser(
            chromium, ["--remote-debugging-pipe", "about:blank"], launcher=launcher,
            pass_fds=(to_browser, from_browser), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._next_id, self.session, self.events = b"", 0, None, []
        self._deadline = time.monotonic() + BROWSER_TIMEOUT

    def send(self, method, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode("utf-8") + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply.get("method"))

    def wait_for(self, event):
        while event not in self.events:
            self.events.append(self._read().get("method"))

    def _read(self):
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(0, self._deadline - time.monotonic()))
            assert ready, "chromium did not answer within %d s" % BROWSER_TIMEOUT
            chunk = os.read(self._from_browser, 65536)
            assert chunk, "chromium closed the DevTools pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url):
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def close(self):
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)
        stop_browser(self.process, self.profile)


STATE = ("JSON.stringify({hash: location.hash, counter: document.getElementById('counter').textContent, "
         "shown: Array.prototype.map.call(document.querySelectorAll('#rows tbody tr'), function (row, i) "
         "{ return row.hidden ? -1 : i; }).filter(function (i) { return i >= 0; })})")
CLICK = "document.querySelector('#filters button[data-outcome=\"%s\"]').click()"


def test_clicks_and_typing_filter_and_are_written_to_the_fragment(chromium, page_url):
    browser = DevTools(chromium)
    try:
        browser.open(page_url)
        browser.evaluate(CLICK % "failed")
        state = json.loads(browser.evaluate(STATE))
        assert state == {"hash": "#outcome=failed", "counter": "7 of 40 rows", "shown": list(range(22, 29))}
        browser.evaluate("var box = document.getElementById('search'); box.value = 'Smith';"
                         "box.dispatchEvent(new Event('input'))")
        state = json.loads(browser.evaluate(STATE))
        assert state == {"hash": "#outcome=failed&q=Smith", "counter": "2 of 40 rows", "shown": [23, 24]}
        browser.evaluate(CLICK % "")
        assert json.loads(browser.evaluate(STATE))["shown"] == SMITH_ROWS
        browser.evaluate("new Promise(function (done) { addEventListener('hashchange', function () "
                         "{ setTimeout(done, 0); }, {once: true}); location.hash = '#outcome=membership'; })")
        state = json.loads(browser.evaluate(STATE))
        assert state["counter"] == "4 of 40 rows" and state["shown"] == list(range(34, 38))
        assert browser.evaluate("document.getElementById('search').value") == ""
    finally:
        browser.close()
