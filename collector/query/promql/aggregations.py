"""Aggregation operators (sum, avg, topk, quantile, count_values, ...) with `by` and `without`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from collector.query.promql import window_math as wm
from collector.query.promql.errors import bad_data, execution
from collector.query.promql.parse import Expr, op_name
from collector.query.promql.values import (
    F64,
    I64,
    NAME_LIKE,
    Bools,
    Grid,
    Labels,
    ScalarGrid,
    StringValue,
    label_key,
    valid_label_name,
)

if TYPE_CHECKING:
    from collector.query.promql.engine import Evaluator


def _group_labels(lab: Labels, by: list[str] | None, without: list[str] | None) -> Labels:
    if by is not None:
        return {k: lab[k] for k in by if k in lab}
    drop = set(without or ()) | set(NAME_LIKE)
    return {k: v for k, v in lab.items() if k not in drop}


def left_align(x: F64, mask: Bools) -> tuple[F64, Bools]:
    """Per row, move the masked-in entries to the front (keeping their order)."""
    if not mask.size or bool((mask[:, 1:] <= mask[:, :-1]).all()):  # already in front (every member present)
        return x, mask
    order = np.argsort(~mask, axis=1, kind="stable")
    return np.take_along_axis(x, order, axis=1), np.take_along_axis(mask, order, axis=1)


def aggregate(ev: Evaluator, node: Expr, times: I64) -> Grid:
    op = op_name(node.op)
    n = len(times)
    by: list[str] | None = None
    without: list[str] | None = None
    if node.modifier is not None:
        if str(node.modifier.type).endswith("By"):
            by = list(node.modifier.labels)
        else:
            without = list(node.modifier.labels)
    else:
        by = []
    param = ev.eval(node.param, times) if node.param is not None else None
    g = ev.eval_grid(node.expr, times)
    groups: dict[tuple[tuple[str, str], ...], tuple[Labels, list[int]]] = {}
    for i in range(g.rows):
        # Delayed name removal: `by (__name__)` groups on the name even where it is marked for removal.
        lab = g.labels[i]
        out = _group_labels(lab, by, without)
        groups.setdefault(label_key(out), (out, []))[1].append(i)
    if op in ("topk", "bottomk", "limitk", "limit_ratio"):
        return _select_rows(ev, op, g, groups, param, n)
    if op == "count_values":
        if not isinstance(param, StringValue):
            raise bad_data("count_values needs a string parameter")
        return _count_values(g, groups, param.value, n)
    labels: list[Labels] = []
    values: list[F64] = []
    present: list[Bools] = []
    q = param.values if isinstance(param, ScalarGrid) else None
    if op == "quantile" and q is not None:
        bad = q[(q < 0) | (q > 1) | np.isnan(q)]
        if len(bad):
            ev.ctx.warn(f"quantile value should be between 0 and 1, got {_fmt(float(bad[0]))}", (op, 0))
    drop: list[bool] = []
    group_list = list(groups.values())
    reduced = _reduce_groups(op, g, [idx for _, idx in group_list], q, n)
    for (out, idx), (v, ok) in zip(group_list, reduced, strict=True):
        if not ok.any():
            continue
        labels.append(out)
        values.append(v)
        present.append(ok)
        # A kept name is dropped at the end if any member's name was to be dropped.
        drop.append(NAME_LIKE[0] in out and bool(g.drop[idx].any()))
    if not labels:
        return Grid.empty(n)
    return Grid(labels, np.vstack(values), np.vstack(present), np.array(drop, dtype=bool))


# Cells of the (groups, steps, members) tensor reduced at once; larger inputs go group by group.
_MAX_TENSOR = 8_000_000


def _reduce_groups(op: str, g: Grid, groups: list[list[int]], q: F64 | None, n: int) -> list[tuple[F64, Bools]]:
    """Every group's aggregate at every step. All groups are laid out as one (groups * steps, members)
    matrix, members left-aligned per step, so the sequential (Kahan) reductions loop over member
    positions (the largest group's size), not over every input series."""
    if not groups:
        return []
    width = max(len(idx) for idx in groups)
    if len(groups) * n * width > _MAX_TENSOR:
        return (
            [_reduce_groups(op, g, [idx], q, n)[0] for idx in groups]
            if len(groups) > 1
            else [_reduce_one(op, g, groups[0], q)]
        )
    x = np.zeros((len(groups), n, width))
    mask = np.zeros((len(groups), n, width), dtype=bool)
    for k, idx in enumerate(groups):
        x[k, :, : len(idx)] = g.values[idx].T
        mask[k, :, : len(idx)] = g.present[idx].T
    flat_x, flat_mask = left_align(x.reshape(-1, width), mask.reshape(-1, width))
    flat_q = np.tile(q, len(groups)) if q is not None else None
    with np.errstate(all="ignore"):
        v = _reduce(op, flat_x, flat_mask, flat_q).reshape(len(groups), n)
    ok: Bools = np.asarray(mask.any(axis=2))
    return [(v[k], ok[k]) for k in range(len(groups))]


def _reduce_one(op: str, g: Grid, idx: list[int], q: F64 | None) -> tuple[F64, Bools]:
    x, mask = left_align(g.values[idx].T, g.present[idx].T)
    with np.errstate(all="ignore"):
        return _reduce(op, x, mask, q), np.asarray(mask.any(axis=1))


def _reduce(op: str, x: F64, mask: Bools, q: F64 | None) -> F64:
    if op == "sum":
        return wm.kahan_sum(x, mask)
    if op == "avg":
        return wm.kahan_mean(x, mask)
    if op == "count":
        return mask.sum(axis=1).astype(np.float64)
    if op == "group":
        return np.ones(x.shape[0])
    if op == "max":
        return np.fmax.reduce(np.where(mask, x, np.nan), axis=1)
    if op == "min":
        return np.fmin.reduce(np.where(mask, x, np.nan), axis=1)
    if op == "stdvar":
        return wm.variance(x, mask)
    if op == "stddev":
        return np.sqrt(wm.variance(x, mask))
    if op == "quantile" and q is not None:
        return wm.quantile_rows(q, x, mask)
    raise bad_data(f"aggregation {op!r} is not supported")


def _k_values(param: object, n: int) -> F64:
    values = getattr(param, "values", None)
    if values is None:
        raise bad_data("expected a scalar parameter")
    return np.asarray(values, dtype=np.float64)


def _select_rows(
    ev: Evaluator,
    op: str,
    g: Grid,
    groups: dict[tuple[tuple[str, str], ...], tuple[Labels, list[int]]],
    param: object,
    n: int,
) -> Grid:
    """topk/bottomk/limitk/limit_ratio: keep input rows (labels unchanged) where they are selected."""
    k = _k_values(param, n)
    keep = np.zeros_like(g.present)
    order_rank = np.zeros(g.values.shape)
    # The parameter is checked at every step, whether or not the input has series there.
    if op == "limit_ratio":
        if np.isnan(k).any():
            raise execution("Ratio value is NaN")
        bad = k[(k < -1) | (k > 1)]
        if len(bad):
            capped = max(-1.0, min(1.0, float(bad[0])))
            ev.ctx.warn(
                f"ratio value should be between -1 and 1, got {_fmt(float(bad[0]))}, capping to {_fmt(capped)}",
                (op, 0),
            )
    else:
        if np.isnan(k).any():
            raise execution("Parameter value is NaN")
        low = k[k <= -(2.0**63)]
        if len(low):
            raise execution(f"Scalar value {_fmt(float(low[0]))} underflows int64")
        high = k[k >= 2.0**63]
        if len(high):
            raise execution(f"Scalar value {_fmt(float(high[0]))} overflows int64")
    for _, idx_list in groups.values():
        idx = np.array(idx_list)
        for s in range(n):
            p = g.present[idx, s]
            if not p.any():
                continue
            members = idx[p]
            if op == "limit_ratio":
                ratio = float(k[s])
                ratio = max(-1.0, min(1.0, ratio))
                for m in members:
                    h = _ratio_hash(g.labels[m])
                    if (ratio >= 0 and h < ratio) or (ratio < 0 and h >= 1.0 + ratio):
                        keep[m, s] = True
                continue
            kk = int(k[s])
            if kk < 1:
                continue
            vals = g.values[members, s]
            if op == "limitk":
                chosen = members[:kk]
            else:
                nan = np.isnan(vals)
                key = -vals if op == "topk" else vals
                order = np.lexsort((np.where(nan, 0.0, key), nan))
                chosen = members[order[:kk]]
                order_rank[chosen, s] = np.arange(len(chosen))
            keep[chosen, s] = True
    out = Grid(g.labels, g.values, keep, g.drop).compact()
    if n == 1 and op in ("topk", "bottomk"):
        # Instant results come grouped, best first within each group.
        pos = {
            label_key(lab): gi
            for gi, (_, members) in enumerate(groups.values())
            for lab in (g.labels[m] for m in members)
        }
        rank = {label_key(g.labels[i]): order_rank[i, 0] for i in range(g.rows)}
        order = np.array(
            sorted(range(out.rows), key=lambda i: (pos[label_key(out.labels[i])], rank[label_key(out.labels[i])])),
            dtype=np.int64,
        )
        if not len(order):
            return out
        return Grid([out.labels[i] for i in order], out.values[order], out.present[order], out.drop[order])
    return out


def _ratio_hash(labels: Labels) -> float:
    """A stable value in [0, 1) per label set, for limit_ratio's sampling."""
    import hashlib

    digest = hashlib.sha256(repr(label_key(labels)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def format_value(v: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return np.format_float_positional(v, trim="-")


def _count_values(
    g: Grid, groups: dict[tuple[tuple[str, str], ...], tuple[Labels, list[int]]], label: str, n: int
) -> Grid:
    if not valid_label_name(label):
        raise execution(f'invalid label name "{label}"')
    rows: dict[tuple[tuple[str, str], ...], tuple[Labels, F64, Bools]] = {}
    for out, idx in groups.values():
        for i in idx:
            for s in np.flatnonzero(g.present[i]):
                lab = dict(out)
                lab[label] = format_value(float(g.values[i, s]))
                key = label_key(lab)
                if key not in rows:
                    rows[key] = (lab, np.zeros(n), np.zeros(n, dtype=bool))
                _, v, p = rows[key]
                v[s] += 1
                p[s] = True
    if not rows:
        return Grid.empty(n)
    labels = [r[0] for r in rows.values()]
    return Grid(
        labels,
        np.vstack([r[1] for r in rows.values()]),
        np.vstack([r[2] for r in rows.values()]),
        np.zeros(len(labels), dtype=bool),
    )


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v.is_integer() else repr(v)
