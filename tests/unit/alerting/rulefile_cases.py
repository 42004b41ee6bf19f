"""Rule files promtool 2.42 accepts or refuses; tests/integration/test_alerting_promtool.py checks each verdict
against real `promtool check rules`, tests/unit/alerting/test_rulefile.py checks that we agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleFileCase:
    name: str
    text: str
    valid: bool
    error: str = ""  # for invalid files: a part of our error message


R = RuleFileCase

VALID = [
    R("empty file", "", True),
    R("no groups", "groups: []\n", True),
    R("null groups", "groups:\n", True),
    R(
        "alert with everything",
        """groups:
- name: g
  interval: 30s
  limit: 10
  rules:
  - alert: HighErrorRate
    expr: sum by (service) (rate(errors_total[5m])) > 0.1
    for: 5m
    keep_firing_for: 1m
    labels:
      severity: critical
      team: "{{ $labels.service }}"
    annotations:
      summary: "{{ $labels.service }} errors at {{ $value | humanizePercentage }}"
      description: |
        {{ if gt $value 0.5 }}more than half{{ else }}some{{ end }} of requests fail.
        {{- range $k, $v := $labels }} {{ $k }}={{ $v }}{{ end }}
""",
        True,
    ),
    R("recording rule", "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n", True),
    R(
        "recording rule with labels",
        "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: up\n    labels: {x: y}\n",
        True,
    ),
    R("null rules", "groups:\n- name: g\n  rules:\n", True),
    R("rules missing", "groups:\n- name: g\n", True),
    R(
        "scalar label values as written",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: {a: 1, b: yes, c: 1e3, d: ~}\n",
        True,
    ),
    R("for 0 without unit", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 0\n", True),
    R(
        "for with every unit",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 1y2w3d4h5m6s7ms\n",
        True,
    ),
    R(
        "query function in a template",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n"
        "    annotations: {a: '{{ with query \"up\" }}{{ . | first | value }}{{ end }}'}\n",
        True,
    ),
    R("alert name with spaces", "groups:\n- name: g\n  rules:\n  - alert: Disk almost full\n    expr: up\n", True),
    R(
        "duplicate rules are only a lint warning",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n  - alert: A\n    expr: up\n",
        True,
    ),
    R("same group name in two files is fine, two groups here differ", "groups:\n- name: a\n- name: b\n", True),
    R(
        "label template on a recording rule is not parsed",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    labels: {x: '{{ nope'}\n",
        True,
    ),
    R("range selector expression", "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up[5m]\n", True),
    R(
        "template trim markers and comments",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n"
        "    annotations: {a: '{{- /* c */ -}} {{ $value }}'}\n",
        True,
    ),
]

VALID += [
    R(
        "anchors, aliases and merge keys",
        "groups:\n- name: g\n  rules:\n  - &r\n    alert: A\n    expr: up\n    labels: &l {severity: warning}\n"
        "  - alert: B\n    expr: up\n    labels: *l\n  - <<: *r\n    alert: C\n",
        True,
    ),
]

INVALID = [
    R(
        "unknown rule key",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expression: up\n",
        False,
        "field expression not found",
    ),
    R(
        "unknown group key",
        "groups:\n- name: g\n  evaluation_interval: 1m\n",
        False,
        "field evaluation_interval not found",
    ),
    R("unknown top-level key", "group:\n- name: g\n", False, "field group not found"),
    R("empty group name", "groups:\n- name: ''\n", False, "Groupname must not be empty"),
    R("missing group name", "groups:\n- rules: []\n", False, "Groupname must not be empty"),
    R("duplicate group names", "groups:\n- name: g\n- name: g\n", False, 'groupname: "g" is repeated'),
    R(
        "alert and record",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    record: b\n    expr: up\n",
        False,
        "only one of",
    ),
    R("neither alert nor record", "groups:\n- name: g\n  rules:\n  - expr: up\n", False, "one of 'record' or 'alert'"),
    R("missing expr", "groups:\n- name: g\n  rules:\n  - alert: A\n", False, "field 'expr' must be set"),
    R(
        "bad expr",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])\n",
        False,
        "could not parse expression",
    ),
    R(
        "expr type error",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(x)\n",
        False,
        "could not parse expression",
    ),
    R(
        "invalid record name",
        "groups:\n- name: g\n  rules:\n  - record: my-metric\n    expr: up\n",
        False,
        "invalid recording rule name",
    ),
    R(
        "record name with braces",
        "groups:\n- name: g\n  rules:\n  - record: 'x{a=\"b\"}'\n    expr: up\n",
        False,
        "invalid recording rule name",
    ),
    R(
        "annotations on a recording rule",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    annotations: {x: y}\n",
        False,
        "invalid field 'annotations'",
    ),
    R(
        "for on a recording rule",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    for: 5m\n",
        False,
        "invalid field 'for'",
    ),
    R(
        "invalid label name",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: {1abc: x}\n",
        False,
        "invalid label name: 1abc",
    ),
    R(
        "label named __name__",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: {__name__: x}\n",
        False,
        "invalid label name: __name__",
    ),
    R(
        "invalid annotation name",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations: {a-b: x}\n",
        False,
        "invalid annotation name",
    ),
    R(
        "unclosed template action",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations: {a: '{{ $value '}\n",
        False,
        "annotation 'a'",
    ),
    R(
        "unknown template function",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations: {a: '{{ nope $value }}'}\n",
        False,
        'function "nope" not defined',
    ),
    R(
        "undefined template variable",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: {a: '{{ $x }}'}\n",
        False,
        'undefined variable "$x"',
    ),
    R(
        "unmatched end in template",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations: {a: 'x{{ end }}'}\n",
        False,
        "unexpected {{end}}",
    ),
    R(
        "bad duration",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5 minutes\n",
        False,
        "not a valid duration string",
    ),
    R(
        "fractional duration",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 1.5m\n",
        False,
        "not a valid duration string",
    ),
    R(
        "units out of order",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5m1h\n",
        False,
        "not a valid duration string",
    ),
    R("limit not a number", "groups:\n- name: g\n  limit: many\n", False, "into int"),
    R("groups not a list", "groups: g\n", False, "cannot unmarshal"),
    R("top level a list", "- name: g\n", False, "cannot unmarshal"),
    R(
        "labels not a map",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels: [a]\n",
        False,
        "cannot unmarshal",
    ),
    R(
        "duplicate key",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    expr: down\n",
        False,
        'mapping key "expr" already defined',
    ),
    R(
        "an anchor holder at the top level",
        "x-common: &c {severity: warning}\ngroups: []\n",
        False,
        "field x-common not found",
    ),
    R("yaml syntax error", "groups:\n- name: g\n  rules: [\n", False, "yaml"),
]

CASES = VALID + INVALID

# Accepted by us, refused by promtool 2.42: keys later Prometheus versions added (2.53+: query_offset; 3.x: group
# labels). We follow the newer format; demo rule files do not use them.
NEWER_THAN_PROMTOOL = [
    R("group query_offset", "groups:\n- name: g\n  query_offset: 1m\n", True),
    R("group labels", "groups:\n- name: g\n  labels: {team: a}\n", True),
]
