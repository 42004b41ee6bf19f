"""Many instant queries at one time (Engine.instant_many, batch.py): the read plan, one read for the
batch, and answers equal to evaluating each query alone, on the in-memory reader."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from collector.query.promql.batch import plan_reads
from collector.query.promql.engine import Engine
from collector.query.promql.errors import PromQLError
from collector.query.promql.memory_reader import MemoryReader
from collector.query.promql.parse import parse_expr
from collector.query.promql.storage import Matcher, SeriesBlock, SeriesData
from collector.query.promql.values import QueryResult, stale_nan

S = 1000  # ms per second
T = 3600 * S  # evaluation time
LB = 300 * S  # lookback delta


class CountingReader(MemoryReader):
    """The in-memory reader, counting what the engine asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.selects: list[list[Matcher]] = []
        self.metric_reads: list[dict[str, tuple[int, int]]] = []

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        self.selects.append(list(matchers))
        return super().select(matchers, start_ms, end_ms)

    def select_metrics(self, ranges: Mapping[str, tuple[int, int]]) -> SeriesBlock:
        self.metric_reads.append(dict(ranges))
        return super().select_metrics(ranges)


def _reader() -> CountingReader:
    r = CountingReader()
    times = [15 * S * i for i in range(241)]
    for job in ("api", "web"):
        for inst in ("a", "b"):
            r.add({"__name__": "req_total", "job": job, "instance": inst}, times, [i * 3.0 for i in range(241)])
            r.add({"__name__": "up", "job": job, "instance": inst}, times, [1.0 if inst == "a" else 0.0] * 241)
    r.add({"__name__": "temp", "instance": "a"}, times, [float(i % 30) for i in range(241)])
    r.add({"__name__": "temp", "instance": "gone"}, times[:201], [50.0] * 200 + [stale_nan()])
    for le, k in (("0.1", 1.0), ("1", 2.0), ("+Inf", 3.0)):
        r.add({"__name__": "lat_bucket", "le": le}, times, [i * k for i in range(241)])
    r.selects.clear()
    return r


@pytest.mark.parametrize(
    ("queries", "expected"),
    [
        (["up"], {"up": (T - LB + 1, T)}),
        (["rate(req_total[5m])"], {"req_total": (T - 300 * S + 1, T)}),
        (["up offset 10m"], {"up": (T - 600 * S - LB + 1, T - 600 * S)}),
        (["up @ 100"], {"up": (100 * S - LB + 1, 100 * S)}),
        (["rate(req_total[1m] @ 100 offset 1m)"], {"req_total": (-20 * S + 1, 40 * S)}),
        (["max_over_time(temp[10m:1m])"], {"temp": (T - 540 * S - LB + 1, T)}),
        (["max_over_time(temp[10m:1m] offset 1m)"], {"temp": (T - 600 * S - LB + 1, T - 60 * S)}),
        (['{__name__=~"up"}', '{job="api"}'], {}),
        (['up{job="api"} or temp', "sum(up) / count(temp)"], {"up": (T - LB + 1, T), "temp": (T - LB + 1, T)}),
        (["up", "rate(up[1h])", "up offset 5m"], {"up": (T - 3600 * S + 1, T)}),
        (["histogram_quantile(0.9, rate(lat_bucket[5m]))"], {"lat_bucket": (T - 300 * S + 1, T)}),
        (["vector(1)", "time()"], {}),
    ],
)
def test_plan_covers_every_read(queries: list[str], expected: dict[str, tuple[int, int]]) -> None:
    assert plan_reads([parse_expr(q) for q in queries], T, LB) == expected


QUERIES = [
    "up",
    "up == 0",
    "rate(req_total[5m]) > 0.1",
    'sum by (job) (rate(req_total{instance=~"a|b"}[5m]))',
    'rate(req_total{job!="api"}[5m])',
    'absent(up{job="none"})',
    'absent_over_time(temp{instance="gone"}[5m])',
    "temp",
    "temp offset 20m",
    "temp @ 3000",
    "up and on (instance) temp",
    "up unless on (instance) temp",
    "max_over_time(temp[30m:1m])",
    "histogram_quantile(0.5, rate(lat_bucket[5m]))",
    '{__name__=~"te.*"}',
    "temp[1m]",
    "scalar(sum(up))",
    "1 +",
    "nothing_here",
]


