"""Delivery of one notification with bounded retries, and the dead-letter log for those that keep failing.

Retryable: 5xx, 429, timeouts and connection errors (Alertmanager retries 5xx; we add 429 and honour its
Retry-After). Permanent: any other non-2xx answer; it is not retried. Backoff doubles from
`initial_backoff` up to `max_backoff` with +-50% jitter; attempts stop at `max_attempts` or once
`max_elapsed` has passed since the first. A notification that fails is appended to the dead-letter JSONL
file (one object per line, fsynced) and counted.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from alerting.notify.config import RetryConfig
from alerting.notify.metrics import NotifyMetrics
from alerting.notify.timefmt import format_rfc3339

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpNotification:
    """One HTTP POST to make. `payload` is what the dead-letter log records (the JSON object or the text)."""

    receiver: str
    integration: str
    url: str
    body: bytes
    payload: Any
    timeout_s: float
    headers: Mapping[str, str] = field(default_factory=dict)


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable, self.retry_after_s = retryable, retry_after_s


def backoff_s(retry: RetryConfig, attempt: int, rng: Callable[[], float]) -> float:
    """The wait after failed attempt number `attempt` (1-based): exponential, capped, with +-50% jitter."""
    base = min(retry.max_backoff, retry.initial_backoff * (2 ** (attempt - 1)))
    return min(retry.max_backoff, base * (0.5 + rng()))


def classify(status: int, headers: Mapping[str, str]) -> DeliveryFailed | None:
    """None for success (2xx); otherwise the failure, retryable or not."""
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500:
        retry_after = headers.get("retry-after")
        after = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
        return DeliveryFailed(f"HTTP {status}", retryable=True, retry_after_s=after)
    return DeliveryFailed(f"HTTP {status} (not retried)", retryable=False)


class DeadLetters:
    """Appends failed notifications to a JSONL file: receiver, integration, payload, attempts, error, time."""

    def __init__(self, path: Path, metrics: NotifyMetrics) -> None:
        self.path, self._metrics = path, metrics
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, receiver: str, integration: str, payload: Any, attempts: int, error: str, now: float) -> None:
        line = json.dumps(
            {
                "time": format_rfc3339(now),
                "receiver": receiver,
                "integration": integration,
                "payload": payload,
                "attempts": attempts,
                "last_error": error,
            }
        )
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._metrics.dead_letters.labels(receiver=receiver, integration=integration).inc()
        log.error(
            "notification to %s/%s failed after %d attempt(s) (%s); dead-lettered",
            receiver,
            integration,
            attempts,
            error,
        )


class Delivery:
    """Posts notifications with retries. `sleep`, `rng` and `monotonic` are injectable for tests."""

    def __init__(
        self,
        retry: RetryConfig,
        dead_letters: DeadLetters,
        metrics: NotifyMetrics,
        client: httpx.Client,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry, self.dead_letters, self._metrics, self._client = retry, dead_letters, metrics, client
        self._clock, self._sleep, self._rng, self._monotonic = clock, sleep, rng, monotonic

    def post(self, n: HttpNotification) -> bool:
        """Deliver `n`; True once a 2xx came back, False when it was dead-lettered."""
        labels = {"receiver": n.receiver, "integration": n.integration}
        self._metrics.notifications.labels(**labels).inc()
        started = self._monotonic()
        attempt, error = 0, ""
        while True:
            attempt += 1
            self._metrics.requests.labels(**labels).inc()
            failure = self._attempt(n)
            if failure is None:
                self._metrics.latency.labels(**labels).observe(self._monotonic() - started)
                return True
            error = str(failure)
            self._metrics.requests_failed.labels(**labels, retryable=str(failure.retryable).lower()).inc()
            log.warning("notification to %s/%s attempt %d failed: %s", n.receiver, n.integration, attempt, error)
            if not failure.retryable or attempt >= self.retry.max_attempts:
                break
            wait = backoff_s(self.retry, attempt, self._rng)
            if failure.retry_after_s is not None:
                wait = min(self.retry.max_backoff, max(wait, failure.retry_after_s))
            if self._monotonic() + wait - started > self.retry.max_elapsed:
                break
            self._sleep(wait)
        self._metrics.latency.labels(**labels).observe(self._monotonic() - started)
        self._metrics.notifications_failed.labels(**labels).inc()
        self.dead_letters.append(n.receiver, n.integration, n.payload, attempt, error, self._clock())
        return False

    def give_up(self, receiver: str, integration: str, payload: Any, error: str) -> None:
        """Record a notification that could not even be built (e.g. its template failed) as failed, dead-lettered."""
        labels = {"receiver": receiver, "integration": integration}
        self._metrics.notifications.labels(**labels).inc()
        self._metrics.notifications_failed.labels(**labels).inc()
        self.dead_letters.append(receiver, integration, payload, 0, error, self._clock())

    def _attempt(self, n: HttpNotification) -> DeliveryFailed | None:
        headers = {"Content-Type": "application/json", "User-Agent": "observatory-alerting", **n.headers}
        try:
            resp = self._client.post(n.url, content=n.body, headers=headers, timeout=n.timeout_s)
        except httpx.TimeoutException as e:
            return DeliveryFailed(f"timeout after {n.timeout_s}s: {type(e).__name__}", retryable=True)
        except httpx.TransportError as e:
            return DeliveryFailed(f"connection error: {type(e).__name__}: {e}", retryable=True)
        return classify(resp.status_code, resp.headers)
