"""The business services as real processes: discovery, inventory x2, payments, orders and the gateway on loopback.

Each process is started by the module fixture on a free port with one temporary data directory, and
stopped by it even when a test fails. Telemetry export is off (OTEL_SDK_DISABLED): the cross-signal
test with a collector lives elsewhere; here the subject is the saga, the faults and the load generator.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.demo_stack import API_KEY, Service, Stack, demo_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with demo_stack(tmp_path_factory.mktemp("demo")) as s:
        yield s


def _set_faults(service: Service, **faults: Any) -> None:
    response = httpx.put(f"{service.url}/admin/faults", json=faults, timeout=5)
    assert response.status_code == 200, response.text


def _clear_faults(service: Service) -> None:
    assert httpx.delete(f"{service.url}/admin/faults", timeout=5).status_code == 204


def test_an_order_is_confirmed_and_the_stock_decreases(stack: Stack) -> None:
    before = stack.stock("KB-001"), stack.stock("MS-002")
    response = stack.place("alice", [{"sku": "KB-001", "qty": 2}, {"sku": "MS-002", "qty": 1}])
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "CONFIRMED"
    assert order["amount"] == pytest.approx(2 * 89.0 + 29.0)
    assert [t["to"] for t in order["transitions"]] == ["PENDING", "RESERVED", "CHARGED", "CONFIRMED"]
    # Read from the other instance: both share one database.
    assert (stack.stock("KB-001", 1), stack.stock("MS-002", 1)) == (before[0] - 2, before[1] - 1)
    assert [c["status"] for c in stack.charges(order["order_id"])] == ["APPROVED"]

    read = httpx.get(f"{stack.gateway.url}/api/orders/{order['order_id']}", headers=API_KEY, timeout=5)
    assert read.status_code == 200 and read.json()["status"] == "CONFIRMED"
    listed = httpx.get(f"{stack.gateway.url}/api/orders", params={"customer": "alice"}, headers=API_KEY, timeout=5)
    assert order["order_id"] in [o["order_id"] for o in listed.json()["orders"]]
    reservation = httpx.get(f"{stack.inventory[0].url}/reservations/{order['reservation_id']}", timeout=5).json()
    assert reservation["status"] == "COMMITTED"

    orders_metrics = httpx.get(f"{stack.orders.url}/metrics", timeout=5).text
    assert 'orders_total{status="confirmed"}' in orders_metrics
    stock_line = f'inventory_stock_level{{sku="KB-001"}} {float(before[0] - 2)}'
    assert stock_line in httpx.get(f"{stack.inventory[1].url}/metrics", timeout=5).text  # read at scrape time


def test_payment_errors_fail_the_order_and_the_compensation_restores_the_stock(stack: Stack) -> None:
    before = stack.stock("MN-003")
    _set_faults(stack.payments, error_rate=1.0)
    try:
        response = stack.place("bob", [{"sku": "MN-003", "qty": 3}])
    finally:
        _clear_faults(stack.payments)
    assert response.status_code == 502, response.text
    body = response.json()
    assert (body["step"], body["error"], body["compensated"]) == ("charge", "payments_error", True)
    assert body["order"]["status"] == "FAILED"
    assert stack.stock("MN-003") == before
    reservation = httpx.get(f"{stack.inventory[1].url}/reservations/{body['order']['reservation_id']}", timeout=5)
    assert reservation.json()["status"] == "RELEASED"


def test_a_declined_payment_answers_402_and_releases_the_stock(stack: Stack) -> None:
    before = stack.stock("HS-004")
    response = stack.place("declined-carol", [{"sku": "HS-004", "qty": 1}])
    assert response.status_code == 402, response.text
    assert (response.json()["step"], response.json()["error"]) == ("charge", "payment_declined")
    assert stack.stock("HS-004") == before
    assert [c["status"] for c in stack.charges(response.json()["order_id"])] == ["DECLINED"]


def test_out_of_stock_answers_409_and_charges_nothing(stack: Stack) -> None:
    before = stack.stock("DS-012")
    response = stack.place("dave", [{"sku": "DS-012", "qty": before + 1}])
    assert response.status_code == 409, response.text
    body = response.json()
    assert (body["step"], body["error"]) == ("reserve", "out_of_stock")
    assert body["shortages"] == [{"sku": "DS-012", "requested": before + 1, "available": before}]
    assert stack.charges(body["order_id"]) == []
    assert stack.stock("DS-012") == before


def test_injected_latency_is_observable(stack: Stack) -> None:
    for instance in stack.inventory:
        _set_faults(instance, latency_ms=400)
    try:
        started = time.monotonic()
        response = httpx.get(f"{stack.gateway.url}/api/products/CB-007", headers=API_KEY, timeout=10)
        elapsed = time.monotonic() - started
        faults = httpx.get(f"{stack.inventory[0].url}/admin/faults", timeout=5).json()
    finally:
        for instance in stack.inventory:
            _clear_faults(instance)
    assert response.status_code == 200
    assert elapsed >= 0.4
    assert faults["latency_ms"] == 400
    metrics = httpx.get(f"{stack.inventory[0].url}/metrics", timeout=5)
    assert metrics.status_code == 200  # admin and metrics routes are never delayed nor failed


def test_invalid_faults_are_refused_with_the_field_named(stack: Stack) -> None:
    response = httpx.put(f"{stack.payments.url}/admin/faults", json={"error_rate": 1.5}, timeout=5)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "error_rate"]
    assert httpx.get(f"{stack.payments.url}/admin/faults", timeout=5).json()["error_rate"] == 0.0


def test_a_dependency_timeout_fails_the_order_at_reserve_with_504(stack: Stack) -> None:
    _set_faults(stack.orders, dependency_timeout=True)
    try:
        response = stack.place("erin", [{"sku": "CB-007", "qty": 1}])
    finally:
        _clear_faults(stack.orders)
    assert response.status_code == 504, response.text
    assert (response.json()["step"], response.json()["error"]) == ("reserve", "inventory_timeout")


def test_the_crash_fault_makes_the_process_exit_with_1_and_orders_fail_over(stack: Stack) -> None:
    doomed = stack.service("inventory", "--data-dir", str(stack.tmp / "data")).start()
    doomed.wait_ready()
    _set_faults(doomed, crash=True)
    response = httpx.get(f"{doomed.url}/products/KB-001", timeout=5)
    assert response.status_code == 200  # it answers first, then dies
    assert doomed.proc is not None and doomed.proc.wait(timeout=15) == 1
    # Discovery still lists it until its lease expires; orders tries the next instance on connection errors.
    for _ in range(3):
        assert stack.place("frank", [{"sku": "PB-017", "qty": 1}]).status_code == 201


LOAD = ("--rate", "10", "--requests", "20", "--progress", "1", "--seed", "7")


def test_loadgen_runs_a_few_requests_and_prints_a_summary(stack: Stack) -> None:
    env = {**stack.env, "OBS_REGISTRY_URL": ""}
    result = subprocess.run(
        [sys.executable, "-m", "loadgen", "--gateway", stack.gateway.url, "--api-key", "demo-key", *LOAD],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "loadgen summary" in out
    assert "done 20" in out, out
    assert "rate=" in out and "p95=" in out  # at least one progress line
    for scenario in ("browse", "order", "lookup"):
        assert f"  {scenario} " in out, out
