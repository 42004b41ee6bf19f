"""Delivery's pure parts: which answers are retried, and the backoff schedule (exponential, capped, jittered)."""

from __future__ import annotations

import pytest

from alerting.notify.config import RetryConfig
from alerting.notify.delivery import backoff_s, classify

RETRY = RetryConfig(initial_backoff=0.5, max_backoff=4.0, max_attempts=10, max_elapsed=60.0)


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (200, {}, None, None),
        (204, {}, None, None),
        (500, {}, True, None),
        (503, {"retry-after": "7"}, True, 7.0),
        (429, {"retry-after": "2"}, True, 2.0),
        (429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, True, None),
        (400, {}, False, None),
        (404, {}, False, None),
        (301, {}, False, None),
    ],
)
def test_classify(status: int, headers: dict[str, str], retryable: bool | None, retry_after: float | None) -> None:
    failure = classify(status, headers)
    if retryable is None:
        assert failure is None
    else:
        assert failure is not None
        assert (failure.retryable, failure.retry_after_s) == (retryable, retry_after)


@pytest.mark.parametrize(
    ("attempt", "jitter", "seconds"),
    [
        (1, 0.5, 0.5),  # rng 0.5: no jitter
        (2, 0.5, 1.0),
        (3, 0.5, 2.0),
        (4, 0.5, 4.0),
        (5, 0.5, 4.0),  # capped
        (1, 0.0, 0.25),  # -50%
        (2, 1.0, 1.5),  # +50%
        (4, 1.0, 4.0),  # jitter never exceeds the cap
    ],
)
def test_backoff(attempt: int, jitter: float, seconds: float) -> None:
    assert backoff_s(RETRY, attempt, lambda: jitter) == pytest.approx(seconds)
