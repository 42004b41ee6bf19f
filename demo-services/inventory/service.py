"""Inventory operations as the handlers see them: the repository plus logging, span attributes and metrics."""

from __future__ import annotations

from collections.abc import Sequence

from loguru import logger
from opentelemetry import trace

from inventory.metrics import InventoryMetrics
from inventory.repository import InventoryRepository, Line, OutOfStock, Reservation, UnknownSku


class InventoryService:
    def __init__(self, repository: InventoryRepository, metrics: InventoryMetrics) -> None:
        self.repository = repository
        self.metrics = metrics

    def reserve(self, order_id: str, items: Sequence[Line]) -> tuple[Reservation, bool]:
        span = trace.get_current_span()
        span.set_attribute("order.id", order_id)
        log = logger.bind(order_id=order_id)
        self._expired()
        try:
            reservation, created = self.repository.reserve(order_id, items)
        except OutOfStock as exc:
            self.metrics.reservations.labels("out_of_stock").inc()
            span.set_attribute("inventory.out_of_stock", ",".join(s.sku for s in exc.shortages))
            for shortage in exc.shortages:
                log.bind(sku=shortage.sku, requested=shortage.requested, available=shortage.available).warning(
                    "out of stock"
                )
            raise
        except UnknownSku as exc:
            self.metrics.reservations.labels("unknown_sku").inc()
            log.bind(skus=exc.skus).warning("reservation names unknown skus")
            raise
        self.metrics.reservations.labels("created" if created else "existing").inc()
        span.set_attribute("reservation.id", reservation.id)
        log = log.bind(reservation_id=reservation.id, amount_cents=reservation.amount_cents)
        if created:
            log.bind(skus=[line.sku for line in reservation.lines]).info("stock reserved")
            self._stock_changed(reservation)
        else:
            log.info("reservation already exists for this order")
        return reservation, created

    def commit(self, reservation_id: str) -> Reservation:
        return self._transition("commit", reservation_id)

    def release(self, reservation_id: str) -> Reservation:
        return self._transition("release", reservation_id)

    def _transition(self, action: str, reservation_id: str) -> Reservation:
        trace.get_current_span().set_attribute("reservation.id", reservation_id)
        log = logger.bind(reservation_id=reservation_id, action=action)
        self._expired()
        before = self.repository.get(reservation_id).status
        try:
            reservation = (
                self.repository.commit(reservation_id)
                if action == "commit"
                else self.repository.release(reservation_id)
            )
        except Exception:
            self.metrics.transitions.labels(action, "refused").inc()
            raise
        changed = reservation.status != before
        self.metrics.transitions.labels(action, "done" if changed else "repeat").inc()
        log = log.bind(order_id=reservation.order_id, status=reservation.status)
        if changed:
            log.info("reservation {}", reservation.status.lower())
            if action == "release":
                self._stock_changed(reservation)
        else:
            log.debug("reservation already {}", reservation.status.lower())
        return reservation

    def _expired(self) -> None:
        for reservation in self.repository.expire():
            self.metrics.transitions.labels("expire", "done").inc()
            logger.bind(reservation_id=reservation.id, order_id=reservation.order_id).warning(
                "reservation expired uncommitted; stock given back"
            )
            self._stock_changed(reservation)

    def _stock_changed(self, reservation: Reservation) -> None:
        self.metrics.stock_changed(self.repository.stock(line.sku for line in reservation.lines))
