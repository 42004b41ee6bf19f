"""Rule files load as Prometheus reads them and are refused where promtool refuses them (the verdicts of the
table are checked against real promtool in tests/integration/test_alerting_promtool.py); extension files add
levels, repeat intervals, flapping and deadman rules, and refuse entries naming unknown alerts."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.rule_extensions import deadman_expr
from alerting.rulefile import RuleFileError, load_rule_files
from alerting.rulefmt import parse_rule_text
from alerting.rules import AlertingRule, FlappingSpec, Level, RecordingRule, RuleGroup
from tests.unit.alerting.rulefile_cases import INVALID, NEWER_THAN_PROMTOOL, VALID, RuleFileCase

RULES_DIR = Path(__file__).parents[3] / "alerting" / "rules"


@pytest.mark.parametrize("case", VALID + NEWER_THAN_PROMTOOL, ids=lambda c: c.name)
def test_accepts(case: RuleFileCase) -> None:
    parse_rule_text(case.text, "f.yml", 60.0)


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.name)
def test_refuses_naming_file_and_line(case: RuleFileCase) -> None:
    with pytest.raises(RuleFileError) as err:
        parse_rule_text(case.text, "f.yml", 60.0)
    message = str(err.value)
    assert case.error in message
    assert message.startswith("f.yml:")


def test_error_names_file_line_group_and_rule() -> None:
    text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n  - alert: B\n    expr: sum(\n"
    with pytest.raises(RuleFileError) as err:
        parse_rule_text(text, "r.yml", 60.0)
    assert err.value.errors == [
        'r.yml:7:11: group "g", rule 2, "B": could not parse expression: unclosed left parenthesis'
    ]


def test_every_error_is_reported() -> None:
    text = "groups:\n- name: g\n  rules:\n  - record: a-b\n    expr: up\n  - alert: C\n    expr: ''\n- name: g\n"
    with pytest.raises(RuleFileError) as err:
        parse_rule_text(text, "r.yml", 60.0)
    assert len(err.value.errors) == 3


def test_values_loaded() -> None:
    text = """groups:
- name: g
  interval: 30s
  limit: 5
  query_offset: 10s
  labels: {team: a}
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
    labels: {x: "1"}
  - alert: A
    expr: up == 0
    for: 1m30s
    keep_firing_for: 2m
    labels: {severity: page, v: 1e3}
    annotations: {summary: "{{ $labels.job }}"}
- name: h
  rules:
  - alert: B
    expr: up
"""
    g, h = parse_rule_text(text, "dir/r.yml", 15.0)
    assert (g.name, g.file, g.interval_s, g.limit, g.query_offset_s, dict(g.labels)) == (
        "g",
        "dir/r.yml",
        30.0,
        5,
        10.0,
        {"team": "a"},
    )
    assert g.key == "dir/r.yml;g"
    assert g.rules[0] == RecordingRule("job:up:sum", "sum by (job) (up)", {"x": "1"}, source="dir/r.yml:8")
    alert = g.rules[1]
    assert isinstance(alert, AlertingRule)
    assert (alert.name, alert.for_s, alert.keep_firing_for_s, dict(alert.labels)) == (
        "A",
        90.0,
        120.0,
        {"severity": "page", "v": "1e3"},  # scalars as written, as yaml.v3 decodes into a string
    )
    assert alert.source == "dir/r.yml:11"
    assert h.interval_s == 15.0  # the default evaluation interval


def test_glob_patterns_sorted_and_missing_literal_path_refused(tmp_path: Path) -> None:
    for name in ("b.yml", "a.yml"):
        (tmp_path / name).write_text(f"groups:\n- name: {name[0]}\n")
    groups = load_rule_files([str(tmp_path / "*.yml")], 60.0)
    assert [g.name for g in groups] == ["a", "b"]
    assert load_rule_files([str(tmp_path / "none-*.yml")], 60.0) == []  # a glob may match nothing
    with pytest.raises(RuleFileError, match="no such rule file"):
        load_rule_files([tmp_path / "missing.yml"], 60.0)


def test_errors_of_several_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("groups:\n- name: a\n  rules:\n  - alert: A\n")
    (tmp_path / "b.yml").write_text("groups: 1\n")
    with pytest.raises(RuleFileError) as err:
        load_rule_files([tmp_path / "a.yml", tmp_path / "b.yml"], 60.0)
    assert [e.split(":", 1)[0] for e in err.value.errors] == [str(tmp_path / "a.yml"), str(tmp_path / "b.yml")]


# --- extension files ----------------------------------------------------------------------------------------

BASE = """groups:
- name: g
  rules:
  - alert: High
    expr: x > 1
  - alert: Down
    expr: up == 0
