"""The in-memory head answers PromQL selectors exactly as the store does, for every range it holds.

Each case writes through the real StoreWriter into chDB with a head attached, then compares the head's
answers (MetricReads with the head) with the store's (MetricReads without it), bit for bit: labels,
timestamps, values (stale markers included), for selectors, for whole-metric reads, across seals,
merges, trims, the memory bound and a restart (a new head loaded from the store).

chDB allows one data path per process: the same path as the other store suites (per pid), with a
database of its own per test.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.model import MetricBatch
from collector.query.promql.storage import STALE_NAN_BITS, Matcher, SeriesData
from collector.store import head as head_module
from collector.store.chdb_engine import ChdbEngine
from collector.store.engine import Engine
from collector.store.head import SampleHead
from collector.store.promql_reads import MetricReads
from collector.store.schema import migrate
from collector.store.writer import StoreWriter

_CHDB_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"obs-store-tests-{os.getpid()}"
STALE_NAN = struct.unpack("<d", STALE_NAN_BITS.to_bytes(8, "little"))[0]
NOW_S = 1_790_000_000.0
NOW_MS = int(NOW_S * 1000)
HOUR_MS = 3_600_000


class Clock:
    def __init__(self, t: float = NOW_S) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def engine() -> Engine:
    return ChdbEngine.shared(_CHDB_DIR)


@pytest.fixture
def db(engine: Engine) -> Iterator[str]:
    name = f"h_{uuid.uuid4().hex[:12]}"
    migrate(engine, name)
    yield name
    engine.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def shared_db(engine: Engine) -> Iterator[str]:
    name = f"h_{uuid.uuid4().hex[:12]}"
    migrate(engine, name)
    yield name
    engine.command(f"DROP DATABASE IF EXISTS {name}")


def _series(i: int) -> dict[str, str]:
    return {"__name__": "m_a" if i % 3 else "m_b", "job": f"j{i % 2}", "i": str(i)}


def _same(a: list[SeriesData], b: list[SeriesData]) -> None:
    assert [s.labels for s in a] == [s.labels for s in b]
    for x, y in zip(a, b, strict=True):
        assert x.timestamps.tolist() == y.timestamps.tolist()
        assert x.values.view(np.uint64).tolist() == y.values.view(np.uint64).tolist()  # NaN bits too


def _write(writer: StoreWriter, samples: list[tuple[int, int, float]]) -> None:
    batch = MetricBatch()
    for i, ts, value in samples:
        batch.add_sample(_series(i), ts, value)
    writer.write_metrics([batch])


SELECTORS = [
    [Matcher("__name__", "=", "m_a")],
    [Matcher("__name__", "=", "m_b"), Matcher("job", "=", "j1")],
    [Matcher("__name__", "=~", "m_.*"), Matcher("i", "!~", "1|2")],
    [Matcher("job", "=", "j0")],
    [Matcher("__name__", "=", "m_a"), Matcher("absent", "=", "")],
    [Matcher("__name__", "=", "missing")],
]

# A sample: series 0-7, a time within 90 minutes before now (the head's window is 2 h), a value that is
# sometimes a stale marker. Duplicates of (series, time) carry the same value (which copy the store
# returns is arbitrary, so only equal copies compare).
_samples = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 90 * 60).map(lambda s: NOW_MS - s * 1000)),
    min_size=1,
    max_size=120,
)


def _valued(samples: list[tuple[int, int]]) -> list[tuple[int, int, float]]:
    return [(i, ts, STALE_NAN if (ts // 1000) % 17 == 0 else float(ts % 1009) + i / 8) for i, ts in samples]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.lists(_samples, min_size=1, max_size=5),
    maintain_after=st.lists(st.booleans(), min_size=5, max_size=5),
    ranges=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=1, max_size=4),
    pending_rows=st.sampled_from([1, 7, 65_536]),
)
def test_head_answers_as_the_store(
    engine: Engine,
    shared_db: str,
    writes: list[list[tuple[int, int]]],
    maintain_after: list[bool],
    ranges: list[tuple[int, int]],
    pending_rows: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(head_module, "PENDING_ROWS", pending_rows)  # small: many runs, merges of runs
    for table in ("metrics_series", "metrics_samples"):  # a fresh store, quicker than a new database
        engine.command(f"TRUNCATE TABLE {shared_db}.{table}")
    db = shared_db
    head = SampleHead(2 * HOUR_MS, 1_000_000, clock=Clock())
    writer = StoreWriter(engine, db, head=head)
    for samples, maintain in zip(writes, maintain_after, strict=False):
        _write(writer, _valued(samples))
        if maintain:
            head.maintain(idle=False)
    with_head, store = MetricReads(engine, db, head), MetricReads(engine, db)
    for a, b in ranges:
        lo, hi = sorted((a, b))
        start, end = NOW_MS - hi * 60_000, NOW_MS - lo * 60_000
        for matchers in SELECTORS:
            assert head.select(matchers, start, end) is not None  # answered by the head, not the store
            _same(with_head.select(matchers, start, end), store.select(matchers, start, end))
        names = {"m_a": (start, end), "m_b": (start - 60_000, end)}
        got, want = with_head.select_metrics(names), store.select_metrics(names)
        assert sorted(map(str, got.labels)) == sorted(map(str, want.labels))
        assert got.timestamps.size == want.timestamps.size
    head.maintain(idle=True)  # the newest runs merged: the same answers again
    for matchers in SELECTORS:
        _same(with_head.select(matchers, NOW_MS - 2 * HOUR_MS, NOW_MS), store.select(matchers, 0, NOW_MS))


def test_ranges_before_the_floor_are_left_to_the_store(engine: Engine, db: str) -> None:
    clock = Clock()
    head = SampleHead(HOUR_MS, 1_000_000, clock=clock)
    writer = StoreWriter(engine, db, head=head)
    old = [(1, NOW_MS - 2 * HOUR_MS + k * 15_000, float(k)) for k in range(10)]  # before the floor
    new = [(1, NOW_MS - 30 * 60_000 + k * 15_000, float(k)) for k in range(10)]
    _write(writer, old + new)
    m = [Matcher("__name__", "=", "m_a")]
    assert head.stats()["samples"] == 10  # the old ones were left to the store
    assert head.select(m, NOW_MS - 2 * HOUR_MS, NOW_MS) is None
    reads, store = MetricReads(engine, db, head), MetricReads(engine, db)
    _same(reads.select(m, NOW_MS - 3 * HOUR_MS, NOW_MS), store.select(m, NOW_MS - 3 * HOUR_MS, NOW_MS))
    assert len(reads.select(m, NOW_MS - 3 * HOUR_MS, NOW_MS)[0].timestamps) == 20

    # The window slides: the floor follows the clock, and reads from before it go to the store.
    clock.t += 20 * 60
    head.maintain(idle=False)
    assert head.floor_ms == NOW_MS + 20 * 60_000 - HOUR_MS
    assert head.select(m, NOW_MS - 45 * 60_000, NOW_MS) is None
    assert head.select(m, NOW_MS - 40 * 60_000, NOW_MS) is not None
    _same(reads.select(m, NOW_MS - 45 * 60_000, NOW_MS), store.select(m, NOW_MS - 45 * 60_000, NOW_MS))
    # Once the oldest sample is far enough behind, the series is trimmed away and forgotten.
    clock.t += 2 * 3600
    head.maintain(idle=False)
    assert head.stats() == {"samples": 0, "series": 0, "runs": 0, "floor_ms": head.floor_ms}
    found = head.select(m, head.floor_ms, head.floor_ms + 1000)
    assert found is not None and len(found[0]) == 0


def test_the_memory_bound_raises_the_floor_and_keeps_the_newest(engine: Engine, db: str) -> None:
    head = SampleHead(2 * HOUR_MS, 100, clock=Clock())
    writer = StoreWriter(engine, db, head=head)
    _write(writer, [(i, NOW_MS - k * 60_000, float(k)) for i in range(3) for k in range(60)])  # 180 samples
    head.maintain(idle=True)
    stats = head.stats()
    assert stats["samples"] == 90  # nine tenths of the bound, the newest
    assert head.floor_ms == NOW_MS - 29 * 60_000
    m = [Matcher("job", "=~", "j.")]
    reads, store = MetricReads(engine, db, head), MetricReads(engine, db)
    for start in (NOW_MS - 29 * 60_000, NOW_MS - 59 * 60_000):  # one from the head, one from the store
        _same(reads.select(m, start, NOW_MS), store.select(m, start, NOW_MS))


def test_a_new_head_loads_the_window_from_the_store(engine: Engine, db: str) -> None:
    first = SampleHead(HOUR_MS, 1_000_000, clock=Clock())
    writer = StoreWriter(engine, db, head=first)
    samples = [(i, NOW_MS - k * 30_000, float(i * k)) for i in range(8) for k in range(200)]
    _write(writer, samples)
    _write(writer, [(3, NOW_MS - 10_000, STALE_NAN)])
    restarted = SampleHead(HOUR_MS, 1_000_000, clock=Clock())
    restarted.load(engine, db)
    assert restarted.floor_ms == NOW_MS - HOUR_MS
    assert restarted.stats()["samples"] == 8 * 121 + 1  # the samples within the hour
    for matchers in SELECTORS:
        for start in (NOW_MS - HOUR_MS, NOW_MS - 10 * 60_000):
            _same(
                MetricReads(engine, db, restarted).select(matchers, start, NOW_MS),
                MetricReads(engine, db).select(matchers, start, NOW_MS),
            )


def test_a_store_larger_than_the_bound_loads_its_newest_samples(engine: Engine, db: str) -> None:
    _write(StoreWriter(engine, db), [(1, NOW_MS - k * 1000, float(k)) for k in range(1000)])
    head = SampleHead(HOUR_MS, 100, clock=Clock())
    head.load(engine, db)
    assert head.stats()["samples"] == 90
    assert head.floor_ms == NOW_MS - 89_999  # just after the newest sample left out
    m = [Matcher("__name__", "=", "m_a")]
    got = MetricReads(engine, db, head).select(m, head.floor_ms, NOW_MS)
    _same(got, MetricReads(engine, db).select(m, head.floor_ms, NOW_MS))
    assert len(got[0].timestamps) == 90


def test_a_regex_python_cannot_compile_is_left_to_the_store(engine: Engine, db: str) -> None:
    head = SampleHead(HOUR_MS, 1000, clock=Clock())
    _write(StoreWriter(engine, db, head=head), [(1, NOW_MS - 1000, 1.0)])
    m = [Matcher("__name__", "=", "m_a"), Matcher("job", "=~", "(?P<x>j1")]  # unbalanced: re.error
    assert head.select(m, NOW_MS - 60_000, NOW_MS) is None


def test_concurrent_writes_reads_and_maintenance_lose_nothing(engine: Engine, db: str) -> None:
    import threading

    head = SampleHead(2 * HOUR_MS, 1_000_000, clock=Clock())
    writer = StoreWriter(engine, db, head=head)
    stop = threading.Event()
    errors: list[BaseException] = []

    def maintain() -> None:
        while not stop.is_set():
            try:
                head.maintain(idle=False)
                head.maintain(idle=True)
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=maintain)
    thread.start()
    try:
        for k in range(40):
            _write(writer, [(i, NOW_MS - HOUR_MS + k * 60_000 + i, float(k)) for i in range(8)])
            got = head.select([Matcher("job", "=~", "j.")], NOW_MS - HOUR_MS, NOW_MS)
            assert got is not None and len(got[0]) == 8 * (k + 1)
    finally:
        stop.set()
        thread.join()
    assert not errors
