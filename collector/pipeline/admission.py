"""Bounds the memory held by requests in flight; past the bound, requests are refused, not queued.

A request reserves an estimate of what it will hold (its decoded body and the columns made from it)
before decoding, and releases it once its data is in the store. When the reservation does not fit,
the caller answers 429/UNAVAILABLE with Retry-After: memory stays bounded however fast clients send.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from collector.errors import RetryableError

# Bytes the current request already holds (reserved from its declared size before its body was
# read); a later reservation for the same request only adds what is missing.
_HELD: ContextVar[int] = ContextVar("admission_held", default=0)

# Columns built from a protobuf body take a few times its size while they exist.
EXPANSION = 4


class Admission:
    """Not thread-safe: used from the event loop only."""

    def __init__(self, max_bytes: int, retry_after: float) -> None:
        self.max_bytes = max_bytes
        self.retry_after = retry_after
        self.inflight = 0

    @contextmanager
    def reserve(self, body_bytes: int) -> Iterator[None]:
        held = _HELD.get()
        need = max(0, body_bytes * EXPANSION - held)
        # One request larger than the whole budget still goes through when nothing else is in
        # flight; otherwise a single large (but allowed) body could never be accepted.
        if self.inflight > held and self.inflight + need > self.max_bytes:
            raise RetryableError(
                f"the write path is saturated ({self.inflight} bytes in flight, limit {self.max_bytes}); "
                f"retry after {self.retry_after:g}s",
                retry_after=self.retry_after,
            )
        self.inflight += need
        token = _HELD.set(held + need)
        try:
            yield
        finally:
            _HELD.reset(token)
            self.inflight -= need
