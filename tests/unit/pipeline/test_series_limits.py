"""Series limits: cardinality per metric, out-of-order window, duplicates and repeats."""

from __future__ import annotations

import struct

import pytest

from collector.model import MetricBatch, series_fingerprint
from collector.pipeline.series_limits import SeriesLimits

STALE = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]


def _batch(*samples: tuple[str, str, int, float]) -> MetricBatch:
    batch = MetricBatch()
    for name, instance, ts, value in samples:
        fp = batch.add_sample({"__name__": name, "instance": instance}, ts, value)
        if value == 42.0:
            batch.add_exemplar(fp, ts, value, "ab" * 16, "cd" * 8, {})
    return batch


def test_series_limit_per_metric_keeps_existing_series() -> None:
    limits = SeriesLimits(max_series_per_metric=2, out_of_order_window_ms=0)
    first = limits.apply(_batch(("m", "a", 1, 1.0), ("m", "b", 1, 1.0), ("m", "c", 1, 1.0), ("other", "c", 1, 1.0)))
    first.commit()
    assert len(first.batch) == 3 and first.refused == 1
    assert first.messages == ["per-metric series limit of 2 exceeded for metric 'm'"]
    second = limits.apply(_batch(("m", "a", 2, 2.0), ("m", "d", 2, 1.0)))
    assert second.batch.timestamp_ms == [2] and second.by_reason == {"series_limit": 1}


def test_limit_survives_restart_through_known_series() -> None:
    known = [(series_fingerprint({"__name__": "m", "instance": i}), "m") for i in ("a", "b")]
    limits = SeriesLimits(2, 0, known)
    out = limits.apply(_batch(("m", "a", 1, 1.0), ("m", "c", 1, 1.0)))
    assert out.batch.timestamp_ms == [1] and out.refused == 1


@pytest.mark.parametrize(
    ("window", "samples", "kept", "reasons", "repeats"),
    [
        (0, [(10, 1.0), (20, 2.0), (15, 3.0)], [10, 20], {"out_of_order": 1}, 0),
        (10, [(10, 1.0), (20, 2.0), (15, 3.0), (9, 4.0)], [10, 20, 15], {"out_of_order": 1}, 0),
        (0, [(10, 1.0), (10, 1.0)], [10], {}, 1),
        (0, [(10, 1.0), (10, 2.0)], [10], {"duplicate": 1}, 0),
        (0, [(10, STALE), (10, STALE)], [10], {}, 1),
        (0, [(10, 1.0), (11, STALE), (12, 1.0)], [10, 11, 12], {}, 0),
    ],
)
def test_ordering_rules(
    window: int, samples: list[tuple[int, float]], kept: list[int], reasons: dict[str, int], repeats: int
) -> None:
    limits = SeriesLimits(100, window)
    out = limits.apply(_batch(*(("m", "a", ts, v) for ts, v in samples)))
    assert out.batch.timestamp_ms == kept
    assert out.by_reason == reasons
    assert out.repeats == repeats


def test_exemplars_follow_their_series() -> None:
    limits = SeriesLimits(1, 0)
    out = limits.apply(_batch(("m", "a", 1, 42.0), ("m", "b", 1, 42.0)))
    assert out.batch.ex_fingerprint == [series_fingerprint({"__name__": "m", "instance": "a"})]


def test_nothing_is_remembered_until_the_batch_is_stored() -> None:
    """A write that failed must be judged afresh when the client retries it."""
    limits = SeriesLimits(1, 0)
    batch = _batch(("m", "a", 10, 1.0))
    failed = limits.apply(batch)  # ... and the insert failed: no commit
    assert len(failed.batch) == 1
    retried = limits.apply(batch)
    assert len(retried.batch) == 1 and retried.repeats == 0
    retried.commit()
    again = limits.apply(batch)
    assert len(again.batch) == 0 and again.repeats == 1
    assert limits.apply(_batch(("m", "b", 10, 1.0))).by_reason == {"series_limit": 1}
