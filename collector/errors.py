"""The two kinds of failure every receiver maps to its wire: bad data (never retried) and overload.

Classified once, here; each wire API turns them into status codes in one table (OTLP/HTTP 400 vs
429/503, gRPC INVALID_ARGUMENT vs UNAVAILABLE, Influx 400 vs 503, ...).
"""

from __future__ import annotations


class PermanentError(Exception):
    """The request can never succeed as sent (malformed, invalid, too large). Clients must not retry.

    `status` is the HTTP status that fits best (400, 413, 415); `field` says where, when known.
    """

    def __init__(
        self, message: str, *, status: int = 400, field: str = "", reason: str = "invalid", items: int = 1
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field
        # How many items this refuses, for the refused-items counter (1 when they were not counted).
        self.items = items
        # A short machine-readable cause, used as the `reason` label of the refused-items counter.
        self.reason = reason


class RetryableError(Exception):
    """The request may succeed later (overload, store down). Clients retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0, status: int = 429, reason: str = "overload") -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.status = status
        self.reason = reason
