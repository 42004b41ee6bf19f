"""Range-vector functions: rate family, deriv/predict_linear, resets/changes and every *_over_time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import promql_parser as pp

from collector.query.promql import window_math as wm
from collector.query.promql.errors import bad_data
from collector.query.promql.parse import Expr, equality_labels, unwrap_parens
from collector.query.promql.values import F64, I64, NAME, Bools, Grid, RangeData

if TYPE_CHECKING:
    from collector.query.promql.engine import Evaluator

# Functions that keep the metric name (they return samples as they are).
_KEEP_NAME = {"last_over_time", "first_over_time"}
_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")

RANGE_FUNCTIONS = {
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "resets", "changes",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time",
    "stddev_over_time", "stdvar_over_time", "last_over_time", "first_over_time", "present_over_time",
    "absent_over_time", "mad_over_time", "ts_of_max_over_time", "ts_of_min_over_time", "ts_of_last_over_time",
    "ts_of_first_over_time", "double_exponential_smoothing", "holt_winters",
}  # fmt: skip

# Functions that accept anchored/smoothed range selectors.
_EXTENDED_FUNCTIONS = {
    "anchored": {"changes", "delta", "increase", "rate", "resets"},
    "smoothed": {"delta", "increase", "rate"},
}

# Series per batch, by sample count: large enough to amortise numpy's per-call cost, small enough for cache.
_BATCH_SAMPLES = 1 << 18

# Chunk the (steps, width) window matrices to bound memory.
_MAX_CELLS = 4_000_000


def evaluate(ev: Evaluator, name: str, args: list[Expr], times: I64) -> Grid:
    matrix_index = 1 if name == "quantile_over_time" else 0
    rd = ev.eval(args[matrix_index], times)
    if not isinstance(rd, RangeData):
        raise bad_data(f"expected range vector in call to function {name!r}")
    n = len(times)
    scalars = [ev.eval_scalar(a, times).values for i, a in enumerate(args) if i != matrix_index]
    if rd.mode is not None and name not in _EXTENDED_FUNCTIONS[rd.mode]:
        allowed = ", ".join(sorted(_EXTENDED_FUNCTIONS[rd.mode]))
        raise bad_data(f"{rd.mode} modifier can only be used with: {allowed} - not with {name}")
    if name == "absent_over_time":
        return _absent_over_time(rd, args[0], n)
    if name == "quantile_over_time":
        q = scalars[0]
        bad_q = q[(q < 0) | (q > 1) | np.isnan(q)]
        if len(bad_q):
            ev.ctx.warn(f"quantile value should be between 0 and 1, got {_fmt(float(bad_q[0]))}", (name, 0))
    if name in ("rate", "increase"):
        _counter_info(ev, name, args[0], rd)
    if not rd.labels:
        return Grid.empty(n)
    batched = _batched(name, rd, scalars, times) if rd.mode is None else None
    if batched is not None:
        all_values, all_ok = batched
    else:
        pairs = [
            _series(name, rd, rd.timestamps[i], rd.values[i], *rd.windows(i), scalars, times)
            for i in range(len(rd.labels))
        ]
        all_values = np.vstack([v for v, _ in pairs])
        all_ok = np.vstack([ok for _, ok in pairs])
    src = np.flatnonzero(all_ok.any(axis=1))
    if not len(src):
        return Grid.empty(n)
    drop = rd.drop[src] if name in _KEEP_NAME else np.ones(len(src), dtype=bool)
    return Grid([rd.labels[i] for i in src], all_values[src], all_ok[src], drop)


def _batched(name: str, rd: RangeData, scalars: list[F64], times: I64) -> tuple[F64, Bools] | None:
    """Many series at once, in chunks of about _BATCH_SAMPLES samples (small enough to stay in cache).
    Returns (values, present), each (series, steps), or None when a key would overflow."""
    chunks: list[tuple[F64, Bools]] = []
    start = 0
    total = len(rd.labels)
    # Also bound the (series, steps) window-index matrices of one batch.
    max_rows = max(1, _MAX_CELLS // max(len(rd.ends), 1))
    while start < total:
        stop, size = start, 0
        while stop < total and (
            stop == start or (size + len(rd.timestamps[stop]) <= _BATCH_SAMPLES and stop - start < max_rows)
        ):
            size += len(rd.timestamps[stop])
            stop += 1
        part = _batch(name, rd, range(start, stop), scalars, times)
        if part is None:
            return None
        chunks.append(part)
        start = stop
    return np.vstack([c[0] for c in chunks]), np.vstack([c[1] for c in chunks])


def _batch(name: str, rd: RangeData, rows: range, scalars: list[F64], times: I64) -> tuple[F64, Bools] | None:
    """Series `rows` at once: their samples laid end to end, every (series, step) window found by one
    searchsorted over a (series, time) key."""
    n, steps = len(rows), len(rd.ends)
    lens = np.array([len(rd.timestamps[i]) for i in rows], dtype=np.int64)
    ts = np.concatenate([rd.timestamps[i] for i in rows])
    vals = np.concatenate([rd.values[i] for i in rows])
    base = int(min(int(ts.min()), int((rd.ends - rd.range_ms).min())))
    span = int(max(int(ts.max()), int(rd.ends.max())) - base + 1)
    if n * span >= 2**62:
        return None
    offsets = np.arange(n, dtype=np.int64) * span
    key = np.repeat(offsets, lens) + (ts - base)
    lo, hi = _window_bounds(key, offsets, rd.ends - base, rd.range_ms)
    if name not in _WINDOW_FUNCTIONS:
        # Every window lies inside one series, so pairwise prefix sums never mix two series.
        return _series(name, rd, ts, vals, lo, hi, scalars, times, starts=np.cumsum(lens)[:-1])
    flat_scalars = [np.tile(s, n) for s in scalars]
    v, ok = _windowed(name, rd, ts, vals, lo.ravel(), hi.ravel(), flat_scalars, np.tile(times, n))
    return v.reshape(n, steps), ok.reshape(n, steps)


def _window_bounds(key: I64, offsets: I64, ends: I64, range_ms: int) -> tuple[I64, I64]:
    """Index bounds [lo, hi) in `key` of every (series, step) window (end - range, end].

    On a regular step grid whose step divides the range (a range query's usual shape), a window's start
    is an earlier step's end: one search over the grid extended back by the range gives both bounds."""
    steps = len(ends)
    step = int(ends[1] - ends[0]) if steps > 1 else 0
    back = range_ms // step if step > 0 and range_ms % step == 0 else 0
    if 0 < back < steps and bool((np.diff(ends) == step).all()):
        grid = ends[0] - range_ms + step * np.arange(steps + back, dtype=np.int64)
        pos = np.searchsorted(key, offsets[:, None] + grid[None, :], side="right").astype(np.int64)
        return pos[:, :steps], pos[:, back:]
    hi = np.searchsorted(key, offsets[:, None] + ends[None, :], side="right").astype(np.int64)
    lo = np.searchsorted(key, offsets[:, None] + (ends - range_ms)[None, :], side="right").astype(np.int64)
    return lo, hi


def _fmt(v: float) -> str:
    """A float as Go's %v prints it in annotations."""
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v.is_integer() else repr(v)


def _counter_info(ev: Evaluator, func: str, arg: Expr, rd: RangeData) -> None:
    inner = unwrap_parens(arg)
    if not isinstance(inner, pp.MatrixSelector):
        return
    for i, lab in enumerate(rd.labels):
        name = lab.get(NAME, "")
        if name and not name.endswith(_COUNTER_SUFFIXES) and len(rd.timestamps[i]) >= 2:
            ev.ctx.info(
                f'metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "{name}"',
                (func, 0),
            )


def _absent_over_time(rd: RangeData, arg: Expr, n: int) -> Grid:
    any_present = np.zeros(n, dtype=bool)
    for i in range(len(rd.labels)):
        lo, hi = rd.windows(i)
        any_present |= hi > lo
    inner = unwrap_parens(arg)
    labels = equality_labels(inner.vector_selector) if isinstance(inner, pp.MatrixSelector) else {}
    return Grid([labels], np.ones((1, n)), ~any_present[None, :], np.zeros(1, dtype=bool))


def _series(
    name: str,
    rd: RangeData,
    ts: I64,
    vals: F64,
    lo: I64,
    hi: I64,
    scalars: list[F64],
    times: I64,
    starts: I64 | None = None,
) -> tuple[F64, Bools]:
    """One series' (or, batched, all series') values for the windows [lo, hi) of its samples; batched,
    `starts` are the index of each series' first sample but the first."""
    if rd.mode is not None:
        return _extended(name, rd, ts, vals, lo, hi)
    count = hi - lo
    has = count > 0
    first = np.minimum(lo, len(vals) - 1)
    last = np.maximum(hi - 1, 0)
    if name == "count_over_time":
        return count.astype(np.float64), has
    if name == "present_over_time":
        return np.ones(lo.shape), has
    if name == "last_over_time":
        return vals[last], has
    if name == "first_over_time":
        return vals[first], has
    if name == "ts_of_last_over_time":
        return ts[last] / 1000.0, has
    if name == "ts_of_first_over_time":
        return ts[first] / 1000.0, has
    if name in ("rate", "increase", "delta"):
        return _extrapolated_rate(rd, ts, vals, lo, hi, starts, counter=name != "delta", is_rate=name == "rate")
    if name in ("irate", "idelta"):
        two = count >= 2
        a, b = vals[np.maximum(hi - 2, 0)], vals[last]
        dt = (ts[last] - ts[np.maximum(hi - 2, 0)]) / 1000.0
        out = b - a
        if name == "irate":
            out = np.where(b < a, b, out)
            with np.errstate(all="ignore"):
                out = out / dt
            two &= dt > 0
        return out, two
    if name in ("resets", "changes"):
        pc = wm.pair_counts(vals, resets=name == "resets")
        return (pc[last] - pc[first]).astype(np.float64), has
    return _windowed(name, rd, ts, vals, lo, hi, scalars, times)


def _extrapolated_rate(
    rd: RangeData, ts: I64, vals: F64, lo: I64, hi: I64, starts: I64 | None, *, counter: bool, is_rate: bool
) -> tuple[F64, Bools]:
    """Prometheus' extrapolatedRate for rate, increase and delta."""
    count = hi - lo
    ok = count >= 2
    first = np.minimum(lo, len(vals) - 1)
    last = np.maximum(hi - 1, 0)
    range_start = rd.ends - rd.range_ms
    with np.errstate(all="ignore"):
        result = vals[last] - vals[first]
        if counter:
            wm.add_reset_corrections(result, vals, first, last, starts)
        first_t, last_t = ts[first], ts[last]
        to_start = (first_t - range_start) / 1000.0
        to_end = (rd.ends - last_t) / 1000.0
        sampled = (last_t - first_t) / 1000.0
        avg_between = sampled / (count - 1)
        threshold = avg_between * 1.1
        to_start = np.where(to_start >= threshold, avg_between / 2, to_start)
        if counter:
            to_zero = sampled * (vals[first] / result)
            use_zero = (result > 0) & (vals[first] >= 0) & (to_zero < to_start)
            to_start = np.where(use_zero, to_zero, to_start)
        to_end = np.where(to_end >= threshold, avg_between / 2, to_end)
        factor = (sampled + to_start + to_end) / sampled
        if is_rate:
            factor = factor / (rd.range_ms / 1000.0)
        return result * factor, ok


def _extended(name: str, rd: RangeData, ts: I64, vals: F64, lo: I64, hi: I64) -> tuple[F64, Bools]:
    """Anchored and smoothed windows (experimental). Anchored: the last sample within the lookback before
    the window joins it as its first sample, and nothing is extrapolated. Smoothed: the values at both window
    boundaries are interpolated between the samples around them (counter resets corrected first)."""
    n = len(ts)
    start = rd.ends - rd.range_ms
    has = hi > lo
    before = lo - 1
    bi = np.maximum(before, 0)
    has_before = (before >= 0) & (ts[bi] > start - rd.lookback_ms)
    last = np.maximum(hi - 1, 0)
    counter = name in ("increase", "rate")
    corrected = vals + wm.reset_corrections(vals) if counter else vals
    with np.errstate(all="ignore"):
        if rd.mode == "anchored":
            first = np.where(has_before, bi, np.minimum(lo, n - 1))
            if name in ("changes", "resets"):
                pc = wm.pair_counts(vals, resets=name == "resets")
                return (pc[last] - pc[first]).astype(np.float64), has
            out = corrected[last] - corrected[first]
            return (out / (rd.range_ms / 1000.0) if name == "rate" else out), has

        def at(i: I64, j: I64, t: I64) -> F64:
            span = np.where(ts[j] != ts[i], ts[j] - ts[i], 1)
            return corrected[i] + (corrected[j] - corrected[i]) * (t - ts[i]) / span

        nxt = np.minimum(lo, n - 1)
        start_ok = (has_before & (lo < n)) | has
        v_start = np.where(has_before & (lo < n), at(bi, nxt, start), corrected[np.minimum(lo, n - 1)])
        after = np.minimum(hi, n - 1)
        has_after = (hi < n) & (ts[after] <= rd.ends + rd.lookback_ms) & (hi - 1 >= 0)
        prev_ok = has | has_before
        end_ok = (has_after & prev_ok) | has
        v_end = np.where(has_after & prev_ok, at(last, after, rd.ends), corrected[last])
        out = v_end - v_start
        return (out / (rd.range_ms / 1000.0) if name == "rate" else out), start_ok & end_ok


def _windowed(
    name: str, rd: RangeData, ts: I64, vals: F64, lo: I64, hi: I64, scalars: list[F64], times: I64
) -> tuple[F64, Bools]:
    """Functions that need every sample of the window, computed over chunks of steps."""
    n = len(lo)
    out = np.full(n, np.nan)
    count = hi - lo
    width = max(int(count.max()) if n else 1, 1)
    chunk = max(1, _MAX_CELLS // width)
    fn = _WINDOW_FUNCTIONS[name]
    for s0 in range(0, n, chunk):
        sl = slice(s0, min(n, s0 + chunk))
        x, mask = wm.window_matrix(vals, lo[sl], hi[sl])
        t, _ = wm.window_matrix(ts.astype(np.float64), lo[sl], hi[sl])
        ctx = _Window(x, mask, t / 1000.0, [s[sl] for s in scalars], times[sl] / 1000.0)
        out[sl] = fn(ctx)
    ok = count >= (2 if name in ("deriv", "predict_linear", "double_exponential_smoothing", "holt_winters") else 1)
    return out, ok


class _Window:
    def __init__(self, x: F64, mask: Bools, t: F64, scalars: list[F64], now: F64) -> None:
        self.x, self.mask, self.t, self.scalars, self.now = x, mask, t, scalars, now


def _max(w: _Window) -> F64:
    return np.fmax.reduce(np.where(w.mask, w.x, np.nan), axis=1)


def _min(w: _Window) -> F64:
    return np.fmin.reduce(np.where(w.mask, w.x, np.nan), axis=1)


def _ts_of(pick: Callable[[_Window], F64], prefer_last: bool) -> Callable[[_Window], F64]:
    def run(w: _Window) -> F64:
        target = pick(w)
        hit = w.mask & ((w.x == target[:, None]) | (np.isnan(w.x) & np.isnan(target)[:, None]))
        idx = w.x.shape[1] - 1 - np.argmax(hit[:, ::-1], axis=1) if prefer_last else np.argmax(hit, axis=1)
        return w.t[np.arange(w.x.shape[0]), idx]

    return run


def _mad(w: _Window) -> F64:
    med = wm.quantile_rows(np.full(w.x.shape[0], 0.5), w.x, w.mask)
    mad = wm.quantile_rows(np.full(w.x.shape[0], 0.5), np.abs(w.x - med[:, None]), w.mask)
    # A NaN anywhere in the window makes the deviation NaN.
    return np.where((np.isnan(w.x) & w.mask).any(axis=1), np.nan, mad)


def _deriv(w: _Window) -> F64:
    slope, _ = wm.linear_regression(w.t, w.x, w.mask, w.t[:, 0])
    return slope


def _predict_linear(w: _Window) -> F64:
    slope, intercept = wm.linear_regression(w.t, w.x, w.mask, w.now)
    return slope * w.scalars[0] + intercept


def _smoothing(w: _Window) -> F64:
    """double_exponential_smoothing (Holt's linear method) as Prometheus computes it."""
    sf, tf = w.scalars[0], w.scalars[1]
    n_rows = w.x.shape[0]
    out = np.full(n_rows, np.nan)
    for r in range(n_rows):
        vals = w.x[r][w.mask[r]]
        if len(vals) < 2 or not (0 < sf[r] < 1) or not (0 < tf[r] < 1):
            continue
        s0, s1 = 0.0, vals[0]
        b = vals[1] - vals[0]
        for i in range(1, len(vals)):
            if i > 1:
                b = tf[r] * (s1 - s0) + (1 - tf[r]) * b
            s0 = s1
            s1 = sf[r] * vals[i] + (1 - sf[r]) * (s1 + b)
        out[r] = s1
    return out


_WINDOW_FUNCTIONS: dict[str, Callable[[_Window], F64]] = {
    "sum_over_time": lambda w: wm.kahan_sum(w.x, w.mask),
    "avg_over_time": lambda w: wm.kahan_mean(w.x, w.mask),
    "max_over_time": _max,
    "min_over_time": _min,
    "stdvar_over_time": lambda w: wm.variance(w.x, w.mask),
    "stddev_over_time": lambda w: np.sqrt(wm.variance(w.x, w.mask)),
    "quantile_over_time": lambda w: wm.quantile_rows(w.scalars[0], w.x, w.mask),
    "mad_over_time": _mad,
    "ts_of_max_over_time": _ts_of(_max, True),
    "ts_of_min_over_time": _ts_of(_min, True),
    "deriv": _deriv,
    "predict_linear": _predict_linear,
    "double_exponential_smoothing": _smoothing,
    "holt_winters": _smoothing,
}
