"""Prometheus text 0.0.4 and OpenMetrics 1.0 parsing: conformance tables, a round trip through the real
prometheus_client, to_batch label merging, and a property that any bytes give samples or ExpositionError."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary
from prometheus_client.exposition import generate_latest as generate_0_0_4
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from collector.codecs.prom_text import (
    Exemplar,
    ExpositionError,
    Family,
    ScrapedSample,
    SeriesCache,
    parse,
    to_batch,
)

PROM = "text/plain; version=0.0.4; charset=utf-8"
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
INF = math.inf


def S(name: str, labels: dict[str, str] | None = None, value: float = 1.0, ts: int | None = None) -> ScrapedSample:
    return ScrapedSample(name, tuple((labels or {}).items()), value, ts, None)


def samples(body: str, content_type: str) -> list[ScrapedSample]:
    return parse(body.encode(), content_type).samples


# -- 0.0.4 ----------------------------------------------------------------------------------------

PROM_CASES: list[tuple[str, str, list[ScrapedSample]]] = [
    ("plain", "foo 1\n", [S("foo")]),
    ("labels", 'foo{a="x",b="y"} 2\n', [S("foo", {"a": "x", "b": "y"}, 2.0)]),
    ("label order kept", 'foo{b="1",a="2"} 2\n', [S("foo", {"b": "1", "a": "2"}, 2.0)]),
    ("empty label set", "foo{} 3\n", [S("foo", value=3.0)]),
    ("trailing comma", 'foo{a="x",} 1\n', [S("foo", {"a": "x"})]),
    ("escaped backslash", r'foo{a="c:\\dir"} 1' + "\n", [S("foo", {"a": "c:\\dir"})]),
    ("escaped quote", r'foo{a="say \"hi\""} 1' + "\n", [S("foo", {"a": 'say "hi"'})]),
    ("escaped newline", r'foo{a="two\nlines"} 1' + "\n", [S("foo", {"a": "two\nlines"})]),
    ("unknown escape kept", r'foo{a="tab\t"} 1' + "\n", [S("foo", {"a": "tab\\t"})]),
    ("utf-8 value", 'foo{a="häßlich ✓"} 1\n', [S("foo", {"a": "häßlich ✓"})]),
    ("braces and hash in value", 'foo{a="{#} ,="} 1\n', [S("foo", {"a": "{#} ,="})]),
    ("colon in name", "job:rate5m 1\n", [S("job:rate5m")]),
    ("NaN", "foo NaN\n", [S("foo", value=math.nan)]),
    ("+Inf", "foo +Inf\n", [S("foo", value=INF)]),
    ("-Inf", "foo -Inf\n", [S("foo", value=-INF)]),
    ("Inf", "foo Inf\n", [S("foo", value=INF)]),
    ("int", "foo 42\n", [S("foo", value=42.0)]),
    ("negative float", "foo -0.25\n", [S("foo", value=-0.25)]),
    ("exponent", "foo 1.5e3\n", [S("foo", value=1500.0)]),
    ("negative exponent", "foo 2E-3\n", [S("foo", value=0.002)]),
    ("leading dot", "foo .5\n", [S("foo", value=0.5)]),
    ("timestamp", "foo 1 1712345678901\n", [S("foo", ts=1712345678901)]),
    ("timestamp after labels", 'foo{a="b"} 1 0\n', [S("foo", {"a": "b"}, ts=0)]),
    ("blank lines", "\nfoo 1\n\n  \nbar 2\n", [S("foo"), S("bar", value=2.0)]),
    ("comments", "# just a comment\n#no space\n# HELPER x\nfoo 1\n", [S("foo")]),
    ("no final newline", "foo 1\nbar 2", [S("foo"), S("bar", value=2.0)]),
    ("whitespace between tokens", '  foo { a = "x" , }\t 1 \t 5 \n', [S("foo", {"a": "x"}, ts=5)]),
    ("no space after brace", 'foo{a="x"}1\n', [S("foo", {"a": "x"})]),
    ("quoted utf-8 names", '{"my.metric", "label.name"="v"} 1\n', [S("my.metric", {"label.name": "v"})]),
    ("quoted name after labels", '{a="x", "my.metric"} 1\n', [S("my.metric", {"a": "x"})]),
    ("quoted label name", 'foo{"a b"="v"} 1\n', [S("foo", {"a b": "v"})]),
    ("empty value kept", 'foo{a=""} 1\n', [S("foo", {"a": ""})]),
    (
        "histogram",
        '# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 3\nh_sum 4.5\nh_count 3\n',
        [
            S("h_bucket", {"le": "0.5"}),
            S("h_bucket", {"le": "+Inf"}, 3.0),
            S("h_sum", value=4.5),
            S("h_count", value=3.0),
        ],
    ),
    (
        "summary",
        '# TYPE s summary\ns{quantile="0.99"} NaN\ns_sum 0\ns_count 0\n',
        [S("s", {"quantile": "0.99"}, math.nan), S("s_sum", value=0.0), S("s_count", value=0.0)],
    ),
    ("empty body", "", []),
]


def assert_samples(got: list[ScrapedSample], want: list[ScrapedSample]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if math.isnan(w.value):
            assert math.isnan(g.value)
            g = ScrapedSample(g.name, g.labels, w.value, g.timestamp_ms, g.exemplar)
        assert g == w


@pytest.mark.parametrize(("body", "want"), [c[1:] for c in PROM_CASES], ids=[c[0] for c in PROM_CASES])
def test_prom_samples(body: str, want: list[ScrapedSample]) -> None:
    assert_samples(samples(body, PROM), want)


def test_empty_content_type_is_0_0_4() -> None:
    assert samples("foo 1\n\n# comment\n", "") == [S("foo")]


PROM_META: list[tuple[str, str, dict[str, Family]]] = [
    (
        "help and type",
        "# HELP foo Some text.\n# TYPE foo counter\n",
        {"foo": Family("foo", "counter", "Some text.", "")},
    ),
    ("help escapes", '# HELP foo a\\\\b\\nc \\"q\\"\n', {"foo": Family("foo", "unknown", 'a\\b\nc \\"q\\"', "")}),
    ("empty help", "# HELP foo\n", {"foo": Family("foo", "unknown", "", "")}),
    ("untyped is unknown", "# TYPE foo untyped\n", {"foo": Family("foo", "unknown", "", "")}),
    ("tabs", "#\tTYPE\tfoo\tgauge\n", {"foo": Family("foo", "gauge", "", "")}),
    ("help keeps spaces", "# HELP foo  two  spaces \n", {"foo": Family("foo", "unknown", " two  spaces ", "")}),
    ("quoted name", '# TYPE "my.metric" summary\n', {"my.metric": Family("my.metric", "summary", "", "")}),
]


@pytest.mark.parametrize(("body", "want"), [c[1:] for c in PROM_META], ids=[c[0] for c in PROM_META])
def test_prom_metadata(body: str, want: dict[str, Family]) -> None:
    assert parse(body.encode(), PROM).families == want


# -- OpenMetrics ----------------------------------------------------------------------------------

EX = Exemplar((("trace_id", "KOO5S4vxi0o"),), 0.67, 1520879607789)

OM_CASES: list[tuple[str, str, list[ScrapedSample]]] = [
    ("eof only", "# EOF\n", []),
    ("eof without newline", "foo 1\n# EOF", [S("foo")]),
    (
        "counter",
        "# TYPE foo counter\nfoo_total 17\nfoo_created 1520430000.123\n# EOF\n",
        [
            S("foo_total", value=17.0),
            S("foo_created", value=1520430000.123),
        ],
    ),
    ("float timestamp", "foo 1 1520879607.789\n# EOF\n", [S("foo", ts=1520879607789)]),
    ("int timestamp", "foo 1 1520879607\n# EOF\n", [S("foo", ts=1520879607000)]),
    ("exponent timestamp", "foo 1 1.5e3\n# EOF\n", [S("foo", ts=1500000)]),
    ("negative timestamp truncates toward zero", "foo 1 -1.0005\n# EOF\n", [S("foo", ts=-1000)]),
    ("labels", 'foo{a="x",b="\\"\\\\\\n"} 1\n# EOF\n', [S("foo", {"a": "x", "b": '"\\\n'})]),
    ("trailing comma", 'foo{a="x",} 1\n# EOF\n', [S("foo", {"a": "x"})]),
    ("NaN Inf", "a NaN\nb +Inf\nc -Inf\n# EOF\n", [S("a", value=math.nan), S("b", value=INF), S("c", value=-INF)]),
    ("quoted names", '{"my.metric","l.n"="v"} 1\n# EOF\n', [S("my.metric", {"l.n": "v"})]),
    (
        "bucket exemplar",
        '# TYPE h histogram\nh_bucket{le="1"} 11 # {trace_id="KOO5S4vxi0o"} 0.67 1520879607.789\n# EOF\n',
        [ScrapedSample("h_bucket", (("le", "1"),), 11.0, None, EX)],
    ),
    (
        "exemplar after timestamp",
        "foo_total 3 1520879607.5 # {} 1\n# EOF\n",
        [ScrapedSample("foo_total", (), 3.0, 1520879607500, Exemplar((), 1.0, None))],
    ),
    (
        "exemplar on a gauge is accepted, as Prometheus does",
        '# TYPE g gauge\ng 3 # {a="b",} 2\n# EOF\n',
        [ScrapedSample("g", (), 3.0, None, Exemplar((("a", "b"),), 2.0, None))],
    ),
    (
        "gaugehistogram",
        '# TYPE g gaugehistogram\ng_bucket{le="+Inf"} 2\ng_gcount 2\ng_gsum 1\n# EOF\n',
        [S("g_bucket", {"le": "+Inf"}, 2.0), S("g_gcount", value=2.0), S("g_gsum", value=1.0)],
    ),
    (
        "stateset",
        '# TYPE s stateset\ns{s="a"} 1\ns{s="b"} 0\n# EOF\n',
        [S("s", {"s": "a"}), S("s", {"s": "b"}, 0.0)],
    ),
    ("info", '# TYPE b info\nb_info{v="1.2"} 1\n# EOF\n', [S("b_info", {"v": "1.2"})]),
]


@pytest.mark.parametrize(("body", "want"), [c[1:] for c in OM_CASES], ids=[c[0] for c in OM_CASES])
def test_openmetrics_samples(body: str, want: list[ScrapedSample]) -> None:
    assert_samples(samples(body, OM), want)


def test_openmetrics_metadata() -> None:
    body = (
        '# TYPE rt_seconds summary\n# UNIT rt_seconds seconds\n# HELP rt_seconds Round \\"trip\\" \\\\ \\n.\n'
        "# TYPE up gauge\n# TYPE x unknown\n# HELP x\n# EOF\n"
    )
    assert parse(body.encode(), OM).families == {
        "rt_seconds": Family("rt_seconds", "summary", 'Round "trip" \\ \n.', "seconds"),
        "up": Family("up", "gauge", "", ""),
        "x": Family("x", "unknown", "", ""),
    }


# -- errors ---------------------------------------------------------------------------------------

ERRORS: list[tuple[str, str, str, int, str]] = [
    # (id, content type, body, line, part of the reason)
    ("prom bad value", PROM, "foo 1\nbar x\n", 2, "invalid value"),
    ("prom no value", PROM, "foo\n", 1, "expected a value"),
    ("prom underscore value", PROM, "foo 1_000\n", 1, "invalid value"),
    ("prom hex value", PROM, "foo 0x1p3\n", 1, "invalid value"),
    ("prom signed nan", PROM, "foo -NaN\n", 1, "invalid value"),
    ("prom value overflow", PROM, "foo 1e400\n", 1, "out of range"),
    ("prom float timestamp", PROM, "foo 1 1.5\n", 1, "expected the end"),
    ("prom negative timestamp", PROM, "foo 1 -5\n", 1, "expected a timestamp"),
    ("prom timestamp overflow", PROM, "foo 1 99999999999999999999\n", 1, "out of range"),
    ("prom extra token", PROM, "foo 1 2 3\n", 1, "expected the end"),
    ("prom exemplar", PROM, 'foo_total 1 # {a="b"} 1\n', 1, "expected a timestamp"),
    ("prom unterminated value", PROM, '\n\nfoo{a="b} 1\n', 3, "label value"),
    ("prom unquoted value", PROM, "foo{a=b} 1\n", 1, "quoted label value"),
    ("prom missing equals", PROM, 'foo{a "b"} 1\n', 1, "expected '='"),
    ("prom leading comma", PROM, 'foo{,a="b"} 1\n', 1, "expected a label name"),
    ("prom double comma", PROM, 'foo{a="b",,} 1\n', 1, "expected a label name"),
    ("prom missing comma", PROM, 'foo{a="b" c="d"} 1\n', 1, "expected ','"),
    ("prom unterminated set", PROM, 'foo{a="b" 1\n', 1, "expected ','"),
    ("prom duplicate label", PROM, 'foo{a="b",a="c"} 1\n', 1, "not unique"),
    ("prom __name__ label", PROM, 'foo{__name__="bar"} 1\n', 1, "not unique"),
    ("prom two names", PROM, 'foo{"bar"} 1\n', 1, "unexpected metric name"),
    ("prom no name", PROM, 'foo 1\n{a="b"} 1\n', 2, "expected a metric name"),
    ("prom bad name", PROM, "1foo 1\n", 1, "expected a metric name"),
    ("prom bad type", PROM, "# TYPE foo gaugehistogram\n", 1, "invalid metric type"),
    ("prom type trailing space", PROM, "# TYPE foo counter \n", 1, "invalid metric type"),
    ("prom help no name", PROM, "# HELP 1x text\n", 1, "expected metric name"),
    ("prom crlf", PROM, "foo 1\r\n", 1, "invalid value"),
    ("om missing eof", OM, "foo 1\n", 2, "does not end with # EOF"),
    ("om empty body", OM, "", 1, "does not end with # EOF"),
    ("om data after eof", OM, "# EOF\nfoo 1\n", 2, "after # EOF"),
    ("om blank after eof", OM, "foo 1\n# EOF\n\n", 3, "after # EOF"),
    ("om blank line", OM, "foo 1\n\nbar 1\n# EOF\n", 2, "empty line"),
    ("om carriage return", OM, "foo 1\r\n# EOF\n", 1, "carriage return"),
    ("om comment", OM, "# a comment\n# EOF\n", 1, "invalid comment"),
    ("om hash without space", OM, "#TYPE foo gauge\n# EOF\n", 1, "invalid comment"),
    ("om double space", OM, "foo  1\n# EOF\n", 1, "expected a value"),
    ("om leading space", OM, " foo 1\n# EOF\n", 1, "expected a metric name"),
    ("om space in labels", OM, 'foo{a="b", c="d"} 1\n# EOF\n', 1, "expected a label name"),
    ("om trailing space", OM, "foo 1 \n# EOF\n", 1, "expected a timestamp"),
    ("om invalid escape", OM, 'foo{a="\\t"} 1\n# EOF\n', 1, "invalid label value escape"),
    ("om bad timestamp", OM, "foo 1 NaN\n# EOF\n", 1, "invalid timestamp"),
    ("om inf timestamp", OM, "foo 1 +Inf\n# EOF\n", 1, "invalid timestamp"),
    ("om exemplar without labels", OM, "foo_total 1 # 2\n# EOF\n", 1, "exemplar"),
    ("om exemplar without value", OM, 'foo_total 1 # {a="b"}\n# EOF\n', 1, "exemplar value"),
    ("om exemplar bad value", OM, 'foo_total 1 # {a="b"} x\n# EOF\n', 1, "invalid exemplar value"),
    ("om exemplar metric name", OM, 'foo_total 1 # {"x"} 1\n# EOF\n', 1, "unexpected metric name"),
    ("om exemplar extra", OM, 'foo_total 1 # {a="b"} 1 2 3\n# EOF\n', 1, "end of the line"),
    ("om bad type", OM, "# TYPE foo untyped\n# EOF\n", 1, "invalid metric type"),
    ("om unit not suffix", OM, "# UNIT foo seconds\n# EOF\n", 1, "not a suffix"),
    ("om unit partial suffix", OM, "# UNIT fooseconds seconds\n# EOF\n", 1, "not a suffix"),
]


@pytest.mark.parametrize(
    ("content_type", "body", "line", "reason"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_errors(content_type: str, body: str, line: int, reason: str) -> None:
    with pytest.raises(ExpositionError) as info:
        parse(body.encode(), content_type)
    assert info.value.line == line
    assert reason in str(info.value)
    assert str(info.value).startswith(f"line {line}: ")


@pytest.mark.parametrize("content_type", [PROM, OM])
def test_invalid_utf8_names_its_line(content_type: str) -> None:
    with pytest.raises(ExpositionError) as info:
        parse(b'foo 1\nbar{a="\xff"} 1\n# EOF\n', content_type)
    assert info.value.line == 2
    assert "UTF-8" in str(info.value)


# -- round trip through prometheus_client ----------------------------------------------------------


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("requests", "Requests \\ served\nby path.", ["path", "code"], registry=registry)
    counter.labels('/a"b', "200").inc(3)
    counter.labels("/c\\d\ne", "500").inc(0.5)
    gauge = Gauge("temperature_celsius", "Temperature.", ["room"], registry=registry, unit="celsius")
    gauge.labels("kitchen").set(-3.25)
    gauge.labels("attic").set(math.inf)
    histogram = Histogram("latency_seconds", "Latency.", ["route"], registry=registry, buckets=[0.1, 0.5, 2.5])
    histogram.labels("/x").observe(0.05, exemplar={"trace_id": "abc", "span_id": "0123456789abcdef"})
    histogram.labels("/x").observe(0.3, exemplar={"trace_id": "abc"})
    histogram.labels("/x").observe(7)
    summary = Summary("payload_bytes", "Payload sizes.", registry=registry)
    summary.observe(512)
    summary.observe(1e20)
    info = Info("build", "Build information.", registry=registry)
    info.info({"version": "1.2.3", "commit": "deadbeef"})
    return registry


def recorded(registry: CollectorRegistry, with_exemplars: bool) -> list[tuple[Any, ...]]:
    out = []
    for family in registry.collect():
        for s in family.samples:
            exemplar = None
            if with_exemplars and s.exemplar is not None:
                exemplar = (tuple(sorted(s.exemplar.labels.items())), s.exemplar.value)
            out.append((s.name, tuple(sorted(s.labels.items())), s.value, exemplar))
    return sorted(out, key=repr)


def parsed(body: bytes, content_type: str) -> list[tuple[Any, ...]]:
    out = []
    for s in parse(body, content_type).samples:
        exemplar = None
        if s.exemplar is not None:
            exemplar = (tuple(sorted(s.exemplar.labels)), s.exemplar.value)
        out.append((s.name, tuple(sorted(s.labels)), s.value, exemplar))
    return sorted(out, key=repr)


def test_round_trip_0_0_4() -> None:
    registry = build_registry()
    body = generate_0_0_4(registry)
    assert parsed(body, PROM) == recorded(registry, with_exemplars=False)
    families = parse(body, PROM).families
    assert families["requests_total"] == Family("requests_total", "counter", "Requests \\ served\nby path.", "")
    assert families["latency_seconds"].type == "histogram"
    assert families["payload_bytes"].type == "summary"


def test_round_trip_openmetrics() -> None:
    registry = build_registry()
    body = generate_openmetrics(registry)
    got = parsed(body, OM)
    assert got == recorded(registry, with_exemplars=True)
    assert sum(1 for s in got if s[3] is not None) == 2
    families = parse(body, OM).families
    want = {f.name: (f.type, f.documentation, f.unit) for f in registry.collect()}
    assert {name: (f.type, f.help, f.unit) for name, f in families.items()} == want
    # Exemplar timestamps (float seconds) come back as ms.
    exemplars = [s.exemplar for s in parse(body, OM).samples if s.exemplar is not None]
    for family in registry.collect():
        for s in family.samples:
            if s.exemplar is not None:
                assert s.exemplar.timestamp is not None
                ms = int(float(s.exemplar.timestamp) * 1000)
                assert any(abs((e.timestamp_ms or 0) - ms) <= 1 for e in exemplars)


# -- to_batch -------------------------------------------------------------------------------------

TARGET = {"job": "node", "instance": "host:9100"}

HONOR: list[tuple[str, str, bool, dict[str, str]]] = [
    ("no clash", 'foo{a="1"} 1\n', False, {"__name__": "foo", "a": "1", "job": "node", "instance": "host:9100"}),
    (
        "clash renamed",
        'foo{job="app",instance="x"} 1\n',
        False,
        {"__name__": "foo", "job": "node", "instance": "host:9100", "exported_job": "app", "exported_instance": "x"},
    ),
    (
        "clash honored",
        'foo{job="app",instance="x"} 1\n',
        True,
        {"__name__": "foo", "job": "app", "instance": "x"},
    ),
    (
        "honored keeps missing target labels",
        'foo{job="app"} 1\n',
        True,
        {"__name__": "foo", "job": "app", "instance": "host:9100"},
    ),
    (
        "exported name already taken",
        'foo{job="app",exported_job="old"} 1\n',
        False,
        {
            "__name__": "foo",
            "job": "node",
            "instance": "host:9100",
            "exported_job": "old",
            "exported_exported_job": "app",
        },
    ),
    ("empty scraped value is absent", 'foo{job=""} 1\n', False, {"__name__": "foo", **TARGET}),
    ("empty scraped value is absent, honored", 'foo{job=""} 1\n', True, {"__name__": "foo", **TARGET}),
]


@pytest.mark.parametrize(("body", "honor", "want"), [c[1:] for c in HONOR], ids=[c[0] for c in HONOR])
def test_to_batch_labels(body: str, honor: bool, want: dict[str, str]) -> None:
    batch = to_batch(parse(body.encode(), PROM), TARGET, 1000, honor)
    assert list(batch.series.values()) == [want]


def test_to_batch_timestamps_exemplars_metadata() -> None:
    body = (
        "# TYPE rt_seconds histogram\n# UNIT rt_seconds seconds\n# HELP rt_seconds Round trips.\n"
        'rt_seconds_bucket{le="1"} 2 # {trace_id="ABC123",span_id="0f",user="u"} 0.5 10.5\n'
        'rt_seconds_bucket{le="+Inf"} 3 20 # {trace_id="not-hex"} 9\n'
        'rt_seconds_count 3 # {long="' + "x" * 125 + '"} 1\n'
        "rt_seconds_sum 9.5\n# EOF\n"
    )
    batch = to_batch(parse(body.encode(), OM), {"job": "j"}, 7000, False)
    assert batch.timestamp_ms == [7000, 20000, 7000, 7000]
    assert batch.value == [2.0, 3.0, 3.0, 9.5]
    assert batch.ex_fingerprint == batch.fingerprint[:2]  # the over-long exemplar is dropped
    assert batch.ex_timestamp_ms == [10500, 20000]
    assert batch.ex_value == [0.5, 9.0]
    assert batch.ex_trace_id == ["abc123", ""]
    assert batch.ex_span_id == ["0f", ""]
    assert batch.ex_labels.keys == ["user", "trace_id"]
    assert batch.ex_labels.values == ["u", "not-hex"]
    assert batch.metadata["rt_seconds"].unit == "seconds"
    assert batch.metadata["rt_seconds"].help == "Round trips."
    assert batch.metadata["rt_seconds"].type == "histogram"
    assert len(batch.samples_table()) == 4
    assert len(batch.exemplars_table()) == 2


# -- properties -----------------------------------------------------------------------------------

# Bytes drawn mostly from the format's own alphabet, so that generated input gets past the first token.
_SYNTAX = st.lists(
    st.sampled_from(
        [b"#", b" ", b"\t", b"\n", b"\r", b"{", b"}", b"=", b",", b'"', b"\\", b"foo", b"_total", b"le", b"1",
         b"-", b"+", b".", b"e", b"Inf", b"NaN", b"# HELP ", b"# TYPE ", b"# UNIT ", b"# EOF", b"counter",
         b" # {", b"\xff", b"\xc3\xa4"]
    ),
    max_size=40,
).map(b"".join)  # fmt: skip


@settings(max_examples=400)
@given(body=st.one_of(st.binary(max_size=200), _SYNTAX), content_type=st.sampled_from([PROM, OM, ""]))
def test_any_bytes_parse_or_raise_exposition_error(body: bytes, content_type: str) -> None:
    try:
        exp = parse(body, content_type)
    except ExpositionError as e:
        assert e.line >= 1
        assert str(e).startswith(f"line {e.line}: ")
        return
    to_batch(exp, TARGET, 0, False)


_LABEL_VALUES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"), max_size=20)


@given(
    values=st.lists(_LABEL_VALUES, min_size=1, max_size=4),
    value=st.floats(allow_nan=False),
    content_type=st.sampled_from([PROM, OM]),
)
@example(values=["inf"], value=float("inf"), content_type=PROM)
def test_escaped_label_values_round_trip(values: list[str], value: float, content_type: str) -> None:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    labels = ",".join(f'l{i}="{esc(v)}"' for i, v in enumerate(values))
    # Python spells infinity "inf"; the format wants "+Inf". Only the value is respelled, never a label.
    number = repr(value).replace("inf", "Inf")
    body = f"foo{{{labels}}} {number}\n# EOF\n"
    [sample] = parse(body.encode(), content_type).samples
    assert sample.labels == tuple((f"l{i}", v) for i, v in enumerate(values))
    assert sample.value == value


OM_TIMESTAMPS = [
    ("1520879607.789", 1520879607789),
    ("-1.0005", -1000),
    ("1." + "9" * 60, 1999),
    ("1e-400", 0),
    ("0e99999999999999999999", 0),
    ("1e-99999999999999999999", 0),
    ("9.1e15", 9_100_000_000_000_000_000),
]


@pytest.mark.parametrize(("text", "ms"), OM_TIMESTAMPS)
def test_openmetrics_timestamp_edges(text: str, ms: int) -> None:
    [sample] = samples(f"foo 1 {text}\n# EOF\n", OM)
    assert sample.timestamp_ms == ms


def test_error_message_cuts_long_tokens() -> None:
    with pytest.raises(ExpositionError) as info:
        parse(b"foo " + b"9" * 5000 + b"\n", PROM)
    assert len(str(info.value)) < 120


# Series texts, values and timestamps that are valid, nearly valid, or misleading to a cache keyed on
# the text up to the last `}` (braces in label values, exemplars, a `}` after the value).
_SERIES_TEXT = st.sampled_from(
    ["a", "a_total", "a{}", 'a{b="c"}', 'a {b="c"}', 'a{b="c}"}', 'a{b="x y"}', 'a{b="c",}', 'a{ b = "c" }',
     'a{b="\\"}"}', '{"a.b"}', '{"a.b",b="c"}', 'a{b="c"', 'a{b=c}', "a}", "1a", 'a{b="c"}{', 'a{__name__="x"}']
)  # fmt: skip
_VALUE_TEXT = st.sampled_from(["1", "-2.5", "NaN", "+Inf", "1e3", "x", "1}", "0x1", "1_0", ""])
_TS_TEXT = st.sampled_from(["", " 123", " -1", " 1.5", " 99999999999999999999", ' # {t="1"} 2', ' # {t="1"} 2 3'])
_LINE = st.tuples(_SERIES_TEXT, st.sampled_from([" ", "\t", "  "]), _VALUE_TEXT, _TS_TEXT).map("".join)
_BODY = st.lists(st.one_of(_LINE, st.sampled_from(["# TYPE a counter", "", "# EOF"])), max_size=8).map(
    lambda lines: "\n".join(lines) + "\n"
)


def _outcome(body: str, content_type: str, cache: SeriesCache | None) -> object:
    try:
        exp = parse(body.encode(), content_type, cache)
    except ExpositionError as e:
        return ("error", str(e))
    batch = to_batch(exp, TARGET, 5, False, cache)
    return (
        [(s.name, s.labels, repr(s.value), s.timestamp_ms, s.exemplar) for s in exp.samples],
        exp.families,
        batch.series,
        batch.fingerprint,
        batch.timestamp_ms,
        [repr(v) for v in batch.value],
    )


@settings(max_examples=300)
@given(scrapes=st.lists(st.tuples(_BODY, st.sampled_from([PROM, OM])), min_size=1, max_size=4))
def test_series_cache_changes_nothing(scrapes: list[tuple[str, str]]) -> None:
    """Scrapes parsed with one cache (as a target's are) give exactly what parsing without it gives."""
    cache = SeriesCache()
    for body, content_type in scrapes:
        assert _outcome(body, content_type, cache) == _outcome(body, content_type, None)


def test_series_cache_reuses_parsed_series_and_stays_bounded() -> None:
    cache = SeriesCache()
    first = parse(b'a{b="c"} 1\nd 2\n', PROM, cache)
    batch = to_batch(first, TARGET, 0, False, cache)
    assert set(cache.parsed) == {'a{b="c"}', "d"} and set(cache.final) == {'a{b="c"}', "d"}
    again = to_batch(parse(b'a{b="c"} 5\nd 6\n', PROM, cache), TARGET, 0, False, cache)
    assert again.series == batch.series and again.value == [5.0, 6.0]
    for i in range(100):
        body = f'x{{i="{i}"}} 1\n'.encode()
        exp = parse(body, PROM, cache)
        to_batch(exp, TARGET, 0, False, cache)
        cache.trim(len(exp.samples))
    assert len(cache.parsed) <= 2 + 64 + 1
