"""Typed gateway settings from gateway.yaml: routes, API keys and their limits, breaker and retry budget.

`load_settings` is called once by the composition root; an invalid file raises `ConfigError` with a
message naming the key (`routes.1.timeout: ...`) so the gateway refuses to start with a clear reason.
Durations are seconds or strings such as `500ms`, `5s`, `1m`; sizes are bytes or `64KiB`, `1MiB`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from demo_common.units import Duration, Size
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
ALL_ROUTES = "*"


class ConfigError(Exception):
    """The gateway configuration is invalid; the message names the key and the reason."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteSettings(_Section):
    """One route: requests whose path starts with `prefix` go to `service`, the prefix replaced."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    prefix: str = Field(pattern=r"^/[^?#]*$")
    service: str = Field(min_length=1)
    # Replaces `prefix` in the upstream path: `/api/orders/7` with upstream_prefix `/orders` -> `/orders/7`.
    upstream_prefix: str = Field(default="", pattern=r"^(/[^?#]*)?$")
    balancer: Literal["round_robin", "least_outstanding"] = "round_robin"
    # The whole request, retries included, must answer (headers) within `timeout`, or the client gets 504.
    timeout: Duration = Field(default=10.0, gt=0)
    # One attempt may take this long before it is abandoned (and retried if allowed); 0 means `timeout`.
    per_try_timeout: Duration = 0.0
    # Further attempts after the first, each on an instance not tried yet for this request.
    retries: int = Field(default=2, ge=0, le=10)
    retry_on_status: list[int] = [500, 502, 503, 504]
    # POST and PATCH are retried only when the route says the upstream makes them safe to repeat.
    retry_non_idempotent: bool = False
    # 0: the gateway-wide `max_body_bytes`.
    max_body_bytes: Size = 0

    @model_validator(mode="after")
    def _check(self) -> RouteSettings:
        if self.prefix != "/" and self.prefix.endswith("/"):
            raise ValueError(f"prefix {self.prefix!r} must not end with '/'")
        if self.upstream_prefix.endswith("/"):
            raise ValueError(f"upstream_prefix {self.upstream_prefix!r} must not end with '/'")
        if self.per_try_timeout > self.timeout:
            raise ValueError(f"per_try_timeout ({self.per_try_timeout}s) exceeds timeout ({self.timeout}s)")
        return self

    def methods_retried(self) -> frozenset[str]:
        return IDEMPOTENT_METHODS | {"POST", "PATCH"} if self.retry_non_idempotent else IDEMPOTENT_METHODS


class KeySettings(_Section):
    """An API key: its `name` is what logs and metrics show (never the secret), `routes` what it may call."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    key: str = Field(min_length=8)
    # Route names, or "*" for every route.
    routes: list[str] = [ALL_ROUTES]
    # Token bucket: `rate` requests per second on average, bursts of up to `burst`.
    rate: float = Field(default=50.0, gt=0)
    burst: int = Field(default=100, ge=1)


class BreakerSettings(_Section):
    """Per-instance circuit breaker: when it opens, how long it stays open, how it probes."""

    consecutive_failures: int = Field(default=5, ge=1)
    # Opens when at least `min_requests` outcomes in the last `window` seconds failed at this ratio or more.
    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=20, ge=1)
    window: Duration = Field(default=10.0, gt=0)
    open_for: Duration = Field(default=5.0, gt=0)
    # Requests let through at once while half-open; that many successes close the breaker again.
    half_open_probes: int = Field(default=1, ge=1)


class RetryBudgetSettings(_Section):
    """Retries allowed: `ratio` of the requests in the last `window` seconds plus `min_per_second`."""

    ratio: float = Field(default=0.2, ge=0, le=1)
    min_per_second: float = Field(default=3.0, ge=0)
    window: Duration = Field(default=10.0, ge=1)


class GatewaySettings(_Section):
    routes: list[RouteSettings]
    keys: list[KeySettings] = []
    max_body_bytes: Size = 1024 * 1024
    breaker: BreakerSettings = BreakerSettings()
    retry_budget: RetryBudgetSettings = RetryBudgetSettings()
    # Instances used when discovery is disabled (OBS_REGISTRY_URL empty): service -> base URLs.
    static_instances: dict[str, list[str]] = {}
    # Upstream connections open at once, all instances together; requests past it wait for one (within
    # their timeout).
    max_connections: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _check(self) -> GatewaySettings:
        _unique("routes", [r.name for r in self.routes], "name")
        _unique("routes", [r.prefix for r in self.routes], "prefix")
        _unique("keys", [k.name for k in self.keys], "name")
        _unique("keys", [k.key for k in self.keys], "key")
        names = {r.name for r in self.routes}
        for i, key in enumerate(self.keys):
            unknown = [r for r in key.routes if r != ALL_ROUTES and r not in names]
            if unknown:
                raise ValueError(f"keys.{i}.routes: unknown route(s) {unknown}; routes are {sorted(names)}")
        for service, urls in self.static_instances.items():
            for url in urls:
                if not re.fullmatch(r"https?://[^/\s]+", url):
                    raise ValueError(f"static_instances.{service}: {url!r} is not a base URL like http://host:port")
        return self

    def body_limit(self, route: RouteSettings) -> int:
        return route.max_body_bytes or self.max_body_bytes


def _unique(section: str, values: list[str], field: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{section}.{i}.{field}: duplicate {value!r}")
        seen.add(value)


def parse_settings(data: object, source: str = "gateway config") -> GatewaySettings:
    """Settings from already-parsed YAML, or ConfigError naming every bad key."""
    try:
        return GatewaySettings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_settings(path: Path) -> GatewaySettings:
    """Read and check a gateway YAML file."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_settings(data, str(path))


def default_config_path() -> Path:
    return Path(__file__).resolve().parent / "gateway.yaml"
