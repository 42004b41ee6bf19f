"""When a rule group evaluates: Prometheus' slotted evaluation timestamps and its missed-iteration count.

Prometheus (rules/group.go) spreads groups over their interval by a per-group offset, the xxhash64 of the
label set {name=<group>, file=<file>} modulo the interval in nanoseconds, so that a group evaluates at the
same phase on every server and after every restart. Times here are Unix seconds (floats) at the edges and
integer nanoseconds inside, as Prometheus computes them, so that the offset is exact.
"""

from __future__ import annotations

import xxhash

_SEP = b"\xff"  # Prometheus' label separator (labels.seps)


def group_hash(name: str, file: str) -> int:
    """Prometheus' `labels.New({name=<name>}, {file=<file>}).Hash()`: labels sorted by name (file < name)."""
    data = b"file" + _SEP + file.encode() + _SEP + b"name" + _SEP + name.encode() + _SEP
    return xxhash.xxh64_intdigest(data)


def interval_ns(interval_s: float) -> int:
    return round(interval_s * 1e9)


def offset_ns(name: str, file: str, interval_s: float) -> int:
    """The group's phase within its interval, in nanoseconds (0 <= offset < interval)."""
    return group_hash(name, file) % interval_ns(interval_s)


def eval_timestamp_ns(start_ns: int, interval: int, offset: int) -> int:
    """The slot at or before `start_ns` (all nanoseconds): Group.EvalTimestamp."""
    adj = start_ns - offset
    return adj - adj % interval + offset


def eval_timestamp(start: float, interval_s: float, offset_s: float) -> float:
    """The slot at or before `start` (Unix seconds) for a group with this interval and offset (seconds)."""
    return eval_timestamp_ns(round(start * 1e9), interval_ns(interval_s), round(offset_s * 1e9)) / 1e9


def next_slot(previous_ns: int, now_ns: int, interval: int) -> tuple[int, int]:
    """(next evaluation timestamp, iterations missed) after a tick at `now_ns`, as Group.run does.

    Prometheus computes missed = (now - previous) / interval - 1 (integer division) and jumps over the
    missed slots instead of running them late; they are counted in prometheus_rule_group_iterations_missed_total.
    """
    missed = max((now_ns - previous_ns) // interval - 1, 0)
    return previous_ns + (missed + 1) * interval, missed
