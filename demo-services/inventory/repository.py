"""Products and stock reservations in SQLite, correct across instances sharing the file.

Reserving takes the stock away at once (`stock` is what is left to sell); committing keeps it taken;
releasing or expiry gives it back. Every change runs in one BEGIN IMMEDIATE transaction, so two
instances reserving the last unit at the same time cannot both succeed. A reservation is keyed by its
order id: reserving again for the same order returns the first reservation instead of taking more.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from demo_common.sqlite import Database

from inventory.catalogue import CATALOGUE, CatalogueEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    stock INTEGER NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_held ON reservations (status, expires_at);
CREATE TABLE IF NOT EXISTS reservation_items (
    reservation_id TEXT NOT NULL REFERENCES reservations (id),
    sku TEXT NOT NULL REFERENCES products (sku),
    qty INTEGER NOT NULL CHECK (qty > 0),
    unit_price_cents INTEGER NOT NULL,
    PRIMARY KEY (reservation_id, sku)
)
"""

HELD, COMMITTED, RELEASED, EXPIRED = "HELD", "COMMITTED", "RELEASED", "EXPIRED"


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_cents: int
    stock: int


@dataclass(frozen=True)
class Line:
    sku: str
    qty: int
    unit_price_cents: int = 0


@dataclass(frozen=True)
class Reservation:
    id: str
    order_id: str
    status: str
    amount_cents: int
    lines: tuple[Line, ...]
    expires_at: float


@dataclass
class Shortage:
    sku: str
    requested: int
    available: int


class InventoryError(Exception):
    """Base of the errors the handlers map to statuses."""


class UnknownSku(InventoryError):
    def __init__(self, skus: Sequence[str]) -> None:
        super().__init__("unknown sku: " + ", ".join(skus))
        self.skus = list(skus)


class OutOfStock(InventoryError):
    def __init__(self, shortages: Sequence[Shortage]) -> None:
        super().__init__("out of stock: " + ", ".join(f"{s.sku} ({s.available} < {s.requested})" for s in shortages))
        self.shortages = list(shortages)


class ReservationNotFound(InventoryError):
    pass


class InvalidTransition(InventoryError):
    """Committing a released or expired reservation, or releasing a committed one."""

    def __init__(self, reservation: Reservation, action: str) -> None:
        super().__init__(f"cannot {action} reservation {reservation.id}: it is {reservation.status}")
        self.reservation = reservation


