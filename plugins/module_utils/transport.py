# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one HTTPS session of a module run, shared by msal (as its ``http_client``) and the Graph client.

``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace ``Session.verify`` (only a ``verify=``
given on each request wins), and msal's own ``verify=`` only sets ``Session.verify``. So this session passes
``verify=ca_path or True`` on every request: ``ca_path`` works whatever the environment says, and TLS
verification can never be turned off (a caller's ``verify=False`` is ignored).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import threading
import traceback

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    from requests.adapters import HTTPAdapter
    HAS_REQUESTS = True
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

    class _Dummy(object):
        Session = object

    requests = _Dummy()  # type: ignore
    HTTPAdapter = object  # type: ignore

from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError, TransportError

# Keep in step with galaxy.yml (tests/unit/test_transport_tls.py checks it).
COLLECTION_VERSION = "0.1.0"
USER_AGENT = "idsync.entra/{0}".format(COLLECTION_VERSION)
DEFAULT_TIMEOUT = (10, 120)  # (connect, read) seconds


def check_ca_path(ca_path):
    """Return ``ca_path`` as an absolute path, or raise ConfigError if it is not a readable file or directory."""
    if not ca_path:
        return None
    path = os.path.abspath(os.path.expanduser(str(ca_path)))
    if not os.path.exists(path):
        raise ConfigError("ca_path '{0}' does not exist: pass the PEM file (or directory) of the CA that signed the "
                          "authority and Graph certificates.".format(path), option="ca_path")
    if not os.access(path, os.R_OK):
        raise ConfigError("ca_path '{0}' is not readable by the user running the module.".format(path),
                          option="ca_path")
    return path


class VerifyingSession(requests.Session):
    """A ``requests.Session`` that sends ``verify=<ca_path or True>`` and a timeout on every request."""

    def __init__(self, ca_path=None, timeout=DEFAULT_TIMEOUT, user_agent=USER_AGENT, pool_maxsize=16):
        super(VerifyingSession, self).__init__()
        self.ca_path = check_ca_path(ca_path)
        self._verify = self.ca_path or True
        self.verify = self._verify
        self.default_timeout = timeout
        self.headers["User-Agent"] = user_agent
        # No transport-level retries: GraphClient decides what is safe to retry, msal does its own throttling.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self._last = threading.local()

    def request(self, method, url, *args, **kwargs):
        kwargs["verify"] = self._verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        self._last.status = None
        self._last.headers = None
        response = super(VerifyingSession, self).request(method, url, *args, **kwargs)
        self._last.status = response.status_code
        self._last.headers = dict(response.headers)
        return response

    @property
    def last_status(self):
        """HTTP status of this thread's last response (msal hides it when it raises)."""
        return getattr(self._last, "status", None)

    @property
    def last_headers(self):
        return getattr(self._last, "headers", None)


def build_session(ca_path=None, timeout=DEFAULT_TIMEOUT):
    """The shared session: keep-alive, ``User-Agent: idsync.entra/<version>``, timeouts, and ``ca_path`` that wins."""
    if not HAS_REQUESTS:
        raise ConfigError("The Python library 'requests' is required on the managed node.", option=None)
    return VerifyingSession(ca_path=ca_path, timeout=timeout)


def is_transport_error(exc):
    """A failure of the HTTP exchange itself (refused, dropped, timed out, TLS), as opposed to an HTTP answer."""
    return HAS_REQUESTS and isinstance(exc, requests.exceptions.RequestException)


def is_tls_error(exc):
    return HAS_REQUESTS and isinstance(exc, requests.exceptions.SSLError)


def describe_transport_error(exc, method, url, ca_path=None, sent=None):
    """Turn a ``requests`` exception into a TransportError with one sentence that names the fix."""
    details = {"method": method, "url": url, "exception": type(exc).__name__}
    text = str(exc)
    if HAS_REQUESTS and isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            if ca_path:
                msg = ("The TLS certificate of {0} is not signed by a CA in ca_path '{1}': pass the CA bundle that "
                       "signed it.".format(_origin(url), ca_path))
            else:
                msg = ("The TLS certificate of {0} could not be verified against the system CA bundle: pass ca_path "
                       "with the CA that signed it.".format(_origin(url)))
        else:
            msg = "The TLS handshake with {0} failed: {1}.".format(_origin(url), _short(text))
        return TransportError(msg, details)
    if HAS_REQUESTS and isinstance(exc, requests.exceptions.ConnectTimeout):
        msg = "Connecting to {0} timed out: check the host name, the network path and any proxy settings.".format(
            _origin(url))
    elif HAS_REQUESTS and isinstance(exc, requests.exceptions.ReadTimeout):
        msg = "{0} did not answer {1} {2} in time.".format(_origin(url), method, _path(url))
        if sent is False:
            msg += " The request was not retried because it may have been applied: check the object, then run again."
    elif HAS_REQUESTS and isinstance(exc, requests.exceptions.ProxyError):
        msg = "The proxy refused the connection to {0}: check HTTPS_PROXY / NO_PROXY.".format(_origin(url))
    elif HAS_REQUESTS and isinstance(exc, requests.exceptions.ConnectionError):
        if _before_send(exc):
            msg = "Could not connect to {0}: {1}.".format(_origin(url), _short(text))
        else:
            msg = "The connection to {0} was lost during {1} {2}.".format(_origin(url), method, _path(url))
            if sent is False:
                msg += (" The request was not retried because it may have been applied: check the object, "
                        "then run again.")
    else:
        msg = "The request {0} {1} failed: {2}.".format(method, _path(url), _short(text))
    return TransportError(msg, details)


def _before_send(exc):
    """True when a ConnectionError happened before any byte of the request could reach the server
    (DNS failure, connection refused, connect timeout), so even a POST is safe to send again."""
    if HAS_REQUESTS and isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    seen = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        name = type(item).__name__
        if name in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError", "ConnectionRefusedError"):
            return True
        for attr in ("reason", "__cause__", "__context__"):
            stack.append(getattr(item, attr, None))
        stack.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
    return False


def _origin(url):
    try:
        from urllib.parse import urlsplit
    except ImportError:  # pragma: no cover
        from urlparse import urlsplit  # type: ignore
    parts = urlsplit(url)
    return "{0}://{1}".format(parts.scheme, parts.netloc) if parts.netloc else url


def _path(url):
    try:
        from urllib.parse import urlsplit
    except ImportError:  # pragma: no cover
        from urlparse import urlsplit  # type: ignore
    return urlsplit(url).path or url


def _short(text):
    text = " ".join(str(text).split())
    return text[:300]
