"""Exchange Online's admin REST endpoint for the tenant emulator: `POST /adminapi/beta/{tenant}/InvokeCommand`.

The API is not documented by Microsoft; its shape follows the public clients that call it (CISA ScubaGear
EXORestHelper.psm1, CIPP New-ExoRequest.ps1; REFERENCE.md "Exchange Online admin REST"):
- body `{"CmdletInput": {"CmdletName", "Parameters"}}`; results in `value`, warnings in `@adminapi.warnings`;
- `Prefer: odata.maxpagesize=N` (at most 1000) pages the results; the client POSTs the same body to
  `@odata.nextLink` for the next page; `$select` keeps only the named properties;
- errors `{"error": {"code", "message", "details": [{"code", "target", "message": "ErrorId|Exception|Text"}]}}`.

Access: a token for the Exchange Online resource carrying `Exchange.ManageAsApp`, of an app whose service principal
holds a role Exchange accepts for app-only access (Learn "App-only authentication in Exchange Online PowerShell":
Exchange Administrator, Exchange Recipient Administrator, Global Administrator; Global Reader only reads). Without the
role the answer is the module's "The role assigned to application ... isn't supported in this scenario"
(Microsoft365DSC#4530); a read-only role calling a write cmdlet gets "User is not allowed to call ..."
(MicrosoftDocs/office-docs-powershell#7970).

Throttling: Exchange budgets cmdlets per user or app over time (the KB "Micro delay applied" warning or delays occur
in Exchange Online; PowerShellMaxDestructiveCmdlets per PowerShellMaxDestructiveCmdletsTimePeriod). The REST answer
to an exhausted budget is not public: the emulator answers 429 with `Retry-After`, as Microsoft's other REST front
ends (Graph) do, once an app has run `write_budget` write cmdlets within `budget_window_s`.

Admin API (`/_emulator/exchange/...`, X-Emulator-Key): `settings` (GET/PUT), `licenses` (POST {"users": [upn|id]}
marks users licensed: their mailboxes appear after `provisioning_delay_s`), `faults` (POST {"cmdlet", "status",
"count", "retry_after"}; DELETE), `stats` (GET), `stats/reset` (POST), `dump` (GET), `seed` (POST {"mail_contacts":
N, "distribution_groups": M, "dynamic_distribution_groups": K, "mail_users": L}).
"""
import json
import math
import threading
import time
import uuid

from werkzeug.wrappers import Response

import exchange_cmdlets
from exchange_recipients import CmdletError, RecipientStore

EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
MANAGE_AS_APP = "Exchange.ManageAsApp"
FULL_ROLES = {"29232cdf-9323-42fd-ade2-1d097af3e4de",   # Exchange Administrator
              "31392ffb-586c-42d1-9346-e59415a2cc4e",   # Exchange Recipient Administrator
              "62e90394-69f5-4237-9190-012177145e10"}   # Global Administrator
READ_ROLES = {"f2ef992c-3afb-46b9-b7cf-a126ee74c451"}    # Global Reader
EXCHANGE_LICENSE_SKU = "4b9405b0-7788-4568-add1-99614e613b69"   # Exchange Online (Plan 1)
DEFAULT_SETTINGS = {"provisioning_delay_s": 2.0, "throttling": False, "write_budget": 120, "budget_window_s": 60.0}


