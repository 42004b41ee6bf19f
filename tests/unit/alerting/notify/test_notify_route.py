"""The routing tree, with Alertmanager semantics: first match wins, continue, inheritance, default route."""

from __future__ import annotations

import pytest

from alerting.notify.config import build_notify_config
from alerting.notify.route import build_route

TREE = build_route(
    build_notify_config(
        {
            "receivers": [{"name": n} for n in ("default", "orders", "orders-critical", "audit", "db", "all")],
            "route": {
                "receiver": "default",
                "group_by": ["alertname"],
                "group_wait": "10s",
                "routes": [
                    {"matchers": ['severity="info"'], "receiver": "audit", "continue": True},
                    {
                        "matchers": ['service="orders"'],
                        "receiver": "orders",
                        "group_by": ["service", "severity"],
                        "routes": [{"matchers": ['severity="critical"'], "receiver": "orders-critical"}],
                    },
                    {"matchers": ['service=~"db|cache"'], "receiver": "db", "repeat_interval": "4h"},
                    {"matchers": ['service=~".+"'], "receiver": "all", "group_by": ["..."]},
                ],
            },
        }
    ).route
)


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "X"}, ["default"]),  # nothing below matches: the root handles it
        ({"service": "orders"}, ["orders"]),
        ({"service": "orders", "severity": "critical"}, ["orders-critical"]),
        ({"service": "orders", "severity": "info"}, ["audit", "orders"]),  # continue goes on to the next sibling
        ({"severity": "info"}, ["audit"]),
        ({"service": "db"}, ["db"]),  # first match wins: not also "all"
        ({"service": "payments"}, ["all"]),
        ({"service": "dbx"}, ["all"]),  # regexes are anchored
    ],
)
def test_routing_table(labels: dict[str, str], receivers: list[str]) -> None:
    assert [r.receiver for r in TREE.match(labels)] == receivers


def test_options_are_inherited_or_defaulted() -> None:
    orders = TREE.match({"service": "orders", "severity": "critical"})[0]
    assert orders.group_by == frozenset({"service", "severity"})  # from its parent
    assert (orders.group_wait_s, orders.group_interval_s, orders.repeat_interval_s) == (10.0, 300.0, 0.0)
    db = TREE.match({"service": "db"})[0]
    assert (db.group_by, db.repeat_interval_s) == (frozenset({"alertname"}), 4 * 3600.0)


def test_group_labels_and_keys() -> None:
    every = TREE.match({"service": "payments", "alertname": "A", "x": "1"})[0]
    assert every.group_labels({"service": "payments", "alertname": "A", "x": "1"}) == {
        "service": "payments",
        "alertname": "A",
        "x": "1",
    }
    orders = TREE.match({"service": "orders", "severity": "critical"})[0]
    assert orders.group_labels({"service": "orders", "alertname": "A"}) == {"service": "orders"}
    assert orders.key == '{}/{service="orders"}/{severity="critical"}'  # Alertmanager's Route.Key()
    assert orders.id == '{}/{service="orders"}/1/{severity="critical"}/0'
