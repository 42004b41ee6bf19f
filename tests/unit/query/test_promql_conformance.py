"""Prometheus' own PromQL cases (../shared/promqltest) through the engine, on the in-memory reader and on
the store's normal write path (chDB, read back with the store's SeriesReader).

Every statement not in KNOWN_FAILURES must pass; a statement in it that passes now must be removed from
it, so a regression and an improvement both show at once. The folder itself must pass >= 95% of its
value statements (checks of Prometheus' exact warning/error wording are counted apart).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from collector.model import MetricBatch
from collector.query.promql.conformance import (
    ConformanceStore,
    FileReport,
    MemoryStore,
    format_reports,
    run_file,
)
from collector.query.promql.storage import SeriesReader
from collector.query.promql.values import Labels
from collector.store.promql_reads import MetricReads
from collector.store.schema import migrate
from collector.store.writer import StoreWriter

CASES = Path(__file__).resolve().parents[3].parent / "shared" / "promqltest"
FOLDERS = ["", "experimental", "nh"]
# The same data path as tests/unit/store: chDB allows one per process.
_CHDB_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"obs-store-tests-{os.getpid()}"


class ChdbStore:
    """Loads series through the store's write path (MetricBatch -> StoreWriter) into a fresh database per
    `clear`, and reads them back with the store's PromQL reader."""

    def __init__(self) -> None:
        from collector.store.chdb_engine import ChdbEngine  # opening chDB is deferred to the chDB cases

        self._engine = ChdbEngine.shared(_CHDB_DIR)
        self._databases: list[str] = []
        self._pending: list[tuple[Labels, Sequence[int], Sequence[float]]] = []
        self._current: tuple[StoreWriter, MetricReads] | None = None

    def clear(self) -> None:
        # The next database is made when something reads or writes (most `clear`s are followed by data
        # that skipped statements never read).
        self.close()
        self._pending = []

    def _database(self) -> tuple[StoreWriter, MetricReads]:
        if self._current is None:
            db = f"promql_{uuid.uuid4().hex[:12]}"
            migrate(self._engine, db)
            self._databases.append(db)
            self._current = (StoreWriter(self._engine, db), MetricReads(self._engine, db))
        return self._current

    def add(self, labels: Labels, timestamps: Sequence[int], values: Sequence[float]) -> None:
        self._pending.append((labels, timestamps, values))

    def flush(self) -> None:
        if not self._pending:
            return
        batch = MetricBatch()
        for labels, timestamps, values in self._pending:
            for t, v in zip(timestamps, values, strict=True):
                batch.add_sample(dict(labels), int(t), float(v))
        self._database()[0].write_metrics([batch])
        self._pending = []

    def reader(self) -> SeriesReader:
        return self._database()[1]

    def close(self) -> None:
        for db in self._databases:
            self._engine.command(f"DROP DATABASE IF EXISTS {db}")
        self._databases = []
        self._current = None


def _chdb_store() -> ConformanceStore:
    return ChdbStore()


STORES: dict[str, Callable[[], ConformanceStore]] = {"memory": MemoryStore, "chdb": _chdb_store}
# The extra @-pinning and range-mode runs (DSL.md 7.5) test the engine, not the store: on the memory store
# only, which keeps the chDB run short.
INVARIANCE = {"memory": True, "chdb": False}

# (folder/file, line) of every statement known to fail, on every store.
KNOWN_FAILURES: set[tuple[str, int]] = {
    # experimental/info.test: info() corner cases whose Prometheus rule is unclear (see report)
    ("experimental/info.test", 41),
    ("experimental/info.test", 43),
    # experimental/start_timestamps.test: start timestamps (`@st` lines) are parsed but not stored or used
    ("experimental/start_timestamps.test", 9),
    ("experimental/start_timestamps.test", 14),
    ("experimental/start_timestamps.test", 19),
    ("experimental/start_timestamps.test", 24),
    ("experimental/start_timestamps.test", 48),
    ("experimental/start_timestamps.test", 110),
    ("experimental/start_timestamps.test", 160),
    ("experimental/start_timestamps.test", 167),
}

# Failures that only the store path has (e.g. a value the store does not round-trip), by store.
KNOWN_STORE_FAILURES: dict[str, set[tuple[str, int]]] = {"memory": set(), "chdb": set()}


def _files(folder: str) -> list[Path]:
    return sorted((CASES / folder).glob("*.test"))


def _key(folder: str, report: FileReport, line: int) -> tuple[str, int]:
    return (f"{folder}/{report.file}" if folder else report.file, line)


@pytest.mark.skipif(not CASES.is_dir(), reason=f"the promqltest cases are not at {CASES}")
@pytest.mark.parametrize("store_name", list(STORES))
@pytest.mark.parametrize("folder", FOLDERS)
def test_promqltest_statements(store_name: str, folder: str) -> None:
    store = STORES[store_name]()
    try:
        reports = [run_file(path, store, invariance=INVARIANCE[store_name]) for path in _files(folder)]
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    known = KNOWN_FAILURES | KNOWN_STORE_FAILURES[store_name]
    regressions: list[str] = []
    fixed: list[str] = []
    for report in reports:
        for r in report.results:
            key = _key(folder, report, r.line)
            if r.status == "failed" and key not in known:
                regressions.append(f"{key}: {r.message}")
            elif r.status == "passed" and key in known:
                fixed.append(f"{key}")
    summary = format_reports(reports)
    print(f"\n[{store_name}] {folder or '.'}\n{summary}")
    assert not regressions, "statements that must pass fail:\n" + "\n".join(regressions)
    assert not fixed, "statements pass now: remove from KNOWN_FAILURES:\n" + "\n".join(fixed)
    if folder == "":
        value = [r for rep in reports for r in rep.results if not r.checks_text and r.status != "skipped"]
        passed = sum(1 for r in value if r.status == "passed")
        assert passed >= 0.95 * len(value), f"pass rate {passed}/{len(value)} below 95%"
