"""Inventory repository on a real SQLite file: reservations, their transitions, expiry, and two instances racing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from demo_common.sqlite import Database, open_database
from inventory.catalogue import CATALOGUE, CatalogueEntry
from inventory.repository import (
    COMMITTED,
    EXPIRED,
    HELD,
    RELEASED,
    SCHEMA,
    InvalidTransition,
    InventoryRepository,
    Line,
    OutOfStock,
    ReservationNotFound,
    UnknownSku,
)

SMALL = (CatalogueEntry("A", "thing a", 250, 5), CatalogueEntry("B", "thing b", 1000, 1))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def repo(path: Path, clock: Clock | None = None, ttl_s: float = 60.0) -> InventoryRepository:
    r = InventoryRepository(Database(open_database(path, SCHEMA)), ttl_s=ttl_s, clock=clock or Clock())
    r.seed(SMALL)
    return r


def test_seeding_twice_keeps_the_stock(tmp_path: Path) -> None:
    r = InventoryRepository(Database(open_database(tmp_path / "i.sqlite", SCHEMA)))
    assert r.seed() == len(CATALOGUE) >= 20
    r.reserve("o1", [Line(CATALOGUE[0].sku, 2)])
    assert r.seed() == 0
    assert r.stock([CATALOGUE[0].sku]) == {CATALOGUE[0].sku: CATALOGUE[0].stock - 2}


@pytest.mark.parametrize(
    ("items", "error", "stock_after"),
    [
        ([Line("A", 2)], None, {"A": 3, "B": 1}),
        ([Line("A", 2), Line("B", 1)], None, {"A": 3, "B": 0}),
        ([Line("A", 2), Line("A", 3)], None, {"A": 0, "B": 1}),  # one sku twice is one line
        ([Line("A", 6)], OutOfStock, {"A": 5, "B": 1}),
        ([Line("A", 1), Line("B", 2)], OutOfStock, {"A": 5, "B": 1}),  # all or nothing
        ([Line("A", 1), Line("Z", 1)], UnknownSku, {"A": 5, "B": 1}),
    ],
)
def test_reserve(tmp_path: Path, items: list[Line], error: type[Exception] | None, stock_after: dict[str, int]) -> None:
    r = repo(tmp_path / "i.sqlite")
    if error is None:
        reservation, created = r.reserve("o1", items)
        assert created and reservation.status == HELD
        assert reservation.amount_cents == sum(i.qty * {"A": 250, "B": 1000}[i.sku] for i in items)
    else:
        with pytest.raises(error):
            r.reserve("o1", items)
    assert r.stock(["A", "B"]) == stock_after


def test_out_of_stock_names_each_shortage(tmp_path: Path) -> None:
    with pytest.raises(OutOfStock) as caught:
        repo(tmp_path / "i.sqlite").reserve("o1", [Line("A", 9), Line("B", 3)])
    assert [(s.sku, s.requested, s.available) for s in caught.value.shortages] == [("A", 9, 5), ("B", 3, 1)]


def test_reserving_again_for_the_same_order_returns_the_first_reservation(tmp_path: Path) -> None:
    r = repo(tmp_path / "i.sqlite")
    first, created = r.reserve("o1", [Line("A", 2)])
    again, created_again = r.reserve("o1", [Line("A", 2)])
    assert created and not created_again and again == first
    assert r.stock(["A"]) == {"A": 3}


@pytest.mark.parametrize(
    ("steps", "final_status", "stock_a", "refused_at"),
    [
        (["commit"], COMMITTED, 3, None),
        (["release"], RELEASED, 5, None),
        (["commit", "commit"], COMMITTED, 3, None),
        (["release", "release"], RELEASED, 5, None),  # the compensation may be repeated
        (["commit", "release"], COMMITTED, 3, 1),
        (["release", "commit"], RELEASED, 5, 1),
    ],
)
def test_transitions(tmp_path: Path, steps: list[str], final_status: str, stock_a: int, refused_at: int | None) -> None:
    r = repo(tmp_path / "i.sqlite")
    reservation, _ = r.reserve("o1", [Line("A", 2)])
    for i, step in enumerate(steps):
        action = r.commit if step == "commit" else r.release
        if i == refused_at:
            with pytest.raises(InvalidTransition):
                action(reservation.id)
        else:
            assert action(reservation.id).status in (COMMITTED, RELEASED)
    assert r.get(reservation.id).status == final_status
    assert r.stock(["A"]) == {"A": stock_a}


def test_unknown_reservation(tmp_path: Path) -> None:
    with pytest.raises(ReservationNotFound):
        repo(tmp_path / "i.sqlite").commit("res-nope")


def test_an_uncommitted_reservation_expires_and_gives_the_stock_back(tmp_path: Path) -> None:
    clock = Clock()
    r = repo(tmp_path / "i.sqlite", clock, ttl_s=30)
    reservation, _ = r.reserve("o1", [Line("A", 4)])
    clock.now += 29
    assert r.expire() == []
    clock.now += 2
    assert [e.id for e in r.expire()] == [reservation.id]
    assert r.get(reservation.id).status == EXPIRED
    assert r.stock(["A"]) == {"A": 5}
    assert r.release(reservation.id).status == EXPIRED  # releasing it is a no-op
    with pytest.raises(InvalidTransition):
        r.commit(reservation.id)


def test_two_instances_never_sell_the_same_unit(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    instances = [repo(path), repo(path)]  # two connections to one file, as two processes have
    results: list[str] = []
    barrier = threading.Barrier(10)

    def buy(n: int) -> None:
        barrier.wait()
        try:
            instances[n % 2].reserve(f"o{n}", [Line("A", 1)])
            results.append("ok")
        except OutOfStock:
            results.append("out")

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["ok"] * 5 + ["out"] * 5
    assert instances[1].stock(["A"]) == {"A": 0}
