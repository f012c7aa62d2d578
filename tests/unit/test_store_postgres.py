"""The store API against both backends (SQLite file, real PostgreSQL server started by the tests), and what only the
PostgreSQL store does: advisory locks released by the server when a job dies, schema version table, passwords that
never show."""
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils import store as store_api  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils import store_postgres  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, scrub  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.store import LockedError, Store, StoreError  # noqa: E402


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("postgres_url")


# -- one API, two backends ------------------------------------------------------------------------------------------

def test_connections_state_snapshots_runs_journal(location):
    with Store(location) as s:
        assert s.schema_version == 2
        s.put_connection("hr", "csv", {"path": "/data/hr.csv"})
        s.put_connection("contoso", "azure_ad", {"tenant_id": "t", "application_id": "a"})
        assert [c["name"] for c in s.list_connections()] == ["contoso", "hr"]
        assert s.get_connection("hr")["settings"] == {"path": "/data/hr.csv"}
        with pytest.raises(ConfigError):
            s.put_connection("bad", "azure_ad", {"nested": {"private_key_content": "x"}})
        assert s.delete_connection("hr") and not s.delete_connection("hr")

        s.set_state("sync:wf", "managed", '["a","b"]')
        assert s.get_state("sync:wf", "managed") == '["a","b"]'
        assert s.update_state("sync:wf", "counter", lambda old: (str(int(old or 0) + 1), old)) is None
        assert s.update_state("sync:wf", "counter", lambda old: (str(int(old or 0) + 1), old)) == "1"
        s.set_state("sync:wf", "managed", None)
        assert s.get_state("sync:wf", "managed") is None
        s.clear_state("sync:wf")
        assert s.get_state("sync:wf", "counter") is None

        s.put_snapshot("snap", {"1": {"a": 1}, "2": {"a": 2}})
        s.update_snapshot("snap", {"2": {"a": 22}, "3": {"a": 3}}, ["1"])
        assert s.get_snapshot("snap") == {"2": {"a": 22}, "3": {"a": 3}}

        first = s.start_run("wf", "full")
        second = s.start_run("wf", "full")
        assert second > first
        s.record_applied(first, {"created": 2})
        s.add_applied(first, {"created": 1})
        assert s.runs("wf")[1]["applied"] == {"created": 3}
        s.finish_run(first, "succeeded", {"created": 3}, ["x: y"])
        s.add_applied(first, {"created": 1})
        run = s.runs("wf")[1]
        assert (run["status"], run["counts"], run["errors"]) == ("succeeded", {"created": 4}, ["x: y"])
        with pytest.raises(StoreError):
            s.finish_run(99999, "failed")

        ids = s.journal_add("wf", first, [("object", "E1", {"employeeId": "E1"}), ("group", "g", {"n": "g"})])
        s.journal_complete({ids[0]: "tid-1"})
        entries = s.journal("wf")
        assert [(e["source"], e["target_id"], e["lookup"]) for e in entries] == [
            ("E1", "tid-1", {"employeeId": "E1"}), ("g", None, {"n": "g"})]
        s.journal_remove(ids)
        assert s.journal("wf") == []


def test_lock_excludes_another_store_and_is_not_reentrant(location):
    with Store(location) as first, Store(location) as second:
        with first.lock("sync:wf", owner="job 1"):
            with pytest.raises(LockedError) as info:
                with second.lock("sync:wf"):
                    pass
            assert "job 1" in info.value.msg
            with pytest.raises(LockedError):
                with first.lock("sync:wf"):
                    pass
            assert first.lock_holder("sync:wf")["owner"] == "job 1"
            with second.lock("sync:other"):
                pass
        with second.lock("sync:wf"):
            pass
        assert second.lock_holder("sync:wf") is None


def test_update_state_is_atomic_between_threads(location):
    """The write pacer's read-modify-write: 4 threads x 25 increments, each thread with its own store."""
    def work():
        with Store(location, shared_between_threads=True) as s:
            for _ in range(25):
                s.update_state("pacing", "n", lambda old: (str(int(old or 0) + 1), None))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Store(location) as s:
        assert s.get_state("pacing", "n") == "100"


# -- PostgreSQL only ------------------------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {collections!r})
    from ansible_collections.idsync.entra.plugins.module_utils.store import Store
    s = Store({url!r})
    with s.lock("sync:hr_to_entra", owner="job 1"):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_killed_job_never_blocks_the_next(postgres_url):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(collections=str(COLLECTIONS), url=postgres_url)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        with Store(postgres_url) as s:
            with pytest.raises(LockedError) as info:
                with s.lock("sync:hr_to_entra"):
                    pass
            assert "job 1" in info.value.msg and str(holder.pid) in info.value.msg
            holder.send_signal(signal.SIGKILL)             # no chance to release anything
            holder.wait(timeout=10)
            deadline = time.monotonic() + 10
            while True:                                    # the server notices the closed socket at once
                try:
                    with s.lock("sync:hr_to_entra", owner="job 2"):
                        assert s.lock_holder("sync:hr_to_entra")["owner"] == "job 2"
                    break
                except LockedError:
                    assert time.monotonic() < deadline, "the lock of a killed job was not released by the server"
                    time.sleep(0.1)
    finally:
        if holder.poll() is None:
            holder.kill()


