"""Cumulative counters and classic histograms kept in memory and written out as Prometheus samples.

What span metrics and the service graph count lives here between collections, as Tempo's
metrics-generator registry keeps it: one cumulative value per series, written at every collection
with the collection time (so rate() sees a regular series whether or not spans arrived), a 0 written
1 ms before a series' first value (so increase() counts the first spans too), and a series dropped
once nothing updated it for the stale duration.

Exemplars point at the span behind a value: a counter keeps the latest one per series, a histogram the
latest one per bucket; each is written once, with the span's end time, then forgotten.
Times are milliseconds since the epoch; histogram values are seconds.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.model import (
    HistogramValue,
    MetricBatch,
    MetricExemplar,
    MetricMetadata,
    add_histogram_samples,
    format_double,
)

LabelValues = tuple[str, ...]


@dataclass(frozen=True)
class SpanRef:
    """The span an exemplar points at: ids as lowercase hex, its end time and the observed value."""

    trace_id: str
    span_id: str
    end_ms: int
    value: float


def _labels(names: Sequence[str], values: LabelValues) -> dict[str, str]:
    # An empty value is an absent label in Prometheus: leave it out rather than store `x=""`.
    return {n: v for n, v in zip(names, values, strict=True) if v != ""}


def _exemplar(ref: SpanRef) -> MetricExemplar:
    return MetricExemplar(ref.end_ms, ref.value, ref.trace_id, ref.span_id, {})


@dataclass
class _CounterSeries:
    value: float = 0.0
    updated_ms: int = 0
    new: bool = True
    exemplar: SpanRef | None = None


class CounterFamily:
    """One counter metric (`name` ends in _total) over a fixed list of label names."""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str]) -> None:
        self.name = name
        self.label_names = tuple(label_names)
        self._meta = MetricMetadata(name, "counter", help_text, "")
        self._series: dict[LabelValues, _CounterSeries] = {}

    def add(self, values: LabelValues, amount: float, now_ms: int, exemplar: SpanRef | None = None) -> None:
        s = self._series.get(values)
        if s is None:
            s = self._series[values] = _CounterSeries()
        s.value += amount
        s.updated_ms = now_ms
        if exemplar is not None:
            s.exemplar = exemplar

    def value(self, values: LabelValues) -> float:
        s = self._series.get(values)
        return s.value if s is not None else 0.0

    def __len__(self) -> int:
        return len(self._series)

    def collect(self, batch: MetricBatch, now_ms: int, stale_before_ms: int) -> None:
        """Append every live series' value at now_ms; forget series not updated since stale_before_ms."""
        for values, s in list(self._series.items()):
            if s.updated_ms < stale_before_ms:
                del self._series[values]
                continue
            labels = {**_labels(self.label_names, values), "__name__": self.name}
            if s.new:
                batch.add_sample(labels, now_ms - 1, 0.0)
                s.new = False
            fp = batch.add_sample(labels, now_ms, s.value)
            if s.exemplar is not None:
                ex = s.exemplar
                batch.add_exemplar(fp, ex.end_ms, 1.0, ex.trace_id, ex.span_id, {})
                s.exemplar = None
            batch.metadata.setdefault(self.name, self._meta)


@dataclass
class _HistogramSeries:
    buckets: list[float]  # per bucket, not cumulative; the last one is +Inf
    count: float = 0.0
    total: float = 0.0
    updated_ms: int = 0
    new: bool = True
    exemplars: dict[int, SpanRef] = field(default_factory=dict)  # bucket index -> latest span


class HistogramFamily:
    """One classic histogram (`name`_bucket, _sum, _count) with fixed upper bounds in seconds."""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str], bounds: Sequence[float]) -> None:
        self.name = name
        self.label_names = tuple(label_names)
        self.bounds = tuple(bounds)
        self._le = [format_double(b) for b in self.bounds]
        self._meta = MetricMetadata(name, "histogram", help_text, "seconds")
        self._series: dict[LabelValues, _HistogramSeries] = {}

    def bucket_of(self, value: float) -> int:
        """Index of the bucket holding `value`: the first bound >= value (le is inclusive); len(bounds) is +Inf."""
        return bisect.bisect_left(self.bounds, value)

    def add(
        self,
        values: LabelValues,
        bucket: int,
        count: float,
        total: float,
        now_ms: int,
        exemplar: SpanRef | None = None,
    ) -> None:
        """`count` observations that all fall in `bucket`, summing to `total` seconds."""
        s = self._series.get(values)
        if s is None:
            s = self._series[values] = _HistogramSeries([0.0] * (len(self.bounds) + 1))
        s.buckets[bucket] += count
        s.count += count
        s.total += total
        s.updated_ms = now_ms
        if exemplar is not None:
            s.exemplars[bucket] = exemplar

    def observe(self, values: LabelValues, seconds: float, now_ms: int, exemplar: SpanRef | None = None) -> None:
        self.add(values, self.bucket_of(seconds), 1.0, seconds, now_ms, exemplar)

    def snapshot(self, values: LabelValues) -> tuple[list[float], float, float] | None:
        """(per-bucket counts, count, sum) of a series, or None."""
        s = self._series.get(values)
        return None if s is None else (list(s.buckets), s.count, s.total)

    def __len__(self) -> int:
        return len(self._series)

    def collect(self, batch: MetricBatch, now_ms: int, stale_before_ms: int) -> None:
        for values, s in list(self._series.items()):
            if s.updated_ms < stale_before_ms:
                del self._series[values]
                continue
            labels = _labels(self.label_names, values)
            if s.new:
                zero = HistogramValue(dict.fromkeys(self._le, 0.0), 0.0, 0.0)
                add_histogram_samples(batch, self.name, labels, now_ms - 1, zero)
                s.new = False
            hist = HistogramValue(dict(zip(self._le, s.buckets, strict=False)), s.count, s.total)
            add_histogram_samples(batch, self.name, labels, now_ms, hist, [_exemplar(e) for e in s.exemplars.values()])
            s.exemplars.clear()
            batch.metadata.setdefault(self.name, self._meta)
