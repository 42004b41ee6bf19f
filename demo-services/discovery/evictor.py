"""The eviction loop: runs the registry's eviction pass on an interval and logs what it did."""

from __future__ import annotations

import asyncio

from loguru import logger

from discovery.registry import EvictionReport, Registry


class Evictor:
    """Calls `Registry.evict` every `interval` seconds; logs evictions and self-preservation changes."""

    def __init__(self, registry: Registry, interval: float) -> None:
        self.registry = registry
        self.interval = interval

    def run_once(self) -> EvictionReport:
        report = self.registry.evict()
        rate = report.rate
        fields = {"renewals": rate.actual, "expected_renewals": rate.expected, "renewal_threshold": rate.threshold}
        if report.entered_self_preservation:
            logger.bind(**fields, expired=report.expired).warning(
                "self-preservation entered: {} renewals in the last window, below the threshold {} "
                "(expected {}); expired instances are kept until renewals recover",
                rate.actual,
                rate.threshold,
                rate.expected,
            )
        elif report.left_self_preservation:
            logger.bind(**fields).info(
                "self-preservation left: {} renewals in the last window (threshold {}); eviction resumes",
                rate.actual,
                rate.threshold,
            )
        elif report.self_preservation and report.expired:
            logger.bind(**fields, expired=report.expired).debug("self-preservation holds expired instances")
        for inst in report.evicted:
            logger.bind(
                # not `service`: the agent binds that to this process's own service name
                instance_service=inst.service,
                instance_id=inst.instance_id,
                last_renewal=inst.last_renewal,
                lease_seconds=inst.lease_seconds,
            ).warning("evicted {}/{}: no heartbeat for {}s", inst.service, inst.instance_id, inst.lease_seconds)
        return report

    async def run(self) -> None:
        """Runs until cancelled; a failing pass is logged and the loop goes on."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.run_once()
            except Exception:  # the loop must outlive a bug in one pass
                logger.exception("eviction pass failed")
