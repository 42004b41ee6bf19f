"""histogram_quantile and histogram_fraction over classic histograms (series with an `le` label)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from collector.query.promql.errors import bad_data, execution
from collector.query.promql.parse import Expr
from collector.query.promql.values import F64, I64, NAME, Bools, Grid, Labels, StringValue, label_key

if TYPE_CHECKING:
    from collector.query.promql.engine import Evaluator

_SMALL_DELTA = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308
_QUANTILE_DOC = "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile"

Bucket = list[float]  # [upper bound, cumulative count]


def almost_equal(a: float, b: float, eps: float) -> bool:
    """Prometheus' util/almost.Equal."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or abs(a) + abs(b) < _MIN_NORMAL:
        return diff < eps * _MIN_NORMAL
    return diff / min(abs(a) + abs(b), 1.7976931348623157e308) < eps


def _div(a: float, b: float) -> float:
    """IEEE division as Go does it: x/0 is ±Inf, 0/0 is NaN (Python raises instead)."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _coalesce(buckets: list[Bucket]) -> list[Bucket]:
    out: list[Bucket] = [list(buckets[0])]
    for ub, c in buckets[1:]:
        if ub == out[-1][0]:
            out[-1][1] += c
        else:
            out.append([ub, c])
    return out


def _ensure_monotonic(buckets: list[Bucket]) -> tuple[bool, bool]:
    forced = fixed = False
    prev = buckets[0][1]
    for b in buckets[1:]:
        cur = b[1]
        if cur == prev:
            continue
        if almost_equal(prev, cur, _SMALL_DELTA):
            b[1] = prev
            fixed = True
            continue
        if cur < prev:
            b[1] = prev
            forced = True
            continue
        prev = cur
    return forced, fixed


def bucket_quantile(q: float, raw: list[Bucket]) -> tuple[float, bool]:
    """Prometheus' BucketQuantile; returns (value, whether monotonicity had to be forced)."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    buckets = sorted(raw, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan, False
    buckets = _coalesce(buckets)
    forced, _ = _ensure_monotonic(buckets)
    if len(buckets) < 2:
        return math.nan, False
    observations = buckets[-1][1]
    if observations == 0:
        return math.nan, False
    rank = q * observations
    b = len(buckets) - 1
    for i in range(len(buckets) - 1):
        if buckets[i][1] >= rank:
            b = i
            break
    if b == len(buckets) - 1:
        return buckets[-2][0], forced
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0], forced
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * _div(rank, count), forced


def _almost_equal_steps(a: F64, b: F64, eps: float) -> Bools:
    """almost_equal, element-wise."""
    with np.errstate(all="ignore"):
        diff = np.abs(a - b)
        total = np.abs(a) + np.abs(b)
        tiny = (a == 0) | (b == 0) | (total < _MIN_NORMAL)
        close = np.where(tiny, diff < eps * _MIN_NORMAL, diff / np.minimum(total, 1.7976931348623157e308) < eps)
    return (np.isnan(a) & np.isnan(b)) | (a == b) | close


def bucket_quantile_steps(q: F64, bounds: F64, counts: F64) -> tuple[F64, Bools]:
    """bucket_quantile for many steps at once: `bounds` ascending and unique (coalesced), `counts` of shape
    (bounds, steps). Returns (values, whether monotonicity had to be forced) per step."""
    steps = counts.shape[1]
    out = np.full(steps, np.nan)
    forced = np.zeros(steps, dtype=bool)
    if len(bounds) >= 2 and math.isinf(bounds[-1]) and bounds[-1] > 0:
        c = counts.copy()
        prev = c[0].copy()
        for i in range(1, len(bounds)):
            cur = c[i]
            same = cur == prev
            close = ~same & _almost_equal_steps(prev, cur, _SMALL_DELTA)
            lower = ~same & ~close & (cur < prev)
            c[i] = np.where(close | lower, prev, cur)
            forced |= lower
            prev = np.where(same | close | lower, prev, cur)
        with np.errstate(all="ignore"):
            observations = c[-1]
            rank = q * observations
            hit = c[:-1] >= rank[None, :]
            b = np.where(hit.any(axis=0), np.argmax(hit, axis=0), len(bounds) - 1)
            below = np.where(b > 0, c[np.maximum(b - 1, 0), np.arange(steps)], 0.0)
            start = np.where(b > 0, bounds[np.maximum(b - 1, 0)], 0.0)
            end = bounds[b]
            value = start + (end - start) * ((rank - below) / (c[b, np.arange(steps)] - below))
            value = np.where(b == len(bounds) - 1, bounds[-2], value)
            value = np.where((b == 0) & (bounds[0] <= 0), bounds[0], value)
            out = np.where(observations == 0, np.nan, value)
    out = np.where(q < 0, -np.inf, out)
    out = np.where(q > 1, np.inf, out)
    out = np.where(np.isnan(q), np.nan, out)
    forced &= ~np.isnan(q) & (q >= 0) & (q <= 1)
    return out, forced


