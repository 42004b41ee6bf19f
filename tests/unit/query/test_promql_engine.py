"""The PromQL engine piece by piece, on the in-memory reader: tables of (query, time, expected result)."""

from __future__ import annotations

import math
import threading

import pytest

from collector.query.promql.engine import Engine
from collector.query.promql.errors import PromQLError
from collector.query.promql.memory_reader import MemoryReader
from collector.query.promql.values import QueryResult, stale_nan

S = 1000  # ms per second


def _reader() -> MemoryReader:
    r = MemoryReader()
    # A counter every 15 s: value i at 15*i s.
    r.add({"__name__": "c_total"}, [15 * S * i for i in range(21)], [float(i) for i in range(21)])
    # A counter that starts at 0 and climbs by 10 per 15 s.
    r.add({"__name__": "z_total"}, [0, 15 * S, 30 * S], [0.0, 10.0, 20.0])
    # A counter with a reset between 15 s and 30 s.
    r.add({"__name__": "reset_total"}, [0, 15 * S, 30 * S, 45 * S], [5.0, 10.0, 2.0, 7.0])
    r.add({"__name__": "g"}, [0, 15 * S], [10.0, 4.0])
    r.add({"__name__": "one_total"}, [0], [3.0])
    # Aggregation and matching fixtures, one sample at 0.
    for a, b, v in (("1", "x", 1.0), ("2", "x", 2.0), ("3", "y", 4.0)):
        r.add({"__name__": "x", "a": a, "b": b}, [0], [v])
    for a, v in (("1", 10.0), ("2", 20.0)):
        r.add({"__name__": "y", "a": a}, [0], [v])
    r.add({"__name__": "y2", "b": "x", "team": "t1"}, [0], [10.0])
    # Histogram buckets at 0.
    for le, v in (("0.1", 10.0), ("0.5", 20.0), ("1", 30.0), ("+Inf", 40.0)):
        r.add({"__name__": "h_bucket", "le": le}, [0], [v])
    for le, v in (("0.1", 10.0), ("0.5", 8.0), ("1", 30.0), ("+Inf", 40.0)):
        r.add({"__name__": "nonmono_bucket", "le": le}, [0], [v])
    for le, v in (("0.1", 10.0), ("1", 30.0)):
        r.add({"__name__": "noinf_bucket", "le": le}, [0], [v])
    # A gauge every 10 s with value t/10, for subqueries; and one with a stale marker at 20 s.
    r.add({"__name__": "s"}, [10 * S * i for i in range(101)], [float(i) for i in range(101)])
    r.add({"__name__": "st"}, [0, 10 * S, 20 * S, 30 * S], [1.0, 2.0, stale_nan(), 4.0])
    return r


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(_reader())


def _vector(res: QueryResult) -> dict[tuple[tuple[str, str], ...], float]:
    assert res.result_type == "vector"
    return {tuple(sorted(s.labels.items())): s.value for s in res.vector}


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def _assert_vector(res: QueryResult, expected: dict[tuple[tuple[str, str], ...], float]) -> None:
    got = _vector(res)
    assert set(got) == set(expected), got
    for k, v in expected.items():
        assert _close(got[k], v), (k, got[k], v)


def _one(value: float) -> dict[tuple[tuple[str, str], ...], float]:
    return {(): value}


@pytest.mark.parametrize(
    ("query", "at_s", "expected"),
    [
        # Window (240, 300]: 17..20; extrapolated 15 s to the start (below 1.1 x the 15 s spacing).
        ("increase(c_total[1m])", 300, 4.0),
        ("rate(c_total[1m])", 300, 4.0 / 60),
        # The start is extrapolated only to where the counter would have been zero.
        ("increase(z_total[1m])", 30, 20.0),
        # A reset adds the value before it: 7 - 5 + 10 = 12 over 45 s, extrapolated by 15 s.
        ("increase(reset_total[1m])", 45, 16.0),
        ("resets(reset_total[1m])", 45, 1.0),
        ("changes(reset_total[1m])", 45, 3.0),
        # A gauge: no zero clamp; the start gap (45 s) is past the threshold, so only half a spacing.
        ("delta(g[1m])", 15, -9.0),
        ("idelta(g[1m])", 15, -6.0),
        # irate after a reset takes the last value as the increase.
        ("irate(reset_total[1m])", 30, 2.0 / 15),
        ("irate(reset_total[1m])", 45, 5.0 / 15),
        ("deriv(s[1m])", 100, 0.1),
        ("predict_linear(s[1m], 60)", 100, 16.0),
    ],
)
def test_rate_family(engine: Engine, query: str, at_s: int, expected: float) -> None:
    _assert_vector(engine.instant(query, at_s * S), _one(expected))


