"""Many instant queries at one time over one store read: the metrics their selectors name are read once,
then every query is evaluated against what was read (a rule group evaluated per request).

Planning walks each expression as the evaluator will (lookback, ranges, offset, @, subquery steps) and
gathers, per metric name, the time range covering every read of it. Selectors without an exact
`__name__="..."` in each alternative are not planned. `Prefetched` answers a selection from the read
when its metric was read over a range covering the selection's, and from the store otherwise, so a read
the plan did not foresee (info(), a selector by labels only) is still answered correctly, only slower.
Label matchers are applied in memory with the engine's own matcher semantics (memory_reader), series
kept in label order as the store returns them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import promql_parser as pp

from collector.query.promql.memory_reader import matcher_holds
from collector.query.promql.parse import Expr, duration_ms, selector_matchers, selector_mode, time_ms
from collector.query.promql.regex import compile_go
from collector.query.promql.selectors import DEFAULT_SUBQUERY_STEP_MS
from collector.query.promql.storage import (
    STALE_NAN_BITS,
    Matcher,
    MetricRangeReader,
    SeriesBlock,
    SeriesData,
    SeriesReader,
)
from collector.query.promql.values import label_key

NAME = "__name__"
# Composite sort key of a sample: series index in the high bits, milliseconds since the read's first
# sample in the low 40 (about 35 years), so one searchsorted finds every series' window at once.
_SHIFT = 40
_SPAN = (1 << _SHIFT) - 1

Ranges = dict[str, tuple[int, int]]


def plan_reads(nodes: Sequence[Expr], time_ms: int, lookback_ms: int) -> Ranges:
    """Per metric name, the inclusive millisecond range covering every read of the instant queries at `time_ms`."""
    ranges: Ranges = {}
    for node in nodes:
        _walk(node, time_ms, time_ms, time_ms, lookback_ms, ranges)
    return ranges


def _shifted(node: Expr, lo: int, hi: int, query_ms: int) -> tuple[int, int]:
    """The effective times of a selector or subquery evaluated over [lo, hi] (as selectors.effective_times)."""
    at = node.at
    if at is not None:
        kind = str(at.type)
        pinned = query_ms if kind.endswith("Start") or kind.endswith("End") else time_ms(at.at)
        lo = hi = pinned
    off = duration_ms(node.offset)
    return lo - off, hi - off


def _add(ranges: Ranges, node: Expr, start: int, end: int) -> None:
    names = set()
    for alternative in selector_matchers(node):
        name = next((m.value for m in alternative if m.name == NAME and m.op == "="), None)
        if name is None:
            return  # not by name: left to the store
        names.add(name)
    for name in names:
        lo, hi = ranges.get(name, (start, end))
        ranges[name] = (min(lo, start), max(hi, end))


def _walk(node: Expr, lo: int, hi: int, query_ms: int, lookback: int, ranges: Ranges) -> None:
    """Reads of `node` evaluated at every time in [lo, hi] (milliseconds)."""
    if isinstance(node, pp.VectorSelector):
        te_lo, te_hi = _shifted(node, lo, hi, query_ms)
        after = lookback if selector_mode(node) == "smoothed" else 0
        _add(ranges, node, te_lo - lookback + 1, te_hi + after)
    elif isinstance(node, pp.MatrixSelector):
        vs = node.vector_selector
        te_lo, te_hi = _shifted(vs, lo, hi, query_ms)
        mode = selector_mode(vs)
        before = lookback if mode else 0
        after = lookback if mode == "smoothed" else 0
        _add(ranges, vs, te_lo - duration_ms(node.range) - before + 1, te_hi + after)
    elif isinstance(node, pp.SubqueryExpr):
        te_lo, te_hi = _shifted(node, lo, hi, query_ms)
        step = duration_ms(node.step) or DEFAULT_SUBQUERY_STEP_MS
        start = ((te_lo - duration_ms(node.range)) // step + 1) * step
        if start <= te_hi:
            _walk(node.expr, start, te_hi, query_ms, lookback, ranges)
    elif isinstance(node, (pp.ParenExpr, pp.UnaryExpr)):
        _walk(node.expr, lo, hi, query_ms, lookback, ranges)
    elif isinstance(node, pp.Call):
        for arg in node.args:
            _walk(arg, lo, hi, query_ms, lookback, ranges)
    elif isinstance(node, pp.AggregateExpr):
        _walk(node.expr, lo, hi, query_ms, lookback, ranges)
        if node.param is not None:
            _walk(node.param, lo, hi, query_ms, lookback, ranges)
    elif isinstance(node, pp.BinaryExpr):
        _walk(node.lhs, lo, hi, query_ms, lookback, ranges)
        _walk(node.rhs, lo, hi, query_ms, lookback, ranges)


@dataclass
class _Metric:
    """One metric's series in the read: global series indices in label order, and equality indexes."""

    rows: np.ndarray  # int64 indices into the read's series, sorted by label set
    labels: list[dict[str, str]]  # the same order
    by_value: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # label -> value -> positions

    def positions_with(self, label: str, value: str) -> np.ndarray:
        index = self.by_value.get(label)
        if index is None:
            groups: dict[str, list[int]] = {}
            for pos, labels in enumerate(self.labels):
                groups.setdefault(labels.get(label, ""), []).append(pos)
            index = self.by_value[label] = {v: np.array(p, dtype=np.int64) for v, p in groups.items()}
        return index.get(value, np.zeros(0, dtype=np.int64))


