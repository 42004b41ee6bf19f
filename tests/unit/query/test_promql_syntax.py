"""The pieces around the parser: the promqltest DSL, query rewrites for syntax promql-parser lacks,
annotation positions, and Go-style regexes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from collector.query.promql.conformance import MemoryStore, format_reports, run_file
from collector.query.promql.duration_exprs import fold_duration_expressions
from collector.query.promql.extended_selectors import mark_extended_selectors, pad_info_selectors
from collector.query.promql.positions import position
from collector.query.promql.regex import compile_go
from collector.query.promql.testfile import HISTOGRAM, Eval, Load, expand_values, parse_duration, parse_test_file
from collector.query.promql.values import is_stale


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0", 0), ("5m", 300_000), ("1h30m", 5_400_000), ("10s53ms", 10_053), ("1d", 86_400_000), ("-1m", -60_000)],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 2 3", [1.0, 2.0, 3.0]),
        ("1x3", [1.0, 1.0, 1.0, 1.0]),
        ("_x3", [None, None, None]),
        ("-2+4x3", [-2.0, 2.0, 6.0, 10.0]),
        ("1-2x4", [1.0, -1.0, -3.0, -5.0, -7.0]),
        ("1 _ 3", [1.0, None, 3.0]),
        ("{{schema:0 sum:5 count:4 buckets:[1 2 1]}}x2 7", [HISTOGRAM, HISTOGRAM, HISTOGRAM, 7.0]),
    ],
)
def test_expand_values(text: str, expected: list[object]) -> None:
    assert expand_values(text) == expected


def test_expand_values_special_floats() -> None:
    values = expand_values("Inf -Inf NaN stale")
    assert values[0] == math.inf and values[1] == -math.inf
    assert isinstance(values[2], float) and math.isnan(values[2])
    assert isinstance(values[3], float) and bool(is_stale(np.array([values[3]]))[0])


def test_parse_test_file_blocks() -> None:
    text = """load 5m
  a{x="1"} 1+1x2

# a comment ends nothing here
clear
load 5m
  a{x="1"} 1+1x2

eval instant at 10m sum(a)
  expect warn
  {} 3

eval range from 0 to 10m step 5m a
  a{x="1"} 1 2 3

eval instant at 0 1
  1
eval instant at 0 "x"
  expect string "x"
"""
    cmds = parse_test_file(text)
    # `clear` has no body; a scalar line ends its block, so the next line is a command again.
    assert [type(c).__name__ for c in cmds] == ["Load", "Clear", "Load", "Eval", "Eval", "Eval", "Eval"]
    load = cmds[0]
    assert isinstance(load, Load) and load.series[0].labels == {"__name__": "a", "x": "1"}
    ev = cmds[3]
    assert isinstance(ev, Eval) and ev.at_ms == 600_000 and ev.warn == [("any", "")]
    rng = cmds[4]
    assert isinstance(rng, Eval) and not rng.instant and rng.step_ms == 300_000
    scalar, string = cmds[5], cmds[6]
    assert isinstance(scalar, Eval) and scalar.expect_scalar == 1.0
    assert isinstance(string, Eval) and string.expect_string == "x"


@pytest.mark.parametrize(
    ("query", "step_ms", "range_ms", "expected"),
    [
        ("rate(x[5m+30s])", 0, 0, "rate(x[330000ms])"),
        ("x[2m*(10+5):10s]", 0, 0, "x[1800000ms:10s]"),
        ("x[step()]", 10_000, 0, "x[10000ms]"),
        ("x offset min_of(step(), 1s)+8000", 5_000, 0, "x offset 1000ms+8000"),
        ("x offset -(2*3s)", 0, 0, "x offset -6000ms"),
        ("x offset range()", 0, 0, "x "),
        ("x[5m]", 0, 0, "x[5m]"),
    ],
)
def test_fold_duration_expressions(query: str, step_ms: int, range_ms: int, expected: str) -> None:
    assert fold_duration_expressions(query, step_ms, range_ms) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("increase(m[1m] anchored)", 'increase(m{__promql_range_mode__="anchored"}[1m] )'),
        ('rate(m{a="b"}[5m] smoothed)', 'rate(m{a="b", __promql_range_mode__="smoothed"}[5m] )'),
        ("m offset -100 smoothed + 0", 'm{__promql_range_mode__="smoothed"} offset -100  + 0'),
        ("anchored + smoothed", "anchored + smoothed"),
    ],
)
def test_mark_extended_selectors(query: str, expected: str) -> None:
    assert mark_extended_selectors(query) == expected


def test_pad_info_selectors() -> None:
    assert pad_info_selectors('info(m, {x=~".*"})') == 'info(m, {__promql_pad__="1", x=~".*"})'


@pytest.mark.parametrize(
    ("query", "name", "arg", "expected"),
    [
        ("histogram_quantile(0.5, x)", "histogram_quantile", 1, " (1:25)"),
        ("sort(x)", "sort", None, " (1:1)"),
        ("quantile without(p)(NaN, data)", "quantile", 0, " (1:21)"),
        ("sum(\n  rate(x[5m]))", "rate", 0, " (2:8)"),
        ("x", "rate", 0, ""),
    ],
)
def test_position(query: str, name: str, arg: int | None, expected: str) -> None:
    assert position(query, name, arg) == expected


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (".*((?i)DUC).*", "production", True),
        ("a(?i)b", "aB", True),
        ("a(?i)b", "AB", False),
        ("(?i:PRODUCTION)", "production", True),
        (".*", "line\nbreak", True),
    ],
)
def test_go_regex(pattern: str, value: str, matches: bool) -> None:
    assert (compile_go(pattern).fullmatch(value) is not None) is matches


def test_runner_counts_passed_failed_skipped_and_text_checks(tmp_path: Path) -> None:
    (tmp_path / "x.test").write_text(
        """load 1m
  m 1 2 3
  h {{schema:0 count:1 sum:1}}

eval instant at 2m m
  m 3

eval instant at 2m m
  m 4

eval instant at 2m h

eval instant at 1m sort(m)
  expect warn msg: not the real text
  m 2
"""
    )
    report = run_file(tmp_path / "x.test", MemoryStore())
    assert [r.status for r in report.results] == ["passed", "failed", "skipped", "failed"]
    assert [r.checks_text for r in report.results] == [False, False, False, True]
    summary = format_reports([report])
    assert summary.splitlines()[0] == "1 passed, 2 failed, 1 skipped"
    assert "value checks: 1/2 passed" in summary
