"""`python -m payments --port 8004 [--host H] [--instance-id ID] [--data-dir DIR] [--config FILE]`."""

from __future__ import annotations

from demo_common.service import load_settings, parse_options, serve

from payments.app import PaymentsSettings, create_app


def main() -> None:
    options = parse_options("payments", default_port=8004)
    runtime = create_app(options, load_settings(options.config, PaymentsSettings))
    serve(runtime.app, options)


if __name__ == "__main__":
    main()
