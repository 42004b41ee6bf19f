"""Composition shared by the business services: command line, optional YAML settings, agent, faults, serving."""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
import yaml
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

import agents
from demo_common.faults import FaultInjector, FaultMiddleware, fault_router

VERSION = "0.1.0"
SettingsT = TypeVar("SettingsT", bound=BaseModel)


@dataclass(frozen=True)
class ServiceOptions:
    """The command line every business service takes."""

    service: str
    port: int
    host: str
    instance_id: str
    data_dir: Path
    config: Path | None

    @property
    def database_path(self) -> Path:
        return self.data_dir / f"{self.service}.sqlite"


def parse_options(service: str, default_port: int, argv: Sequence[str] | None = None) -> ServiceOptions:
    parser = argparse.ArgumentParser(prog=f"python -m {service}", description=f"The demo {service} service.")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--instance-id", help=f"default: {service}-<port>")
    parser.add_argument("--data-dir", type=Path, default=Path("data/demo"), help="holds <service>.sqlite")
    parser.add_argument("--config", type=Path, help="YAML file with the service's settings")
    args = parser.parse_args(argv)
    return ServiceOptions(
        service=service,
        port=args.port,
        host=args.host,
        instance_id=args.instance_id or f"{service}-{args.port}",
        data_dir=args.data_dir,
        config=args.config,
    )


def load_settings(path: Path | None, model: type[SettingsT]) -> SettingsT:
    """The settings in `path` (YAML mapping), or the model's defaults; SystemExit naming the key when invalid."""
    data: Any = {}
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SystemExit(f"{path}: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"{path}: {problems}") from exc


@dataclass
class ServiceRuntime:
    app: FastAPI
    agent: agents.Agent
    faults: FaultInjector
    # What /readyz reports: whether the service can serve now, with details (e.g. dependencies found).
    # Alive but not ready answers 503, so `obs up` and load balancers wait; the default is always ready.
    readiness: Callable[[], tuple[bool, dict[str, Any]]] = lambda: (True, {})


def build_service(options: ServiceOptions) -> ServiceRuntime:
    """A FastAPI app with faults, health and the agent; the service adds its routes to `runtime.app`."""
    app = FastAPI(title=options.service, version=VERSION)
    faults = FaultInjector(options.service)
    # Added before the agent instruments the app, so the agent's spans and RED metrics see injected faults.
    app.add_middleware(FaultMiddleware, injector=faults)
    agent = agents.instrument(
        app, service=options.service, version=VERSION, port=options.port, instance_id=options.instance_id
    )
    # A crash flushes what it can but does not deregister: a crashed process leaves its lease to expire.
    faults.on_crash = functools.partial(agent.flush, timeout=1.5)
    app.include_router(fault_router(faults))

    runtime = ServiceRuntime(app=app, agent=agent, faults=faults)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": options.service, "instance_id": options.instance_id}

    @app.get("/readyz", response_model=None)
    def readyz() -> JSONResponse:
        ready, details = runtime.readiness()
        return JSONResponse({"ready": ready, **details}, status_code=200 if ready else 503)

    return runtime


def serve(app: FastAPI, options: ServiceOptions) -> None:
    """Serve until SIGTERM/SIGINT; logging is left to the agent (loguru), uvicorn's access log is off."""
    # The client spans record every outgoing call; httpx's own INFO line per call would only repeat them.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(app, host=options.host, port=options.port, log_config=None, access_log=False, lifespan="on")
