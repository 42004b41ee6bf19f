"""Our group evaluation offsets equal a real Prometheus 2.42's, for groups from a file path of our choosing.

Prometheus evaluates each group at slots `offset + n * interval`, offset = xxhash64 of {name, file}
modulo the interval. Its /api/v1/rules reports each alert's activeAt, which is the evaluation timestamp
itself (to the nanosecond), and lastEvaluation, the wall clock when that round started (just after the
slot). Both must sit on the grid our `schedule.offset_ns` computes.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from alerting.schedule import offset_ns
from tests.peers import prometheus
from tests.unit.alerting.doubles import go_time_ns

S = 1_000_000_000
GROUPS = {"every-second": 1, "every-three": 3, "Ünïcode group": 2}


def test_offsets_equal_prometheus(tmp_path: Path) -> None:
    rules_file = tmp_path / "rule dir" / "offsets.rules.yml"
    rules_file.parent.mkdir()
    rules_file.write_text(
        "groups:\n"
        + "".join(
            f"  - name: {name!r}\n    interval: {seconds}s\n"
            "    rules:\n      - alert: Always\n        expr: vector(1)\n"
            for name, seconds in GROUPS.items()
        )
    )
    (tmp_path / "prom").mkdir()
    config = f"global:\n  scrape_interval: 1h\nrule_files:\n  - '{rules_file}'\n"
    seen: dict[str, tuple[int, int]] = {}
    with prometheus(config, tmp_path / "prom") as prom, httpx.Client(timeout=5) as http:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(seen) < len(GROUPS):
            for group in http.get(f"{prom}/api/v1/rules").json()["data"]["groups"]:
                (rule,) = group["rules"]
                if rule["alerts"] and not group["lastEvaluation"].startswith("0001-"):  # Go zero: not done
                    assert group["file"] == str(rules_file)
                    seen[group["name"]] = (
                        go_time_ns(rule["alerts"][0]["activeAt"]),
                        go_time_ns(group["lastEvaluation"]),
                    )
            time.sleep(0.2)
    assert set(seen) == set(GROUPS)
    for name, (active_at, last_evaluation) in seen.items():
        interval = GROUPS[name] * S
        offset = offset_ns(name, str(rules_file), GROUPS[name])
        assert active_at % interval == offset, name  # the evaluation timestamp itself: exact
        lag = (last_evaluation - offset) % interval  # the wall clock a little after the slot
        assert lag < interval // 2, (name, lag)
