"""Fault injection: the settings' validation, and the middleware applied to a real FastAPI app in process."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from demo_common.faults import FaultConfig, FaultInjector, FaultMiddleware, fault_router
from fastapi import FastAPI
from pydantic import ValidationError


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"latency_ms": 250, "latency_jitter_ms": 100},
        {"error_rate": 1.0, "error_status": 503},
        {"error_rate": 0.0, "error_status": 400},
        {"dependency_timeout": True, "crash": True, "memory_leak_kb_per_s": 512},
    ],
)
def test_valid_faults(fields: dict[str, Any]) -> None:
    assert FaultConfig.model_validate(fields).model_dump(exclude_unset=True) == fields


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": 60_001}, "latency_ms"),
        ({"latency_jitter_ms": -5}, "latency_jitter_ms"),
        ({"error_rate": 1.01}, "error_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"error_status": 200}, "error_status"),
        ({"error_status": 600}, "error_status"),
        ({"memory_leak_kb_per_s": -1}, "memory_leak_kb_per_s"),
        ({"crash": "sometimes"}, "crash"),
        ({"latency": 10}, "latency"),  # unknown fields are refused, not ignored
    ],
)
def test_invalid_faults_name_the_field(fields: dict[str, Any], bad_field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FaultConfig.model_validate(fields)
    assert [e["loc"] for e in caught.value.errors()] == [(bad_field,)]


@pytest.mark.parametrize(("latency", "jitter"), [(0, 0), (100, 0), (100, 50), (0, 20)])
def test_delay_stays_within_latency_plus_jitter(latency: int, jitter: int) -> None:
    injector = FaultInjector("t", rng=random.Random(3))
    injector.config = FaultConfig(latency_ms=latency, latency_jitter_ms=jitter)
    delays = [injector.delay_seconds() for _ in range(200)]
    assert all(latency / 1000 <= d <= (latency + jitter) / 1000 for d in delays)
    assert (max(delays) > min(delays)) == (jitter > 0)


def make_app(injector: FaultInjector) -> FastAPI:
    app = FastAPI()
    app.add_middleware(FaultMiddleware, injector=injector)
    app.include_router(fault_router(injector))

    @app.get("/work")
    async def work() -> dict[str, str]:
        return {"done": "yes"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def _requests(injector: FaultInjector, calls: list[tuple[str, str, Any]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=make_app(injector))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return [await client.request(method, path, json=body) for method, path, body in calls]


def test_admin_api_sets_shows_and_resets_faults() -> None:
    injector = FaultInjector("svc")
    put, get, bad, delete, after = asyncio.run(
        _requests(
            injector,
            [
                ("PUT", "/admin/faults", {"error_rate": 1.0, "error_status": 503}),
                ("GET", "/admin/faults", None),
                ("PUT", "/admin/faults", {"error_rate": 2}),
                ("DELETE", "/admin/faults", None),
                ("GET", "/admin/faults", None),
            ],
        )
    )
    assert put.status_code == 200 and put.json()["error_status"] == 503
    assert get.json() == FaultConfig(error_rate=1.0, error_status=503).model_dump()
    assert bad.status_code == 422
    assert delete.status_code == 204
    assert after.json() == FaultConfig().model_dump()


def test_errors_are_injected_on_business_routes_only() -> None:
    injector = FaultInjector("svc")
    injector.config = FaultConfig(error_rate=1.0, error_status=503)
    work, health, admin = asyncio.run(
        _requests(injector, [("GET", "/work", None), ("GET", "/healthz", None), ("GET", "/admin/faults", None)])
    )
    assert work.status_code == 503
    assert work.json() == {"error": "injected_fault", "status": 503, "service": "svc"}
    assert (health.status_code, admin.status_code) == (200, 200)


def test_an_error_rate_fails_that_share_of_requests() -> None:
    injector = FaultInjector("svc", rng=random.Random(11))
    injector.config = FaultConfig(error_rate=0.3)
    responses = asyncio.run(_requests(injector, [("GET", "/work", None)] * 100))
    reference = random.Random(11)
    expected = sum(reference.random() < 0.3 for _ in range(100))
    assert sum(r.status_code == 500 for r in responses) == expected
    assert 0 < expected < 100


def test_the_memory_leak_grows_until_reset() -> None:
    async def scenario() -> tuple[int, int]:
        injector = FaultInjector("svc")
        injector.set(FaultConfig(memory_leak_kb_per_s=64))
        await asyncio.sleep(1.2)
        grown = injector.leaked_bytes
        injector.reset()
        return grown, injector.leaked_bytes

    grown, after_reset = asyncio.run(scenario())
    assert grown >= 64 * 1024
    assert after_reset == 0
