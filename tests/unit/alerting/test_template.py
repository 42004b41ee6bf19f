"""Alert templates render as Prometheus 2.42 renders them (the table is pinned from promtool and re-checked
against it in tests/integration/test_alerting_promtool.py); templates Go refuses are refused with a position."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.goformat import format_float, sprintf
from alerting.model import Sample
from alerting.template import TemplateError, check, render
from tests.unit.alerting.template_cases import CASES, EXTERNAL_LABELS, EXTERNAL_URL, PARSE_CASES, TemplateCase


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c.template[:40]}" for i, c in enumerate(CASES)])
def test_render_as_prometheus(case: TemplateCase) -> None:
    got = render(case.template, case.labels, case.value, EXTERNAL_LABELS, EXTERNAL_URL, alert_name="T")
    assert got == case.expected


def test_missing_label_is_empty_not_no_value() -> None:
    # Prometheus executes with missingkey=zero: a missing key of map[string]string is "", not "<no value>"
    assert render("[{{ $labels.absent }}]", {}, 0.0) == "[]"


def test_external_labels_default_to_empty() -> None:
    assert render("{{ $externalLabels.region }}|{{ $externalURL }}", {"a": "b"}, 1.0) == "|"


class RecordingQuery:
    """A QueryFunc test double: answers from a table and records what it was asked."""

    def __init__(self, answers: dict[str, list[Sample]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, float]] = []

    def __call__(self, expr: str, at: float) -> Sequence[Sample]:
        self.asked.append((expr, at))
        return self.answers[expr]


def test_query_function_uses_the_query_seam() -> None:
    query = RecordingQuery({"up": [Sample({"job": "b"}, 0.0), Sample({"job": "a"}, 1.0)]})
    text = '{{ range query "up" | sortByLabel "job" }}{{ .Labels.job }}={{ .Value }} {{ end }}'
    text += '{{ with query "up" }}{{ . | first | label "job" }}:{{ . | first | value }}{{ end }}'
    assert render(text, {}, 0.0, query=query, at=1700000000.0) == "a=1 b=0 b:0"
    assert query.asked == [("up", 1700000000.0), ("up", 1700000000.0)]


def test_query_without_a_query_function_is_an_expansion_error() -> None:
    out = render('{{ query "up" }}', {}, 0.0, alert_name="A")
    assert out.startswith("<error expanding template: error executing template __alert_A:")
    assert "query is not available" in out


@pytest.mark.parametrize(("text", "valid"), PARSE_CASES, ids=[t for t, _ in PARSE_CASES])
def test_parse_verdict_as_go(text: str, valid: bool) -> None:
    try:
        check(text)
        ours = True
    except TemplateError:
        ours = False
    assert ours == valid


@pytest.mark.parametrize(
    ("text", "message", "line", "col"),
    [
        ("{{ nope }}", 'function "nope" not defined', 1, 4),
        ("{{ $x }}", 'undefined variable "$x"', 1, 4),
        ("ok\n{{ $value ", "unclosed action", 2, 1),
        ("{{ end }}", "unexpected {{end}}", 1, 4),
        ("{{ else }}", "unexpected {{else}}", 1, 4),
        ("{{ if true }}x", "unexpected EOF", 1, 15),
        ("{{ .a | 1 }}", "non executable command in pipeline stage 2", 1, 9),
        ("{{ $labels.a$labels.b }}", "bad character U+0024 '$'", 1, 13),
        ("{{ 1e }}", "bad number syntax: '1e'", 1, 4),
        ("{{ break }}", "{{break}} outside {{range}}", 1, 4),
        ('{{ "abc }}', "unterminated quoted string", 1, 4),
        ("{{/* open }}", "unclosed comment", 1, 1),
        ("{{ 1x }}", "bad number syntax: '1x'", 1, 4),
        ("{{ ( 1 }}", "unclosed left paren", 1, 8),
        ("{{ with $x := 1 }}{{ end }}{{ $x }}", 'undefined variable "$x"', 1, 31),  # scoped to the with
        ("{{ if true }}{{ else with 1 }}{{ end }}", "unexpected 'with'", 1, 22),  # Go 1.19 has no else-with
    ],
)
def test_check_refuses_with_position(text: str, message: str, line: int, col: int) -> None:
    with pytest.raises(TemplateError) as err:
        check(text)
    assert message in err.value.reason
    assert (err.value.line, err.value.col) == (line, col)


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        "{{ $labels.a }}{{ $value }}{{ $externalLabels.b }}{{ $externalURL }}",
        '{{ query "up" | first | value | humanize }}',  # query parses: Prometheus knows the function
        "{{ range $i, $v := $labels }}{{ $i }}{{ break }}{{ continue }}{{ end }}",
        '{{ define "x" }}{{ . }}{{ end }}{{ template "x" 1 }}',
        "{{ if 1 }}{{ else if 2 }}{{ else }}{{ end }}",
        "{{- /* trimmed comment */ -}}",
        "{{ $a := 1 }}{{ $a = 2 }}{{ $a }}",
        '{{ (index $labels "a") | toUpper }}',
    ],
)
def test_check_accepts(text: str) -> None:
    check(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e21, "1e+21"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1e-5, "1e-05"),
        (0.00012, "0.00012"),
        (-0.0, "-0"),
        (math.inf, "+Inf"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_float_v_format(value: float, text: str) -> None:
    assert format_float(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_v_round_trips(value: float) -> None:
    assert float(format_float(value)) == value


@pytest.mark.parametrize(
    ("fmt", "args", "out"),
    [
        ("%5.2f|%-5d|%05d", [math.pi, 42, -42], " 3.14|42   |-0042"),
        ("%s", [None], "%!s(<nil>)"),
        ("%v", [None], "<nil>"),
        ("%", [], "%!(NOVERB)"),
        ("%%", [], "%"),
        ("%q", [7], "'\\a'"),
        ("%.3s", ["abcdef"], "abc"),
        ("%8.3e", [12345.678], "1.235e+04"),
        ("%G", [1e-7], "1E-07"),
    ],
)
def test_sprintf(fmt: str, args: list[object], out: str) -> None:
    assert sprintf(fmt, args) == out
