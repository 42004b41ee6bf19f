"""The service registry itself: leases, status, eviction and self-preservation, in memory, with an injectable clock.

Pure logic, as Eureka's `AbstractInstanceRegistry` is: no HTTP, no logging, no metrics library. The
HTTP handlers, the eviction loop and the metrics view call into a `Registry` and report what it returns.

Times are unix seconds from the clock (`time.time` in production). An instance's lease expires when
`clock() > last_renewal + lease_seconds`. Self-preservation follows Eureka: the renewals expected in
the last `renewal_window` seconds are computed from the registered instances and their heartbeat
intervals; when the renewals actually received fall below `threshold` of that, eviction stops
(the network, or the registry, is more likely at fault than every instance at once), and it resumes
when renewals recover.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

Clock = Callable[[], float]


class Status(StrEnum):
    UP = "UP"
    DOWN = "DOWN"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"


class UnknownInstance(LookupError):
    """The registry holds no instance with this service and id (never registered, deregistered or evicted)."""

    def __init__(self, service: str, instance_id: str) -> None:
        super().__init__(f"no instance {instance_id!r} of service {service!r} is registered")
        self.service, self.instance_id = service, instance_id


@dataclass(frozen=True)
class Instance:
    """One registered instance, as the registry reports it (a snapshot: the registry never mutates it)."""

    service: str
    instance_id: str
    host: str
    port: int
    status: Status
    metadata: dict[str, str]
    lease_seconds: int
    heartbeat_interval: float  # what the instance promised; drives the expected renewals
    registered_at: float
    last_renewal: float

    def expires_at(self) -> float:
        return self.last_renewal + self.lease_seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "instance_id": self.instance_id,
            "host": self.host,
            "port": self.port,
            "status": self.status.value,
            "metadata": dict(self.metadata),
            "lease_seconds": self.lease_seconds,
            "heartbeat_interval": self.heartbeat_interval,
            "registered_at": self.registered_at,
            "last_renewal": self.last_renewal,
        }


@dataclass(frozen=True)
class Registration:
    """What a client asks to register; `None` fields take the registry's defaults."""

    service: str
    instance_id: str
    host: str
    port: int
    status: Status = Status.UP
    metadata: dict[str, str] = field(default_factory=dict)
    lease_seconds: int | None = None
    heartbeat_interval: float | None = None


@dataclass(frozen=True)
class RenewalRate:
    """Renewals over the last window against what the registered instances should have sent."""

    actual: int
    expected: int
    threshold: int  # eviction stops while actual < threshold (and expected > 0)


@dataclass(frozen=True)
class EvictionReport:
    """The outcome of one eviction pass."""

    evicted: list[Instance]
    expired: int  # instances past their lease, evicted or (in self-preservation) kept
    self_preservation: bool  # active after this pass
    entered_self_preservation: bool
    left_self_preservation: bool
    rate: RenewalRate


@dataclass(frozen=True)
class Stats:
    """Cumulative event counts by service, for the metrics view."""

    registrations: dict[str, int]
    renewals: dict[str, int]
    deregistrations: dict[str, int]
    evictions: dict[str, int]


