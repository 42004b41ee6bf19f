"""One type per line protocol field: points whose field type differs from the recorded one are refused.

InfluxDB 1.x keeps one type per field of a measurement and refuses a point that writes another one
(tsdb `validateSeriesAndFields`); checked against the real influxd 1.6:
- The whole point (line) is dropped, its other fields too; the rest of the batch is written, and the
  answer is a 400 `partial write: field type conflict: input field "f" on measurement "m" is type
  integer, already exists as type float dropped=N`, naming the first conflict, N the dropped points.
- Within one batch, the first point that writes a new field sets its type: later points of the batch
  that write another type are dropped the same way.
- String fields count: `f="x"` after `f=1` is a conflict too (and sets the type `string` if first).
- Where influxd 1.6 differs, and this does not follow: a batch that writes a field new to the shard
  with two types across different series (or from a point it drops for another field) is refused
  whole with a bare 400 `field type conflict` (its field creation fails after validation); here the
  first point's type wins and the others are dropped as above. And the fields a dropped point writes
  before its conflicting one are created by influxd; here a dropped point sets no type.

Scope: InfluxDB's rule holds per database (and retention policy) and per shard (a time range, 7 days
by default). Here the type is kept per write target (the write's own labels: `db` and `rp`, or
`bucket`) and per metric name (`<measurement>_<field>`, what the store has one of), for all time:
the store cannot hold two types in one series, so a type change a shard later, which InfluxDB
accepts, is refused here. Types live in memory, seeded from the store at startup, and new ones are
returned for the caller to record in the store.

Types are InfluxDB's names: float, integer, unsigned, boolean, string.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from collector.codecs.influx_metrics import InfluxSamples
from collector.codecs.line_protocol_columns import CODE_STRING, INFLUX_TYPE_NAMES
from collector.model import MetricBatch

_UNKNOWN = 255  # no type recorded yet
_CODE_OF_TYPE = {name: code for code, name in enumerate(INFLUX_TYPE_NAMES)}


def write_scope(labels: Mapping[str, str]) -> str:
    """The canonical key of a write target from the write's own labels: `db=d`, `db=d,rp=r`, `bucket=b`."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@dataclass
class FieldTypeOutcome:
    """What a write keeps: `samples` without the dropped lines' rows (the same object when none)."""

    samples: InfluxSamples
    dropped_lines: list[int] = field(default_factory=list)  # 1-based, ascending
    message: str = ""  # InfluxDB's wording of the first conflict, "" when none
    new_types: list[tuple[str, str]] = field(default_factory=list)  # (metric, type) first set by this write


