"""promtool (2.42, Debian) gives the same answers against the collector as against a real Prometheus 2.42.

Both servers hold the seeded dataset of tests/promql_dataset.py. Each case runs `promtool query instant`,
`query range`, `query series` or `query labels` as a subprocess against each server; the exit codes must be
equal, and so must stdout and stderr, with two normalisations only:
- a sample value may differ by 1e-9 relative (summation order; promtool prints the shortest decimal that
  round-trips, so the last digits show it);
- an instant vector's lines are compared as a set: Prometheus orders an instant vector in evaluation order
  (Go map order after an aggregation), which promtool prints as received. Range results (sorted by
  Prometheus) and sort()/sort_desc() results keep their order.
A query error is compared by exit code and error type (`query error: <type>:`) and, where the text comes from
the API rather than from the PromQL parser or evaluation order, by its full text.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.peers import require
from tests.promql_dataset import END_MS, START_MS, differences, loaded_servers

END = END_MS / 1000
# Range lookups span the whole dataset: Prometheus 2.42 answers label lookups with match[] from the head
# block's postings without looking at sample times, so over a part of the dataset it also names series
# without samples there, and the collector (which checks) would rightly differ.
WHOLE = [f"--start={START_MS / 1000}", f"--end={END}"]
AT = f"--time={END}"
LAST_30M = [f"--start={END - 1800}", f"--end={END}"]


@dataclass(frozen=True)
class Case:
    """One promtool invocation; `{url}` in args is replaced by the server's URL."""

    name: str
    args: list[str]
    ordered: bool = False  # lines must come in the same order (range results, sort_desc)
    full_error: bool = True  # compare the whole error text, not only the error type


