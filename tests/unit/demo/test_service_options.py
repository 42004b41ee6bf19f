"""The business services' command line and their `--config` YAML settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_common.service import load_settings, parse_options
from inventory.app import InventorySettings
from orders.app import OrdersSettings
from payments.app import PaymentsSettings
from pydantic import BaseModel


def test_options_defaults_and_flags() -> None:
    defaults = parse_options("orders", 8001, [])
    assert (defaults.port, defaults.host, defaults.instance_id) == (8001, "127.0.0.1", "orders-8001")
    assert defaults.database_path == Path("data/demo/orders.sqlite")
    given = parse_options("inventory", 8002, ["--port", "9003", "--instance-id", "inv-b", "--data-dir", "/srv/d"])
    assert (given.port, given.instance_id, given.database_path) == (9003, "inv-b", Path("/srv/d/inventory.sqlite"))


@pytest.mark.parametrize(
    ("model", "text", "expected"),
    [
        (OrdersSettings, "request_timeout_s: 0.5\n", {"request_timeout_s": 0.5, "connect_timeout_s": 1.0}),
        (InventorySettings, "reservation_ttl_s: 10\n", {"reservation_ttl_s": 10.0}),
        (PaymentsSettings, "", {"decline_over": 2000.0, "declined_customer_prefix": "declined-"}),
    ],
)
def test_settings_from_yaml(tmp_path: Path, model: type[BaseModel], text: str, expected: dict[str, object]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert load_settings(path, model).model_dump() == expected


@pytest.mark.parametrize(
    ("model", "text", "message"),
    [
        (OrdersSettings, "request_timeout: 1\n", "request_timeout: Extra inputs are not permitted"),
        (OrdersSettings, "request_timeout_s: -1\n", "request_timeout_s: Input should be greater than 0"),
        (InventorySettings, "reservation_ttl_s: soon\n", "reservation_ttl_s"),
        (PaymentsSettings, "decline_over: [1\n", "s.yaml"),  # not YAML at all
    ],
)
def test_bad_settings_stop_with_the_key_named(tmp_path: Path, model: type[BaseModel], text: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SystemExit) as caught:
        load_settings(path, model)
    assert message in str(caught.value.code)


def test_no_file_means_the_defaults() -> None:
    assert load_settings(None, OrdersSettings) == OrdersSettings()