@dataclass
class InventoryRepository:
    db: Database
    ttl_s: float = 300.0
    clock: Callable[[], float] = time.time
    _new_id: Callable[[], str] = field(default=lambda: "res-" + uuid.uuid4().hex[:16])

    def seed(self, catalogue: Iterable[CatalogueEntry] = CATALOGUE) -> int:
        """Adds the catalogue's products that are not there yet (stock already there is kept); returns how many."""
        with self.db.write() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO products (sku, name, price_cents, stock) VALUES (?, ?, ?, ?)",
                [tuple(entry) for entry in catalogue],
            )
            return conn.total_changes - before

    def products(self) -> list[Product]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT sku, name, price_cents, stock FROM products ORDER BY sku").fetchall()
        return [Product(*row) for row in rows]

    def product(self, sku: str) -> Product | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT sku, name, price_cents, stock FROM products WHERE sku = ?", (sku,)).fetchone()
        return Product(*row) if row else None

    def stock(self, skus: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(skus))
        with self.db.read() as conn:
            rows = conn.execute(
                f"SELECT sku, stock FROM products WHERE sku IN ({','.join('?' * len(wanted))})", wanted
            ).fetchall()
        return {sku: stock for sku, stock in rows}

    def reserve(self, order_id: str, items: Sequence[Line]) -> tuple[Reservation, bool]:
        """Takes the items' stock for `order_id`; (reservation, created). All or nothing.

        Expired reservations are not swept here: call `expire()` first to give their stock back.
        """
        wanted: dict[str, int] = {}
        for item in items:  # the same sku twice in one order is one line
            wanted[item.sku] = wanted.get(item.sku, 0) + item.qty
        now = self.clock()
        with self.db.write() as conn:
            existing = self._find(conn, "order_id", order_id)
            if existing is not None:
                return existing, False
            marks = ",".join("?" * len(wanted))
            rows = conn.execute(
                f"SELECT sku, price_cents, stock FROM products WHERE sku IN ({marks})", list(wanted)
            ).fetchall()
            found = {sku: (price, stock) for sku, price, stock in rows}
            unknown = [sku for sku in wanted if sku not in found]
            if unknown:
                raise UnknownSku(unknown)
            shortages = [Shortage(sku, qty, found[sku][1]) for sku, qty in wanted.items() if found[sku][1] < qty]
            if shortages:
                raise OutOfStock(shortages)
            lines = tuple(Line(sku, qty, found[sku][0]) for sku, qty in sorted(wanted.items()))
            reservation = Reservation(
                id=self._new_id(),
                order_id=order_id,
                status=HELD,
                amount_cents=sum(line.qty * line.unit_price_cents for line in lines),
                lines=lines,
                expires_at=now + self.ttl_s,
            )
            conn.execute(
                "INSERT INTO reservations (id, order_id, status, amount_cents, created_at, expires_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (reservation.id, order_id, HELD, reservation.amount_cents, now, reservation.expires_at, now),
            )
            conn.executemany(
                "INSERT INTO reservation_items (reservation_id, sku, qty, unit_price_cents) VALUES (?, ?, ?, ?)",
                [(reservation.id, line.sku, line.qty, line.unit_price_cents) for line in lines],
            )
            conn.executemany(
                "UPDATE products SET stock = stock - ? WHERE sku = ?", [(line.qty, line.sku) for line in lines]
            )
            return reservation, True

    def get(self, reservation_id: str) -> Reservation:
        with self.db.read() as conn:
            reservation = self._find(conn, "id", reservation_id)
        if reservation is None:
            raise ReservationNotFound(reservation_id)
        return reservation

    def commit(self, reservation_id: str) -> Reservation:
        """HELD -> COMMITTED; committing again is a no-op."""
        return self._transition(reservation_id, COMMITTED, allowed_from={HELD}, done={COMMITTED}, restock=False)

    def release(self, reservation_id: str) -> Reservation:
        """HELD -> RELEASED with the stock given back; releasing a released or expired one is a no-op."""
        return self._transition(reservation_id, RELEASED, allowed_from={HELD}, done={RELEASED, EXPIRED}, restock=True)

    def expire(self) -> list[Reservation]:
        """Releases the HELD reservations past their expiry; returns them."""
        with self.db.write() as conn:
            return self._expire(conn, self.clock())

    def _transition(
        self, reservation_id: str, target: str, allowed_from: set[str], done: set[str], restock: bool
    ) -> Reservation:
        action = "commit" if target == COMMITTED else "release"
        now = self.clock()
        with self.db.write() as conn:
            self._expire(conn, now)
            reservation = self._find(conn, "id", reservation_id)
            if reservation is None:
                raise ReservationNotFound(reservation_id)
            if reservation.status in done:
                return reservation
            if reservation.status not in allowed_from:
                raise InvalidTransition(reservation, action)
            self._set_status(conn, reservation, target, now, restock)
            return _with_status(reservation, target)

    def _expire(self, conn: sqlite3.Connection, now: float) -> list[Reservation]:
        ids = [
            row[0]
            for row in conn.execute("SELECT id FROM reservations WHERE status = ? AND expires_at < ?", (HELD, now))
        ]
        expired = []
        for reservation_id in ids:
            reservation = self._find(conn, "id", reservation_id)
            assert reservation is not None  # same transaction
            self._set_status(conn, reservation, EXPIRED, now, restock=True)
            expired.append(_with_status(reservation, EXPIRED))
        return expired

    @staticmethod
    def _set_status(conn: sqlite3.Connection, reservation: Reservation, status: str, now: float, restock: bool) -> None:
        conn.execute("UPDATE reservations SET status = ?, updated_at = ? WHERE id = ?", (status, now, reservation.id))
        if restock:
            conn.executemany(
                "UPDATE products SET stock = stock + ? WHERE sku = ?",
                [(line.qty, line.sku) for line in reservation.lines],
            )

    @staticmethod
    def _find(conn: sqlite3.Connection, column: str, value: str) -> Reservation | None:
        row = conn.execute(
            f"SELECT id, order_id, status, amount_cents, expires_at FROM reservations WHERE {column} = ?", (value,)
        ).fetchone()
        if row is None:
            return None
        lines = tuple(
            Line(sku, qty, price)
            for sku, qty, price in conn.execute(
                "SELECT sku, qty, unit_price_cents FROM reservation_items WHERE reservation_id = ? ORDER BY sku",
                (row[0],),
            )
        )
        return Reservation(
            id=row[0], order_id=row[1], status=row[2], amount_cents=row[3], lines=lines, expires_at=row[4]
        )


def _with_status(reservation: Reservation, status: str) -> Reservation:
    return dataclasses.replace(reservation, status=status)
