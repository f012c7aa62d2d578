# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""IdsyncModule: AnsibleModule + the shared auth options + a lazily built GraphClient + error handling.

    from ansible_collections.idsync.entra.plugins.module_utils.module import IdsyncModule

    module = IdsyncModule(argument_spec=dict(name=dict(required=True)), supports_check_mode=True)
    with module.fail_on_error():
        org = module.graph.get("/organization")
    module.exit_json(changed=False, organization=org)

Auth options (documented once in ``idsync.entra.auth``) are merged into every module's argument spec.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import traceback
from contextlib import contextmanager

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.idsync.entra.plugins.module_utils import certs, credentials, transport
from ansible_collections.idsync.entra.plugins.module_utils.clouds import CLOUDS, DEFAULT_ENVIRONMENT, resolve_endpoints
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, IdsyncError, scrub
from ansible_collections.idsync.entra.plugins.module_utils.graph import GraphClient, RetryPolicy

AUTH_OPTIONS = (
    "tenant_id", "client_id", "certificate_path", "private_key_path", "private_key_passphrase",
    "certificate_thumbprint", "client_secret", "access_token", "tenant_environment", "authority_host",
    "graph_endpoint", "ca_path", "certificate_content", "private_key_content", "client_assertion",
    "client_assertion_file", "managed_identity",
)
# Options that name a saved connection whose settings fill the auth options above.
CONNECTION_OPTIONS = ("connection", "store")


def auth_argument_spec():
    """The auth options every Graph module takes (keep in step with plugins/doc_fragments/auth.py)."""
    env = credentials.ENV_FALLBACKS
    return dict(
        tenant_id=dict(type="str", fallback=(env_fallback, env["tenant_id"])),
        client_id=dict(type="str", fallback=(env_fallback, env["client_id"])),
        certificate_path=dict(type="path", fallback=(env_fallback, env["certificate_path"])),
        private_key_path=dict(type="path", no_log=False),
        certificate_content=dict(type="str", no_log=True, fallback=(env_fallback, env["certificate_content"])),
        private_key_content=dict(type="str", no_log=True, fallback=(env_fallback, env["private_key_content"])),
        private_key_passphrase=dict(type="str", no_log=True,
                                    fallback=(env_fallback, env["private_key_passphrase"])),
        certificate_thumbprint=dict(type="str"),
        client_secret=dict(type="str", no_log=True, fallback=(env_fallback, env["client_secret"])),
        access_token=dict(type="str", no_log=True),
        client_assertion=dict(type="str", no_log=True),
        client_assertion_file=dict(type="path", fallback=(env_fallback, env["client_assertion_file"])),
        managed_identity=dict(type="bool", default=False),
        tenant_environment=dict(type="str", default=DEFAULT_ENVIRONMENT, choices=list(CLOUDS)),
        authority_host=dict(type="str", fallback=(env_fallback, env["authority_host"])),
        graph_endpoint=dict(type="str"),
        ca_path=dict(type="path"),
        connection=dict(type="str"),
        store=dict(type="str"),
    )


AUTH_REQUIRED_BY = {
    "private_key_path": ["certificate_path"],
    "private_key_content": ["certificate_content"],
}


def build_diff(before, after):
    """Ansible's ``{"before": ..., "after": ...}`` holding only the keys whose values differ.

    ``before=None`` (a create) gives ``before: {}``; ``after=None`` (a delete) gives ``after: {}``.
    """
    before = dict(before or {})
    after = dict(after or {})
    missing = object()
    diff_before = {}
    diff_after = {}
    for key in sorted(set(before) | set(after), key=str):
        old = before.get(key, missing)
        new = after.get(key, missing)
        if old == new:
            continue
        if old is not missing:
            diff_before[key] = old
        if new is not missing:
            diff_after[key] = new
    return {"before": diff_before, "after": diff_after}


