"""The orders HTTP API: `POST /orders` runs the saga; orders are read back by id or listed by customer."""

from __future__ import annotations

from typing import Any

import httpx
from demo_common.dependency import InstanceSource, ServiceClient
from demo_common.service import ServiceOptions, ServiceRuntime, build_service
from demo_common.sqlite import Database, open_database
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from orders.clients import HttpPayments, HttpStock
from orders.metrics import OrderMetrics
from orders.repository import SCHEMA, Order, OrderItem, OrderNotFound, OrderRepository
from orders.saga import OrderSaga, SagaOutcome


class OrdersSettings(BaseModel):
    """What `--config` may set. Seconds."""

    model_config = ConfigDict(extra="forbid")

    connect_timeout_s: float = Field(default=1.0, gt=0, le=60)
    request_timeout_s: float = Field(default=3.0, gt=0, le=300)


class ItemIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(gt=0, le=1000)


class OrderIn(BaseModel):
    customer: str = Field(min_length=1, max_length=128)
    items: list[ItemIn] = Field(min_length=1, max_length=50)


def order_json(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "customer": order.customer,
        "status": order.status,
        "amount": None if order.amount_cents is None else order.amount_cents / 100,
        "items": [{"sku": i.sku, "qty": i.qty} for i in order.items],
        "reservation_id": order.reservation_id,
        "charge_id": order.charge_id,
        "failed_step": order.failed_step,
        "error": order.error,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "transitions": [
            {"from": t.from_status, "to": t.to_status, "at": t.at, "detail": t.detail} for t in order.transitions
        ],
    }


def outcome_response(outcome: SagaOutcome) -> JSONResponse:
    """201 with the order, or the failure's status with `{"error", "step", "message", "order_id", "order", ...}`."""
    failure = outcome.failure
    if failure is None:
        return JSONResponse(order_json(outcome.order), status_code=201)
    body = {
        "error": failure.error,
        "step": failure.step,
        "message": failure.message,
        "order_id": outcome.order.id,
        "compensated": failure.compensated,
        **failure.details,
        "order": order_json(outcome.order),
    }
    return JSONResponse(body, status_code=failure.status)


def create_app(options: ServiceOptions, settings: OrdersSettings) -> ServiceRuntime:
    runtime = build_service(options)
    app, agent = runtime.app, runtime.agent
    timeout = httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s)
    http = agent.http_client(timeout=timeout)
    source: InstanceSource | None = agent.discovery

    def client(service: str) -> ServiceClient:
        return ServiceClient(service, source, http, timeout, faults=runtime.faults)

    inventory, payments = client("inventory"), client("payments")
    repository = OrderRepository(Database(agent.instrument_sqlite(open_database(options.database_path, SCHEMA))))
    saga = OrderSaga(repository, HttpStock(inventory), HttpPayments(payments), OrderMetrics(agent.registry, agent.push))

    async def warm_up() -> None:
        # Look the dependencies up once now, so the first order does not wait for discovery.
        if agent.discovery is not None:
            for service in ("inventory", "payments"):
                agent.discovery.watch(service)

    # Run by the app's own lifespan (the agent wraps it): close the connections on shutdown.
    app.router.on_startup.append(warm_up)
    app.router.on_shutdown.append(http.aclose)
    _routes(app, saga, repository)

    def readiness() -> tuple[bool, dict[str, Any]]:
        """Ready when every dependency has at least one UP instance; the counts say how many."""
        counts = {c.service: c.instance_count() for c in (inventory, payments)}
        return all(counts.values()), {"dependencies": counts}

    runtime.readiness = readiness
    return runtime


def _routes(app: FastAPI, saga: OrderSaga, repository: OrderRepository) -> None:
    @app.post("/orders", response_model=None)
    async def place_order(body: OrderIn) -> JSONResponse:
        outcome = await saga.place(body.customer, [OrderItem(i.sku, i.qty) for i in body.items])
        return outcome_response(outcome)

    @app.get("/orders/{order_id}", response_model=None)
    def get_order(order_id: str) -> dict[str, Any] | JSONResponse:
        try:
            return order_json(repository.get(order_id))
        except OrderNotFound:
            return JSONResponse({"error": "unknown_order", "order_id": order_id}, status_code=404)

    @app.get("/orders")
    def list_orders(customer: str | None = None, limit: int = Query(20, ge=1, le=200)) -> dict[str, Any]:
        return {"orders": [order_json(o) for o in repository.list(customer, limit)]}

