"""Registered instances as Prometheus HTTP service discovery target groups (PROTOCOLS.md §3)."""

from __future__ import annotations

import re

from discovery.registry import Instance, Status

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def http_sd_groups(services: dict[str, list[Instance]]) -> list[dict[str, object]]:
    """One group per UP instance, in service then instance order; `[]` when there is none.

    Labels: `service`, `instance_id`, `version` (metadata, when given), `__metrics_path__`
    (metadata `metrics_path`, default /metrics), and every metadata entry as
    `__meta_discovery_metadata_<key>` for relabeling (Prometheus drops `__meta_*` after relabeling).
    """
    groups: list[dict[str, object]] = []
    for members in services.values():
        for inst in members:
            if inst.status != Status.UP:
                continue
            labels = {
                "service": inst.service,
                "instance_id": inst.instance_id,
                "__metrics_path__": inst.metadata.get("metrics_path") or "/metrics",
            }
            if inst.metadata.get("version"):
                labels["version"] = inst.metadata["version"]
            for key, value in sorted(inst.metadata.items()):
                labels[f"__meta_discovery_metadata_{_LABEL_UNSAFE.sub('_', key)}"] = value
            groups.append({"targets": [f"{_host(inst.host)}:{inst.port}"], "labels": labels})
    return groups


def _host(host: str) -> str:
    # An IPv6 literal needs brackets in host:port.
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
