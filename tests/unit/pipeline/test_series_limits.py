"""Series limits: cardinality per metric, out-of-order window, duplicates and repeats.

Every case runs twice: with the samples held as lists (judged sample by sample) and as numpy columns
(judged with array operations); a property test checks that both give the same outcome throughout.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.model import MetricBatch, series_fingerprint
from collector.pipeline.series_limits import LimitOutcome, SeriesLimits, _running_max

STALE = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]
_FORM = {"columns": False}


@pytest.fixture(autouse=True, params=["lists", "columns"])
def sample_form(request: pytest.FixtureRequest) -> Iterator[None]:
    _FORM["columns"] = request.param == "columns"
    yield
    _FORM["columns"] = False


def _columnar(batch: MetricBatch) -> MetricBatch:
    out = MetricBatch.from_columns(batch.series, batch.sample_columns(), batch.metadata)
    out.ex_fingerprint, out.ex_timestamp_ms, out.ex_value = batch.ex_fingerprint, batch.ex_timestamp_ms, batch.ex_value
    out.ex_trace_id, out.ex_span_id, out.ex_labels = batch.ex_trace_id, batch.ex_span_id, batch.ex_labels
    return out


def _batch(*samples: tuple[str, str, int, float]) -> MetricBatch:
    batch = MetricBatch()
    for name, instance, ts, value in samples:
        fp = batch.add_sample({"__name__": name, "instance": instance}, ts, value)
        if value == 42.0:
            batch.add_exemplar(fp, ts, value, "ab" * 16, "cd" * 8, {})
    return _columnar(batch) if _FORM["columns"] else batch


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


def _summary(out: LimitOutcome) -> tuple[object, ...]:
    b = out.batch
    values = [struct.pack("<d", v) for v in b.value]  # bit for bit: NaNs and -0.0 included
    return (
        b.fingerprint, b.timestamp_ms, values, b.series, b.ex_fingerprint,
        out.refused, out.repeats, out.messages, out.by_reason,
    )  # fmt: skip


_values = st.sampled_from([1.0, 2.0, -0.0, 0.0, STALE, float("nan"), 42.0])
_samples = st.lists(
    st.tuples(
        st.sampled_from("mn"),
        st.sampled_from("abc"),
        st.integers(-4, 8) | st.sampled_from([-(2**63), 2**63 - 1]),
        _values,
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(st.tuples(_samples, st.booleans()), min_size=1, max_size=4),
    max_series=st.integers(1, 5),
    window=st.sampled_from([0, 1, 3, 2**62, 2**70]),
    known=st.lists(st.sampled_from("abc"), max_size=2),
    bounds=st.tuples(st.sampled_from([0, -3, 1]), st.sampled_from([0, 20, 5])),
)
def test_columns_judge_as_lists_do(
    batches: list[tuple[list[tuple[str, str, int, float]], bool]],
    max_series: int,
    window: int,
    known: list[str],
    bounds: tuple[int, int],
) -> None:
    """Same kept samples, refusals, messages and state (through commits) on both paths."""
    seed = [(series_fingerprint({"__name__": "m", "instance": i}), "m") for i in known]
    by_lists, by_columns = SeriesLimits(max_series, window, seed), SeriesLimits(max_series, window, seed)
    for samples, stored in batches:
        _FORM["columns"] = False
        lists_out = by_lists.apply(_batch(*samples), *bounds)
        _FORM["columns"] = True
        columns_out = by_columns.apply(_batch(*samples), *bounds)
        assert columns_out.batch.columnar
        assert _summary(columns_out) == _summary(lists_out)
        if stored:
            lists_out.commit()
            columns_out.commit()


@example(  # two writes outstanding, the later-stamped one stored first, then one judged after both
    base=[("m", "a", 0, 1.0)],
    steps=[
        (0, "now", None, "flush"),
        (5, "later", None, "keep"),
        (1, "later", None, "keep"),
        (3, "now", None, "flush"),
    ],
    window=0,
)
@settings(max_examples=300, deadline=None)
@given(
    base=st.lists(st.tuples(st.sampled_from("m"), st.sampled_from("abc"), st.integers(0, 4), _values), min_size=1),
    steps=st.lists(
        st.tuples(
            st.integers(-3, 6),
            st.sampled_from(["now", "later", "never"]),
            st.sampled_from([None, ("z", True), ("a", True), ("a", False)]),
            st.sampled_from(["flush", "reversed", "keep"]),
        ),
        min_size=1,
        max_size=6,
    ),
    window=st.sampled_from([0, 2]),
)
def test_repeated_series_judged_as_lists_do(
    base: list[tuple[str, str, int, float]],
    steps: list[tuple[int, str, tuple[str, bool] | None, str]],
    window: int,
) -> None:
    """Writes of the same series in the same order (the array state carried from batch to batch),
    with commits late (several outstanding, stored in or out of order), missing, or interleaved
    with other writes' commits."""
    by_lists, by_columns = SeriesLimits(10, window), SeriesLimits(10, window)
    pending: list[tuple[LimitOutcome, LimitOutcome]] = []
    for shift, when, other, pending_now in steps:
        if other:  # another write, stored: of other series or of one of these, as columns or lists
            instance, columns = other
            for limits in (by_lists, by_columns):
                _FORM["columns"] = columns and limits is by_columns
                limits.apply(_batch(("m", instance, shift + 1, 1.0))).commit()
        if pending_now != "keep":
            for lists_out, columns_out in pending[:: -1 if pending_now == "reversed" else 1]:
                lists_out.commit()
                columns_out.commit()
            pending = []
        samples = [(n, i, ts + shift, v) for n, i, ts, v in base]
        _FORM["columns"] = False
        lists_out = by_lists.apply(_batch(*samples))
        _FORM["columns"] = True
        columns_out = by_columns.apply(_batch(*samples))
        assert _summary(columns_out) == _summary(lists_out)
        if when == "now":
            lists_out.commit()
            columns_out.commit()
        elif when == "later":
            pending.append((lists_out, columns_out))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-3, 3))), max_size=20)
)
def test_running_max_per_group(pairs: list[tuple[int, int]]) -> None:
    pairs.sort(key=lambda p: p[0])
    expected, current, last = [], 0, None
    for group, ts in pairs:
        current = ts if group != last else max(current, ts)
        last = group
        expected.append(current)
    group_col = np.array([p[0] for p in pairs], np.int64)
    ts_col = np.array([p[1] for p in pairs], np.int64)
    assert _running_max(group_col, ts_col).tolist() == expected
