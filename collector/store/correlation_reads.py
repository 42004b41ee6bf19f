"""Reads for correlation that no wire API needs: the exemplars that point at one trace.

The exemplars table has a bloom filter on TraceId, and the time bounds (inclusive milliseconds) prune
its daily partitions; every value reaches SQL as a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.store.engine import Engine


@dataclass(frozen=True)
class TraceExemplar:
    """An exemplar of a series that names a trace: the series' labels (with __name__), time, value."""

    series_labels: dict[str, str]
    timestamp_ms: int
    value: float
    trace_id: str
    span_id: str
    labels: dict[str, str]


class CorrelationReads:
    def __init__(self, engine: Engine, database: str) -> None:
        self._engine = engine
        self._db = database

    def exemplars_of_trace(self, trace_id: str, start_ms: int, end_ms: int, limit: int = 1000) -> list[TraceExemplar]:
        """Exemplars whose trace id is `trace_id` in [start_ms, end_ms], oldest first."""
        rows = self._engine.query(
            f"""SELECT e.Fingerprint AS Fingerprint, e.TimestampMs AS TimestampMs, e.Value AS Value,
                e.TraceId AS TraceId, e.SpanId AS SpanId, e.Labels AS Labels, s.SeriesLabels AS SeriesLabels
            FROM (SELECT Fingerprint, TimestampMs, Value, TraceId, SpanId, Labels FROM {self._db}.metrics_exemplars
                  WHERE TraceId = {{id:String}} AND TimestampMs BETWEEN {{start:Int64}} AND {{end:Int64}}) AS e
            INNER JOIN (SELECT Fingerprint, any(Labels) AS SeriesLabels FROM {self._db}.metrics_series
                  WHERE Fingerprint IN (SELECT Fingerprint FROM {self._db}.metrics_exemplars
                      WHERE TraceId = {{id:String}} AND TimestampMs BETWEEN {{start:Int64}} AND {{end:Int64}})
                  GROUP BY Fingerprint) AS s
            ON e.Fingerprint = s.Fingerprint
            ORDER BY TimestampMs, Fingerprint LIMIT {{limit:UInt32}}""",
            {"id": trace_id, "start": start_ms, "end": end_ms, "limit": limit},
        ).to_pylist()
        return [
            TraceExemplar(
                dict(r["SeriesLabels"]), r["TimestampMs"], r["Value"], r["TraceId"], r["SpanId"], dict(r["Labels"])
            )
            for r in rows
        ]
