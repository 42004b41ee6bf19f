"""`obs fault` arguments: key=value parsing and choosing the instances from the state file."""

from __future__ import annotations

import pytest

from obs.faults import fault_targets, parse_assignments
from obs.state import ProcessState, StackState


@pytest.mark.parametrize(
    ("items", "body"),
    [
        (["latency=200"], {"latency_ms": 200}),
        (["latency_ms=200", "jitter=50"], {"latency_ms": 200, "latency_jitter_ms": 50}),
        (["error_rate=0.5", "error_status=503"], {"error_rate": 0.5, "error_status": 503}),
        (["dependency_timeout=true", "crash=0"], {"dependency_timeout": True, "crash": False}),
        (["memory_leak=64"], {"memory_leak_kb_per_s": 64}),
    ],
)
def test_parse(items: list[str], body: dict) -> None:
    assert parse_assignments(items) == body


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("latency", "expected key=value"),
        ("speed=1", "expected key=value"),
        ("latency=fast", "latency_ms must be a number"),
        ("latency=-1", "cannot be negative"),
        ("error_rate=2", "between 0 and 1"),
        ("error_status=200", "400-599"),
        ("crash=maybe", "true or false"),
    ],
)
def test_parse_errors(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_assignments([item])


def _proc(name: str, service: str, port: int | None) -> ProcessState:
    return ProcessState(name, service, name, pid=None, start_ticks=None, port=port, health_url=None, state="healthy")


STATE = StackState(
    supervisor_pid=1,
    supervisor_start_ticks=None,
    phase="running",
    started_at=0.0,
    data_dir="/tmp",
    processes=[
        _proc("collector", "collector", 9095),
        _proc("inventory-1", "inventory", 8002),
        _proc("inventory-2", "inventory", 8003),
        _proc("loadgen", "loadgen", None),
    ],
)


def test_targets_every_instance_or_one() -> None:
    assert [p.name for p in fault_targets(STATE, "inventory", None)] == ["inventory-1", "inventory-2"]
    assert [p.name for p in fault_targets(STATE, "inventory", "inventory-2")] == ["inventory-2"]


def test_unknown_targets_say_what_exists() -> None:
    with pytest.raises(LookupError, match="no service 'orders' in the running stack \\(there are: inventory\\)"):
        fault_targets(STATE, "orders", None)
    with pytest.raises(LookupError, match="inventory has no instance 'inventory-9'"):
        fault_targets(STATE, "inventory", "inventory-9")
