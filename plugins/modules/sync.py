#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sync
short_description: Run a sync workflow between two connected systems (create, update, deprovision, memberships)
version_added: "0.1.0"
description:
  - Runs one B(sync workflow) between two connections saved with M(idsync.entra.connection) (for example an HR
    CSV file and a Microsoft Entra ID tenant, or the other way round).
  - "Each run reads both sides, B(plans) (which source object is which target object, what to create, which
    attributes changed, what to deprovision, which group memberships to add or remove), checks the B(deletion
    threshold), and applies only the difference: a second run with unchanged data reports C(changed: false) and
    sends no write request at all."
  - In check mode the module returns the full plan and writes nothing; with C(--diff) it shows each change as
    before and after.
  - One failing object never stops the run. The task fails when any object failed, after everything else was
    applied; RV(errors) names each failed object and why.
  - Two runs of one workflow never overlap (a lock in the store). A run that was interrupted (process killed) leaves
    the store consistent; the next run finds the objects it created through the match attributes (written on
    create) and finishes the job without duplicates.
  - "B(Rules.) Every attribute rule is one of: a source attribute name (V(Department)); a constant (V(true),
    V(42), or C({value: Contoso})); an B(expression) such as
    V(<< (GivenName ~ '.' ~ Surname\\) | lower | strip_accents >>@contoso.example); or a reference
    C({reference: ManagerID})."
  - "Expressions are Jinja2 templates evaluated in Jinja2's sandbox with the delimiters C(<< >>) (and C(<% %>) for
    blocks), which Ansible's own templating leaves alone, so rules need no C(!unsafe). A template that is exactly
    one C(<< expression >>) keeps the expression's type (a list, a boolean); anything else is text. Besides Jinja2's
    built-in filters (lower, upper, replace, trim, first...) there are C(strip_accents), C(mail_safe),
    C(regex_replace), C(regex_search), C(substring) (start, length), C(truncate) (a hard cut at a length),
    C(default_if_empty) (a value for empty input), C(split) and C(join) (with a separator). The source object's attributes are
    variables; C(source['Column with spaces']) reaches any attribute. An empty source value is an empty string."
  - Unknown source attributes (not in the CSV header, not an Entra attribute), unknown or read-only target
    attributes and expressions that do not parse fail the task before anything is read or written, naming the rule.
  - "Values compare normalised: text case-sensitively; null, empty text and an empty list are equal; multi-valued
    attributes as sets (unless ordered, such as businessPhones); booleans and numbers from their text forms."
author:
  - idsync.entra contributors (!UNKNOWN)
