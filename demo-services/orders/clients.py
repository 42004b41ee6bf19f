"""The saga's ports over HTTP: inventory reservations and payments charges, answers mapped to saga errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from demo_common.dependency import DependencyError, ServiceClient

from orders.repository import OrderItem
from orders.saga import DependencyFailed, OutOfStock, PaymentDeclined, Reservation, UnknownItems


async def _call(client: ServiceClient, method: str, path: str, body: Any = None) -> httpx.Response:
    try:
        return await client.request(method, path, json=body)
    except DependencyError as exc:
        raise DependencyFailed(client.service, exc.kind, str(exc)) from exc


def _unexpected(client: ServiceClient, response: httpx.Response) -> DependencyFailed:
    return DependencyFailed(
        client.service, "error", f"{client.service} answered {response.status_code}", status=response.status_code
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class HttpStock:
    """`Stock` over the inventory API."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def reserve(self, order_id: str, items: Sequence[OrderItem]) -> Reservation:
        body = {"order_id": order_id, "items": [{"sku": i.sku, "qty": i.qty} for i in items]}
        response = await _call(self.client, "POST", "/reservations", body)
        answer = _json(response)
        if response.status_code in (200, 201):
            return Reservation(id=str(answer["reservation_id"]), amount_cents=round(float(answer["amount"]) * 100))
        if response.status_code == 409 and answer.get("error") == "out_of_stock":
            shortages = answer.get("shortages", [])
            skus = ", ".join(str(s.get("sku")) for s in shortages)
            raise OutOfStock(f"out of stock: {skus}", shortages=shortages)
        if response.status_code == 422 and answer.get("error") == "unknown_sku":
            raise UnknownItems(f"unknown sku: {', '.join(answer.get('skus', []))}", skus=answer.get("skus", []))
        raise _unexpected(self.client, response)

    async def commit(self, reservation_id: str) -> None:
        await self._transition(reservation_id, "commit")

    async def release(self, reservation_id: str) -> None:
        await self._transition(reservation_id, "release")

    async def _transition(self, reservation_id: str, action: str) -> None:
        response = await _call(self.client, "POST", f"/reservations/{reservation_id}/{action}")
        if response.status_code != 200:
            raise _unexpected(self.client, response)


class HttpPayments:
    """`Payments` over the payments API."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def charge(self, order_id: str, amount_cents: int, customer: str) -> str:
        body = {"order_id": order_id, "amount": amount_cents / 100, "customer": customer}
        response = await _call(self.client, "POST", "/charges", body)
        answer = _json(response)
        if response.status_code in (200, 201):
            return str(answer["charge_id"])
        if response.status_code == 402:
            reason = str(answer.get("reason") or "declined")
            raise PaymentDeclined(f"payment declined: {reason}", reason=reason, charge_id=answer.get("charge_id"))
        raise _unexpected(self.client, response)
