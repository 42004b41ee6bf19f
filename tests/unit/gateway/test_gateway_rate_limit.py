"""Token buckets per key: bursts, refill, Retry-After rounded up to whole seconds, X-RateLimit-* headers."""

from __future__ import annotations

import pytest
from gateway.rate_limit import RateLimiter, TokenBucket


def test_burst_then_refused_then_refilled() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    decisions = [bucket.take(0.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after == pytest.approx(0.5)
    assert refused.headers() == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2",  # 3 tokens at 2/s: 1.5 s, rounded up
        "Retry-After": "1",  # 0.5 s rounded up to a whole second
    }
    assert bucket.take(0.4).allowed is False
    assert bucket.take(0.5).allowed is True
    assert bucket.take(0.5).allowed is False


@pytest.mark.parametrize(
    ("rate", "elapsed", "retry_after_header"),
    [(1.0, 0.0, "1"), (0.25, 0.0, "4"), (0.25, 1.5, "3"), (0.1, 0.0, "10"), (100.0, 0.0, "1")],
)
def test_retry_after_is_whole_seconds_rounded_up(rate: float, elapsed: float, retry_after_header: str) -> None:
    bucket = TokenBucket(rate=rate, burst=1, now=0.0)
    assert bucket.take(0.0).allowed
    refused = bucket.take(elapsed)
    assert not refused.allowed
    assert refused.headers()["Retry-After"] == retry_after_header


def test_allowed_requests_carry_no_retry_after() -> None:
    assert "Retry-After" not in TokenBucket(rate=1, burst=1, now=0).take(0).headers()


def test_refill_is_capped_at_burst_and_clock_steps_back_are_harmless() -> None:
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    assert bucket.take(100.0).remaining == 1
    assert bucket.take(50.0).remaining == 0
    assert not bucket.take(50.0).allowed


def test_limiter_keeps_one_bucket_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    assert limiter.take("a", 1, 1).allowed
    assert not limiter.take("a", 1, 1).allowed
    assert limiter.take("b", 1, 1).allowed
    now[0] = 1.0
    assert limiter.take("a", 1, 1).allowed
