"""Payments: the decline rule, and the ledger keyed by order id."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_common.sqlite import Database, open_database
from payments.ledger import APPROVED, DECLINED, SCHEMA, ChargeNotFound, DeclineRule, Ledger


@pytest.mark.parametrize(
    ("customer", "amount_cents", "reason"),
    [
        ("alice", 100, None),
        ("alice", 200_000, None),  # the limit itself is allowed
        ("alice", 200_001, "over_limit"),
        ("declined-bob", 1, "card_declined"),
        ("bob-declined-", 1, None),  # the prefix, not a substring
    ],
)
def test_decline_rule(customer: str, amount_cents: int, reason: str | None) -> None:
    assert DeclineRule(limit_cents=200_000).reason(customer, amount_cents) == reason


def test_a_charge_is_recorded_once_per_order(tmp_path: Path) -> None:
    ledger = Ledger(Database(open_database(tmp_path / "p.sqlite", SCHEMA)))
    charge, created = ledger.charge("o1", "alice", 1234)
    assert created and charge.status == APPROVED and charge.reason is None
    again, created_again = ledger.charge("o1", "alice", 1234)
    assert not created_again and again == charge
    assert ledger.get(charge.id) == charge
    assert ledger.find_by_order("o1") == charge
    assert ledger.find_by_order("o2") is None
    with pytest.raises(ChargeNotFound):
        ledger.get("ch-nope")


def test_a_declined_charge_is_recorded_with_its_reason(tmp_path: Path) -> None:
    ledger = Ledger(Database(open_database(tmp_path / "p.sqlite", SCHEMA)), rule=DeclineRule(limit_cents=1000))
    charge, _ = ledger.charge("o1", "alice", 1001)
    assert (charge.status, charge.reason) == (DECLINED, "over_limit")
    assert ledger.charge("o1", "alice", 10)[0].status == DECLINED  # the first decision stands
