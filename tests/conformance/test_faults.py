"""Injected faults at a rate and dropped connections (before the request is handled, or after it: the answer is lost
while the write is applied). Over HTTP against the running emulator, plus the rule logic in-process."""
import random
import subprocess
import sys
from pathlib import Path

import pytest
import requests

EMULATOR = Path(__file__).resolve().parent.parent / "emulator"
sys.path.insert(0, str(EMULATOR))
import faults  # noqa: E402  (the emulator's own module)

# What requests raises when the server closes the connection without an answer.
DROPPED = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
STRONG_PASSWORD = "Xq7!mP2#vL9s"


def admin_post(entra, emulator, path, body):
    return requests.post(f"{entra.base_url}/_emulator/{path}", json=body, verify=entra.ca_path, timeout=30,
                         headers={"X-Emulator-Key": emulator.endpoints["emulator_key"]})


def new_user(entra, token, nickname):
    domain = entra.graph("GET", "/v1.0/organization", token).json()["value"][0]["verifiedDomains"][0]["name"]
    return {"accountEnabled": True, "displayName": nickname, "mailNickname": nickname,
            "userPrincipalName": f"{nickname}@{domain}", "passwordProfile": {"password": STRONG_PASSWORD}}


def batch(entra, token, items):
    body = {"requests": [{"id": str(i), "method": m, "url": u} for i, (m, u) in enumerate(items, start=1)]}
    response = entra.graph("POST", "/v1.0/$batch", token, json=body)
    assert response.status_code == 200, response.text
    return [item["status"] for item in sorted(response.json()["responses"], key=lambda item: int(item["id"]))]


# -- rate ------------------------------------------------------------------------------------------------------


def test_rate_faults_follow_the_seed(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/organization$", "rate": 0.3, "seed": 11, "status": 503})
    rng = random.Random(11)
    expected = [503 if rng.random() < 0.3 else 200 for _ in range(30)]
    seen = [entra.graph("GET", "/v1.0/organization", token).status_code for _ in range(30)]
    assert seen == expected and 503 in seen and 200 in seen
    stats = emulator.admin("GET", "stats")
    assert stats["faults"] == expected.count(503)
    assert stats["faults_by_status"] == {"503": expected.count(503)}
    [rule] = emulator.admin("GET", "faults")["faults"]
    assert (rule["rate"], rule["count"], rule["seed"], rule["injected"]) == (0.3, None, 11, expected.count(503))


def test_count_bounds_a_rate_rule(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/organization$", "rate": 1, "count": 2, "status": 429})
    assert [entra.graph("GET", "/v1.0/organization", token).status_code for _ in range(4)] == [429, 429, 200, 200]
    assert emulator.admin("GET", "faults") == {"faults": []}
    assert emulator.admin("GET", "stats")["faults_by_status"] == {"429": 2}


def test_rate_applies_to_each_batch_item(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "rate": 0.5, "seed": 3, "status": 429})
    rng = random.Random(3)
    expected = [429 if rng.random() < 0.5 else 200 for _ in range(10)]
    assert batch(entra, token, [("GET", "/users")] * 10) == expected


def test_drop_rules_never_drop_a_single_batch_item(entra, emulator):
    token = entra.app_token()
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "rate": 1, "status": "drop"})
    assert batch(entra, token, [("GET", "/users")] * 3) == [200, 200, 200]
    assert emulator.admin("GET", "faults")["faults"][0]["injected"] == 0