def test_schema_version_table_and_newer_schema_refused(postgres_server, postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    with Store(postgres_url):
        pass
    assert postgres_server.sql("SELECT version FROM idsync_schema_version", database).strip() == "2"
    postgres_server.sql("UPDATE idsync_schema_version SET version = 99", database)
    with pytest.raises(StoreError) as info:
        Store(postgres_url)
    assert "newer" in info.value.msg and postgres_server.password not in info.value.msg


def test_foreign_tables_without_version_are_refused(postgres_server, postgres_url):
    postgres_server.sql("CREATE TABLE runs (id int)", postgres_url.rsplit("/", 1)[1])
    with pytest.raises(StoreError) as info:
        Store(postgres_url)
    assert "refusing" in info.value.msg


def test_migration_step_is_all_or_nothing(postgres_url, monkeypatch):
    broken = ("ALTER TABLE connections ADD COLUMN note TEXT", "THIS IS NOT SQL")
    monkeypatch.setattr(store_postgres, "MIGRATIONS", store_postgres.MIGRATIONS + [broken])
    with pytest.raises(Exception):
        Store(postgres_url)
    monkeypatch.undo()
    with Store(postgres_url) as s:
        assert s.schema_version == 2
        columns = [r["column_name"] for r in s._query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'connections'")]
        assert "note" not in columns


def test_password_never_shown(postgres_server, postgres_url):
    password = postgres_server.password
    with Store(postgres_url) as s:
        assert password not in repr(s) and password not in s.display_location
        assert s.display_location.startswith("postgresql://idsync_admin@127.0.0.1:")
    assert store_api.display_location(postgres_url) == postgres_url.replace(":" + password, "")
    wrong = postgres_url.replace(password, "not-" + password)
    with pytest.raises(StoreError) as info:
        Store(wrong)
    text = json.dumps([info.value.msg, info.value.to_result()])
    assert "password authentication failed" in text
    assert password not in text and "not-" + password not in scrub(text)


def test_a_password_given_as_a_query_parameter_never_shows_either():
    url = "postgresql://idsync@db.example/idsync?sslmode=verify-full&password=s3cr%21t&sslrootcert=/ca.pem"
    assert store_postgres.redact_url(url) == "postgresql://idsync@db.example/idsync?sslmode=verify-full&sslrootcert=/ca.pem"
    assert store_postgres.url_password(url) == ["s3cr!t", "s3cr%21t"]
    both = "postgresql://idsync:one@db.example/idsync?PASSWORD=two"
    assert store_postgres.redact_url(both) == "postgresql://idsync@db.example/idsync"
    assert store_postgres.url_password(both) == ["one", "two"]


def test_tls_with_certificate_verification(postgres_server, postgres_url, tmp_path):
    """sslmode and sslrootcert in the URL's query reach libpq: verify-full against the server's CA connects over
    TLS; another CA is refused with one sentence, without the password."""
    verified = postgres_url + "?sslmode=verify-full&sslrootcert=%s" % postgres_server.ca_path
    with Store(verified) as s:
        assert s._query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0]["ssl"] is True
        s.set_state("tls", "ok", "yes")
    from tls_ca import TestCA
    other = TestCA(tmp_path / "other-ca", name="some other CA")
    with pytest.raises(StoreError) as info:
        Store(postgres_url + "?sslmode=verify-full&sslrootcert=%s" % other.ca_path)
    assert "certificate verify failed" in info.value.msg, info.value.msg
    assert postgres_server.password not in json.dumps([info.value.msg, info.value.to_result()])


def test_store_location_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IDSYNC_STORE", "postgresql://u@db.example:5432/idsync")
    assert store_api.resolve_location(None) == "postgresql://u@db.example:5432/idsync"
    assert store_api.resolve_location(str(tmp_path / "s.db")) == str(tmp_path / "s.db")
    assert store_api.local_dir(None).endswith("/.idsync")
    monkeypatch.delenv("IDSYNC_STORE")
    assert store_api.resolve_location(None).endswith("/.idsync/store.db")


def test_missing_psycopg_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(store_postgres, "HAS_PSYCOPG", False)
    with pytest.raises(StoreError) as info:
        Store("postgresql://u:secret@127.0.0.1:1/db")
    assert "psycopg" in info.value.msg and "secret" not in info.value.msg
