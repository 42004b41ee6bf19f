"""The order saga: reserve stock, charge, commit; on a failed charge, release the stock (the compensation).

The saga sees its dependencies through two small ports (`Stock`, `Payments`) whose errors are the
`StepError` family below, so it runs the same against HTTP adapters and against in-memory doubles.
Every step is a span (`saga reserve`, `saga charge`, `saga commit`, `saga release`) marked as an error
when it fails, so a trace shows where an order went wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from loguru import logger
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from orders.repository import CHARGED, CONFIRMED, FAILED, RESERVED, Order, OrderItem, OrderRepository

RESERVE, CHARGE, COMMIT, RELEASE = "reserve", "charge", "commit", "release"


@dataclass(frozen=True)
class Reservation:
    id: str
    amount_cents: int


class StepError(Exception):
    """A step did not succeed. `error` is the machine-readable kind; `details` go into the answer."""

    error = "step_failed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class OutOfStock(StepError):
    error = "out_of_stock"


class UnknownItems(StepError):
    error = "unknown_sku"


class PaymentDeclined(StepError):
    error = "payment_declined"


class DependencyFailed(StepError):
    """The dependency answered with an error, did not answer in time (`timeout`), or could not be reached."""

    def __init__(self, service: str, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message, service=service, dependency_status=status)
        self.service = service
        self.kind = kind  # "error", "timeout" or "unavailable"
        self.status = status
        self.error = f"{service}_{kind}"  # e.g. payments_error, inventory_timeout


class Stock(Protocol):
    async def reserve(self, order_id: str, items: Sequence[OrderItem]) -> Reservation: ...
    async def commit(self, reservation_id: str) -> None: ...
    async def release(self, reservation_id: str) -> None: ...


class Payments(Protocol):
    async def charge(self, order_id: str, amount_cents: int, customer: str) -> str:
        """The charge id; PaymentDeclined or DependencyFailed otherwise."""
        ...


class SagaMetrics(Protocol):
    def step(self, step: str, outcome: str, seconds: float) -> None: ...
    def finished(self, order: Order) -> None: ...
    def compensation(self, result: str) -> None: ...


@dataclass(frozen=True)
class SagaFailure:
    """Why an order failed: the step, the error kind, the HTTP status to answer, and details."""

    step: str
    error: str
    status: int
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    compensated: bool | None = None  # None: nothing to compensate


@dataclass(frozen=True)
class SagaOutcome:
    order: Order
    failure: SagaFailure | None = None


def failure_status(step: str, exc: StepError) -> int:
    """The status orders answers with when `step` failed with `exc`."""
    if isinstance(exc, OutOfStock):
        return 409
    if isinstance(exc, UnknownItems):
        return 422
    if isinstance(exc, PaymentDeclined):
        return 402
    if isinstance(exc, DependencyFailed):
        return 504 if exc.kind == "timeout" else 502
    return 500


class OrderSaga:
    def __init__(self, orders: OrderRepository, stock: Stock, payments: Payments, metrics: SagaMetrics) -> None:
        self.orders = orders
        self.stock = stock
        self.payments = payments
        self.metrics = metrics
        self._tracer = trace.get_tracer("orders.saga")

    async def place(self, customer: str, items: Sequence[OrderItem]) -> SagaOutcome:
        order = await asyncio.to_thread(self.orders.create, customer, items)
        span = trace.get_current_span()
        span.set_attribute("order.id", order.id)
        log = logger.bind(order_id=order.id, customer=customer)
        log.bind(items=len(items)).info("order received")

        try:
            reservation = await self._step(RESERVE, self.stock.reserve(order.id, items), order.id)
        except StepError as exc:
            return await self._fail(order, RESERVE, exc, compensated=None)
        order = await self._move(
            order,
            RESERVED,
            f"reservation {reservation.id}",
            reservation_id=reservation.id,
            amount_cents=reservation.amount_cents,
        )

        try:
            charge_id = await self._step(
                CHARGE, self.payments.charge(order.id, reservation.amount_cents, customer), order.id
            )
        except StepError as exc:
            compensated = await self._release(order, reservation)
            return await self._fail(order, CHARGE, exc, compensated=compensated)
        order = await self._move(order, CHARGED, f"charge {charge_id}", charge_id=charge_id)

        try:
            await self._step(COMMIT, self.stock.commit(reservation.id), order.id)
        except StepError as exc:
            # The money is taken and the stock still held: nothing to compensate safely here. The
            # reservation expires if nobody commits it; the ERROR log is the cue for a human.
            log.bind(reservation_id=reservation.id, charge_id=charge_id).error(
                "commit failed after the payment: order needs attention"
            )
            return await self._fail(order, COMMIT, exc, compensated=False)
        order = await self._move(order, CONFIRMED, "reservation committed")
        span.set_attribute("order.status", CONFIRMED)
        log.bind(amount_cents=order.amount_cents, reservation_id=reservation.id, charge_id=charge_id).info(
            "order confirmed"
        )
        self.metrics.finished(order)
        return SagaOutcome(order)

    async def _step(self, step: str, call: Any, order_id: str) -> Any:
        started = time.perf_counter()
        with self._tracer.start_as_current_span(f"saga {step}", record_exception=False) as span:
            span.set_attribute("saga.step", step)
            span.set_attribute("order.id", order_id)
            try:
                result = await call
            except StepError as exc:
                span.set_status(Status(StatusCode.ERROR, f"{exc.error}: {exc}"))
                span.set_attribute("error.type", exc.error)
                self.metrics.step(step, exc.error, time.perf_counter() - started)
                raise
            self.metrics.step(step, "ok", time.perf_counter() - started)
            return result

    async def _release(self, order: Order, reservation: Reservation) -> bool:
        """The compensation: give the stock back. False when it could not (the reservation then expires)."""
        log = logger.bind(order_id=order.id, reservation_id=reservation.id)
        try:
            await self._step(RELEASE, self.stock.release(reservation.id), order.id)
        except StepError as exc:
            log.bind(error=exc.error).error("compensation failed: stock stays held until the reservation expires")
            self.metrics.compensation("failed")
            return False
        log.info("compensation done: reservation released")
        self.metrics.compensation("done")
        return True

    async def _fail(self, order: Order, step: str, exc: StepError, compensated: bool | None) -> SagaOutcome:
        status = failure_status(step, exc)
        detail = f"{step} failed: {exc.error}"
        if compensated is not None:
            detail += ", stock released" if compensated else ", stock not released"
        order = await self._move(order, FAILED, detail, failed_step=step, error=exc.error)
        span = trace.get_current_span()
        span.set_attribute("order.status", FAILED)
        span.set_attribute("order.failed_step", step)
        span.set_attribute("error.type", exc.error)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"{step} failed: {exc}"))
        log = logger.bind(order_id=order.id, step=step, error=exc.error, status=status)
        (log.error if status >= 500 else log.warning)("order failed at {}: {}", step, exc)
        self.metrics.finished(order)
        return SagaOutcome(order, SagaFailure(step, exc.error, status, str(exc), dict(exc.details), compensated))

    async def _move(self, order: Order, target: str, detail: str, **updates: str | int | None) -> Order:
        return await asyncio.to_thread(self.orders.transition, order.id, target, detail, **updates)