class Registry:
    """Instances by service with leases; thread-safe (the HTTP handlers and the metrics scrape may run apart).

    `version` starts at `initial_version` and increases on every change a client can see: register,
    status change, deregister, eviction; never on a plain heartbeat.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        default_lease_seconds: int = 30,
        renewal_window: float = 60.0,
        self_preservation_threshold: float = 0.85,
        self_preservation_enabled: bool = True,
        initial_version: int = 0,
    ) -> None:
        if default_lease_seconds < 1:
            raise ValueError("default_lease_seconds must be at least 1")
        if renewal_window <= 0:
            raise ValueError("renewal_window must be positive")
        if not 0 <= self_preservation_threshold <= 1:
            raise ValueError("self_preservation_threshold must be between 0 and 1")
        self._clock = clock
        self.default_lease_seconds = default_lease_seconds
        self.renewal_window = renewal_window
        self.self_preservation_threshold = self_preservation_threshold
        self.self_preservation_enabled = self_preservation_enabled
        self._lock = threading.Lock()
        self._services: dict[str, dict[str, Instance]] = {}
        self._renewal_times: deque[float] = deque()  # clock() of every renewal within the window
        self._version = initial_version
        self._self_preservation = False
        self._registrations: Counter[str] = Counter()
        self._renewals: Counter[str] = Counter()
        self._deregistrations: Counter[str] = Counter()
        self._evictions: Counter[str] = Counter()

    # -- changes ---------------------------------------------------------------------------------

    def register(self, reg: Registration) -> tuple[Instance, bool]:
        """Adds or replaces an instance; returns it and whether it is new (a re-registration is not)."""
        lease = reg.lease_seconds if reg.lease_seconds is not None else self.default_lease_seconds
        if lease < 1:
            raise ValueError("lease_seconds must be at least 1")
        # Without a promise from the client, assume Eureka's ratio: three heartbeats per lease.
        interval = reg.heartbeat_interval if reg.heartbeat_interval is not None else lease / 3
        if interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        with self._lock:
            now = self._clock()
            instances = self._services.setdefault(reg.service, {})
            old = instances.get(reg.instance_id)
            inst = Instance(
                service=reg.service,
                instance_id=reg.instance_id,
                host=reg.host,
                port=reg.port,
                status=reg.status,
                metadata=dict(reg.metadata),
                lease_seconds=lease,
                heartbeat_interval=interval,
                # A re-registration keeps its first time, as Eureka keeps serviceUpTimestamp.
                registered_at=old.registered_at if old is not None else now,
                last_renewal=now,
            )
            instances[reg.instance_id] = inst
            self._registrations[reg.service] += 1
            self._version += 1
            return inst, old is None

    def renew(self, service: str, instance_id: str) -> Instance:
        """Extends the lease by a heartbeat; raises UnknownInstance so the client re-registers."""
        with self._lock:
            old = self._get(service, instance_id)
            now = self._clock()
            inst = replace(old, last_renewal=now)
            self._services[service][instance_id] = inst
            self._renewal_times.append(now)
            self._renewals[service] += 1
            self._prune_renewals(now)
            return inst

    def set_status(self, service: str, instance_id: str, status: Status) -> Instance:
        with self._lock:
            old = self._get(service, instance_id)
            if old.status == status:
                return old
            inst = replace(old, status=status)
            self._services[service][instance_id] = inst
            self._version += 1
            return inst

    def deregister(self, service: str, instance_id: str) -> Instance:
        with self._lock:
            inst = self._get(service, instance_id)
            self._remove(inst)
            self._deregistrations[service] += 1
            self._version += 1
            return inst

    def evict(self) -> EvictionReport:
        """One eviction pass: removes expired instances unless self-preservation holds them."""
        with self._lock:
            now = self._clock()
            rate = self._rate(now)
            was_active = self._self_preservation
            active = self.self_preservation_enabled and rate.expected > 0 and rate.actual < rate.threshold
            self._self_preservation = active
            expired = [i for by_id in self._services.values() for i in by_id.values() if now > i.expires_at()]
            evicted: list[Instance] = []
            if not active:
                for inst in sorted(expired, key=Instance.expires_at):
                    self._remove(inst)
                    self._evictions[inst.service] += 1
                    evicted.append(inst)
                if evicted:
                    self._version += 1
            return EvictionReport(
                evicted=evicted,
                expired=len(expired),
                self_preservation=active,
                entered_self_preservation=active and not was_active,
                left_self_preservation=was_active and not active,
                rate=rate,
            )

    # -- reads -----------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    @property
    def self_preservation_active(self) -> bool:
        """As decided by the last eviction pass (Eureka also decides only when it evicts)."""
        with self._lock:
            return self._self_preservation

    def snapshot(self) -> tuple[int, dict[str, list[Instance]]]:
        """The version and every instance by service, sorted by service then instance id, consistently."""
        with self._lock:
            services = {
                name: [by_id[k] for k in sorted(by_id)] for name, by_id in sorted(self._services.items()) if by_id
            }
            return self._version, services

    def service(self, name: str) -> tuple[int, list[Instance]]:
        with self._lock:
            by_id = self._services.get(name, {})
            return self._version, [by_id[k] for k in sorted(by_id)]

    def renewal_rate(self) -> RenewalRate:
        with self._lock:
            return self._rate(self._clock())

    def stats(self) -> Stats:
        with self._lock:
            return Stats(
                registrations=dict(self._registrations),
                renewals=dict(self._renewals),
                deregistrations=dict(self._deregistrations),
                evictions=dict(self._evictions),
            )

    # -- internals (lock held) -------------------------------------------------------------------

    def _get(self, service: str, instance_id: str) -> Instance:
        inst = self._services.get(service, {}).get(instance_id)
        if inst is None:
            raise UnknownInstance(service, instance_id)
        return inst

    def _remove(self, inst: Instance) -> None:
        by_id = self._services[inst.service]
        del by_id[inst.instance_id]
        if not by_id:
            del self._services[inst.service]

    def _prune_renewals(self, now: float) -> None:
        start = now - self.renewal_window
        while self._renewal_times and self._renewal_times[0] <= start:
            self._renewal_times.popleft()

    def _rate(self, now: float) -> RenewalRate:
        self._prune_renewals(now)
        expected = 0
        for by_id in self._services.values():
            for inst in by_id.values():
                # Only the part of the window the instance has been registered for: a newcomer owes
                # nothing yet, so a burst of registrations does not look like missing renewals.
                span = min(self.renewal_window, max(0.0, now - inst.registered_at))
                expected += math.floor(span / inst.heartbeat_interval)
        # Rounded down as Eureka's int threshold: with few instances, one heartbeat landing just past
        # the window's edge must not look like an outage.
        threshold = math.floor(expected * self.self_preservation_threshold)
        return RenewalRate(actual=len(self._renewal_times), expected=expected, threshold=threshold)
