"""The payments HTTP API: `POST /charges` decides and records a charge, `GET /charges/{id}` reads one back."""

from __future__ import annotations

from typing import Any

from demo_common.points import PointWriter
from demo_common.service import ServiceOptions, ServiceRuntime, build_service
from demo_common.sqlite import Database, open_database
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from loguru import logger
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field

from payments.ledger import APPROVED, SCHEMA, Charge, ChargeNotFound, DeclineRule, Ledger


class PaymentsSettings(BaseModel):
    """What `--config` may set."""

    model_config = ConfigDict(extra="forbid")

    decline_over: float = Field(2000.0, ge=0, description="charges above this amount are declined")
    declined_customer_prefix: str = Field("declined-", description="customers named so are always declined")


class ChargeIn(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    amount: float = Field(ge=0, le=10_000_000)
    customer: str = Field(min_length=1, max_length=128)


def charge_json(charge: Charge) -> dict[str, Any]:
    return {
        "charge_id": charge.id,
        "order_id": charge.order_id,
        "customer": charge.customer,
        "amount": charge.amount_cents / 100,
        "status": charge.status,
        "reason": charge.reason,
        "created_at": charge.created_at,
    }


class PaymentMetrics:
    """`payments_charges_total{outcome}` and `payments_amount_total{outcome}`; `payments_amount` points pushed."""

    def __init__(self, registry: CollectorRegistry, push: PointWriter) -> None:
        self._push = push
        self.charges = Counter("payments_charges", "Charges decided, by outcome", ["outcome"], registry=registry)
        self.amount = Counter(
            "payments_amount", "Money charged or declined, by outcome", ["outcome"], registry=registry
        )

    def decided(self, charge: Charge) -> None:
        outcome = charge.status.lower()
        amount = charge.amount_cents / 100
        self.charges.labels(outcome).inc()
        self.amount.labels(outcome).inc(amount)
        self._push.write("payments_amount", {"amount": amount, "count": 1}, {"outcome": outcome})


class PaymentsService:
    def __init__(self, ledger: Ledger, metrics: PaymentMetrics) -> None:
        self.ledger = ledger
        self.metrics = metrics

    def charge(self, order_id: str, customer: str, amount: float) -> tuple[Charge, bool]:
        span = trace.get_current_span()
        span.set_attribute("order.id", order_id)
        charge, created = self.ledger.charge(order_id, customer, round(amount * 100))
        span.set_attribute("payment.charge_id", charge.id)
        span.set_attribute("payment.status", charge.status)
        log = logger.bind(order_id=order_id, charge_id=charge.id, amount=amount, status=charge.status)
        if not created:
            log.info("charge already decided for this order")
        elif charge.status == APPROVED:
            self.metrics.decided(charge)
            log.info("charge approved")
        else:
            self.metrics.decided(charge)
            log.bind(reason=charge.reason).warning("charge declined")
        return charge, created


def create_app(options: ServiceOptions, settings: PaymentsSettings) -> ServiceRuntime:
    runtime = build_service(options)
    agent = runtime.agent
    rule = DeclineRule(
        limit_cents=round(settings.decline_over * 100), customer_prefix=settings.declined_customer_prefix
    )
    ledger = Ledger(Database(agent.instrument_sqlite(open_database(options.database_path, SCHEMA))), rule=rule)
    _routes(runtime.app, PaymentsService(ledger, PaymentMetrics(agent.registry, agent.push)))
    return runtime


def _routes(app: FastAPI, service: PaymentsService) -> None:
    @app.post("/charges")
    def charge(body: ChargeIn) -> JSONResponse:
        result, created = service.charge(body.order_id, body.customer, body.amount)
        if result.status != APPROVED:
            return JSONResponse({"error": "payment_declined", **charge_json(result)}, status_code=402)
        return JSONResponse(charge_json(result), status_code=201 if created else 200)

    @app.get("/charges")
    def find_charges(order_id: str) -> dict[str, Any]:
        charge = service.ledger.find_by_order(order_id)
        return {"charges": [charge_json(charge)] if charge else []}

    @app.get("/charges/{charge_id}", response_model=None)
    def get_charge(charge_id: str) -> dict[str, Any] | JSONResponse:
        try:
            return charge_json(service.ledger.get(charge_id))
        except ChargeNotFound:
            return JSONResponse({"error": "unknown_charge", "charge_id": charge_id}, status_code=404)