class FieldTypes:
    """The recorded type of each (write target, metric). Not thread-safe: called from the event loop."""

    def __init__(self, known: Iterable[tuple[str, str, str]] = ()) -> None:
        """known: (write scope, metric name, type name) as recorded in the store."""
        self._types: dict[str, dict[str, int]] = {}
        for scope, metric, type_name in known:
            code = _CODE_OF_TYPE.get(type_name)
            if code is not None:
                self._types.setdefault(scope, {}).setdefault(metric, code)
        # Per scope, the expected type code per index of the last metric name list seen: writes from
        # one client map through one SeriesMapper table, whose name list only grows, so most writes
        # are checked with one array lookup and no Python loop.
        self._expected: dict[str, tuple[list[str], np.ndarray]] = {}

    def type_of(self, scope: str, metric: str) -> str | None:
        code = self._types.get(scope, {}).get(metric)
        return None if code is None else INFLUX_TYPE_NAMES[code]

    def forget(self, scope: str, types: Iterable[tuple[str, str]]) -> None:
        """Undo the types a write set (its store write failed): its retry is judged as new."""
        recorded = self._types.get(scope, {})
        for metric, _ in types:
            recorded.pop(metric, None)
        self._expected.pop(scope, None)

    def check(self, samples: InfluxSamples, scope: str) -> FieldTypeOutcome:
        """Judge a write's fields against the recorded types, and record the types it sets first."""
        names = samples.metric_names
        if not names:
            return FieldTypeOutcome(samples)
        expected = self._expected_codes(scope, names)
        codes, kinds = samples.metric, samples.kind
        if samples.strings:
            codes = np.concatenate([codes, np.array([c for _, c in samples.strings], np.int32)])
            kinds = np.concatenate([kinds, np.full(len(samples.strings), CODE_STRING, np.uint8)])
        want = expected[codes]
        mismatch = want != kinds
        if not mismatch.any():
            return FieldTypeOutcome(samples)
        # New metrics each written with one type only: they take it, nothing is dropped.
        if (want[mismatch] == _UNKNOWN).all():
            combos = np.unique(codes[mismatch].astype(np.int64) * 8 + kinds[mismatch])
            metrics = combos // 8
            if len(np.unique(metrics)) == len(metrics):
                recorded = self._types.setdefault(scope, {})
                new_types = []
                for metric, kind in zip(metrics.tolist(), (combos % 8).tolist(), strict=True):
                    recorded[names[metric]] = kind
                    expected[metric] = kind
                    new_types.append((names[metric], INFLUX_TYPE_NAMES[kind]))
                return FieldTypeOutcome(samples, new_types=new_types)
        return self._check_lines(samples, scope, codes, kinds)

    def _expected_codes(self, scope: str, names: list[str]) -> np.ndarray:
        """The recorded type code per name of `names` (_UNKNOWN where none), from the cache if it holds them."""
        cached = self._expected.get(scope)
        if cached is not None and cached[0] is names and len(cached[1]) == len(names):
            return cached[1]
        recorded = self._types.get(scope, {})
        start = len(cached[1]) if cached is not None and cached[0] is names and len(cached[1]) < len(names) else 0
        tail = np.array([recorded.get(name, _UNKNOWN) for name in names[start:]], np.uint8)
        expected = np.concatenate([cached[1], tail]) if start and cached is not None else tail
        self._expected[scope] = (names, expected)
        return expected

    def _check_lines(
        self, samples: InfluxSamples, scope: str, codes: np.ndarray, kinds: np.ndarray
    ) -> FieldTypeOutcome:
        """The rule line by line, in body order (the rare case: a conflict, or a new metric written
        with two types in one write)."""
        names = samples.metric_names
        lines = samples.line
        if samples.strings:
            lines = np.concatenate([lines, np.array([n for n, _ in samples.strings], np.int32)])
        order = np.argsort(lines, kind="stable").tolist()
        line_list, code_list, kind_list = lines.tolist(), codes.tolist(), kinds.tolist()
        recorded = self._types.setdefault(scope, {})
        out = FieldTypeOutcome(samples)
        new: dict[str, int] = {}
        i = 0
        while i < len(order):
            number = line_list[order[i]]
            j = i
            while j < len(order) and line_list[order[j]] == number:
                j += 1
            pending: dict[str, int] = {}
            conflict = -1
            for row in order[i:j]:
                name, kind = names[code_list[row]], kind_list[row]
                have = pending.get(name, recorded.get(name))
                if have is None:
                    pending[name] = kind
                elif have != kind:
                    conflict = row
                    break
            if conflict < 0:
                recorded.update(pending)
                new.update(pending)
            else:
                out.dropped_lines.append(number)
                if not out.message:
                    measurement, fld = samples.field_of(conflict)
                    have = pending.get(names[code_list[conflict]], recorded.get(names[code_list[conflict]]))
                    assert have is not None
                    out.message = (
                        f'field type conflict: input field "{fld}" on measurement "{measurement}" is type '
                        f"{INFLUX_TYPE_NAMES[kind_list[conflict]]}, already exists as type {INFLUX_TYPE_NAMES[have]}"
                    )
            i = j
        self._expected.pop(scope, None)
        out.new_types = [(name, INFLUX_TYPE_NAMES[kind]) for name, kind in new.items()]
        if out.dropped_lines:
            out.samples = _without_lines(samples, out.dropped_lines)
        return out


def _without_lines(samples: InfluxSamples, dropped: list[int]) -> InfluxSamples:
    """`samples` without the rows of the `dropped` lines (the type columns follow)."""
    keep = ~np.isin(samples.line, np.array(dropped, np.int32))
    cols = samples.batch.sample_columns()
    kept = cols.take(keep)
    series = {fp: samples.batch.series[fp] for fp in np.unique(kept.fingerprint).tolist()}
    present = {labels.get("__name__", "") for labels in series.values()}
    metadata = {name: meta for name, meta in samples.batch.metadata.items() if name in present}
    gone = set(dropped)
    return InfluxSamples(
        batch=MetricBatch.from_columns(series, kept, metadata),
        samples=int(keep.sum()),
        skipped_strings=sum(1 for number, _ in samples.strings if number not in gone),
        metric=samples.metric[keep],
        metric_names=samples.metric_names,
        kind=samples.kind[keep],
        line=samples.line[keep],
        strings=[(number, code) for number, code in samples.strings if number not in gone],
        columns=None,
    )
