"""Evaluation values: instant vectors over a step grid, scalars, strings, range data, and the query result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from collector.query.promql.errors import SAME_LABELSET, execution
from collector.query.promql.storage import STALE_NAN_BITS

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Labels = dict[str, str]

NAME = "__name__"
# Dropped together with __name__ (Prometheus' type-and-unit labels follow the metric name).
NAME_LIKE = ("__name__", "__type__", "__unit__")


def is_stale(values: F64) -> Bools:
    """True where a value is Prometheus' stale marker (a NaN with one exact bit pattern)."""
    return values.view(np.uint64) == np.uint64(STALE_NAN_BITS)


def stale_nan() -> float:
    return float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])


def label_key(labels: Labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def drop_name(labels: Labels) -> Labels:
    return {k: v for k, v in labels.items() if k not in NAME_LIKE}


def valid_label_name(name: str) -> bool:
    # Label names are any non-empty valid UTF-8; a Go string escape like "\\xff" is not valid UTF-8, and
    # reaches us as a lone character in U+0080..U+00FF.
    return bool(name) and not any("\x80" <= ch <= "\xff" for ch in name)


@dataclass
class Grid:
    """An instant vector evaluated at every step of a grid: row i is one series.

    `present[i, s]` says whether series i has a sample at step s; `values` there is meaningless where not
    present. `drop` marks rows whose metric name is removed at the end (Prometheus' delayed name removal).
    """

    labels: list[Labels]
    values: F64  # (rows, steps)
    present: Bools  # (rows, steps)
    drop: Bools  # (rows,)

    @staticmethod
    def empty(steps: int) -> Grid:
        return Grid([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool), np.zeros(0, dtype=bool))

    @property
    def rows(self) -> int:
        return len(self.labels)

    def select(self, keep: Bools) -> Grid:
        """Rows where `keep` (per row) holds."""
        idx = np.flatnonzero(keep)
        return Grid([self.labels[i] for i in idx], self.values[idx], self.present[idx], self.drop[idx])

    def compact(self) -> Grid:
        """Drop rows without any sample."""
        return self.select(np.asarray(self.present.any(axis=1))) if self.rows else self

    def effective_labels(self, i: int) -> Labels:
        return drop_name(self.labels[i]) if self.drop[i] else self.labels[i]


def merge_rows(g: Grid, *, finalize: bool = False, message: str = SAME_LABELSET) -> Grid:
    """Merge rows with equal label sets that never overlap in time; overlapping rows are an error.

    With `finalize`, names marked for removal are removed first (the end of evaluation); before that, a
    row whose name is to be dropped never merges with one whose name is kept.
    """
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    labels_out: list[Labels] = []
    for i in range(g.rows):
        lab = g.effective_labels(i) if finalize else g.labels[i]
        key = label_key(lab)
        if not finalize and g.drop[i]:
            key = (*key, ("\xff", "drop"))
        if key not in groups:
            groups[key] = []
            labels_out.append(lab)
        groups[key].append(i)
    if len(groups) == g.rows:
        if finalize:
            return Grid(labels_out, g.values, g.present, np.zeros(g.rows, dtype=bool))
        return g
    steps = g.values.shape[1]
    values = np.zeros((len(groups), steps))
    present = np.zeros((len(groups), steps), dtype=bool)
    drop = np.zeros(len(groups), dtype=bool)
    for j, idx in enumerate(groups.values()):
        if len(idx) == 1:
            values[j], present[j] = g.values[idx[0]], g.present[idx[0]]
            drop[j] = bool(g.drop[idx[0]]) and not finalize
            continue
        count = g.present[idx].sum(axis=0)
        if (count > 1).any():
            raise execution(message)
        sub_v, sub_p = g.values[idx], g.present[idx]
        present[j] = count > 0
        values[j] = np.where(sub_p, sub_v, 0.0).sum(axis=0)
        drop[j] = bool(g.drop[idx[0]]) and not finalize
    return Grid(labels_out, values, present, drop)


@dataclass
class ScalarGrid:
    """A scalar at every step of a grid."""

    values: F64


@dataclass
class StringValue:
    value: str


@dataclass
class RangeData:
    """Series samples for a range-vector argument: per series the raw samples (stale markers removed).

    For step s the window is (ends[s] - range_ms, ends[s]]: left-open, right-closed, milliseconds.
    """

    labels: list[Labels]
    timestamps: list[I64]
    values: list[F64]
    ends: I64  # (steps,) window ends after @ and offset
    range_ms: int
    drop: Bools = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # Extended selectors: "anchored"/"smoothed" also read samples up to lookback_ms outside the window.
    mode: str | None = None
    lookback_ms: int = 0

    def windows(self, i: int) -> tuple[I64, I64]:
        """Index bounds [lo, hi) of series i's samples in every step's window."""
        ts = self.timestamps[i]
        lo = np.searchsorted(ts, self.ends - self.range_ms, side="right").astype(np.int64)
        hi = np.searchsorted(ts, self.ends, side="right").astype(np.int64)
        return lo, hi


Value = Grid | ScalarGrid | StringValue | RangeData

ResultType = Literal["matrix", "vector", "scalar", "string"]


@dataclass
class SeriesResult:
    """One series of a matrix result: timestamps in ms, float values."""

    labels: Labels
    timestamps: I64
    values: F64


@dataclass
class Sample:
    """One element of a vector result."""

    labels: Labels
    timestamp_ms: int
    value: float


@dataclass
class QueryResult:
    """What a query returns: `matrix` for range queries (and range-vector instant queries), `vector`,
    `scalar` or `string` for instant queries. Scalar and string results are `(t_ms, value)` pairs."""

    result_type: ResultType
    matrix: list[SeriesResult] = field(default_factory=list)
    vector: list[Sample] = field(default_factory=list)
    scalar: tuple[int, float] | None = None
    string: tuple[int, str] | None = None
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
