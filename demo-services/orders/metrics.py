"""Orders' business metrics: Prometheus counters and histograms in the agent's registry, and pushed points."""

from __future__ import annotations

from demo_common.points import PointWriter
from prometheus_client import CollectorRegistry, Counter, Histogram

from orders.repository import Order


def customer_tier(customer: str) -> str:
    """`vip` for customers named `vip-*`, else `standard`: a tag with two values, never the customer itself."""
    return "vip" if customer.startswith("vip-") else "standard"


class OrderMetrics:
    """`orders_total{status}`, `orders_amount_total{status}`, saga step durations and compensations;
    `orders_placed` points (count=1i, amount; tags status, tier, failed_step) pushed per finished order."""

    def __init__(self, registry: CollectorRegistry, push: PointWriter) -> None:
        self._push = push
        self.orders = Counter("orders", "Orders finished, by final status", ["status"], registry=registry)
        self.amount = Counter("orders_amount", "Order value, by final status", ["status"], registry=registry)
        self.steps = Histogram(
            "orders_saga_step_duration_seconds",
            "Time of each saga step, by step and outcome (ok or the error kind)",
            ["step", "outcome"],
            registry=registry,
        )
        self.compensations = Counter(
            "orders_saga_compensations",
            "Reservations released after a failed charge, by result",
            ["result"],
            registry=registry,
        )

    def step(self, step: str, outcome: str, seconds: float) -> None:
        self.steps.labels(step, outcome).observe(seconds)

    def finished(self, order: Order) -> None:
        status = order.status.lower()
        amount = (order.amount_cents or 0) / 100
        self.orders.labels(status).inc()
        self.amount.labels(status).inc(amount)
        tags = {"status": status, "tier": customer_tier(order.customer), "failed_step": order.failed_step or "none"}
        self._push.write("orders_placed", {"count": 1, "amount": amount}, tags)

    def compensation(self, result: str) -> None:
        self.compensations.labels(result).inc()
