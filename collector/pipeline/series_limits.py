"""Per-series admission rules for metric samples: cardinality per metric, out-of-order and duplicates.

The rules, as Prometheus and Mimir apply them:
- A metric may have at most `max_series_per_metric` series. A sample that would create one more is
  refused ("per-metric series limit of N exceeded for metric M"), and counted; samples of series
  that already exist are still accepted.
- Per series, a sample is accepted when its timestamp is newer than the newest one seen, or not older
  than that by more than `out_of_order_window` (Prometheus' out_of_order_time_window; 0 accepts only
  in-order samples). Older samples are refused as "out of order".
- A sample with the timestamp and the value (bit for bit, so stale markers too) of the series' newest
  sample is a harmless repeat (a retried write): it is dropped silently. The same timestamp with
  another value is refused as a "duplicate sample for timestamp", as Prometheus refuses it. Repeats
  of older samples inside the window are not detected (only the newest sample is remembered).

State lives in memory for the process' lifetime. The known series are seeded from the store at
startup, so a restart keeps the cardinality limit; the newest timestamp per series starts empty
after a restart, which can only accept more, never refuse what was acknowledged before.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from collector.model import MetricBatch, format_series


@dataclass
class LimitOutcome:
    batch: MetricBatch
    refused: int = 0
    repeats: int = 0
    messages: list[str] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)
    # Records what this batch changes (known series, newest samples); call once it is stored.
    commit: Callable[[], None] = lambda: None

    def refuse(self, reason: str, message: str) -> None:
        self.refused += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.messages) < 5:
            self.messages.append(message)


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


class SeriesLimits:
    """Not thread-safe: called from the event loop only."""

    def __init__(
        self, max_series_per_metric: int, out_of_order_window_ms: int, known: Iterable[tuple[int, str]] = ()
    ) -> None:
        """known: (fingerprint, metric name) of the series already in the store."""
        self._max = max_series_per_metric
        self._window = out_of_order_window_ms
        self._series_per_metric: dict[str, int] = {}
        self._known: set[int] = set()
        for fp, name in known:
            if fp not in self._known:
                self._known.add(fp)
                self._series_per_metric[name] = self._series_per_metric.get(name, 0) + 1
        # fingerprint -> (newest timestamp ms, value bits at that timestamp)
        self._newest: dict[int, tuple[int, bytes]] = {}

    def apply(self, batch: MetricBatch, min_ms: int = 0, max_ms: int = 0) -> LimitOutcome:
        """The samples of `batch` that pass, as a new batch, with what was refused and why.

        min_ms/max_ms (0: unbounded) refuse samples outside the accepted time window, which would
        otherwise be acknowledged and then dropped by the retention TTL.
        """
        out = LimitOutcome(MetricBatch(metadata=batch.metadata))
        kept = out.batch
        admitted: dict[int, bool] = {}
        # Changes to the state are collected here and applied by out.commit() once the batch is in
        # the store: a write that fails must leave a retry of it to be judged as new.
        new_series: dict[int, str] = {}
        counts: dict[str, int] = {}
        newest_now: dict[int, tuple[int, bytes]] = {}
        for fp, ts, value in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True):
            labels = batch.series[fp]
            name = labels.get("__name__", "")
            if (min_ms and ts < min_ms) or (max_ms and ts > max_ms):
                out.refuse(
                    "out_of_window", f"timestamp {ts} ms of {format_series(labels)} is outside the accepted window"
                )
                continue
            ok = admitted.get(fp)
            if ok is None:
                ok = fp in self._known
                if not ok:
                    count = counts.get(name, self._series_per_metric.get(name, 0))
                    ok = count < self._max
                    if ok:
                        counts[name] = count + 1
                        new_series[fp] = name
                admitted[fp] = ok
            if not ok:
                out.refuse(
                    "series_limit",
                    f"per-metric series limit of {self._max} exceeded for metric {name!r}",
                )
                continue
            newest = newest_now.get(fp) or self._newest.get(fp)
            bits = _bits(value)
            if newest is not None:
                newest_ts, newest_bits = newest
                if ts == newest_ts:
                    if bits == newest_bits:
                        out.repeats += 1
                        continue
                    out.refuse("duplicate", f"duplicate sample for timestamp {ts} in {format_series(labels)}")
                    continue
                if ts < newest_ts - self._window:
                    out.refuse(
                        "out_of_order", f"out of order sample at {ts} (newest {newest_ts}) in {format_series(labels)}"
                    )
                    continue
            if newest is None or ts > newest[0]:
                newest_now[fp] = (ts, bits)
            kept.series[fp] = labels
            kept.fingerprint.append(fp)
            kept.timestamp_ms.append(ts)
            kept.value.append(value)
        _copy_exemplars(batch, kept)

        def commit() -> None:
            self._known.update(new_series)
            self._series_per_metric.update(counts)
            for fp, newest in newest_now.items():
                current = self._newest.get(fp)
                if current is None or newest[0] > current[0]:
                    self._newest[fp] = newest

        out.commit = commit
        return out


def _copy_exemplars(src: MetricBatch, dst: MetricBatch) -> None:
    labels = src.ex_labels
    for i, fp in enumerate(src.ex_fingerprint):
        if fp not in dst.series:
            continue
        start, end = labels.offsets[i], labels.offsets[i + 1]
        dst.add_exemplar(
            fp,
            src.ex_timestamp_ms[i],
            src.ex_value[i],
            src.ex_trace_id[i],
            src.ex_span_id[i],
            dict(zip(labels.keys[start:end], labels.values[start:end], strict=True)),
        )
