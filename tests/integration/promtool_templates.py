"""Runs alert templates through a real `promtool test rules` with our renderings as the expected annotations.

promtool compares annotations exactly and prints what Prometheus rendered when they differ, so this both
checks our renderer and tells what Prometheus says instead (`prometheus_renderings`).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from alerting.template_syntax import unquote

_FAILED_ALERT_RE = re.compile(
    r"alertname: (T\d+), time: [^\n]*\n\s*exp:(.*?)\n\s*got:(.*?)(?=\n\s*alertname: |\Z)", re.S
)
_OUT_RE = re.compile(r'\bout=("(?:[^"\\]|\\.)*")')


def _series_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return repr(v)


def write_files(
    workdir: Path,
    cases: Sequence[tuple[str, dict[str, str], float, str]],
    external_labels: dict[str, str],
    external_url: str,
) -> Path:
    """A rule file with one alert per case (`T<i>`, annotation `out`) and a test file expecting `rendered`.

    Each case is (template, labels, value, rendered). JSON is YAML, so templates need no YAML quoting.
    """
    rules = []
    series = []
    tests = []
    for i, (template, labels, value, rendered) in enumerate(cases):
        rules.append({"alert": f"T{i}", "expr": f"in_{i} + 0", "annotations": {"out": template}})
        selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        series.append({"series": f"in_{i}{{{selector}}}", "values": f"{_series_value(value)} {_series_value(value)}"})
        tests.append(
            {
                "eval_time": "1m",
                "alertname": f"T{i}",
                "exp_alerts": [{"exp_labels": {**labels, "alertname": f"T{i}"}, "exp_annotations": {"out": rendered}}],
            }
        )
    (workdir / "templates.yml").write_text(json.dumps({"groups": [{"name": "templates", "rules": rules}]}, indent=1))
    test_file = workdir / "templates_test.yml"
    test_file.write_text(
        json.dumps(
            {
                "rule_files": ["templates.yml"],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "external_labels": external_labels,
                        "external_url": external_url,
                        "input_series": series,
                        "alert_rule_test": tests,
                    }
                ],
            },
            indent=1,
        )
    )
    return test_file


def run_promtool_test(promtool: str, test_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "test", "rules", test_file.name],
        cwd=test_file.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def prometheus_renderings(output: str) -> dict[int, str]:
    """From promtool's failure report: case index -> the annotation Prometheus rendered."""
    got: dict[int, str] = {}
    for m in _FAILED_ALERT_RE.finditer(output):
        out = _OUT_RE.search(m.group(3))
        got[int(m.group(1)[1:])] = unquote(out.group(1)) if out else "<no alert>"
    return got
