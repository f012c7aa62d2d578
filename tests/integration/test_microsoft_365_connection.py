"""Connections for the microsoft_365 connector, through real ansible-playbook runs: the auto configuration role with
``auto_configuration_connectors: [azure_ad, microsoft_365]`` grants Exchange.ManageAsApp and the Exchange role and
tests both connections green; "Test connection" names a missing role or permission; the manual configuration role
accepts the connector."""
import sqlite3

from ansible_runner import run_playbook
from exchange_support import EXCHANGE_APP_ID, EXCHANGE_RECIPIENT_ADMINISTRATOR, MANAGE_AS_APP, ExchangeAdmin
from test_roles import AUTO_PLAYBOOK, MANUAL_PLAYBOOK, auto_vars, manual_vars, run_role


def connection_task(settings, store, **extra):
    options = {"name": "exchange", "connector": "microsoft_365", "store": str(store), "test": True}
    options.update(dict((k, v) for k, v in settings.items() if k != "service_principal_id"))
    options.update(extra)
    return {"name": "connection", "idsync.entra.connection": options, "register": "r"}


def saved_connectors(store):
    db = sqlite3.connect(str(store))
    try:
        return dict(db.execute("SELECT name, connector FROM connections").fetchall())
    finally:
        db.close()


def test_auto_configuration_adds_exchange_permission_role_and_connection(tmp_path, emulator):
    admin = ExchangeAdmin(emulator)
    variables = auto_vars(emulator, tmp_path, auto_configuration_connectors=["azure_ad", "microsoft_365"],
                          auto_configuration_exchange_endpoint=emulator.endpoints["exchange_endpoint"])
    run = run_role(tmp_path / "run1", AUTO_PLAYBOOK, variables)
    assert run.rc == 0, run
    test = run.find("Save and test connection 'entra-itest_m365'")["test"]
    assert test["ok"] is True and test["granted_permissions"] == ["Exchange.ManageAsApp"], test
    assert saved_connectors(variables["auto_configuration_store"]) == {"entra-itest": "azure_ad",
                                                                        "entra-itest_m365": "microsoft_365"}
    app = run.find("Ensure application")
    assert app["api_permissions"]["Office 365 Exchange Online"] == ["Exchange.ManageAsApp"], app["api_permissions"]
    assert app["directory_roles"] == ["Exchange Recipient Administrator"], app["directory_roles"]
    app_id = app["app_id"]
    sp = admin.call("GET", "/servicePrincipals", params={"$filter": "appId eq '%s'" % app_id})["value"][0]
    exchange = admin.call("GET", "/servicePrincipals", params={"$filter": "appId eq '%s'" % EXCHANGE_APP_ID})["value"][0]
    granted = admin.list("/servicePrincipals/%s/appRoleAssignments" % sp["id"])
    assert any(g["resourceId"] == exchange["id"] and g["appRoleId"] == MANAGE_AS_APP for g in granted), granted
    roles = admin.call("GET", "/roleManagement/directory/roleAssignments",
                       params={"$filter": "principalId eq '%s'" % sp["id"]})["value"]
    assert [r["roleDefinitionId"] for r in roles] == [EXCHANGE_RECIPIENT_ADMINISTRATOR], roles

    again = run_role(tmp_path / "run2", AUTO_PLAYBOOK, variables)
    assert again.rc == 0 and again.recap()["changed"] == 0, again

    # Without microsoft_365 (the default) nothing about Exchange is asked for.
    plain = auto_vars(emulator, tmp_path / "plain", auto_configuration_app_name="idsync plain itest")
    run = run_role(tmp_path / "run3", AUTO_PLAYBOOK, plain)
    assert run.rc == 0, run
    plain_app = run.find("Ensure application")
    assert list(plain_app["api_permissions"]) == ["Microsoft Graph"] and plain_app["directory_roles"] == []
    assert not run.find_all("entra-itest_m365")


def test_connection_test_names_the_missing_role_and_permission(tmp_path, emulator):
    admin = ExchangeAdmin(emulator)
    store = tmp_path / "store.db"
    no_role = admin.register_exchange_app(tmp_path / "a", name="no role", role=None)
    run = run_playbook(tmp_path, [connection_task(no_role, store)])
    assert run.rc != 0
    result = run.task("connection")
    assert "Exchange Recipient Administrator" in result["msg"] and "nothing was saved" in result["msg"], result["msg"]
    assert result["test"]["missing_roles"] == ["Exchange Recipient Administrator"]

    no_permission = admin.register_exchange_app(tmp_path / "b", name="no permission", permission=False)
    run = run_playbook(tmp_path, [connection_task(no_permission, store)])
    assert run.rc != 0
    result = run.task("connection")
    assert "Exchange.ManageAsApp" in result["msg"] and "Office 365 Exchange Online" in result["msg"], result["msg"]
    assert result["test"]["missing_permissions"] == ["Exchange.ManageAsApp"]

    # Once the role is assigned the same settings test green and are saved; check mode saves nothing.
    admin.assign_role(no_role["service_principal_id"], EXCHANGE_RECIPIENT_ADMINISTRATOR)
    check = run_playbook(tmp_path, [connection_task(no_role, store)], check=True)
    assert check.rc == 0 and check.task("connection")["test"]["ok"] is True, check
    assert not store.exists() or saved_connectors(store) == {}
    run = run_playbook(tmp_path, [connection_task(no_role, store)])
    assert run.rc == 0 and run.task("connection")["changed"] is True, run
    assert saved_connectors(store) == {"exchange": "microsoft_365"}
    assert no_role["private_key_path"] not in run.output or "BEGIN" not in run.output


def test_manual_configuration_accepts_microsoft_365(tmp_path, emulator):
    admin = ExchangeAdmin(emulator)
    settings = admin.register_exchange_app(tmp_path / "pki")
    fact = {"tenant_id": settings["tenant_id"], "application_id": settings["application_id"],
            "certificate_thumbprint": settings["certificate_thumbprint"]}
    store = tmp_path / "state" / "store.db"
    variables = manual_vars(emulator, fact, settings["certificate_path"], settings["private_key_path"], store,
                            manual_configuration_connector="microsoft_365",
                            manual_configuration_connection_name="exchange",
                            manual_configuration_exchange_endpoint=settings["exchange_endpoint"])
    run = run_role(tmp_path / "manual", MANUAL_PLAYBOOK, variables)
    assert run.rc == 0, run
    assert run.find("Save and test connection")["test"]["ok"] is True
    assert saved_connectors(store) == {"exchange": "microsoft_365"}
