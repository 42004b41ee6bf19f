"""Evaluates LogQL: log queries to streams, metric queries to matrices (range) or vectors (instant).

The selector, the time range and the line filters before any `line_format` go to the store (LogSource);
the rest of the pipeline runs here over at most `max_entries` entries. Metric queries follow Loki: a
range aggregation at time t covers the entries with t - offset - range < ts <= t - offset, a series has a
point only where its window held an entry, and the steps of a range query are start, start + step, ... up
to end. A range aggregation whose series carry `__error__` is refused with Loki's pipeline error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from collector.query.logql.ast import (
    BinaryOp,
    Decolorize,
    LabelReplace,
    LineFilter,
    LineFormat,
    Literal,
    LogQuery,
    MetricExpr,
    ParseError,
    Parser,
    Query,
    RangeAggregation,
    Stage,
    VectorAggregation,
)
from collector.query.logql.binops import binary, label_replace
from collector.query.logql.parser import parse
from collector.query.logql.range_functions import CONVERSIONS, over_time
from collector.query.logql.stages import Pipeline
from collector.query.logql.storage import LogSource, Selection
from collector.query.logql.vectors import Grid, QueryError, aggregate
from collector.query.promql.values import QueryResult, Sample, SeriesResult

F64 = npt.NDArray[np.float64]
Key = tuple[tuple[str, str], ...]


SCAN_PAGES = 10  # pages of max_entries a log query with stages evaluated here reads at most


@dataclass
class StreamsResult:
    """Log lines grouped by their final label set; each stream's values in the query's direction."""

    streams: list[tuple[dict[str, str], list[tuple[int, str]]]]
    entries_scanned: int = 0
    bytes_scanned: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class MetricResult:
    result: QueryResult
    entries_scanned: int = 0
    bytes_scanned: int = 0


@dataclass
class _Run:
    steps: npt.NDArray[np.int64]  # evaluation times, ns
    scanned: list[int] = field(default_factory=lambda: [0, 0])


def split_pushdown(stages: tuple[Stage, ...]) -> tuple[tuple[LineFilter, ...], tuple[Stage, ...]]:
    """Line filters the store can apply to the stored line (plain ones before any stage that rewrites the line:
    line_format, decolorize, unpack), and the rest."""
    pushed: list[LineFilter] = []
    rest: list[Stage] = []
    formatted = False
    for stage in stages:
        rewrites = isinstance(stage, LineFormat | Decolorize) or (isinstance(stage, Parser) and stage.kind == "unpack")
        formatted = formatted or rewrites
        if isinstance(stage, LineFilter) and stage.plain and not formatted:
            pushed.append(stage)
        else:
            rest.append(stage)
    return tuple(pushed), tuple(rest)


def _pipeline(stages: tuple[Stage, ...]) -> Pipeline:
    try:
        return Pipeline(stages)
    except ValueError as exc:
        raise QueryError(str(exc)) from None


class LogQLEngine:
    def __init__(self, source: LogSource, max_entries: int = 100_000) -> None:
        self._source = source
        self._max_entries = max_entries

    @staticmethod
    def parse(text: str) -> Query:
        try:
            return parse(text)
        except ParseError as exc:
            raise QueryError(str(exc)) from None

    # -- log queries ------------------------------------------------------------------------------

    def logs(self, query: LogQuery, start_ns: int, end_ns: int, limit: int, backward: bool) -> StreamsResult:
        """Up to `limit` entries in [start, end) after the whole pipeline, newest first when backward.

        When stages run here, entries are read in pages that walk the range in the query's direction, up to
        `max_entries` * SCAN_PAGES entries in all; past that the answer says it is partial (a warning)."""
        pushed, rest = split_pushdown(query.stages)
        pipeline = _pipeline(rest)
        page = limit if not rest else max(limit, self._max_entries)
        result = StreamsResult([])
        streams: dict[Key, tuple[dict[str, str], list[tuple[int, str]]]] = {}
        kept = 0
        for _ in range(SCAN_PAGES if rest else 1):
            entries = self._source.entries(Selection(query.matchers, start_ns, end_ns, pushed, page, backward))
            full = len(entries) == page and bool(rest)  # without stages here, one read of `limit` is all
            last = entries[-1].ts_ns if entries else 0
            # The next page starts at the page's last timestamp and the entries there are left for it, so
            # entries sharing that nanosecond are neither skipped nor read twice (unless a whole page shares it).
            shared = full and entries[0].ts_ns == last
            if full and not shared:
                entries = [e for e in entries if e.ts_ns != last]
            for e in entries:
                result.entries_scanned += 1
                result.bytes_scanned += len(e.line.encode())
                out = pipeline.run(e.line, e.labels(), e.ts_ns)
                if out is None:
                    continue
                line, labels = out
                streams.setdefault(tuple(sorted(labels.items())), (labels, []))[1].append((e.ts_ns, line))
                kept += 1
                if kept >= limit:
                    break
            if kept >= limit or not full:
                break
            if backward:
                end_ns = last if shared else last + 1
            else:
                start_ns = last + 1 if shared else last
        else:
            if rest:
                result.warnings.append(
                    f"only the {'newest' if backward else 'oldest'} {result.entries_scanned} entries were searched; "
                    "narrow the selector or the time range for the rest"
                )
        result.streams = list(streams.values())
        return result

    # -- metric queries ---------------------------------------------------------------------------

    def instant(self, expr: MetricExpr, at_ns: int) -> MetricResult:
        run = _Run(np.array([at_ns], dtype=np.int64))
        grid = self._eval(expr, run)
        ms = at_ns // 1_000_000
        if grid.scalar:
            return MetricResult(QueryResult("scalar", scalar=(ms, float(grid.values[0, 0]))), *run.scanned)
        vector = [
            Sample(labels, ms, float(grid.values[i, 0])) for i, labels in enumerate(grid.labels) if grid.present[i, 0]
        ]
        return MetricResult(QueryResult("vector", vector=vector), *run.scanned)

    def range(self, expr: MetricExpr, start_ns: int, end_ns: int, step_ns: int) -> MetricResult:
        """Evaluated at start, start + step, ... <= end (both inclusive, as Loki's range queries)."""
        if step_ns <= 0:
            raise QueryError("step must be positive")
        count = (end_ns - start_ns) // step_ns + 1
        if count > 11_000:
            raise QueryError(
                "exceeded maximum resolution of 11,000 points per timeseries. Try increasing the value of the "
                "step parameter"
            )
        run = _Run(start_ns + step_ns * np.arange(max(count, 0), dtype=np.int64))
        grid = self._eval(expr, run)
        ms = run.steps // 1_000_000
        if grid.scalar:
            grid = Grid([{}], grid.values, np.ones_like(grid.present))
        matrix = []
        for i, labels in enumerate(grid.labels):
            where = grid.present[i]
            if where.any():
                matrix.append(SeriesResult(labels, ms[where], grid.values[i][where]))
        return MetricResult(QueryResult("matrix", matrix=matrix), *run.scanned)

    def _eval(self, expr: MetricExpr, run: _Run) -> Grid:
        steps = len(run.steps)
        if isinstance(expr, Literal):
            values = np.full((1, steps), expr.value)
            return Grid([{}], values, np.ones((1, steps), dtype=bool), scalar=not expr.vector)
        if isinstance(expr, RangeAggregation):
            return self._range_aggregation(expr, run)
        if isinstance(expr, VectorAggregation):
            pushed = self._pushed_sum(expr, run)
            return pushed if pushed is not None else aggregate(expr, self._eval(expr.expr, run))
        if isinstance(expr, LabelReplace):
            return label_replace(expr, self._eval(expr.expr, run))
        assert isinstance(expr, BinaryOp)
        return binary(expr, self._eval(expr.left, run), self._eval(expr.right, run))

    def _pushed_sum(self, expr: VectorAggregation, run: _Run) -> Grid | None:
        """`sum [by (stream labels)] (f(selector |= ... [r]))` counted in the store, without reading entries;
        None when the query needs the entries here (a pipeline beyond line filters, other labels)."""
        inner = expr.expr
        if expr.op != "sum" or expr.without or not isinstance(inner, RangeAggregation) or not len(run.steps):
            return None
        if inner.fn not in _PUSHED_FUNCTIONS or inner.unwrap or inner.grouping is not None:
            return None
        pushed, rest = split_pushdown(inner.query.stages)
        if rest or not all(self._source.indexed_label(name) for name in expr.grouping):
            return None
        steps = run.steps - inner.offset_ns  # the windows' ends; the answer keeps the steps' own times
        step_ns = int(steps[1] - steps[0]) if len(steps) > 1 else 1
        selection = Selection(inner.query.matchers, int(steps[0]) - inner.range_ns + 1, int(steps[-1]) + 1, pushed)
        # Only bytes_* need line sizes: summing them reads every line, most of a count's cost (counts then
        # report no bytes scanned in the stats).
        totals = self._source.window_totals(
            selection,
            expr.grouping,
            int(steps[0]),
            step_ns,
            len(steps),
            inner.range_ns,
            line_bytes=inner.fn in ("bytes_over_time", "bytes_rate"),
        )
        values = np.zeros((len(totals), len(steps)))
        present = np.zeros((len(totals), len(steps)), dtype=bool)
        seconds = inner.range_ns / 1e9
        for i, t in enumerate(totals):
            k = np.asarray(t.steps, dtype=np.int64)
            counts = np.asarray(t.entries, dtype=np.float64)
            sizes = np.asarray(t.bytes, dtype=np.float64)
            values[i, k] = {
                "count_over_time": counts,
                "rate": counts / seconds,
                "bytes_over_time": sizes,
                "bytes_rate": sizes / seconds,
            }[inner.fn]
            present[i, k] = counts > 0
            run.scanned[0] += int(counts.sum())
            run.scanned[1] += int(sizes.sum())
        return Grid([t.labels for t in totals], values, present)

    def _range_aggregation(self, expr: RangeAggregation, run: _Run) -> Grid:
        steps = run.steps
        if not len(steps):
            return Grid([], np.zeros((0, 0)), np.zeros((0, 0), dtype=bool))
        pushed, rest = split_pushdown(expr.query.stages)
        pipeline = _pipeline(rest)
        post = _pipeline(expr.unwrap.post_filters) if expr.unwrap else None
        # Windows are (t - offset - range, t - offset]; the store's range is [start, end), hence the +1s.
        selection = Selection(
            expr.query.matchers,
            int(steps[0]) - expr.offset_ns - expr.range_ns + 1,
            int(steps[-1]) - expr.offset_ns + 1,
            pushed,
            self._max_entries,
            backward=False,
        )
        entries = self._source.entries(selection)
        if len(entries) >= self._max_entries:
            raise QueryError(
                f"the query would read more than {self._max_entries} log entries; narrow the selector or the time "
                "range, or aggregate with sum by (stream labels) over line filters only, which is counted in the store"
            )
        series: dict[Key, tuple[dict[str, str], list[int], list[float]]] = {}
        for e in entries:
            run.scanned[0] += 1
            run.scanned[1] += len(e.line.encode())
            out = pipeline.run(e.line, e.labels(), e.ts_ns)
            if out is None:
                continue
            line, labels = out
            value = float(len(line.encode()))
            if expr.unwrap is not None and post is not None:
                sample = _unwrapped(expr.unwrap.label, expr.unwrap.conversion, line, labels, e.ts_ns, post)
                if sample is None:
                    continue
                value, labels = sample
            labels = _range_labels(labels, expr)
            s = series.setdefault(tuple(sorted(labels.items())), (labels, [], []))
            s[1].append(e.ts_ns)
            s[2].append(value)
        n = len(series)
        values = np.zeros((n, len(steps)))
        present = np.zeros((n, len(steps)), dtype=bool)
        labels_out = []
        for i, (labels, times, samples) in enumerate(series.values()):
            ts = np.asarray(times, dtype=np.int64)
            order = np.argsort(ts, kind="stable")
            values[i], present[i] = over_time(
                expr.fn,
                ts[order],
                np.asarray(samples, dtype=np.float64)[order],
                steps,
                expr.range_ns,
                expr.offset_ns,
                expr.param,
                unwrapped=expr.unwrap is not None,
            )
            if "__error__" in labels and present[i].any():
                raise QueryError(pipeline_error(labels))
            labels_out.append(labels)
        if expr.fn == "absent_over_time":
            seen = np.asarray(present.any(axis=0), dtype=bool).reshape(1, len(steps))
            return Grid([_absent_labels(expr)], np.ones((1, len(steps))), ~seen)
        return Grid(labels_out, values, present)


_PUSHED_FUNCTIONS = ("count_over_time", "rate", "bytes_over_time", "bytes_rate")


def _unwrapped(
    label: str, conversion: str, line: str, labels: dict[str, str], ts_ns: int, post: Pipeline
) -> tuple[float, dict[str, str]] | None:
    """The sample value of `| unwrap`: None when the label is absent or empty (Loki skips the entry), or when a
    filter after unwrap drops it; a value that does not convert marks the labels with SampleExtractionErr."""
    raw = labels.get(label, "")
    if raw == "":
        return None
    try:
        value = CONVERSIONS[conversion](raw)
    except ValueError as exc:
        value = 0.0
        labels["__error__"] = "SampleExtractionErr"
        labels["__error_details__"] = str(exc)
    out = post.run(line, labels, ts_ns)
    return None if out is None else (value, out[1])


def _range_labels(labels: dict[str, str], expr: RangeAggregation) -> dict[str, str]:
    """The series labels of a range aggregation: `by`/`without` applied, the unwrapped label dropped unless
    named in `by` (Loki's LabelExtractorWithStages); an entry with an error keeps every label."""
    if "__error__" in labels:
        return labels
    names = expr.grouping
    without = expr.without
    if expr.unwrap is not None and (names is None or without):
        names, without = (*(names or ()), expr.unwrap.label), True
    if names is None:
        return labels
    if without:
        return {k: v for k, v in labels.items() if k not in names}
    return {k: labels[k] for k in names if labels.get(k, "") != ""}


def _absent_labels(expr: RangeAggregation) -> dict[str, str]:
    # Loki's absentLabels: equality matchers give labels; a label also named by another matcher is left out.
    out: dict[str, str] = {}
    dropped: set[str] = set()
    for m in expr.query.matchers:
        if m.op == "=" and m.label not in out:
            out[m.label] = m.value
        else:
            dropped.add(m.label)
    return {k: v for k, v in out.items() if k not in dropped}


def pipeline_error(labels: dict[str, str]) -> str:
    """Loki's PipelineError text, naming the series as Prometheus prints label sets."""
    inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items()))
    kind = labels.get("__error__", "")
    return (
        f"pipeline error: '{kind}' for series: '{{{inner}}}'.\n"
        f'Use a label filter to intentionally skip this error. (e.g | __error__!="{kind}").\n'
        'To skip all potential errors you can match empty errors.(e.g __error__="")\n'
        'The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__="" )\n'
    )