@pytest.mark.parametrize("body, message", [
    ({"path": "x", "rate": 0}, "'rate' must be a number greater than 0 and at most 1"),
    ({"path": "x", "rate": 1.5}, "'rate' must be a number greater than 0 and at most 1"),
    ({"path": "x", "rate": "often"}, "'rate' must be a number greater than 0 and at most 1"),
    ({"path": "x", "rate": True}, "'rate' must be a number greater than 0 and at most 1"),
    ({"path": "x", "rate": 0.5, "count": 0}, "'count' must be a positive integer"),
    ({"path": "x", "rate": 0.5, "seed": "seven"}, "'seed' must be an integer"),
    ({"path": "x", "status": "drop", "phase": "later"}, "'phase' must be one of ['request', 'response', 'either']"),
    ({"path": "x", "status": 503, "phase": "response"}, "'phase' applies only to status 'drop'"),
    ({"path": "x", "rates": 0.5}, "unknown fault field 'rates'"),
])
def test_fault_validation_is_a_clear_400(entra, emulator, body, message):
    response = admin_post(entra, emulator, "faults", body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_rule_defaults():
    assert faults.parse_fault({"path": "x"}).remaining == 1  # a count rule, as before rates existed
    assert faults.parse_fault({"path": "x", "status": "drop"}).phase == "request"
    rate_drop = faults.parse_fault({"path": "x", "status": "drop", "rate": 0.1})
    assert (rate_drop.remaining, rate_drop.phase) == (None, "either")
    assert faults.parse_fault({"path": "x", "status": 503, "rate": 0.1}).phase is None


def test_either_phase_is_drawn_from_the_rule_seed():
    injector = faults.FaultInjector()
    injector.add({"path": "^/v1\\.0/users$", "status": "drop", "rate": 1, "seed": 5})
    rng = random.Random(5)
    expected = []
    for _ in range(20):
        rng.random()  # the rate draw
        expected.append("request" if rng.random() < 0.5 else "response")
    phases = [injector.take("POST", "/v1.0/users", can_drop=True).phase for _ in range(20)]
    assert phases == expected and set(phases) == {"request", "response"}


# -- dropped connections ---------------------------------------------------------------------------------------


def test_response_phase_drop_applies_the_write(entra, emulator):
    token = entra.app_token()
    body = new_user(entra, token, "lostanswer")
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "method": "POST", "status": "drop",
                                      "phase": "response"})
    with pytest.raises(DROPPED):
        entra.graph("POST", "/v1.0/users", token, json=body)
    created = entra.graph("GET", f"/v1.0/users/{body['userPrincipalName']}", token)
    assert created.status_code == 200, created.text
    assert emulator.admin("GET", "stats")["faults_by_status"] == {"drop": 1}


def test_request_phase_drop_applies_nothing(entra, emulator):
    token = entra.app_token()
    body = new_user(entra, token, "neversent")
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/users$", "method": "POST", "status": "drop",
                                      "phase": "request"})
    with pytest.raises(DROPPED):
        entra.graph("POST", "/v1.0/users", token, json=body)
    assert entra.graph("GET", f"/v1.0/users/{body['userPrincipalName']}", token).status_code == 404


def test_a_dropped_batch_envelope_still_ran_its_items(entra, emulator):
    token = entra.app_token()
    body = new_user(entra, token, "batchlost")
    emulator.admin("POST", "faults", {"path": "^/v1\\.0/\\$batch$", "status": "drop", "phase": "response"})
    envelope = {"requests": [{"id": "1", "method": "POST", "url": "/users", "body": body,
                              "headers": {"Content-Type": "application/json"}}]}
    with pytest.raises(DROPPED):
        entra.graph("POST", "/v1.0/$batch", token, json=envelope)
    assert entra.graph("GET", f"/v1.0/users/{body['userPrincipalName']}", token).status_code == 200


# -- serve --fault ---------------------------------------------------------------------------------------------


def test_serve_fault_options(extra_emulator):
    entra = extra_emulator("--fault", "503:0.5", "--fault", "drop:1:response", "--fault-seed", "7",
                           "--fault-path", "^/v1\\.0/organization$")
    emulator = entra.emulator
    rules = emulator.admin("GET", "faults")["faults"]
    assert [(r["status"], r["rate"], r["seed"], r["phase"], r["path"]) for r in rules] == [
        (503, 0.5, 7, None, "^/v1\\.0/organization$"), ("drop", 1.0, 8, "response", "^/v1\\.0/organization$")]
    rng = random.Random(7)
    expected = [503 if rng.random() < 0.5 else "drop" for _ in range(12)]

    def outcomes():
        token = entra.app_token()
        seen = []
        for _ in range(12):
            try:
                seen.append(entra.graph("GET", "/v1.0/organization", token).status_code)
            except DROPPED:
                seen.append("drop")
        return seen

    assert outcomes() == expected
    assert entra.graph("GET", "/v1.0/users", entra.app_token()).status_code == 200  # other paths: no faults
    emulator.reset()  # the --fault rules come back with their seeds: the same run again
    assert outcomes() == expected
    emulator.admin("DELETE", "faults")
    assert entra.graph("GET", "/v1.0/organization", entra.app_token()).status_code == 200
    log = (emulator.state_dir / "emulator.log").read_text()
    assert "Traceback" not in log and "Error" not in log, log


def test_serve_help_documents_the_fault_options():
    help_text = subprocess.run([sys.executable, str(EMULATOR), "serve", "--help"], capture_output=True, text=True,
                               check=True).stdout
    for option in ("--fault STATUS:RATE[:PHASE]", "--fault-seed N", "--fault-path REGEX"):
        assert option in help_text
    bad = subprocess.run([sys.executable, str(EMULATOR), "serve", "--state-dir", "unused", "--fault", "418:0.5"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "'status' must be one of" in bad.stderr
