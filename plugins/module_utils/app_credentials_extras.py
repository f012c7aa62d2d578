# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Two things ``idsync.entra.app_registration`` adds to an application besides keys and permissions:

* **directory extensions** (``POST /applications/{id}/extensionProperties``, Learn: "Create extensionProperty"):
  ``idsyncWorkflow`` on users and groups carries the ownership mark of sync workflows (sync/ownership.py);
* **federated identity credentials** (``POST /applications/{id}/federatedIdentityCredentials``, Learn: "Create
  federatedIdentityCredential"; at most 20 per application): a workload (AKS, GitHub Actions, GitLab CI) signs in
  with its own platform's token instead of a secret or certificate (workload identity federation).

Both only add what is missing: existing definitions and credentials, the application's or anyone's, are left alone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, GraphError

FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
MAX_FEDERATED_CREDENTIALS = 20
EXTENSION_TARGETS = ["User", "Group"]


def _retry_replication(call, timeout, sleep=time.sleep):
    """An application created moments ago may be missing from the replica that answers: retry 404s."""
    deadline = time.monotonic() + max(timeout, 1)
    delay = 1.0
    while True:
        try:
            return call()
        except GraphError as exc:
            if exc.status != 404 or time.monotonic() + delay > deadline:
                raise
            sleep(delay)
            delay = min(delay * 2, 10.0)


def ensure_directory_extensions(graph, app, names, check_mode=False, timeout=300):
    """Register each of ``names`` (String, on users and groups) on ``app`` ({id, appId}) unless it exists.
    Returns ``(changes, {short name: full name})``."""
    prefix = "extension_%s_" % app["appId"].replace("-", "").lower()
    existing = {}
    if app.get("id"):
        items = _retry_replication(lambda: graph.list("/applications/%s/extensionProperties" % app["id"]), timeout)
        existing = dict((item["name"].lower(), item["name"]) for item in items)
    changes = []
    result = {}
    for name in names:
        full = prefix + name
        if full.lower() in existing:
            result[name] = existing[full.lower()]
            continue
        changes.append("register directory extension %s on users and groups" % full)
        result[name] = full
        if not check_mode:
            body = {"name": name, "dataType": "String", "targetObjects": EXTENSION_TARGETS}
            created = _retry_replication(
                lambda: graph.post("/applications/%s/extensionProperties" % app["id"], json=body), timeout)
            result[name] = (created or {}).get("name") or full
    return changes, result


def normalise_federated_credentials(items):
    """The module option as a list of complete credential bodies; ConfigError for a bad one."""
    out = []
    for index, item in enumerate(items or []):
        where = "federated_credentials[%d]" % index
        for key in ("name", "issuer", "subject"):
            if not item.get(key):
                raise ConfigError("%s needs %s" % (where, key), option="federated_credentials")
        audiences = item.get("audiences") or [FEDERATION_AUDIENCE]
        # Entra compares issuer and subject exactly (case-sensitive), so they are kept as given.
        body = {"name": item["name"], "issuer": item["issuer"], "subject": item["subject"],
                "audiences": list(audiences)}
        if item.get("description"):
            body["description"] = item["description"]
        out.append(body)
    if len(out) > MAX_FEDERATED_CREDENTIALS:
        raise ConfigError("An application holds at most %d federated identity credentials." % MAX_FEDERATED_CREDENTIALS,
                          option="federated_credentials")
    return out


def ensure_federated_credentials(graph, app, wanted, check_mode=False, timeout=300):
    """Add each wanted credential that no existing one matches (same issuer and subject); one with the same name
    but another issuer or subject is updated. Returns ``(changes, [credential names])``."""
    existing = []
    if app.get("id"):
        existing = _retry_replication(
            lambda: graph.list("/applications/%s/federatedIdentityCredentials" % app["id"]), timeout)
    by_name = dict((c.get("name"), c) for c in existing)
    changes = []
    for body in wanted:
        same = [c for c in existing if c.get("issuer") == body["issuer"] and c.get("subject") == body["subject"]]
        if same and sorted(same[0].get("audiences") or []) == sorted(body["audiences"]):
            continue
        current = by_name.get(body["name"])
        if current is not None:
            changes.append("update federated credential %s (issuer %s, subject %s)"
                           % (body["name"], body["issuer"], body["subject"]))
            if not check_mode:
                patch = dict((k, v) for k, v in body.items() if k != "name")
                _retry_replication(lambda: graph.patch("/applications/%s/federatedIdentityCredentials/%s"
                                                       % (app["id"], current["id"]), json=patch), timeout)
            continue
        if len(existing) >= MAX_FEDERATED_CREDENTIALS:
            raise ConfigError("The application already holds %d federated identity credentials, the most Entra ID "
                              "allows; remove one before adding %s." % (len(existing), body["name"]),
                              option="federated_credentials")
        changes.append("add federated credential %s (issuer %s, subject %s)"
                       % (body["name"], body["issuer"], body["subject"]))
        existing.append(body)
        if not check_mode:
            _retry_replication(lambda: graph.post("/applications/%s/federatedIdentityCredentials" % app["id"],
                                                  json=body), timeout)
    return changes, sorted(c.get("name") for c in existing)
