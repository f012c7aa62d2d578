"""The modules on a PostgreSQL store through ansible-playbook at -vvv: the URL's password never shows (results,
invocation, messages), IDSYNC_STORE and module_defaults group/idsync.entra.store both reach every module, and an
unreachable store is one clear sentence."""
from ansible_runner import run_playbook


def test_store_url_password_never_shows(tmp_path, postgres_server, postgres_url):
    password = postgres_server.password
    csv = tmp_path / "people.csv"
    csv.write_text("EmployeeID,Name\n1,Ada\n")
    tasks = [
        {"name": "save", "idsync.entra.connection": {"name": "hr", "connector": "csv", "path": str(csv),
                                                    "key": ["EmployeeID"], "store": postgres_url}},
        {"name": "list", "module_defaults": {"group/idsync.entra.store": {"store": postgres_url}},
         "idsync.entra.connection_info": {}},
        {"name": "history", "idsync.entra.sync_history": {}},            # IDSYNC_STORE
        {"name": "unreachable", "idsync.entra.connection_info": {
            "store": postgres_url.replace(":%d/" % postgres_server.port, ":1/")}, "ignore_errors": True},
    ]
    run = run_playbook(tmp_path, tasks, env={"IDSYNC_STORE": postgres_url, "ANSIBLE_VERBOSITY": "3"})
    assert run.rc == 0, run
    assert password not in run.output and password not in str(run.records)
    listed = run.task("list")
    assert [c["name"] for c in listed["connections"]] == ["hr"]
    assert listed["store"] == postgres_url.replace(":" + password, "")
    assert run.task("history")["runs"] == []
    failed = run.task("unreachable")
    assert failed["_status"] == "failed" and failed["msg"].startswith("Cannot connect to the idsync store "), failed
