"""Prometheus' slotted group evaluation: the offset, the slot at or before a time, and missed iterations.

The offset's agreement with a real Prometheus is checked in tests/integration/test_alerting_prometheus_peer.py.
"""

from __future__ import annotations

import pytest
import xxhash

from alerting.schedule import eval_timestamp, eval_timestamp_ns, group_hash, next_slot, offset_ns

S = 1_000_000_000  # nanoseconds per second


def test_group_hash_is_xxhash64_of_sorted_label_pairs() -> None:
    assert group_hash("g", "/r.yml") == xxhash.xxh64_intdigest(b"file\xff/r.yml\xffname\xffg\xff")
    assert group_hash("a", "b") != group_hash("b", "a")


@pytest.mark.parametrize("interval_s", [1.0, 15.0, 60.0, 0.25])
def test_offset_is_inside_the_interval(interval_s: float) -> None:
    off = offset_ns("group", "/etc/rules.yml", interval_s)
    assert 0 <= off < interval_s * S
    assert off == group_hash("group", "/etc/rules.yml") % round(interval_s * S)


@pytest.mark.parametrize(
    ("start", "interval", "offset", "slot"),
    [
        (100 * S, 10 * S, 3 * S, 93 * S),
        (103 * S, 10 * S, 3 * S, 103 * S),  # exactly on a slot: that slot
        (112 * S + 1, 10 * S, 3 * S, 103 * S),
        (113 * S - 1, 10 * S, 3 * S, 103 * S),
        (0, 10 * S, 0, 0),
    ],
)
def test_eval_timestamp_ns(start: int, interval: int, offset: int, slot: int) -> None:
    assert eval_timestamp_ns(start, interval, offset) == slot


def test_eval_timestamp_seconds() -> None:
    assert eval_timestamp(100.0, 10.0, 3.5) == 93.5


@pytest.mark.parametrize(
    ("previous", "now", "next_ts", "missed"),
    [
        (0, 10 * S + 5, 10 * S, 0),  # on time
        (0, 19 * S, 10 * S, 0),  # late, but within the next interval: nothing missed
        (0, 25 * S, 20 * S, 1),  # a round took 2.5 intervals: one slot skipped and counted
        (0, 41 * S, 40 * S, 3),
    ],
)
def test_next_slot_skips_and_counts_missed(previous: int, now: int, next_ts: int, missed: int) -> None:
    assert next_slot(previous, now, 10 * S) == (next_ts, missed)
