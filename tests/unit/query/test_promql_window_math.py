"""The fast paths of range functions equal their plain definitions: sparse reset corrections, window
bounds from one search, and rate/increase/delta over many series at once against Prometheus' own
sample-by-sample extrapolatedRate."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.query.promql import window_math as wm
from collector.query.promql.engine import Engine
from collector.query.promql.functions_over_time import _window_bounds
from collector.query.promql.memory_reader import MemoryReader
from collector.query.promql.storage import Matcher, SeriesData
from collector.query.promql.values import stale_nan

_values = st.lists(
    st.one_of(st.integers(0, 50).map(float), st.just(math.nan), st.just(math.inf), st.floats(-5, 1e6)),
    min_size=1,
    max_size=60,
)


def _sequential(values: list[float], first: int, last: int) -> float:
    """Prometheus' way: the value before every reset j in (first, last], added one by one."""
    total = 0.0
    for j in range(first + 1, last + 1):
        if values[j] < values[j - 1]:
            total += values[j - 1]
    return total


def _windows(n: int, data: st.DataObject) -> tuple[np.ndarray, np.ndarray]:
    first = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=20)), dtype=np.int64)
    last = np.array([data.draw(st.integers(f, n - 1)) for f in first], dtype=np.int64)
    return first, last


def _prometheus_increase(values: list[float], first: int, last: int) -> float:
    """last - first, then each reset's previous value added in order: Prometheus' extrapolatedRate."""
    total = values[last] - values[first]
    for j in range(first + 1, last + 1):
        if values[j] < values[j - 1]:
            total += values[j - 1]
    return total


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@settings(max_examples=300, deadline=None)
@given(values=_values, data=st.data())
def test_reset_corrections_are_added_as_prometheus_adds_them(values: list[float], data: st.DataObject) -> None:
    """Any values (NaN and +Inf too): bit for bit Prometheus' sum over each window's own resets."""
    vals = np.array(values)
    first, last = _windows(len(vals), data)
    with np.errstate(all="ignore"):  # as the engine evaluates: IEEE results, no warnings
        result = vals[last] - vals[first]
        wm.add_reset_corrections(result, vals, first, last)
    for i, (f, la) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
        assert _same(float(result[i]), _prometheus_increase(values, f, la)), (f, la, result[i])


@settings(max_examples=200, deadline=None)
@given(series=st.lists(_values, min_size=1, max_size=5), data=st.data())
def test_series_starts_are_not_resets(series: list[list[float]], data: st.DataObject) -> None:
    """Laid end to end, each window inside one series gets that series' own corrections, bit for bit."""
    vals = np.concatenate([np.array(s) for s in series])
    lens = np.array([len(s) for s in series])
    offsets = np.r_[0, np.cumsum(lens)[:-1]]
    k = data.draw(st.integers(0, len(series) - 1))
    a = data.draw(st.integers(0, lens[k] - 1))
    b = data.draw(st.integers(a, lens[k] - 1))
    first, last = np.array([offsets[k] + a]), np.array([offsets[k] + b])
    with np.errstate(all="ignore"):
        result = vals[last] - vals[first]
        wm.add_reset_corrections(result, vals, first, last, offsets[1:])
    assert _same(float(result[0]), _prometheus_increase(series[k], a, b))


@settings(max_examples=300, deadline=None)
@given(
    ts=st.lists(st.integers(0, 5_000), min_size=1, max_size=80, unique=True),
    start=st.integers(-500, 5_000),
    step=st.integers(1, 700),
    steps=st.integers(1, 30),
    mult=st.integers(1, 12),
    series=st.integers(1, 3),
)
def test_window_bounds_from_one_search_equal_two(
    ts: list[int], start: int, step: int, steps: int, mult: int, series: int
) -> None:
    one = np.array(sorted(ts), dtype=np.int64)
    span = 20_000
    offsets = np.arange(series, dtype=np.int64) * span
    key = np.concatenate([o + one + 1_000 for o in offsets])  # base-shifted as _batch does
    ends = start + step * np.arange(steps, dtype=np.int64) + 1_000
    for range_ms in (step * mult, step * mult + 1):  # a multiple of the step (one search) and not
        lo, hi = _window_bounds(key, offsets, ends, range_ms)
        want_hi = np.searchsorted(key, offsets[:, None] + ends[None, :], side="right")
        want_lo = np.searchsorted(key, offsets[:, None] + (ends - range_ms)[None, :], side="right")
        np.testing.assert_array_equal(lo, want_lo)
        np.testing.assert_array_equal(hi, want_hi)


