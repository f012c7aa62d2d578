"""The emulated Exchange Online admin REST endpoint against what public clients of the real one show
(REFERENCE.md "Exchange Online admin REST"; ScubaGear EXORestHelper.psm1, CIPP New-ExoRequest.ps1): request and
answer shapes, paging with odata.maxpagesize, the ErrorId|Exception|Text details, the permission and role checks."""
import pytest
import requests

EXCHANGE_RECIPIENT_ADMINISTRATOR = "31392ffb-586c-42d1-9346-e59415a2cc4e"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"


class Exo:
    def __init__(self, emulator):
        self.ep = emulator.endpoints
        self.emulator = emulator
        self.url = "%s/adminapi/beta/%s/InvokeCommand" % (self.ep["exchange_endpoint"], self.ep["tenant_id"])
        self.graph_token = self.token("https://graph.microsoft.com/.default")
        self.token_value = self.token("https://outlook.office365.com/.default")

    def token(self, scope):
        response = requests.post("%s/%s/oauth2/v2.0/token" % (self.ep["authority_host"], self.ep["tenant_id"]), data={
            "grant_type": "client_credentials", "client_id": self.ep["admin"]["client_id"],
            "client_secret": self.ep["admin"]["client_secret"], "scope": scope}, verify=self.ep["ca_path"], timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def grant_role(self, role):
        graph = self.ep["graph_endpoint"] + "/v1.0"
        headers = {"Authorization": "Bearer " + self.graph_token}
        sp = requests.get(graph + "/servicePrincipals", params={"$filter": "appId eq '%s'" % self.ep["admin"]["client_id"]},
                          headers=headers, verify=self.ep["ca_path"], timeout=30).json()["value"][0]
        response = requests.post(graph + "/roleManagement/directory/roleAssignments", json={
            "principalId": sp["id"], "roleDefinitionId": role, "directoryScopeId": "/"}, headers=headers,
            verify=self.ep["ca_path"], timeout=30)
        assert response.status_code == 201, response.text

    def call(self, cmdlet, parameters=None, url=None, token=None, page_size=1000):
        return requests.post(url or self.url, json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters or {}}},
                             headers={"Authorization": "Bearer " + (token or self.token_value),
                                      "X-ResponseFormat": "json", "Prefer": "odata.maxpagesize=%d" % page_size,
                                      "X-AnchorMailbox": "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"
                                      + self.ep["tenant_id"]},
                             verify=self.ep["ca_path"], timeout=60)


@pytest.fixture
def exo(emulator):
    return Exo(emulator)


def test_an_app_without_an_exchange_role_is_refused_with_the_modules_words(exo):
    response = exo.call("Get-AcceptedDomain")
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert message.startswith("The role assigned to application %s isn't supported in this scenario"
                              % exo.ep["admin"]["client_id"])


def test_graph_tokens_are_not_exchange_tokens(exo):
    exo.grant_role(EXCHANGE_RECIPIENT_ADMINISTRATOR)
    response = exo.call("Get-AcceptedDomain", token=exo.graph_token)
    assert response.status_code == 401 and "audience" in response.json()["error"]["message"]


def test_read_only_role_reads_but_cannot_write(exo):
    exo.grant_role(GLOBAL_READER)
    assert exo.call("Get-Recipient", {"ResultSize": "Unlimited"}).status_code == 200
    response = exo.call("New-MailContact", {"Name": "x", "ExternalEmailAddress": "x@partner.example"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "User is not allowed to call New-MailContact"


def test_answer_shape_paging_and_result_size_warning(exo):
    exo.grant_role(EXCHANGE_RECIPIENT_ADMINISTRATOR)
    exo.emulator.admin("POST", "exchange/seed", {"mail_contacts": 5})
    first = exo.call("Get-MailContact", {"ResultSize": "Unlimited"}, url=exo.url + "?$select=Guid,Name", page_size=2)
    assert first.status_code == 200
    body = first.json()
    assert body["@odata.context"].endswith("$metadata#Collection(Exchange.GenericHashTable)")
    assert body["adminapi.warnings@odata.type"] == "#Collection(String)" and body["@adminapi.warnings"] == []
    assert [sorted(item) for item in body["value"]] == [["Guid", "Name"], ["Guid", "Name"]]
    names = [item["Name"] for item in body["value"]]
    while "@odata.nextLink" in body:
        body = exo.call("Get-MailContact", {"ResultSize": "Unlimited"}, url=body["@odata.nextLink"], page_size=2).json()
        names += [item["Name"] for item in body["value"]]
    assert names == ["Seeded Contact %06d" % n for n in range(5)]
    limited = exo.call("Get-MailContact", {"ResultSize": 3}).json()
    assert len(limited["value"]) == 3 and limited["@adminapi.warnings"][0].startswith("By default, only the first")


def test_cmdlet_errors_carry_error_id_exception_and_text(exo):
    exo.grant_role(EXCHANGE_RECIPIENT_ADMINISTRATOR)
    missing = exo.call("Set-MailContact", {"Identity": "nobody", "CustomAttribute1": "x"})
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "NotFound" and error["message"] == "Error executing cmdlet"
    error_id, exception, text = error["details"][0]["message"].split("|", 2)
    assert error_id.startswith("Ex") and exception.endswith(".ManagementObjectNotFoundException")
    assert text.startswith("The operation couldn't be performed because object 'nobody' couldn't be found")

    assert exo.call("New-MailContact", {"Name": "Ann", "ExternalEmailAddress": "ann@p.example"}).status_code == 200
    taken = exo.call("New-MailContact", {"Name": "Ann 2", "ExternalEmailAddress": "ann@p.example"}).json()["error"]
    assert "ProxyAddressExistsException" in taken["details"][0]["message"]
    group = exo.call("New-DistributionGroup", {"Name": "Partners", "Members": ["Ann"]}).json()["value"][0]
    again = exo.call("Add-DistributionGroupMember", {"Identity": group["Guid"], "Member": "Ann"}).json()["error"]
    assert again["details"][0]["message"].endswith('|The recipient "Ann" is already a member of the group "Partners".')
    unknown = exo.call("Set-MailContact", {"Identity": "Ann", "Colour": "blue"}).json()["error"]
    assert "ParameterBindingException|A parameter cannot be found that matches parameter name 'Colour'." \
        in unknown["details"][0]["message"]
