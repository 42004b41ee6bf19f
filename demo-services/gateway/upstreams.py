"""Where upstream instances come from: the small seam the proxy needs, and a static source for no-discovery runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit


class Instance(Protocol):
    """What the proxy needs of an instance (agents.Instance has both)."""

    @property
    def instance_id(self) -> str: ...

    @property
    def base_url(self) -> str: ...


class InstanceSource(Protocol):
    """The instances of a service that are UP now. Called on every request attempt, so it must answer from
    memory (agents.DiscoveryClient answers from its cache)."""

    def instances(self, service: str) -> Sequence[Instance]: ...


@dataclass(frozen=True)
class StaticInstance:
    instance_id: str
    base_url: str


class StaticInstances:
    """Fixed instances per service, from `static_instances` in gateway.yaml (discovery disabled)."""

    def __init__(self, urls: Mapping[str, Sequence[str]]) -> None:
        self._instances = {
            service: [StaticInstance(f"{service}@{urlsplit(url).netloc}", url.rstrip("/")) for url in service_urls]
            for service, service_urls in urls.items()
        }

    def instances(self, service: str) -> Sequence[Instance]:
        return self._instances.get(service, [])