- name: h
  rules:
  - alert: High
    expr: y > 1
"""


def alert(group: RuleGroup, index: int) -> AlertingRule:
    rule = group.rules[index]
    assert isinstance(rule, AlertingRule)
    return rule


def load(tmp_path: Path, extension: str) -> list[RuleGroup]:
    (tmp_path / "r.yml").write_text(BASE)
    (tmp_path / "r.obs.yml").write_text(extension)
    return load_rule_files([tmp_path / "r.yml"], 60.0, [tmp_path / "r.obs.yml"])


def test_levels_repeat_and_flapping_merged(tmp_path: Path) -> None:
    groups = load(
        tmp_path,
        """alerts:
- alert: High
  group: g
  levels:
  - {level: critical, op: ">", value: 10}
  - {level: warning, op: ">=", value: 2.5}
  - {level: info, op: ">", value: 1}
  repeat_interval: 0s
  flapping: {low: 0.1, high: 0.3, history: 10}
- alert: Down
  repeat_interval: 1h
""",
    )
    g, h = groups
    high = alert(g, 0)
    assert high.levels == (Level("critical", ">", 10.0), Level("warning", ">=", 2.5), Level("info", ">", 1.0))
    assert high.repeat_interval_s == 0.0
    assert high.flapping == FlappingSpec(0.1, 0.3, 10)
    assert alert(g, 1).repeat_interval_s == 3600.0
    assert alert(h, 0).levels == ()  # group: g kept h's High untouched


def test_entry_without_group_extends_every_rule_of_that_name(tmp_path: Path) -> None:
    groups = load(tmp_path, "alerts:\n- alert: High\n  flapping: {}\n")
    assert alert(groups[0], 0).flapping == FlappingSpec()
    assert alert(groups[1], 0).flapping == FlappingSpec()


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        (
            "alerts:\n- alert: Nope\n  repeat_interval: 1m\n",
            "r.obs.yml:2:3: alert 'Nope': no alerting rule of that name",
        ),
        (
            "alerts:\n- alert: Down\n  group: h\n",
            "r.obs.yml:2:3: alert 'Down': no alerting rule of that name in group 'h'",
        ),
        ("alerts:\n- alert: Down\n- alert: Down\n", "r.obs.yml:3:3: alert 'Down' of group 'g' is already extended at"),
        ("alerts:\n- alert: Down\n  level: []\n", "r.obs.yml:3:3: field level not found in type alerts entry"),
        (
            "alerts:\n- alert: Down\n  levels: [{level: page, op: '>', value: 1}]\n",
            "level must be one of info, warning, critical",
        ),
        ("alerts:\n- alert: Down\n  levels: [{level: info, op: '=>', value: 1}]\n", "op must be one of"),
        ("alerts:\n- alert: Down\n  levels: [{level: info, op: '>', value: x}]\n", "into float64"),
        ("alerts:\n- alert: Down\n  levels: [{level: info, op: '>'}]\n", "a level needs 'level', 'op' and 'value'"),
        (
            "alerts:\n- alert: Down\n  levels:\n"
            "  - {level: warning, op: '>', value: 1}\n  - {level: critical, op: '>', value: 2}\n",
            "r.obs.yml:5:5: levels go from the most severe down",
        ),
        ("alerts:\n- alert: Down\n  repeat_interval: 1 hour\n", 'not a valid duration string: "1 hour"'),
        ("alerts:\n- alert: Down\n  flapping: {low: 0.6, high: 0.5}\n", "flapping needs 0 <= low < high <= 1"),
        ("alerts:\n- alert: Down\n  flapping: {history: 1}\n", "history must be at least 2"),
        ("alerts:\n- repeat_interval: 1m\n", "needs 'alert'"),
        ("alert:\n- alert: Down\n", "field alert not found in type extension file"),
        (
            "deadman:\n- name: D\n  selector: x\n",
            "r.obs.yml:2:3: a deadman entry needs 'name', 'selector' and a nonzero 'interval'",
        ),
        ("deadman:\n- name: D\n  selector: rate(x[5m])\n  interval: 5m\n", "selector must be a vector selector"),
        ("deadman:\n- name: D\n  selector: 'x{'\n  interval: 5m\n", "could not parse selector"),
        ("deadman:\n- name: D\n  selector: x\n  interval: 2h\n", "lookback must be longer than its interval"),
        ("alerts:\n- alert: Down\n  levels: [\n", "r.obs.yml:4:1: yaml: expected the node content"),
        ("deadman:\n- name: D\n  selector: x\n  interval: 5m\n  by: [a-b]\n", "invalid label name in by: a-b"),
        (
            "deadman:\n- name: D\n  selector: x\n  interval: 5m\n  annotations: {s: '{{ nope }}'}\n",
            'function "nope" not defined',
        ),
    ],
)
def test_extension_refused(tmp_path: Path, extension: str, message: str) -> None:
    with pytest.raises(RuleFileError) as err:
        load(tmp_path, extension)
    text = str(err.value).replace(str(tmp_path) + "/", "")
    assert message in text


def test_deadman_generates_a_rule_in_its_group(tmp_path: Path) -> None:
    groups = load(
        tmp_path,
        """deadman:
