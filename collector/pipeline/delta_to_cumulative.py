"""Delta to cumulative: running totals of delta OTLP sums and histograms, the samples Prometheus series need.

Like the OpenTelemetry Collector's deltatocumulative processor, per series (metric name + labels):
- the first point starts a run: its cumulative value is the point's own value;
- a point whose start_ns equals the previous point's time_ns (or whose start_ns is 0: the sender did
  not say, so it is taken as contiguous) continues the run: value added to the running total;
- a point that starts after the previous one ended (a gap: a sender restarted or points were lost)
  starts a new run from its own value, which PromQL's rate() sees as a counter reset;
- a point not after the previous one (time_ns <= previous time_ns: a duplicate or out of order) or
  overlapping it (start_ns < previous time_ns) is dropped and counted: adding it would count twice.
Points of one call are taken in time order, so a request may carry a series' points in any order.
Histogram buckets add up by `le`; a sum becomes unknown for the rest of the run if one point lacks it.
Memory is bounded by `max_series`: the least recently updated series is forgotten first, and its next
point starts a new run. Not thread-safe: the caller serializes calls (one ingest path owns one).
State changes only when the caller commits: a batch whose insert failed leaves the runs as they were,
so the sender's retry of the same points is accumulated once, not refused as overlapping.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from collector.model import DeltaPoint, HistogramValue, MetricBatch, add_histogram_samples, series_fingerprint


@dataclass
class _Run:
    """A series' running total since start_ns, last extended by the point that ended at last_ns."""

    start_ns: int
    last_ns: int
    value: float | HistogramValue


class DeltaToCumulative:
    """Accumulates delta points per series into cumulative samples; keeps at most `max_series` runs."""

    def __init__(self, max_series: int) -> None:
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, not {max_series}")
        self.max_series = max_series
        self.evicted = 0  # runs forgotten to stay within max_series, since creation
        self._runs: OrderedDict[tuple[int, bool], _Run] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def apply(self, batch: MetricBatch, points: list[DeltaPoint]) -> tuple[int, Callable[[], None]]:
        """Add the cumulative sample(s) of each point to `batch`.

        Returns how many points were dropped, and the commit that records the new running totals:
        call it once the batch is stored, and not at all when storing it failed.
        """
        dropped = 0
        staged: dict[tuple[int, bool], _Run] = {}
        for point in sorted(points, key=lambda p: p.time_ns):
            value = self._accumulate(point, staged)
            if value is None:
                dropped += 1
                continue
            ts_ms = point.time_ns // 1_000_000
            if isinstance(value, HistogramValue):
                add_histogram_samples(batch, point.metric, point.labels, ts_ms, value, point.exemplars)
                continue
            fp = batch.add_sample({**point.labels, "__name__": point.metric}, ts_ms, value)
            for ex in point.exemplars:
                batch.add_exemplar(fp, ex.timestamp_ms, ex.value, ex.trace_id, ex.span_id, ex.labels)

        def commit() -> None:
            for key, run in staged.items():
                self._runs[key] = run
                self._runs.move_to_end(key)
            while len(self._runs) > self.max_series:
                self._runs.popitem(last=False)
                self.evicted += 1

        return dropped, commit

    def _accumulate(self, point: DeltaPoint, staged: dict[tuple[int, bool], _Run]) -> float | HistogramValue | None:
        """The series' cumulative value after this point, or None when the point is dropped.

        Runs changed by this call go to `staged` (copies), never into the committed state.
        """
        is_histogram = isinstance(point.value, HistogramValue)
        # A histogram `foo` and a sum `foo` with the same labels are different streams.
        key = (series_fingerprint({**point.labels, "__name__": point.metric}), is_histogram)
        run = staged.get(key) or self._runs.get(key)
        if run is None or point.start_ns > run.last_ns:
            staged[key] = _Run(point.start_ns, point.time_ns, point.value)
            return point.value
        if point.time_ns <= run.last_ns or (point.start_ns and point.start_ns < run.last_ns):
            return None
        staged[key] = replace(run, value=_add(run.value, point.value), last_ns=point.time_ns)
        return staged[key].value


def _add(total: float | HistogramValue, delta: float | HistogramValue) -> float | HistogramValue:
    if isinstance(total, HistogramValue) and isinstance(delta, HistogramValue):
        return total.merged(delta)
    if isinstance(total, HistogramValue) or isinstance(delta, HistogramValue):
        raise TypeError("a run's values are all sums or all histograms (the run key says which)")
    return total + delta
