"""Vectorised per-window reductions: windows of one series laid out as a (steps, width) matrix.

Sums follow Prometheus' Kahan-Neumaier summation (kahanSumInc) column by column, so results match its
floating-point behaviour; every loop runs over window positions, never over steps.
"""

from __future__ import annotations

import numpy as np

from collector.query.promql.values import F64, I64, Bools


def window_matrix(values: F64, lo: I64, hi: I64) -> tuple[F64, Bools]:
    """values[lo[s]:hi[s]] for every step s, left-aligned and padded: (matrix, mask of real entries)."""
    count = hi - lo
    width = int(count.max()) if len(count) else 0
    cols = np.arange(max(width, 1))
    idx = np.minimum(lo[:, None] + cols[None, :], max(len(values) - 1, 0))
    mask = cols[None, :] < count[:, None]
    if len(values) == 0:
        return np.zeros(mask.shape), mask
    return values[idx], mask


def kahan_inc(inc: F64, total: F64, c: F64) -> tuple[F64, F64]:
    """Prometheus' kahanSumInc, element-wise."""
    with np.errstate(all="ignore"):
        t = total + inc
        big = np.abs(total) >= np.abs(inc)
        c_new = np.where(big, c + ((total - t) + inc), c + ((inc - t) + total))
        c_new = np.where(np.isinf(t), 0.0, c_new)
    return t, c_new


def kahan_sum(x: F64, mask: Bools) -> F64:
    total = np.zeros(x.shape[0])
    c = np.zeros(x.shape[0])
    if mask.all():  # every entry counts (the usual aggregation): kahan_inc's steps without the selects
        with np.errstate(all="ignore"):
            for j in range(x.shape[1]):
                inc = x[:, j]
                t = total + inc
                c = np.where(np.abs(total) >= np.abs(inc), c + ((total - t) + inc), c + ((inc - t) + total))
                c[np.isinf(t)] = 0.0
                total = t
            return np.where(np.isinf(total), total, total + c)
    for j in range(x.shape[1]):
        m = mask[:, j]
        t, cn = kahan_inc(x[:, j], total, c)
        total = np.where(m, t, total)
        c = np.where(m, cn, c)
    with np.errstate(all="ignore"):
        return np.where(np.isinf(total), total, total + c)


def kahan_mean(x: F64, mask: Bools) -> F64:
    """Prometheus' avg_over_time/avg: Kahan sum, switching to an incremental mean when the sum overflows."""
    n = x.shape[0]
    total = x[:, 0].copy()
    c = np.zeros(n)
    mean = np.zeros(n)
    incremental = np.zeros(n, dtype=bool)
    with np.errstate(all="ignore"):
        for j in range(1, x.shape[1]):
            m = mask[:, j]
            f = x[:, j]
            count = float(j + 1)
            ns, nc = kahan_inc(f, total, c)
            plain = m & ~incremental
            overflow = plain & np.isinf(ns)
            ok = plain & ~overflow
            total = np.where(ok, ns, total)
            c = np.where(ok, nc, c)
            mean = np.where(overflow, total / (count - 1), mean)
            c = np.where(overflow, c / (count - 1), c)
            incremental |= overflow
            q = (count - 1) / count
            nm, nc2 = kahan_inc(f / count, q * mean, q * c)
            step = incremental & m
            mean = np.where(step, nm, mean)
            c = np.where(step, nc2, c)
        cnt = mask.sum(axis=1).astype(np.float64)
        return np.where(incremental, mean + c, total / cnt + c / cnt)


def variance(x: F64, mask: Bools) -> F64:
    """Population variance as Prometheus computes stdvar_over_time (Welford with Kahan terms)."""
    n = x.shape[0]
    count = np.zeros(n)
    mean = np.zeros(n)
    c_mean = np.zeros(n)
    aux = np.zeros(n)
    c_aux = np.zeros(n)
    with np.errstate(all="ignore"):
        for j in range(x.shape[1]):
            m = mask[:, j]
            f = x[:, j]
            cnt = count + 1
            delta = f - (mean + c_mean)
            nm, ncm = kahan_inc(delta / cnt, mean, c_mean)
            na, nca = kahan_inc(delta * (f - (nm + ncm)), aux, c_aux)
            count = np.where(m, cnt, count)
            mean, c_mean = np.where(m, nm, mean), np.where(m, ncm, c_mean)
            aux, c_aux = np.where(m, na, aux), np.where(m, nca, c_aux)
        return (aux + c_aux) / count


