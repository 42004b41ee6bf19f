"""What a simulated shopper does through the gateway: browse products, place an order, look an order up."""

from __future__ import annotations

import contextlib
import random
from collections import deque
from typing import Any

import httpx

# Used until the catalogue has been read through the gateway (the inventory's seed catalogue).
FALLBACK_SKUS = ("KB-001", "MS-002", "HS-004", "CB-007", "SS-008", "MP-014", "PB-017", "HB-018")
CUSTOMERS = ("alice", "bob", "carol", "dave", "vip-erin", "vip-frank")
DECLINED_CUSTOMER = "declined-mallory"  # payments declines every charge of a customer named declined-*
DECLINED_SHARE = 0.05


class Shop:
    """One scenario = one HTTP request; the order ids placed are remembered for lookups."""

    def __init__(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        self._http = http
        self._rng = rng
        self.skus: list[str] = list(FALLBACK_SKUS)
        self._placed: deque[str] = deque(maxlen=200)

    async def load_catalogue(self) -> None:
        """Read the skus through the gateway; keeps the fallback list if that fails."""
        try:
            response = await self._http.get("/api/products")
            products = response.json().get("products", []) if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return
        skus = [str(p["sku"]) for p in products if isinstance(p, dict) and "sku" in p]
        if skus:
            self.skus = skus

    async def run(self, scenario: str) -> httpx.Response:
        if scenario == "browse":
            return await self.browse()
        if scenario == "order":
            return await self.order()
        return await self.lookup()

    async def browse(self) -> httpx.Response:
        if self._rng.random() < 0.5:
            return await self._http.get("/api/products")
        return await self._http.get(f"/api/products/{self._rng.choice(self.skus)}")

    async def order(self) -> httpx.Response:
        customer = DECLINED_CUSTOMER if self._rng.random() < DECLINED_SHARE else self._rng.choice(CUSTOMERS)
        skus = self._rng.sample(self.skus, k=min(len(self.skus), self._rng.choice((1, 1, 2, 3))))
        body: dict[str, Any] = {
            "customer": customer,
            "items": [{"sku": s, "qty": self._rng.randint(1, 3)} for s in skus],
        }
        response = await self._http.post("/api/orders", json=body)
        if response.status_code == 201:
            with contextlib.suppress(ValueError, KeyError, TypeError):  # an odd body only loses a lookup target
                self._placed.append(str(response.json()["order_id"]))
        return response

    async def lookup(self) -> httpx.Response:
        if self._placed:
            return await self._http.get(f"/api/orders/{self._rng.choice(self._placed)}")
        return await self._http.get("/api/orders", params={"limit": 5})
