"""PromQL function calls: dispatch, and the element-wise, label, sort and conversion functions."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import promql_parser as pp

from collector.query.promql import datetime_functions, functions_over_time, histograms, info_function
from collector.query.promql.errors import bad_data, execution
from collector.query.promql.parse import Expr, equality_labels, unwrap_parens
from collector.query.promql.regex import compile_go
from collector.query.promql.selectors import sample_timestamps
from collector.query.promql.values import (
    F64,
    I64,
    NAME,
    Bools,
    Grid,
    Labels,
    ScalarGrid,
    StringValue,
    Value,
    label_key,
    merge_rows,
    valid_label_name,
)

if TYPE_CHECKING:
    from collector.query.promql.engine import Evaluator


# Element-wise functions: value -> value, the metric name is dropped.
_ELEMENTWISE: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "sgn": np.sign,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "deg": np.degrees,
    "rad": np.radians,
}


def _with_values(g: Grid, values: F64, *, drop: bool = True) -> Grid:
    return Grid(g.labels, values, g.present, np.ones(g.rows, dtype=bool) if drop else g.drop)


def call(ev: Evaluator, node: Expr, times: I64) -> Value:
    name = node.func.name
    args = list(node.args)
    ctx = ev.ctx
    n = len(times)
    if name in _ELEMENTWISE:
        g = ev.eval_grid(args[0], times)
        with np.errstate(all="ignore"):
            return _with_values(g, _ELEMENTWISE[name](g.values))
    if name in functions_over_time.RANGE_FUNCTIONS:
        return functions_over_time.evaluate(ev, name, args, times)
    if name in datetime_functions.DATE_FUNCTIONS:
        if args:
            g = ev.eval_grid(args[0], times)
        else:
            g = Grid([{}], (times / 1000.0)[None, :], np.ones((1, n), dtype=bool), np.zeros(1, dtype=bool))
        return _with_values(g, datetime_functions.DATE_FUNCTIONS[name](g.values))
    if name == "time":
        return ScalarGrid(times / 1000.0)
    if name == "pi":
        return ScalarGrid(np.full(n, math.pi))
    if name in ("start", "end", "step", "range"):
        return ScalarGrid(np.full(n, _query_bound(ev, name, times)))
    if name == "vector":
        s = ev.eval_scalar(args[0], times)
        return Grid([{}], s.values[None, :].copy(), np.ones((1, n), dtype=bool), np.zeros(1, dtype=bool))
    if name == "scalar":
        g = ev.eval_grid(args[0], times)
        count = g.present.sum(axis=0)
        vals = np.where(g.present, g.values, 0.0).sum(axis=0) if g.rows else np.zeros(n)
        return ScalarGrid(np.where(count == 1, vals, np.nan))
    if name == "timestamp":
        inner = unwrap_parens(args[0])
        if isinstance(inner, pp.VectorSelector):
            return sample_timestamps(ctx, inner, times)
        g = ev.eval_grid(args[0], times)
        return _with_values(g, np.broadcast_to(times / 1000.0, g.values.shape).copy())
    if name in ("round",):
        g = ev.eval_grid(args[0], times)
        to_nearest = ev.eval_scalar(args[1], times).values if len(args) > 1 else np.ones(n)
        with np.errstate(all="ignore"):
            inv = 1.0 / to_nearest
            vals = np.floor(g.values * inv + 0.5) / inv
        return _with_values(g, vals)
    if name in ("clamp", "clamp_min", "clamp_max"):
        return _clamp(ev, name, args, times)
    if name in ("sort", "sort_desc"):
        return _sort(ev, name, args, times)
    if name in ("sort_by_label", "sort_by_label_desc"):
        return _sort_by_label(ev, name, args, times)
    if name == "label_replace":
        return _label_replace(ev, args, times)
    if name == "label_join":
        return _label_join(ev, args, times)
    if name == "absent":
        g = ev.eval_grid(args[0], times)
        inner = unwrap_parens(args[0])
        labels = equality_labels(inner) if isinstance(inner, pp.VectorSelector) else {}
        absent: Bools = np.asarray(~g.present.any(axis=0)) if g.rows else np.ones(n, dtype=bool)
        return Grid([labels], np.ones((1, n)), absent.reshape(1, n), np.zeros(1, dtype=bool))
    if name in ("min_of", "max_of"):
        a, b = (ev.eval_scalar(x, times).values for x in args)
        with np.errstate(all="ignore"):
            out = np.minimum(a, b) if name == "min_of" else np.maximum(a, b)  # NaN wins, as Go's math.Min
        return ScalarGrid(out)
    if name == "histogram_quantiles":
        return histograms.histogram_quantiles(ev, node, times)
    if name == "info":
        return info_function.info(ev, node, times)
    if name == "histogram_quantile":
        return histograms.histogram_quantile(ev, node, times)
    if name == "histogram_fraction":
        return histograms.histogram_fraction(ev, node, times)
    if name.startswith("histogram_"):
        # Native-histogram functions: float samples give no output.
        ev.eval(args[-1], times)
        return Grid.empty(n)
    raise bad_data(f"function {name!r} is not supported")


def _query_bound(ev: Evaluator, name: str, times: I64) -> float:
    ctx = ev.ctx
    step = ctx.step_ms / 1000.0
    return {
        "start": ctx.start_ms / 1000.0,
        "end": ctx.end_ms / 1000.0,
        "step": step,
        "range": (ctx.end_ms - ctx.start_ms) / 1000.0,
    }[name]


def _clamp(ev: Evaluator, name: str, args: list[Expr], times: I64) -> Grid:
    g = ev.eval_grid(args[0], times)
    lo = ev.eval_scalar(args[1], times).values if name in ("clamp", "clamp_min") else None
    hi = ev.eval_scalar(args[2 if name == "clamp" else 1], times).values if name in ("clamp", "clamp_max") else None
    vals = g.values.copy()
    present = g.present.copy()
    with np.errstate(all="ignore"):
        if lo is not None:
            vals = np.where(np.isnan(vals), vals, np.maximum(vals, lo))
            vals = np.where(np.isnan(lo), np.nan, vals)
        if hi is not None:
            vals = np.where(np.isnan(vals), vals, np.minimum(vals, hi))
            vals = np.where(np.isnan(hi), np.nan, vals)
    if lo is not None and hi is not None:
        # clamp with min > max returns an empty vector.
        present &= ~(lo > hi)[None, :]
    return Grid(g.labels, vals, present, np.ones(g.rows, dtype=bool))


def _sort(ev: Evaluator, name: str, args: list[Expr], times: I64) -> Grid:
    g = ev.eval_grid(args[0], times)
    if len(times) > 1:
        ev.ctx.warn("sort is ineffective for range queries since results are always ordered by labels", (name, None))
        return g
    v = g.values[:, 0]
    # NaN sorts last in both directions, as Prometheus does.
    nan = np.isnan(v)
    key = np.where(nan, 0.0, v)
    order = np.lexsort((-key if name == "sort_desc" else key, nan))
    return Grid([g.labels[i] for i in order], g.values[order], g.present[order], g.drop[order])


def _sort_by_label(ev: Evaluator, name: str, args: list[Expr], times: I64) -> Grid:
    g = ev.eval_grid(args[0], times)
    keys = [_string(ev, a, times) for a in args[1:]]
    if len(times) > 1:
        ev.ctx.warn("sort is ineffective for range queries since results are always ordered by labels", (name, None))
        return g

    def key(i: int) -> tuple[Any, ...]:
        lab = g.labels[i]
        return (*[natural_key(lab.get(k, "")) for k in keys], label_key(lab))

    order = sorted(range(g.rows), key=key, reverse=name == "sort_by_label_desc")
    idx = np.array(order, dtype=np.int64)
    if not len(idx):
        return g
    return Grid([g.labels[i] for i in idx], g.values[idx], g.present[idx], g.drop[idx])


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Natural sort order: runs of digits compare as numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def _string(ev: Evaluator, node: Expr, times: I64) -> str:
    v = ev.eval(node, times)
    if not isinstance(v, StringValue):
        raise bad_data("expected a string argument")
    return v.value


def _relabel(g: Grid, new_labels: list[Labels], dst: str) -> Grid:
    """Rows with new label sets; targeting __name__ keeps the (new) name even where it was marked for removal."""
    drop = g.drop.copy()
    if dst == NAME:
        drop[:] = False
    out = Grid(new_labels, g.values, g.present, drop)
    return merge_rows(out)


def _label_replace(ev: Evaluator, args: list[Expr], times: I64) -> Grid:
    g = ev.eval_grid(args[0], times)
    dst, repl, src, regex = (_string(ev, a, times) for a in args[1:5])
    try:
        pattern = compile_go(regex)
    except re.error as exc:
        raise execution(f"invalid regular expression in label_replace(): {regex}") from exc
    if not valid_label_name(dst):
        raise execution(f"invalid destination label name in label_replace(): {dst}")
    new_labels: list[Labels] = []
    for lab in g.labels:
        m = pattern.fullmatch(lab.get(src, ""))
        if m is None:
            new_labels.append(lab)
            continue
        value = _go_expand(m, repl)
        nl = dict(lab)
        if value:
            nl[dst] = value
        else:
            nl.pop(dst, None)
        new_labels.append(nl)
    return _relabel(g, new_labels, dst)


def _go_expand(m: re.Match[str], repl: str) -> str:
    """Go's regexp.Expand: `$1`, `${1}`, `$name` (the longest name), `$$`; unknown groups expand to ""."""
    out: list[str] = []
    i = 0
    while i < len(repl):
        c = repl[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if repl.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        gm = re.match(r"\$\{([a-zA-Z0-9_]+)\}|\$([a-zA-Z0-9_]+)", repl[i:])
        if gm is None:
            out.append("$")
            i += 1
            continue
        name = gm.group(1) or gm.group(2)
        i += gm.end()
        try:
            group = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, KeyError):
            group = None
        out.append(group or "")
    return "".join(out)


def _label_join(ev: Evaluator, args: list[Expr], times: I64) -> Grid:
    g = ev.eval_grid(args[0], times)
    dst, sep = _string(ev, args[1], times), _string(ev, args[2], times)
    srcs = [_string(ev, a, times) for a in args[3:]]
    new_labels: list[Labels] = []
    for lab in g.labels:
        value = sep.join(lab.get(s, "") for s in srcs)
        nl = dict(lab)
        if value:
            nl[dst] = value
        else:
            nl.pop(dst, None)
        new_labels.append(nl)
    return _relabel(g, new_labels, dst)
