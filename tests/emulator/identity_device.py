"""Device authorization flows of the emulated identity platform (v2-oauth2-device-code): pending flows keyed by
device code, approved through the emulator's admin API (or at once with --auto-approve)."""
import secrets
import string
import threading
import time
from dataclasses import dataclass

USER_CODE_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "0O1I")


@dataclass
class DeviceFlow:
    device_code: str
    user_code: str
    client_id: str
    scopes: list
    expires_at: float
    user: dict | None = None  # who signed in: id, userPrincipalName, displayName


class DeviceFlows:
    """Pending device authorizations, keyed by device code; approved by the admin API (or at once)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_device_code = {}

    def start(self, client_id: str, scopes: list, lifetime_s: float) -> DeviceFlow:
        flow = DeviceFlow(
            device_code=secrets.token_urlsafe(48),
            user_code="".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(9)),
            client_id=client_id,
            scopes=scopes,
            expires_at=time.time() + lifetime_s,
        )
        with self._lock:
            self._by_device_code[flow.device_code] = flow
        return flow

    def approve(self, user_code: str, user: dict) -> bool:
        with self._lock:
            for flow in self._by_device_code.values():
                if flow.user_code == user_code.strip().upper() and flow.expires_at > time.time():
                    flow.user = _user_snapshot(user)
                    return True
        return False

    def get(self, device_code: str) -> DeviceFlow | None:
        with self._lock:
            return self._by_device_code.get(device_code)

    def redeem(self, device_code: str) -> None:
        with self._lock:
            self._by_device_code.pop(device_code, None)

    def clear(self) -> None:
        with self._lock:
            self._by_device_code.clear()


def _user_snapshot(user: dict) -> dict:
    return {key: user.get(key) for key in ("id", "userPrincipalName", "displayName")}