class IdsyncModule(AnsibleModule):
    """AnsibleModule for Microsoft Graph modules, in the style of amazon.aws' AnsibleAWSModule.

    ``graph=False`` skips the auth options (a module that never calls Graph). ``.endpoints``, ``.session``,
    ``.credential`` and ``.graph`` are built on first use and raise IdsyncError subclasses: use them inside
    ``with module.fail_on_error():`` (or call ``fail_from(exc)``).
    """

    def __init__(self, argument_spec=None, graph=True, **kwargs):
        spec = auth_argument_spec() if graph else {}
        spec.update(argument_spec or {})
        if graph:
            required_by = dict(AUTH_REQUIRED_BY)
            required_by.update(kwargs.pop("required_by", None) or {})
            kwargs["required_by"] = required_by
        super(IdsyncModule, self).__init__(argument_spec=spec, **kwargs)
        self._uses_graph = graph
        self._endpoints = None
        self._session = None
        self._credential = None
        self._graph = None
        self.retry_events = []
        if "store" in self.params:
            from ansible_collections.idsync.entra.plugins.module_utils.store import hide_store_password
            hide_store_password(self)
        if graph:
            connection = self._connection_params()
            if connection:
                self._apply_connection_params(connection)
            self._check_libraries()

    # -- hooks ------------------------------------------------------------------------------------------

    def _connection_params(self):
        """Auth option values of the named connection (``connection`` + ``store``), or None without one.

        They fill only the auth options the task left unset: task values, module_defaults and environment
        fallbacks win, so a client secret can be supplied at run time for a connection saved without it.
        """
        name = self.params.get("connection")
        if not name:
            return None
        from ansible_collections.idsync.entra.plugins.module_utils import connections

        explicit = dict((key, self.params[key]) for key in AUTH_OPTIONS
                        if self.params.get(key) is not None and key != "tenant_environment")
        try:
            return connections.connection_auth_params(name, self.params.get("store"), explicit)
        except IdsyncError as exc:
            self.fail_from(exc)

    def _apply_connection_params(self, connection):
        spec = auth_argument_spec()
        for key, value in connection.items():
            if key not in AUTH_OPTIONS or value is None:
                continue
            current = self.params.get(key)
            # tenant_environment always has a value (its default); a connection's own value wins over that.
            if current is None or (key in ("tenant_environment", "managed_identity") and current == spec[key]["default"]):
                self.params[key] = value
                if spec[key].get("no_log"):
                    self.no_log_values.add(value)

    def graph_retry_policy(self):
        """The RetryPolicy for ``.graph``; a module may override it."""
        return RetryPolicy()

    # -- lazily built clients -----------------------------------------------------------------------------

    def _check_libraries(self):
        if not transport.HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"), exception=transport.REQUESTS_IMPORT_ERROR)
        try:
            method = credentials.select_auth_method(self.params)
        except ConfigError:
            return  # reported with a clear message when the credential is built
        if method != "access_token" and not credentials.HAS_MSAL:
            self.fail_json(msg=missing_required_lib("msal"), exception=credentials.MSAL_IMPORT_ERROR)
        if method in ("certificate_path", "certificate_content") and not certs.HAS_CRYPTOGRAPHY:
            self.fail_json(msg=missing_required_lib("cryptography"), exception=certs.CRYPTOGRAPHY_IMPORT_ERROR)

    @property
    def endpoints(self):
        if self._endpoints is None:
            tenant_id = self.params.get("tenant_id")
            if not tenant_id and self.params.get("access_token"):
                # A ready token names its tenant.
                tenant_id = credentials.decode_jwt_claims(self.params["access_token"]).get("tid")
            self._endpoints = resolve_endpoints(
                self.params.get("tenant_environment"), tenant_id,
                authority_host=self.params.get("authority_host"),
                graph_endpoint=self.params.get("graph_endpoint"),
            )
        return self._endpoints

    @property
    def session(self):
        if self._session is None:
            self._session = transport.build_session(self.params.get("ca_path"))
        return self._session

    @property
    def credential(self):
        if self._credential is None:
            self._credential = credentials.build_credential(self.params, self.endpoints, self.session)
        return self._credential

    @property
    def graph(self):
        if self._graph is None:
            self._graph = GraphClient(self.endpoints, self.credential, self.session,
                                      retry=self.graph_retry_policy(), on_retry=self._on_retry)
        return self._graph

    def _on_retry(self, event):
        self.retry_events.append(event)
        self.debug("idsync.entra: retrying {method} {path} in {delay:.1f}s after {reason} "
                   "(attempt {attempt})".format(**event))

    # -- results -----------------------------------------------------------------------------------------

    @contextmanager
    def fail_on_error(self, msg=None):
        """``with module.fail_on_error():`` turns an IdsyncError (or anything else) into ``fail_json``."""
        try:
            yield
        except IdsyncError as exc:
            self.fail_from(exc, msg=msg)

    def fail_from(self, exc, msg=None, **kwargs):
        """``fail_json(msg=<one sentence>, error={code, message, request_id, ...})`` for an exception."""
        if isinstance(exc, IdsyncError):
            message = exc.msg if not msg else "{0}: {1}".format(msg.rstrip(": "), exc.msg)
            error = exc.to_result()
        else:
            text = scrub("{0}: {1}".format(type(exc).__name__, exc))
            message = text if not msg else "{0}: {1}".format(msg.rstrip(": "), text)
            error = {"code": type(exc).__name__, "message": scrub(str(exc))}
            kwargs.setdefault("exception", scrub(traceback.format_exc()))
        if self._graph is not None:
            kwargs.setdefault("graph_stats", dict(self._graph.stats))
        self.fail_json(msg=message, error=error, **kwargs)

    @staticmethod
    def diff(before, after):
        return build_diff(before, after)