options:
  name:
    description:
      - Name of the workflow. It names the run history (see M(idsync.entra.sync_history)), the lock, the delta state
        and the set of objects the workflow manages.
    type: str
    required: true
  previous_names:
    description:
      - Names this workflow had before a rename. Target objects whose ownership mark (see the connection's
        C(ownership_attribute)) holds one of them are this workflow's; matched ones are marked with the new name.
      - Objects marked by any other workflow are never claimed, re-marked or deprovisioned by this one.
    type: list
    elements: str
    default: []
  store:
    description:
      - The idsync store, either the path of a SQLite file (created V(0600), its directory V(0700), when missing), or
        the URL of a PostgreSQL database (V(postgresql://user@host:5432/dbname), needs the Python package
        C(psycopg)), which jobs on any node share (AWX / Automation Platform, see docs/awx.md).
      - If not set, the value of the E(IDSYNC_STORE) environment variable is used, else V(~/.idsync/store.db).
      - A password in the URL is never shown; prefer E(PGPASSWORD) or C(~/.pgpass).
      - Holds the connections, run history, delta links, managed objects and locks. Run reports and progress
        files go beside a SQLite store, and to C(~/.idsync/) for a PostgreSQL store.
    type: str
  source:
    description:
      - Where objects come from.
    type: dict
    required: true
    suboptions:
      connection:
        description: Name of a connection in the store. Exactly one of O(source.connection) and O(source.connector).
        type: str
      connector:
        description:
          - Instead of O(source.connection), a V(csv) file given inline with O(source.path) and O(source.key) (and
            optionally O(source.delimiter), O(source.encoding), O(source.multi_value_separator)), validated as
            M(idsync.entra.connection) validates them and never saved. Check mode then plans from exactly the file
            the real run reads.
        type: str
        choices: [csv]
      path:
        description: With O(source.connector=csv), the CSV file.
        type: path
      key:
        description: With O(source.connector=csv), the column(s) that identify a row.
        type: list
        elements: str
      delimiter:
        description: With O(source.connector=csv), the field delimiter (default V(,)).
        type: str
      encoding:
        description: With O(source.connector=csv), the text encoding (default V(utf-8)).
        type: str
        choices: [utf-8, utf-8-sig]
      multi_value_separator:
        description: With O(source.connector=csv), the separator between values in one field (default V(;)).
        type: str
      object_type:
        description:
          - The connector's object type, V(row) for V(csv), V(user) or V(group) for V(azure_ad), V(user), V(group)
            or V(organizational_unit) for V(active_directory) and V(ldap).
        type: str
        required: true
      scope:
        description:
          - Only source objects for which this rule is true take part, for example V(<< Status == 'Active' >>).
            An object that leaves the scope is treated like one that disappeared (it is deprovisioned).
        type: raw
      filter:
        description:
          - For an V(azure_ad) source read in full, an OData C($filter) applied by Microsoft Graph.
          - For an V(active_directory) or V(ldap) source, an LDAP filter (RFC 4515) added to the connection's search,
            for example V((!(sAMAccountName=svc-*\))); it works with O(delta) too.
        type: str
      multi_valued:
        description:
          - For a V(csv) source, the columns that hold several values separated by the connection's
            C(multi_value_separator).
        type: list
        elements: str
        default: []
  target:
    description:
      - Where objects are created, updated and deprovisioned.
    type: dict
    required: true
    suboptions:
      connection:
        description: Name of a connection in the store. Exactly one of O(target.connection) and O(target.connector).
        type: str
      connector:
        description: A V(csv) file given inline, as for O(source.connector).
        type: str
        choices: [csv]
      path:
        description: Inline V(csv) only, as O(source.path).
        type: path
      key:
        description: Inline V(csv) only, as O(source.key).
        type: list
        elements: str
      delimiter:
        description: Inline V(csv) only, as O(source.delimiter).
        type: str
      encoding:
        description: Inline V(csv) only, as O(source.encoding).
        type: str
        choices: [utf-8, utf-8-sig]
      multi_value_separator:
        description: Inline V(csv) only, as O(source.multi_value_separator).
        type: str
      object_type:
        description: The connector's object type.
        type: str
        required: true
      multi_valued:
        description: For a V(csv) target, the columns written as several values.
        type: list
        elements: str
        default: []
  match:
    description:
      - How a source object is paired with a target object (the mapping rule). A source object matches a target
        object when any pair has equal values. A source object matching two target objects, or two source objects
        matching one target, is an error for those objects, never a guess.
      - Match on a stable attribute (C(employeeId)) so renames (a new surname, a new UPN) are updates. The target
        match attributes are always written on create.
    type: list
    elements: dict
    required: true
    suboptions:
      source:
        description: A source attribute name or an expression.
        type: raw
        required: true
      target:
        description: A target attribute name.
        type: str
        required: true
      case_sensitive:
        description: Compare the values case-sensitively.
        type: bool
        default: false
  steps:
    description:
      - The workflow's steps. Leave a step out to skip it.
    type: dict
    required: true
    suboptions:
      create:
        description:
          - Create a target object for each source object that matches none.
          - The O(steps.update.attributes) rules apply at creation too (and win over these), so a new object needs
            no second run to converge.
        type: dict
        suboptions:
          attributes:
            description:
              - Target attribute -> rule, the initial attribute population.
              - "B(Unique values.) C({unique: [candidate, candidate, ...]}) gives the first candidate rule whose value
                is free in the target and not chosen for another object in the same run; when every candidate is taken,
                the first gets a counter: V(john.smith2@contoso.com) (before the C(@) for C(local@domain) values, else
                at the end), cut so it still fits the attribute's length limit. A candidate the target would refuse
                (for example an empty alias from a name with no Latin letters) is skipped, so a last candidate such as
                V(<< 'e' ~ EmployeeID >>@contoso.com) always works. Entra compares userPrincipalName, mail and
                mailNickname case-insensitively, and a userPrincipalName or mail also against every user's and
                group's C(proxyAddresses). The choice costs no request per person (it uses what the run read), is
                deterministic (same input, same names) and create-only: a name once given is never changed."
              - "B(Values computed for the same object.) An expression may read C(target.<attribute>), the value
                computed for another attribute of the same step, for example
                C(mailNickname: \"<< target.userPrincipalName.split('@')[0] >>\"). A cycle is a configuration error."
              - A value Microsoft Graph would refuse (a documented length, the characters of a mail nickname or a
                sign-in name, a userPrincipalName domain that is not verified in the tenant, a usageLocation that is not
                an ISO 3166 code) fails that object in the plan, naming the attribute, the rule and the limit.
            type: dict
            required: true
          password:
            description:
              - V(generate) sets a random initial password that meets Entra's complexity rules. It is never
                returned, logged or stored.
            type: str
            choices: [generate, none]
          force_change_password:
            description: The user must change the generated password at first sign-in.
            type: bool
            default: true
      update:
        description:
          - Keep the attributes of matched objects up to date; only attributes whose value changed are written.
        type: dict
        suboptions:
          attributes:
            description:
              - "Target attribute -> rule. References are written as C({reference: <source attribute>}); the value
                is the key of another source object (or, with C(by), a value of another source attribute; with
                C(lookup), a value of a target attribute to look up), and the target gets that object's id.
                A manager created in the same run is resolved once it exists."
            type: dict
            required: true
      deprovision:
        description:
          - What happens to target objects this workflow manages when their source object disappeared or left the
            scope. Nothing by default.
        type: dict
        suboptions:
          action:
            description:
              - V(disable) disables the object (C(accountEnabled=false) for users); V(delete) deletes it (Entra
                keeps deleted users restorable for 30 days); V(none) does neither (use O(steps.deprovision.set)).
            type: str
            choices: [none, disable, delete]
            default: none
          set:
            description:
              - "Attribute values to set on deprovisioned objects, for example C({department: Leavers}). Values are
                constants."
            type: dict
          scope:
            description:
              - V(managed) deprovisions only objects this workflow created or matched in an earlier run.
              - V(match_key) deprovisions every target object that has a value in the target match attribute and
                matches no source object, including objects that existed before the workflow.
            type: str
            choices: [managed, match_key]
            default: managed
  memberships:
    description:
      - Group memberships derived from each source object, for example one group per department. Only the
        difference is written, in batches. A member is removed from a managed group only when the workflow
        manages the member (other members added by hand stay).
      - "A group workflow (target O(target.object_type=group)) can instead fill C(members) with a reference rule
        from a member list column, for example C(members: {reference: Members, lookup: employeeId})."
    type: list
    elements: dict
    suboptions:
      group:
        description:
          - The name(s) of the group(s) the source object belongs to, a source attribute or an expression such as
            V(<< Department >> staff). An empty value means no group. A list gives several groups.
        type: raw
        required: true
      object_type:
        description: The target's group object type.
        type: str
        default: group
      match_attribute:
        description: The group attribute the name is compared with (case-insensitively).
        type: str
        default: displayName
      create_missing:
        description: Create a group that does not exist yet (otherwise that is an error for the group).
        type: bool
        default: false
      group_type:
        description: The kind of group created by O(memberships[].create_missing).
        type: str
        choices: [security, microsoft365]
        default: security
      description:
        description: Description of created groups.
        type: str
      remove:
        description: Remove managed members that no longer belong.
        type: bool
        default: true
  delta:
    description:
      - Read V(azure_ad) sides through Microsoft Graph delta queries, from the delta links and the cached object
        snapshot kept in the store. The first run makes a full initial round; a no-op run then costs a couple of
        requests. An expired delta link falls back to a full read and says so in RV(notes).
    type: bool
    default: false
  deletion_threshold:
    description:
      - "Stop the run before any change when it would deprovision more objects than this, a number (V(500), the
        Microsoft Entra Connect default), a percentage of the objects the workflow manages (V(10%), rounded up),
        or both as C({count: 500, percent: 10}) (the smaller binds)."
      - By default the smaller of 500 objects and 10% of the managed objects, so a small tenant is protected too
        (with 300 managed users, at most 30 deprovisions in one run).
    type: raw
  source_shrink_guard:
    description:
      - "Withhold every deprovision when the source holds fewer than this percentage of the objects it held in
        scope on the last run that deprovisioned normally (a truncated export, a header-only file): creates and
        updates still apply, the task fails saying so, and nobody loses access. V(0) turns the guard off;
        O(force_deletes) overrides it once."
      - Independent of this, a source that could not be read completely (a rejected CSV row whose key cannot be
        read, a file broken from some line on) never deprovisions anyone, whatever O(force_deletes) says; a
        rejected row whose key can be read protects its own object only.
    type: int
    default: 90
  force_deletes:
    description:
      - Go ahead even when the deletion threshold is exceeded or the source shrank below O(source_shrink_guard).
    type: bool
    default: false
  max_in_flight:
    description:
      - How many JSON C($batch) requests (of up to 20 writes each) are sent to Microsoft Graph at once.
    type: int
    default: 4
  connection_secrets:
    description:
      - Secrets the store never keeps, per connection name, for example a C(client_secret) for a connection saved
        with client secret authentication, or the C(private_key_passphrase) of an encrypted key. Keys are auth option
        names (C(client_secret), C(private_key_passphrase), C(access_token)); for an V(active_directory) or V(ldap)
        connection C(bind_password), the password of its bind DN; see the examples.
    type: dict
  plan_limit:
    description:
      - Return at most this many entries of RV(plan) in all, each member of a membership list counting as one, so the
        task output stays small whatever the size of the run (the summary still counts everything, and the run
        report holds the whole plan).
      - Default 100, or 1000 with C(-v). RV(errors) likewise holds the first 20 failed objects (200 with C(-v)).
    type: int
attributes:
  check_mode:
    support: full
    description: Returns the full plan and writes nothing (neither to the systems nor to the run history).
  diff_mode:
    support: full
    description: Shows each create, update, deprovision and membership change as before and after.
notes:
  - Secrets never reach the result or the logs; generated passwords are never returned.
requirements:
  - jinja2
  - msal >= 1.28, requests and cryptography >= 42 (for V(azure_ad) connections)
seealso:
  - module: idsync.entra.connection
  - module: idsync.entra.sync_history
"""

EXAMPLES = r"""
- name: HR file into Entra users, with department groups
  idsync.entra.sync:
    name: hr_to_entra
    source:
      connection: hr_file
      object_type: row
      scope: "<< Status == 'Active' >>"
    target:
      connection: contoso
      object_type: user
    match:
      - source: EmployeeID
        target: employeeId
    steps:
      create:
        attributes:
          userPrincipalName: "<< (GivenName ~ '.' ~ Surname) | strip_accents | lower >>@contoso.example"
          displayName: "<< GivenName >> << Surname >>"
          givenName: GivenName
          surname: Surname
          accountEnabled: true
          usageLocation: {value: US}
        password: generate
      update:
        attributes:
          department: Department
          jobTitle: Title
          manager: {reference: ManagerID}
      deprovision:
        action: disable
    memberships:
      - group: "<< Department >> staff"
        create_missing: true
    deletion_threshold: 10%

- name: Export Entra users to a CSV file (idempotent to the byte)
  idsync.entra.sync:
    name: entra_to_csv
    source: {connection: contoso, object_type: user}
    target: {connection: export_file, object_type: row}
    match: [{source: employeeId, target: EmployeeID}]
    steps:
      create:
        attributes: {EmployeeID: employeeId}
      update:
        attributes:
          UPN: userPrincipalName
          Name: displayName
          Department: department
          ManagerID: {reference: manager}
      deprovision: {action: delete}
    delta: true

- name: A connection saved with client secret authentication gets its secret at run time
  idsync.entra.sync:
    name: contractors
    source: {connection: contractors_file, object_type: row}
    target: {connection: fabrikam, object_type: user}
    match: [{source: Email, target: mail}]
    steps:
      update: {attributes: {companyName: Company}}
    connection_secrets:
      fabrikam:
        client_secret: "{{ vault_fabrikam_secret }}"

- name: Plan only
  idsync.entra.sync:
    name: hr_to_entra
    source: {connection: hr_file, object_type: row}
    target: {connection: contoso, object_type: user}
    match: [{source: EmployeeID, target: employeeId}]
    steps:
      update: {attributes: {department: Department}}
  check_mode: true
  register: plan
"""

RETURN = r"""
changed:
  description: Whether anything was written (in check mode, whether anything would be).
  returned: always
  type: bool
summary:
  description: Counts of the run (in check mode, of the plan).
  returned: success or when objects failed
  type: dict
  contains:
    created: {description: Objects created., type: int}
    updated: {description: Matched objects whose attributes or references were updated., type: int}
    deprovisioned: {description: "Objects disabled, deleted or modified because their source went away.", type: int}
    unchanged: {description: Matched objects that were already up to date., type: int}
    failed: {description: Objects (or input rows) that failed., type: int}
    membership_added: {description: Group members added., type: int}
    membership_removed: {description: Group members removed., type: int}
    groups_created: {description: Groups created for memberships., type: int}
  sample: {created: 2, updated: 1, deprovisioned: 0, unchanged: 9997, failed: 0, membership_added: 2,
           membership_removed: 0, groups_created: 0}
plan:
  description:
    - The plan, with people-readable names (UPNs, keys) instead of ids. Never holds a password.
  returned: success or when objects failed
  type: dict
  contains:
    create: {description: "Objects to create: object, source key, attributes.", type: list, elements: dict}
    update: {description: "Objects to update: object, id, source, changes {attribute: {before, after}}.",
             type: list, elements: dict}
    deprovision: {description: "Objects to deprovision: object, id, action, changes.", type: list, elements: dict}
    groups_create: {description: Groups to create., type: list, elements: dict}
    memberships: {description: "Membership changes per group: group, id, add, remove.", type: list, elements: dict}
plan_truncated:
  description: Whether RV(plan) holds only the first O(plan_limit) entries of a list.
  returned: always
  type: bool
errors:
  description: One entry per failed object (C(object), C(error), and C(rule), C(source), C(id), C(step) when known).
  returned: always
  type: list
  elements: dict
  sample: [{object: "hr.csv line 7", error: "line 7: expected 7 fields, found 8"}]
notes:
  description: Sentences about the run, for example that a delta link had expired and everything was read again.
  returned: always
  type: list
  elements: str
reference_warnings:
  description: References that could not be resolved (left unchanged), for example a manager not in the source.
  returned: always
  type: list
  elements: str
reads:
  description: How each side was read (V(full), V(delta), V(delta (initial\))) and how many objects it held.
  returned: always
  type: dict
stats:
  description: Microsoft Graph request counters per side (requests, writes, retries, throttled, batches).
  returned: always
  type: dict
deletion_threshold:
  description: The safety check (deprovisions planned, limit, whether it was exceeded or forced).
  returned: always
  type: dict
withheld:
  description:
    - Deprovisions a guard held back (an incomplete source read, or a source that shrank below
      O(source_shrink_guard)), with the reason and the first objects. The task fails when this is returned.
  returned: when deprovisions were withheld
  type: dict
  sample: {"deprovisions": 249, "group_removals": 249, "reason": "...", "objects": ["a@contoso.com"]}
msg:
  description: One line summing the run up.
  returned: always
  type: str
  sample: "hr_to_entra: created 2, updated 1, deprovisioned 0, unchanged 297, failed 0"
run_id:
  description: Id of the run in the run history (not in check mode).
  returned: when the run was applied
  type: int
report:
  description:
    - The run report written beside the store (check mode included), C(<store dir>/reports/<workflow>/run-<id>) or
      C(plan-<time>), as JSON and as a self-contained HTML page with every created, updated, deprovisioned and failed
      object, searchable and filterable by outcome. No secrets, no passwords; the newest 100 per workflow are kept.
  returned: always, unless the report could not be written (a note says why)
  type: dict
  sample: {"json": "/home/me/.idsync/reports/hr_to_entra/run-12.json", "html": "/home/me/.idsync/reports/hr_to_entra/run-12.html"}
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError
from ansible_collections.idsync.entra.plugins.module_utils.module import IdsyncModule
from ansible_collections.idsync.entra.plugins.module_utils.sync.engine import DeletionThresholdExceeded, run_workflow
from ansible_collections.idsync.entra.plugins.module_utils.sync.progress import Progress, progress_path
from ansible_collections.idsync.entra.plugins.module_utils.sync.report import build_diff, failure_message, summary_sentence
from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import HAS_JINJA2, JINJA2_IMPORT_ERROR


def _endpoint_options(source):
    options = dict(
        connection=dict(type="str"),
        connector=dict(type="str", choices=["csv"]),
        path=dict(type="path"),
        delimiter=dict(type="str"),
        encoding=dict(type="str", choices=["utf-8", "utf-8-sig"]),
        key=dict(type="list", elements="str", no_log=False),
        multi_value_separator=dict(type="str"),
        object_type=dict(type="str", required=True),
        multi_valued=dict(type="list", elements="str", default=[]),
    )
    if source:
        options["scope"] = dict(type="raw")
        options["filter"] = dict(type="str")
    return options


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        store=dict(type="str"),
        source=dict(type="dict", required=True, options=_endpoint_options(True),
                    mutually_exclusive=[("connection", "connector")], required_one_of=[("connection", "connector")]),
        target=dict(type="dict", required=True, options=_endpoint_options(False),
                    mutually_exclusive=[("connection", "connector")], required_one_of=[("connection", "connector")]),
        match=dict(type="list", elements="dict", required=True, options=dict(
            source=dict(type="raw", required=True),
            target=dict(type="str", required=True),
            case_sensitive=dict(type="bool", default=False),
        )),
        steps=dict(type="dict", required=True, options=dict(
            create=dict(type="dict", options=dict(
                attributes=dict(type="dict", required=True),
                password=dict(type="str", choices=["generate", "none"], no_log=False),
                force_change_password=dict(type="bool", default=True),
            )),
            update=dict(type="dict", options=dict(
                attributes=dict(type="dict", required=True),
            )),
            deprovision=dict(type="dict", options=dict(
                action=dict(type="str", choices=["none", "disable", "delete"], default="none"),
                set=dict(type="dict"),
                scope=dict(type="str", choices=["managed", "match_key"], default="managed"),
            )),
        )),
        memberships=dict(type="list", elements="dict", options=dict(
            group=dict(type="raw", required=True),
            object_type=dict(type="str", default="group"),
            match_attribute=dict(type="str", default="displayName"),
            create_missing=dict(type="bool", default=False),
            group_type=dict(type="str", choices=["security", "microsoft365"], default="security"),
            description=dict(type="str"),
            remove=dict(type="bool", default=True),
        )),
        delta=dict(type="bool", default=False),
        deletion_threshold=dict(type="raw"),
        force_deletes=dict(type="bool", default=False),
        source_shrink_guard=dict(type="int", default=90),
        max_in_flight=dict(type="int", default=4),
        plan_limit=dict(type="int"),
        connection_secrets=dict(type="dict", no_log=True),
        previous_names=dict(type="list", elements="str", default=[]),
    )


def main():
    module = IdsyncModule(argument_spec=argument_spec(), graph=False, supports_check_mode=True)
    if not HAS_JINJA2:
        module.fail_json(msg=missing_required_lib("jinja2"), exception=JINJA2_IMPORT_ERROR)
    progress = Progress(progress_path(module.params["store"], module.params["name"]))
    try:
        result = run_workflow(module.params, check_mode=module.check_mode, verbosity=module._verbosity,
                              progress=progress)
    except DeletionThresholdExceeded as exc:
        module.fail_json(msg=exc.msg, changed=False, error=exc.to_result(), **exc.result)
    except IdsyncError as exc:
        module.fail_from(exc)
    finally:
        progress.close()
    if module._diff:
        result["diff"] = build_diff(result.get("plan") or {}, module.params["name"])
    result["msg"] = summary_sentence(result, module.check_mode)
    failure = failure_message(result, module.check_mode)
    if failure:
        result["msg"] = failure
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
