"""`obs fault`: parse `key=value` fault settings and PUT them to a service's instances' `/admin/faults`.

The services' contract (demo_common/faults.py): PUT replaces the whole setting (keys left out take their
defaults) and DELETE resets it, also giving back leaked memory; `--clear` sends DELETE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from obs.state import ProcessState, StackState, is_alive

# Wire field -> its type; short names (latency=200) are accepted for the *_ms / *_kb_per_s ones.
FAULT_FIELDS: dict[str, type] = {
    "latency_ms": int,
    "latency_jitter_ms": int,
    "error_rate": float,
    "error_status": int,
    "dependency_timeout": bool,
    "crash": bool,
    "memory_leak_kb_per_s": int,
}
_ALIASES = {
    "latency": "latency_ms",
    "latency_jitter": "latency_jitter_ms",
    "jitter": "latency_jitter_ms",
    "memory_leak": "memory_leak_kb_per_s",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """`["latency=200", "error_rate=0.5"]` -> `{"latency_ms": 200, "error_rate": 0.5}`. Raises ValueError."""
    body: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = _ALIASES.get(key.strip(), key.strip())
        if not sep or key not in FAULT_FIELDS:
            known = ", ".join([*FAULT_FIELDS, *_ALIASES])
            raise ValueError(f"{item!r}: expected key=value with key one of {known}")
        kind, raw = FAULT_FIELDS[key], raw.strip()
        if kind is bool:
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError(f"{item!r}: {key} is true or false")
            body[key] = raw.lower() in _TRUE
            continue
        try:
            number = float(raw) if kind is float else int(raw)
        except ValueError:
            raise ValueError(f"{item!r}: {key} must be a number") from None
        if number < 0:
            raise ValueError(f"{item!r}: {key} cannot be negative")
        if key == "error_rate" and number > 1:
            raise ValueError(f"{item!r}: error_rate is a fraction between 0 and 1")
        if key == "error_status" and not 400 <= number <= 599:
            raise ValueError(f"{item!r}: error_status must be an HTTP error status (400-599)")
        body[key] = number
    return body


def fault_targets(state: StackState, service: str, instance_id: str | None) -> list[ProcessState]:
    """The running instances of `service` (or the one with `instance_id`). Raises LookupError with what exists."""
    procs = [p for p in state.processes if p.service == service and p.port is not None]
    if not procs:
        names = sorted({p.service for p in state.processes if p.port is not None and p.service != "collector"})
        raise LookupError(f"no service {service!r} in the running stack (there are: {', '.join(names)})")
    if instance_id is not None:
        procs = [p for p in procs if p.instance_id == instance_id]
        if not procs:
            raise LookupError(f"{service} has no instance {instance_id!r}")
    return procs


@dataclass(frozen=True)
class FaultResult:
    instance_id: str
    url: str
    ok: bool
    detail: str


def send_faults(targets: list[ProcessState], body: dict[str, Any] | None, timeout: float = 5.0) -> list[FaultResult]:
    """PUT the body (None: DELETE, a reset) to each target's /admin/faults; one result per target, never raising."""
    results = []
    with httpx.Client(timeout=timeout) as client:
        for p in targets:
            url = f"http://127.0.0.1:{p.port}/admin/faults"
            if not is_alive(p.pid, p.start_ticks):
                results.append(FaultResult(p.instance_id, url, False, f"not running (state {p.state})"))
                continue
            try:
                resp = client.put(url, json=body) if body is not None else client.delete(url)
            except httpx.HTTPError as exc:
                results.append(FaultResult(p.instance_id, url, False, f"{type(exc).__name__}: {exc}"))
                continue
            results.append(FaultResult(p.instance_id, url, resp.is_success, f"{resp.status_code} {resp.text[:300]}"))
    return results
