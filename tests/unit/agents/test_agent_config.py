"""AgentConfig from arguments and the OTEL_* / OBS_* environment, and the errors for bad values."""

from __future__ import annotations

from typing import Any

import pytest

from agents.config import GRPC_ENDPOINT, HTTP_ENDPOINT, AgentConfigError, load_config


def test_defaults_without_environment() -> None:
    c = load_config("orders", "0.1.0", port=8001, environ={})
    assert (c.service, c.version, c.instance_id, c.port) == ("orders", "0.1.0", "orders-8001", 8001)
    assert c.otlp_endpoint == HTTP_ENDPOINT and c.otlp_protocol == "http/protobuf"
    assert c.push_url == "http://127.0.0.1:9095" and c.push_bucket == "demo"
    assert c.registry_url == "http://127.0.0.1:8761"
    assert c.environment == "demo" and c.log_level == "INFO"
    assert c.host_name


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_SERVICE_NAME": "renamed"}, {"service": "renamed"}),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, {"otlp_protocol": "grpc", "otlp_endpoint": GRPC_ENDPOINT}),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1234/"},
            {"otlp_endpoint": "http://h:1234"},
        ),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2.5"}, {"otlp_timeout_s": 2.5}),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "team=shop, region=eu"},
            {"resource_attributes": {"team": "shop", "region": "eu"}},
        ),
        ({"OTEL_SDK_DISABLED": "true"}, {"sdk_disabled": True}),
        (
            {"OBS_METRICS_PUSH_URL": "http://p:9", "OBS_METRICS_PUSH_BUCKET": "b1"},
            {"push_url": "http://p:9", "push_bucket": "b1"},
        ),
        ({"OBS_REGISTRY_URL": ""}, {"registry_url": ""}),
        (
            {"OBS_DEPLOYMENT_ENVIRONMENT": "prod", "OBS_LOG_LEVEL": "debug"},
            {"environment": "prod", "log_level": "DEBUG"},
        ),
    ],
)
def test_environment_is_honoured(env: dict[str, str], expected: dict[str, Any]) -> None:
    c = load_config("orders", environ=env)
    for key, value in expected.items():
        assert getattr(c, key) == value, key


def test_queue_settings_in_otel_units() -> None:
    env = {"OTEL_BSP_SCHEDULE_DELAY": "250", "OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "7"}
    c = load_config("orders", environ=env)
    assert c.spans.schedule_delay_s == 0.25 and c.spans.max_queue_size == 100
    assert c.spans.max_export_batch_size == 100  # shrunk to fit the queue
    assert c.logs.max_export_batch_size == 7 and c.logs.max_queue_size == 2048


def test_arguments_and_overrides() -> None:
    c = load_config(
        "inv", "1.2", port=8002, instance_id="inv-a", metadata={"zone": "a"}, environ={}, shutdown_timeout_s=1
    )
    assert (c.instance_id, c.metadata, c.shutdown_timeout_s) == ("inv-a", {"zone": "a"}, 1.0)


def test_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBS_METRICS_PUSH_BUCKET", "late")
    assert load_config("orders").push_bucket == "late"


@pytest.mark.parametrize(
    ("env", "kwargs", "named"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, {}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, {}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}, {}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, {}, "OTEL_RESOURCE_ATTRIBUTES"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, {}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_BLRP_MAX_QUEUE_SIZE": "0"}, {}, "OTEL_BLRP_MAX_QUEUE_SIZE"),
        ({"OBS_LOG_LEVEL": "LOUD"}, {}, "OBS_LOG_LEVEL"),
        ({}, {"port": 70000}, "port"),
    ],
)
def test_invalid_values_name_the_setting(env: dict[str, str], kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(AgentConfigError, match=named):
        load_config("orders", environ=env, **kwargs)


def test_service_is_required() -> None:
    with pytest.raises(AgentConfigError, match="OTEL_SERVICE_NAME"):
        load_config(None, environ={})
