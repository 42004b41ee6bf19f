"""Writes batches into the store's tables; every call returns only once the rows are in the store.

Called from the group-commit stage with all the batches that arrived while the previous insert ran,
so one call is one insert per table however many requests it carries.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector.model import MapColumn, MetricBatch, MetricMetadata
from collector.store.engine import Engine
from collector.store.head import SampleHead

# Re-write a known series at least this often so the series table's TTL only drops dead series.
_SERIES_REFRESH_S = 86400.0


class StoreWriter:
    def __init__(
        self,
        engine: Engine,
        database: str,
        insert_delay: float = 0.0,
        observe_insert: Callable[[str, float, int], None] = lambda _t, _s, _n: None,
        head: SampleHead | None = None,
    ) -> None:
        self._engine = engine
        self._head = head
        self._db = database
        self._delay = insert_delay
        self._observe = observe_insert
        # fingerprint -> monotonic time it was last written; guarded by _lock (metric inserts may
        # run beside each other on the executor).
        self._series_written: dict[int, float] = {}
        self._metadata_written: dict[str, MetricMetadata] = {}
        self._lock = threading.Lock()

    def _insert(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        if self._delay:
            time.sleep(self._delay)
        started = time.perf_counter()
        self._engine.insert(f"{self._db}.{table}", data)
        self._observe(table, time.perf_counter() - started, data.num_rows)

    def write_spans(self, tables: Sequence[pa.Table]) -> None:
        """Spans, then their rows of the trace-id -> time-range lookup (what the exporter's view made)."""
        spans = _concat(tables)
        self._insert("otel_traces", spans)
        self._insert("otel_traces_trace_id_ts", trace_time_ranges(spans))

    def write_logs(self, tables: Sequence[pa.Table]) -> None:
        self._insert("otel_logs", _concat(tables))

    def write_metrics(self, batches: Sequence[MetricBatch]) -> None:
        """Series first, then exact integers, then samples: a reader never sees samples whose series
        is missing, nor a sample without the exact value its double rounds (after a crash between the
        two, an exact value without its sample: the write was not acknowledged, and matches nothing)."""
        series: dict[int, dict[str, str]] = {}
        metadata: dict[str, MetricMetadata] = {}
        for batch in batches:  # the batches of a group mostly share their series: one loop per group
            series.update(batch.series)
            metadata.update(batch.metadata)
        merged = MetricBatch()
        now = time.monotonic()
        with self._lock:
            written = self._series_written
            merged.series = {
                fp: labels for fp, labels in series.items() if now - written.get(fp, -math.inf) > _SERIES_REFRESH_S
            }
            merged.metadata = {
                name: meta for name, meta in metadata.items() if self._metadata_written.get(name) != meta
            }
        self._insert("metrics_series", merged.series_table())
        self._insert("metrics_metadata", merged.metadata_table())
        exact = [b.exact_integers_table() for b in batches if b.exact_integers is not None]
        if exact:  # rare: integers past 2**53 that a double rounds
            self._insert("metrics_exact_integers", _with_names(_concat(exact), series))
        samples = _concat([b.samples_table() for b in batches])
        self._insert("metrics_samples", _with_name_dictionary(samples, series))
        if self._head is not None and samples.num_rows:
            # Right after the store took them, before anything else can fail: the head never holds a
            # sample the store does not, and holds every one it does from its floor on.
            self._head.append(
                series,
                samples.column("Fingerprint").to_numpy(),
                samples.column("TimestampMs").to_numpy(),
                samples.column("Value").to_numpy(),
            )
        self._insert("metrics_exemplars", _with_names(_concat([b.exemplars_table() for b in batches]), series))
        with self._lock:
            for fp in merged.series:
                self._series_written[fp] = now
            self._metadata_written.update(merged.metadata)

    def write_field_types(self, scope: str, scope_labels: dict[str, str], types: Sequence[tuple[str, str]]) -> None:
        """(metric, field type) of one write target (pipeline/field_types.py), each as it is first set."""
        labels = MapColumn()
        for _ in types:
            labels.add_row(scope_labels)
        table = pa.table(
            {
                "MetricName": pa.array([metric for metric, _ in types], pa.string()),
                "Scope": pa.array([scope] * len(types), pa.string()),
                "ScopeLabels": labels.to_arrow(),
                "FieldType": pa.array([kind for _, kind in types], pa.string()),
            }
        )
        self._insert("metrics_field_types", table)


def trace_time_ranges(spans: pa.Table) -> pa.Table:
    """TraceId, Start, End (first and last span start) per trace in a batch of spans."""
    ranges = (
        spans.select(["TraceId", "Timestamp"])
        .group_by("TraceId")
        .aggregate([("Timestamp", "min"), ("Timestamp", "max")])
    )
    ranges = ranges.filter(pc.not_equal(ranges["TraceId"], ""))
    return pa.table({"TraceId": ranges["TraceId"], "Start": ranges["Timestamp_min"], "End": ranges["Timestamp_max"]})


def _concat(tables: Sequence[pa.Table]) -> pa.Table:
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _with_name_dictionary(table: pa.Table, series: dict[int, dict[str, str]]) -> pa.Table:
    """`table` with a MetricName column, built without a per-row Python loop.

    The names go in dictionary-encoded (one index per row into the distinct names, which chDB reads
    straight into the LowCardinality column): measured twice as fast to insert as plain strings.
    """
    if table.num_rows == 0:
        return _with_names(table, series)
    encoded = pc.dictionary_encode(table.column("Fingerprint").combine_chunks())
    metric_of_fp = [series[fp].get("__name__", "") for fp in encoded.dictionary.to_pylist()]
    distinct: dict[str, int] = {}
    name_index = np.array([distinct.setdefault(name, len(distinct)) for name in metric_of_fp], np.int32)
    indices = name_index[encoded.indices.to_numpy()]
    column = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(list(distinct), pa.string()))
    return table.add_column(0, "MetricName", column)


def _with_names(table: pa.Table, series: dict[int, dict[str, str]]) -> pa.Table:
    fps = table.column("Fingerprint").to_pylist()
    return table.add_column(0, "MetricName", pa.array([series[fp].get("__name__", "") for fp in fps], pa.string()))
