"""`python -m orders --port 8001 [--host H] [--instance-id ID] [--data-dir DIR] [--config FILE]`."""

from __future__ import annotations

from demo_common.service import load_settings, parse_options, serve

from orders.app import OrdersSettings, create_app


def main() -> None:
    options = parse_options("orders", default_port=8001)
    runtime = create_app(options, load_settings(options.config, OrdersSettings))
    serve(runtime.app, options)


if __name__ == "__main__":
    main()
