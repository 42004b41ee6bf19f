"""Gateway settings: the shipped gateway.yaml, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gateway.config import ConfigError, default_config_path, load_settings, parse_settings

ROUTE = {"name": "r", "prefix": "/api/r", "service": "svc"}


def test_default_config_has_the_demo_routes_and_keys() -> None:
    settings = load_settings(default_config_path())
    routes = {r.name: (r.prefix, r.service, r.upstream_prefix) for r in settings.routes}
    assert routes == {
        "orders": ("/api/orders", "orders", "/orders"),
        "inventory": ("/api/inventory", "inventory", ""),
        "products": ("/api/products", "inventory", "/products"),
        "payments": ("/api/payments", "payments", ""),
    }
    keys = {k.key: k for k in settings.keys}
    assert keys["demo-key"].routes == ["*"]
    assert (keys["demo-key"].rate, keys["demo-key"].burst) == (50.0, 100)
    assert sorted(keys["readonly-key"].routes) == ["inventory", "products"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"routes": [{**ROUTE, "timeout": "soon"}]}, "routes.0.timeout"),
        ({"routes": [{**ROUTE, "balancer": "random"}]}, "routes.0.balancer"),
        ({"routes": [ROUTE, {**ROUTE, "prefix": "/x"}]}, "routes.1.name: duplicate 'r'"),
        ({"routes": [ROUTE], "keys": [{"name": "k", "key": "secret-key", "routes": ["nope"]}]}, "keys.0.routes"),
        ({"routes": [ROUTE], "keys": [{"name": "k", "key": "short"}]}, "keys.0.key"),
        ({"routes": [ROUTE], "keys": [{"name": "k", "key": "secret-key", "rate": 0}]}, "keys.0.rate"),
        ({"routes": [{**ROUTE, "prefix": "/api/r/"}]}, "must not end with '/'"),
        ({"routes": [{**ROUTE, "timeout": 1, "per_try_timeout": 2}]}, "per_try_timeout"),
        ({"routes": [ROUTE], "breaker": {"open_for": 0}}, "breaker.open_for"),
        ({"routes": [ROUTE], "retry_budget": {"ratio": 2}}, "retry_budget.ratio"),
        ({"routes": [ROUTE], "static_instances": {"svc": ["127.0.0.1:1"]}}, "static_instances.svc"),
        ({"routes": [ROUTE], "bogus": 1}, "bogus"),
        ({}, "routes: Field required"),
        ({"routes": [ROUTE], "max_body_bytes": "lots"}, "max_body_bytes"),
    ],
)
def test_invalid_settings_name_the_key(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    assert expected in str(info.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
