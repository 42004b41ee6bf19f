"""Vector, matrix and subquery selection over a step grid (lookback, staleness, offset and @)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import promql_parser as pp

from collector.query.promql.context import EvalContext
from collector.query.promql.parse import Expr, duration_ms, selector_matchers, selector_mode, time_ms
from collector.query.promql.storage import SeriesData
from collector.query.promql.values import I64, Grid, RangeData, Value, is_stale

DEFAULT_SUBQUERY_STEP_MS = 60_000


def effective_times(ctx: EvalContext, node: Expr, times: I64) -> I64:
    """The times a selector or subquery reads at each step: `@` pins them, `offset` shifts them back."""
    at = node.at
    if at is not None:
        kind = str(at.type)
        if kind.endswith("Start"):
            pinned = ctx.start_ms
        elif kind.endswith("End"):
            pinned = ctx.end_ms
        else:
            pinned = time_ms(at.at)
        base = np.full(len(times), pinned, dtype=np.int64)
    elif ctx.pin_ms is not None and ctx.subquery_depth == 0:
        base = np.full(len(times), ctx.pin_ms, dtype=np.int64)
    else:
        base = times
    return base - duration_ms(node.offset)


def instant_vector(ctx: EvalContext, node: Expr, times: I64) -> Grid:
    """Per series, the latest sample in (t - lookback, t] at every step, unless it is a stale marker."""
    te = effective_times(ctx, node, times)
    steps = len(times)
    if steps == 0:
        return Grid.empty(0)
    if selector_mode(node) == "smoothed":
        return _smoothed_vector(ctx, node, te)
    series = ctx.select(selector_matchers(node), int(te.min()) - ctx.lookback_ms + 1, int(te.max()))
    if steps == 1:
        return _latest(series)
    labels, values, present = [], [], []
    for s in series:
        if len(s.timestamps) == 0:
            continue
        idx = np.searchsorted(s.timestamps, te, side="right") - 1
        ok = idx >= 0
        idx = np.maximum(idx, 0)
        ok &= s.timestamps[idx] > te - ctx.lookback_ms
        v = s.values[idx]
        ok &= ~is_stale(v)
        if not ok.any():
            continue
        labels.append(s.labels)
        values.append(v)
        present.append(ok)
    if not labels:
        return Grid.empty(steps)
    return Grid(labels, np.vstack(values), np.vstack(present), np.zeros(len(labels), dtype=bool))


def _latest(series: list[SeriesData]) -> Grid:
    """One step (an instant query, a rule): the read covered exactly (t - lookback, t], so each series'
    last sample is its value unless it is a stale marker. One array op for all series, none per series."""
    kept = [s for s in series if len(s.timestamps)]
    last = np.array([s.values[-1] for s in kept], dtype=np.float64)
    fresh = ~is_stale(last)
    if not fresh.all():
        kept = [s for s, ok in zip(kept, fresh.tolist(), strict=True) if ok]
        last = last[fresh]
    if not kept:
        return Grid.empty(1)
    return Grid([s.labels for s in kept], last[:, None], np.ones((len(kept), 1), dtype=bool), np.zeros(len(kept), bool))


def _smoothed_vector(ctx: EvalContext, node: Expr, te: I64) -> Grid:
    """`x smoothed`: the value at t interpolated between the samples around it (each within the lookback);
    past the last sample, that sample's value."""
    lb = ctx.lookback_ms
    series = ctx.select(selector_matchers(node), int(te.min()) - lb + 1, int(te.max()) + lb)
    labels, values, present = [], [], []
    for s in series:
        keep = ~is_stale(s.values)
        ts, vals = s.timestamps[keep], s.values[keep]
        if len(ts) == 0:
            continue
        b = np.searchsorted(ts, te, side="right") - 1
        bi = np.maximum(b, 0)
        ok = (b >= 0) & (ts[bi] > te - lb)
        a = np.minimum(b + 1, len(ts) - 1)
        has_after = (b + 1 < len(ts)) & (ts[a] <= te + lb) & (ts[bi] != te)
        with np.errstate(all="ignore"):
            frac = (te - ts[bi]) / np.where(ts[a] != ts[bi], ts[a] - ts[bi], 1)
            v = np.where(has_after, vals[bi] + (vals[a] - vals[bi]) * frac, vals[bi])
        if ok.any():
            labels.append(s.labels)
            values.append(v)
            present.append(ok)
    if not labels:
        return Grid.empty(len(te))
    return Grid(labels, np.vstack(values), np.vstack(present), np.zeros(len(labels), dtype=bool))