def _prometheus_rate(samples: list[tuple[int, float]], start: int, end: int, func: str) -> float | None:
    """Prometheus 3's extrapolatedRate, sample by sample, for the window (start, end]."""
    pts = [(t, v) for t, v in samples if start < t <= end]
    if len(pts) < 2:
        return None
    counter = func != "delta"
    result = pts[-1][1] - pts[0][1]
    if counter:
        prev = 0.0
        for _, v in pts:
            if v < prev:
                result += prev
            prev = v
    to_start = (pts[0][0] - start) / 1000
    to_end = (end - pts[-1][0]) / 1000
    sampled = (pts[-1][0] - pts[0][0]) / 1000
    avg = sampled / (len(pts) - 1)
    if to_start >= avg * 1.1:
        to_start = avg / 2
    if counter and result > 0 and pts[0][1] >= 0:
        to_zero = sampled * (pts[0][1] / result)
        to_start = min(to_start, to_zero)
    if to_end >= avg * 1.1:
        to_end = avg / 2
    factor = (sampled + to_start + to_end) / sampled
    if func == "rate":
        factor /= (end - start) / 1000
    return result * factor


_counter = st.lists(
    st.tuples(st.integers(1_000, 20_000), st.one_of(st.integers(0, 100).map(float), st.floats(0, 1e3))),
    min_size=0,
    max_size=40,
)


class _StaleFreeReader(MemoryReader):
    """Says its series hold no stale marker when they do not (as the store does), to cover that path."""

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:  # type: ignore[override]
        out = super().select(matchers, start_ms, end_ms)
        for s in out:
            s.stale_free = not (s.values.view(np.uint64) == np.uint64(0x7FF0000000000002)).any()
        return out


@settings(max_examples=150, deadline=None)
@given(
    series=st.lists(_counter, min_size=1, max_size=6),
    func=st.sampled_from(["rate", "increase", "delta"]),
    step=st.sampled_from([1_000, 2_000, 3_000, 5_000]),
    mult=st.integers(1, 4),
    stale_free=st.booleans(),
)
def test_batched_rate_equals_prometheus_sample_by_sample(
    series: list[list[tuple[int, float]]], func: str, step: int, mult: int, stale_free: bool
) -> None:
    reader = _StaleFreeReader() if stale_free else MemoryReader()
    stored: dict[str, list[tuple[int, float]]] = {}
    for i, samples in enumerate(series):
        by_time = dict(samples)
        if not by_time:
            continue
        times = sorted(by_time)
        reader.add({"__name__": "m_total", "i": str(i)}, times, [by_time[t] for t in times])
        stored[str(i)] = [(t, by_time[t]) for t in times]
    if len(stored) > 1:  # a stale marker ends one series for a while (dropped by range selection)
        reader.add({"__name__": "m_total", "i": "0"}, [25_000], [stale_nan()])
    range_ms = step * mult
    start, end = 2_000, 24_000
    result = Engine(reader).range(f"{func}(m_total[{range_ms}ms])", start, end, step)
    got = {s.labels["i"]: dict(zip(s.timestamps.tolist(), s.values.tolist(), strict=True)) for s in result.matrix}
    for i, samples in stored.items():
        for t in range(start, end + 1, step):
            want = _prometheus_rate(samples, t - range_ms, t, func)
            have = got.get(i, {}).get(t)
            if want is None:
                assert have is None
            else:
                assert have is not None
                assert have == want or math.isclose(have, want, rel_tol=1e-12, abs_tol=1e-12), (i, t, have, want)


def _kahan_sequential(values: list[float]) -> float:
    """Prometheus' sum aggregation: kahanSumInc over the values in order, then sum + c unless infinite."""
    total = c = 0.0
    for f in values:
        t = total + f
        if math.isinf(t):
            c = 0.0
        elif abs(total) >= abs(f):
            c += (total - t) + f
        else:
            c += (f - t) + total
        total = t
    return total if math.isinf(total) else total + c


_sums = st.lists(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 1e-16, 1.0, -1.0])),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(_sums, min_size=1, max_size=6))
def test_kahan_sum_with_every_entry_present_equals_prometheus(rows: list[list[float]]) -> None:
    """The path for a full mask (every member present at every step) and the masked path (rows of other
    lengths, padded with absent entries) give Prometheus' sum bit for bit, overflow and NaN included."""
    expected = np.array([_kahan_sequential(r) for r in rows])
    full = np.concatenate([wm.kahan_sum(np.array([r]), np.ones((1, len(r)), dtype=bool)) for r in rows])
    width = max(len(r) for r in rows) + 1  # at least one absent entry per row
    x = np.array([r + [123.0] * (width - len(r)) for r in rows])
    mask = np.array([[True] * len(r) + [False] * (width - len(r)) for r in rows])
    assert np.array_equal(full, expected, equal_nan=True)
    assert np.array_equal(wm.kahan_sum(x, mask), expected, equal_nan=True)