class Prefetched:
    """A SeriesReader over one read of whole metrics, falling back to the store for anything else."""

    def __init__(self, store: SeriesReader, block_reader: MetricRangeReader, ranges: Ranges) -> None:
        self._store = store
        self._ranges = ranges
        block = block_reader.select_metrics(ranges) if ranges else None
        if block is None:
            block = SeriesBlock([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), np.zeros(1, np.int64))
        self._metrics: dict[str, _Metric] = {}
        self._regex: dict[str, re.Pattern[str]] = {}
        self._ts, self._values, self._starts = block.timestamps, block.values, block.starts
        counts = np.diff(block.starts)
        series = np.repeat(np.arange(len(block.labels), dtype=np.int64), counts)
        base = int(block.timestamps.min()) if len(block.timestamps) else 0
        self._base = base
        self._keys = (series << _SHIFT) + (block.timestamps - base)
        stale = block.values.view(np.uint64) == np.uint64(STALE_NAN_BITS)
        self._stale_before = np.r_[0, np.cumsum(stale)].astype(np.int64)
        by_name: dict[str, list[tuple[tuple[tuple[str, str], ...], int]]] = {}
        for i, labels in enumerate(block.labels):
            by_name.setdefault(labels.get(NAME, ""), []).append((label_key(labels), i))
        for name, keyed in by_name.items():
            keyed.sort()
            rows = np.array([i for _, i in keyed], dtype=np.int64)
            self._metrics[name] = _Metric(rows, [block.labels[i] for i in rows.tolist()])

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        name = next((m.value for m in matchers if m.name == NAME and m.op == "="), None)
        covered = self._ranges.get(name) if name is not None else None
        if covered is None or start_ms < covered[0] or end_ms > covered[1]:
            return self._store.select(matchers, start_ms, end_ms)
        metric = self._metrics.get(name) if name is not None else None
        if metric is None or end_ms < start_ms:
            return []
        positions = self._matching(metric, matchers)
        if len(positions) == 0:
            return []
        rows = metric.rows[positions]
        shifted = rows << _SHIFT
        lo = np.searchsorted(self._keys, shifted + min(max(start_ms - self._base, 0), _SPAN), side="left")
        hi = np.searchsorted(self._keys, shifted + min(max(end_ms - self._base, -1), _SPAN), side="right")
        clean = (self._stale_before[hi] - self._stale_before[lo]) == 0
        out = []
        for p, a, b, ok in zip(positions.tolist(), lo.tolist(), hi.tolist(), clean.tolist(), strict=True):
            if b > a:
                out.append(SeriesData(dict(metric.labels[p]), self._ts[a:b], self._values[a:b], stale_free=ok))
        return out

    def _matching(self, metric: _Metric, matchers: Sequence[Matcher]) -> np.ndarray:
        """Positions (in label order) of the metric's series that every matcher holds for."""
        positions: np.ndarray | None = None
        rest = []
        for m in matchers:
            if m.name == NAME and m.op == "=":
                continue
            if m.op == "=":
                found = metric.positions_with(m.name, m.value)
                positions = found if positions is None else np.intersect1d(positions, found, assume_unique=True)
            elif m.op == "!=":
                every = np.arange(len(metric.labels), dtype=np.int64) if positions is None else positions
                positions = np.setdiff1d(every, metric.positions_with(m.name, m.value), assume_unique=True)
            else:
                rest.append(m)
        if positions is None:
            positions = np.arange(len(metric.labels), dtype=np.int64)
        if rest and len(positions):
            compiled = [self._compiled(m) for m in rest]
            keep = [
                p
                for p in positions.tolist()
                if all(matcher_holds(m, metric.labels[p], c) for m, c in zip(rest, compiled, strict=True))
            ]
            positions = np.array(keep, dtype=np.int64)
        return positions

    def _compiled(self, m: Matcher) -> re.Pattern[str] | None:
        if m.op not in ("=~", "!~"):
            return None
        pattern = self._regex.get(m.value)
        if pattern is None:
            pattern = self._regex[m.value] = compile_go(m.value)
        return pattern
