"""Per-query evaluation state: the step grid, the reader, limits and annotations."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collector.query.promql.errors import TOO_MANY_SAMPLES, PromQLError, execution
from collector.query.promql.positions import position
from collector.query.promql.storage import Matcher, SeriesData, SeriesReader
from collector.query.promql.values import I64

SharedValues = dict[tuple[str, bytes], tuple[Any, int]]


@dataclass
class EvalContext:
    """What every node's evaluation sees. Times are milliseconds; `start_ms`/`end_ms` are the query's own
    bounds (what `@ start()` and `@ end()` mean, also inside subqueries)."""

    reader: SeriesReader
    start_ms: int
    end_ms: int
    lookback_ms: int
    max_samples: int
    deadline: float
    query: str
    cancel: threading.Event | None = None
    step_ms: int = 0  # the range query's step (0 for instant queries), for step()
    samples: int = 0
    # Test hook (promqltest's @-pinning invariance check): selectors and subqueries without `@` outside
    # any subquery read as if they had `@ pin_ms`.
    pin_ms: int | None = None
    subquery_depth: int = 0
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    # Values of sub-expressions already evaluated by other queries of a batch at the same time (shared
    # between their contexts; Engine.instant_many): by (expression text, step times), with the samples
    # their evaluation read. None: nothing shared.
    shared: SharedValues | None = None

    def check_deadline(self) -> None:
        """Called between nodes and selections: a set `cancel` event or a passed deadline ends the query."""
        if self.cancel is not None and self.cancel.is_set():
            raise PromQLError("canceled", "query was canceled in expression evaluation")
        if time.monotonic() > self.deadline:
            raise PromQLError("timeout", "query timed out in expression evaluation")

    def select(self, alternatives: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int) -> list[SeriesData]:
        """Read the series of a selector once, counting the samples against the limit."""
        self.check_deadline()
        out: list[SeriesData] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        for matchers in alternatives:
            for s in self.reader.select(matchers, start_ms, end_ms):
                if len(alternatives) > 1:  # one selector's series are distinct label sets already
                    key = tuple(sorted(s.labels.items()))
                    if key in seen:
                        continue
                    seen.add(key)
                out.append(s)
                self.samples += len(s.timestamps)
                if self.samples > self.max_samples:
                    raise execution(TOO_MANY_SAMPLES)
        return out

    def warn(self, message: str, at: tuple[str, int | None] | None = None) -> None:
        """Add a warning; `at` = (function or aggregation name, argument index or None for the call) says
        which sub-expression's position ends the text, as Prometheus renders annotations."""
        text = f"PromQL warning: {message}{self._position(at)}"
        if text not in self.warnings:
            self.warnings.append(text)

    def info(self, message: str, at: tuple[str, int | None] | None = None) -> None:
        text = f"PromQL info: {message}{self._position(at)}"
        if text not in self.infos:
            self.infos.append(text)

    def _position(self, at: tuple[str, int | None] | None) -> str:
        return "" if at is None else position(self.query, at[0], at[1])


def step_times(start_ms: int, end_ms: int, step_ms: int) -> I64:
    return np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
