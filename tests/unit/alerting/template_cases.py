"""Alert templates with what Prometheus 2.42 renders for them (pinned from promtool; re-checked against
promtool by tests/integration/test_alerting_promtool.py, so a wrong pin fails there)."""

from __future__ import annotations

# ruff: noqa: E501  (expected texts are Prometheus' output, kept whole to compare at a glance)
import math
from dataclasses import dataclass, field

LABELS = {"service": "orders", "instance": "10.0.0.7:8001", "route": "/orders/{id}"}
EXTERNAL_LABELS = {"region": "eu-west", "cluster": "demo"}
EXTERNAL_URL = "http://prom.example:9090/sub"


@dataclass(frozen=True)
class TemplateCase:
    template: str
    value: float
    expected: str
    labels: dict[str, str] = field(default_factory=lambda: dict(LABELS))


C = TemplateCase

CASES: list[TemplateCase] = [
    C("{{ $labels.service }} at {{ $value }}", 0.75, "orders at 0.75"),
    C("{{ .Labels.service }}/{{ .Value }}", 12.0, "orders/12"),
    C("[{{ $labels.nope }}][{{ .Labels.nope }}][{{ $externalLabels.nope }}]", 1.0, "[][][]"),
    C("{{ $externalLabels.region }} {{ .ExternalLabels.cluster }}", 1.0, "eu-west demo"),
    C("{{ $externalURL }}|{{ .ExternalURL }}", 1.0, "http://prom.example:9090/sub|http://prom.example:9090/sub"),
    C("{{ $labels }}", 1.0, "map[instance:10.0.0.7:8001 route:/orders/{id} service:orders]"),
    C("{{ $externalLabels }}", 1.0, "map[cluster:demo region:eu-west]"),
    C(
        "{{ . }}",
        2.5,
        "{map[instance:10.0.0.7:8001 route:/orders/{id} service:orders] map[cluster:demo region:eu-west] http://prom.example:9090/sub 2.5}",
    ),
    C("{{ $value }}", 1234567.0, "1.234567e+06"),
    C("{{ $value }}", 100000.0, "100000"),
    C("{{ $value }}", 0.0001, "0.0001"),
    C("{{ $value }}", 1.234e-05, "1.234e-05"),
    C("{{ $value }}", 1600000000.123, "1.600000000123e+09"),
    C("{{ $value }}", -0.5, "-0.5"),
    C("{{ $value }}", 0.0, "0"),
    C("{{ $value }}", math.inf, "+Inf"),
    C("{{ $value }}", -math.inf, "-Inf"),
    C("{{ $value }}", math.nan, "NaN"),
    C("{{ $value }}", 0.30000000000000004, "0.30000000000000004"),
    C(
        "{{ 3 }} {{ 3.0 }} {{ 1e3 }} {{ -2 }} {{ 0x1F }} {{ 'a' }} {{ true }} {{ \"s\" }} {{ `raw` }}",
        1.0,
        "3 3 1000 -2 31 97 true s raw",
    ),
    C('{{ printf "%.2f" $value }}', 0.12345, "0.12"),
    C('{{ printf "%.0f%%" $value }}', 99.5, "100%"),
    C('{{ printf "%s=%q" $labels.service $labels.route }}', 1.0, 'orders="/orders/{id}"'),
    C(
        '{{ printf "%v|%g|%e|%f" $value $value $value $value }}',
        1234.5678,
        "1234.5678|1234.5678|1.234568e+03|1234.567800",
    ),
    C('{{ printf "%d" $value }}', 3.0, "%!d(float64=3)"),
    C('{{ printf "%d items" 3 }}', 1.0, "3 items"),
    C('{{ printf "%5.1f|%-6s|%06.2f" $value "ab" $value }}', 3.14159, "  3.1|ab    |003.14"),
    C('{{ printf "%v %v" 1 }}', 1.0, "1 %!v(MISSING)"),
    C('{{ printf "%v" 1 2 }}', 1.0, "1%!(EXTRA int=2)"),
    C('{{ printf "%s" 1 }}', 1.0, "%!s(int=1)"),
    C('{{ printf "%x %X %o %b %c %U" 255 255 8 5 65 65 }}', 1.0, "ff FF 10 101 A U+0041"),
    C('{{ printf "%t %v" true false }}', 1.0, "true false"),
    C('{{ printf "%q" "tab\\there \\"quoted\\" é" }}', 1.0, '"tab\\there \\"quoted\\" é"'),
    C('{{ printf "%+d %+.1f % d" 5 2.25 7 }}', 1.0, "+5 +2.2  7"),
    C('{{ printf "%x" "hi" }}', 1.0, "6869"),
    C('{{ printf "%v" $labels }}', 1.0, "map[instance:10.0.0.7:8001 route:/orders/{id} service:orders]"),
    C('{{ $value | printf "%.3f" }}', 0.6666666666666666, "0.667"),
    C("{{ $value | humanize }}", 1234567.0, "1.235M"),
    C("{{ $value | humanize }}", 0.000123, "123u"),
    C("{{ $value | humanize }}", 0.0, "0"),
    C("{{ $value | humanize }}", 999.99, "1000"),
    C("{{ $value | humanize }}", -2500.0, "-2.5k"),
    C("{{ $value | humanize }}", math.inf, "+Inf"),
    C("{{ $value | humanize }}", math.nan, "NaN"),
    C('{{ humanize "1234" }} {{ humanize 1234 }}', 1.0, "1.234k 1.234k"),
    C("{{ $value | humanize1024 }}", 1048576.0, "1Mi"),
    C("{{ $value | humanize1024 }}", 1.0, "1"),
    C("{{ $value | humanize1024 }}", 123456789.0, "117.7Mi"),
    C("{{ $value | humanizeDuration }}", 90061.0, "1d 1h 1m 1s"),
    C("{{ $value | humanizeDuration }}", 3725.5, "1h 2m 5s"),
    C("{{ $value | humanizeDuration }}", 65.0, "1m 5s"),
    C("{{ $value | humanizeDuration }}", 1.5, "1.5s"),
    C("{{ $value | humanizeDuration }}", 0.0123, "12.3ms"),
    C("{{ $value | humanizeDuration }}", 0.0, "0s"),
    C("{{ $value | humanizeDuration }}", -90.0, "-1m 30s"),
    C("{{ $value | humanizePercentage }}", 0.12345, "12.35%"),
    C("{{ $value | humanizePercentage }}", 1.0, "100%"),
    C("{{ $value | humanizeTimestamp }}", 1600000000.123, "2020-09-13 12:26:40.122 +0000 UTC"),
    C("{{ $value | humanizeTimestamp }}", 0.0, "1970-01-01 00:00:00 +0000 UTC"),
    C("{{ $value | humanizeTimestamp }}", 1700000000.5, "2023-11-14 22:13:20.5 +0000 UTC"),
    C(
        '{{ $labels.service | toUpper }} {{ toLower "ABC" }} {{ title "hello wide-world x_y" }}',
        1.0,
        "ORDERS abc Hello Wide-World X_y",
    ),
    C('{{ reReplaceAll "(.*):(.*)" "$2 on $1" $labels.instance }}', 1.0, "8001 on 10.0.0.7"),
    C('{{ reReplaceAll ":[0-9]+$" "" $labels.instance }}', 1.0, "10.0.0.7"),
    C('{{ reReplaceAll "(?P<h>[^:]+):.*" "${h}!$$" $labels.instance }}', 1.0, "10.0.0.7!$"),
    C('{{ reReplaceAll "o" "0" $labels.service }}', 1.0, "0rders"),
    C('{{ match "^ord" $labels.service }} {{ match "^x" $labels.service }}', 1.0, "true false"),
    C("{{ $labels.instance | stripPort }}", 1.0, "10.0.0.7"),
    C('{{ stripPort "[::1]:9090" }} {{ stripPort "host" }} {{ stripPort "a:b:c" }}', 1.0, "::1 host a:b:c"),
    C(
        '{{ graphLink "rate(x[5m]) > 0" }} {{ tableLink "up" }}',
        1.0,
        "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0&g0.tab=0 /graph?g0.expr=up&g0.tab=1",
    ),
    C('{{ parseDuration "1h30m" }} {{ parseDuration "1500ms" }}', 1.0, "5400 1.5"),
    C('{{ safeHtml "<b>" }}', 1.0, "<b>"),
    C(
        '{{ html "<a href=\'x\'>&" }} {{ urlquery "a b&c" }} {{ js "it\'s <x>" }}',
        1.0,
        "&lt;a href=&#39;x&#39;&gt;&amp; a+b%26c it\\'s \\u003Cx\\u003E",
    ),
    C('{{ print "a" 1 2 "b" }}|{{ println 1 "x" }}|', 1.0, "a1 2b|1 x\n|"),
    C(
        '{{ len "héllo" }} {{ len $labels }} {{ index $labels "service" }} {{ index $labels "nope" }}.',
        1.0,
        "6 3 orders .",
    ),
    C('{{ slice "abcdef" 1 3 }}', 1.0, "bc"),
    C("{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}", 0.3, "mid"),
    C("{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}", 0.05, "low"),
    C("{{ if $labels.nope }}set{{ else }}unset{{ end }}", 1.0, "unset"),
    C("{{ if and $labels.service (ge $value 1.0) }}both{{ end }}", 1.0, "both"),
    C('{{ or $labels.nope "fallback" }} {{ and 1 0 2 }} {{ not 0 }}', 1.0, "fallback 0 true"),
    C("{{ with $labels.service }}svc={{ . }}{{ else }}none{{ end }}", 1.0, "svc=orders"),
    C("{{ with $labels.nope }}svc={{ . }}{{ else }}none{{ end }}", 1.0, "none"),
    C(
        "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
        1.0,
        "instance=10.0.0.7:8001;route=/orders/{id};service=orders;",
    ),
    C("{{ range $labels }}{{ . }},{{ end }}", 1.0, "10.0.0.7:8001,/orders/{id},orders,"),
    C('{{ range $k, $v := $labels }}{{ if eq $k "route" }}{{ break }}{{ end }}{{ $k }};{{ end }}', 1.0, "instance;"),
    C("{{ range $externalLabels }}x{{ else }}empty{{ end }}", 1.0, "xx"),
    C('{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}', 1.0, "b"),
    C(
        '{{ eq $labels.service "orders" "x" }} {{ ne 1 2 }} {{ lt 1.5 $value }} {{ le "a" "b" }}',
        2.0,
        "true true true true",
    ),
    C("a  {{- $labels.service -}}  b", 1.0, "aordersb"),
    C("line1\n  {{- /* a comment */ -}}\n  line2", 1.0, "line1line2"),
    C("{{/* only a comment */}}x", 1.0, "x"),
    C("{{- 3 }} {{ -3 }}", 1.0, "3 -3"),
    C('{{ define "t" }}[{{ . }}]{{ end }}{{ template "t" $labels.service }}', 1.0, "[orders]"),
    C(
        "{{ eq $value 1 }}",
        1.0,
        '<error expanding template: error executing template __alert_T: template: __alert_T:1:115: executing "__alert_T" at <eq $value 1>: error calling eq: incompatible types for comparison>',
    ),
    C(
        "{{ .Foo }}",
        1.0,
        '<error expanding template: error executing template __alert_T: template: __alert_T:1:115: executing "__alert_T" at <.Foo>: can\'t evaluate field Foo in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }>',
    ),
    C(
        "{{ toUpper $value }}",
        1.0,
        '<error expanding template: error executing template __alert_T: template: __alert_T:1:123: executing "__alert_T" at <$value>: wrong type for value; expected string; got float64>',
    ),
    C(
        '{{ "abc" | humanize }}',
        1.0,
        '<error expanding template: error executing template __alert_T: template: __alert_T:1:123: executing "__alert_T" at <humanize>: error calling humanize: strconv.ParseFloat: parsing "abc": invalid syntax>',
    ),
]
