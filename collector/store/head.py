"""The recent samples of every series, in memory: what the head block is to Prometheus' TSDB.

A PromQL read of the last hours (a dashboard's refresh, a rule group's round) costs chDB about 10 ms
however few samples it needs: the samples of each series sit in compressed blocks of thousands, and a
short read still decodes whole blocks (bench/promql_range.py: 14 ms of a 16 ms `sum(rate(..[5m]))`
over 1 h). The head keeps a copy of what the store acknowledged since `floor_ms`, and `MetricReads`
answers a selector from it whenever the selector's range starts at or after the floor.

The promise that makes this safe: every sample in the store with a timestamp at or after `floor_ms` is
in the head. The writer appends each insert's samples right after the store took them (so the head never
holds a sample the store lost); at startup `load` copies the window from the store before anything is
accepted; samples older than the floor are skipped (the store answers for that time); and the floor only
moves forward (the window slides, or memory runs short). With several collectors writing into one
ClickHouse server, one collector's head would miss the others' samples: the head is then off unless
configured (config.py, storage.head_window).

Layout: sorted runs plus a pending list. A run holds samples sorted by (fingerprint, time) as two columns,
`keys` = dense series index << 40 | (time - base) and `values`; finding any set of series and a time
range in a run is two vectorised binary searches. Appends go to the pending list (unsorted, small) and are
sorted into a run once it holds PENDING_ROWS; a maintenance thread merges runs of like size (so reads see
few runs), merges the newest further when writes pause, and trims what fell below the floor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.query.promql.memory_reader import matcher_holds
from collector.query.promql.regex import compile_go
from collector.query.promql.storage import Matcher
from collector.store.engine import Engine

log = logging.getLogger("observatory.head")

NAME = "__name__"
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_TIME_BITS = 40  # milliseconds after a run's base: 34 years
_TIME_MASK = (1 << _TIME_BITS) - 1
_MAX_SERIES_PER_RUN = 1 << (63 - _TIME_BITS)  # dense index bits left in a signed 64-bit key
PENDING_ROWS = 65_536  # sorted into a run past this: a read scans the pending list whole
IDLE_MERGE_S = 2.0  # writes paused this long: merge the newest runs
IDLE_MERGE_ALL_ROWS = 1_000_000  # ... and all of them when they are this few (about 0.1 s to sort)


@dataclass(frozen=True)
class _Run:
    """Samples sorted by (fingerprint, time). Never changed once made: readers use it without a lock."""

    fingerprints: U64  # the distinct fingerprints, sorted; a key's dense index points in here
    keys: I64  # dense index << _TIME_BITS | (time - base), ascending
    values: F64
    base_ms: int
    min_ms: int
    max_ms: int

    @property
    def rows(self) -> int:
        return len(self.keys)

    def columns(self) -> tuple[U64, I64, F64]:
        return self.fingerprints[self.keys >> _TIME_BITS], (self.keys & _TIME_MASK) + self.base_ms, self.values

    def find(self, fps: U64, start_ms: int, end_ms: int) -> tuple[U64, I64, F64]:
        """Samples of these fingerprints (sorted, distinct) in [start_ms, end_ms], by (fingerprint, time)."""
        if start_ms > self.max_ms or end_ms < self.min_ms or not len(fps):
            return _EMPTY
        pos = np.searchsorted(self.fingerprints, fps)
        pos = np.minimum(pos, len(self.fingerprints) - 1)
        hit = self.fingerprints[pos] == fps
        if not hit.any():
            return _EMPTY
        dense = pos[hit].astype(np.int64) << _TIME_BITS
        lo_t = max(start_ms - self.base_ms, 0)
        hi_t = min(end_ms - self.base_ms, _TIME_MASK)
        lo = np.searchsorted(self.keys, dense | lo_t, side="left")
        hi = np.searchsorted(self.keys, dense | hi_t, side="right")
        return _gather(fps[hit], lo, hi, self.keys, self.values, self.base_ms)


_EMPTY: tuple[U64, I64, F64] = (np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.float64))


def _gather(fps: U64, lo: I64, hi: I64, keys: I64, values: F64, base_ms: int) -> tuple[U64, I64, F64]:
    """Rows lo[i]:hi[i] for every i, in that order, with fps[i] repeated over its rows."""
    lens = hi - lo
    total = int(lens.sum())
    if total == 0:
        return _EMPTY
    # Row indices without a Python loop: each segment's start, then a running count within it.
    starts = np.repeat(lo - np.r_[0, np.cumsum(lens)[:-1]], lens)
    rows = starts + np.arange(total)
    return np.repeat(fps, lens), (keys[rows] & _TIME_MASK) + base_ms, values[rows]


def _make_run(fps: U64, ts: I64, values: F64) -> _Run | None:
    """A run from samples in any order; of the samples sharing a series and time the first is kept."""
    if not len(fps):
        return None
    order = np.lexsort((ts, fps))  # stable: among equal (fp, t) the earliest written comes first
    fps, ts, values = fps[order], ts[order], values[order]
    keep = np.r_[True, (fps[1:] != fps[:-1]) | (ts[1:] != ts[:-1])]
    if not keep.all():
        fps, ts, values = fps[keep], ts[keep], values[keep]
    distinct, dense = np.unique(fps, return_inverse=True)
    if len(distinct) >= _MAX_SERIES_PER_RUN:  # 8M series in one run: far past any configured max_samples
        raise ValueError(f"{len(distinct)} series in one head run: more than {_MAX_SERIES_PER_RUN - 1}")
    base = int(ts.min())
    keys = (dense.astype(np.int64) << _TIME_BITS) | (ts - base)
    return _Run(distinct, keys, values, base, base, int(ts.max()))


def _merge(runs: Sequence[_Run]) -> _Run | None:
    cols = [r.columns() for r in runs]
    return _make_run(*(np.concatenate([c[i] for c in cols]) for i in range(3)))


@dataclass(frozen=True)
class _View:
    floor_ms: int
    runs: tuple[_Run, ...]
    pending: tuple[tuple[U64, I64, F64], ...]


class SampleHead:
    """Recent samples of every series, shared by the writer (append) and the readers (select).

    `window_ms` is how far back from now the head keeps samples; `max_samples` caps its memory (16 bytes
    a sample): past it the floor moves forward to keep the newest nine tenths."""

    def __init__(
        self,
        window_ms: int,
        max_samples: int,
        retention_ms: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_ms <= 0 or max_samples <= 0:
            raise ValueError("the head needs a positive window and sample limit")
        self.window_ms = window_ms
        self.max_samples = max_samples
        self._retention_ms = retention_ms
        self._clock = clock
        self._lock = threading.Lock()
        self._floor_ms = self._target_floor()
        self._runs: tuple[_Run, ...] = ()
        self._pending: list[tuple[U64, I64, F64]] = []
        self._pending_rows = 0
        self._labels: dict[int, dict[str, str]] = {}
        self._by_name: dict[str, set[int]] = {}
        self._last_append = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state ------------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _target_floor(self) -> int:
        now = self._now_ms()
        floor = now - self.window_ms
        if self._retention_ms:
            floor = max(floor, now - self._retention_ms)
        return floor

    @property
    def floor_ms(self) -> int:
        return self._floor_ms

    def stats(self) -> dict[str, int]:
        view = self._view()
        return {
            "samples": sum(r.rows for r in view.runs) + sum(len(p[0]) for p in view.pending),
            "series": len(self._labels),
            "runs": len(view.runs),
            "floor_ms": view.floor_ms,
        }

    def _view(self) -> _View:
        with self._lock:
            return _View(self._floor_ms, self._runs, tuple(self._pending))

    # -- writes -----------------------------------------------------------------------------------

    def append(self, series: Mapping[int, dict[str, str]], fps: U64, ts: I64, values: F64) -> None:
        """Samples the store has just taken; `series` has the labels of every fingerprint among them."""
        if not len(fps):
            return
        fps = np.asarray(fps, dtype=np.uint64)
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        with self._lock:
            keep = ts >= self._floor_ms
            if not keep.all():
                fps, ts, values = fps[keep], ts[keep], values[keep]
            if not len(fps):
                return
            for fp in np.unique(fps).tolist():
                if fp not in self._labels:
                    labels = series[fp]
                    self._labels[fp] = labels
                    self._by_name.setdefault(labels.get(NAME, ""), set()).add(fp)
            self._pending.append((fps.copy(), ts.copy(), values.copy()))
            self._pending_rows += len(fps)
            self._last_append = time.monotonic()
            if self._pending_rows >= PENDING_ROWS:
                self._seal_pending()

    def _seal_pending(self) -> None:
        """Sort the pending samples into a run (under the lock: a read sees them in one place or the other)."""
        if not self._pending:
            return
        run = _make_run(*(np.concatenate([p[i] for p in self._pending]) for i in range(3)))
        self._pending = []
        self._pending_rows = 0
        if run is not None:
            self._runs = (*self._runs, run)

    def load(self, engine: Engine, database: str) -> None:
        """Copy the window from the store (at startup, before writes are accepted)."""
        floor = self._target_floor()
        count = int(
            engine.query(
                f"SELECT count() AS n FROM {database}.metrics_samples WHERE TimestampMs >= {{f:Int64}}", {"f": floor}
            )
            .column("n")[0]
            .as_py()
        )
        if count > self.max_samples:  # start with the newest nine tenths of what fits
            row = engine.query(
                f"SELECT TimestampMs FROM {database}.metrics_samples WHERE TimestampMs >= {{f:Int64}} "
                "ORDER BY TimestampMs DESC LIMIT 1 OFFSET {o:UInt64}",
                {"f": floor, "o": self.max_samples * 9 // 10},
            )
            floor = int(row.column("TimestampMs")[0].as_py()) + 1
        cols = engine.query_columns(
            f"SELECT Fingerprint, TimestampMs, Value FROM {database}.metrics_samples WHERE TimestampMs >= {{f:Int64}}",
            {"f": floor},
        )
        fps = cols.get("Fingerprint", np.zeros(0, np.uint64)).astype(np.uint64, copy=False)
        labels: dict[int, dict[str, str]] = {}
        if len(fps):
            table = engine.query(
                f"SELECT Fingerprint, any(Labels) AS L FROM {database}.metrics_series "
                "WHERE Fingerprint IN {fps:Array(UInt64)} GROUP BY Fingerprint",
                {"fps": np.unique(fps).tolist()},
            )
            labels = dict(
                zip(
                    table.column("Fingerprint").to_pylist(),
                    (dict(p) for p in table.column("L").to_pylist()),
                    strict=True,
                )
            )
        known = np.isin(fps, np.fromiter(labels, dtype=np.uint64, count=len(labels)))
        run = _make_run(fps[known], cols["TimestampMs"][known], cols["Value"][known]) if len(fps) else None
        with self._lock:
            self._floor_ms = max(self._floor_ms, floor)
            self._runs = (run,) if run is not None else ()
            self._pending, self._pending_rows = [], 0
            self._labels = labels
            self._by_name = {}
            for fp, series_labels in labels.items():
                self._by_name.setdefault(series_labels.get(NAME, ""), set()).add(fp)
        log.info("head: %d samples of %d series since %d ms loaded from the store", len(fps), len(labels), floor)

    # -- reads ------------------------------------------------------------------------------------

    def _matching(self, matchers: Sequence[Matcher]) -> list[int] | None:
        """Fingerprints of the series matching every matcher (None: a regex Python cannot compile)."""
        try:
            compiled = [compile_go(m.value) if m.op in ("=~", "!~") else None for m in matchers]
        except Exception:
            return None
        names = [m for m in matchers if m.name == NAME and m.op == "="]
        # The name's series hold its equality matcher already: only the others are checked per series.
        rest = [(m, c) for m, c in zip(matchers, compiled, strict=True) if not names or m is not names[0]]
        with self._lock:
            candidates = list(self._by_name.get(names[0].value, ())) if names else list(self._labels)
            if not rest:
                return candidates
            labels = self._labels
            return [fp for fp in candidates if all(matcher_holds(m, labels[fp], c) for m, c in rest)]

    def labels(self, fps: Sequence[int]) -> dict[int, dict[str, str]]:
        with self._lock:
            return {fp: self._labels[fp] for fp in fps if fp in self._labels}

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> tuple[U64, I64, F64] | None:
        """Samples of the matching series in [start_ms, end_ms] by (fingerprint, time), or None when the
        head cannot answer (the range starts before the floor): the store must."""
        if start_ms < self._floor_ms:
            return None
        fps = self._matching(matchers)
        if fps is None:
            return None
        return self._read(np.array(sorted(fps), dtype=np.uint64), start_ms, end_ms)

    def select_names(self, ranges: Mapping[str, tuple[int, int]]) -> tuple[U64, I64, F64] | None:
        """Samples of every series of these metric names, each in its name's range, or None (as select)."""
        if not ranges or min(lo for lo, _ in ranges.values()) < self._floor_ms:
            return None
        parts = []
        asked: list[int] = []
        for name, (lo, hi) in ranges.items():
            with self._lock:
                fps = sorted(self._by_name.get(name, ()))
            asked += fps
            part = self._read(np.array(fps, dtype=np.uint64), lo, hi)
            if part is None:
                return None
            parts.append(part)
        if len(parts) == 1:
            return parts[0]
        m_fps, m_ts, m_values = (np.concatenate([p[i] for p in parts]) for i in range(3))
        return _sorted(m_fps, m_ts, m_values, np.unique(np.array(asked, dtype=np.uint64)))

    def _read(self, fps: U64, start_ms: int, end_ms: int) -> tuple[U64, I64, F64] | None:
        view = self._view()
        if start_ms < view.floor_ms:  # the floor moved since the caller looked
            return None
        found = [part for run in view.runs if len((part := run.find(fps, start_ms, end_ms))[0])]
        sorted_parts = len(found)
        for p_fps, p_ts, p_values in view.pending:  # in arrival order, unsorted
            mask = (p_ts >= start_ms) & (p_ts <= end_ms) & np.isin(p_fps, fps)
            if mask.any():
                found.append((p_fps[mask], p_ts[mask], p_values[mask]))
        if not found:
            return _EMPTY
        if len(found) == 1 and sorted_parts == 1:
            return found[0]
        f_fps, f_ts, f_values = (np.concatenate([f[i] for f in found]) for i in range(3))
        return _sorted(f_fps, f_ts, f_values, fps)

    # -- maintenance ------------------------------------------------------------------------------

    def start(self, interval_s: float = 1.0) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, args=(interval_s,), name="head", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.maintain()
            except Exception:  # a bad round must not end maintenance: the next may succeed
                log.exception("head maintenance failed")

    def maintain(self, idle: bool | None = None) -> None:
        """Slide the floor, seal pending samples, trim what fell well below the floor, merge runs. One
        caller at a time (the maintenance thread, or a test); appends and reads go on meanwhile: appends
        only add runs at the end, so replacing a prefix of the runs under the lock loses nothing."""
        with self._lock:
            if idle is None:
                idle = time.monotonic() - self._last_append > IDLE_MERGE_S
            if self._pending and (idle or time.monotonic() - self._last_append > IDLE_MERGE_S / 2):
                self._seal_pending()
            runs = self._runs
            total = sum(r.rows for r in runs) + self._pending_rows
        floor = self._target_floor()
        if total > self.max_samples:
            floor = max(floor, self._floor_for(runs, total))
        with self._lock:
            # Reads check the floor, so samples below it may stay a while: they are cut out in one pass
            # once the oldest is a slack behind, not at every step of the sliding window.
            self._floor_ms = max(self._floor_ms, floor)
            floor = self._floor_ms
            pending_rows = self._pending_rows
            self._pending = [(f[m], t[m], v[m]) for f, t, v in self._pending for m in [t >= floor] if m.any()]
            self._pending_rows = sum(len(p[0]) for p in self._pending)
            dropped = self._pending_rows < pending_rows
        slack = self.window_ms // 8
        if dropped or total > self.max_samples or any(r.min_ms < floor - slack for r in runs):
            self._trim(runs, floor)
        self._merge_runs(bool(idle))

    def _floor_for(self, runs: Sequence[_Run], total: int) -> int:
        """The floor that keeps the newest nine tenths of max_samples."""
        with self._lock:
            pending = [p[1] for p in self._pending]
        ts = np.concatenate([r.columns()[1] for r in runs] + pending)
        drop = total - self.max_samples * 9 // 10
        cut = int(np.partition(ts, drop)[drop]) if 0 < drop < len(ts) else int(ts.max()) + 1
        log.warning("head: %d samples over the limit of %d, floor raised to %d ms", total, self.max_samples, cut)
        return cut

    def _trim(self, runs: tuple[_Run, ...], floor: int) -> None:
        """Cut the samples below the floor out of `runs` (a prefix of the runs) and forget series left
        without samples."""
        trimmed = tuple(r2 for r in runs if (r2 := _trimmed(r, floor)) is not None)
        live: set[int] = set()
        for r in trimmed:
            live.update(r.fingerprints[np.unique(r.keys >> _TIME_BITS)].tolist())
        with self._lock:
            newer = self._runs[len(runs) :]
            self._runs = trimmed + newer
            for r in newer:
                live.update(r.fingerprints.tolist())
            for f, _, _ in self._pending:
                live.update(np.unique(f).tolist())
            for fp in [fp for fp in self._labels if fp not in live]:
                name = self._labels.pop(fp).get(NAME, "")
                members = self._by_name.get(name)
                if members is not None:
                    members.discard(fp)
                    if not members:
                        del self._by_name[name]

    def _merge_runs(self, idle: bool) -> None:
        """Merge the newest runs while the last is at least half its neighbour (a binary counter: about
        log2 runs in all). When writes pause, merge the newest runs further, up to one that is more than
        twice all those after it: a read then finds its samples in one or two runs, and a big old run is
        not re-sorted at every pause of a steady scrape."""
        with self._lock:
            runs = self._runs
        if len(runs) < 2:
            return
        first = len(runs) - 1
        while first > 0 and runs[first].rows * 2 >= runs[first - 1].rows:
            first -= 1
        if idle and sum(r.rows for r in runs) <= IDLE_MERGE_ALL_ROWS:
            first = 0
        elif idle:
            newer = sum(r.rows for r in runs[first + 1 :]) + runs[first].rows
            while first > 0 and runs[first - 1].rows <= 2 * newer:
                first -= 1
                newer += runs[first].rows
        if first == len(runs) - 1:
            return
        merged = _merge(runs[first:])
        with self._lock:
            self._runs = runs[:first] + ((merged,) if merged is not None else ()) + self._runs[len(runs) :]


