"""The payments ledger in SQLite and the rule that declines a charge.

A charge is keyed by its order id: charging the same order again returns the first charge (approved
or declined) instead of taking the money twice, so callers may retry after a dropped connection.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from demo_common.sqlite import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    customer TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    status TEXT NOT NULL,
    reason TEXT,
    created_at REAL NOT NULL
)
"""

APPROVED, DECLINED = "APPROVED", "DECLINED"


@dataclass(frozen=True)
class DeclineRule:
    """Declines a charge above `limit_cents`, or for a customer whose name starts with `customer_prefix`."""

    limit_cents: int = 200_000
    customer_prefix: str = "declined-"

    def reason(self, customer: str, amount_cents: int) -> str | None:
        """Why the charge is declined, or None when it is approved."""
        if self.customer_prefix and customer.startswith(self.customer_prefix):
            return "card_declined"
        if amount_cents > self.limit_cents:
            return "over_limit"
        return None


@dataclass(frozen=True)
class Charge:
    id: str
    order_id: str
    customer: str
    amount_cents: int
    status: str
    reason: str | None
    created_at: float


class ChargeNotFound(Exception):
    pass


@dataclass
class Ledger:
    db: Database
    rule: DeclineRule = DeclineRule()
    clock: Callable[[], float] = time.time
    _new_id: Callable[[], str] = field(default=lambda: "ch-" + uuid.uuid4().hex[:16])

    def charge(self, order_id: str, customer: str, amount_cents: int) -> tuple[Charge, bool]:
        """The charge for `order_id`, decided and recorded now or found from before; (charge, created)."""
        with self.db.write() as conn:
            existing = self._find(conn, "order_id", order_id)
            if existing is not None:
                return existing, False
            reason = self.rule.reason(customer, amount_cents)
            charge = Charge(
                id=self._new_id(),
                order_id=order_id,
                customer=customer,
                amount_cents=amount_cents,
                status=DECLINED if reason else APPROVED,
                reason=reason,
                created_at=self.clock(),
            )
            conn.execute(
                "INSERT INTO charges (id, order_id, customer, amount_cents, status, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (charge.id, order_id, customer, amount_cents, charge.status, reason, charge.created_at),
            )
            return charge, True

    def get(self, charge_id: str) -> Charge:
        with self.db.read() as conn:
            charge = self._find(conn, "id", charge_id)
        if charge is None:
            raise ChargeNotFound(charge_id)
        return charge

    def find_by_order(self, order_id: str) -> Charge | None:
        with self.db.read() as conn:
            return self._find(conn, "order_id", order_id)

    @staticmethod
    def _find(conn: sqlite3.Connection, column: str, value: str) -> Charge | None:
        row = conn.execute(
            f"SELECT id, order_id, customer, amount_cents, status, reason, created_at FROM charges WHERE {column} = ?",
            (value,),
        ).fetchone()
        return Charge(*row) if row else None
