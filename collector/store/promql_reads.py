"""Metric reads for PromQL and the Prometheus HTTP API: selectors pushed down into ClickHouse.

Implements the engine's `SeriesReader` seam (collector/query/promql/storage.py) and the lookups the
API answers from (label names and values, series, metadata, exemplars). Matchers become SQL
conditions: the metric name on `MetricName` (the sort key of every metric table), other labels on the
`Labels` map, where a missing key reads as "" so an empty-value matcher matches an absent label, as in
Prometheus. Label values and regexes reach ClickHouse only as bound parameters (`{p0:String}`), never
as SQL text. Regexes are anchored and `.` matches a newline, `^(?s:...)$`, as in Prometheus 3 and the
engine's in-memory reader (2.x anchored `^(?:...)$`; only label values with newlines differ).
ClickHouse's `match` is RE2, the syntax of Prometheus' Go regexp. Time bounds are inclusive milliseconds.

Selectors whose range the head holds (store/head.py: the recent samples in memory) are answered from
it, with the same results; older ranges from the store. Samples come back as numpy columns
(`Engine.query_columns`: ClickHouse's Native format on chDB), and series labels from a cache by
fingerprint once seen, so a query over known series is one SQL read.
Aggregation is not pushed into ClickHouse: for rate() over a range query, a GROUP BY per (series, step)
in chDB measured 2-3x slower than reading the raw samples (bench/promql_range.py), so the engine gets
the samples and reduces them with numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from collector.query.promql.storage import STALE_NAN_BITS, Matcher, SeriesBlock, SeriesData
from collector.store.engine import Engine
from collector.store.head import SampleHead

NAME = "__name__"
# Bounds for "no time restriction" that still fit Int64 parameters.
MIN_MS = -(2**62)
MAX_MS = 2**62
# Fingerprints whose labels MetricReads keeps in memory (about 1 KiB each).
LABEL_CACHE_SIZE = 200_000
# Series whose position in label order MetricReads keeps, over all sets of series (16 bytes each).
ORDER_CACHE_SERIES = 1_000_000


@dataclass(frozen=True)
class Exemplar:
    labels: dict[str, str]
    value: float
    timestamp_ms: int


@dataclass
class SeriesExemplars:
    series_labels: dict[str, str]
    exemplars: list[Exemplar]


@dataclass(frozen=True)
class MetricMetadataRow:
    metric: str
    type: str
    help: str
    unit: str


class _Where:
    """Builds WHERE clauses from matchers, collecting the bound parameters as it goes."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any, sql_type: str) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{sql_type}}}"

    def matcher(self, m: Matcher, column: str) -> str:
        if m.op in ("=~", "!~"):
            test = f"match({column}, {self.bind('^(?s:' + m.value + ')$', 'String')})"
            return test if m.op == "=~" else f"NOT {test}"
        return f"{column} {'=' if m.op == '=' else '!='} {self.bind(m.value, 'String')}"

    def label_column(self, name: str) -> str:
        return "MetricName" if name == NAME else f"Labels[{self.bind(name, 'String')}]"

    def split(self, matchers: Sequence[Matcher]) -> tuple[list[str], list[str]]:
        """(conditions on MetricName, conditions on Labels) for one selector."""
        on_name = [self.matcher(m, "MetricName") for m in matchers if m.name == NAME]
        on_labels = [self.matcher(m, self.label_column(m.name)) for m in matchers if m.name != NAME]
        return on_name, on_labels

    def series_filter(self, selectors: Sequence[Sequence[Matcher]]) -> str:
        """A condition on metrics_series rows: any selector matches (match[] parameters are OR-ed)."""
        if not selectors:
            return "1"
        parts = []
        for matchers in selectors:
            on_name, on_labels = self.split(matchers)
            parts.append("(" + " AND ".join([*on_name, *on_labels] or ["1"]) + ")")
        return " OR ".join(parts)


