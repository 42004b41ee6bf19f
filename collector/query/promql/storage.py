"""What the PromQL engine reads: the seam between the engine and the store (the store implements it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

MatchOp = Literal["=", "!=", "=~", "!~"]

# Prometheus' stale marker: a NaN with this exact bit pattern (value.StaleNaN). Other NaNs are values.
STALE_NAN_BITS = 0x7FF0000000000002


@dataclass(frozen=True)
class Matcher:
    """A label matcher as PromQL writes it; regexes are fully anchored (RE2 syntax, as Prometheus)."""

    name: str
    op: MatchOp
    value: str


@dataclass
class SeriesData:
    """One series' samples in [start, end]: timestamps in milliseconds, ascending, no duplicates.

    `values` keep stale markers as the NaN with STALE_NAN_BITS; the engine owns both arrays after the call.
    """

    labels: dict[str, str]  # includes __name__
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    # True when the reader knows `values` hold no stale marker (it looked once for all series): the
    # engine then skips looking per series. False means "not known", never "has one".
    stale_free: bool = False


class SeriesReader(Protocol):
    """The store, as the engine sees it. Bounds are inclusive milliseconds.

    Every matcher must hold (an empty value matches an absent label, as in Prometheus); at least one
    matcher does not match the empty string (the parser guarantees it for selectors).
    """

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]: ...


@dataclass
class SeriesBlock:
    """Many series' samples in shared columns: series i owns rows starts[i]:starts[i + 1] of `timestamps`
    (milliseconds, ascending within a series, no duplicates) and `values` (stale markers kept). The engine
    owns the arrays after the call and never writes into them."""

    labels: list[dict[str, str]]  # each includes __name__
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    starts: npt.NDArray[np.int64]  # len(labels) + 1 offsets


@runtime_checkable
class MetricRangeReader(SeriesReader, Protocol):
    """A store that also reads whole metrics at once: what evaluating many queries at one time needs (a
    rule group), so the union of their selectors is one read instead of one per selector."""

    def select_metrics(self, ranges: Mapping[str, tuple[int, int]]) -> SeriesBlock:
        """Every series named by a key of `ranges`, with its samples in that name's inclusive [start, end]
        milliseconds; series without samples there are left out. Series in any order."""
        ...
