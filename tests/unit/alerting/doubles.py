"""Small real test doubles for the evaluator's own seams: an in-memory series table, a recording notifier.

SeriesTable is a tiny TSDB: `write` is a `write_samples` sink, and calling it is a QueryFunc that answers
`name`, `name{label="value"}` and either of those followed by `> N`, `< N`, ... (a filter, which keeps the
name) with each series' newest sample within the 5-minute lookback (stale markers end a series), as an
instant query does. `go_time_ns` reads the times Prometheus' API writes.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from alerting.model import Alert, QueryError, Sample

LOOKBACK_S = 300.0
_EXPR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{([^}]*)\})?\s*(?:(>=|<=|==|!=|>|<)\s*(\S+))?\s*$")
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
_STALE = struct.pack("<d", struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0])


def render(
    text: str, labels: Mapping[str, str], value: float, external_labels: Mapping[str, str], external_url: str
) -> str:
    """`{{ $labels.x }}`, `{{ $value }}` and `{{ $externalLabels.x }}` only: enough for the state machine."""

    def one(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref == "$value":
            return f"{value:g}"
        if ref.startswith("$labels."):
            return labels.get(ref[len("$labels.") :], "")
        if ref.startswith("$externalLabels."):
            return external_labels.get(ref[len("$externalLabels.") :], "")
        raise ValueError(f"unsupported template reference {ref}")

    return re.sub(r"\{\{\s*(\$[a-zA-Z.]+)\s*\}\}", one, text)


@dataclass
class SeriesTable:
    series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = field(default_factory=dict)
    fail: str | None = None  # when set, every query raises a retryable QueryError with this text
    queries: list[tuple[str, float]] = field(default_factory=list)

    def add(self, labels: Mapping[str, str], at: float, value: float) -> None:
        points = self.series.setdefault(tuple(sorted(labels.items())), [])
        points.append((at, value))
        points.sort()

    def write(self, samples: Sequence[tuple[Mapping[str, str], float, float]]) -> None:
        for labels, at, value in samples:
            self.add(labels, at, value)

    def __call__(self, expr: str, at: float) -> Sequence[Sample]:
        self.queries.append((expr, at))
        if self.fail is not None:
            raise QueryError(self.fail, retryable=True)
        m = _EXPR.match(expr)
        if m is None:
            raise QueryError(f"SeriesTable cannot evaluate {expr!r}", retryable=False)
        name, matchers, op, threshold = m.groups()
        want = {"__name__": name}
        for part in filter(None, (p.strip() for p in (matchers or "").split(","))):
            k, v = part.split("=", 1)
            want[k.strip()] = v.strip().strip('"')
        out = []
        for key, points in self.series.items():
            labels = dict(key)
            if any(labels.get(k) != v for k, v in want.items()):
                continue
            current = [(t, v) for t, v in points if at - LOOKBACK_S < t <= at]
            if not current or struct.pack("<d", current[-1][1]) == _STALE:
                continue
            value = current[-1][1]
            if op is not None and (math.isnan(value) or not _OPS[op](value, float(threshold))):
                continue
            out.append(Sample(labels, value))
        return out


@dataclass
class RecordingNotifier:
    """Keeps every call: (alerts, now)."""

    calls: list[tuple[list[Alert], float]] = field(default_factory=list)

    def notify(self, alerts: Sequence[Alert], now: float) -> None:
        self.calls.append((list(alerts), now))

    @property
    def last(self) -> list[Alert]:
        return self.calls[-1][0] if self.calls else []


def go_time_ns(text: str) -> int:
    """Go's RFC 3339 (nanoseconds, UTC 'Z') as Unix nanoseconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    seconds = int(dt.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC).timestamp())
    return seconds * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])
