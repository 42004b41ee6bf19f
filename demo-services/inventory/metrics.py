"""Inventory's business metrics: reservation counters, stock read from the database at scrape time, pushed stock."""

from __future__ import annotations

from collections.abc import Iterator

from demo_common.points import PointWriter
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from inventory.repository import InventoryRepository


class StockCollector(Collector):
    """`inventory_stock_level{sku}` read from the shared database at scrape time.

    Read at scrape time, not kept in a gauge, because another instance may have changed the stock.
    """

    def __init__(self, repository: InventoryRepository) -> None:
        self._repository = repository

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("inventory_stock_level", "Units left to sell, per sku", labels=["sku"])
        for product in self._repository.products():
            family.add_metric([product.sku], product.stock)
        yield family


class InventoryMetrics:
    """Counters in the agent's registry, and `inventory_stock` points pushed after each stock change."""

    def __init__(self, registry: CollectorRegistry, push: PointWriter, stock_reader: InventoryRepository) -> None:
        self._push = push
        self.reservations = Counter(
            "inventory_reservations",
            "Reservation requests by result (created, existing, out_of_stock, unknown_sku)",
            ["result"],
            registry=registry,
        )
        self.transitions = Counter(
            "inventory_reservation_transitions",
            "Reservation state changes by action (commit, release, expire) and result",
            ["action", "result"],
            registry=registry,
        )
        registry.register(StockCollector(stock_reader))

    def stock_changed(self, stock: dict[str, int]) -> None:
        # One point per sku touched: the catalogue is ~20 skus, so the `sku` tag stays low-cardinality.
        for sku, available in stock.items():
            self._push.write("inventory_stock", {"available": available}, {"sku": sku})
