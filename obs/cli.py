"""The `obs` command: `up`, `down`, `status`, `fault`, `silence` for the local stack; `collector`, `check-config`."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

from collector import __version__
from collector.cli import main as collector_main
from collector.config import ConfigError
from obs.control import render_status, status_rows, stop_stack, supervisor_alive
from obs.faults import fault_targets, parse_assignments, send_faults
from obs.silence import SilenceCommandError, list_silences
from obs.silence import add as add_silence
from obs.silence import expire as expire_silence
from obs.stack_plan import (
    LoadedStack,
    build_stages,
    collector_urls,
    load_stack,
    missing_modules,
    split_collector_config,
    write_collector_config,
)
from obs.state import is_alive, read_state, remove_state
from obs.supervisor import Supervisor


def _config_path(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    return Path("obs.yaml") if Path("obs.yaml").exists() else None


def _fail(message: str, code: int = 2) -> int:
    print(f"obs: {message}", file=sys.stderr)
    return code


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _stack_urls(loaded: LoadedStack) -> dict[str, str]:
    c = collector_urls(loaded.collector)
    urls = {"collector API": f"{c['http']}/api/obs/", "Prometheus API": f"{c['http']}/api/v1/"}
    urls["OTLP/HTTP"] = f"{c['otlp_http']}/v1/"
    if c["otlp_grpc"]:
        urls["OTLP/gRPC"] = c["otlp_grpc"]
    if loaded.alerting is not None:
        urls["alerting"] = f"{loaded.alerting.public_url}/api/v1/alerts"
    if loaded.stack.discovery.enabled:
        urls["discovery"] = f"http://127.0.0.1:{loaded.stack.discovery.port}/v1/services"
    if loaded.stack.gateway.enabled:
        urls["gateway"] = f"http://127.0.0.1:{loaded.stack.gateway.port}/"
    return urls


def _up(loaded: LoadedStack, load: float | None) -> int:
    stack, paths = loaded.stack, loaded.paths
    previous = read_state(paths.state_file)
    if previous is not None:
        if supervisor_alive(previous):
            return _fail(f"the stack already runs (supervisor pid {previous.supervisor_pid}); `obs down` stops it", 1)
        if any(is_alive(p.pid, p.start_ticks) for p in previous.processes):
            return _fail(f"a previous `obs up` (pid {previous.supervisor_pid}) died and left processes: `obs down`", 1)
        remove_state(paths.state_file)
    stages = build_stages(loaded, os.environ, load)
    missing = missing_modules(stages, stack)
    if missing:
        return _fail("these demo services are not there yet:\n  " + "\n  ".join(missing))
    busy = [f"{s.name} port {s.port}" for st in stages for s in st.processes if s.port and _port_in_use(s.port)]
    server = loaded.collector.server
    if server.otlp_ports:
        for label, port in (("OTLP/HTTP", server.otlp_http_port), ("OTLP/gRPC", server.otlp_grpc_port)):
            if _port_in_use(port):
                busy.append(f"collector {label} port {port}")
    if busy:
        return _fail(
            "ports already in use (change them under stack: / server: / alerting: in obs.yaml): " + ", ".join(busy), 1
        )
    write_collector_config(loaded)
    print(f"Observatory {__version__}: starting the stack (data and logs in {paths.data_dir})", flush=True)
    supervisor = Supervisor(
        stages,
        restart=stack.restart,
        health_timeout=stack.health_timeout,
        stop_grace=stack.stop_grace,
        state_file=paths.state_file,
        data_dir=paths.data_dir,
        log_dir=paths.log_dir,
        urls=_stack_urls(loaded),
        out=sys.stdout,
    )
    supervisor.install_signal_handlers()
    return supervisor.run()


def _status(loaded: LoadedStack, as_json: bool) -> int:
    state = read_state(loaded.paths.state_file)
    if state is None:
        print(f"the stack is not running (no {loaded.paths.state_file})")
        return 3  # as `systemctl status` for a unit that does not run
    alive = supervisor_alive(state)
    rows = status_rows(state)
    if as_json:
        print(json.dumps({"phase": state.phase, "supervisor_pid": state.supervisor_pid, "supervisor_alive": alive,
                          "urls": state.urls, "processes": rows}, indent=2))  # fmt: skip
    else:
        render_status(state, rows, alive, sys.stdout)
    return 0 if alive else 1


def _fault(loaded: LoadedStack, service: str, instance: str | None, clear: bool, assignments: list[str]) -> int:
    if clear == bool(assignments):
        return _fail("give key=value settings (e.g. latency=200 error_rate=0.5) or --clear, not both")
    try:
        body = None if clear else parse_assignments(assignments)
    except ValueError as exc:
        return _fail(str(exc))
    state = read_state(loaded.paths.state_file)
    if state is None:
        return _fail(f"the stack is not running (no {loaded.paths.state_file})", 1)
    try:
        targets = fault_targets(state, service, instance)
    except LookupError as exc:
        return _fail(str(exc))
    results = send_faults(targets, body)
    for r in results:
        print(f"{r.instance_id:<14} {'ok ' if r.ok else 'FAILED'} {r.url}: {r.detail}")
    return 0 if all(r.ok for r in results) else 1


def _silence(loaded: LoadedStack, args: argparse.Namespace) -> int:
    if args.url:
        base = args.url.rstrip("/")
    elif loaded.alerting is not None:
        base = loaded.alerting.public_url
    else:
        return _fail("alerting is disabled in this configuration (stack.alerting.enabled); give --url")
    try:
        if args.action == "add":
            print(add_silence(base, args.matchers, args.duration, args.comment, args.author))
        elif args.action == "expire":
            for silence_id in args.ids:
                expire_silence(base, silence_id)
                print(f"expired {silence_id}")
        else:
            list_silences(base, args.expired, sys.stdout)
    except SilenceCommandError as exc:
        return _fail(str(exc), 1)
    return 0


def _run_collector(path: Path | None, argv_tail: list[str]) -> int:
    """The collector's own commands, given obs.yaml without its `stack:` section."""
    if path is None:
        return collector_main(argv_tail)
    with tempfile.TemporaryDirectory(prefix="obs-collector-") as tmp:
        stripped = split_collector_config(path, os.environ, Path(tmp))
        return collector_main(["--config", str(stripped), *argv_tail])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obs", description="Observatory: observability for microservices")
    parser.add_argument("--version", action="version", version=f"observatory {__version__}")
    parser.add_argument(
        "-c", "--config", default=os.environ.get("OBS_CONFIG"), help="YAML config file (default: ./obs.yaml if present)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole stack on this machine, supervised, until Ctrl-C or `obs down`")
    up.add_argument(
        "--load", nargs="?", type=float, const=-1.0, default=None, metavar="RATE",
        help="also run the load generator (RATE requests/s; default stack.load.rate)",
    )  # fmt: skip
    down = sub.add_parser("down", help="stop the stack `obs up` runs, and wait until every process is gone")
    down.add_argument("--timeout", type=float, default=None, help="seconds to wait (default: from stack.stop_grace)")
    status = sub.add_parser("status", help="what runs: name, pid, port, health, restarts, uptime")
    status.add_argument("--json", action="store_true", help="print JSON")
    fault = sub.add_parser("fault", help="inject faults into a service's instances (PUT /admin/faults)")
    fault.add_argument("service", help="orders, inventory, payments, ...")
    fault.add_argument("settings", nargs="*", metavar="key=value",
                       help="latency=MS latency_jitter=MS error_rate=0..1 error_status=CODE dependency_timeout=BOOL "
                       "crash=BOOL memory_leak=KB_PER_S; what is not given goes back to its default")  # fmt: skip
    fault.add_argument("--instance", default=None, help="only this instance (e.g. inventory-2)")
    fault.add_argument("--clear", action="store_true", help="turn every fault off (DELETE /admin/faults)")
    silence = sub.add_parser("silence", help="add, list or expire silences of the alerting service")
    silence.add_argument("--url", default=None, help="the alerting service (default: from alerting.port)")
    silence_sub = silence.add_subparsers(dest="action", required=True)
    add = silence_sub.add_parser("add", help='mute alerts matching all MATCHERS, e.g. alertname="HighErrorRate"')
    add.add_argument("matchers", nargs="+", help='name="value", name!="value", name=~"regex", name!~"regex"')
    add.add_argument("--duration", "-d", default="1h", help="how long, e.g. 30m, 2h (default 1h)")
    add.add_argument("--comment", "-m", required=True, help="why (shown beside the silence)")
    add.add_argument("--author", "-a", default=None, help="who (default: the user name)")
    listing = silence_sub.add_parser("list", help="the silences, soonest ending first")
    listing.add_argument("--expired", action="store_true", help="also those that have expired")
    expire = silence_sub.add_parser("expire", help="end silences now")
    expire.add_argument("ids", nargs="+")
    sub.add_parser("collector", help="run the collector alone (OTLP receivers, store, query APIs)")
    check = sub.add_parser("check-config", help="validate the configuration and print the effective settings")
    check.add_argument("--json", action="store_true", help="print the settings as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # argparse cannot take positionals after an option once their nargs="*" group was consumed
    # (`obs fault inventory --instance inventory-2 latency=200`): those come back here.
    if extra and args.command == "fault" and all("=" in e and not e.startswith("-") for e in extra):
        args.settings += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    path = _config_path(args.config)
    try:
        if args.command == "collector":
            return _run_collector(path, ["collector"])
        loaded = load_stack(path, os.environ)
        if args.command == "check-config":
            print(loaded.collector.model_dump_json(indent=2))
            print(json.dumps({"stack": loaded.stack.model_dump(mode="json")}, indent=2))
            if loaded.alerting is not None:
                print(json.dumps({"alerting": loaded.alerting.model_dump(mode="json", by_alias=True)}, indent=2))
            return 0
        if args.command == "up":
            rate = None if args.load is None else (loaded.stack.load.rate if args.load < 0 else args.load)
            return _up(loaded, rate)
        if args.command == "down":
            timeout = args.timeout if args.timeout is not None else loaded.stack.stop_grace * 5 + 10
            return stop_stack(loaded.paths.state_file, timeout, sys.stdout)
        if args.command == "status":
            return _status(loaded, args.json)
        if args.command == "silence":
            return _silence(loaded, args)
        return _fault(loaded, args.service, args.instance, args.clear, args.settings)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    except ValueError as exc:  # an unreadable state file
        return _fail(str(exc), 1)


if __name__ == "__main__":
    sys.exit(main())
