"""API keys: where a key is read from, and 401 (missing, invalid) versus 403 (not allowed on the route)."""

from __future__ import annotations

import pytest
from gateway.auth import AuthFailure, KeyRing, presented_key
from gateway.config import KeySettings
from httpx import Headers

RING = KeyRing(
    [
        KeySettings(name="demo", key="demo-key"),
        KeySettings(name="readonly", key="readonly-key", routes=["inventory", "products"]),
    ]
)


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"X-API-Key": "demo-key"}, "demo-key"),
        ({"x-api-key": " demo-key "}, "demo-key"),
        ({"Authorization": "Bearer demo-key"}, "demo-key"),
        ({"authorization": "bearer   demo-key"}, "demo-key"),
        ({"X-API-Key": "a-key", "Authorization": "Bearer b-key"}, "a-key"),
        ({"Authorization": "Basic ZGVtbzprZXk="}, None),
        ({"Authorization": "Bearer"}, None),
        ({"X-API-Key": ""}, None),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], key: str | None) -> None:
    assert presented_key(Headers(headers)) == key


@pytest.mark.parametrize(
    ("presented", "route", "failure", "status", "name"),
    [
        (None, "orders", AuthFailure.MISSING, 401, None),
        ("nope-nope", "orders", AuthFailure.INVALID, 401, None),
        ("demo-key", "orders", None, 401, "demo"),
        ("demo-key", "inventory", None, 401, "demo"),
        ("readonly-key", "inventory", None, 401, "readonly"),
        ("readonly-key", "products", None, 401, "readonly"),
        ("readonly-key", "orders", AuthFailure.FORBIDDEN, 403, "readonly"),
        ("demo-ke", "orders", AuthFailure.INVALID, 401, None),
    ],
)
def test_check(presented: str | None, route: str, failure: AuthFailure | None, status: int, name: str | None) -> None:
    result = RING.check(presented, route)
    assert result.failure is failure
    assert (result.key.name if result.key else None) == name
    if failure is not None:
        assert result.status == status
