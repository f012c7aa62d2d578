"""idsync.entra.connection for active_directory / ldap through ansible-playbook: Test connection names what is
wrong in one sentence, plain LDAP needs tls: none, and the bind password is never stored or shown."""
import sqlite3

from ansible_runner import run_playbook
from ldap_servers import AD_ADMIN, AD_PASSWORD, LDAP_ADMIN, LDAP_PASSWORD
from tls_ca import TestCA


def connection_task(name, store, directory, **extra):
    options = {
        "name": name, "store": str(store), "connector": directory.kind,
        "servers": [directory.server.ldaps], "ca_path": str(directory.server.ca.ca_path),
        "bind_dn": AD_ADMIN if directory.ad else LDAP_ADMIN, "bind_password": directory.password,
        "base_dn": directory.base, "search": {"user": {"base": directory.people}}, "test": True,
    }
    options.update(extra)
    return {"name": name, "idsync.entra.connection": options, "register": name, "ignore_errors": True}


def test_active_directory_connection_errors_are_one_sentence(tmp_path, ad):
    store = tmp_path / "store.db"
    other_ca = TestCA(tmp_path / "other-ca", name="some other CA")
    tasks = [
        connection_task("good", store, ad),
        connection_task("wrong_password", store, ad, bind_password="not-the-password"),
        connection_task("wrong_ca", store, ad, ca_path=str(other_ca.ca_path)),
        connection_task("unknown_base", store, ad, base_dn="OU=Nowhere," + ad.base),
        connection_task("plain_refused", store, ad, servers=[ad.server.ldap]),
        connection_task("plain_without_tls", store, ad, servers=[ad.server.ldap], tls="none", ca_path=None),
        connection_task("starttls", store, ad, servers=["ldap://127.0.0.1:9", ad.server.ldap], tls="starttls"),
    ]
    run = run_playbook(tmp_path, tasks)
    good = run.task("good")
    assert good["_status"] == "ok" and good["test"]["ok"] is True, good
    assert good["connection"]["settings"]["servers"] == [ad.server.ldaps]
    assert good["test"]["vendor"] and ad.base.split(",", 1)[1] in good["test"]["naming_contexts"]

    def msg(name):
        result = run.task(name)
        assert result["_status"] == "failed", result
        return result["msg"]
    assert msg("wrong_password") == (
        "Test connection of wrong_password failed: Bind to %s as %s failed: the directory rejected the bind DN or "
        "password (invalid credentials); nothing was saved." % (ad.server.ldaps, AD_ADMIN))
    assert msg("wrong_ca") == (
        "Test connection of wrong_ca failed: The TLS certificate of %s is not trusted: give ca_path the CA that "
        "issued it (certificate validation is on by default); nothing was saved." % ad.server.ldaps)
    assert msg("unknown_base") == (
        "Test connection of unknown_base failed: The base_dn OU=Nowhere,%s does not exist on %s; nothing was saved."
        % (ad.base, ad.server.ldaps))
    assert msg("plain_refused") == ("servers: %s is an ldap:// URI but tls is ldaps (port 636); write ldaps://, or "
                                    "use tls: starttls" % ad.server.ldap)
    # Samba, like AD with LDAP signing required, refuses a simple bind in the clear
    assert "refuses a simple bind without TLS" in msg("plain_without_tls")
    starttls = run.task("starttls")                       # the first server is down: the second one answers
    assert starttls["test"]["ok"] is True and starttls["test"]["server"] == ad.server.ldap, starttls

    for secret in (AD_PASSWORD, "not-the-password"):
        assert secret not in run.output
    saved = sqlite3.connect(str(store)).execute("SELECT settings FROM connections").fetchall()
    assert saved and all(AD_PASSWORD not in row[0] and "password" not in row[0] for row in saved)


def test_openldap_connection_test_and_sync_password_is_needed(tmp_path, openldap):
    store = tmp_path / "store.db"
    run = run_playbook(tmp_path, [connection_task("ldap_dir", store, openldap)])
    result = run.task("ldap_dir")
    assert result["test"]["ok"] is True, result
    assert LDAP_PASSWORD not in run.output
    sync = {"name": "sync", "register": "s", "ignore_errors": True, "idsync.entra.sync": {
        "name": "ldap_to_nowhere", "store": str(store),
        "source": {"connection": "ldap_dir", "object_type": "user"},
        "target": {"connection": "ldap_dir", "object_type": "user"},
        "match": [{"source": "uid", "target": "uid"}],
        "steps": {"update": {"attributes": {"title": "title"}}}}}
    run = run_playbook(tmp_path, [sync])
    assert run.task("sync")["msg"] == (
        "Connection ldap_dir: no bind password was given (pass it each run, e.g. connection_secrets: {<connection>: "
        "{bind_password: ...}}; the store never keeps it)")