class MetricReads:
    """Reads metric series for the PromQL engine and the Prometheus API. Safe to share between threads."""

    def __init__(self, engine: Engine, database: str, head: SampleHead | None = None) -> None:
        self._engine = engine
        self._db = database
        # Recent samples in memory (store/head.py): selectors within its window are answered from it.
        self._head = head
        # Labels by fingerprint. A fingerprint is a hash of the label set (model.series_fingerprint), so an
        # entry never goes stale; a query whose series are all known here skips the metrics_series read.
        # Bounded: emptied when full (a dict's get and set are atomic, so threads may share it).
        self._labels: dict[int, tuple[dict[str, str], tuple[tuple[str, str], ...]]] = {}
        # Label order of a set of series (by their fingerprints' bytes, as read): positions in that set.
        # Bounded by the series it holds, emptied when full, shared between threads like the label cache
        # (the count may drift under races; it only decides when to empty).
        self._orders: dict[bytes, np.ndarray[Any, Any]] = {}
        self._order_series = 0

    def _query(self, sql: str, params: dict[str, Any]) -> pa.Table:
        return self._engine.query(sql.replace("{db}", self._db), params)

    # -- the engine's seam ----------------------------------------------------------------------

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        """Series matching every matcher with their samples in [start_ms, end_ms], sorted by label set;
        series without samples there are left out. From the head when it holds the range, else from the
        store; there samples are read before series: the writer stores a series before its samples, so
        every sample read has its series."""
        head = self._head.select(matchers, start_ms, end_ms) if self._head is not None else None
        if head is not None:
            fps, ts, values = head
            return self._series_data(fps, ts, values, lambda: self._head_labels(fps))
        w = _Where()
        on_name, on_labels = w.split(matchers)
        where = [*on_name, f"TimestampMs BETWEEN {w.bind(start_ms, 'Int64')} AND {w.bind(end_ms, 'Int64')}"]
        if on_labels:
            where.append(
                "Fingerprint IN (SELECT Fingerprint FROM {db}.metrics_series WHERE "
                + " AND ".join([*on_name, *on_labels])
                + ")"
            )
        # Numeric columns only, read as numpy (Native format on chDB): the bulk of a long range query.
        sql = (
            "SELECT Fingerprint, TimestampMs, Value FROM {db}.metrics_samples WHERE "
            + " AND ".join(where)
            + " ORDER BY Fingerprint, TimestampMs"
        )
        samples = self._engine.query_columns(sql.replace("{db}", self._db), w.params)
        fps = samples.get("Fingerprint", np.zeros(0, dtype=np.uint64)).astype(np.uint64, copy=False)
        if len(fps) == 0:
            return []
        ts = samples["TimestampMs"].astype(np.int64, copy=False)
        values = samples["Value"].astype(np.float64, copy=False)
        return self._series_data(fps, ts, values, matchers)

    def _head_labels(self, fps: np.ndarray[Any, Any]) -> dict[int, dict[str, str]]:
        assert self._head is not None
        return self._head.labels(np.unique(fps).tolist())

    def _series_data(
        self,
        fps: np.ndarray[Any, Any],
        ts: np.ndarray[Any, Any],
        values: np.ndarray[Any, Any],
        load: Sequence[Matcher] | Callable[[], dict[int, dict[str, str]]],
    ) -> list[SeriesData]:
        """SeriesData in label order from samples sorted by (fingerprint, time)."""
        if len(fps) == 0:
            return []
        # The samples table is a plain MergeTree: a sample written twice reads twice. Keep the first.
        keep = np.ones(len(fps), dtype=bool)
        keep[1:] = (fps[1:] != fps[:-1]) | (ts[1:] != ts[:-1])
        if not keep.all():
            fps, ts, values = fps[keep], ts[keep], values[keep]
        starts = np.flatnonzero(np.r_[True, fps[1:] != fps[:-1]])
        bounds = np.r_[starts, len(fps)].tolist()
        # Stale markers looked for once, over all series: the engine need not look per series.
        stale = values.view(np.uint64) == np.uint64(STALE_NAN_BITS)
        stale_free = (np.add.reduceat(stale, starts) == 0).tolist() if stale.any() else [True] * len(starts)
        firsts = fps[starts]
        fp_list = firsts.tolist()
        labels = self._labels_for(fp_list, load)
        out = []
        for i in self._label_order(firsts, fp_list, labels):
            lo, hi = bounds[i], bounds[i + 1]
            out.append(SeriesData(dict(labels[fp_list[i]][0]), ts[lo:hi], values[lo:hi], stale_free=stale_free[i]))
        return out

    def _label_order(
        self, firsts: np.ndarray[Any, Any], fp_list: list[int], labels: Mapping[int, tuple[dict[str, str], Any]]
    ) -> list[int]:
        """Positions in `fp_list` of the series with labels, in label order, as Prometheus' querier returns
        series: where the engine must pick among equals (topk and bottomk ties), it then picks what Prometheus
        picks. A fingerprint's labels never change, so the order of a set of fingerprints is kept (a query
        repeated over known series, a dashboard's refresh, skips sorting their label sets)."""
        key = firsts.tobytes()
        kept = self._orders.get(key)
        if kept is not None and all(fp in labels for fp in fp_list):
            return kept.tolist()
        order = sorted((i for i, fp in enumerate(fp_list) if fp in labels), key=lambda i: labels[fp_list[i]][1])
        if len(order) == len(fp_list):  # kept only when complete: a series without labels yet may get them
            if self._order_series + len(order) > ORDER_CACHE_SERIES:
                self._orders.clear()
                self._order_series = 0
            self._orders[key] = np.array(order, dtype=np.int64)
            self._order_series += len(order)
        return order

    def select_metrics(self, ranges: Mapping[str, tuple[int, int]]) -> SeriesBlock:
        """Every series of these metric names with its samples in that name's inclusive range (ms), in one
        SQL read (the engine's MetricRangeReader seam: many queries at one time). Names sharing a range
        share one condition, so a rule group's reads (mostly [t - 5m, t]) stay a short WHERE."""
        by_range: dict[tuple[int, int], list[str]] = {}
        for name, bounds in ranges.items():
            by_range.setdefault(bounds, []).append(name)
        w = _Where()
        where = " OR ".join(
            f"(MetricName IN {w.bind(sorted(names), 'Array(String)')} "
            f"AND TimestampMs BETWEEN {w.bind(lo, 'Int64')} AND {w.bind(hi, 'Int64')})"
            for (lo, hi), names in by_range.items()
        )
        empty = SeriesBlock([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), np.zeros(1, np.int64))
        if not where:
            return empty
        head = self._head.select_names(ranges) if self._head is not None else None
        if head is not None:
            fps, ts, values = head
        else:
            samples = self._engine.query_columns(
                "SELECT Fingerprint, TimestampMs, Value FROM {db}.metrics_samples WHERE ".replace("{db}", self._db)
                + where
                + " ORDER BY Fingerprint, TimestampMs",
                w.params,
            )
            fps = samples.get("Fingerprint", np.zeros(0, dtype=np.uint64)).astype(np.uint64, copy=False)
            ts = samples.get("TimestampMs", np.zeros(0, dtype=np.int64)).astype(np.int64, copy=False)
            values = samples.get("Value", np.zeros(0, dtype=np.float64)).astype(np.float64, copy=False)
        if len(fps) == 0:
            return empty
        keep = np.ones(len(fps), dtype=bool)  # a sample written twice reads twice: keep the first
        keep[1:] = (fps[1:] != fps[:-1]) | (ts[1:] != ts[:-1])
        if not keep.all():
            fps, ts, values = fps[keep], ts[keep], values[keep]
        starts = np.flatnonzero(np.r_[True, fps[1:] != fps[:-1]])
        firsts = fps[starts].tolist()
        loader = self._labels_of_metrics if head is None else lambda _names: self._head_labels(fps)
        labels = self._labels_for(firsts, lambda: loader(sorted(ranges)))
        known = np.array([fp in labels for fp in firsts], dtype=bool)
        if not known.all():  # samples whose series row is not visible yet: left out, as select() does
            rows = np.repeat(known, np.diff(np.r_[starts, len(fps)]))
            ts, values = ts[rows], values[rows]
            starts = np.flatnonzero(np.r_[True, fps[rows][1:] != fps[rows][:-1]])
            firsts = [fp for fp, ok in zip(firsts, known.tolist(), strict=True) if ok]
        return SeriesBlock([dict(labels[fp][0]) for fp in firsts], ts, values, np.r_[starts, len(ts)].astype(np.int64))

    def _labels_of_metrics(self, names: list[str]) -> dict[int, dict[str, str]]:
        w = _Where()
        table = self._query(
            "SELECT Fingerprint, any(Labels) AS SeriesLabels FROM {db}.metrics_series "
            f"WHERE MetricName IN {w.bind(names, 'Array(String)')} GROUP BY Fingerprint",
            w.params,
        )
        return _labels_by_fingerprint(table)

    def _labels_for(
        self, fps: list[int], load: Sequence[Matcher] | Callable[[], dict[int, dict[str, str]]]
    ) -> dict[int, tuple[dict[str, str], tuple[tuple[str, str], ...]]]:
        """(labels, sorted label items) of these fingerprints, read from metrics_series unless all are cached:
        the series matching `load` when it is a selector's matchers, else what `load` returns."""
        cache = self._labels
        known = {fp: cache.get(fp) for fp in fps}  # a snapshot: another thread may empty the cache meanwhile
        if any(entry is None for entry in known.values()):
            found = load() if callable(load) else self._labels_matching(load)
            read = {fp: (labels, tuple(sorted(labels.items()))) for fp, labels in found.items()}
            if len(cache) + len(read) > LABEL_CACHE_SIZE:
                cache.clear()
            cache.update(read)
            return read
        return {fp: entry for fp, entry in known.items() if entry is not None}

    def _labels_matching(self, matchers: Sequence[Matcher]) -> dict[int, dict[str, str]]:
        """Labels by fingerprint of the series matching the selector (the same conditions as the samples)."""
        w = _Where()
        on_name, on_labels = w.split(matchers)
        table = self._query(
            "SELECT Fingerprint, any(Labels) AS SeriesLabels FROM {db}.metrics_series "
            f"WHERE {' AND '.join([*on_name, *on_labels] or ['1'])} GROUP BY Fingerprint",
            w.params,
        )
        return _labels_by_fingerprint(table)

    def _labels_of(self, fps: np.ndarray[Any, Any]) -> dict[int, dict[str, str]]:
        w = _Where()
        table = self._query(
            "SELECT Fingerprint, any(Labels) AS SeriesLabels FROM {db}.metrics_series "
            f"WHERE Fingerprint IN {w.bind(fps.tolist(), 'Array(UInt64)')} GROUP BY Fingerprint",
            w.params,
        )
        return _labels_by_fingerprint(table)

    # -- lookups for the HTTP API ---------------------------------------------------------------

    def _series_where(self, w: _Where, selectors: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int) -> str:
        """Condition on metrics_series: matches a selector and, when bounded, has a sample in the range."""
        where = f"({w.series_filter(selectors)})"
        if start_ms > MIN_MS or end_ms < MAX_MS:
            name_filter = " OR ".join(
                "(" + " AND ".join(w.split([m for m in ms if m.name == NAME])[0] or ["1"]) + ")" for ms in selectors
            )
            where += (
                " AND Fingerprint IN (SELECT DISTINCT Fingerprint FROM {db}.metrics_samples WHERE "
                f"TimestampMs BETWEEN {w.bind(start_ms, 'Int64')} AND {w.bind(end_ms, 'Int64')}"
                + (f" AND ({name_filter})" if selectors else "")
                + ")"
            )
        return where

    def series(
        self, selectors: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[dict[str, str]]:
        """Label sets of the series matching any selector with samples in the range, sorted by labels."""
        w = _Where()
        where = self._series_where(w, selectors, start_ms, end_ms)
        limit_sql = f" LIMIT {w.bind(limit, 'UInt64')}" if limit else ""
        table = self._query(
            "SELECT any(Labels) AS SeriesLabels, arraySort(mapKeys(SeriesLabels)) AS K FROM {db}.metrics_series "
            f"WHERE {where} GROUP BY Fingerprint "
            "ORDER BY arrayMap(k -> (k, SeriesLabels[k]), K)" + limit_sql,
            w.params,
        )
        return [dict(pairs) for pairs in table.column("SeriesLabels").to_pylist()]

    def label_names(
        self, selectors: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[str]:
        """Label names of the series matching any selector (every series without one), sorted."""
        w = _Where()
        where = self._series_where(w, selectors, start_ms, end_ms)
        limit_sql = f" LIMIT {w.bind(limit, 'UInt64')}" if limit else ""
        table = self._query(
            f"SELECT DISTINCT arrayJoin(mapKeys(Labels)) AS Name FROM {{db}}.metrics_series WHERE {where} "
            "ORDER BY Name" + limit_sql,
            w.params,
        )
        return [n for n in table.column("Name").to_pylist() if n]

    def label_values(
        self, name: str, selectors: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[str]:
        """Values of one label over the series matching any selector, sorted; series without it add none."""
        w = _Where()
        where = self._series_where(w, selectors, start_ms, end_ms)
        column = w.label_column(name)
        limit_sql = f" LIMIT {w.bind(limit, 'UInt64')}" if limit else ""
        table = self._query(
            f"SELECT DISTINCT {column} AS Value FROM {{db}}.metrics_series WHERE {where} AND Value != '' "
            "ORDER BY Value" + limit_sql,
            w.params,
        )
        return [str(v) for v in table.column("Value").to_pylist()]

    def metadata(self, metric: str = "", limit: int = 0) -> list[MetricMetadataRow]:
        """The latest type, help and unit per metric family (one entry each), by name."""
        w = _Where()
        where = f"MetricName = {w.bind(metric, 'String')}" if metric else "1"
        limit_sql = f" LIMIT {w.bind(limit, 'UInt64')}" if limit else ""
        table = self._query(
            "SELECT MetricName, argMax(Type, Updated) AS T, argMax(Help, Updated) AS H, argMax(Unit, Updated) AS U "
            f"FROM {{db}}.metrics_metadata WHERE {where} GROUP BY MetricName ORDER BY MetricName" + limit_sql,
            w.params,
        )
        return [
            MetricMetadataRow(*row)
            for row in zip(*(table.column(c).to_pylist() for c in ("MetricName", "T", "H", "U")), strict=True)
        ]

    def exemplars(
        self, selectors: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[SeriesExemplars]:
        """Exemplars in the range of the series matching any selector, grouped by series, oldest first.

        The trace and span ids, stored in columns of their own, go back into the labels as `trace_id` and
        `span_id`, the names Prometheus and OpenMetrics give them."""
        if not selectors:
            return []
        w = _Where()
        limit_sql = f" LIMIT {w.bind(limit, 'UInt64')}" if limit else ""
        table = self._query(
            "SELECT Fingerprint, TimestampMs, Value, TraceId, SpanId, Labels FROM {db}.metrics_exemplars "
            f"WHERE TimestampMs BETWEEN {w.bind(start_ms, 'Int64')} AND {w.bind(end_ms, 'Int64')} "
            f"AND Fingerprint IN (SELECT Fingerprint FROM {{db}}.metrics_series WHERE {w.series_filter(selectors)}) "
            "ORDER BY Fingerprint, TimestampMs" + limit_sql,
            w.params,
        )
        if table.num_rows == 0:
            return []
        rows = table.to_pylist()
        labels = self._labels_of(np.unique(_column(table, "Fingerprint", np.uint64)))
        grouped: dict[int, SeriesExemplars] = {}
        for r in rows:
            series_labels = labels.get(r["Fingerprint"])
            if series_labels is None:
                continue
            ex_labels = dict(r["Labels"])
            if r["TraceId"]:
                ex_labels["trace_id"] = r["TraceId"]
            if r["SpanId"]:
                ex_labels["span_id"] = r["SpanId"]
            group = grouped.setdefault(r["Fingerprint"], SeriesExemplars(series_labels, []))
            group.exemplars.append(Exemplar(ex_labels, r["Value"], r["TimestampMs"]))
        return list(grouped.values())


def _labels_by_fingerprint(table: pa.Table) -> dict[int, dict[str, str]]:
    fps = table.column("Fingerprint").to_pylist()
    return dict(zip(fps, (dict(pairs) for pairs in table.column("SeriesLabels").to_pylist()), strict=True))


def _column(table: pa.Table, name: str, dtype: type[np.generic]) -> np.ndarray[Any, Any]:
    """A column as a writable numpy array (one copy; the engine owns the arrays it gets)."""
    return np.array(table.column(name).combine_chunks().to_numpy(zero_copy_only=False), dtype=dtype, copy=True)