def bucket_fraction(lower: float, upper: float, raw: list[Bucket]) -> float:
    """Prometheus' BucketFraction: the estimated share of observations in [lower, upper]."""
    buckets = sorted(raw, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    buckets = _coalesce(buckets)
    _ensure_monotonic(buckets)
    count = buckets[-1][1]
    if count == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    rank = lower_rank = upper_rank = 0.0
    lower_set = upper_set = False
    for i, (ub, c) in enumerate(buckets):
        lb = buckets[i - 1][0] if i > 0 else -math.inf
        if i == 0 and ub > 0:
            lb = 0.0  # the first bucket of positive observations starts at 0, as for quantiles

        def interp(v: float, lb: float = lb, ub: float = ub, c: float = c, rank: float = rank) -> float:
            # An infinite bound cannot be interpolated: the bucket's observations sit at its finite end.
            if math.isinf(lb):
                return c
            if math.isinf(ub):
                return rank
            return rank + (c - rank) * _div(v - lb, ub - lb)

        if not lower_set and lb >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and lb >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        if not lower_set and lb < lower < ub:
            lower_rank, lower_set = interp(lower), True
        if not upper_set and lb < upper < ub:
            upper_rank, upper_set = interp(upper), True
        if lower_set and upper_set:
            break
        rank = c
    if not lower_set or lower_rank > count:
        lower_rank = count
    if not upper_set or upper_rank > count:
        upper_rank = count
    return _div(upper_rank - lower_rank, count)


def _parse_le(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


# Vectorised form of a per-step computation: (upper bounds ascending and unique, counts (bounds, steps),
# step indices, metric name) -> values for those steps.
Vectorised = Callable[[F64, F64, I64, str], F64]


def _per_bucket_group(
    ev: Evaluator,
    g: Grid,
    n: int,
    compute: Callable[[int, list[Bucket], str], float],
    func: str,
    arg: int,
    vectorised: Vectorised | None = None,
) -> Grid:
    """Group bucket series by their labels without `le` (and the name), then compute per group and step.

    `compute(step, buckets, metric name)`; `func`/`arg` locate the vector argument for annotations. With
    `vectorised`, the steps where every bucket of a group is present are computed at once.
    """
    groups: dict[tuple[tuple[str, str], ...], tuple[Labels, str, list[tuple[int, float]]]] = {}
    for i, lab in enumerate(g.labels):
        le = _parse_le(lab.get("le"))
        if le is None:
            ev.ctx.warn(
                f'bucket label "le" is missing or has a malformed value of "{lab.get("le", "")}" '
                f'for metric name "{lab.get(NAME, "")}"',
                (func, arg),
            )
            continue
        # Grouped by every label but `le` (the name too: two histograms with different names stay apart and
        # collide as equal label sets at the end, as in Prometheus); the output drops the name.
        out = {k: v for k, v in lab.items() if k not in ("le", NAME, "__type__", "__unit__")}
        key = label_key({k: v for k, v in lab.items() if k != "le"})
        groups.setdefault(key, (out, lab.get(NAME, ""), []))[2].append((i, le))
    labels: list[Labels] = []
    values, present = [], []
    # At one step (an instant query, a rule), groups with the same bounds and name go to `vectorised`
    # together, one column each, instead of one call per group: (bounds, their columns, values to fill).
    together: dict[tuple[bytes, str], tuple[F64, list[F64], list[F64]]] = {}
    for out_labels, metric, members in groups.values():
        idx = [i for i, _ in members]
        les = [le for _, le in members]
        vals = np.full(n, np.nan)
        ok = g.present[idx].any(axis=0)
        full = g.present[idx].all(axis=0)
        les_arr = np.array(les)
        if vectorised is not None and full.any() and not np.isnan(les_arr).any():
            order = np.argsort(les_arr, kind="stable")
            bounds, starts = np.unique(les_arr[order], return_index=True)
            steps = np.flatnonzero(full)
            counts = np.add.reduceat(g.values[np.array(idx)[order]][:, steps], starts, axis=0)
            if n == 1:
                entry = together.setdefault((bounds.tobytes(), metric), (bounds, [], []))
                entry[1].append(counts[:, 0])
                entry[2].append(vals)
            else:
                vals[steps] = vectorised(bounds, counts, steps, metric)
            ok_rest = ok & ~full
        else:
            ok_rest = ok
        for s in np.flatnonzero(ok_rest):
            rows = [[les[k], float(g.values[i, s])] for k, i in enumerate(idx) if g.present[i, s]]
            vals[s] = compute(int(s), rows, metric)
        labels.append(out_labels)
        values.append(vals)
        present.append(ok)
    for (_, metric), (bounds, columns, targets) in together.items():
        assert vectorised is not None
        computed = vectorised(bounds, np.column_stack(columns), np.zeros(len(columns), dtype=np.int64), metric)
        for target, value in zip(targets, computed.tolist(), strict=True):
            target[0] = value
    if not labels:
        return Grid.empty(n)
    return Grid(labels, np.vstack(values), np.vstack(present), np.zeros(len(labels), dtype=bool))


def histogram_quantile(ev: Evaluator, node: Expr, times: I64) -> Grid:
    q = ev.eval_scalar(node.args[0], times).values
    g = ev.eval_grid(node.args[1], times)
    bad = q[(q < 0) | (q > 1) | np.isnan(q)]
    if len(bad):  # warned even when the input is empty, as Prometheus does
        ev.ctx.warn(f"quantile value should be between 0 and 1, got {_fmt(float(bad[0]))}", ("histogram_quantile", 0))

    def forced_info(metric: str) -> None:
        ev.ctx.info(
            f"input to histogram_quantile needed to be fixed for monotonicity (see {_QUANTILE_DOC}) "
            f'for metric name "{metric}"',
            ("histogram_quantile", 1),
        )

    def compute(s: int, buckets: list[Bucket], metric: str) -> float:
        value, forced = bucket_quantile(float(q[s]), buckets)
        if forced:
            forced_info(metric)
        return value

    def vectorised(bounds: F64, counts: F64, steps: I64, metric: str) -> F64:
        value, forced = bucket_quantile_steps(q[steps], bounds, counts)
        if forced.any():
            forced_info(metric)
        return value

    return _per_bucket_group(ev, g, len(times), compute, "histogram_quantile", 1, vectorised)


def histogram_quantiles(ev: Evaluator, node: Expr, times: I64) -> Grid:
    """histogram_quantiles(v, "label", q1, q2, ...) (experimental): one output series per quantile, told
    apart by `label`, whose value is the quantile written as a float (`0.0`, `0.25`)."""
    g = ev.eval_grid(node.args[0], times)
    label = ev.eval(node.args[1], times)
    if not isinstance(label, StringValue):
        raise bad_data("histogram_quantiles needs a label name")
    if any(label.value in lab for lab in g.labels):
        raise execution(f'label "{label.value}" already exists in the input of histogram_quantiles')
    qs = [ev.eval_scalar(a, times).values for a in node.args[2:]]
    n = len(times)
    out: list[Grid] = []
    for q in qs:
        bad = q[(q < 0) | (q > 1) | np.isnan(q)]
        if len(bad):
            ev.ctx.warn(
                f"quantile value should be between 0 and 1, got {_fmt(float(bad[0]))}", ("histogram_quantiles", 2)
            )

        def compute(s: int, buckets: list[Bucket], metric: str, q: F64 = q) -> float:
            value, forced = bucket_quantile(float(q[s]), buckets)
            if forced:
                ev.ctx.info(
                    f"input to histogram_quantile needed to be fixed for monotonicity (see {_QUANTILE_DOC}) "
                    f'for metric name "{metric}"',
                    ("histogram_quantiles", 0),
                )
            return value

        res = _per_bucket_group(ev, g, n, compute, "histogram_quantiles", 0)
        text = _float_text(float(q[0]))
        out.append(Grid([{**lab, label.value: text} for lab in res.labels], res.values, res.present, res.drop))
    if not out:
        return Grid.empty(n)
    return Grid(
        [lab for o in out for lab in o.labels],
        np.vstack([o.values for o in out]),
        np.vstack([o.present for o in out]),
        np.concatenate([o.drop for o in out]),
    )


def _float_text(v: float) -> str:
    """How histogram_quantiles writes a quantile into its label: `0.0`, `0.25`, `-0.1`, `NaN`."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def histogram_fraction(ev: Evaluator, node: Expr, times: I64) -> Grid:
    lower = ev.eval_scalar(node.args[0], times).values
    upper = ev.eval_scalar(node.args[1], times).values
    g = ev.eval_grid(node.args[2], times)

    def compute(s: int, buckets: list[Bucket], _metric: str) -> float:
        return bucket_fraction(float(lower[s]), float(upper[s]), buckets)

    return _per_bucket_group(ev, g, len(times), compute, "histogram_fraction", 2)


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v.is_integer() else repr(v)
