"""The route table: longest prefix on whole segments, prefix replaced by the upstream prefix."""

from __future__ import annotations

import pytest
from gateway.config import RouteSettings
from gateway.routes import RouteTable

TABLE = RouteTable(
    [
        RouteSettings(name="orders", prefix="/api/orders", service="orders", upstream_prefix="/orders"),
        RouteSettings(name="inventory", prefix="/api/inventory", service="inventory"),
        RouteSettings(name="products", prefix="/api/products", service="inventory", upstream_prefix="/products"),
        RouteSettings(name="special", prefix="/api/orders/special", service="special"),
    ]
)


@pytest.mark.parametrize(
    ("path", "route", "upstream"),
    [
        ("/api/orders", "orders", "/orders"),
        ("/api/orders/", "orders", "/orders/"),
        ("/api/orders/7", "orders", "/orders/7"),
        ("/api/orders/7/items", "orders", "/orders/7/items"),
        ("/api/orders/special", "special", "/"),
        ("/api/orders/special/x", "special", "/x"),
        ("/api/orders/specialx", "orders", "/orders/specialx"),
        ("/api/inventory", "inventory", "/"),
        ("/api/inventory/products/sku-1", "inventory", "/products/sku-1"),
        ("/api/products", "products", "/products"),
        ("/api/products/sku-1", "products", "/products/sku-1"),
        ("/api/ordersx", None, None),
        ("/api", None, None),
        ("/healthz", None, None),
    ],
)
def test_match(path: str, route: str | None, upstream: str | None) -> None:
    match = TABLE.match(path)
    if route is None:
        assert match is None
    else:
        assert match is not None
        assert (match.route.name, match.upstream_path) == (route, upstream)


def test_root_prefix_matches_everything_not_matched_elsewhere() -> None:
    table = RouteTable(
        [
            RouteSettings(name="all", prefix="/", service="web"),
            RouteSettings(name="api", prefix="/api", service="api", upstream_prefix="/v2"),
        ]
    )
    assert [(m.route.name, m.upstream_path) for m in map(table.match, ["/x/y", "/", "/api/z"]) if m] == [
        ("all", "/x/y"),
        ("all", "/"),
        ("api", "/v2/z"),
    ]
