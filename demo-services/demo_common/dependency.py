"""Calls another service: instances from discovery, round-robin, another instance on connection errors.

Only failures where the request surely or harmlessly did not complete move on to the next instance
(connect errors, a connection dropped mid-answer); every endpoint the business services call is
idempotent (reservations and charges are keyed by order id), so a repeat after a dropped connection
is safe. A read timeout is not retried: the caller decides what it means.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
from loguru import logger
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from demo_common.faults import FaultInjector

_RETRYABLE = (httpx.NetworkError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


class Instance(Protocol):
    """What this module needs of `agents.Instance`."""

    @property
    def instance_id(self) -> str: ...

    @property
    def base_url(self) -> str: ...


class InstanceSource(Protocol):
    """What this module needs of `agents.DiscoveryClient`."""

    def instances(self, service: str) -> Sequence[Instance]: ...


class DependencyError(Exception):
    """A dependency could not answer; `kind` is `unavailable` or `timeout`."""

    kind = "error"

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service


class DependencyUnavailable(DependencyError):
    kind = "unavailable"


class DependencyTimeout(DependencyError):
    kind = "timeout"


class ServiceClient:
    """HTTP calls to every instance of one service, in turn."""

    def __init__(
        self,
        service: str,
        source: InstanceSource | None,
        http: httpx.AsyncClient,
        timeout: httpx.Timeout,
        faults: FaultInjector | None = None,
    ) -> None:
        self.service = service
        self._source = source
        self._http = http
        self._timeout = timeout
        self._faults = faults
        self._turn = itertools.count()

    def instance_count(self) -> int:
        return len(self._source.instances(self.service)) if self._source is not None else 0

    async def request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """The first answer (any status) from an instance; raises DependencyError when none answered."""
        if self._faults is not None and self._faults.config.dependency_timeout:
            await self._stall(method, path)
        instances = list(self._source.instances(self.service)) if self._source is not None else []
        if not instances:
            raise DependencyUnavailable(self.service, "no instance is registered as UP")
        first = next(self._turn) % len(instances)
        errors: list[str] = []
        for instance in instances[first:] + instances[:first]:
            try:
                return await self._http.request(method, instance.base_url + path, json=json, timeout=self._timeout)
            except _RETRYABLE as exc:
                errors.append(f"{instance.instance_id}: {type(exc).__name__}")
                logger.bind(
                    dependency=self.service, instance_id=instance.instance_id, error=type(exc).__name__
                ).warning("call to {} failed, trying another instance", self.service)
            except httpx.TimeoutException as exc:
                raise DependencyTimeout(self.service, f"{instance.instance_id} did not answer in time") from exc
        raise DependencyUnavailable(self.service, "no instance answered (" + ", ".join(errors) + ")")

    async def _stall(self, method: str, path: str) -> None:
        # The dependency_timeout fault: the call hangs as if the peer never answered, for as long as the
        # caller would wait, then fails as a timeout would.
        wait = self._timeout.read or 5.0
        tracer = trace.get_tracer("demo_common.dependency")
        with tracer.start_as_current_span(f"{method} {self.service}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("fault.injected", "dependency_timeout")
            span.set_attribute("peer.service", self.service)
            await asyncio.sleep(wait)
            span.set_status(Status(StatusCode.ERROR, "injected dependency timeout"))
        logger.bind(dependency=self.service, path=path, waited_s=wait).error("dependency timeout fault: call stalled")
        raise DependencyTimeout(self.service, f"no answer within {wait}s (injected)")
