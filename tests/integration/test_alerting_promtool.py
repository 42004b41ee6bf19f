"""alerting agrees with a real promtool 2.42 on rule files and templates.

- Every shipped rule file passes `promtool check rules`; the demo's `promtool test rules` unit tests pass.
- For each rule file of tests/unit/alerting/rulefile_cases.py, promtool's verdict (accept or refuse) is the
  table's, and ours is the same.
- Templates: promtool evaluates alerts whose annotations are the templates of template_cases.py, expecting
  our renderings; promtool compares annotations exactly, so any difference fails (and is shown).
- Deadman rules generated from an extension file behave as documented when Prometheus' engine evaluates them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from alerting.rulefile import load_rule_files
from alerting.rulefmt import RuleFileError, parse_rule_text
from alerting.rules import AlertingRule, RecordingRule, RuleGroup
from alerting.template import render
from tests.integration.promtool_templates import prometheus_renderings, run_promtool_test, write_files
from tests.peers import require
from tests.unit.alerting.rulefile_cases import CASES, NEWER_THAN_PROMTOOL, RuleFileCase
from tests.unit.alerting.template_cases import CASES as TEMPLATE_CASES
from tests.unit.alerting.template_cases import EXTERNAL_LABELS, EXTERNAL_URL, PARSE_CASES

RULES_DIR = Path(__file__).parents[2] / "alerting" / "rules"
SHIPPED = sorted(
    p for p in RULES_DIR.glob("*.yml") if not p.name.endswith(".obs.yml") and not p.name.endswith("_test.yml")
)
UNIT_TESTS = sorted(RULES_DIR.glob("*_test.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    return require("promtool", "prometheus")


def check_rules(promtool: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def test_there_are_shipped_files() -> None:
    assert SHIPPED and UNIT_TESTS


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_rule_file_passes_promtool_check(promtool: str, path: Path) -> None:
    result = check_rules(promtool, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_shipped_rule_unit_tests_pass(promtool: str, path: Path) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", path.name], cwd=path.parent, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_accept_or_refuse_as_promtool(promtool: str, tmp_path: Path, case: RuleFileCase) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(case.text)
    result = check_rules(promtool, path)
    assert (result.returncode == 0) == case.valid, result.stdout + result.stderr
    try:
        parse_rule_text(case.text, str(path), 60.0)
        ours = True
    except RuleFileError:
        ours = False
    assert ours == case.valid


@pytest.mark.parametrize("case", NEWER_THAN_PROMTOOL, ids=lambda c: c.name)
def test_keys_newer_than_promtool_2_42(promtool: str, tmp_path: Path, case: RuleFileCase) -> None:
    """We accept what later Prometheus versions added; promtool 2.42 does not know these keys (if a newer
    promtool accepts them, they move to the agreement table)."""
    path = tmp_path / "rules.yml"
    path.write_text(case.text)
    assert check_rules(promtool, path).returncode != 0
    parse_rule_text(case.text, str(path), 60.0)


def test_templates_render_as_prometheus(promtool: str, tmp_path: Path) -> None:
    ours = [
        render(c.template, c.labels, c.value, EXTERNAL_LABELS, EXTERNAL_URL, alert_name=f"T{i}")
        for i, c in enumerate(TEMPLATE_CASES)
    ]
    cases = [(c.template, c.labels, c.value, o) for c, o in zip(TEMPLATE_CASES, ours, strict=True)]
    result = run_promtool_test(promtool, write_files(tmp_path, cases, EXTERNAL_LABELS, EXTERNAL_URL))
    output = result.stdout + result.stderr
    differences = {
        TEMPLATE_CASES[i].template: {"ours": ours[i], "prometheus": got}
        for i, got in prometheus_renderings(output).items()
    }
    assert differences == {}
    assert result.returncode == 0, output


def test_template_parse_verdicts_as_promtool(promtool: str, tmp_path: Path) -> None:
    """Each template of PARSE_CASES as the annotation of its own rule file: promtool's verdict is the table's."""
    verdicts = {}
    for i, (text, _) in enumerate(PARSE_CASES):
        path = tmp_path / f"t{i}.yml"
        rule = {"alert": "A", "expr": "up", "annotations": {"a": text}}
        path.write_text(json.dumps({"groups": [{"name": "g", "rules": [rule]}]}))
        verdicts[text] = check_rules(promtool, path).returncode == 0
    assert verdicts == dict(PARSE_CASES)


def as_rule_file(groups: list[RuleGroup]) -> str:
    """Groups as a Prometheus rule file (JSON is YAML)."""
    out = []
    for g in groups:
        rules: list[dict[str, object]] = []
        for r in g.rules:
            if isinstance(r, RecordingRule):
                rules.append({"record": r.record, "expr": r.expr, "labels": dict(r.labels)})
            elif isinstance(r, AlertingRule):
                rule: dict[str, object] = {"alert": r.name, "expr": r.expr, "for": f"{int(r.for_s * 1000)}ms"}
                rule["labels"] = dict(r.labels)
                rule["annotations"] = dict(r.annotations)
                rules.append(rule)
        out.append({"name": g.name, "rules": rules})
    return json.dumps({"groups": out}, indent=1)


def test_shipped_deadman_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    groups = load_rule_files([RULES_DIR / "demo.yml"], 15.0, sorted(RULES_DIR.glob("*.obs.yml")))
    generated = [g for g in groups if g.file.endswith(".obs.yml")]
    assert generated
    path = tmp_path / "generated.yml"
    path.write_text(as_rule_file(generated))
    result = check_rules(promtool, path)
    assert result.returncode == 0, result.stdout + result.stderr


DEADMAN_EXTENSION = """
deadman:
  - {name: SeriesStopped, selector: pushed_total, interval: 5m, lookback: 30m}
  - {name: HostStopped, selector: pushed_total, by: [host], interval: 5m, lookback: 30m}
  - {name: MetricStopped, selector: pushed_total, by: [], interval: 5m, lookback: 30m}
