"""The order saga against in-memory inventory and payments: each path, its final state, and the compensation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from demo_common.sqlite import Database, open_database
from orders.repository import CONFIRMED, FAILED, SCHEMA, Order, OrderItem, OrderRepository
from orders.saga import (
    DependencyFailed,
    OrderSaga,
    OutOfStock,
    PaymentDeclined,
    Reservation,
    StepError,
    UnknownItems,
)

PRICES = {"A": 500, "B": 1500}


@dataclass
class MemoryStock:
    """Inventory in memory, with the same rules as the real one; `fail` makes a step raise."""

    stock: dict[str, int] = field(default_factory=lambda: {"A": 10, "B": 1})
    held: dict[str, list[OrderItem]] = field(default_factory=dict)
    committed: set[str] = field(default_factory=set)
    fail: dict[str, StepError] = field(default_factory=dict)

    async def reserve(self, order_id: str, items: Sequence[OrderItem]) -> Reservation:
        if "reserve" in self.fail:
            raise self.fail["reserve"]
        unknown = [i.sku for i in items if i.sku not in self.stock]
        if unknown:
            raise UnknownItems("unknown", skus=unknown)
        short = [i.sku for i in items if self.stock[i.sku] < i.qty]
        if short:
            raise OutOfStock("out of stock", shortages=short)
        for item in items:
            self.stock[item.sku] -= item.qty
        self.held[f"res-{order_id}"] = list(items)
        return Reservation(f"res-{order_id}", sum(PRICES[i.sku] * i.qty for i in items))

    async def commit(self, reservation_id: str) -> None:
        if "commit" in self.fail:
            raise self.fail["commit"]
        self.committed.add(reservation_id)

    async def release(self, reservation_id: str) -> None:
        if "release" in self.fail:
            raise self.fail["release"]
        for item in self.held.pop(reservation_id, []):
            self.stock[item.sku] += item.qty


@dataclass
class MemoryPayments:
    outcome: StepError | None = None
    charges: list[tuple[str, int, str]] = field(default_factory=list)

    async def charge(self, order_id: str, amount_cents: int, customer: str) -> str:
        if self.outcome is not None:
            raise self.outcome
        self.charges.append((order_id, amount_cents, customer))
        return f"ch-{order_id}"


@dataclass
class RecordingMetrics:
    steps: list[tuple[str, str]] = field(default_factory=list)
    finished_orders: list[str] = field(default_factory=list)
    compensations: list[str] = field(default_factory=list)

    def step(self, step: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.steps.append((step, outcome))

    def finished(self, order: Order) -> None:
        self.finished_orders.append(order.status)

    def compensation(self, result: str) -> None:
        self.compensations.append(result)


PAY_ERROR = DependencyFailed("payments", "error", "payments answered 500", status=500)
PAY_TIMEOUT = DependencyFailed("payments", "timeout", "no answer")
INV_DOWN = DependencyFailed("inventory", "unavailable", "no instance")


@pytest.mark.parametrize(
    ("items", "stock_fail", "payment", "status", "failure", "stock_a", "compensations"),
    [
        # happy path: stock taken and kept
        ([OrderItem("A", 2)], {}, None, CONFIRMED, None, 8, []),
        # reserve fails: nothing to compensate
        ([OrderItem("B", 2)], {}, None, FAILED, ("reserve", "out_of_stock", 409, None), 10, []),
        ([OrderItem("Z", 1)], {}, None, FAILED, ("reserve", "unknown_sku", 422, None), 10, []),
        (
            [OrderItem("A", 1)],
            {"reserve": INV_DOWN},
            None,
            FAILED,
            ("reserve", "inventory_unavailable", 502, None),
            10,
            [],
        ),
        # charge fails: the reservation is released, the stock is back exactly
        (
            [OrderItem("A", 3)],
            {},
            PaymentDeclined("no", reason="card"),
            FAILED,
            ("charge", "payment_declined", 402, True),
            10,
            ["done"],
        ),
        ([OrderItem("A", 3)], {}, PAY_ERROR, FAILED, ("charge", "payments_error", 502, True), 10, ["done"]),
        ([OrderItem("A", 3)], {}, PAY_TIMEOUT, FAILED, ("charge", "payments_timeout", 504, True), 10, ["done"]),
        # the compensation itself fails: reported, the stock stays held (the reservation will expire)
        (
            [OrderItem("A", 3)],
            {"release": INV_DOWN},
            PAY_ERROR,
            FAILED,
            ("charge", "payments_error", 502, False),
            7,
            ["failed"],
        ),
        # commit fails after the charge: failed at commit, no compensation
        (
            [OrderItem("A", 1)],
            {"commit": INV_DOWN},
            None,
            FAILED,
            ("commit", "inventory_unavailable", 502, False),
            9,
            [],
        ),
    ],
)
def test_saga(
    tmp_path: Path,
    items: list[OrderItem],
    stock_fail: dict[str, StepError],
    payment: StepError | None,
    status: str,
    failure: tuple[str, str, int, bool | None] | None,
    stock_a: int,
    compensations: list[str],
) -> None:
    orders = OrderRepository(Database(open_database(tmp_path / "o.sqlite", SCHEMA)))
    stock, payments, metrics = MemoryStock(fail=stock_fail), MemoryPayments(payment), RecordingMetrics()
    outcome = asyncio.run(OrderSaga(orders, stock, payments, metrics).place("alice", items))

    assert outcome.order.status == status
    assert orders.get(outcome.order.id) == outcome.order
    assert stock.stock["A"] == stock_a
    assert metrics.compensations == compensations
    assert metrics.finished_orders == [status]
    if failure is None:
        assert outcome.failure is None
        assert payments.charges == [(outcome.order.id, 1000, "alice")]
        assert f"res-{outcome.order.id}" in stock.committed
        assert outcome.order.charge_id == f"ch-{outcome.order.id}"
        return
    f = outcome.failure
    assert f is not None
    assert (f.step, f.error, f.status, f.compensated) == failure
    assert (outcome.order.failed_step, outcome.order.error) == failure[:2]
    if failure[0] == "reserve":
        assert payments.charges == []  # nothing charged when nothing was reserved
    assert (failure[0], failure[1]) in metrics.steps


def test_the_history_names_each_step(tmp_path: Path) -> None:
    orders = OrderRepository(Database(open_database(tmp_path / "o.sqlite", SCHEMA)))
    saga = OrderSaga(orders, MemoryStock(), MemoryPayments(PAY_ERROR), RecordingMetrics())
    order = asyncio.run(saga.place("bob", [OrderItem("A", 1)])).order
    assert [(t.to_status, t.detail) for t in order.transitions] == [
        ("PENDING", "created"),
        ("RESERVED", f"reservation res-{order.id}"),
        ("FAILED", "charge failed: payments_error, stock released"),
    ]
