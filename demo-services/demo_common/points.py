"""The seam for pushed business metrics: what a service needs of `agents.MetricsPusher`."""

from __future__ import annotations

from typing import Protocol


class PointWriter(Protocol):
    """Writes one line-protocol point without blocking; integer fields stay integers (`count=1i`)."""

    def write(
        self,
        measurement: str,
        fields: dict[str, float | int | bool | str],
        tags: dict[str, str] | None = None,
        time_ns: int | None = None,
    ) -> object: ...
