"""What the LogQL engine reads from the store: the seam that collector/store/log_search.py implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from collector.query.logql.ast import LineFilter, Matcher


@dataclass(frozen=True)
class Selection:
    """Entries of the streams the matchers select whose stored line passes every line filter.

    Times are nanoseconds, start inclusive, end exclusive. `limit` caps the entries read, newest first when
    `backward`, oldest first otherwise.
    """

    matchers: tuple[Matcher, ...]
    start_ns: int
    end_ns: int
    line_filters: tuple[LineFilter, ...] = ()
    limit: int = 100
    backward: bool = True


@dataclass
class Entry:
    """One log record as LogQL sees it: stream labels, structured metadata (trace_id, span_id, attributes)."""

    ts_ns: int
    line: str
    stream: dict[str, str]
    metadata: dict[str, str] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        """Stream labels and structured metadata together, as the pipeline and the answer see them."""
        return {**self.metadata, **self.stream}


@dataclass
class WindowTotals:
    """One group's entries and line bytes in the windows of the steps where it has any (step indexes); the bytes
    are 0s unless the read asked for them."""

    labels: dict[str, str]
    steps: list[int]
    entries: list[int]
    bytes: list[int]


class LogSource(Protocol):
    def entries(self, selection: Selection) -> list[Entry]:
        """The selected entries, in the selection's direction."""

    def indexed_label(self, name: str) -> bool:
        """Whether `name` is a stream label the store can group by itself (not structured metadata)."""

    def window_totals(
        self,
        selection: Selection,
        by: Sequence[str],
        first_step_ns: int,
        step_ns: int,
        steps: int,
        range_ns: int,
        *,
        line_bytes: bool = False,
    ) -> list[WindowTotals]:
        """Per group of the `by` stream labels, for each step t = first + k * step: the selected entries with
        t - range < ts <= t, and, when `line_bytes`, the bytes of their lines (else 0s: summing line lengths
        makes the store read every line). Only steps with entries are listed."""
