"""Outcomes of the load generator's requests: latency percentiles, rates, and errors by kind."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

SATURATED = "saturated"  # a scheduled request not sent because `concurrency` requests were in flight


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values sorted ascending; NaN when there are none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Tally:
    """Outcomes of a set of requests. Latencies in seconds; `errors` maps a kind (status or transport) to a count."""

    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def done(self) -> int:
        return self.ok + sum(self.errors.values())

    @property
    def error_ratio(self) -> float:
        return sum(self.errors.values()) / self.done if self.done else 0.0

    def add(self, latency_s: float | None, error: str | None) -> None:
        if latency_s is not None:
            self.latencies.append(latency_s)
        if error is None:
            self.ok += 1
        else:
            self.errors[error] += 1

    def quantiles_ms(self) -> tuple[float, float, float]:
        values = sorted(self.latencies)
        return (percentile(values, 50) * 1000, percentile(values, 95) * 1000, percentile(values, 99) * 1000)


def error_kind(status: int | None, exception: BaseException | None = None) -> str | None:
    """None for a success (status below 400), else the status (`"502"`) or the transport error's kind."""
    if exception is not None:
        name = type(exception).__name__
        if "Timeout" in name:
            return "timeout"
        if "Connect" in name:
            return "connect"
        return name
    if status is None or status >= 400:
        return str(status)
    return None


@dataclass
class LoadStats:
    """Everything so far (`total`, `by_scenario`) and the window since the last progress line."""

    total: Tally = field(default_factory=Tally)
    window: Tally = field(default_factory=Tally)
    by_scenario: dict[str, Tally] = field(default_factory=dict)
    sent: int = 0

    def record(self, scenario: str, latency_s: float | None, error: str | None) -> None:
        for tally in (self.total, self.window, self.by_scenario.setdefault(scenario, Tally())):
            tally.add(latency_s, error)

    def take_window(self) -> Tally:
        window, self.window = self.window, Tally()
        return window


def format_errors(tally: Tally) -> str:
    if not tally.errors:
        return "none"
    kinds = " ".join(f"{kind}={n}" for kind, n in sorted(tally.errors.items()))
    return f"{tally.error_ratio:.1%} ({kinds})"


def format_latency(tally: Tally) -> str:
    p50, p95, p99 = tally.quantiles_ms()
    if math.isnan(p50):
        return "p50=- p95=- p99=-"
    return f"p50={p50:.1f}ms p95={p95:.1f}ms p99={p99:.1f}ms"


def progress_line(elapsed_s: float, window: Tally, window_s: float, stats: LoadStats, in_flight: int) -> str:
    rate = window.done / window_s if window_s > 0 else 0.0
    return (
        f"[{elapsed_s:6.1f}s] rate={rate:.1f}/s {format_latency(window)} errors={format_errors(window)}"
        f" | total sent={stats.sent} done={stats.total.done} in-flight={in_flight}"
    )


def summary(stats: LoadStats, elapsed_s: float) -> str:
    total = stats.total
    lines = [
        "loadgen summary",
        f"  duration  {elapsed_s:.1f}s, sent {stats.sent}, done {total.done}, "
        f"achieved {total.done / elapsed_s if elapsed_s > 0 else 0:.2f} req/s",
        f"  latency   {format_latency(total)}",
        f"  errors    {format_errors(total)}",
    ]
    for name, tally in sorted(stats.by_scenario.items()):
        lines.append(
            f"  {name:<9} done={tally.done} ok={tally.ok} {format_latency(tally)} errors={format_errors(tally)}"
        )
    return "\n".join(lines)
