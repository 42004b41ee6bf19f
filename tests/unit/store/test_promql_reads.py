"""Metric reads for PromQL: selectors pushed into ClickHouse agree with a Python reference filter.

chDB allows one data path per process: this suite opens the same path as test_store.py (per pid) and
isolates itself with a database of its own.
"""

from __future__ import annotations

import math
import os
import re
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.model import MetricBatch, MetricMetadata
from collector.query.promql.storage import STALE_NAN_BITS, Matcher, MatchOp
from collector.store.chdb_engine import ChdbEngine
from collector.store.engine import Engine
from collector.store.promql_reads import MAX_MS, MIN_MS, MetricReads
from collector.store.schema import migrate
from collector.store.writer import StoreWriter

_CHDB_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"obs-store-tests-{os.getpid()}"
STALE_NAN = struct.unpack("<d", STALE_NAN_BITS.to_bytes(8, "little"))[0]

# Label values a query may carry: SQL and regex metacharacters, escapes, control characters, unicode.
HOSTILE = [
    "",
    "plain",
    "it's",
    "'; DROP TABLE metrics_samples; --",
    'say "hi"',
    "back\\slash",
    "\\'",
    "{p0:String}",
    "}{",
    "line\nbreak",
    "tab\there",
    "nul\0byte",
    "ünïcödé ✓ 日本",
    "a.b*c+d?(e)[f]|g^h$",
    "%_like",
    "`backtick`",
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return ChdbEngine.shared(_CHDB_DIR)


@pytest.fixture(scope="module")
def db(engine: Engine) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    migrate(engine, name)
    yield name
    engine.command(f"DROP DATABASE IF EXISTS {name}")


def _labels(i: int, value: str) -> dict[str, str]:
    labels = {"__name__": "hostile_metric" if i % 3 else "other_metric", "job": f"j{i % 2}", "v": value}
    if i % 4 == 0:
        labels["only_some"] = value or "x"
    return {k: v for k, v in labels.items() if v != ""}  # Prometheus has no empty label values


@pytest.fixture(scope="module")
def stored(engine: Engine, db: str) -> list[dict[str, str]]:
    """Series with hostile label values, each with samples at 1000, 2000 and 3000 ms."""
    batch = MetricBatch()
    series = [_labels(i, value) for i, value in enumerate(HOSTILE)]
    for labels in series:
        for ts in (1000, 2000, 3000):
            batch.add_sample(labels, ts, ts / 1000)
    StoreWriter(engine, db).write_metrics([batch])
    return series


def _reference(series: list[dict[str, str]], matchers: list[Matcher]) -> list[dict[str, str]]:
    def holds(labels: dict[str, str], m: Matcher) -> bool:
        value = labels.get(m.name, "")
        if m.op == "=":
            return value == m.value
        if m.op == "!=":
            return value != m.value
        found = re.fullmatch(m.value, value, re.DOTALL) is not None
        return found if m.op == "=~" else not found

    return [s for s in series if all(holds(s, m) for m in matchers)]


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


# Regexes built so RE2 and Python's `re` agree: literals with every metacharacter escaped (both accept a
# backslash before ASCII punctuation), joined by alternation, optionally followed by `.*`.
_META = set("\\.^$*+?()[]{}|-/&~#")


def _literal(text: str) -> str:
    return "".join("\\" + ch if ch in _META else ch for ch in text)


_values = st.sampled_from(HOSTILE) | st.text(max_size=12)
_regexes = st.builds(
    lambda parts, tail: "|".join(_literal(p) for p in parts) + (".*" if tail else ""),
    st.lists(_values, min_size=1, max_size=3),
    st.booleans(),
)


@st.composite
def _matcher(draw: st.DrawFn) -> Matcher:
    name = draw(st.sampled_from(["job", "v", "only_some", "absent_label", "__name__"]))
    op: MatchOp = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
    value = draw(_regexes if op in ("=~", "!~") else _values)
    return Matcher(name, op, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.lists(_matcher(), max_size=3), name=st.sampled_from(["hostile_metric", "other_metric"]))
def test_selectors_agree_with_a_python_filter(
    engine: Engine, db: str, stored: list[dict[str, str]], extra: list[Matcher], name: str
) -> None:
    reads = MetricReads(engine, db)
    matchers = [Matcher("__name__", "=", name), *extra]
    got = reads.select(matchers, MIN_MS, MAX_MS)
    assert sorted(_key(s.labels) for s in got) == sorted(_key(s) for s in _reference(stored, matchers))
    # The API lookups take the same matchers through the same SQL.
    assert sorted(map(_key, reads.series([matchers], MIN_MS, MAX_MS))) == sorted(
        _key(s) for s in _reference(stored, matchers)
    )


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("op", ["=", "!=", "=~", "!~"])
def test_every_hostile_value_through_every_matcher(
    engine: Engine, db: str, stored: list[dict[str, str]], value: str, op: MatchOp
) -> None:
    m = Matcher("v", op, _literal(value) if op in ("=~", "!~") else value)
    matchers = [Matcher("__name__", "=~", "hostile_metric|other_metric"), m]
    got = MetricReads(engine, db).select(matchers, MIN_MS, MAX_MS)
    assert sorted(_key(s.labels) for s in got) == sorted(_key(s) for s in _reference(stored, matchers))
    values = MetricReads(engine, db).label_values("v", [matchers], MIN_MS, MAX_MS)
    assert values == sorted({s["v"] for s in _reference(stored, matchers) if s.get("v")})


def test_select_returns_numpy_arrays_in_range_with_stale_markers_bit_exact(engine: Engine, db: str) -> None:
    batch = MetricBatch()
    a = {"__name__": "np_metric", "i": "a"}
    b = {"__name__": "np_metric", "i": "b"}
    for ts in range(0, 10_000, 1000):
        batch.add_sample(a, ts, ts / 10)
    batch.add_sample(b, 5000, float("nan"))
    batch.add_sample(b, 6000, STALE_NAN)
    writer = StoreWriter(engine, db)
    writer.write_metrics([batch])
    dup = MetricBatch()
    dup.add_sample(a, 3000, 300.0)  # the same sample again: read once
    writer.write_metrics([dup])
    reads = MetricReads(engine, db)
    got = {s.labels["i"]: s for s in reads.select([Matcher("__name__", "=", "np_metric")], 2000, 6000)}
    assert got["a"].labels == a
    assert got["a"].timestamps.dtype == np.int64 and got["a"].values.dtype == np.float64
    assert got["a"].timestamps.tolist() == [2000, 3000, 4000, 5000, 6000]  # inclusive bounds
    assert got["a"].values.tolist() == [200.0, 300.0, 400.0, 500.0, 600.0]
    assert got["a"].values.flags.writeable
    ordinary, stale = got["b"].values
    assert math.isnan(ordinary) and struct.pack("<d", ordinary) != struct.pack("<d", STALE_NAN)
    assert struct.pack("<d", stale) == struct.pack("<d", STALE_NAN)
    # The reader looks for stale markers once: a series without any says so, one with one does not claim it.
    assert got["a"].stale_free and not got["b"].stale_free
    late = reads.select([Matcher("__name__", "=", "np_metric")], 6500, 7500)
    assert [(s.labels["i"], s.timestamps.tolist()) for s in late] == [("a", [7000])]  # b has nothing there
    assert reads.select([Matcher("__name__", "=", "np_metric")], 10_000, 20_000) == []


def test_label_cache_answers_as_a_fresh_reader_and_finds_new_series(engine: Engine, db: str) -> None:
    """Labels are cached by fingerprint (a hash of the label set): a warm reader answers exactly as a
    fresh one, label matchers still filter, and a series written later is read (a cache miss)."""
    writer = StoreWriter(engine, db)
    first = MetricBatch()
    for i in range(5):
        first.add_sample({"__name__": "cached_metric", "i": str(i), "odd": str(i % 2)}, 1000, float(i))
    writer.write_metrics([first])
    warm = MetricReads(engine, db)
    selectors = [
        [Matcher("__name__", "=", "cached_metric")],
        [Matcher("__name__", "=", "cached_metric"), Matcher("odd", "=", "1")],
        [Matcher("__name__", "=", "cached_metric"), Matcher("i", "=~", "[0-2]")],
    ]

    def answer(reads: MetricReads, matchers: list[Matcher]) -> list[tuple[dict[str, str], list[float]]]:
        return [(s.labels, s.values.tolist()) for s in reads.select(matchers, MIN_MS, MAX_MS)]

    for _ in range(2):  # cold, then warm
        for matchers in selectors:
            assert answer(warm, matchers) == answer(MetricReads(engine, db), matchers)
    later = MetricBatch()
    later.add_sample({"__name__": "cached_metric", "i": "9", "odd": "1"}, 2000, 9.0)
    writer.write_metrics([later])
    assert [s.labels["i"] for s in warm.select(selectors[1], MIN_MS, MAX_MS)] == ["1", "3", "9"]
    # Results own their label dicts: changing one leaves the cache alone.
    warm.select(selectors[0], MIN_MS, MAX_MS)[0].labels["i"] = "changed"
    assert answer(warm, selectors[0]) == answer(MetricReads(engine, db), selectors[0])


def test_api_lookups(engine: Engine, db: str) -> None:
    batch = MetricBatch()
    fp = batch.add_sample({"__name__": "api_requests_total", "job": "api", "code": "200"}, 1000, 1.0)
    batch.add_sample({"__name__": "api_requests_total", "job": "api", "code": "500"}, 5000, 1.0)
    batch.add_sample({"__name__": "api_up", "job": "db"}, 1000, 1.0)
    batch.add_exemplar(fp, 1000, 1.0, "ab" * 16, "cd" * 8, {"user": "u1"})
    batch.metadata["api_requests"] = MetricMetadata("api_requests", "counter", "Requests.", "")
    StoreWriter(engine, db).write_metrics([batch])
    reads = MetricReads(engine, db)
    api = [Matcher("__name__", "=~", "api_.*")]
    assert reads.label_names([api], MIN_MS, MAX_MS) == ["__name__", "code", "job"]
    assert reads.label_names([[Matcher("job", "=", "db")]], MIN_MS, MAX_MS) == ["__name__", "job"]
    assert reads.label_names([api], 0, 2000) == ["__name__", "code", "job"]
    assert reads.label_names([api], 4000, 6000) == ["__name__", "code", "job"]
    assert reads.label_names([[Matcher("__name__", "=", "api_up")]], 4000, 6000) == []
    assert reads.label_values("code", [api], MIN_MS, MAX_MS) == ["200", "500"]
    assert reads.label_values("code", [api], 4000, 6000) == ["500"]
    assert reads.label_values("__name__", [api], MIN_MS, MAX_MS) == ["api_requests_total", "api_up"]
    assert reads.label_values("code", [api], MIN_MS, MAX_MS, limit=1) == ["200"]
    assert reads.series([[Matcher("job", "=", "api")]], MIN_MS, MAX_MS) == [
        {"__name__": "api_requests_total", "code": "200", "job": "api"},
        {"__name__": "api_requests_total", "code": "500", "job": "api"},
    ]
    assert reads.series([[Matcher("job", "=", "api")], [Matcher("job", "=", "db")]], 0, 2000, limit=5) == [
        {"__name__": "api_requests_total", "code": "200", "job": "api"},
        {"__name__": "api_up", "job": "db"},
    ]
    [meta] = reads.metadata("api_requests")
    assert (meta.type, meta.help, meta.unit) == ("counter", "Requests.", "")
    assert reads.metadata("nope") == []
    [group] = reads.exemplars([[Matcher("__name__", "=", "api_requests_total")]], 0, 2000)
    assert group.series_labels == {"__name__": "api_requests_total", "code": "200", "job": "api"}
    [ex] = group.exemplars
    assert ex.labels == {"user": "u1", "trace_id": "ab" * 16, "span_id": "cd" * 8}
    assert (ex.value, ex.timestamp_ms) == (1.0, 1000)
    assert reads.exemplars([[Matcher("__name__", "=", "api_requests_total")]], 2000, 3000) == []


@pytest.mark.parametrize("name", [n for n in HOSTILE if n])
def test_hostile_label_names_are_parameters_too(
    engine: Engine, db: str, stored: list[dict[str, str]], name: str
) -> None:
    reads = MetricReads(engine, db)
    matchers = [Matcher("__name__", "=", "hostile_metric"), Matcher(name, "=", "")]
    got = reads.select(matchers, MIN_MS, MAX_MS)
    assert sorted(_key(s.labels) for s in got) == sorted(_key(s) for s in _reference(stored, matchers))
    assert reads.label_values(name, [matchers], MIN_MS, MAX_MS) == []


@pytest.mark.parametrize(
    "values",
    [
        ["b", "a", "c", "aa", "", "ab"],
        ["svc-9", "svc-10", "svc-1", "svc-0"],
    ],
)
def test_series_come_in_label_order_cold_warm_and_with_a_new_series(engine: Engine, db: str, values: list[str]) -> None:
    """The order of a set of series is kept once sorted: a warm reader returns the same label order as a
    fresh one, over another time range too, and a series written later takes its place in that order."""
    name = f"ordered_{uuid.uuid4().hex[:8]}"
    writer = StoreWriter(engine, db)
    batch = MetricBatch()
    for i, value in enumerate(values):
        labels = {"__name__": name, "k": value} if value else {"__name__": name}
        for ts in (1000, 2000):
            batch.add_sample({**labels, "extra": str(i % 2)}, ts, float(i))
    writer.write_metrics([batch])
    selector = [Matcher("__name__", "=", name)]
    warm = MetricReads(engine, db)

    def order(reads: MetricReads, start: int, end: int) -> list[tuple[tuple[str, str], ...]]:
        return [_key(s.labels) for s in reads.select(selector, start, end)]

    expected = sorted(order(MetricReads(engine, db), MIN_MS, MAX_MS))
    for start, end in ((MIN_MS, MAX_MS), (MIN_MS, MAX_MS), (1500, 2500)):  # cold, warm, warm over one sample
        assert order(warm, start, end) == expected
        assert order(MetricReads(engine, db), start, end) == expected
    later = MetricBatch()
    later.add_sample({"__name__": name, "k": "b0", "extra": "0"}, 2000, 9.0)
    writer.write_metrics([later])
    assert order(warm, MIN_MS, MAX_MS) == sorted([*expected, _key({"__name__": name, "k": "b0", "extra": "0"})])
    assert order(warm, MIN_MS, 1500) == expected  # the first set again, without the later series