def _trimmed(run: _Run, floor: int) -> _Run | None:
    if run.min_ms >= floor:
        return run
    if run.max_ms < floor:
        return None
    keep = (run.keys & _TIME_MASK) + run.base_ms >= floor
    return _Run(run.fingerprints, run.keys[keep], run.values[keep], run.base_ms, floor, run.max_ms)


def _sorted(fps: U64, ts: I64, values: F64, distinct: U64) -> tuple[U64, I64, F64]:
    """By (fingerprint, time), the first of equal pairs kept: the parts come oldest run first.
    `distinct`: the fingerprints asked for, sorted, a superset of those in `fps`.

    One stable sort of an int64 key (the fingerprint's rank among those asked for, then the time since
    the earliest) instead of a lexsort of two columns: about three times faster on a read's samples."""
    if not len(fps):
        return fps, ts, values
    t0 = int(ts.min())
    if int(ts.max()) - t0 < (1 << _TIME_BITS) and len(distinct) < _MAX_SERIES_PER_RUN:
        key = (np.searchsorted(distinct, fps).astype(np.int64) << _TIME_BITS) | (ts - t0)
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((ts, fps))
    fps, ts, values = fps[order], ts[order], values[order]
    keep = np.r_[True, (fps[1:] != fps[:-1]) | (ts[1:] != ts[:-1])]
    if not keep.all():
        fps, ts, values = fps[keep], ts[keep], values[keep]
    return fps, ts, values