- name: PushStopped
  selector: 'pushed_total{env="prod"}'
  by: [host]
  interval: 5m
  lookback: 2h
  for: 1m
  labels: {severity: critical}
  annotations: {summary: "{{ $labels.host }} stopped"}
- name: Quiet
  group: other
  selector: quiet
  interval: 10m
alerts:
- alert: PushStopped
  repeat_interval: 0s
""",
    )
    names = [(g.name, g.file.rsplit("/", 1)[-1]) for g in groups]
    assert names == [("g", "r.yml"), ("h", "r.yml"), ("deadman", "r.obs.yml"), ("other", "r.obs.yml")]
    rule = groups[2].rules[0]
    assert isinstance(rule, AlertingRule)
    assert rule.expr == (
        'group by (host) (last_over_time(pushed_total{env="prod"}[2h]))'
        ' unless group by (host) (last_over_time(pushed_total{env="prod"}[5m]))'
    )
    assert (rule.for_s, dict(rule.labels), rule.repeat_interval_s) == (60.0, {"severity": "critical"}, 0.0)
    assert groups[3].rules[0].expr == "last_over_time(quiet[1h]) unless last_over_time(quiet[10m])"
    assert groups[3].interval_s == 60.0


@pytest.mark.parametrize(
    ("by", "expr"),
    [
        (None, "last_over_time(m[1h]) unless last_over_time(m[5m])"),
        ([], "group by () (last_over_time(m[1h])) unless group by () (last_over_time(m[5m]))"),
        (["a", "b"], "group by (a, b) (last_over_time(m[1h])) unless group by (a, b) (last_over_time(m[5m]))"),
    ],
)
def test_deadman_expr(by: list[str] | None, expr: str) -> None:
    assert deadman_expr("m", 5 * 60_000, 60 * 60_000, by) == expr


def test_shipped_demo_rules_load() -> None:
    groups = load_rule_files([RULES_DIR / "demo.yml"], 15.0, [RULES_DIR / "demo.obs.yml"])
    rules = {r.name: r for g in groups for r in g.rules if isinstance(r, AlertingRule)}
    assert set(rules) == {
        "HighErrorRate",
        "HighLatencyP99",
        "ServiceDown",
        "OrdersNotReported",
        "GatewayCircuitOpen",
        "DiscoverySelfPreservation",
        "CollectorRefusingData",
        "PaymentsReportingStopped",
    }
    assert [lv.name for lv in rules["HighErrorRate"].levels] == ["critical", "warning"]
    assert rules["HighErrorRate"].flapping is not None
    assert rules["ServiceDown"].repeat_interval_s == 0.0
    assert all(r.annotations.get("summary") and r.labels.get("severity") for r in rules.values())


def test_a_yaml_syntax_error_names_file_line_and_column() -> None:
    with pytest.raises(RuleFileError) as err:
        parse_rule_text("groups:\n- name: g\n  rules: [\n", "r.yml", 60.0)
    assert err.value.errors == ["r.yml:4:1: yaml: expected the node content, but found '<stream end>'"]
