"""Metric queries of issue 6 over an in-memory source: unwrapped range aggregations, offset, absent_over_time,
the extra vector aggregations, binary operators and label_replace. Expected values are computed here with
plain Python (statistics, sums over the entries), never with the engine's code."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import pytest

from collector.query.logql.ast import LogQuery, MetricExpr
from collector.query.logql.engine import LogQLEngine, QueryError
from collector.query.logql.parser import parse
from collector.query.logql.storage import Entry
from tests.unit.query.logql_source import MemorySource

S = 1_000_000_000
AT = 100 * S  # the instant most cases are evaluated at


def _latency_ms(i: int) -> int:
    return (i * 37) % 250 + 1


def _entries() -> list[Entry]:
    out = []
    total = {"api": 0, "web": 0}
    for i in range(48):  # every 2.5 s over 120 s
        app = ("api", "web")[i % 2]
        total[app] += i
        line = f"path=/p{i % 3} latency={_latency_ms(i)}ms size={i}KB total={total[app]} n={i}"
        out.append(Entry(i * 2_500_000_000, line, {"app": app}))
    return out


ENTRIES = _entries()


def _fields(line: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in line.split())


def _window(app: str, at: int, range_s: int, offset_s: int = 0) -> list[Entry]:
    end = at - offset_s * S
    return [e for e in ENTRIES if e.stream["app"] == app and end - range_s * S < e.ts_ns <= end]


def metric(text: str) -> MetricExpr:
    expr = parse(text)
    assert not isinstance(expr, LogQuery)
    return expr


def vector(text: str, at: int = AT) -> dict[tuple[tuple[str, str], ...], float]:
    result = LogQLEngine(MemorySource(ENTRIES)).instant(metric(text), at).result
    assert result.vector is not None
    return {tuple(sorted(s.labels.items())): s.value for s in result.vector}


def _latencies_s(app: str, range_s: int = 30) -> list[float]:
    return [int(_fields(e.line)["latency"][:-2]) / 1000 for e in _window(app, AT, range_s)]


def _quantile(q: float, values: list[float]) -> float:
    # R's type 7 (Prometheus' and Loki's): linear between the closest ranks, rank = q * (n - 1).
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


UNWRAPPED: list[tuple[str, Callable[[list[float]], float]]] = [
    ("sum_over_time", sum),
    ("avg_over_time", statistics.fmean),
    ("max_over_time", max),
    ("min_over_time", min),
    ("first_over_time", lambda v: v[0]),
    ("last_over_time", lambda v: v[-1]),
    ("stdvar_over_time", statistics.pvariance),
    ("stddev_over_time", statistics.pstdev),
    ("quantile_over_time(0.9,", lambda v: _quantile(0.9, v)),
    ("rate", lambda v: sum(v) / 30),
]


@pytest.mark.parametrize(("fn", "reduce"), UNWRAPPED, ids=[u[0] for u in UNWRAPPED])
def test_unwrapped_functions(fn: str, reduce: Callable[[list[float]], float]) -> None:
    open_ = fn if fn.endswith(",") else fn + "("
    got = vector(f'{open_} {{app=~"api|web"}} | logfmt | keep app, latency | unwrap duration(latency) [30s])')
    assert got == {(("app", app),): pytest.approx(reduce(_latencies_s(app))) for app in ("api", "web")}


@pytest.mark.parametrize(
    ("field", "unwrap", "convert"),
    [
        ("size", "unwrap size", None),  # "12KB" is no float: SampleExtractionErr
        ("size", "unwrap bytes(size)", lambda v: float(int(v[:-2]) * 1000)),
        ("n", "unwrap n", float),
        ("latency", 'unwrap latency | __error__=""', None),  # every conversion fails and is filtered out
        ("latency", 'unwrap latency | __error__!="LabelFilterErr"', None),  # the error stays: refused
    ],
)
def test_conversions(field: str, unwrap: str, convert: Callable[[str], float] | None) -> None:
    text = f'sum_over_time({{app="api"}} | logfmt | keep app, {field} | {unwrap} [30s])'
    if convert is None and '__error__=""' not in unwrap:
        with pytest.raises(QueryError, match=r"pipeline error: 'SampleExtractionErr' for series: '.*__error__"):
            vector(text)
        return
    got = vector(text)
    if convert is None:
        assert got == {}
        return
    want = sum(convert(_fields(e.line)[field]) for e in _window("api", AT, 30))
    assert got == {(("app", "api"),): pytest.approx(want)}


def test_unwrap_labels_and_grouping() -> None:
    # Without by, the series keep every label but the unwrapped one; by (path) keeps path alone.
    want: dict[tuple[tuple[str, str], ...], float] = {}
    for e in _window("api", AT, 30):
        key = (("app", "api"), ("path", _fields(e.line)["path"]))
        want[key] = max(want.get(key, -math.inf), float(_fields(e.line)["latency"][:-2]))
    got = vector('max_over_time({app="api"} | logfmt | drop n, size, total | unwrap duration(latency) [30s])')
    assert got == {k: v / 1000 for k, v in want.items()}
    by_path = vector('max_over_time({app=~".+"} | logfmt | unwrap duration(latency) [30s]) by (path)')
    want_path: dict[tuple[tuple[str, str], ...], float] = {}
    for app in ("api", "web"):
        for e in _window(app, AT, 30):
            path_key = (("path", _fields(e.line)["path"]),)
            latency = int(_fields(e.line)["latency"][:-2]) / 1000
            want_path[path_key] = max(want_path.get(path_key, -math.inf), latency)
    assert by_path == want_path


def test_rate_counter() -> None:
    # Loki anchors the range on the samples: start = first sample - range, end = last sample.
    window = _window("api", AT, 30)
    times = [e.ts_ns / S for e in window]
    values = [float(_fields(e.line)["total"]) for e in window]
    increase = values[-1] - values[0]  # a counter that never resets here
    sampled = times[-1] - times[0]
    average = sampled / (len(values) - 1)
    to_start = min(30.0, sampled * values[0] / increase)
    interval = sampled + (to_start if to_start < average * 1.1 else average / 2)  # the end needs nothing added
    want = increase * interval / sampled / 30
    got = vector('rate_counter({app="api"} | logfmt | keep app, total | unwrap total [30s])')
    assert list(got.values()) == [pytest.approx(want)]


def test_offset_and_absent() -> None:
    got = vector('count_over_time({app="api"}[20s] offset 30s)')
    assert got == {(("app", "api"),): float(len(_window("api", AT, 20, 30)))}
    assert vector('absent_over_time({app="nothing", level=~"x|y"}[1m])') == {(("app", "nothing"),): 1.0}
    assert vector('absent_over_time({app="api"}[1m])') == {}
    # Range query: absent only at the steps whose window holds nothing (the data ends at 117.5 s).
    engine = LogQLEngine(MemorySource(ENTRIES))
    result = engine.range(metric('absent_over_time({app="web"}[10s])'), 110 * S, 140 * S, 10 * S).result
    assert result.matrix is not None
    assert [s.timestamps.tolist() for s in result.matrix] == [[130_000, 140_000]]


def _counts(range_s: int = 30) -> dict[str, float]:
    return {app: float(len(_window(app, AT, range_s))) for app in ("api", "web")}


def test_vector_aggregations() -> None:
    base = 'sum by (path) (count_over_time({app=~".+"} | logfmt [30s]))'
    per_path: dict[str, float] = {}
    for app in ("api", "web"):
        for e in _window(app, AT, 30):
            p = _fields(e.line)["path"]
            per_path[p] = per_path.get(p, 0) + 1
    values = list(per_path.values())
    assert vector(f"stddev({base})") == {(): pytest.approx(statistics.pstdev(values))}
    assert vector(f"stdvar({base})") == {(): pytest.approx(statistics.pvariance(values))}
    smallest = min(per_path, key=lambda p: (per_path[p], p))
    got = vector(f"bottomk(1, {base})")
    assert list(got.values()) == [per_path[smallest]]
    engine = LogQLEngine(MemorySource(ENTRIES))
    for op, reverse in (("sort", False), ("sort_desc", True)):
        result = engine.instant(metric(f"{op}({base})"), AT).result
        assert result.vector is not None
        assert [s.value for s in result.vector] == sorted(values, reverse=reverse)


def test_binary_operators() -> None:
    counts = _counts()
    api = (("app", "api"),)
    web = (("app", "web"),)
    c = 'count_over_time({app=~".+"}[30s])'
    assert vector(f"{c} / 2") == {(("app", a),): n / 2 for a, n in counts.items()}
    assert vector(f"{c} ^ 2 - 1") == {(("app", a),): n**2 - 1 for a, n in counts.items()}
    assert vector(f'{c} / count_over_time({{app=~".+"}}[15s])') == {
        (("app", a),): n / len(_window(a, AT, 15)) for a, n in counts.items()
    }
    threshold = min(counts.values())
    assert vector(f"{c} > {threshold}") == {(("app", a),): n for a, n in counts.items() if n > threshold}
    assert vector(f"{threshold} < {c}") == {(("app", a),): n for a, n in counts.items() if threshold < n}
    assert vector(f"{c} > bool {threshold}") == {(("app", a),): float(n > threshold) for a, n in counts.items()}
    only_api = 'count_over_time({app="api"}[30s])'
    assert vector(f"{c} and {only_api}") == {api: counts["api"]}
    assert vector(f"{c} unless {only_api}") == {web: counts["web"]}
    assert vector(f'{only_api} or count_over_time({{app=~".+"}}[15s])') == {
        api: counts["api"],
        web: float(len(_window("web", AT, 15))),
    }


def test_scalar_comparison_with_bool() -> None:
    result = LogQLEngine(MemorySource(ENTRIES)).instant(metric("2 > bool 1"), AT).result
    assert result.result_type == "scalar"
    assert result.scalar == (AT // 1_000_000, 1.0)


def test_label_replace() -> None:
    got = vector('label_replace(count_over_time({app=~".+"}[30s]), "team", "team-$1", "app", "(a)p.")')
    counts = _counts()
    assert got == {(("app", "api"), ("team", "team-a")): counts["api"], (("app", "web"),): counts["web"]}


def test_pushdown_kept_for_plain_filters_only() -> None:
    source = MemorySource(ENTRIES)
    engine = LogQLEngine(source)
    engine.instant(metric('sum by (app) (count_over_time({app=~".+"} |= "path=/p1" [30s]))'), AT)
    assert source.pushed_sums == 1
    shifted = engine.range(
        metric('sum by (app) (count_over_time({app="api"}[20s] offset 30s))'), AT, AT + 10 * S, 10 * S
    )
    assert source.pushed_sums == 2  # an offset is pushed down too, its windows shifted
    assert shifted.result.matrix is not None
    assert [(s.timestamps.tolist(), s.values.tolist()) for s in shifted.result.matrix] == [
        (
            [AT // 1_000_000, (AT + 10 * S) // 1_000_000],
            [float(len(_window("api", t, 20, 30))) for t in (AT, AT + 10 * S)],
        )
    ]
    got = engine.instant(metric('sum by (app) (count_over_time({app=~".+"} |= "p1" or "p2" [30s]))'), AT).result
    assert source.pushed_sums == 2  # an or-filter runs here
    assert source.selections[-1].line_filters == ()
    assert got.vector is not None
    want = {a: float(sum(1 for e in _window(a, AT, 30) if "p1" in e.line or "p2" in e.line)) for a in ("api", "web")}
    assert {s.labels["app"]: s.value for s in got.vector} == want


PER_PATH = 'sum by (app, path) (count_over_time({app=~".+"} | logfmt | keep app, path [30s]))'
PER_APP = 'sum by (app) (count_over_time({app=~".+"}[30s]))'


def _per_path() -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for app in ("api", "web"):
        for e in _window(app, AT, 30):
            key = (app, _fields(e.line)["path"])
            out[key] = out.get(key, 0.0) + 1
    return out


@pytest.mark.parametrize("matching", ["on (app) group_left", "ignoring (path) group_left ()"])
def test_many_to_one_matching(matching: str) -> None:
    counts = _counts()
    want = {(("app", a), ("path", p)): n / counts[a] for (a, p), n in _per_path().items()}
    assert vector(f"{PER_PATH} / {matching} {PER_APP}") == pytest.approx(want)
    # group_right: the same division with the "many" side on the right
    flipped = {k: 1 / v for k, v in want.items()}
    right = matching.replace("group_left", "group_right")
    assert vector(f"{PER_APP} / {right} {PER_PATH}") == pytest.approx(flipped)


def test_group_left_copies_labels_from_the_one_side() -> None:
    teams = f'label_replace({PER_APP}, "team", "team-$1", "app", "(.*)")'
    got = vector(f"{PER_PATH} * on (app) group_left (team) {teams}")
    counts = _counts()
    assert got == {(("app", a), ("path", p), ("team", f"team-{a}")): n * counts[a] for (a, p), n in _per_path().items()}


def test_matching_errors_and_set_operators_on_labels() -> None:
    with pytest.raises(QueryError, match="many-to-one matching must be explicit"):
        vector(f"{PER_PATH} / on (app) {PER_APP}")
    with pytest.raises(QueryError, match="found duplicate series for the match group"):
        vector(f"{PER_APP} / on (app) group_left {PER_PATH}")
    only_api = 'count_over_time({app="api"}[30s])'
    assert vector(f"{PER_PATH} and on (app) {only_api}") == {
        (("app", a), ("path", p)): n for (a, p), n in _per_path().items() if a == "api"
    }
    assert vector(f"{PER_PATH} unless ignoring (path) {only_api}") == {
        (("app", a), ("path", p)): n for (a, p), n in _per_path().items() if a == "web"
    }
    # one-to-one on(app): the result keeps only the on labels
    assert vector(f'{PER_APP} - on (app) count_over_time({{app=~".+"}}[15s])') == {
        (("app", a),): n - len(_window(a, AT, 15)) for a, n in _counts().items()
    }


@pytest.mark.parametrize(
    ("stages", "pushed"),
    [
        ('|= "a" |= ip("10.0.0.0/8") |= "b" | decolorize |= "c"', ["a", "b"]),
        ('| unpack |= "c"', []),
        ('|~ "x" | logfmt |= "c" | line_format "{{.a}}" |= "d"', ["x", "c"]),
    ],
)
def test_only_filters_on_the_stored_line_are_pushed(stages: str, pushed: list[str]) -> None:
    source = MemorySource(ENTRIES)
    query = parse('{app="api"} ' + stages)
    assert isinstance(query, LogQuery)
    LogQLEngine(source).logs(query, 0, AT, 10, backward=True)
    assert [f.value for f in source.selections[0].line_filters] == pushed
