"""ServiceClient against real TCP servers on loopback: round-robin, failover on connection errors, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from demo_common.dependency import DependencyTimeout, DependencyUnavailable, ServiceClient
from demo_common.faults import FaultConfig, FaultInjector

from tests.conftest import free_port


@dataclass(frozen=True)
class Inst:
    instance_id: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Registry:
    listed: list[Inst] = field(default_factory=list)

    def instances(self, service: str) -> Sequence[Inst]:
        return self.listed


@dataclass
class Server:
    """A minimal HTTP/1.1 server answering its name, or never answering when `silent`."""

    name: str
    silent: bool = False
    requests: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            if self.silent:
                await asyncio.sleep(10)  # cancelled when the test's loop ends
            body = self.name.encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def serving(*servers: Server) -> AsyncIterator[list[Inst]]:
    started = [await asyncio.start_server(s.handle, "127.0.0.1", 0) for s in servers]
    try:
        yield [Inst(s.name, srv.sockets[0].getsockname()[1]) for s, srv in zip(servers, started, strict=True)]
    finally:
        for srv in started:
            srv.close()


def client(registry: Registry, http: httpx.AsyncClient, timeout: float = 2.0, faults: FaultInjector | None = None):
    return ServiceClient("svc", registry, http, httpx.Timeout(timeout), faults=faults)


def test_calls_go_round_robin() -> None:
    async def scenario() -> list[str]:
        async with serving(Server("a"), Server("b")) as insts, httpx.AsyncClient() as http:
            c = client(Registry(insts), http)
            return [(await c.request("GET", "/x")).text for _ in range(4)]

    assert asyncio.run(scenario()) == ["a", "b", "a", "b"]


def test_a_refused_connection_moves_on_to_the_next_instance() -> None:
    async def scenario() -> list[str]:
        async with serving(Server("live")) as insts, httpx.AsyncClient() as http:
            dead = Inst("dead", free_port())  # nothing listens there
            c = client(Registry([dead, *insts]), http)
            return [(await c.request("GET", "/x")).text for _ in range(4)]

    assert asyncio.run(scenario()) == ["live"] * 4


@pytest.mark.parametrize("listed", [[], [Inst("dead-1", 0), Inst("dead-2", 0)]])
def test_unavailable_when_no_instance_answers(listed: list[Inst]) -> None:
    async def scenario() -> None:
        dead = [Inst(i.instance_id, free_port()) for i in listed]
        async with httpx.AsyncClient() as http:
            await client(Registry(dead), http).request("GET", "/x")

    with pytest.raises(DependencyUnavailable):
        asyncio.run(scenario())


def test_a_silent_instance_is_a_timeout_not_retried() -> None:
    silent, other = Server("silent", silent=True), Server("other")

    async def scenario() -> None:
        async with serving(silent, other) as insts, httpx.AsyncClient() as http:
            await client(Registry(insts), http, timeout=0.2).request("GET", "/x")

    with pytest.raises(DependencyTimeout):
        asyncio.run(scenario())
    assert (silent.requests, other.requests) == (1, 0)


def test_the_dependency_timeout_fault_stalls_then_fails_without_calling() -> None:
    server = Server("a")
    faults = FaultInjector("caller")
    faults.config = FaultConfig(dependency_timeout=True)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        async with serving(server) as insts, httpx.AsyncClient() as http:
            started = loop.time()
            with pytest.raises(DependencyTimeout):
                await client(Registry(insts), http, timeout=0.3, faults=faults).request("GET", "/x")
            return loop.time() - started

    assert asyncio.run(scenario()) >= 0.3
    assert server.requests == 0