def quantile_rows(q: F64, x: F64, mask: Bools) -> F64:
    """Prometheus' quantile (linear interpolation at rank q*(n-1)) of each row's masked entries; NaN sorts first."""
    key = np.where(mask, np.where(np.isnan(x), -np.inf, x), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    n = mask.sum(axis=1).astype(np.float64)
    with np.errstate(all="ignore"):
        rank = q * (n - 1)
        rank = np.where(np.isfinite(rank), rank, 0.0)
        lower = np.maximum(0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
        li = np.clip(lower, 0, max(x.shape[1] - 1, 0)).astype(np.int64)
        ui = np.clip(upper, 0, max(x.shape[1] - 1, 0)).astype(np.int64)
        rows = np.arange(x.shape[0])
        out = xs[rows, li] * (1 - weight) + xs[rows, ui] * weight
    out = np.where(q < 0, -np.inf, out)
    out = np.where(q > 1, np.inf, out)
    return np.where(np.isnan(q) | (n == 0), np.nan, out)


def linear_regression(t: F64, x: F64, mask: Bools, intercept_t: F64) -> tuple[F64, F64]:
    """Prometheus' linearRegression per row: t in seconds relative to intercept_t; returns (slope, intercept)."""
    n_rows = x.shape[0]
    n = np.zeros(n_rows)
    sx, cx, sy, cy = (np.zeros(n_rows) for _ in range(4))
    sxy, cxy, sx2, cx2 = (np.zeros(n_rows) for _ in range(4))
    init_y = x[:, 0]
    const_y = np.ones(n_rows, dtype=bool)
    with np.errstate(all="ignore"):
        for j in range(x.shape[1]):
            m = mask[:, j]
            f = x[:, j]
            if j > 0:
                const_y &= ~(m & (f != init_y))
            xt = t[:, j] - intercept_t
            n = np.where(m, n + 1, n)
            for acc in ((xt, 0), (f, 1), (xt * f, 2), (xt * xt, 3)):
                inc, k = acc
                tot, comp = [(sx, cx), (sy, cy), (sxy, cxy), (sx2, cx2)][k]
                nt, nc = kahan_inc(inc, tot, comp)
                nt, nc = np.where(m, nt, tot), np.where(m, nc, comp)
                if k == 0:
                    sx, cx = nt, nc
                elif k == 1:
                    sy, cy = nt, nc
                elif k == 2:
                    sxy, cxy = nt, nc
                else:
                    sx2, cx2 = nt, nc
        sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
        cov = sxy - sx * sy / n
        var = sx2 - sx * sx / n
        slope = cov / var
        intercept = sy / n - slope * sx / n
    inf_y = np.isinf(init_y)
    slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
    intercept = np.where(const_y, np.where(inf_y, np.nan, init_y), intercept)
    return slope, intercept


def pair_counts(values: F64, resets: bool) -> I64:
    """Prefix counts over consecutive pairs: element k counts pairs (j-1, j) with j <= k that are a reset
    (value decreased) or, with resets False, a change (NaN to NaN is no change)."""
    if len(values) < 2:
        return np.zeros(len(values), dtype=np.int64)
    prev, cur = values[:-1], values[1:]
    # A change: NaN to NaN is none.
    hit = cur < prev if resets else (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
    return np.concatenate(([0], np.cumsum(hit))).astype(np.int64)


def reset_corrections(values: F64) -> F64:
    """Prefix sums of counter-reset corrections: element k adds v[j-1] for every j <= k with v[j] < v[j-1]."""
    if len(values) < 2:
        return np.zeros(len(values))
    prev, cur = values[:-1], values[1:]
    return np.concatenate(([0.0], np.cumsum(np.where(cur < prev, prev, 0.0))))


def _window_resets(values: F64, first: I64, last: I64, starts: I64 | None) -> tuple[F64, I64, I64] | None:
    """The counter resets j (v[j] < v[j-1]): their v[j-1], and per window the range [a, b) of them with
    first < j <= last; None when `values` hold no reset at all (the common case). With several series
    laid end to end, `starts` (their first indexes, ascending) are no resets."""
    if len(values) < 2:
        return None
    hits = np.flatnonzero(values[1:] < values[:-1]) + 1
    if starts is not None and len(hits) and len(starts):
        at = np.minimum(np.searchsorted(starts, hits), len(starts) - 1)  # starts ascend
        hits = hits[starts[at] != hits]
    if not len(hits):
        return None
    return values[hits - 1], np.searchsorted(hits, first, side="right"), np.searchsorted(hits, last, side="right")


def add_reset_corrections(result: F64, values: F64, first: I64, last: I64, starts: I64 | None = None) -> None:
    """Add to result[i], one at a time and in order, v[j-1] for each counter reset j with first[i] < j <= last[i]
    (`result`, `first` and `last` of one shape; `result` is changed in place).

    That is how Prometheus' extrapolatedRate adds them to last - first, so the sums agree bit for bit;
    prefix sums over the batch's resets would carry other windows' (and other series') rounding into
    every window, and turn inf - inf into NaN after an infinite counter value.
    """
    found = _window_resets(values, first, last, starts)
    if found is None:
        return
    added, a, b = found
    a, held = a.ravel(), (b - a).ravel()  # windows may come as a (step x series) grid: work on it flat
    for k in range(int(held.max(initial=0))):  # the k-th reset of every window holding k+1 or more
        rows = np.flatnonzero(held > k)
        result[np.unravel_index(rows, result.shape)] += added[a[rows] + k]
