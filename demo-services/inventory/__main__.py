"""`python -m inventory --port 8002 [--host H] [--instance-id ID] [--data-dir DIR] [--config FILE]`."""

from __future__ import annotations

from demo_common.service import load_settings, parse_options, serve

from inventory.app import InventorySettings, create_app


def main() -> None:
    options = parse_options("inventory", default_port=8002)
    runtime = create_app(options, load_settings(options.config, InventorySettings))
    serve(runtime.app, options)


if __name__ == "__main__":
    main()
