"""line_format and label_format templates: a table of templates, the labels they run over and what Go's
text/template with Loki's functions writes (worked out by hand from the Go and sprig documentation)."""

from __future__ import annotations

import pytest

from collector.query.logql.ast import LogQuery, ParseError
from collector.query.logql.parser import parse
from collector.query.logql.stages import Pipeline
from collector.query.logql.template_functions import go_float

LABELS = {"app": "x", "level": "warn", "status": "503", "path": "/api/orders", "took": "1.5s", "msg": "Disk Full"}
TS = 1_700_000_000_123_000_000  # 2023-11-14 22:13:20.123 UTC

CASES: list[tuple[str, str]] = [
    ("{{.level}}: {{ .msg }}{{.missing}}", "warn: Disk Full"),
    ("{{ __line__ }}!", "orig line!"),
    ("{{ __timestamp__ }}", "2023-11-14 22:13:20.123 +0000 UTC"),
    ("{{ __timestamp__ | unixEpochMillis }}", "1700000000123"),
    ("{{ .level | ToUpper }} {{ ToLower .msg }} {{ .msg | lower | title }}", "WARN disk full Disk Full"),
    ('{{ .path | replace "/" "." | trimPrefix "." }}', "api.orders"),
    ('{{ Replace .path "/" "_" 1 }}', "_api/orders"),
    ('{{ regexReplaceAll "/(\\\\w+)/(\\\\w+)" .path "${2}@$1" }}', "orders@api"),
    ('{{ regexReplaceAllLiteral "o" .path "$1" }}', "/api/$1rders"),
    ('{{ if eq .status "503" "504" }}retry{{ else if eq .status "500" }}fail{{ else }}ok{{ end }}', "retry"),
    ('{{ if and (eq .level "warn") (hasPrefix "/api" .path) }}api-warn{{ end }}', "api-warn"),
    ("{{ if or .missing .level }}{{ or .missing .level }}{{ end }}", "warn"),
    ("{{ if not .missing }}none{{ end }}", "none"),
    ("{{ if gt (.status | int) 499 }}5xx{{ end }}", "5xx"),
    ('{{ .missing | default "n/a" }} {{ default "n/a" .level }}', "n/a warn"),
    ("{{ .path | trunc 4 }}|{{ trunc -3 .path }}|{{ substr 1 4 .path }}", "/api|ers|api"),
    ("{{ alignLeft 6 .level }}|{{ alignRight 6 .level }}|{{ alignLeft 2 .level }}", "warn  |  warn|wa"),
    ("{{ add (.status | int) 1 }} {{ sub 7 10 }} {{ div -7 2 }} {{ mod -7 2 }}", "504 -3 -3 -1"),
    ('{{ mulf 1.5 2 }} {{ divf 1 4 }} {{ addf .took 1 }} {{ float64 "2.50" }}', "3 0.25 1 2.5"),
    ('{{ .took | duration }} {{ "2KiB" | bytes }} {{ round 2.345 2 }}', "1.5 2048 2.35"),
    ('{{ printf "%s=%d (%.1f%%) %q %v" .level 42 12.345 .path true }}', 'warn=42 (12.3%) "/api/orders" true'),
    ('{{ .msg | b64enc }} {{ "aGk=" | b64dec }} {{ urlencode "a b&c" }}', "RGlzayBGdWxs hi a+b%26c"),
    ('{{ count "o" .path }} {{ contains "api" .path }} {{ len .level }}', "1 true 4"),
    ("a  {{- .level -}}  b\n{{- /* a comment */ -}}\n c", "awarnbc"),
    ('{{ repeat 2 "ab" }}{{ "x" | nindent 2 }}', "abab\n  x"),
    ("{{ `raw \\n` }}", "raw \\n"),
]


def run(stage: str) -> tuple[str, dict[str, str]]:
    query = parse('{app="x"} | ' + stage)
    assert isinstance(query, LogQuery)
    out = Pipeline(query.stages).run("orig line", dict(LABELS), TS)
    assert out is not None
    return out


@pytest.mark.parametrize(("template", "want"), CASES, ids=[c[0] for c in CASES])
def test_line_format(template: str, want: str) -> None:
    line = run("line_format " + _quote(template))[0]
    assert line == want


@pytest.mark.parametrize(("template", "want"), CASES[:12], ids=[c[0] for c in CASES[:12]])
def test_label_format_uses_the_same_templates(template: str, want: str) -> None:
    _line, labels = run("label_format out=" + _quote(template))
    assert labels["out"] == want


def _quote(template: str) -> str:
    if "`" not in template:
        return "`" + template + "`"
    return '"' + template.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize(
    ("template", "details"),
    [
        ("{{ gt .status 5 }}", "incompatible types for comparison"),
        ("{{ .level | duration }}", 'time: invalid duration "warn"'),
        ("{{ div 1 0 }}", "integer divide by zero"),
        ("{{ .level 1 }}", "can't give argument to non-function"),
    ],
)
def test_execution_errors_keep_the_line(template: str, details: str) -> None:
    line, labels = run("line_format " + _quote(template))
    assert line == "orig line"
    assert labels["__error__"] == "TemplateFormatErr"
    assert details in labels["__error_details__"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ if .x }}open", "no {{end}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ nosuch }}", 'function "nosuch" not defined'),
        ("{{ $x := 1 }}", "variables"),
        ("{{ .a ", "unclosed action"),
    ],
)
def test_parse_errors(template: str, message: str) -> None:
    with pytest.raises(ParseError, match="invalid template") as info:
        parse('{app="x"} | line_format ' + _quote(template))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "printed"),
    [(3.0, "3"), (0.25, "0.25"), (1e21, "1e+21"), (123456789.0, "1.23456789e+08"), (1e-5, "1e-05"), (-2.5, "-2.5")],
)
def test_go_float_printing(value: float, printed: str) -> None:
    assert go_float(value) == printed
