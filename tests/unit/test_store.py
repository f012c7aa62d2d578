"""Unit tests for plugins/module_utils/store.py: schema/migrations, file modes, secrets, state, snapshots, runs, locks."""
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.idsync.entra.plugins.module_utils import store_common  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils import store_sqlite as store_mod  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.store import LockedError, Store, StoreError  # noqa: E402


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "idsync" / "store.db"


@pytest.fixture
def wide_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


# -- file creation and permissions --------------------------------------------------------------------------------

def test_creates_parent_0700_and_db_0600(db_path, wide_umask):
    with Store(str(db_path)) as s:
        s.put_connection("c", "csv", {"path": "/tmp/x.csv"})
        s.set_state("scope", "k", "v")
        assert mode(db_path) == 0o600
        assert mode(db_path.parent) == 0o700
        # WAL side files carry the same restriction even with a permissive umask
        side = [p for p in db_path.parent.iterdir() if p.name != db_path.name]
        assert side, "expected WAL/shm files while the store is open"
        for p in side:
            assert mode(p) & 0o077 == 0, (p, oct(mode(p)))
    assert mode(db_path) == 0o600


def test_db_file_is_0600_before_sqlite_writes(db_path, monkeypatch, wide_umask):
    seen = {}
    real_connect = sqlite3.connect

    def spy(path, *a, **kw):
        seen["mode"] = mode(path)
        seen["size"] = os.path.getsize(path)
        return real_connect(path, *a, **kw)

    monkeypatch.setattr(store_mod.sqlite3, "connect", spy)
    Store(str(db_path)).close()
    assert seen == {"mode": 0o600, "size": 0}


def test_existing_wide_file_is_tightened(tmp_path, wide_umask):
    path = tmp_path / "store.db"
    Store(str(path)).close()
    os.chmod(path, 0o644)
    Store(str(path)).close()
    assert mode(path) == 0o600


def test_existing_parent_directory_is_left_alone(tmp_path, wide_umask):
    os.chmod(tmp_path, 0o755)
    Store(str(tmp_path / "s.db")).close()
    assert mode(tmp_path) == 0o755


def test_default_path_is_under_home(tmp_path, monkeypatch, wide_umask):
    monkeypatch.setenv("HOME", str(tmp_path))
    with Store() as s:
        assert s.path == str(tmp_path / ".idsync" / "store.db")
    assert mode(tmp_path / ".idsync") == 0o700
    assert mode(tmp_path / ".idsync" / "store.db") == 0o600


def test_unwritable_location_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/idsync/store.db"
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = str(ro / "sub" / "store.db")
    with pytest.raises(StoreError) as err:
        Store(target)
    assert "idsync store" in err.value.msg


# -- schema and migrations ----------------------------------------------------------------------------------------

def test_fresh_store_has_current_schema(db_path):
    with Store(str(db_path)) as s:
        assert s.schema_version == len(store_mod.MIGRATIONS) >= 1
        tables = {r[0] for r in s._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"connections", "state", "snapshot_objects", "runs", "locks"} <= tables


def test_migration_applied_in_place_keeps_data(db_path, monkeypatch):
    with Store(str(db_path)) as s:
        s.put_connection("keep", "csv", {"path": "/data/a.csv"})
        v1 = s.schema_version
    extra = ("ALTER TABLE connections ADD COLUMN note TEXT", "UPDATE connections SET note = 'migrated'")
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS + [extra])
    with Store(str(db_path)) as s:
        assert s.schema_version == v1 + 1
        assert s.get_connection("keep")["settings"] == {"path": "/data/a.csv"}
        assert s._db.execute("SELECT note FROM connections").fetchone()[0] == "migrated"
    # idempotent: reopening does not re-run the migration
    with Store(str(db_path)) as s:
        assert s.schema_version == v1 + 1


def test_failed_migration_rolls_back_whole_step(db_path, monkeypatch):
    with Store(str(db_path)) as s:
        s.put_connection("keep", "csv", {"path": "/a"})
        v1 = s.schema_version
    broken = ("ALTER TABLE connections ADD COLUMN note TEXT", "THIS IS NOT SQL")
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS + [broken])
    with pytest.raises(StoreError):
        Store(str(db_path))
    monkeypatch.undo()
    with Store(str(db_path)) as s:
        assert s.schema_version == v1
        cols = [r[1] for r in s._db.execute("PRAGMA table_info(connections)")]
        assert "note" not in cols
        assert s.get_connection("keep") is not None


