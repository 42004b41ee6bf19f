"""info() (experimental): add the data labels of info series (default `target_info`) to the series they
describe, joined on the identifying labels `instance` and `job`, as Prometheus' metric-join path does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import promql_parser as pp

from collector.query.promql.errors import bad_data, execution
from collector.query.promql.memory_reader import matcher_holds
from collector.query.promql.parse import Expr, duration_ms, selector_matchers, unwrap_parens
from collector.query.promql.selectors import effective_times
from collector.query.promql.storage import Matcher
from collector.query.promql.values import F64, I64, NAME, Bools, Grid, Labels, is_stale, label_key, merge_rows

if TYPE_CHECKING:
    from collector.query.promql.engine import Evaluator

TARGET_INFO = "target_info"
IDENTIFYING = ("instance", "job")


def _first_selector(node: Expr, at: Expr | None = None) -> tuple[Expr, Expr | None] | None:
    """The first vector selector in the expression, and the `@` of an enclosing subquery: the info series
    are read at the selector's times (its `@`, else the subquery's, and its offset)."""
    node = unwrap_parens(node)
    if isinstance(node, pp.VectorSelector):
        return node, at
    if isinstance(node, pp.MatrixSelector):
        return node.vector_selector, at
    if isinstance(node, pp.SubqueryExpr) and node.at is not None:
        at = node
    for attr in ("expr", "lhs", "rhs", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str | int | float):
            found = _first_selector(child, at)
            if found is not None:
                return found
    for child in getattr(node, "args", None) or []:
        found = _first_selector(child, at)
        if found is not None:
            return found
    return None


def info(ev: Evaluator, node: Expr, times: I64) -> Grid:
    base = ev.eval_grid(node.args[0], times)
    n = len(times)
    data_matchers: dict[str, list[Matcher]] = {}
    if len(node.args) > 1:
        selector = unwrap_parens(node.args[1])
        if not isinstance(selector, pp.VectorSelector):
            raise bad_data("info() needs a label selector as its second argument")
        for m in selector_matchers(selector)[0]:
            data_matchers.setdefault(m.name, []).append(m)
    name_matchers = data_matchers.pop(NAME, None)
    info_names = name_matchers or [Matcher(NAME, "=", TARGET_INFO)]
    # Info series themselves (names matching every name matcher) are not enriched.
    ignored = np.array(
        [all(matcher_holds(m, {NAME: lab.get(NAME, "")}) for m in info_names) for lab in base.labels], dtype=bool
    )
    id_values: dict[str, set[str]] = {}
    for i, lab in enumerate(base.labels):
        if not ignored[i]:
            for name in IDENTIFYING:
                if lab.get(name):
                    id_values.setdefault(name, set()).add(lab[name])
    infos = _info_series(ev, node, times, info_names, data_matchers, id_values) if id_values else None
    labels: list[Labels] = []
    values: list[F64] = []
    present: list[Bools] = []
    drop: list[bool] = []
    requires_match = any(not matcher_holds(m, {}) for ms in data_matchers.values() for m in ms)
    for i, lab in enumerate(base.labels):
        if ignored[i] or infos is None:
            if not ignored[i] and requires_match:
                continue
            labels.append(lab)
            values.append(base.values[i])
            present.append(base.present[i])
            drop.append(bool(base.drop[i]))
            continue
        # Per step, the data labels the matching info series add; rows with equal additions are merged.
        by_added: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        for s in np.flatnonzero(base.present[i]):
            added = _added_labels(lab, infos, int(s), data_matchers)
            if added is None:
                continue
            by_added.setdefault(label_key(added), np.zeros(n, dtype=bool))[s] = True
        for key, mask in by_added.items():
            labels.append({**lab, **dict(key)})
            values.append(base.values[i])
            present.append(mask)
            drop.append(bool(base.drop[i]))
    if not labels:
        return Grid.empty(n)
    return merge_rows(Grid(labels, np.vstack(values), np.vstack(present), np.array(drop, dtype=bool)))


class _InfoSeries:
    """Info series at every step: labels, and per step the timestamp of the sample in the lookback."""

    def __init__(self, labels: list[Labels], sample_ts: np.ndarray, present: np.ndarray) -> None:
        self.labels, self.sample_ts, self.present = labels, sample_ts, present


def _info_series(
    ev: Evaluator,
    node: Expr,
    times: I64,
    info_names: list[Matcher],
    data_matchers: dict[str, list[Matcher]],
    id_values: dict[str, set[str]],
) -> _InfoSeries:
    ctx = ev.ctx
    anchor = _first_selector(node.args[0])
    te = times
    if anchor is not None:
        selector, subquery = anchor
        if selector.at is None and subquery is not None:
            # Inside a subquery with `@`: its time, then the selector's own offset.
            te = effective_times(ctx, subquery, times) + duration_ms(subquery.offset) - duration_ms(selector.offset)
        else:
            te = effective_times(ctx, selector, te)
    matchers = [Matcher(name, "=~", "|".join(re.escape(v) for v in sorted(vals))) for name, vals in id_values.items()]
    matchers += info_names + [m for ms in data_matchers.values() for m in ms]
    series = ctx.select([matchers], int(te.min()) - ctx.lookback_ms + 1, int(te.max()))
    labels, stamps, present = [], [], []
    for s in series:
        idx = np.searchsorted(s.timestamps, te, side="right") - 1
        ok = idx >= 0
        idx = np.maximum(idx, 0)
        ok &= s.timestamps[idx] > te - ctx.lookback_ms
        ok &= ~is_stale(s.values[idx])
        if ok.any():
            labels.append(s.labels)
            stamps.append(s.timestamps[idx])
            present.append(ok)
    if not labels:
        return _InfoSeries([], np.zeros((0, len(times)), dtype=np.int64), np.zeros((0, len(times)), dtype=bool))
    return _InfoSeries(labels, np.vstack(stamps), np.vstack(present))


def _signature(name: str, labels: Labels) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple((k, labels[k]) for k in IDENTIFYING if labels.get(k))


def _added_labels(
    base: Labels, infos: _InfoSeries, step: int, data_matchers: dict[str, list[Matcher]]
) -> Labels | None:
    """The labels info series add to `base` at `step`; None when the sample is dropped (a data matcher
    needs a value and no info series supplied one)."""
    newest: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for j, lab in enumerate(infos.labels):
        if not infos.present[j, step]:
            continue
        sig = _signature(lab.get(NAME, ""), lab)
        k = newest.get(sig)
        if k is None or infos.sample_ts[j, step] > infos.sample_ts[k, step]:
            newest[sig] = j
        elif infos.sample_ts[j, step] == infos.sample_ts[k, step]:
            raise execution(f"found duplicate series for info metric {lab.get(NAME, '')}")
    added: Labels = {}
    found = False
    names = sorted({sig[0] for sig in newest})
    for name in names:
        match = newest.get(_signature(name, base))
        if match is None:
            continue
        found = True
        for label, value in infos.labels[match].items():
            if label == NAME or (data_matchers and label not in data_matchers):
                continue
            if added.get(label, value) != value:
                raise execution(f"conflicting label: {label}")
            if label not in base:
                added[label] = value
    # Without a matching info series, a data matcher that needs a value drops the sample.
    if not found and any(not matcher_holds(m, {}) for ms in data_matchers.values() for m in ms):
        return None
    return added
