"""The inventory HTTP API: products, and reservations the orders saga takes, commits or releases."""

from __future__ import annotations

from typing import Any

from demo_common.service import ServiceOptions, ServiceRuntime, build_service
from demo_common.sqlite import Database, open_database
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from inventory.metrics import InventoryMetrics
from inventory.repository import (
    SCHEMA,
    InvalidTransition,
    InventoryRepository,
    Line,
    OutOfStock,
    Product,
    Reservation,
    ReservationNotFound,
    UnknownSku,
)
from inventory.service import InventoryService


class InventorySettings(BaseModel):
    """What `--config` may set."""

    model_config = ConfigDict(extra="forbid")

    reservation_ttl_s: float = Field(300.0, gt=0, description="a reservation never committed is released after this")


class ItemIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(gt=0, le=1000)


class ReservationIn(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    items: list[ItemIn] = Field(min_length=1, max_length=50)


def product_json(product: Product) -> dict[str, Any]:
    return {"sku": product.sku, "name": product.name, "price": product.price_cents / 100, "stock": product.stock}


def reservation_json(reservation: Reservation) -> dict[str, Any]:
    return {
        "reservation_id": reservation.id,
        "order_id": reservation.order_id,
        "status": reservation.status,
        "amount": reservation.amount_cents / 100,
        "expires_at": reservation.expires_at,
        "items": [
            {"sku": line.sku, "qty": line.qty, "unit_price": line.unit_price_cents / 100} for line in reservation.lines
        ],
    }


def _error(http_status: int, error: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": error, **details}, status_code=http_status)


def create_app(options: ServiceOptions, settings: InventorySettings) -> ServiceRuntime:
    runtime = build_service(options)
    app, agent = runtime.app, runtime.agent
    path = options.database_path
    repository = InventoryRepository(
        Database(agent.instrument_sqlite(open_database(path, SCHEMA))), ttl_s=settings.reservation_ttl_s
    )
    repository.seed()
    # Scrapes read stock through their own connection, uninstrumented: a scrape is not a trace.
    scrape_reader = InventoryRepository(Database(open_database(path, SCHEMA)))
    service = InventoryService(repository, InventoryMetrics(agent.registry, agent.push, scrape_reader))
    _routes(app, service)
    return runtime


def _routes(app: FastAPI, service: InventoryService) -> None:
    # Plain `def` handlers: FastAPI runs them in its thread pool, so a wait on the SQLite lock held by
    # another instance does not stall the event loop.

    @app.get("/products")
    def list_products() -> dict[str, Any]:
        return {"products": [product_json(p) for p in service.repository.products()]}

    @app.get("/products/{sku}", response_model=None)
    def get_product(sku: str) -> dict[str, Any] | JSONResponse:
        product = service.repository.product(sku)
        return product_json(product) if product else _error(404, "unknown_sku", sku=sku)

    @app.post("/reservations", response_model=None)
    def reserve(body: ReservationIn) -> JSONResponse:
        try:
            reservation, created = service.reserve(body.order_id, [Line(i.sku, i.qty) for i in body.items])
        except OutOfStock as exc:
            shortages = [{"sku": s.sku, "requested": s.requested, "available": s.available} for s in exc.shortages]
            return _error(409, "out_of_stock", order_id=body.order_id, shortages=shortages)
        except UnknownSku as exc:
            return _error(422, "unknown_sku", order_id=body.order_id, skus=exc.skus)
        return JSONResponse(reservation_json(reservation), status_code=201 if created else 200)

    @app.get("/reservations/{reservation_id}", response_model=None)
    def get_reservation(reservation_id: str) -> dict[str, Any] | JSONResponse:
        try:
            return reservation_json(service.repository.get(reservation_id))
        except ReservationNotFound:
            return _error(404, "unknown_reservation", reservation_id=reservation_id)

    @app.post("/reservations/{reservation_id}/commit", response_model=None)
    def commit(reservation_id: str) -> dict[str, Any] | JSONResponse:
        return _transition(service.commit, reservation_id)

    @app.post("/reservations/{reservation_id}/release", response_model=None)
    def release(reservation_id: str) -> dict[str, Any] | JSONResponse:
        return _transition(service.release, reservation_id)


def _transition(action: Any, reservation_id: str) -> dict[str, Any] | JSONResponse:
    try:
        return reservation_json(action(reservation_id))
    except ReservationNotFound:
        return _error(404, "unknown_reservation", reservation_id=reservation_id)
    except InvalidTransition as exc:
        return _error(
            409, "invalid_transition", reservation_id=reservation_id, status=exc.reservation.status, detail=str(exc)
        )