def sample_timestamps(ctx: EvalContext, node: Expr, times: I64) -> Grid:
    """Like instant_vector, but each value is the selected sample's timestamp in seconds (`timestamp()`)."""
    te = effective_times(ctx, node, times)
    series = ctx.select(selector_matchers(node), int(te.min()) - ctx.lookback_ms + 1, int(te.max()))
    labels, values, present = [], [], []
    for s in series:
        if len(s.timestamps) == 0:
            continue
        idx = np.maximum(np.searchsorted(s.timestamps, te, side="right") - 1, 0)
        ok = (np.searchsorted(s.timestamps, te, side="right") > 0) & (s.timestamps[idx] > te - ctx.lookback_ms)
        ok &= ~is_stale(s.values[idx])
        if ok.any():
            labels.append(s.labels)
            values.append(s.timestamps[idx] / 1000.0)
            present.append(ok)
    if not labels:
        return Grid.empty(len(times))
    return Grid(labels, np.vstack(values), np.vstack(present), np.ones(len(labels), dtype=bool))


def range_vector(ctx: EvalContext, node: Expr, times: I64) -> RangeData:
    """A matrix selector: per series the samples of (t - range, t], stale markers dropped."""
    vs = node.vector_selector
    te = effective_times(ctx, vs, times)
    range_ms = duration_ms(node.range)
    mode = selector_mode(vs)
    before = ctx.lookback_ms if mode else 0
    after = ctx.lookback_ms if mode == "smoothed" else 0
    series = ctx.select(selector_matchers(vs), int(te.min()) - range_ms - before + 1, int(te.max()) + after)
    out = RangeData([], [], [], te, range_ms, mode=mode, lookback_ms=ctx.lookback_ms)
    for s in series:
        ts, vals = s.timestamps, s.values
        stale = None if s.stale_free else is_stale(vals)
        if stale is not None and stale.any():  # copying only series that have stale markers
            ts, vals = ts[~stale], vals[~stale]
        if len(ts):
            out.labels.append(s.labels)
            out.timestamps.append(ts)
            out.values.append(vals)
    out.drop = np.zeros(len(out.labels), dtype=bool)
    return out


def subquery(ctx: EvalContext, node: Expr, times: I64, evaluate: Callable[[Expr, I64], Value]) -> RangeData:
    """Evaluate the inner expression at absolute multiples of the step, then hand out (t - range, t] windows."""
    te = effective_times(ctx, node, times)
    range_ms = duration_ms(node.range)
    step = duration_ms(node.step) or DEFAULT_SUBQUERY_STEP_MS
    first = int(te.min()) - range_ms
    # The first step time strictly after (t - range), aligned to a multiple of the step.
    start = (first // step + 1) * step
    inner_times = np.arange(start, int(te.max()) + 1, step, dtype=np.int64)
    out = RangeData([], [], [], te, range_ms)
    if len(inner_times) == 0:
        out.drop = np.zeros(0, dtype=bool)
        return out
    ctx.subquery_depth += 1
    try:
        inner = evaluate(node.expr, inner_times)
    finally:
        ctx.subquery_depth -= 1
    if not isinstance(inner, Grid):
        raise TypeError("subquery over a non-vector")
    for i in range(inner.rows):
        p = inner.present[i]
        if p.any():
            out.labels.append(inner.labels[i])
            out.timestamps.append(inner_times[p])
            out.values.append(inner.values[i][p])
    out.drop = (
        inner.drop.copy()
        if inner.rows == len(out.labels)
        else np.array([inner.drop[i] for i in range(inner.rows) if inner.present[i].any()], dtype=bool)
    )
    return out


def is_subquery(node: Expr) -> bool:
    return isinstance(node, pp.SubqueryExpr)
