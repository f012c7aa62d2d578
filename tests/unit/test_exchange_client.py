"""ExchangeClient (plugins/module_utils/exchange.py) against a scripted session: headers, paging, error details,
what is retried and what is not, and the connector's address difference."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.idsync.entra.plugins.module_utils import clouds  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.connectors.exchange_types import (  # noqa: E402
    address_difference, read_value,
)
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.exchange import ExchangeClient, ExchangeError  # noqa: E402
from ansible_collections.idsync.entra.plugins.module_utils.graph import RetryPolicy  # noqa: E402

TENANT = "11111111-2222-3333-4444-555555555555"


class Answer:
    def __init__(self, status, body=None, headers=None):
        self.status_code = status
        self.headers = dict(headers or {})
        self.content = json.dumps(body).encode() if body is not None else b""
        self._body = body

    def json(self):
        return self._body


class Session:
    def __init__(self, answers):
        self.answers = list(answers)
        self.sent = []

    def request(self, method, url, data=None, headers=None):
        self.sent.append((method, url, json.loads(data), dict(headers)))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Token:
    can_refresh = False

    def get_token(self):
        return "token"


def client(answers, endpoint=None):
    endpoints = clouds.resolve_endpoints("azure_global", TENANT, exchange_endpoint=endpoint)
    sleeps = []
    made = ExchangeClient(endpoints, Token(), Session(answers), retry=RetryPolicy(max_attempts=4, jitter=False),
                          sleep=sleeps.append)
    return made, sleeps


def test_request_shape_and_paging():
    next_link = "https://outlook.office365.com/adminapi/beta/%s/InvokeCommand?$skiptoken=abc" % TENANT
    exo, _ = client([Answer(200, {"value": [{"Guid": "1"}], "@odata.nextLink": next_link}),
                     Answer(200, {"value": [{"Guid": "2"}]})])
    assert exo.invoke("Get-MailContact", {"ResultSize": "Unlimited"}, select=["Guid", "Name"]) == [
        {"Guid": "1"}, {"Guid": "2"}]
    (m1, url1, body1, headers1), (m2, url2, body2, _h) = exo.session.sent
    assert url1 == "https://outlook.office365.com/adminapi/beta/%s/InvokeCommand?$select=Guid,Name" % TENANT
    assert body1 == body2 == {"CmdletInput": {"CmdletName": "Get-MailContact", "Parameters": {"ResultSize": "Unlimited"}}}
    assert url2 == next_link and m1 == m2 == "POST"
    assert headers1["X-AnchorMailbox"] == "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@" + TENANT
    assert headers1["X-ResponseFormat"] == "json" and headers1["Prefer"] == "odata.maxpagesize=1000"
    assert headers1["Authorization"] == "Bearer token" and headers1["client-request-id"]
    assert exo.stats["requests"] == 2 and exo.stats["cmdlets"] == 1 and exo.stats["writes"] == 0


def test_error_details_name_the_exception():
    body = {"error": {"code": "NotFound", "message": "Error executing cmdlet", "details": [{
        "code": "Client", "target": "", "message": "Ex6F9304|Microsoft.Exchange.Configuration.Tasks."
        "ManagementObjectNotFoundException|The operation couldn't be performed because object 'x' couldn't be found."}]}}
    exo, _ = client([Answer(404, body, {"request-id": "r-1"})])
    with pytest.raises(ExchangeError) as caught:
        exo.invoke("Set-MailContact", {"Identity": "x"})
    error = caught.value
    assert error.exception == "ManagementObjectNotFoundException" and error.is_not_found and error.error_id == "Ex6F9304"
    assert error.msg == ("Exchange Online Set-MailContact failed (404 ManagementObjectNotFoundException): The operation "
                         "couldn't be performed because object 'x' couldn't be found. (request-id r-1)")


def test_throttled_cmdlets_wait_for_retry_after():
    exo, sleeps = client([Answer(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "7"}),
                          Answer(200, {"value": [{"Guid": "new"}]})])
    assert exo.invoke("New-MailContact", {"Name": "a", "ExternalEmailAddress": "a@b.example"}) == [{"Guid": "new"}]
    assert sleeps == [7.0] and exo.stats["throttled"] == 1 and exo.stats["retries"] == 1 and exo.stats["writes"] == 1


def test_gateway_errors_retry_reads_but_never_writes():
    exo, sleeps = client([Answer(502), Answer(200, {"value": []})])
    assert exo.invoke("Get-Recipient", {}) == []
    assert len(sleeps) == 1
    exo, sleeps = client([Answer(502)])
    with pytest.raises(ExchangeError) as caught:
        exo.invoke("New-DistributionGroup", {"Name": "g"})
    assert caught.value.status == 502 and sleeps == []


def test_next_link_to_another_host_is_refused():
    exo, _ = client([Answer(200, {"value": [], "@odata.nextLink": "https://evil.example/adminapi/beta/x/InvokeCommand"})],
                    endpoint="https://127.0.0.1:8443")
    with pytest.raises(ConfigError, match="Refusing to send the Exchange Online token"):
        exo.invoke("Get-Mailbox", {})


def test_endpoint_override_and_scope():
    endpoints = clouds.resolve_endpoints("azure_gcc_high", TENANT, exchange_endpoint="https://exo.example:9443/")
    assert endpoints.exchange_url == "https://exo.example:9443"
    assert endpoints.exchange_scope == "https://outlook.office365.us/.default"
    with pytest.raises(ConfigError, match="exchange_endpoint must be an https"):
        clouds.resolve_endpoints("azure_global", TENANT, exchange_endpoint="http://exo.example")


def test_address_difference_keeps_the_primary():
    primary = "ann@contoso.example"
    assert address_difference(["smtp:old@contoso.example", "X500:/o=a"], ["smtp:new@contoso.example", "x500:/O=A"],
                              primary) == {"Add": ["smtp:new@contoso.example"], "Remove": ["smtp:old@contoso.example"]}
    assert address_difference([], ["smtp:ann@contoso.example"], primary) == {}
    assert read_value("EmailAddresses", ["SMTP:ann@contoso.example", "smtp:a2@contoso.example"]) == [
        "smtp:a2@contoso.example"]
    assert read_value("ExternalEmailAddress", "SMTP:ann@partner.example") == "ann@partner.example"