def _canonical(result: QueryResult | PromQLError) -> object:
    """A result in a comparable form; vectors sorted (the in-memory reader does not keep label order)."""
    if isinstance(result, PromQLError):
        return ("error", result.error_type, result.message)
    vector = sorted((sorted(s.labels.items()), s.timestamp_ms, repr(s.value)) for s in result.vector)
    matrix = sorted((sorted(s.labels.items()), s.timestamps.tolist(), s.values.tolist()) for s in result.matrix)
    scalar = None if result.scalar is None else (result.scalar[0], repr(result.scalar[1]))
    return (result.result_type, vector, matrix, scalar, result.string, result.warnings, result.infos)


def _alone(engine: Engine, query: str, at: int) -> QueryResult | PromQLError:
    try:
        return engine.instant(query, at)
    except PromQLError as exc:
        return exc


@pytest.mark.parametrize("at", [T, 200 * 15 * S + 20 * S, 100 * S, T + 400 * S])
def test_each_answer_equals_the_query_alone(at: int) -> None:
    reader = _reader()
    engine = Engine(reader)
    together = engine.instant_many(QUERIES, at)
    assert [_canonical(r) for r in together] == [_canonical(_alone(engine, q, at)) for q in QUERIES]


def test_one_read_for_the_batch_and_the_store_only_for_selectors_without_a_name() -> None:
    reader = _reader()
    Engine(reader).instant_many(QUERIES, T)
    assert len(reader.metric_reads) == 1
    assert set(reader.metric_reads[0]) == {"up", "req_total", "temp", "lat_bucket", "nothing_here"}
    # Only the selector by a regex on the name went to the store (MemoryReader.select_metrics calls
    # select per name itself: those calls carry exactly one matcher, __name__="...").
    by_store = [m for m in reader.selects if not (len(m) == 1 and m[0].name == "__name__" and m[0].op == "=")]
    assert by_store == [[Matcher("__name__", "=~", "te.*")]]


class Plain:
    """A reader without whole-metric reads, counting selections."""

    def __init__(self, inner: MemoryReader) -> None:
        self.inner = inner
        self.calls = 0

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        self.calls += 1
        return self.inner.select(matchers, start_ms, end_ms)


@pytest.mark.parametrize(
    ("queries", "selections"),
    [
        (["sum by (job) (rate(req_total[5m])) > 1", "sum by (job) (rate(req_total[5m])) > 2"], 1),
        (["rate(req_total[5m]) > 1", "sum(rate(req_total[5m]))", "rate(req_total[5m] offset 1m)"], 2),
        (["up", "up @ 3600", "up offset 0s"], 2),
        # Strings may hold quotes, which the printed expression does not escape: nothing is shared.
        (['up{job="api"} > 0', 'up{job="api"} > 1', "up{job='web'}"], 3),
    ],
)
def test_shared_sub_expressions_are_evaluated_once(queries: list[str], selections: int) -> None:
    plain = Plain(_reader())
    together = Engine(plain).instant_many(queries, T)
    assert plain.calls == selections
    engine = Engine(_reader())
    assert [_canonical(r) for r in together] == [_canonical(_alone(engine, q, T)) for q in queries]


def test_a_reader_without_whole_metric_reads_is_asked_per_selector() -> None:
    plain = Plain(_reader())
    results = Engine(plain).instant_many(["up", "temp", "1 +"], T)
    assert plain.calls == 2
    assert isinstance(results[2], PromQLError) and results[2].error_type == "bad_data"


def test_a_batch_past_its_timeout_answers_timeout_per_query() -> None:
    results = Engine(_reader()).instant_many(["up", "temp"], T, timeout_s=-1.0)
    assert [r.error_type if isinstance(r, PromQLError) else "ok" for r in results] == ["timeout", "timeout"]
