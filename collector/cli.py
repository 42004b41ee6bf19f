"""The collector's command line: `collector` runs it, `check-config` validates its settings (`obs` adds the stack)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from collector import __version__
from collector.config import ConfigError, Settings, load_settings


def _settings(path: str | None) -> Settings:
    if path is None and Path("obs.yaml").exists():
        path = "obs.yaml"
    try:
        return load_settings(Path(path) if path else None)
    except ConfigError as exc:
        print(f"obs: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _run_collector(settings: Settings) -> int:
    from collector.app import serve  # heavy imports (chDB) only for commands that need them
    from collector.heap import keep_freed_memory

    keep_freed_memory()  # before serving: queries reuse freed memory instead of faulting it back in

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="obs", description="Observatory: observability for microservices")
    parser.add_argument("--version", action="version", version=f"observatory {__version__}")
    parser.add_argument(
        "-c", "--config", default=os.environ.get("OBS_CONFIG"), help="YAML config file (default: ./obs.yaml if present)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("collector", help="run the collector (OTLP receivers, store, query APIs)")
    check = sub.add_parser("check-config", help="validate the configuration and print the effective settings")
    check.add_argument("--json", action="store_true", help="print the settings as JSON")
    args = parser.parse_args(argv)
    settings = _settings(args.config)
    if args.command == "check-config":
        print(settings.model_dump_json(indent=2))
        return 0
    return _run_collector(settings)


if __name__ == "__main__":
    sys.exit(main())