class ExchangeOnline:
    """One tenant's Exchange Online. `app` is the EmulatorApp (its tenant, identity platform and realism)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            profile = self.app.profile
            self.store = RecipientStore(profile.tenant_id, profile.tenant_domain)
            self.settings = dict(DEFAULT_SETTINGS)
            self.licensed_at = {}
            self.faults = []
            self.pages = {}
            self.writes = []        # (monotonic time, app id) of recent write cmdlets, for the budget
            self.stats = {"requests": 0, "cmdlets": {}, "writes": 0, "throttled": 0, "errors": 0}

    # -- InvokeCommand ------------------------------------------------------------------------------------------------
    def handle(self, request, tenant):
        realism = getattr(self.app, "realism", None)
        if realism is not None and hasattr(realism, "latency"):
            realism.latency()
        request_id = str(uuid.uuid4())
        with self.lock:
            self.stats["requests"] += 1
        claims, problem = self._authorize(request, tenant)
        if problem:
            return self._error(problem[0], problem[1], problem[2], request_id)
        body = request.get_json(silent=True) or {}
        cmdlet_input = body.get("CmdletInput") if isinstance(body, dict) else None
        if not isinstance(cmdlet_input, dict) or not isinstance(cmdlet_input.get("CmdletName"), str):
            return self._error(400, "BadRequest", "The request body must hold CmdletInput with CmdletName.", request_id)
        cmdlet = cmdlet_input["CmdletName"]
        params = cmdlet_input.get("Parameters") or {}
        is_write = not cmdlet.lower().startswith(("get-", "test-"))
        if is_write and not self._may_write(claims):
            return self._error(401, "Unauthorized", f"User is not allowed to call {cmdlet}", request_id)
        skiptoken = request.args.get("$skiptoken")
        with self.lock:
            rejection = self._fault(cmdlet) or (self._throttle(claims) if is_write and not skiptoken else None)
            if rejection:
                self.stats["throttled"] += rejection[0] == 429
                return self._error(*rejection[:3], request_id, retry_after=rejection[3])
            if not skiptoken:
                self.stats["cmdlets"][cmdlet] = self.stats["cmdlets"].get(cmdlet, 0) + 1
                self.stats["writes"] += is_write
        return self._page(request, tenant, cmdlet, params, skiptoken, request_id)

    def _page(self, request, tenant, cmdlet, params, skiptoken, request_id):
        with self.lock:
            if skiptoken:
                results, warnings = self.pages.pop(skiptoken, (None, None))
                if results is None:
                    return self._error(400, "BadRequest", "The $skiptoken is not valid.", request_id)
            else:
                try:
                    results, warnings = exchange_cmdlets.run(self.store, cmdlet, params, self._mailboxes())
                except CmdletError as error:
                    self.stats["errors"] += 1
                    return self._error(error.status, error.code, "Error executing cmdlet", request_id,
                                       detail=error.detail())
                results = [_selected(dict(r), request.args.get("$select")) for r in results]
            size = _page_size(request.headers.get("Prefer"))
            page, rest = results[:size], results[size:]
            document = {"@odata.context": f"{request.host_url}adminapi/beta/{tenant}/$metadata#Collection("
                                          "Exchange.GenericHashTable)",
                        "adminapi.warnings@odata.type": "#Collection(String)", "@adminapi.warnings": warnings,
                        "value": page}
            if rest:
                token = uuid.uuid4().hex
                self.pages[token] = (rest, [])
                document["@odata.nextLink"] = f"{request.host_url}adminapi/beta/{tenant}/InvokeCommand?$skiptoken={token}"
                if request.args.get("$select"):
                    document["@odata.nextLink"] += "&$select=" + request.args["$select"]
        return _json(document, 200, request_id)

    @staticmethod
    def _error(status, code, message, request_id, detail=None, retry_after=None):
        return _json(_error_body(code, message, detail), status, request_id,
                     {"Retry-After": retry_after} if retry_after is not None else None)

    # -- access -------------------------------------------------------------------------------------------------------
    def _authorize(self, request, tenant):
        identity = self.app.identity
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, (401, "Unauthorized", "The request has no bearer token.")
        try:
            claims = identity.signing_key.verify(token.strip())
        except Exception:  # an unreadable or foreign token
            return None, (401, "Unauthorized", "The access token is not valid.")
        if float(claims.get("exp", 0)) + 300 < time.time():
            return None, (401, "Unauthorized", "The access token has expired (lifetime validation failed).")
        if claims.get("aud") not in _exchange_audiences(self.app):
            return None, (401, "Unauthorized", "The access token is not for Exchange Online (invalid audience).")
        if claims.get("tid") != self.app.profile.tenant_id or not self.app.profile.names_tenant(tenant):
            return None, (401, "Unauthorized", f"The access token is not valid for tenant '{tenant}'.")
        if MANAGE_AS_APP not in (claims.get("roles") or []):
            # Emulator wording: the token lacks the app role App-only authentication needs (Learn, step 3).
            return None, (401, "Unauthorized", f"The application {claims.get('appid')} was not granted the "
                          f"{MANAGE_AS_APP} permission of Office 365 Exchange Online.")
        roles = self._roles(claims)
        if not roles & (FULL_ROLES | READ_ROLES):
            return None, (401, "Unauthorized", f"The role assigned to application {claims.get('appid')} isn't "
                          "supported in this scenario. Please check online documentation for assigning correct "
                          "Directory Roles to Azure AD Application for EXO App-Only Authentication.")
        return claims, None

    def _roles(self, claims):
        directory = self.app.tenant.directory
        with directory.lock:
            return {a["roleDefinitionId"] for a in directory.role_assignments.values()
                    if a["principalId"] == claims.get("oid") and a.get("directoryScopeId", "/") == "/"}

    def _may_write(self, claims):
        return bool(self._roles(claims) & FULL_ROLES)

    def _fault(self, cmdlet):
        for fault in self.faults:
            if fault["cmdlet"] in ("*", cmdlet) and fault["count"] > 0:
                fault["count"] -= 1
                return (fault["status"], "TooManyRequests" if fault["status"] == 429 else "ServiceUnavailable",
                        "The request was throttled." if fault["status"] == 429 else "Service unavailable.",
                        fault.get("retry_after", 1))
        return None

    def _throttle(self, claims):
        if not self.settings["throttling"]:
            return None
        now = time.monotonic()
        window = float(self.settings["budget_window_s"])
        self.writes = [(t, a) for t, a in self.writes if now - t < window]
        used = [t for t, a in self.writes if a == claims.get("appid")]
        if len(used) >= int(self.settings["write_budget"]):
            wait = max(1, math.ceil(window - (now - used[0])))
            return 429, "TooManyRequests", "The request was throttled: the write cmdlet budget is used up.", wait
        self.writes.append((now, claims.get("appid")))
        return None

    # -- mailboxes ----------------------------------------------------------------------------------------------------
    def _mailboxes(self):
        """Mailboxes of licensed Entra users whose provisioning is done."""
        directory = self.app.tenant.directory
        delay = float(self.settings["provisioning_delay_s"])
        now = time.time()
        with directory.lock:
            users = [dict(u) for u in directory.users.values() if u.get("assignedLicenses")]
        ready = [u for u in users if now - self.licensed_at.get(u["id"], 0) >= delay]
        return [self.store.mailbox(u) for u in ready]

    # -- admin API ----------------------------------------------------------------------------------------------------
    def admin(self, request):
        path = request.path.split("/_emulator/exchange/", 1)[-1].strip("/")
        body = request.get_json(silent=True) or {}
        with self.lock:
            if path == "settings":
                if request.method == "PUT":
                    unknown = set(body) - set(DEFAULT_SETTINGS)
                    if unknown:
                        return _json({"error": {"code": "400", "message": f"unknown settings {sorted(unknown)}"}}, 400)
                    self.settings.update(body)
                return _json(self.settings)
            if path == "licenses" and request.method == "POST":
                return _json({"licensed": self._license(body.get("users") or [])})
            if path == "faults":
                if request.method == "DELETE":
                    self.faults = []
                    return Response(status=204)
                self.faults.append({"cmdlet": body.get("cmdlet", "*"), "status": int(body.get("status", 429)),
                                    "count": int(body.get("count", 1)), "retry_after": body.get("retry_after", 1)})
                return _json({"faults": self.faults}, 201)
            if path == "stats":
                return _json(self.stats)
            if path == "stats/reset":
                self.stats = {"requests": 0, "cmdlets": {}, "writes": 0, "throttled": 0, "errors": 0}
                return Response(status=204)
            if path == "dump":
                return _json({"recipients": list(self.store.objects.values()), "members": self.store.members,
                              "mailboxes": self._mailboxes()})
            if path == "seed" and request.method == "POST":
                return _json(self._seed(body), 201)
        return _json({"error": {"code": "404", "message": f"No Exchange admin endpoint at {request.path}."}}, 404)

    def _license(self, names):
        directory = self.app.tenant.directory
        licensed = []
        with directory.lock:
            for name in names:
                user = directory.users.get(name) or directory.user_by_name(str(name))
                if user is None:
                    continue
                directory.update("user", user["id"], {"assignedLicenses": [{"disabledPlans": [],
                                                                            "skuId": EXCHANGE_LICENSE_SKU}]})
                self.licensed_at[user["id"]] = time.time()
                licensed.append(user["id"])
        return licensed

    def _seed(self, spec):
        """Synthetic recipients for scale tests: contacts, mail users, groups (each with up to 10 contacts), and
        dynamic groups."""
        store, made = self.store, {}
        contacts = []
        for n in range(int(spec.get("mail_contacts", 0))):
            record = exchange_cmdlets.run(store, "New-MailContact", {
                "Name": f"Seeded Contact {n:06d}", "ExternalEmailAddress": f"seeded{n:06d}@partner.example"}, [])[0][0]
            contacts.append(record["Guid"])
        made["mail_contacts"] = len(contacts)
        for n in range(int(spec.get("mail_users", 0))):
            record = store._base("MailUser", f"Seeded Mail User {n:05d}", f"seededmu{n:05d}", None,
                                 f"seededmu{n:05d}@{store.domain}", ExternalEmailAddress=f"SMTP:mu{n:05d}@ext.example",
                                 UserPrincipalName=f"seededmu{n:05d}@{store.domain}")
            store.add(record)
        for n in range(int(spec.get("distribution_groups", 0))):
            members = contacts[n * 10 % max(1, len(contacts)):][:10]
            exchange_cmdlets.run(store, "New-DistributionGroup", {"Name": f"Seeded Group {n:05d}",
                                                                  "Members": members}, [])
        for n in range(int(spec.get("dynamic_distribution_groups", 0))):
            store.add(store._base("DynamicDistributionGroup", f"Seeded Dynamic {n:04d}", f"seededddg{n:04d}", None,
                                  f"seededddg{n:04d}@{store.domain}", RecipientFilter="(RecipientType -eq 'UserMailbox')"))
        return made


def _exchange_audiences(app):
    """The Exchange Online resources of the emulated cloud (one cloud per run when the emulator knows it)."""
    cloud = getattr(app.identity, "cloud", None) or getattr(app, "cloud", None)
    if cloud is not None and getattr(cloud, "exchange_resources", None):
        return set(cloud.exchange_resources)
    import identity
    return set(getattr(identity, "EXCHANGE_RESOURCES", ("https://outlook.office365.com",)))


def _page_size(prefer):
    for part in (prefer or "").split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "odata.maxpagesize":
            try:
                return max(1, min(1000, int(value.strip())))
            except ValueError:
                pass
    return 1000


def _selected(record, select):
    if not select:
        return record
    names = {n.strip().lower() for n in select.split(",") if n.strip()}
    return {k: v for k, v in record.items() if k.lower() in names}


def _json(document, status=200, request_id=None, headers=None):
    response = Response(json.dumps(document), status=status, content_type="application/json; charset=utf-8")
    if request_id:
        response.headers["request-id"] = request_id
    for key, value in (headers or {}).items():
        response.headers[key] = str(value)
    return response


def _error_body(code, message, detail=None):
    error = {"code": code, "message": message}
    if detail:
        error["details"] = [{"code": "Client", "target": "", "message": detail}]
    return {"error": error}

