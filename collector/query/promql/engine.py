"""The PromQL engine: instant and range queries evaluated over a whole step grid at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import cast

import numpy as np
import promql_parser as pp

from collector.query.promql import aggregations, batch, binary, functions, selectors
from collector.query.promql.context import EvalContext, SharedValues, step_times
from collector.query.promql.errors import TOO_MANY_SAMPLES, PromQLError, bad_data, execution
from collector.query.promql.parse import Expr, parse_expr
from collector.query.promql.storage import MetricRangeReader, SeriesReader
from collector.query.promql.values import (
    I64,
    Grid,
    QueryResult,
    RangeData,
    Sample,
    ScalarGrid,
    SeriesResult,
    StringValue,
    Value,
    drop_name,
    label_key,
    merge_rows,
)

# Nodes not worth sharing between the queries of a batch: making them costs less than the lookup.
_LEAVES = (pp.NumberLiteral, pp.StringLiteral, pp.ParenExpr)


class Evaluator:
    """Evaluates AST nodes; every node is evaluated once over all the step times it is needed at."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def eval(self, node: Expr, times: I64) -> Value:
        self.ctx.check_deadline()
        if self.ctx.shared is not None and not isinstance(node, _LEAVES):
            value = self._eval_shared(self.ctx.shared, node, times)
        else:
            value = self._eval(node, times)
        # Points held for all steps count against the sample limit too (Prometheus counts the samples in
        # memory, not only those read).
        if isinstance(value, Grid) and value.values.size > self.ctx.max_samples:
            raise execution(TOO_MANY_SAMPLES)
        return value

    def _eval_shared(self, shared: SharedValues, node: Expr, times: I64) -> Value:
        """A sub-expression another query of the batch evaluated at the same times is taken as it was (values
        are never written into once made), its samples counted again. One that added a warning or info is
        not kept: their text names the position in the query it came from."""
        ctx = self.ctx
        key = (str(node), times.tobytes())
        hit = shared.get(key)
        if hit is not None:
            ctx.samples += hit[1]
            if ctx.samples > ctx.max_samples:
                raise execution(TOO_MANY_SAMPLES)
            return cast(Value, hit[0])
        samples, warnings, infos = ctx.samples, len(ctx.warnings), len(ctx.infos)
        value = self._eval(node, times)
        if len(ctx.warnings) == warnings and len(ctx.infos) == infos:
            shared[key] = (value, ctx.samples - samples)
        return value

    def _eval(self, node: Expr, times: I64) -> Value:
        if isinstance(node, pp.NumberLiteral):
            return ScalarGrid(np.full(len(times), float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return StringValue(str(node.val))
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr, times)
        if isinstance(node, pp.UnaryExpr):
            return negate(self.eval(node.expr, times))
        if isinstance(node, pp.VectorSelector):
            return selectors.instant_vector(self.ctx, node, times)
        if isinstance(node, pp.MatrixSelector):
            return selectors.range_vector(self.ctx, node, times)
        if isinstance(node, pp.SubqueryExpr):
            return selectors.subquery(self.ctx, node, times, self.eval)
        if isinstance(node, pp.Call):
            return functions.call(self, node, times)
        if isinstance(node, pp.AggregateExpr):
            return aggregations.aggregate(self, node, times)
        if isinstance(node, pp.BinaryExpr):
            return binary.binary(self, node, times)
        raise bad_data(f"unsupported expression {type(node).__name__}")

    def eval_grid(self, node: Expr, times: I64) -> Grid:
        v = self.eval(node, times)
        if not isinstance(v, Grid):
            raise bad_data(f"expected instant vector, got {type(v).__name__}")
        return v

    def eval_scalar(self, node: Expr, times: I64) -> ScalarGrid:
        v = self.eval(node, times)
        if not isinstance(v, ScalarGrid):
            raise bad_data(f"expected scalar, got {type(v).__name__}")
        return v


def negate(v: Value) -> Value:
    if isinstance(v, ScalarGrid):
        return ScalarGrid(-v.values)
    if isinstance(v, Grid):
        return Grid(v.labels, -v.values, v.present, np.ones(v.rows, dtype=bool))
    raise bad_data("unary minus on a non-numeric value")


class Engine:
    """Evaluates PromQL over a SeriesReader with Prometheus' semantics and limits."""

    def __init__(
        self,
        reader: SeriesReader,
        *,
        lookback_delta_ms: int = 300_000,
        max_samples: int = 50_000_000,
        max_points_per_series: int = 11_000,
        timeout_s: float = 120.0,
    ) -> None:
        self.reader = reader
        self.lookback_delta_ms = lookback_delta_ms
        self.max_samples = max_samples
        self.max_points_per_series = max_points_per_series
        self.timeout_s = timeout_s

    def _context(
        self,
        query: str,
        start_ms: int,
        end_ms: int,
        lookback_delta_ms: int | None,
        cancel: threading.Event | None,
        timeout_s: float | None,
    ) -> EvalContext:
        return EvalContext(
            cancel=cancel,
            reader=self.reader,
            start_ms=start_ms,
            end_ms=end_ms,
            lookback_ms=lookback_delta_ms or self.lookback_delta_ms,
            max_samples=self.max_samples,
            deadline=time.monotonic() + (self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)),
            query=query,
        )

    def instant(
        self,
        query: str,
        time_ms: int,
        *,
        lookback_delta_ms: int | None = None,
        timeout_s: float | None = None,
        cancel: threading.Event | None = None,
        pin_at_ms: int | None = None,
    ) -> QueryResult:
        """Evaluate at one time; a range-vector expression (`x[5m]`) returns a matrix.

        `timeout_s` shortens the engine's timeout for this query (the API's `timeout` parameter); setting
        `cancel` ends it with a `canceled` error (a client that went away). `pin_at_ms` (for conformance
        checks) reads every selector without `@` as if it had `@ pin_at_ms`.
        """
        return self._instant_node(query, parse_expr(query), time_ms, lookback_delta_ms, timeout_s, cancel, pin_at_ms)

    def _instant_node(
        self,
        query: str,
        node: Expr,
        time_ms: int,
        lookback_delta_ms: int | None,
        timeout_s: float | None,
        cancel: threading.Event | None,
        pin_at_ms: int | None = None,
        shared: SharedValues | None = None,
    ) -> QueryResult:
        ctx = self._context(query, time_ms, time_ms, lookback_delta_ms, cancel, timeout_s)
        ctx.pin_ms = pin_at_ms
        ctx.shared = shared
        times = np.array([time_ms], dtype=np.int64)
        with np.errstate(all="ignore"):  # IEEE semantics (x/0, 0/0, log(-1)) are PromQL's: no warnings
            value = Evaluator(ctx).eval(node, times)
        result = _instant_result(value, time_ms)
        result.warnings, result.infos = ctx.warnings, ctx.infos
        return result

    def instant_many(
        self,
        queries: Sequence[str],
        time_ms: int,
        *,
        lookback_delta_ms: int | None = None,
        timeout_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> list[QueryResult | PromQLError]:
        """Evaluate many queries at one time, each answered as `instant` answers it alone, or with its own
        error. When the reader can read whole metrics (MetricRangeReader), the metrics every selector
        names are read once for all of them (batch.py); a sub-expression several queries share (a rule's
        expression at warning and critical thresholds) is evaluated once. `timeout_s` bounds the batch."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s))
        lookback = lookback_delta_ms or self.lookback_delta_ms
        nodes: list[Expr | PromQLError] = []
        for query in queries:
            try:
                nodes.append(parse_expr(query))
            except PromQLError as exc:
                nodes.append(exc)
        reader = self.reader
        if isinstance(reader, MetricRangeReader):
            planned = batch.plan_reads([n for n in nodes if not isinstance(n, PromQLError)], time_ms, lookback)
            reader = batch.Prefetched(reader, reader, planned)
        engine = Engine(
            reader,
            lookback_delta_ms=lookback,
            max_samples=self.max_samples,
            max_points_per_series=self.max_points_per_series,
            timeout_s=self.timeout_s,
        )
        # Sub-expressions are shared by their printed text, which does not escape quotes in strings: a batch
        # with a string that could hold one (an escape, or other quotes) shares nothing.
        shared: SharedValues | None = None if any(c in q for q in queries for c in "\\'`") else {}
        out: list[QueryResult | PromQLError] = []
        for query, node in zip(queries, nodes, strict=True):
            if isinstance(node, PromQLError):
                out.append(node)
                continue
            remaining = deadline - time.monotonic()
            try:
                out.append(engine._instant_node(query, node, time_ms, lookback, remaining, cancel, None, shared))
            except PromQLError as exc:
                out.append(exc)
        return out

    def range(
        self,
        query: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        lookback_delta_ms: int | None = None,
        timeout_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> QueryResult:
        """Evaluate at start, start+step, ... <= end; the result is always a matrix sorted by labels."""
        if step_ms <= 0:
            raise bad_data("zero or negative query resolution step widths are not accepted. Try a positive integer")
        if end_ms < start_ms:
            raise bad_data("end timestamp must not be before start time")
        if (end_ms - start_ms) // step_ms + 1 > self.max_points_per_series:
            raise bad_data(
                f"exceeded maximum resolution of {self.max_points_per_series:,} points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        node = parse_expr(query, step_ms=step_ms, range_ms=end_ms - start_ms)
        ctx = self._context(query, start_ms, end_ms, lookback_delta_ms, cancel, timeout_s)
        ctx.step_ms = step_ms
        times = step_times(start_ms, end_ms, step_ms)
        with np.errstate(all="ignore"):  # IEEE semantics (x/0, 0/0, log(-1)) are PromQL's: no warnings
            value = Evaluator(ctx).eval(node, times)
        if isinstance(value, ScalarGrid):
            value = Grid([{}], value.values[None, :], np.ones((1, len(times)), dtype=bool), np.zeros(1, dtype=bool))
        if not isinstance(value, Grid):
            raise bad_data(
                f'invalid expression type "{_type_name(value)}" for range query, must be Scalar or instant Vector'
            )
        grid = merge_rows(value, finalize=True)
        matrix = [
            SeriesResult(grid.labels[i], times[grid.present[i]], grid.values[i][grid.present[i]])
            for i in range(grid.rows)
            if grid.present[i].any()
        ]
        matrix.sort(key=lambda s: label_key(s.labels))
        return QueryResult("matrix", matrix=matrix, warnings=ctx.warnings, infos=ctx.infos)


def _type_name(v: Value) -> str:
    return {Grid: "vector", ScalarGrid: "scalar", StringValue: "string", RangeData: "range vector"}[type(v)]


def _instant_result(value: Value, time_ms: int) -> QueryResult:
    if isinstance(value, ScalarGrid):
        return QueryResult("scalar", scalar=(time_ms, float(value.values[0])))
    if isinstance(value, StringValue):
        return QueryResult("string", string=(time_ms, value.value))
    if isinstance(value, RangeData):
        matrix = []
        for i, labels in enumerate(value.labels):
            lo, hi = value.windows(i)
            if hi[0] > lo[0]:
                lab = drop_name(labels) if value.drop[i] else labels
                matrix.append(SeriesResult(lab, value.timestamps[i][lo[0] : hi[0]], value.values[i][lo[0] : hi[0]]))
        matrix.sort(key=lambda s: label_key(s.labels))
        return QueryResult("matrix", matrix=matrix)
    grid = merge_rows(value, finalize=True)
    vector = [Sample(grid.labels[i], time_ms, float(grid.values[i, 0])) for i in range(grid.rows) if grid.present[i, 0]]
    return QueryResult("vector", vector=vector)


__all__ = ["Engine", "PromQLError", "QueryResult"]
