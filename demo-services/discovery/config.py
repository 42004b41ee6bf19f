"""Typed discovery settings: defaults, then a YAML file, then command-line flags; checked once at startup.

Durations are seconds, given as numbers or with a unit (`500ms`, `5s`, `1m`). The file holds the
same keys as `DiscoverySettings`, for example:

    eviction_interval: 5s
    default_lease_seconds: 30
    renewal_window: 60s
    self_preservation:
      enabled: true
      threshold: 0.85
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from demo_common.units import Duration
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(ValueError):
    """The settings are invalid; the message names the key and the reason."""


class SelfPreservation(BaseModel):
    """Eureka's self-preservation: stop evicting while renewals fall below `threshold` of those expected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    threshold: float = Field(0.85, ge=0, le=1)


class DiscoverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8761, ge=1, le=65535)
    instance_id: str = Field("discovery-1", min_length=1)
    eviction_interval: Duration = Field(5.0, gt=0)  # seconds between eviction passes
    default_lease_seconds: int = Field(30, ge=1)  # for registrations that do not give lease_seconds
    renewal_window: Duration = Field(60.0, gt=0)  # seconds over which renewals are counted
    self_preservation: SelfPreservation = SelfPreservation(enabled=True, threshold=0.85)
    log_level: str = "INFO"


def _describe(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{key}: {err['msg']}")
    return f"{source}: " + "; ".join(parts)


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> DiscoverySettings:
    """Settings from defaults, the YAML file at `path` (if any), then `overrides` (dotted keys allowed)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings at the top level")
        data = loaded or {}
    for key, value in (overrides or {}).items():
        target = data
        *parents, last = key.split(".")
        for parent in parents:
            nested = target.get(parent)
            if not isinstance(nested, dict):
                nested = target[parent] = {}
            target = nested
        target[last] = value
    try:
        return DiscoverySettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path) if path is not None else "settings")) from None
