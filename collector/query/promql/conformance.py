"""promqltest runner: evaluates `.test` files with the engine and reports passed/failed/skipped statements.

    python -m collector.query.promql.conformance DIR [--verbose]

Evaluates the `*.test` files directly in DIR (not its subfolders), prints `N passed, M failed, K skipped`
and a table per file, and exits 0: it reports, it does not gate. Statements that check Prometheus' exact
warning, info or error wording are counted apart; statements on native histograms are skipped.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import promql_parser as pp

from collector.query.promql.engine import Engine
from collector.query.promql.errors import PromQLError
from collector.query.promql.expectations import Mismatch, check_annotations, check_invariance, check_result
from collector.query.promql.memory_reader import MemoryReader, matcher_holds
from collector.query.promql.parse import parse_expr, selector_matchers
from collector.query.promql.storage import SeriesReader
from collector.query.promql.testfile import HISTOGRAM, Clear, Eval, Load, TestFileError, parse_test_file
from collector.query.promql.values import Labels, label_key

Status = Literal["passed", "failed", "skipped"]


class ConformanceStore(Protocol):
    """Where the runner loads series: a fresh, empty store per file and after every `clear`."""

    def clear(self) -> None: ...

    def add(self, labels: Labels, timestamps: Sequence[int], values: Sequence[float]) -> None: ...

    def flush(self) -> None: ...

    def reader(self) -> SeriesReader: ...


class MemoryStore:
    """The default store: a MemoryReader."""

    def __init__(self) -> None:
        self._reader = MemoryReader()

    def clear(self) -> None:
        self._reader.clear()

    def add(self, labels: Labels, timestamps: Sequence[int], values: Sequence[float]) -> None:
        self._reader.add(labels, timestamps, values)

    def flush(self) -> None:
        return None

    def reader(self) -> SeriesReader:
        return self._reader


@dataclass
class StatementResult:
    file: str
    line: int
    status: Status
    checks_text: bool
    message: str = ""


@dataclass
class FileReport:
    file: str
    results: list[StatementResult] = field(default_factory=list)

    def count(self, status: Status, *, text: bool | None = None) -> int:
        return sum(1 for r in self.results if r.status == status and (text is None or r.checks_text == text))


def run_file(
    path: Path,
    store: ConformanceStore,
    *,
    invariance: bool = True,
    engine_factory: Callable[[SeriesReader], Engine] | None = None,
) -> FileReport:
    """Run one file on a store. With `invariance`, instant statements must also pass the reference
    harness' extra checks (DSL.md 7.5: @-pinning at other times, and range mode)."""
    report = FileReport(path.name)
    make_engine = engine_factory or (lambda r: Engine(r, max_samples=50_000_000, timeout_s=100.0))
    try:
        commands = parse_test_file(path.read_text())
    except TestFileError as exc:
        report.results.append(StatementResult(path.name, 0, "failed", False, f"file error: {exc}"))
        return report
    store.clear()
    histogram_series: list[Labels] = []
    dirty = False
    for cmd in commands:
        if isinstance(cmd, Clear):
            store.clear()
            histogram_series = []
            continue
        if isinstance(cmd, Load):
            _load(store, cmd, histogram_series)
            dirty = True
            continue
        assert isinstance(cmd, Eval)
        if _uses_histograms(cmd, histogram_series):
            report.results.append(StatementResult(path.name, cmd.line, "skipped", cmd.checks_text, "native histograms"))
            continue
        # Loaded data reaches the store only when a statement needs it (skipped ones never do).
        if dirty:
            store.flush()
            dirty = False
        engine = make_engine(store.reader())
        report.results.append(_run_eval(path.name, cmd, engine, invariance=invariance))
    return report


def _load(store: ConformanceStore, cmd: Load, histogram_series: list[Labels]) -> None:
    # The same series twice in one block: the later line replaces the earlier one.
    latest = {label_key(s.labels): s for s in cmd.series}
    for s in latest.values():
        ts: list[int] = []
        vals: list[float] = []
        for i, v in enumerate(s.values):
            if v is HISTOGRAM:
                histogram_series.append(s.labels)
            elif isinstance(v, float):
                ts.append(i * cmd.interval_ms)
                vals.append(v)
        if ts:
            store.add(s.labels, ts, vals)
        if cmd.with_nhcb:
            name = s.labels.get("__name__", "")
            for suffix in ("_bucket", "_count", "_sum"):
                if name.endswith(suffix):
                    base = {k: v for k, v in s.labels.items() if k != "le"}
                    base["__name__"] = name[: -len(suffix)]
                    histogram_series.append(base)


