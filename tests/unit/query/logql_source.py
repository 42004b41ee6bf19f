"""A real, small LogSource in memory for LogQL engine tests: selects as the store does (matchers on stream
labels, the pushed line filters, [start, end)), and records what it was asked."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from collector.query.logql.regex import compile_go
from collector.query.logql.storage import Entry, Selection, WindowTotals


def _label_matches(op: str, value: str, actual: str) -> bool:
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    found = compile_go(value).fullmatch(actual) is not None
    return found if op == "=~" else not found


def _line_passes(op: str, value: str, line: str) -> bool:
    if op == "|=":
        return value in line
    if op == "!=":
        return value not in line
    found = compile_go(value).search(line) is not None
    return found if op == "|~" else not found


class MemorySource:
    """`indexed`: the stream labels the store would say it indexes (what the engine may push down)."""

    def __init__(self, entries: list[Entry], indexed: Sequence[str] = ("app", "level")) -> None:
        self.stored = sorted(entries, key=lambda e: e.ts_ns)
        self.indexed = tuple(indexed)
        self.selections: list[Selection] = []
        self.pushed_sums = 0
        self.byte_reads: list[bool] = []  # line_bytes of each window_totals call

    def entries(self, selection: Selection) -> list[Entry]:
        self.selections.append(selection)
        out = []
        for e in reversed(self.stored) if selection.backward else self.stored:
            if not selection.start_ns <= e.ts_ns < selection.end_ns:
                continue
            if not all(_label_matches(m.op, m.value, e.stream.get(m.label, "")) for m in selection.matchers):
                continue
            assert all(f.plain for f in selection.line_filters), "only plain line filters go to the store"
            if all(_line_passes(f.op, f.value, e.line) for f in selection.line_filters):
                out.append(e)
        return out[: selection.limit]

    def indexed_label(self, name: str) -> bool:
        return name in self.indexed

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
        self.pushed_sums += 1
        self.byte_reads.append(line_bytes)
        groups: dict[tuple[str, ...], dict[int, list[int]]] = {}
        for e in self.entries(dataclasses.replace(selection, limit=10**9)):
            for k in range(steps):
                t = first_step_ns + k * step_ns
                if t - range_ns < e.ts_ns <= t:
                    cell = groups.setdefault(tuple(e.stream.get(b, "") for b in by), {}).setdefault(k, [0, 0])
                    cell[0] += 1
                    cell[1] += len(e.line.encode()) if line_bytes else 0
        return [
            WindowTotals(
                {b: v for b, v in zip(by, key, strict=True) if v},
                sorted(cells),
                [cells[k][0] for k in sorted(cells)],
                [cells[k][1] for k in sorted(cells)],
            )
            for key, cells in groups.items()
        ]
