"""`python -m gateway`: command-line flags, the checked config, then the app served by uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gateway.config import ConfigError, default_config_path, load_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway", description="The demo's API gateway")
    parser.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--config", type=Path, default=None, help="YAML settings (default: gateway/gateway.yaml)")
    parser.add_argument("--instance-id", default=None, help="this gateway's instance id (default gateway-<port>)")
    parser.add_argument("--data-dir", help="accepted like every demo service; unused: the gateway keeps no data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.config or default_config_path()
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    import uvicorn  # the server only when serving, not for --help or a bad config

    from gateway.app import create_app

    # httpx logs one line per upstream call; the proxy's access line already says it all.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    instance_id = args.instance_id or f"gateway-{args.port}"
    app = create_app(settings, port=args.port, host=args.host, instance_id=instance_id)
    # proxy_headers off: the client address is the peer's, so X-Forwarded-For is appended to, not trusted.
    config = uvicorn.Config(app, host=args.host, port=args.port, access_log=False, proxy_headers=False)
    # The proxy writes one access line per request itself (route, upstream, trace id); uvicorn's would
    # come back once agents routes uvicorn's loggers to its handler, so it is switched off for good.
    logging.getLogger("uvicorn.access").disabled = True
    uvicorn.Server(config).run()
    return 0
