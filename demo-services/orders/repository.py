"""Orders and their state transitions in SQLite.

An order moves PENDING -> RESERVED -> CHARGED -> CONFIRMED, or to FAILED from any state before
CONFIRMED; every move is kept in `order_transitions` with its time and a detail, so an order's
history can be read back step by step.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from demo_common.sqlite import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    status TEXT NOT NULL,
    amount_cents INTEGER,
    reservation_id TEXT,
    charge_id TEXT,
    failed_step TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer, created_at);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (created_at);
CREATE TABLE IF NOT EXISTS order_items (
    order_id TEXT NOT NULL REFERENCES orders (id),
    position INTEGER NOT NULL,
    sku TEXT NOT NULL,
    qty INTEGER NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, position)
);
CREATE TABLE IF NOT EXISTS order_transitions (
    order_id TEXT NOT NULL REFERENCES orders (id),
    seq INTEGER NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, seq)
)
"""

PENDING, RESERVED, CHARGED, CONFIRMED, FAILED = "PENDING", "RESERVED", "CHARGED", "CONFIRMED", "FAILED"

# Which status may follow which; CONFIRMED and FAILED are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RESERVED, FAILED}),
    RESERVED: frozenset({CHARGED, FAILED}),
    CHARGED: frozenset({CONFIRMED, FAILED}),
    CONFIRMED: frozenset(),
    FAILED: frozenset(),
}

_UPDATABLE = ("amount_cents", "reservation_id", "charge_id", "failed_step", "error")


@dataclass(frozen=True)
class OrderItem:
    sku: str
    qty: int


@dataclass(frozen=True)
class Transition:
    from_status: str | None
    to_status: str
    at: float
    detail: str


@dataclass(frozen=True)
class Order:
    id: str
    customer: str
    status: str
    items: tuple[OrderItem, ...]
    created_at: float
    updated_at: float
    amount_cents: int | None = None
    reservation_id: str | None = None
    charge_id: str | None = None
    failed_step: str | None = None
    error: str | None = None
    transitions: tuple[Transition, ...] = ()


class OrderNotFound(Exception):
    pass


class InvalidOrderTransition(Exception):
    def __init__(self, order_id: str, current: str, target: str) -> None:
        super().__init__(f"order {order_id} cannot go from {current} to {target}")
        self.current = current
        self.target = target


@dataclass
class OrderRepository:
    db: Database
    clock: Callable[[], float] = time.time
    _new_id: Callable[[], str] = field(default=lambda: "ord-" + uuid.uuid4().hex[:16])

    def create(self, customer: str, items: Sequence[OrderItem]) -> Order:
        """A new PENDING order."""
        now, order_id = self.clock(), self._new_id()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO orders (id, customer, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (order_id, customer, PENDING, now, now),
            )
            conn.executemany(
                "INSERT INTO order_items (order_id, position, sku, qty) VALUES (?, ?, ?, ?)",
                [(order_id, i, item.sku, item.qty) for i, item in enumerate(items)],
            )
            conn.execute(
                "INSERT INTO order_transitions (order_id, seq, from_status, to_status, at, detail)"
                " VALUES (?, 0, NULL, ?, ?, 'created')",
                (order_id, PENDING, now),
            )
            return self._load(conn, order_id)

    def transition(self, order_id: str, target: str, detail: str = "", **updates: str | int | None) -> Order:
        """Moves the order to `target`, setting the given columns; InvalidOrderTransition when not allowed."""
        unknown = set(updates) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"not an updatable order field: {sorted(unknown)}")
        now = self.clock()
        with self.db.write() as conn:
            current = self._load(conn, order_id)
            if target not in TRANSITIONS[current.status]:
                raise InvalidOrderTransition(order_id, current.status, target)
            assignments = "".join(f", {column} = ?" for column in updates)
            conn.execute(
                f"UPDATE orders SET status = ?, updated_at = ?{assignments} WHERE id = ?",
                (target, now, *updates.values(), order_id),
            )
            conn.execute(
                "INSERT INTO order_transitions (order_id, seq, from_status, to_status, at, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (order_id, len(current.transitions), current.status, target, now, detail),
            )
            return self._load(conn, order_id)

    def get(self, order_id: str) -> Order:
        with self.db.read() as conn:
            return self._load(conn, order_id)

    def list(self, customer: str | None = None, limit: int = 20) -> list[Order]:
        """The newest orders first, of one customer or of all."""
        where, params = ("WHERE customer = ?", [customer]) if customer else ("", [])
        with self.db.read() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    f"SELECT id FROM orders {where} ORDER BY created_at DESC, id DESC LIMIT ?", [*params, limit]
                )
            ]
            return [self._load(conn, order_id) for order_id in ids]

    @staticmethod
    def _load(conn: sqlite3.Connection, order_id: str) -> Order:
        row = conn.execute(
            "SELECT id, customer, status, created_at, updated_at, amount_cents, reservation_id, charge_id,"
            " failed_step, error FROM orders WHERE id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            raise OrderNotFound(order_id)
        items = tuple(
            OrderItem(sku, qty)
            for sku, qty in conn.execute(
                "SELECT sku, qty FROM order_items WHERE order_id = ? ORDER BY position", (order_id,)
            )
        )
        transitions = tuple(
            Transition(*t)
            for t in conn.execute(
                "SELECT from_status, to_status, at, detail FROM order_transitions WHERE order_id = ? ORDER BY seq",
                (order_id,),
            )
        )
        return Order(
            id=row[0],
            customer=row[1],
            status=row[2],
            items=items,
            created_at=row[3],
            updated_at=row[4],
            amount_cents=row[5],
            reservation_id=row[6],
            charge_id=row[7],
            failed_step=row[8],
            error=row[9],
            transitions=transitions,
        )