"""


def _alerts(name: str, at: str, labels: list[dict[str, str]]) -> dict[str, object]:
    return {"eval_time": at, "alertname": name, "exp_alerts": [{"exp_labels": lb} for lb in labels]}


def test_deadman_semantics_in_prometheus(promtool: str, tmp_path: Path) -> None:
    """Series seen within the lookback but silent for the interval fire; the alert ends once the silence
    outlasts the lookback (documented in alerting/README.md)."""
    (tmp_path / "base.yml").write_text("groups: []\n")
    (tmp_path / "dm.obs.yml").write_text(DEADMAN_EXTENSION)
    groups = load_rule_files([tmp_path / "base.yml"], 60.0, [tmp_path / "dm.obs.yml"])
    (tmp_path / "deadman.yml").write_text(as_rule_file(groups))
    ax, bx, ay = {"host": "a", "path": "x"}, {"host": "b", "path": "x"}, {"host": "a", "path": "y"}
    tests = [
        # a/x pushes until 40m; b/x and a/y until 10m
        _alerts("SeriesStopped", "12m", []),
        _alerts("SeriesStopped", "16m", [ay, bx]),
        _alerts("HostStopped", "16m", [{"host": "b"}]),  # host a still pushes a/x
        _alerts("MetricStopped", "16m", []),
        _alerts("SeriesStopped", "46m", [ax]),  # b/x and a/y: silent longer than the 30m lookback
        _alerts("HostStopped", "46m", [{"host": "a"}]),
        _alerts("MetricStopped", "46m", [{}]),
        _alerts("MetricStopped", "71m", []),
    ]
    for t in tests:
        for exp in t["exp_alerts"]:  # type: ignore[attr-defined]
            exp["exp_labels"] = {**exp["exp_labels"], "alertname": t["alertname"]}
    series = [
        {"series": 'pushed_total{host="a",path="x"}', "values": "1+1x40"},
        {"series": 'pushed_total{host="b",path="x"}', "values": "1+1x10"},
        {"series": 'pushed_total{host="a",path="y"}', "values": "1+1x10"},
    ]
    spec = {
        "rule_files": ["deadman.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}],
    }
    (tmp_path / "deadman_test.yml").write_text(json.dumps(spec, indent=1))
    result = run_promtool_test(promtool, tmp_path / "deadman_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