@pytest.mark.parametrize("query", ["rate(one_total[5m])", "increase(one_total[5m])", "irate(one_total[5m])"])
def test_rate_needs_two_samples(engine: Engine, query: str) -> None:
    assert engine.instant(query, 60 * S).vector == []


def test_rate_of_non_counter_name_gives_info(engine: Engine) -> None:
    res = engine.instant("rate(g[1m])", 15 * S)
    assert res.infos == [
        'PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "g" (1:6)'
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("histogram_quantile(0.5, h_bucket)", 0.5),
        ("histogram_quantile(0.25, h_bucket)", 0.1),  # the first bucket interpolates from 0
        ("histogram_quantile(0.6, h_bucket)", 0.7),
        ("histogram_quantile(0.9, h_bucket)", 1.0),  # in the +Inf bucket: the highest finite bound
        ("histogram_quantile(1.5, h_bucket)", math.inf),
        ("histogram_quantile(-1, h_bucket)", -math.inf),
        ("histogram_quantile(0.5, nonmono_bucket)", 0.75),  # counts forced monotonic: 10 10 30 40
        ("histogram_quantile(0.5, noinf_bucket)", math.nan),
        ("histogram_fraction(0, 0.5, h_bucket)", 0.5),
        ("histogram_fraction(0.1, 0.3, h_bucket)", 0.125),
    ],
)
def test_histogram_quantile(engine: Engine, query: str, expected: float) -> None:
    _assert_vector(engine.instant(query, 0), _one(expected))


def test_histogram_quantile_annotations(engine: Engine) -> None:
    assert (
        engine.instant("histogram_quantile(0.5, nonmono_bucket)", 0)
        .infos[0]
        .startswith("PromQL info: input to histogram_quantile needed to be fixed for monotonicity")
    )
    assert engine.instant("histogram_quantile(2, h_bucket)", 0).warnings == [
        "PromQL warning: quantile value should be between 0 and 1, got 2 (1:20)"
    ]


def _k(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sum(x)", {(): 7.0}),
        ("sum by (b) (x)", {_k(b="x"): 3.0, _k(b="y"): 4.0}),
        ("avg without (a) (x)", {_k(b="x"): 1.5, _k(b="y"): 4.0}),
        ("count(x)", {(): 3.0}),
        ("min(x)", {(): 1.0}),
        ("max by (b) (x)", {_k(b="x"): 2.0, _k(b="y"): 4.0}),
        ("group by (b) (x)", {_k(b="x"): 1.0, _k(b="y"): 1.0}),
        ("stdvar(x)", {(): 14.0 / 9}),
        ("stddev(x)", {(): math.sqrt(14.0 / 9)}),
        ("quantile(0.5, x)", {(): 2.0}),
        ("quantile(0.75, x)", {(): 3.0}),
        ("topk(2, x)", {_k(__name__="x", a="3", b="y"): 4.0, _k(__name__="x", a="2", b="x"): 2.0}),
        ("bottomk by (b) (1, x)", {_k(__name__="x", a="1", b="x"): 1.0, _k(__name__="x", a="3", b="y"): 4.0}),
        ('count_values("v", x)', {_k(v="1"): 1.0, _k(v="2"): 1.0, _k(v="4"): 1.0}),
        ("count(limitk(2, x))", {(): 2.0}),
        ("sum(x) by (nonexistent)", {(): 7.0}),
    ],
)
def test_aggregations(engine: Engine, query: str, expected: dict[tuple[tuple[str, str], ...], float]) -> None:
    _assert_vector(engine.instant(query, 0), expected)