CASES = [
    # instant: vectors, scalars, a matrix (range selector), strings, empty answers
    Case("raw-vector", ["query", "instant", "{url}", 'http_requests_total{code="500"}', AT]),
    Case("sum-rate", ["query", "instant", "{url}", "sum by (job) (rate(http_requests_total[5m]))", AT]),
    Case(
        "histogram-quantile",
        [
            "query",
            "instant",
            "{url}",
            "histogram_quantile(0.9, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))",
            AT,
        ],
    ),
    Case(
        "sort-desc",
        ["query", "instant", "{url}", "sort_desc(sum by (job, instance) (rate(http_requests_total[5m])))", AT],
        ordered=True,
    ),
    Case(
        "binary-matching",
        [
            "query",
            "instant",
            "{url}",
            'rate(http_requests_total{code="500"}[5m]) / ignoring(code) rate(http_requests_total{code="200"}[5m])',
            AT,
        ],
    ),
    Case("scalar", ["query", "instant", "{url}", "1+1", AT]),
    Case("scalar-fn", ["query", "instant", "{url}", "scalar(sum(up))", AT]),
    Case("time", ["query", "instant", "{url}", "time()", AT]),
    Case("inf", ["query", "instant", "{url}", "vector(1) / 0", AT]),
    Case("absent", ["query", "instant", "{url}", 'absent(nonexistent_metric{job="x"})', AT]),
    Case("empty", ["query", "instant", "{url}", "nonexistent_metric", AT]),
    Case("stale", ["query", "instant", "{url}", "stale_gauge", AT]),
    Case("range-selector", ["query", "instant", "{url}", 'temperature_celsius{job="api"}[1m]', AT], ordered=True),
    # promtool's client cannot decode a string result; it must fail alike, quoting the same JSON bytes
    Case("string", ["query", "instant", "{url}", '"hello"', AT]),
    Case(
        "rfc3339-time",
        [
            "query",
            "instant",
            "{url}",
            "up",
            "--time=" + datetime.fromtimestamp(END // 60 * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ],
    ),
    Case("json-vector", ["query", "instant", "-o", "json", "{url}", "rate(http_requests_total[5m])", AT]),
    # range
    Case(
        "range-sum-rate",
        ["query", "range", "{url}", "sum by (job) (rate(http_requests_total[5m]))", *LAST_30M, "--step=1m"],
        ordered=True,
    ),
    Case("range-raw", ["query", "range", "{url}", "up", *LAST_30M, "--step=2m"], ordered=True),
    Case("range-ends", ["query", "range", "{url}", "ended_gauge", *LAST_30M, "--step=30s"], ordered=True),
    Case(
        "range-quantile",
        [
            "query",
            "range",
            "{url}",
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
            *LAST_30M,
            "--step=90s",
        ],
        ordered=True,
    ),
    Case(
        "range-scalar",
        ["query", "range", "-o", "json", "{url}", "scalar(sum(up))", *LAST_30M, "--step=5m"],
        ordered=True,
    ),
    Case(
        "range-json",
        ["query", "range", "-o", "json", "{url}", 'rate(http_requests_total{job="web"}[5m])', *LAST_30M, "--step=3m"],
        ordered=True,
    ),
    # errors: exit code 1 and `query error: <type>: <message>` on stderr
    # The parser's messages carry a position Prometheus computes and promql-parser does not give.
    Case("parse-error", ["query", "instant", "{url}", "sum(", AT], full_error=False),
    # The message lists the duplicate series in evaluation order.
    Case(
        "many-to-many",
        ["query", "instant", "{url}", "http_requests_total + on(job) http_requests_total", AT],
        full_error=False,
    ),
    Case("too-many-points", ["query", "range", "{url}", "up", *LAST_30M, "--step=100ms"]),
    Case("range-parse-error", ["query", "range", "{url}", "rate(up)", *LAST_30M, "--step=1m"], full_error=False),
    # series
    Case("series", ["query", "series", "{url}", '--match=up{job="api"}', "--match=version_info"], ordered=True),
    Case(
        "series-regex",
        ["query", "series", "{url}", '--match={__name__=~"http_request_duration_seconds_(count|sum)",instance!="i2"}'],
        ordered=True,
    ),
    Case("series-range", ["query", "series", "{url}", '--match={job="batch"}', *LAST_30M], ordered=True),
    # An end before the start: Prometheus finds nothing rather than rejecting it.
    Case("series-end-before-start", ["query", "series", "{url}", "--match=up", f"--start={END}", f"--end={END - 600}"]),
    Case("series-none", ["query", "series", "{url}", "--match=nonexistent_metric"], ordered=True),
    Case("series-bad-match", ["query", "series", "{url}", "--match=up{"], full_error=False),
    # labels (promtool's `labels` lists one label's values)
    Case("labels", ["query", "labels", "{url}", "job"], ordered=True),
    Case("labels-name", ["query", "labels", "{url}", "__name__", *WHOLE], ordered=True),
    Case(
        "labels-match",
        ["query", "labels", "{url}", "code", '--match=http_requests_total{job="web"}', *WHOLE],
        ordered=True,
    ),
    Case(
        "labels-matches",
        ["query", "labels", "{url}", "le", "--match=http_request_duration_seconds_bucket", "--match=up"],
        ordered=True,
    ),
    Case("labels-none", ["query", "labels", "{url}", "nonexistent_label"], ordered=True),
    Case("labels-bad-name", ["query", "labels", "{url}", "bad-name"]),
]

_VECTOR_LINE = re.compile(r"(?P<head>.* => |scalar: )(?P<value>\S+)(?P<tail> @\[[^\]]+\])")
_POINT_LINE = re.compile(r"(?P<head>)(?P<value>\S+)(?P<tail> @\[[^\]]+\])")
_ERROR = re.compile(r"query error: (\w+):")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    require("promtool", "prometheus")
    with loaded_servers(tmp_path_factory.mktemp("promtool")) as urls:
        yield urls


def _promtool(case: Case, url: str) -> subprocess.CompletedProcess[str]:
    args = [a.replace("{url}", url) for a in case.args]
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)


def _values_close(a: str, b: str) -> bool:
    try:
        return not differences([0, a], [0, b])
    except ValueError:
        return a == b


def _line_differs(expected: str, got: str) -> bool:
    """True unless the lines are equal, or equal but for a sample value within tolerance."""
    if expected == got:
        return False
    for pattern in (_VECTOR_LINE, _POINT_LINE):
        e, g = pattern.fullmatch(expected), pattern.fullmatch(got)
        if e and g:
            same_frame = e["head"] == g["head"] and e["tail"] == g["tail"]
            return not (same_frame and _values_close(e["value"], g["value"]))
    return True


def _stdout_differences(case: Case, expected: str, got: str) -> list[str]:
    if "-o" in case.args:  # JSON output: compare as JSON, sample values within tolerance
        return differences(json.loads(expected), json.loads(got), ordered=case.ordered)
    e_lines, g_lines = expected.splitlines(), got.splitlines()
    if not case.ordered:
        e_lines, g_lines = sorted(e_lines), sorted(g_lines)
    if len(e_lines) != len(g_lines):
        return [f"{len(g_lines)} lines != {len(e_lines)}:\n{got[:1500]}\n--- Prometheus:\n{expected[:1500]}"]
    return [f"{g!r} != {e!r}" for e, g in zip(e_lines, g_lines, strict=True) if _line_differs(e, g)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_promtool_answers_alike(servers: tuple[str, str], case: Case) -> None:
    prom_url, collector_url = servers
    expected, got = _promtool(case, prom_url), _promtool(case, collector_url)
    assert got.returncode == expected.returncode, (
        f"exit code {got.returncode} != {expected.returncode}\n{got.stderr}{got.stdout}\n"
        f"--- Prometheus:\n{expected.stderr}{expected.stdout}"
    )
    if expected.returncode != 0 and not case.full_error:
        e_type, g_type = _ERROR.match(expected.stderr), _ERROR.match(got.stderr)
        assert e_type is not None, expected.stderr  # the case is an API error, as intended
        assert g_type is not None and g_type[1] == e_type[1], f"{got.stderr}--- Prometheus:\n{expected.stderr}"
        return
    assert got.stderr == expected.stderr
    problems = _stdout_differences(case, expected.stdout, got.stdout)
    assert not problems, "\n".join(problems)
