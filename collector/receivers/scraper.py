"""Pulls Prometheus metrics: scrape jobs with static targets and HTTP service discovery.

Behaves as Prometheus does for what a user sees in the data: `job` and `instance` labels, the
synthetic series `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
`scrape_samples_post_metric_relabeling` and `scrape_series_added`, `honor_labels`, stale markers
when a series disappears from a scrape, a scrape fails or a target goes away, the same `Accept`
header and gzip, a start jittered per target, and a bound on scrapes running at once. HTTP SD lists
are refreshed on their interval and the last good list is kept when a refresh fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

from collector.codecs.prom_text import ExpositionError, SeriesCache, parse, to_batch
from collector.config import RelabelConfig, ScrapeJob, ScrapeSettings
from collector.model import MetricBatch, series_fingerprint
from collector.receivers.relabel import relabel

log = logging.getLogger("observatory.scraper")

STALE_NAN = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]
# What Prometheus 2.x asks for: OpenMetrics first, then the classic text format.
ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
_SYNTHETIC = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)

Write = Callable[[MetricBatch], Awaitable[None]]


@dataclass(frozen=True)
class Target:
    url: str
    labels: tuple[tuple[str, str], ...]  # job, instance and the target's own labels, sorted
    # The labels before relabelling (`__address__`, `__scheme__`, ...), shown by /api/v1/targets.
    discovered: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def make_targets(job: ScrapeJob, groups: list[tuple[list[str], dict[str, str]]]) -> list[Target]:
    """Targets of a job from (addresses, labels) groups, as static_configs and HTTP SD give them.

    As Prometheus does: `job_name`, the address, scheme and metrics path join the group's labels as `job`,
    `__address__`, `__scheme__` and `__metrics_path__` (a group's own value wins), `relabel_configs` run
    over that set (a dropped set, or one left without an address, is not scraped), the URL is built from
    the relabelled `__` labels, `instance` defaults to `__address__`, and the `__`-prefixed labels go.
    """
    out = []
    for addresses, group_labels in groups:
        for address in addresses:
            labels = {
                "job": job.job_name,
                "__scheme__": job.scheme,
                "__metrics_path__": job.metrics_path,
                **group_labels,
                "__address__": address,
            }
            relabelled = relabel(labels, job.relabel_configs)
            if relabelled is None or not relabelled.get("__address__"):
                continue
            address = relabelled["__address__"]
            scheme = relabelled.get("__scheme__", job.scheme)
            path = relabelled.get("__metrics_path__", job.metrics_path)
            final = {k: v for k, v in relabelled.items() if not k.startswith("__")}
            final.setdefault("instance", address)
            discovered = tuple(sorted(labels.items()))
            out.append(Target(f"{scheme}://{address}{path}", tuple(sorted(final.items())), discovered))
    return out


class MetricNameDropped(Exception):
    """metric_relabel_configs left a series without `__name__`: Prometheus fails the whole scrape then."""


def relabel_batch(batch: MetricBatch, configs: Sequence[RelabelConfig]) -> MetricBatch:
    """The batch with `metric_relabel_configs` applied to each series; samples and exemplars of a dropped
    series go with it. Raises MetricNameDropped."""
    new_fp: dict[int, int | None] = {}
    out = MetricBatch(metadata=batch.metadata)
    for fp, labels in batch.series.items():
        kept = relabel(labels, configs)
        if kept is not None and "__name__" not in kept:
            raise MetricNameDropped(f"metric_relabel_configs removed __name__ from {labels.get('__name__', '')!r}")
        if kept is None:
            new_fp[fp] = None
        else:
            new_fp[fp] = kept_fp = series_fingerprint(kept)
            out.series.setdefault(kept_fp, dict(sorted(kept.items())))
    for fp, ts, value in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True):
        target = new_fp[fp]
        if target is not None:
            out.fingerprint.append(target)
            out.timestamp_ms.append(ts)
            out.value.append(value)
    offsets, keys, values = batch.ex_labels.offsets, batch.ex_labels.keys, batch.ex_labels.values
    for i, fp in enumerate(batch.ex_fingerprint):
        target = new_fp[fp]
        if target is not None:
            lo, hi = offsets[i], offsets[i + 1]
            out.add_exemplar(
                target,
                batch.ex_timestamp_ms[i],
                batch.ex_value[i],
                batch.ex_trace_id[i],
                batch.ex_span_id[i],
                dict(zip(keys[lo:hi], values[lo:hi], strict=True)),
            )
    return out


def parse_sd(payload: object) -> list[tuple[list[str], dict[str, str]]]:
    """An HTTP SD answer: [{"targets": ["host:port", ...], "labels": {...}}, ...]. Raises ValueError."""
    if not isinstance(payload, list):
        raise ValueError("HTTP SD answer must be a JSON array")
    groups = []
    for i, group in enumerate(payload):
        if not isinstance(group, dict) or not isinstance(group.get("targets"), list):
            raise ValueError(f"HTTP SD group {i} needs a `targets` list")
        labels = group.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError(f"HTTP SD group {i}: `labels` must map strings to strings")
        groups.append(([str(t) for t in group["targets"]], dict(labels)))
    return groups


@dataclass
class _TargetState:
    task: asyncio.Task[None]
    job_name: str = ""  # not read from the labels: relabel_configs may change `job`
    last_series: dict[int, dict[str, str]] = field(default_factory=dict)
    health: str = "unknown"  # "up" or "down" after the first scrape, as Prometheus reports it
    last_error: str = ""
    last_scrape_s: float = 0.0  # Unix seconds; 0 before the first scrape
    last_duration_s: float = 0.0
    cache: SeriesCache = field(default_factory=SeriesCache)  # series text -> parsed labels, scrape to scrape


@dataclass(frozen=True)
class TargetStatus:
    """A target as /api/v1/targets shows it: what was discovered and how its last scrape went."""

    job: ScrapeJob
    target: Target
    health: str
    last_error: str
    last_scrape_s: float
    last_duration_s: float


class Scraper:
    def __init__(self, settings: ScrapeSettings, write: Write) -> None:
        self._settings = settings
        self._write = write
        self._limit = asyncio.Semaphore(settings.max_concurrent)
        # One kept-alive connection per target between scrapes, as Prometheus keeps them: httpx's default
        # pool keeps only 20 idle ones and 5 s, so most targets would pay a new connection every scrape.
        longest = max((job.scrape_interval for job in settings.jobs), default=60.0)
        limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=None, keepalive_expiry=min(300.0, 2 * longest)
        )
        self._client = httpx.AsyncClient(follow_redirects=True, headers={"Accept": ACCEPT}, limits=limits)
        self._tasks: list[asyncio.Task[None]] = []
        self._targets: dict[Target, _TargetState] = {}

    def start(self) -> None:
        for job in self._settings.jobs:
            self._tasks.append(asyncio.get_running_loop().create_task(self._job(job), name=f"job-{job.job_name}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for state in self._targets.values():
            state.task.cancel()
        await asyncio.gather(*self._tasks, *(s.task for s in self._targets.values()), return_exceptions=True)
        await self._client.aclose()

    def targets(self) -> list[Target]:
        return list(self._targets)

    def target_statuses(self) -> list[TargetStatus]:
        jobs = {job.job_name: job for job in self._settings.jobs}
        return [
            TargetStatus(jobs[s.job_name], t, s.health, s.last_error, s.last_scrape_s, s.last_duration_s)
            for t, s in self._targets.items()
        ]

    async def _job(self, job: ScrapeJob) -> None:
        static = [(g.targets, dict(g.labels)) for g in job.static_configs]
        sd_groups: dict[str, list[tuple[list[str], dict[str, str]]]] = {}
        refresh = min((sd.refresh_interval for sd in job.http_sd_configs), default=0.0)
        while True:
            for sd in job.http_sd_configs:
                try:
                    r = await self._client.get(
                        sd.url, headers={"X-Prometheus-Refresh-Interval-Seconds": f"{sd.refresh_interval:g}"}
                    )
                    r.raise_for_status()
                    sd_groups[sd.url] = parse_sd(r.json())
                except (httpx.HTTPError, ValueError) as exc:  # keep the last good list
                    log.warning(
                        "job %s: HTTP SD %s failed, keeping %d groups: %s",
                        job.job_name,
                        sd.url,
                        len(sd_groups.get(sd.url, [])),
                        exc,
                    )
            groups = static + [g for gs in sd_groups.values() for g in gs]
            await self._reconcile(job, make_targets(job, groups))
            if not refresh:
                return
            await asyncio.sleep(refresh)

    async def _reconcile(self, job: ScrapeJob, wanted: list[Target]) -> None:
        mine = {t for t, s in self._targets.items() if s.job_name == job.job_name}
        for target in mine - set(wanted):
            state = self._targets.pop(target)
            state.task.cancel()
            await asyncio.gather(state.task, return_exceptions=True)
            # A target that went away: its series end now, the synthetic ones too, as in Prometheus.
            labels = target.label_dict
            synthetic = {i: {**labels, "__name__": name} for i, name in enumerate(_SYNTHETIC)}
            await self._write_stale([*state.last_series.values(), *synthetic.values()], int(time.time() * 1000))
        for target in wanted:
            if target not in self._targets:
                task = asyncio.get_running_loop().create_task(self._loop(job, target))
                self._targets[target] = _TargetState(task=task, job_name=job.job_name)

    async def _loop(self, job: ScrapeJob, target: Target) -> None:
        interval = job.scrape_interval
        # Spread targets over the interval, the same offset for a target every time (Prometheus does too).
        offset = int.from_bytes(hashlib.blake2b(target.url.encode(), digest_size=8).digest(), "little")
        await asyncio.sleep((offset % 1000) / 1000 * interval)
        next_at = time.monotonic()
        while True:
            async with self._limit:
                try:
                    await self._scrape(job, target)
                except Exception:  # a store error must not end the target's scraping for good
                    log.exception("job %s: writing the scrape of %s failed", job.job_name, target.url)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _scrape(self, job: ScrapeJob, target: Target) -> None:
        state = self._targets.get(target)
        if state is None:
            return
        started = time.monotonic()
        scrape_ms = int(time.time() * 1000)
        labels = target.label_dict
        batch: MetricBatch | None = None
        samples = 0
        error = ""
        try:
            r = await self._client.get(
                target.url,
                timeout=job.scrape_timeout,
                headers={"X-Prometheus-Scrape-Timeout-Seconds": f"{job.scrape_timeout:g}"},
            )
            if r.status_code != 200:
                raise httpx.HTTPStatusError(
                    f"server returned HTTP status {r.status_code}", request=r.request, response=r
                )
            exposition = parse(r.content, r.headers.get("content-type", ""), state.cache)
            samples = len(exposition.samples)
            batch = to_batch(exposition, labels, scrape_ms, job.honor_labels, state.cache)
            state.cache.trim(samples)
            if job.metric_relabel_configs:
                batch = relabel_batch(batch, job.metric_relabel_configs)
        except (httpx.HTTPError, ExpositionError, MetricNameDropped) as exc:
            log.info("scrape of %s failed: %s", target.url, exc)
            error = str(exc) or type(exc).__name__
        duration = time.monotonic() - started
        state.health, state.last_error = ("down", error) if batch is None else ("up", "")
        state.last_scrape_s, state.last_duration_s = scrape_ms / 1000, duration
        out = MetricBatch() if batch is None else batch
        current = {} if batch is None else dict(batch.series)
        added = sum(1 for fp in current if fp not in state.last_series)
        for fp, series in state.last_series.items():
            if fp not in current:
                out.add_sample(series, scrape_ms, STALE_NAN)
        state.last_series = current
        # A scrape that succeeded with no samples (or none left after metric relabelling) is still up.
        up, kept = (0.0, 0) if batch is None else (1.0, len(batch))
        for name, value in zip(_SYNTHETIC, (up, duration, samples, kept, added), strict=True):
            out.add_sample({**labels, "__name__": name}, scrape_ms, float(value))
        await self._write(out)

    async def _write_stale(self, series: list[dict[str, str]], at_ms: int) -> None:
        batch = MetricBatch()
        for labels in series:
            batch.add_sample(labels, at_ms, STALE_NAN)
        await self._write(batch)
