"""The gateway's own Prometheus metrics (upstream calls, retries, breakers, rate limits, auth failures)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.breaker import State

# Upstream latencies of a demo shop: a few milliseconds to the longest route timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _CircuitStateCollector(Collector):
    """`gateway_circuit_state` read at scrape time, so an open breaker past its cool-down shows half-open
    without waiting for a request, and instances that left discovery disappear."""

    def __init__(self, states: Callable[[], Iterable[tuple[str, str, State]]]) -> None:
        self._states = states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gateway_circuit_state",
            "Circuit breaker state per upstream instance: 0 closed, 1 half-open, 2 open.",
            labels=["service", "instance"],
        )
        for service, instance, state in self._states():
            family.add_metric([service, instance], float(state.value))
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing without collecting keeps registration from reading the breakers.
        yield GaugeMetricFamily("gateway_circuit_state", "", labels=["service", "instance"])


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry, circuit_states: Callable[[], Iterable[tuple[str, str, State]]]):
        self.upstream_requests = Counter(
            "gateway_upstream_requests",
            "Attempts sent to upstream instances, by HTTP status or error (connect_error, timeout, reset).",
            ["service", "instance", "status"],
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds",
            "Seconds from sending an attempt to its response headers (or its failure).",
            ["service", "instance"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "gateway_retries", "Retries sent, by what failed before them.", ["service", "reason"], registry=registry
        )
        self.retry_budget_exhausted = Counter(
            "gateway_retry_budget_exhausted", "Retries not sent because the retry budget was spent.", registry=registry
        )
        self.rate_limited = Counter(
            "gateway_rate_limited", "Requests refused with 429, by API key name.", ["key"], registry=registry
        )
        self.auth_failures = Counter(
            "gateway_auth_failures",
            "Requests refused by authentication (missing, invalid) or authorisation (forbidden).",
            ["reason"],
            registry=registry,
        )
        registry.register(_CircuitStateCollector(circuit_states))
