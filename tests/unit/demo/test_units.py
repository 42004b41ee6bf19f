"""Durations and sizes as the demo services' YAML files write them (demo_common.units)."""

from __future__ import annotations

import pytest
from demo_common.units import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(5, 5.0), ("5", 5.0), (0.25, 0.25), ("500ms", 0.5), ("1m30s", 90.0), ("2s", 2.0), ("1h", 3600.0)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 s", "-1", -1, True, "1d"])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [(10, 10), ("64KiB", 65536), ("1MiB", 1048576), ("2KB", 2000)])
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size