def test_newer_schema_is_refused(db_path):
    Store(str(db_path)).close()
    db = sqlite3.connect(str(db_path))
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as err:
        Store(str(db_path))
    assert "schema version 99" in err.value.msg
    assert "newer" in err.value.msg and "upgrade" in err.value.msg


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(str(path))
    db.execute("CREATE TABLE something (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as err:
        Store(str(path))
    assert "something" in err.value.msg


def test_not_a_database(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite at all, just some text" * 100)
    os.chmod(path, 0o600)
    with pytest.raises(StoreError) as err:
        Store(str(path))
    assert str(path) in err.value.msg


# -- connections --------------------------------------------------------------------------------------------------

def test_connection_crud(db_path):
    with Store(str(db_path)) as s:
        assert s.get_connection("a") is None
        assert s.list_connections() == []
        s.put_connection("b", "csv", {"path": "/b.csv", "key": ["id"]})
        s.put_connection("a", "azure_ad", {"tenant_id": "t", "certificate_path": "/c.pem"})
        rec = s.get_connection("a")
        assert rec["name"] == "a" and rec["connector"] == "azure_ad"
        assert rec["settings"] == {"tenant_id": "t", "certificate_path": "/c.pem"}
        assert rec["created"] and rec["updated"]
        assert [c["name"] for c in s.list_connections()] == ["a", "b"]
        created = rec["created"]
        s.put_connection("a", "azure_ad", {"tenant_id": "t2"})
        rec2 = s.get_connection("a")
        assert rec2["settings"] == {"tenant_id": "t2"} and rec2["created"] == created
        assert s.delete_connection("a") is True
        assert s.delete_connection("a") is False
        assert s.get_connection("a") is None


def test_unchanged_put_keeps_updated_timestamp(db_path, monkeypatch):
    with Store(str(db_path)) as s:
        s.put_connection("a", "csv", {"path": "/x"})
        before = s.get_connection("a")["updated"]
        monkeypatch.setattr(store_common, "now_text", lambda: "2099-01-01T00:00:00Z")
        s.put_connection("a", "csv", {"path": "/x"})
        assert s.get_connection("a")["updated"] == before
        s.put_connection("a", "csv", {"path": "/y"})
        assert s.get_connection("a")["updated"] == "2099-01-01T00:00:00Z"


@pytest.mark.parametrize("key", ["client_secret", "access_token", "private_key", "password", "passphrase", "Client_Secret"])
def test_secrets_rejected(db_path, key):
    with Store(str(db_path)) as s:
        s.put_connection("a", "azure_ad", {"tenant_id": "t"})
        with pytest.raises(ConfigError) as err:
            s.put_connection("a", "azure_ad", {"tenant_id": "t", key: "hunter2-secret"})
        assert key in err.value.msg
        assert "hunter2-secret" not in err.value.msg
        # nothing written
        assert s.get_connection("a")["settings"] == {"tenant_id": "t"}
        raw = db_path.read_bytes() + b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p != db_path)
        assert b"hunter2-secret" not in raw


def test_nested_secret_rejected(db_path):
    with Store(str(db_path)) as s:
        with pytest.raises(ConfigError):
            s.put_connection("a", "azure_ad", {"auth": {"password": "x"}})
        with pytest.raises(ConfigError):
            s.put_connection("a", "azure_ad", {"list": [{"access_token": "x"}]})
        assert s.get_connection("a") is None
        # paths to key files are fine
        s.put_connection("a", "azure_ad", {"private_key_path": "/k.pem", "auth": "client_secret"})


def test_redact_settings():
    assert store_common.redact_settings({"a": 1, "client_secret": "s", "n": {"password": "p", "b": 2}}) == {"a": 1, "n": {"b": 2}}


# -- state and snapshots ------------------------------------------------------------------------------------------

def test_state(db_path):
    with Store(str(db_path)) as s:
        assert s.get_state("wf/conn/user", "delta_link") is None
        s.set_state("wf/conn/user", "delta_link", "https://graph/delta?token=1")
        s.set_state("wf/conn/group", "delta_link", "g")
        assert s.get_state("wf/conn/user", "delta_link") == "https://graph/delta?token=1"
        s.set_state("wf/conn/user", "delta_link", "2")
        assert s.get_state("wf/conn/user", "delta_link") == "2"
        s.set_state("wf/conn/user", "delta_link", None)
        assert s.get_state("wf/conn/user", "delta_link") is None
        assert s.get_state("wf/conn/group", "delta_link") == "g"
    with Store(str(db_path)) as s:  # persisted
        assert s.get_state("wf/conn/group", "delta_link") == "g"


def test_snapshots(db_path):
    with Store(str(db_path)) as s:
        assert s.get_snapshot("x") == {}
        s.put_snapshot("x", {"1": {"displayName": "A", "members": ["2"]}, "2": {"displayName": "B"}})
        s.put_snapshot("y", {"9": {"z": 1}})
        assert s.get_snapshot("x") == {"1": {"displayName": "A", "members": ["2"]}, "2": {"displayName": "B"}}
        s.update_snapshot("x", {"2": {"displayName": "B2"}, "3": {"displayName": "C"}}, ["1", "nope"])
        assert s.get_snapshot("x") == {"2": {"displayName": "B2"}, "3": {"displayName": "C"}}
        s.put_snapshot("x", {"4": {}})
        assert s.get_snapshot("x") == {"4": {}}
        assert s.get_snapshot("y") == {"9": {"z": 1}}
        s.update_snapshot("y", {}, [])
        assert s.get_snapshot("y") == {"9": {"z": 1}}


def test_snapshot_replace_is_atomic(db_path):
    with Store(str(db_path)) as s:
        s.put_snapshot("x", {"1": {"a": 1}})
        circular = {}
        circular["self"] = circular
        with pytest.raises(ValueError):
            s.put_snapshot("x", {"2": {"fine": True}, "3": circular})
        assert s.get_snapshot("x") == {"1": {"a": 1}}


# -- runs ---------------------------------------------------------------------------------------------------------

def test_runs(db_path):
    with Store(str(db_path)) as s:
        r1 = s.start_run("wf1", "full")
        r2 = s.start_run("wf2", "quick")
        assert r2 > r1
        running = s.runs("wf1")
        assert running[0]["status"] == "running" and running[0]["finished"] is None
        s.finish_run(r1, "success", {"created": 2, "updated": 1}, [{"object": "u1", "message": "boom"}])
        s.finish_run(r2, "failed", {}, [])
        r3 = s.start_run("wf1", "full")
        wf1 = s.runs("wf1")
        assert [r["id"] for r in wf1] == [r3, r1]
        assert wf1[1]["counts"] == {"created": 2, "updated": 1}
        assert wf1[1]["errors"] == [{"object": "u1", "message": "boom"}]
        assert wf1[1]["mode"] == "full" and wf1[1]["finished"]
        assert [r["id"] for r in s.runs()] == [r3, r2, r1]
        assert len(s.runs(limit=1)) == 1
        with pytest.raises(StoreError):
            s.finish_run(9999, "success", {}, [])


# -- locks --------------------------------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {collections!r})
    from ansible_collections.idsync.entra.plugins.module_utils.store import Store
    s = Store({path!r})
    with s.lock({name!r}, owner="holder-process"):
        print("locked", flush=True)
        sys.stdin.readline()
        if len(sys.argv) > 1 and sys.argv[1] == "crash":
            import os
            os._exit(3)   # die while holding the lock, without releasing it
    print("released", flush=True)
    """
)


def start_holder(db_path, name, *args):
    code = HOLDER.format(collections=str(COLLECTIONS), path=str(db_path), name=name)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline().strip()
    assert line == "locked", proc.stderr.read()
    return proc


def test_lock_basic_and_released_on_exception(db_path):
    with Store(str(db_path)) as s:
        with s.lock("wf:a", owner="me"):
            holder = s.lock_holder("wf:a")
            assert holder["owner"] == "me" and holder["pid"] == os.getpid()
            with s.lock("wf:b"):
                pass
        assert s.lock_holder("wf:a") is None
        with pytest.raises(RuntimeError):
            with s.lock("wf:a"):
                raise RuntimeError("boom")
        assert s.lock_holder("wf:a") is None


def test_lock_not_reentrant_within_process(db_path):
    with Store(str(db_path)) as s1, Store(str(db_path)) as s2:
        with s1.lock("wf:a", owner="first"):
            with pytest.raises(LockedError):
                with s2.lock("wf:a"):
                    pass
        with s2.lock("wf:a"):
            pass


def test_lock_held_by_other_live_process(db_path):
    Store(str(db_path)).close()
    proc = start_holder(db_path, "workflow:users")
    try:
        with Store(str(db_path)) as s:
            with pytest.raises(LockedError) as err:
                with s.lock("workflow:users", owner="second"):
                    pytest.fail("should not get the lock")
            msg = err.value.msg
            assert "workflow:users" in msg and "holder-process" in msg
            assert str(proc.pid) in msg and "since" in msg
            assert isinstance(err.value, IdsyncError)
            assert err.value.holder["pid"] == proc.pid
            # other locks are independent
            with s.lock("workflow:groups"):
                pass
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "released"
        proc.wait(timeout=10)
        with Store(str(db_path)) as s:
            with s.lock("workflow:users", owner="second"):
                assert s.lock_holder("workflow:users")["owner"] == "second"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stale_lock_of_crashed_process_is_taken_over(db_path):
    Store(str(db_path)).close()
    proc = start_holder(db_path, "workflow:users", "crash")
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=10) == 3
    with Store(str(db_path)) as s:
        stale = s.lock_holder("workflow:users")
        assert stale and stale["pid"] == proc.pid
        with s.lock("workflow:users", owner="survivor"):
            assert s.lock_holder("workflow:users")["owner"] == "survivor"
        assert s.lock_holder("workflow:users") is None


def test_stale_lock_of_killed_process_is_taken_over(db_path):
    Store(str(db_path)).close()
    proc = start_holder(db_path, "workflow:users")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    with Store(str(db_path)) as s:
        with s.lock("workflow:users"):
            pass


def test_zombie_holder_is_dead(db_path):
    Store(str(db_path)).close()
    proc = start_holder(db_path, "z", "crash")
    proc.stdin.write("\n")
    proc.stdin.flush()
    # do not reap: the child stays a zombie until wait()
    deadline = time.monotonic() + 10
    while store_mod._process_state(proc.pid) not in ("Z", None) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with Store(str(db_path)) as s:
            with s.lock("z"):
                pass
    finally:
        proc.wait(timeout=10)


def test_recycled_pid_is_not_mistaken_for_holder(db_path):
    with Store(str(db_path)) as s:
        with s._transaction() as db:
            db.execute(
                "INSERT INTO locks (name, owner, host, pid, pid_start, token, acquired) VALUES (?,?,?,?,?,?,?)",
                ("r", "old", store_mod.socket.gethostname(), os.getppid(), "1", "t", "2020-01-01T00:00:00Z"),
            )
        with s.lock("r", owner="new"):  # parent pid is alive, but it started at another time
            assert s.lock_holder("r")["owner"] == "new"


def test_lock_from_other_host_is_not_taken_over(db_path):
    with Store(str(db_path)) as s:
        with s._transaction() as db:
            db.execute(
                "INSERT INTO locks (name, owner, host, pid, pid_start, token, acquired) VALUES (?,?,?,?,?,?,?)",
                ("h", "remote-run", "some-other-host", 1, None, "t", "2020-01-01T00:00:00Z"),
            )
        with pytest.raises(LockedError) as err:
            with s.lock("h"):
                pass
        assert "some-other-host" in err.value.msg and "break_lock" in err.value.msg
        assert s.break_lock("h") is True
        with s.lock("h"):
            pass


def test_concurrent_processes_exclusive(db_path, tmp_path):
    """Several processes race for one lock; only one is inside at any time."""
    Store(str(db_path)).close()
    log = tmp_path / "log"
    code = textwrap.dedent(
        """
        import sys, time
        sys.path.insert(0, {collections!r})
        from ansible_collections.idsync.entra.plugins.module_utils.store import Store, LockedError
        s = Store({path!r})
        done = 0
        deadline = time.time() + 20
        while done < 5 and time.time() < deadline:
            try:
                with s.lock("race"):
                    with open({log!r}, "a") as f:
                        f.write("in\\n"); f.flush()
                        time.sleep(0.01)
                        f.write("out\\n")
                    done += 1
            except LockedError:
                time.sleep(0.005)
        sys.exit(0 if done == 5 else 1)
        """
    ).format(collections=str(COLLECTIONS), path=str(db_path), log=str(log))
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _index in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    lines = log.read_text().split()
    assert len(lines) == 40
    assert lines == ["in", "out"] * 20
