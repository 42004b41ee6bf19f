"""Discovery client: registers this instance, keeps its lease with heartbeats, and serves lookups from a cache.

Two daemon threads do the network work, so callers never wait on the registry except for the first
lookup of a service (one request, bounded by `lookup_timeout`):
- the heartbeat thread registers (retrying with backoff while the registry is down), renews the
  lease every `heartbeat_interval` seconds, and registers again when a heartbeat is answered 404
  (the registry forgot the instance: it was restarted, or evicted it);
- the refresh thread re-reads every looked-up service every `refresh_interval` seconds with
  If-None-Match, so an unchanged registry costs a 304. On an error the last list is kept.
A lookup-only client (`register=False`, the default when `port` is 0) runs only the refresh thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from loguru import logger

STATUSES = ("UP", "DOWN", "OUT_OF_SERVICE")

Watcher = Callable[[list["Instance"]], None]


@dataclass(frozen=True)
class Instance:
    """One instance of a service, as the registry lists it."""

    instance_id: str
    service: str
    host: str
    port: int
    status: str = "UP"
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Instance:
        return cls(
            instance_id=str(data["instance_id"]),
            service=str(data["service"]),
            host=str(data["host"]),
            port=int(data["port"]),
            status=str(data.get("status", "UP")),
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        )


@dataclass(frozen=True)
class _Entry:
    instances: tuple[Instance, ...]  # every status, as the registry sent them
    etag: str | None  # None until one lookup succeeded

    def up(self) -> list[Instance]:
        return [i for i in self.instances if i.status == "UP"]


class DiscoveryClient:
    """Registration, heartbeats and cached lookups against a discovery registry (demo-services/README.md)."""

    def __init__(
        self,
        registry_url: str,
        service: str,
        instance_id: str,
        host: str,
        port: int,
        metadata: Mapping[str, str] | None = None,
        heartbeat_interval: float = 10.0,
        lease_seconds: int = 30,
        refresh_interval: float = 5.0,
        *,
        register: bool | None = None,
        lookup_timeout: float = 1.0,
        request_timeout: float = 2.0,
    ) -> None:
        """`register` defaults to `port > 0`: a process without a port only looks services up."""
        self.register_enabled = port > 0 if register is None else register
        if self.register_enabled and not 0 < port < 65536:
            raise ValueError(f"port {port} cannot be registered: give the port this instance serves on")
        if heartbeat_interval <= 0 or refresh_interval <= 0 or lease_seconds < 1:
            raise ValueError("heartbeat_interval and refresh_interval must be positive, lease_seconds at least 1")
        self.registry_url = registry_url.rstrip("/")
        self.service, self.instance_id, self.host, self.port = service, instance_id, host, port
        self.metadata = dict(metadata or {})
        self.heartbeat_interval = heartbeat_interval
        self.lease_seconds = lease_seconds
        self.refresh_interval = refresh_interval
        self.lookup_timeout = lookup_timeout
        self.request_timeout = request_timeout
        self._status = "UP"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cache: dict[str, _Entry] = {}
        self._watchers: dict[str, list[Watcher]] = {}
        self._heartbeat_thread: threading.Thread | None = None
        self._refresh_thread: threading.Thread | None = None
        self._registered = False  # the registry acknowledged our registration (and has not forgotten it since)
        self._reachable = True  # for logging only the changes

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts registration and heartbeats (if enabled) and the cache refresh; returns at once."""
        with self._lock:
            if self._stop.is_set():
                return
            if self.register_enabled and self._heartbeat_thread is None:
                self._heartbeat_thread = threading.Thread(
                    target=self._heartbeat_loop, name=f"discovery-heartbeat-{self.instance_id}", daemon=True
                )
                self._heartbeat_thread.start()
        self._ensure_refresher()

    def stop(self, timeout: float = 3.0) -> None:
        """Stops the threads and deregisters, in at most about `timeout` seconds. Safe to call twice."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            threads = [t for t in (self._heartbeat_thread, self._refresh_thread) if t is not None]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic() - 0.5))
        if not self._registered:
            return
        remaining = max(0.5, deadline - time.monotonic())
        try:
            with httpx.Client(timeout=remaining) as client:
                r = client.delete(self._instance_url())
            self._registered = False
            logger.bind(registry_url=self.registry_url, status_code=r.status_code).info(
                "deregistered {}/{} from discovery", self.service, self.instance_id
            )
        except httpx.HTTPError as exc:
            logger.bind(registry_url=self.registry_url, error=str(exc)).warning(
                "could not deregister {}/{}: the registry will evict it", self.service, self.instance_id
            )

    @property
    def registered(self) -> bool:
        """True while the registry has acknowledged this instance (as far as the last heartbeat knows)."""
        return self._registered

    @property
    def status(self) -> str:
        return self._status

    def set_status(self, status: str) -> bool:
        """Sets this instance's status (UP, DOWN, OUT_OF_SERVICE) now; kept for re-registrations.

        Returns whether the registry took it (False when it is down: the next registration carries it)."""
        if status not in STATUSES:
            raise ValueError(f"invalid status {status!r}: use one of {', '.join(STATUSES)}")
        self._status = status
        if not self.register_enabled or not self._registered:
            return False
        try:
            with httpx.Client(timeout=self.request_timeout) as client:
                r = client.put(f"{self._instance_url()}/status", params={"value": status})
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    # -- lookups ---------------------------------------------------------------------------------

    def instances(self, service: str) -> list[Instance]:
        """UP instances of `service` from the cache; the first lookup of a service fetches it (bounded
        by `lookup_timeout`; [] if the registry does not answer, filled in by the background refresh)."""
        with self._lock:
            entry = self._cache.get(service)
        if entry is None:
            entry = self._first_lookup(service)
        return entry.up()

    def watch(self, service: str, callback: Watcher | None = None) -> list[Instance]:
        """Keeps `service` in the refreshed cache; `callback(up_instances)` runs on the refresh thread
        whenever its set of UP instances changes. Returns the UP instances now."""
        if callback is not None:
            with self._lock:
                self._watchers.setdefault(service, []).append(callback)
        return self.instances(service)

    def _first_lookup(self, service: str) -> _Entry:
        entry = _Entry((), None)
        try:
            with httpx.Client(timeout=self.lookup_timeout) as client:
                fetched = self._fetch(client, service, None)
            if fetched is not None:
                entry = fetched
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._unreachable(exc)
        with self._lock:
            # Another thread may have filled it meanwhile; the first answer stays.
            entry = self._cache.setdefault(service, entry)
        self._ensure_refresher()
        return entry

    def _fetch(self, client: httpx.Client, service: str, etag: str | None) -> _Entry | None:
        """The service's instances, or None when unchanged since `etag` (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        r = client.get(f"{self.registry_url}/v1/services/{service}", headers=headers)
        if r.status_code == 304:
            return None
        r.raise_for_status()
        body = r.json()
        instances = tuple(Instance.from_json(i) for i in body["instances"])
        return _Entry(instances, r.headers.get("etag"))

    # -- background threads ----------------------------------------------------------------------

    def _ensure_refresher(self) -> None:
        with self._lock:
            if self._refresh_thread is not None or self._stop.is_set():
                return
            self._refresh_thread = threading.Thread(
                target=self._refresh_loop, name=f"discovery-refresh-{self.instance_id}", daemon=True
            )
            self._refresh_thread.start()

    def _refresh_loop(self) -> None:
        with httpx.Client(timeout=self.request_timeout) as client:
            while not self._stop.wait(self.refresh_interval):
                with self._lock:
                    cached = dict(self._cache)
                for service, entry in cached.items():
                    if self._stop.is_set():
                        return
                    self._refresh(client, service, entry)

    def _refresh(self, client: httpx.Client, service: str, entry: _Entry) -> None:
        try:
            fresh = self._fetch(client, service, entry.etag)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._unreachable(exc)  # keep the last list, as Prometheus does with its SD
            return
        self._reachable_again()
        if fresh is None:
            return
        with self._lock:
            self._cache[service] = fresh
            watchers = list(self._watchers.get(service, ()))
        if watchers and fresh.up() != entry.up():
            for callback in watchers:
                try:
                    callback(fresh.up())
                except Exception:  # a bad callback must not stop the refresh of every service
                    logger.bind(watched_service=service).exception("discovery watch callback failed")

    def _heartbeat_loop(self) -> None:
        failures = 0
        delay = 0.0
        with httpx.Client(timeout=self.request_timeout) as client:
            while not self._stop.wait(delay):
                ok = self._heartbeat(client) if self._registered else self._register(client)
                failures = 0 if ok else failures + 1
                # Retry sooner while failing (0.5 s, doubling), never later than the heartbeat interval.
                delay = self.heartbeat_interval if ok else min(self.heartbeat_interval, 0.5 * 2 ** min(failures, 6))

    def _register(self, client: httpx.Client) -> bool:
        body = {
            "service": self.service,
            "instance_id": self.instance_id,
            "host": self.host,
            "port": self.port,
            "status": self._status,
            "metadata": self.metadata,
            "lease_seconds": self.lease_seconds,
            "heartbeat_interval": self.heartbeat_interval,
        }
        try:
            r = client.post(f"{self.registry_url}/v1/instances", json=body)
        except httpx.HTTPError as exc:
            self._unreachable(exc)
            return False
        self._reachable_again()
        if r.status_code in (200, 201):
            self._registered = True
            logger.bind(registry_url=self.registry_url, instance_id=self.instance_id).info(
                "registered {}/{} with discovery", self.service, self.instance_id
            )
            return True
        logger.bind(registry_url=self.registry_url, status_code=r.status_code, body=r.text[:300]).error(
            "discovery refused the registration of {}/{}", self.service, self.instance_id
        )
        return False

    def _heartbeat(self, client: httpx.Client) -> bool:
        try:
            r = client.put(f"{self._instance_url()}/heartbeat")
        except httpx.HTTPError as exc:
            self._unreachable(exc)
            return False
        self._reachable_again()
        if r.status_code == 404:
            # The registry forgot us (restarted, or evicted us): register again at once, unless stopping,
            # when this would undo the deregistration racing with it.
            self._registered = False
            logger.bind(registry_url=self.registry_url, instance_id=self.instance_id).warning(
                "discovery does not know {}/{}: registering again", self.service, self.instance_id
            )
            return False if self._stop.is_set() else self._register(client)
        return r.status_code == 200

    def _instance_url(self) -> str:
        return f"{self.registry_url}/v1/instances/{self.service}/{self.instance_id}"

    def _unreachable(self, exc: Exception) -> None:
        if self._reachable:
            self._reachable = False
            logger.bind(registry_url=self.registry_url, error=str(exc) or type(exc).__name__).warning(
                "discovery unreachable; retrying in the background"
            )

    def _reachable_again(self) -> None:
        if not self._reachable:
            self._reachable = True
            logger.bind(registry_url=self.registry_url).info("discovery reachable again")
