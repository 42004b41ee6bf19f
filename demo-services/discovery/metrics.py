"""The registry's Prometheus metrics, read from the `Registry` at scrape time (a custom collector).

Reading at scrape time keeps the gauges exact: a service that disappears loses its series instead of
keeping a stale last value, and the registry stays free of any metrics library.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from discovery.registry import Registry, Status


class RegistryCollector(Collector):
    """`discovery_*` metrics; register it in the CollectorRegistry that serves /metrics."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        version, services = self._registry.snapshot()
        instances = GaugeMetricFamily(
            "discovery_instances", "Registered instances by service and status.", labels=["service", "status"]
        )
        for service, members in services.items():
            for status in Status:
                count = sum(1 for i in members if i.status == status)
                instances.add_metric([service, status.value], count)
        yield instances
        stats = self._registry.stats()
        for name, help_text, counts in (
            ("discovery_registrations", "Registrations (re-registrations included) by service.", stats.registrations),
            ("discovery_renewals", "Heartbeats that renewed a lease, by service.", stats.renewals),
            ("discovery_deregistrations", "Instances removed by their own request, by service.", stats.deregistrations),
            ("discovery_evictions", "Instances evicted after missing heartbeats, by service.", stats.evictions),
        ):
            family = CounterMetricFamily(name, help_text, labels=["service"])
            for service, count in sorted(counts.items()):
                family.add_metric([service], count)
            yield family
        rate = self._registry.renewal_rate()
        yield GaugeMetricFamily(
            "discovery_self_preservation_active",
            "1 while self-preservation holds expired instances instead of evicting them.",
            value=1 if self._registry.self_preservation_active else 0,
        )
        yield GaugeMetricFamily(
            "discovery_self_preservation_enabled",
            "1 when self-preservation is configured on.",
            value=1 if self._registry.self_preservation_enabled else 0,
        )
        yield GaugeMetricFamily(
            "discovery_renewals_last_window", "Heartbeats received in the last renewal window.", value=rate.actual
        )
        yield GaugeMetricFamily(
            "discovery_renewals_expected_last_window",
            "Heartbeats the registered instances should have sent in the last renewal window.",
            value=rate.expected,
        )
        yield GaugeMetricFamily(
            "discovery_renewals_threshold",
            "Below this many heartbeats per window, self-preservation stops eviction.",
            value=rate.threshold,
        )
        yield GaugeMetricFamily(
            "discovery_registry_version", "The registry's change version (the ETag of lookups).", value=version
        )