def test_topk_instant_order(engine: Engine) -> None:
    assert [s.value for s in engine.instant("topk(3, x)", 0).vector] == [4.0, 2.0, 1.0]
    assert [s.value for s in engine.instant("bottomk(3, x)", 0).vector] == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("x + on(a) y", {_k(a="1"): 11.0, _k(a="2"): 22.0}),
        ("x + ignoring(b) y", {_k(a="1"): 11.0, _k(a="2"): 22.0}),
        (
            "x * on(b) group_left(team) y2",
            {_k(a="1", b="x", team="t1"): 10.0, _k(a="2", b="x", team="t1"): 20.0},
        ),
        ("y2 * on(b) group_right x", {_k(a="1", b="x"): 10.0, _k(a="2", b="x"): 20.0}),
        ("x > 1", {_k(__name__="x", a="2", b="x"): 2.0, _k(__name__="x", a="3", b="y"): 4.0}),
        ("1 < x", {_k(__name__="x", a="2", b="x"): 2.0, _k(__name__="x", a="3", b="y"): 4.0}),
        ("x > bool 1", {_k(a="1", b="x"): 0.0, _k(a="2", b="x"): 1.0, _k(a="3", b="y"): 1.0}),
        ("x == on(a) y - 9", {_k(a="1"): 1.0}),
        ("x and on(b) y2", {_k(__name__="x", a="1", b="x"): 1.0, _k(__name__="x", a="2", b="x"): 2.0}),
        ("x unless on(a) y", {_k(__name__="x", a="3", b="y"): 4.0}),
        (
            "y or on(a) x",
            {_k(__name__="y", a="1"): 10.0, _k(__name__="y", a="2"): 20.0, _k(__name__="x", a="3", b="y"): 4.0},
        ),
        ("2 ^ 3 ^ 2", {}),  # a scalar; checked below
    ],
)
def test_binary_matching(engine: Engine, query: str, expected: dict[tuple[tuple[str, str], ...], float]) -> None:
    res = engine.instant(query, 0)
    if res.result_type == "scalar":
        assert res.scalar == (0, 512.0)  # `^` is right-associative
        return
    _assert_vector(res, expected)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x + on(b) x", "many-to-many matching not allowed: matching labels must be unique on one side"),
        ("x + on(b) group_left y2 * on(a) x", ""),
        ("y2 + on(b) x", "many-to-many matching not allowed"),
        ("x * on(b) group_left x", "many-to-many matching not allowed"),
        ('label_replace(x, "a", "same", "", "")', "vector cannot contain metrics with the same labelset"),
    ],
)
def test_matching_errors(engine: Engine, query: str, message: str) -> None:
    if not message:
        engine.instant(query, 0)
        return
    with pytest.raises(PromQLError) as err:
        engine.instant(query, 0)
    assert err.value.error_type == "execution"
    assert message in err.value.message


def test_one_to_one_needs_group_modifier() -> None:
    r = MemoryReader()
    r.add({"__name__": "m", "k": "1", "i": "a"}, [0], [1.0])
    r.add({"__name__": "m", "k": "1", "i": "b"}, [0], [2.0])
    r.add({"__name__": "o", "k": "1"}, [0], [3.0])
    with pytest.raises(PromQLError, match="many-to-one matching must be explicit") as err:
        Engine(r).instant("m + on(k) o", 0)
    assert err.value.error_type == "execution"


@pytest.mark.parametrize(
    ("query", "at_s", "expected"),
    [
        # Steps at absolute multiples of 20 s in (10 s, 70 s]: 20, 40, 60.
        ("count_over_time(s[1m:20s])", 70, 3.0),
        ("sum_over_time(s[1m:20s])", 70, 12.0),
        # Multiples of 25 s in (10 s, 70 s]: 25 (reads 2 by lookback), 50.
        ("sum_over_time(s[1m:25s])", 70, 7.0),
        # (5 s, 35 s]: 10, 20, 30.
        ("sum_over_time(s[30s:10s])", 35, 6.0),
        # The default step is one minute: (0, 300 s] holds 60, 120, ..., 300.
        ("count_over_time(s[5m:])", 300, 5.0),
        # With offset the window moves back: (-30 s, 30 s] -> 0, 10, 20, 30 s.
        ("count_over_time(s[1m:10s] offset 40s)", 70, 4.0),
        ("sum_over_time(s[20s:10s] @ 100)", 500, 19.0),
    ],
)
def test_subquery_alignment(engine: Engine, query: str, at_s: int, expected: float) -> None:
    _assert_vector(engine.instant(query, at_s * S), _one(expected))


def test_last_over_time_keeps_the_name(engine: Engine) -> None:
    _assert_vector(engine.instant("last_over_time(s[1m:25s])", 70 * S), {(("__name__", "s"),): 5.0})


def test_range_query_subquery_points_match_instant(engine: Engine) -> None:
    res = engine.range("sum_over_time(s[1m:25s])", 60 * S, 120 * S, 15 * S)
    for t, v in zip(res.matrix[0].timestamps, res.matrix[0].values, strict=True):
        assert v == _vector(engine.instant("sum_over_time(s[1m:25s])", int(t)))[()]


