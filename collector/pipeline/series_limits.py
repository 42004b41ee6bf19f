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

A batch held as numpy columns (the line protocol path) is judged with array operations and a Python
loop over its distinct series only (none at all when it carries the same series as the batch before,
see _SeriesState); one held as lists, sample by sample. Both give the same outcome (tests compare).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def _bits(value: float) -> int:
    return int.from_bytes(struct.pack("<d", value), "little")


# Per-sample outcomes of the columnar path, in the order the rules are checked.
_KEPT, _WINDOW, _LIMIT, _DUPLICATE, _OUT_OF_ORDER, _REPEAT = range(6)
_REASONS = {_WINDOW: "out_of_window", _LIMIT: "series_limit", _DUPLICATE: "duplicate", _OUT_OF_ORDER: "out_of_order"}
_INT64_MIN = -(2**63)


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
        self._newest: dict[int, tuple[int, int]] = {}
        self._version = 0  # commits so far
        # The state of the last columnar batch's series as arrays, while nothing else changed it.
        self._state: _SeriesState | None = None

    def apply(self, batch: MetricBatch, min_ms: int = 0, max_ms: int = 0) -> LimitOutcome:
        """The samples of `batch` that pass, as a new batch, with what was refused and why.

        min_ms/max_ms (0: unbounded) refuse samples outside the accepted time window, which would
        otherwise be acknowledged and then dropped by the retention TTL.

        A batch held as numpy columns is judged with array operations (a Python loop only over its
        distinct series); one held as lists sample by sample. Both give the same outcome.
        """
        if batch.columnar:
            return self._apply_columns(batch, min_ms, max_ms)
        return self._apply_lists(batch, min_ms, max_ms)

    def _apply_lists(self, batch: MetricBatch, min_ms: int, max_ms: int) -> LimitOutcome:
        """The rules sample by sample: the reference for _apply_columns."""
        out = LimitOutcome(MetricBatch(metadata=batch.metadata))
        kept = out.batch
        admitted: dict[int, bool] = {}
        # Changes to the state are collected here and applied by out.commit() once the batch is in
        # the store: a write that fails must leave a retry of it to be judged as new.
        new_series: dict[int, str] = {}
        counts: dict[str, int] = {}
        newest_now: dict[int, tuple[int, int]] = {}
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
                out.refuse("series_limit", self._limit_message(name))
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
        out.commit = self._committer(new_series, counts, newest_now)
        return out

    def _limit_message(self, name: str) -> str:
        return f"per-metric series limit of {self._max} exceeded for metric {name!r}"

    def _committer(
        self,
        new_series: dict[int, str],
        counts: dict[str, int],
        newest_now: dict[int, tuple[int, int]],
        version: int = -1,
    ) -> Callable[[], None]:
        """The commit of an outcome; `version`: the state's version the outcome was judged against."""

        def commit() -> None:
            self._known.update(new_series)
            self._series_per_metric.update(counts)
            if version == self._version:
                # Nothing was committed since the batch was judged: every entry is newer than the
                # remembered one (it raised the maximum above it), so no comparison is needed.
                self._newest.update(newest_now)
            else:
                for fp, newest in newest_now.items():
                    current = self._newest.get(fp)
                    if current is None or newest[0] > current[0]:
                        self._newest[fp] = newest
            self._version += 1

        return commit

    def _apply_columns(self, batch: MetricBatch, min_ms: int, max_ms: int) -> LimitOutcome:
        """The rules with array operations, for a batch held as numpy columns.

        Why this equals the sample-by-sample rules: within a series, a sample that is not accepted
        never has a timestamp above the newest one, and one above it is always accepted and becomes
        the newest. So the newest timestamp before a sample is the maximum of the remembered one and
        of the timestamps of the series' earlier (admitted) samples in the batch, a running maximum;
        and its value is that of the last earlier sample that raised the maximum.
        """
        cols = batch.sample_columns()
        fp_col, ts_col, value_col = cols.fingerprint, cols.timestamp_ms, cols.value
        n = len(fp_col)
        reason = np.zeros(n, np.int8)
        if min_ms:
            reason[ts_col < min_ms] = _WINDOW
        if max_ms:
            reason[ts_col > max_ms] = _WINDOW
        in_window = np.flatnonzero(reason == _KEPT)

        # Distinct series in order of first appearance, and per sample in the window its series'
        # index (a hash table in Arrow: several times faster than np.unique's sort).
        encoded = pc.dictionary_encode(pa.array(fp_col[in_window], pa.uint64()))
        distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
        group = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
        version = self._version
        new_series: dict[int, str] = {}
        counts: dict[str, int] = {}
        state = self._state
        if state is not None and state.version == version and np.array_equal(state.fps, distinct):
            # The same series as a batch before, and the state kept current since: no dict lookups.
            distinct = state.fps  # the same values; the same object lets the commit skip a comparison
            admitted = np.ones(len(distinct), bool)
            has_newest, newest_ts, newest_bits = state.has_newest, state.newest_ts, state.newest_bits
        else:
            admitted, has_newest, newest_ts, newest_bits = self._series_state(batch, distinct, new_series, counts)
            if admitted.all() and not new_series:
                self._state = _SeriesState(distinct, has_newest, newest_ts, newest_bits, version)
        take = admitted[group]
        reason[in_window[~take]] = _LIMIT

        # Admitted samples, grouped by series (batch order kept within a group).
        rows = in_window[take]
        g = group[take]
        by_series = np.argsort(g, kind="stable")
        rows, g = rows[by_series], g[by_series]
        ts = ts_col[rows]
        bits = value_col[rows].view(np.uint64)
        m = len(rows)
        pos = np.arange(m)
        starts = np.ones(m, bool)
        starts[1:] = g[1:] != g[:-1]
        group_start = np.maximum.accumulate(np.where(starts, pos, 0))
        running = _running_max(g, ts)
        before = np.empty(m, np.int64)  # the batch's maximum before each sample (if not a group start)
        before[1:] = running[:-1]
        has_prev = ~starts | has_newest[g]
        prev = np.where(starts, newest_ts[g], np.where(has_newest[g], np.maximum(before, newest_ts[g]), before))
        # The sample whose value the newest carries: the last earlier one that raised the maximum.
        raised = ~has_prev | (ts > prev)
        last_raise = np.maximum.accumulate(np.where(raised, pos, -1))
        setter = np.empty(m, np.int64)
        setter[0:1] = -1
        setter[1:] = last_raise[:-1]
        from_batch = ~starts & (setter >= group_start)
        prev_bits = np.where(from_batch, bits[np.maximum(setter, 0)], newest_bits[g])
        same_ts = has_prev & (ts == prev)
        repeat = same_ts & (bits == prev_bits)
        # Out of order: ts < prev - window, where prev - window may fall below int64's range (then
        # nothing is out of order): `limit` is the smallest prev for which it does not.
        limit = _INT64_MIN + self._window
        if limit > 2**63 - 1:
            late = np.zeros(m, bool)
        else:
            # prev - window with wrap-around arithmetic: exact wherever the result fits in int64.
            floor = (prev.view(np.uint64) - np.uint64(self._window)).view(np.int64)
            late = has_prev & (prev >= limit) & (ts < floor)
        outcome = np.where(repeat, _REPEAT, np.where(same_ts, _DUPLICATE, np.where(late, _OUT_OF_ORDER, _KEPT)))
        reason[rows] = outcome

        out = LimitOutcome(MetricBatch(metadata=batch.metadata))
        self._refusals(out, batch, reason, rows, prev)
        if out.refused or out.repeats:
            kept = reason == _KEPT
            kept_fp = fp_col[kept]
            kept_series = {fp: batch.series[fp] for fp in np.unique(kept_fp).tolist()}
            kept_cols = cols.take(kept)
        else:
            kept_series, kept_cols = batch.series, cols
        out.batch = MetricBatch.from_columns(kept_series, kept_cols, batch.metadata)
        _copy_exemplars(batch, out.batch)

        # The newest sample per series after the batch: the last one that raised its maximum.
        ends = np.flatnonzero(np.r_[starts[1:], True]) if m else pos
        end_setter = last_raise[ends]
        changed = end_setter >= group_start[ends]
        changed_groups, changed_ts, changed_bits = g[ends[changed]], ts[end_setter[changed]], bits[end_setter[changed]]
        newest_now = dict(
            zip(
                distinct[changed_groups].tolist(),
                zip(changed_ts.tolist(), changed_bits.tolist(), strict=True),
                strict=True,
            )
        )
        commit = self._committer(new_series, counts, newest_now, version)

        def commit_and_carry() -> None:
            # If the array state is current and is of these very series, carry it past this commit
            # (whether or not other batches were committed since this one was judged).
            carried = self._state
            current = (
                carried is not None
                and carried.version == self._version
                and (carried.fps is distinct or np.array_equal(carried.fps, distinct))
            )
            commit()
            if carried is not None and current:
                self._state = carried.merged(changed_groups, changed_ts, changed_bits, self._version)

        out.commit = commit_and_carry
        return out

    def _series_state(
        self, batch: MetricBatch, distinct: np.ndarray, new_series: dict[int, str], counts: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per distinct series (in order of first appearance): admitted, has a newest sample, its
        timestamp and value bits. Admits new series while their metric has room (filling new_series
        and counts, for the commit)."""
        fps: list[int] = distinct.tolist()
        known, remembered = self._known, self._newest
        admitted_list = [fp in known for fp in fps]
        if not all(admitted_list):
            for g in [g for g, ok in enumerate(admitted_list) if not ok]:
                fp = fps[g]
                name = batch.series[fp].get("__name__", "")
                count = counts.get(name, self._series_per_metric.get(name, 0))
                if count < self._max:
                    counts[name] = count + 1
                    new_series[fp] = name
                    admitted_list[g] = True
        states = [remembered.get(fp) for fp in fps]
        has_newest = np.array([s is not None for s in states], bool)
        if has_newest.any():
            newest_ts = np.array([s[0] if s else 0 for s in states], np.int64)
            newest_bits = np.array([s[1] if s else 0 for s in states], np.uint64)
        else:
            newest_ts, newest_bits = np.zeros(len(fps), np.int64), np.zeros(len(fps), np.uint64)
        return np.array(admitted_list, bool), has_newest, newest_ts, newest_bits

    def _refusals(
        self, out: LimitOutcome, batch: MetricBatch, reason: np.ndarray, rows: np.ndarray, prev: np.ndarray
    ) -> None:
        """Count the refusals by reason; word the first few, in batch order, as _apply_lists does."""
        counts = np.bincount(reason, minlength=6)
        out.repeats = int(counts[_REPEAT])
        for code, label in _REASONS.items():
            if counts[code]:
                out.by_reason[label] = int(counts[code])
        out.refused = sum(out.by_reason.values())
        refused = np.flatnonzero((reason != _KEPT) & (reason != _REPEAT))[:5]
        if not len(refused):
            return
        cols = batch.sample_columns()
        row_of = np.full(len(reason), -1, np.int64)
        row_of[rows] = np.arange(len(rows))
        for i in refused.tolist():
            code, fp, ts = int(reason[i]), int(cols.fingerprint[i]), int(cols.timestamp_ms[i])
            labels = batch.series[fp]
            if code == _WINDOW:
                message = f"timestamp {ts} ms of {format_series(labels)} is outside the accepted window"
            elif code == _LIMIT:
                message = self._limit_message(labels.get("__name__", ""))
            elif code == _DUPLICATE:
                message = f"duplicate sample for timestamp {ts} in {format_series(labels)}"
            else:
                message = f"out of order sample at {ts} (newest {int(prev[row_of[i]])}) in {format_series(labels)}"
            out.messages.append(message)


@dataclass(frozen=True)
class _SeriesState:
    """The newest samples of a set of known series (`fps`, a batch's distinct fingerprints in order
    of first appearance) as arrays, valid while the limits' version is `version`.

    Consecutive writes from one client mostly carry the same series: judging the next one against
    these arrays skips the per-series lookups in the dicts, which stay the source of truth.
    """

    fps: np.ndarray
    has_newest: np.ndarray
    newest_ts: np.ndarray
    newest_bits: np.ndarray
    version: int

    def merged(self, groups: np.ndarray, ts: np.ndarray, bits: np.ndarray, version: int) -> _SeriesState:
        """This state after a commit of newest samples for `groups`: each is taken where it is newer
        than the state's (as the commit does in the dicts)."""
        has_newest, newest_ts, newest_bits = self.has_newest.copy(), self.newest_ts.copy(), self.newest_bits.copy()
        newer = ~has_newest[groups] | (ts > newest_ts[groups])
        take = groups[newer]
        has_newest[take], newest_ts[take], newest_bits[take] = True, ts[newer], bits[newer]
        return _SeriesState(self.fps, has_newest, newest_ts, newest_bits, version)


def _running_max(group: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The running maximum of `ts` within each run of equal `group` values (ascending groups).

    Offsetting each group's values above all of the previous group's makes one global running
    maximum never cross from a group into the next: by the timestamps themselves when their range
    allows (the usual case: a batch spans little time), else by their ranks.
    """
    if not len(ts):
        return ts
    low, high = int(ts.min()), int(ts.max())
    span = high - low + 1
    if span * (int(group[-1]) + 1) < 2**62:
        offset = group.astype(np.int64) * span
        return np.maximum.accumulate((ts - np.int64(low)) + offset) - offset + np.int64(low)
    distinct, rank = np.unique(ts, return_inverse=True)
    offset = group.astype(np.int64) * len(distinct)
    return distinct[np.maximum.accumulate(rank + offset) - offset]


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
