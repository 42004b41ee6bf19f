"""The load generator's command line, checked into a typed `LoadConfig`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

SCENARIOS = ("browse", "order", "lookup")
DEFAULT_MIX = "browse=6,order=3,lookup=1"


class ConfigError(ValueError):
    """A flag with a bad value; the message names it."""


@dataclass(frozen=True)
class LoadConfig:
    gateway: str
    api_key: str
    rate: float  # requests started per second, whatever the answers take (open loop)
    duration_s: float | None
    requests: int | None
    mix: dict[str, float]  # scenario -> weight, every weight >= 0, sum > 0
    concurrency: int  # requests in flight at most; a slot missed because of it is counted, not queued
    timeout_s: float
    progress_s: float
    seed: int | None


def parse_mix(text: str) -> dict[str, float]:
    """`browse=6,order=3,lookup=1` -> weights; scenarios left out weigh 0."""
    mix = dict.fromkeys(SCENARIOS, 0.0)
    for part in text.split(","):
        name, sep, weight = part.strip().partition("=")
        if not sep or name not in SCENARIOS:
            raise ConfigError(f"--mix: {part.strip()!r} is not <scenario>=<weight> with scenario in {SCENARIOS}")
        try:
            value = float(weight)
        except ValueError:
            raise ConfigError(f"--mix: weight of {name} is not a number: {weight!r}") from None
        if value < 0 or value != value:
            raise ConfigError(f"--mix: weight of {name} must be >= 0, got {weight}")
        mix[name] = value
    if sum(mix.values()) <= 0:
        raise ConfigError("--mix: at least one weight must be positive")
    return mix


def parse_args(argv: Sequence[str] | None = None) -> LoadConfig:
    parser = argparse.ArgumentParser(prog="python -m loadgen", description="Open-loop load against the demo gateway.")
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="the gateway's base URL")
    parser.add_argument("--api-key", default="demo-key", help="sent as X-API-Key")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, help="stop after this many seconds (default 60)")
    stop.add_argument("--requests", type=int, help="stop after this many requests")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"scenario weights (default {DEFAULT_MIX})")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at most (default 8)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default 10)")
    parser.add_argument("--progress", type=float, default=5.0, help="seconds between progress lines (default 5)")
    parser.add_argument("--seed", type=int, help="random seed, for a repeatable sequence of requests")
    args = parser.parse_args(argv)
    try:
        return _check(args)
    except ConfigError as exc:
        parser.error(str(exc))
        raise  # parser.error exits; this keeps the type checker informed


def _check(args: argparse.Namespace) -> LoadConfig:
    if not args.gateway.startswith(("http://", "https://")):
        raise ConfigError(f"--gateway must be an http(s) URL, got {args.gateway!r}")
    if not args.rate > 0:
        raise ConfigError(f"--rate must be positive, got {args.rate}")
    if args.requests is not None and args.requests < 1:
        raise ConfigError(f"--requests must be at least 1, got {args.requests}")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be positive, got {args.duration}")
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {args.concurrency}")
    if not args.timeout > 0 or not args.progress > 0:
        raise ConfigError("--timeout and --progress must be positive")
    duration = args.duration if args.duration is not None or args.requests is not None else 60.0
    return LoadConfig(
        gateway=args.gateway.rstrip("/"),
        api_key=args.api_key,
        rate=args.rate,
        duration_s=duration,
        requests=args.requests,
        mix=parse_mix(args.mix),
        concurrency=args.concurrency,
        timeout_s=args.timeout,
        progress_s=args.progress,
        seed=args.seed,
    )