def _selectors(node: object) -> list[object]:
    out: list[object] = []

    def visit(n: object) -> None:
        if isinstance(n, pp.VectorSelector):
            out.append(n)
            return
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(n, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                visit(child)
        for child in getattr(n, "args", None) or []:
            visit(child)

    visit(node)
    return out


def _uses_histograms(ev: Eval, histogram_series: list[Labels]) -> bool:
    if ev.expects_histograms:
        return True
    if not histogram_series:
        return False
    try:
        node = parse_expr(ev.expr, step_ms=ev.step_ms, range_ms=ev.end_ms - ev.start_ms)
    except PromQLError:
        # Syntax the parser lacks (e.g. the native-histogram trim operators `</`, `>/`) on a histogram
        # series counts as a native-histogram statement.
        names = {lab.get("__name__", "") for lab in histogram_series} - {""}
        return any(re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", ev.expr) for n in names)
    for sel in _selectors(node):
        for alternative in selector_matchers(sel):
            if any(all(matcher_holds(m, lab) for m in alternative) for lab in histogram_series):
                return True
    return False


def _run_eval(file: str, ev: Eval, engine: Engine, *, invariance: bool) -> StatementResult:
    def result(status: Status, message: str = "") -> StatementResult:
        return StatementResult(file, ev.line, status, ev.checks_text, message)

    try:
        if ev.instant:
            res = engine.instant(ev.expr, ev.at_ms)
        else:
            res = engine.range(ev.expr, ev.start_ms, ev.end_ms, ev.step_ms)
    except PromQLError as exc:
        # Every expression in a test file parses in Prometheus (the reference harness rejects the file
        # otherwise), so a parse error is this engine's gap, even where the statement expects a failure.
        if not ev.expect_fail or str(exc).startswith("parse error"):
            return result("failed", f"unexpected error: {exc.error_type}: {exc}")
        if ev.fail_msg is not None and str(exc) != ev.fail_msg:
            return result("failed", f"error text {str(exc)!r} != {ev.fail_msg!r}")
        if ev.fail_regex is not None and not re.search(ev.fail_regex, str(exc)):
            return result("failed", f"error text {str(exc)!r} does not match {ev.fail_regex!r}")
        return result("passed")
    except Exception as exc:  # an engine bug must not stop the run: report it on the statement
        return result("failed", f"crash: {type(exc).__name__}: {exc}")
    if ev.expect_fail:
        return result("failed", "expected failure, query succeeded")
    try:
        check_annotations(ev, res)
        check_result(ev, res)
        if invariance and ev.instant:
            check_invariance(ev, engine)
    except Mismatch as exc:
        return result("failed", str(exc))
    return result("passed")


def run_directory(
    directory: Path, store_factory: Callable[[], ConformanceStore] = MemoryStore, *, invariance: bool = True
) -> list[FileReport]:
    """Every `*.test` file directly in `directory`, in name order."""
    return [run_file(p, store_factory(), invariance=invariance) for p in sorted(directory.glob("*.test"))]


def format_reports(reports: list[FileReport], *, verbose: bool = False) -> str:
    passed = sum(r.count("passed") for r in reports)
    failed = sum(r.count("failed") for r in reports)
    skipped = sum(r.count("skipped") for r in reports)
    text_passed = sum(r.count("passed", text=True) for r in reports)
    text_failed = sum(r.count("failed", text=True) for r in reports)
    lines = [f"{passed} passed, {failed} failed, {skipped} skipped"]
    value_total = passed + failed - text_passed - text_failed
    value_passed = passed - text_passed
    rate = 100.0 * value_passed / value_total if value_total else 100.0
    lines.append(
        f"value checks: {value_passed}/{value_total} passed ({rate:.1f}%); "
        f"exact warning/error text checks: {text_passed} passed, {text_failed} failed"
    )
    lines.append("")
    width = max([len(r.file) for r in reports] + [4])
    lines.append(f"{'file':<{width}}  passed  failed  skipped")
    for r in reports:
        lines.append(f"{r.file:<{width}}  {r.count('passed'):>6}  {r.count('failed'):>6}  {r.count('skipped'):>7}")
    if verbose:
        lines.append("")
        for r in reports:
            for s in r.results:
                if s.status == "failed":
                    tag = " [text]" if s.checks_text else ""
                    lines.append(f"FAIL {s.file}:{s.line}{tag}: {s.message}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--verbose", "-v", action="store_true", help="list every failed statement")
    parser.add_argument(
        "--no-invariance", action="store_true", help="skip the extra @-pinning and range-mode runs of DSL.md 7.5"
    )
    args = parser.parse_args(argv)
    reports = run_directory(args.directory, invariance=not args.no_invariance)
    try:
        print(format_reports(reports, verbose=args.verbose))
    except BrokenPipeError:  # `| head`: the reader went away; silence the flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
