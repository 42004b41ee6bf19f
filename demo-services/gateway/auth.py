"""API-key authentication and authorisation: which key a request carries and whether it may use a route."""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.config import ALL_ROUTES, KeySettings

# What a 401 tells the client about how to authenticate (RFC 9110 section 11.6.1).
WWW_AUTHENTICATE = 'Bearer realm="gateway", ApiKey realm="gateway", header="X-API-Key"'


class AuthFailure(enum.Enum):
    # The values are the `reason` label of gateway_auth_failures_total.
    MISSING = "missing"
    INVALID = "invalid"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class AuthResult:
    key: KeySettings | None
    failure: AuthFailure | None

    @property
    def status(self) -> int:
        return 403 if self.failure is AuthFailure.FORBIDDEN else 401


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `X-API-Key`, else from `Authorization: Bearer <key>`; None when neither is there.

    `headers` must be case-insensitive (Starlette's and httpx's are)."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, credentials = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


class KeyRing:
    def __init__(self, keys: Sequence[KeySettings]) -> None:
        self._keys = list(keys)

    def check(self, presented: str | None, route_name: str) -> AuthResult:
        if presented is None:
            return AuthResult(None, AuthFailure.MISSING)
        key = self._lookup(presented)
        if key is None:
            return AuthResult(None, AuthFailure.INVALID)
        if ALL_ROUTES not in key.routes and route_name not in key.routes:
            return AuthResult(key, AuthFailure.FORBIDDEN)
        return AuthResult(key, None)

    def _lookup(self, presented: str) -> KeySettings | None:
        found = None
        for key in self._keys:
            # Constant-time comparison over every key, so timing does not tell how much of a key matched.
            if hmac.compare_digest(key.key.encode(), presented.encode()):
                found = key
        return found
