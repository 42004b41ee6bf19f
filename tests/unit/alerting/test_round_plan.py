"""Rules queried together: cut only where a rule may read what an earlier rule of the same run writes."""

from __future__ import annotations

import pytest

from alerting.round_plan import query_segments
from alerting.rules import AlertingRule, RecordingRule, Rule

R_A = RecordingRule("job:a:sum", "sum by (job) (a)")
R_B = RecordingRule("job:b:sum", "sum by (job) (b)")
USES_A = AlertingRule("UsesA", "job:a:sum > 1")
USES_A_PREFIX = AlertingRule("UsesLonger", "job:a:sum_total > 1")  # another name that starts the same
USES_ALERTS = AlertingRule("Meta", 'count(ALERTS{alertstate="firing"}) > 3')
PLAIN = AlertingRule("Plain", "up == 0")


@pytest.mark.parametrize(
    ("rules", "segments"),
    [
        ([], []),
        ([PLAIN], [[0]]),
        ([PLAIN, USES_A, R_A, R_B], [[0, 1, 2, 3]]),  # a reader before the writer sees last round's, as one by one
        ([R_A, R_B, PLAIN], [[0, 1, 2]]),
        ([R_A, USES_A], [[0], [1]]),
        ([R_A, R_B, USES_A, PLAIN], [[0, 1], [2, 3]]),
        ([R_A, USES_A_PREFIX], [[0, 1]]),
        ([PLAIN, USES_ALERTS], [[0], [1]]),  # ALERTS written by the alerting rule before it
        ([R_A, USES_A, R_B, USES_A], [[0], [1, 2, 3]]),  # job:a:sum was written in an earlier run
    ],
)
def test_segments(rules: list[Rule], segments: list[list[int]]) -> None:
    assert query_segments(rules) == segments
