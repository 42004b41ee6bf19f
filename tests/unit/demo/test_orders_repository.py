"""Orders repository: the allowed transitions, their history, and listing."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_common.sqlite import Database, open_database
from orders.repository import (
    CHARGED,
    CONFIRMED,
    FAILED,
    PENDING,
    RESERVED,
    SCHEMA,
    InvalidOrderTransition,
    OrderItem,
    OrderNotFound,
    OrderRepository,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def repo(tmp_path: Path) -> OrderRepository:
    return OrderRepository(Database(open_database(tmp_path / "o.sqlite", SCHEMA)), clock=Clock())


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ([RESERVED, CHARGED, CONFIRMED], True),
        ([FAILED], True),
        ([RESERVED, FAILED], True),
        ([RESERVED, CHARGED, FAILED], True),
        ([CHARGED], False),
        ([CONFIRMED], False),
        ([RESERVED, CHARGED, CONFIRMED, FAILED], False),
        ([FAILED, RESERVED], False),
    ],
)
def test_transitions(tmp_path: Path, path: list[str], allowed: bool) -> None:
    r = repo(tmp_path)
    order = r.create("alice", [OrderItem("A", 1)])
    try:
        for status in path:
            order = r.transition(order.id, status, f"to {status}")
    except InvalidOrderTransition:
        assert not allowed
        return
    assert allowed
    stored = r.get(order.id)
    assert [t.to_status for t in stored.transitions] == [PENDING, *path]
    assert [t.from_status for t in stored.transitions] == [None, PENDING, *path[:-1]]


def test_fields_are_set_with_a_transition(tmp_path: Path) -> None:
    r = repo(tmp_path)
    order = r.create("alice", [OrderItem("A", 2), OrderItem("B", 1)])
    r.transition(order.id, RESERVED, "reserved", reservation_id="res-1", amount_cents=700)
    stored = r.transition(order.id, FAILED, "charge failed", failed_step="charge", error="payment_declined")
    assert (stored.reservation_id, stored.amount_cents, stored.failed_step, stored.error) == (
        "res-1",
        700,
        "charge",
        "payment_declined",
    )
    assert stored.items == (OrderItem("A", 2), OrderItem("B", 1))
    with pytest.raises(ValueError, match="customer"):
        r.transition(order.id, FAILED, customer="mallory")


def test_listing_newest_first_by_customer(tmp_path: Path) -> None:
    r = repo(tmp_path)
    ids = [r.create(c, [OrderItem("A", 1)]).id for c in ("alice", "bob", "alice", "alice")]
    assert [o.id for o in r.list("alice")] == [ids[3], ids[2], ids[0]]
    assert [o.id for o in r.list(limit=2)] == [ids[3], ids[2]]
    assert r.list("nobody") == []
    with pytest.raises(OrderNotFound):
        r.get("ord-nope")
