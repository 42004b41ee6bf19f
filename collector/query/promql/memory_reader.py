"""An in-memory SeriesReader: the test double for the engine and the default store of the conformance runner."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from collector.query.promql.regex import compile_go
from collector.query.promql.storage import Matcher, SeriesBlock, SeriesData

NAME = "__name__"


def matcher_holds(m: Matcher, labels: dict[str, str], compiled: re.Pattern[str] | None = None) -> bool:
    """Prometheus' matcher semantics: an absent label has the empty value; regexes are fully anchored."""
    value = labels.get(m.name, "")
    if m.op == "=":
        return value == m.value
    if m.op == "!=":
        return value != m.value
    pattern = compiled or compile_go(m.value)
    hit = pattern.fullmatch(value) is not None
    return hit if m.op == "=~" else not hit


class MemoryReader:
    """Series kept in memory; `add` appends samples (a later sample at an existing timestamp replaces it)."""

    def __init__(self) -> None:
        self._series: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
        self._arrays: dict[tuple[tuple[str, str], ...], tuple[np.ndarray, np.ndarray]] = {}

    def clear(self) -> None:
        self._series.clear()
        self._arrays.clear()

    def add(self, labels: dict[str, str], timestamps: Sequence[int], values: Sequence[float]) -> None:
        key = tuple(sorted(labels.items()))
        samples = self._series.setdefault(key, {})
        for t, v in zip(timestamps, values, strict=True):
            samples[int(t)] = float(v)
        self._arrays.pop(key, None)

    def _array(self, key: tuple[tuple[str, str], ...]) -> tuple[np.ndarray, np.ndarray]:
        arr = self._arrays.get(key)
        if arr is None:
            samples = self._series[key]
            ts = np.array(sorted(samples), dtype=np.int64)
            vals = np.array([samples[int(t)] for t in ts], dtype=np.float64)
            arr = self._arrays[key] = (ts, vals)
        return arr

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        compiled = [compile_go(m.value) if m.op in ("=~", "!~") else None for m in matchers]
        out: list[SeriesData] = []
        for key in self._series:
            labels = dict(key)
            if not all(matcher_holds(m, labels, c) for m, c in zip(matchers, compiled, strict=True)):
                continue
            ts, vals = self._array(key)
            lo = int(np.searchsorted(ts, start_ms, side="left"))
            hi = int(np.searchsorted(ts, end_ms, side="right"))
            if hi > lo:
                out.append(SeriesData(labels, ts[lo:hi].copy(), vals[lo:hi].copy()))
        return out

    def select_metrics(self, ranges: Mapping[str, tuple[int, int]]) -> SeriesBlock:
        """Every series of these metric names with its samples in that name's range (MetricRangeReader)."""
        found = [s for name, (lo, hi) in ranges.items() for s in self.select([Matcher(NAME, "=", name)], lo, hi)]
        sizes = np.array([len(s.timestamps) for s in found], dtype=np.int64)
        return SeriesBlock(
            [s.labels for s in found],
            np.concatenate([s.timestamps for s in found]) if found else np.zeros(0, dtype=np.int64),
            np.concatenate([s.values for s in found]) if found else np.zeros(0, dtype=np.float64),
            np.r_[0, np.cumsum(sizes)].astype(np.int64),
        )
