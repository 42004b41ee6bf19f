"""`python -m alerting [--config obs.yaml]`: the alerting service on port 9094 (see alerting/README.md).

SIGHUP re-reads the rule files, as Prometheus does; SIGTERM and SIGINT stop it after the evaluations and
deliveries in progress. An invalid configuration or rule file stops it at startup with a message naming
the file, the line and the key.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import uvicorn

from alerting.api import alerting_app
from alerting.config import AlertingConfigError, load_alerting_settings
from alerting.rulefile import RuleFileError
from alerting.service import AlertingService, ReloadError

log = logging.getLogger("observatory.alerting")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alerting", description=__doc__.splitlines()[0])
    default_config = os.environ.get("OBS_CONFIG")
    parser.add_argument("--config", type=Path, default=Path(default_config) if default_config else None)
    parser.add_argument("--port", type=int, help="listen here instead of alerting.port")
    parser.add_argument("--check", action="store_true", help="load the configuration and rules, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_alerting_settings(args.config)
        if args.port:
            settings = settings.model_copy(update={"port": args.port})
        service = AlertingService(settings)
    except (AlertingConfigError, RuleFileError) as exc:
        print(f"alerting: {exc}", file=sys.stderr)
        return 2
    groups = service.engine.groups()
    rules = sum(len(g.rules) for g in groups)
    if args.check:
        print(f"alerting: configuration OK: {len(groups)} groups, {rules} rules")
        service.stop()
        return 0

    def reload_quietly() -> None:
        with contextlib.suppress(ReloadError):  # logged by the service; the running rules stay
            service.reload()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        # Off the signal handler: a reload reads files and takes the engine's locks.
        threading.Thread(target=reload_quietly, name="sighup-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
    service.start()
    log.info("alerting: %d groups, %d rules; listening on %s:%d", len(groups), rules, settings.host, settings.port)
    try:
        uvicorn.run(alerting_app(service), host=settings.host, port=settings.port, log_level="warning")
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
