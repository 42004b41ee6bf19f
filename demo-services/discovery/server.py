"""The composition root: builds the registry, the HTTP app, its metrics and the agent that instruments it."""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

import agents
from discovery.app import create_app, serve_metrics
from discovery.config import DiscoverySettings
from discovery.metrics import RegistryCollector
from discovery.registry import Clock, Registry

VERSION = "0.1.0"


def build_registry(settings: DiscoverySettings, clock: Clock = time.time) -> Registry:
    return Registry(
        clock=clock,
        default_lease_seconds=settings.default_lease_seconds,
        renewal_window=settings.renewal_window,
        self_preservation_threshold=settings.self_preservation.threshold,
        self_preservation_enabled=settings.self_preservation.enabled,
        # Versions start at the start time in milliseconds, so a restarted registry never reuses a
        # version (an ETag) that a client cached from the previous process.
        initial_version=int(clock() * 1000),
    )


def build_app(settings: DiscoverySettings, *, instrument: bool = True) -> FastAPI:
    """The discovery service; `instrument=False` leaves out the agent (in-process tests: it installs
    process-wide logging and tracing)."""
    registry = build_registry(settings)
    app = create_app(registry, eviction_interval=settings.eviction_interval)
    collector = RegistryCollector(registry)
    agent = _instrument(app, settings) if instrument else None
    if agent is not None:
        agent.registry.register(collector)  # the agent serves /metrics from its registry
    else:
        metrics = CollectorRegistry()
        metrics.register(collector)
        serve_metrics(app, metrics)
    return app


def _instrument(app: FastAPI, settings: DiscoverySettings) -> agents.Agent:
    # registry_url="" turns the agent's discovery client off: the registry neither registers with
    # itself nor looks anything up.
    return agents.instrument(
        app, service="discovery", version=VERSION, port=settings.port, instance_id=settings.instance_id, registry_url=""
    )
