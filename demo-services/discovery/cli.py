"""`python -m discovery`: command-line flags over the YAML config, then serve the registry with uvicorn."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from discovery.config import ConfigError, DiscoverySettings, load_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m discovery", description="Eureka-like service registry")
    parser.add_argument("--port", type=int, help="listen port (default 8761)")
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--config", type=Path, help="YAML settings file")
    parser.add_argument("--instance-id", help="this registry's own instance id (default discovery-1)")
    parser.add_argument("--data-dir", help="accepted like every demo service; unused: the registry lives in memory")
    parser.add_argument("--eviction-interval", help="seconds (or 500ms, 5s, ...) between eviction passes")
    parser.add_argument("--default-lease", type=int, help="lease in seconds for registrations that give none")
    parser.add_argument("--renewal-window", help="seconds over which renewals are counted (self-preservation)")
    parser.add_argument("--self-preservation-threshold", type=float, help="fraction of expected renewals")
    parser.add_argument(
        "--no-self-preservation", action="store_true", help="always evict expired instances, as renewals fall or not"
    )
    parser.add_argument("--log-level", help="INFO, DEBUG, ...")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> DiscoverySettings:
    overrides: dict[str, Any] = {
        "port": args.port,
        "host": args.host,
        "instance_id": args.instance_id,
        "eviction_interval": args.eviction_interval,
        "default_lease_seconds": args.default_lease,
        "renewal_window": args.renewal_window,
        "self_preservation.threshold": args.self_preservation_threshold,
        "log_level": args.log_level,
    }
    if args.no_self_preservation:
        overrides["self_preservation.enabled"] = False
    return load_settings(args.config, {k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        print(f"discovery: configuration error: {exc}", file=sys.stderr)
        return 2
    import uvicorn  # the server only when serving, not for --help or a bad config

    from discovery.server import build_app

    app = build_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), access_log=False)
    return 0