@pytest.mark.parametrize(
    ("at_s", "expected"),
    [(0, 1.0), (10, 2.0), (15, 2.0), (20, None), (25, None), (30, 4.0), (329, 4.0), (330, None)],
)
def test_staleness_and_lookback(engine: Engine, at_s: int, expected: float | None) -> None:
    got = _vector(engine.instant("st", at_s * S))
    assert got == ({} if expected is None else {(("__name__", "st"),): expected})


@pytest.mark.parametrize(
    ("query", "at_s", "expected"),
    [
        ("s offset 10s", 100, 9.0),
        ("s offset -10s", 100, 11.0),
        ("s @ 50", 1000, 5.0),
        ("s @ start()", 1000, 100.0),
        ("0x10 + 1", 0, 17.0),
        ("-2 ^ 2", 0, -4.0),
        ("Inf", 0, math.inf),
    ],
)
def test_modifiers_and_literals(engine: Engine, query: str, at_s: int, expected: float) -> None:
    res = engine.instant(query, at_s * S)
    value = res.scalar[1] if res.result_type == "scalar" and res.scalar else res.vector[0].value
    assert value == expected


def test_range_query_result_is_sorted_matrix(engine: Engine) -> None:
    res = engine.range("x", 0, 120 * S, 60 * S)
    assert res.result_type == "matrix"
    assert [s.labels["a"] for s in res.matrix] == ["1", "2", "3"]
    assert res.matrix[0].timestamps.tolist() == [0, 60_000, 120_000]
    assert engine.range("1 + 1", 0, 60 * S, 30 * S).matrix[0].values.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("make", "query", "error_type", "message"),
    [
        (lambda: Engine(_reader()), "sum(", "bad_data", "parse error"),
        (lambda: Engine(_reader()), "rate(x)", "bad_data", "parse error"),
        (lambda: Engine(_reader(), max_samples=5), "count_over_time(s[10m])", "execution",
         "query processing would load too many samples into memory in query execution"),
        (lambda: Engine(_reader(), timeout_s=-1.0), "s", "timeout", "query timed out"),
    ],
)  # fmt: skip
def test_error_types(make: object, query: str, error_type: str, message: str) -> None:
    with pytest.raises(PromQLError) as err:
        make().instant(query, 100 * S)  # type: ignore[operator]
    assert err.value.error_type == error_type
    assert message in err.value.message


def test_points_held_count_against_the_sample_limit() -> None:
    r = MemoryReader()
    for i in range(20):
        r.add({"__name__": "x", "i": str(i)}, [0], [1.0])
    engine = Engine(r, max_samples=100)
    assert len(engine.instant("x", 0).vector) == 20
    with pytest.raises(PromQLError) as err:
        engine.range("x", 0, 100 * S, S)  # 20 series x 101 steps
    assert err.value.error_type == "execution"


def test_cancel_and_per_query_timeout(engine: Engine) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(PromQLError) as err:
        engine.range("s", 0, 100 * S, S, cancel=cancel)
    assert err.value.error_type == "canceled"
    with pytest.raises(PromQLError) as err:
        engine.instant("s", 0, timeout_s=-1.0)
    assert err.value.error_type == "timeout"


@pytest.mark.parametrize(
    ("start_s", "end_s", "step_s", "message"),
    [
        (0, 100, 0, "zero or negative query resolution step widths are not accepted. Try a positive integer"),
        (100, 0, 1, "end timestamp must not be before start time"),
        (0, 11_000, 1, "exceeded maximum resolution of 11,000 points per timeseries. "
         "Try decreasing the query resolution (?step=XX)"),
    ],
)  # fmt: skip
def test_range_limits(engine: Engine, start_s: int, end_s: int, step_s: int, message: str) -> None:
    with pytest.raises(PromQLError) as err:
        engine.range("s", start_s * S, end_s * S, step_s * S)
    assert err.value.error_type == "bad_data"
    assert err.value.message == message


def test_range_at_the_point_limit_is_accepted(engine: Engine) -> None:
    assert engine.range("1", 0, 10_999 * S, S).matrix[0].values.shape == (11_000,)


def test_selector_reads_once_with_the_union_range() -> None:
    calls: list[tuple[int, int]] = []

    class Recording(MemoryReader):
        def select(self, matchers, start_ms, end_ms):  # type: ignore[no-untyped-def]
            calls.append((start_ms, end_ms))
            return super().select(matchers, start_ms, end_ms)

    r = Recording()
    r.add({"__name__": "s"}, [0], [1.0])
    Engine(r).range("rate(s[5m] offset 1m)", 600 * S, 1200 * S, 60 * S)
    assert calls == [((600 - 300 - 60) * S + 1, (1200 - 60) * S)]
