"""`python -m loadgen --gateway URL --api-key KEY --rate R [--duration S | --requests N] [--mix ...]`."""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import Sequence

import httpx

import agents
from loadgen.config import LoadConfig, parse_args
from loadgen.runner import LoadRun
from loadgen.scenarios import Shop
from loadgen.stats import summary

VERSION = "0.1.0"


async def run(config: LoadConfig, agent: agents.Agent) -> None:
    timeout = httpx.Timeout(config.timeout_s, connect=min(config.timeout_s, 3.0))
    limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    async with agent.http_client(
        base_url=config.gateway, headers={"X-API-Key": config.api_key}, timeout=timeout, limits=limits
    ) as http:
        shop = Shop(http, random.Random(config.seed))
        await shop.load_catalogue()
        stop = f"{config.requests} requests" if config.requests is not None else f"{config.duration_s:g}s"
        mix = ",".join(f"{k}={v:g}" for k, v in config.mix.items())
        print(f"loadgen: {config.rate:g} req/s to {config.gateway} for {stop}, mix {mix}", flush=True)
        load = LoadRun(config, shop, agent.tracer, out=lambda line: print(line, flush=True))
        elapsed = await load.run()
        print(summary(load.stats, elapsed), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    # One line per request from httpx would bury the progress lines; failures are counted in the stats.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    agent = agents.start(service="loadgen", version=VERSION)
    try:
        asyncio.run(run(config, agent))
    except KeyboardInterrupt:
        print("loadgen: interrupted", file=sys.stderr)
    finally:
        agent.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
