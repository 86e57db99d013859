"""The transports and clocks of the kernel and built-ins pass their suites."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from dynamo_toolkit.clock import SystemClock, clock_for_running_loop
from dynamo_toolkit.interfaces import Clock, Network
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit.testing.conformance.clock import ClockSuite, Runner
from dynamo_toolkit.testing.conformance.transport import TransportSuite

HOST = load_plugins()


class TestMemoryTransport(TransportSuite):
    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        return lambda: HOST.registry.create("transport", "memory", seed=0)


class TestSimulatedTransportVirtualTime(TransportSuite):
    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        return lambda: HOST.registry.create("transport", "simulated", seed=3)

    @pytest.fixture
    def run(self) -> Runner:
        return run_virtual


class TestSimulatedTransportRealTime(TransportSuite):
    """The simulated network also works on an ordinary loop (delays are real)."""

    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        return lambda: HOST.registry.create("transport", "simulated", seed=3, max_delay=0.001)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestTcpTransport(TransportSuite):
    """Real sockets on loopback."""

    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        addresses = {name: f"127.0.0.1:{_free_port()}" for name in ("a", "b")}
        return lambda: HOST.registry.create("transport", "tcp", seed=1, addresses=addresses)

    @pytest.fixture
    def new_member(self) -> Callable[[str], NodeInfo]:
        return lambda node_id: NodeInfo(node_id, f"127.0.0.1:{_free_port()}")


class TestDelayedTcpTransport(TransportSuite):
    """The ``delayed`` wrapper over real sockets, every message held back 1 ms."""

    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        addresses = {name: f"127.0.0.1:{_free_port()}" for name in ("a", "b")}
        wan = {"local": {"latency": "constant", "ms": 1.0}}
        return lambda: HOST.registry.create(
            "transport", "delayed", seed=1, addresses=addresses, wan=wan
        )

    @pytest.fixture
    def new_member(self) -> Callable[[str], NodeInfo]:
        return lambda node_id: NodeInfo(node_id, f"127.0.0.1:{_free_port()}")


class TestDelayedSimulatedTransportVirtualTime(TransportSuite):
    """The wrapper over an in-process transport, on virtual time."""

    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        wan = {"local": {"latency": "uniform", "min_ms": 1.0, "max_ms": 5.0}}
        return lambda: HOST.registry.create(
            "transport", "delayed", seed=2, inner="simulated", wan=wan
        )

    @pytest.fixture
    def run(self) -> Runner:
        return run_virtual


class TestSystemClock(ClockSuite):
    @pytest.fixture
    def make_clock(self) -> Callable[[], Clock]:
        return SystemClock


class TestVirtualClock(ClockSuite):
    @pytest.fixture
    def make_clock(self) -> Callable[[], Clock]:
        return clock_for_running_loop

    @pytest.fixture
    def run(self) -> Runner:
        return run_virtual

    @pytest.fixture
    def tolerance(self) -> float:
        return 1e-9  # virtual time wakes exactly on time


def test_tcp_stop_lets_handlers_waiting_on_peers_finish() -> None:
    """Two nodes stop at once while a handler of each still has to ask the other.

    Each handler asks the other node something before it answers (as a
    replica coordinating a forwarded write does), but only once both are
    stopping. A stopping node refuses at once, so both stops end promptly
    instead of each waiting on the other's handler.
    """
    import asyncio

    from dynamo_toolkit.errors import TransportError
    from dynamo_toolkit.messages import Ack, Ping

    addresses = {name: f"127.0.0.1:{_free_port()}" for name in ("a", "b")}
    network = HOST.registry.create("transport", "tcp", seed=1, addresses=addresses)

    async def main() -> None:
        nodes = {name: network.endpoint(name) for name in ("a", "b")}
        release = asyncio.Event()
        both_waiting = asyncio.Event()
        waiting: list[str] = []
        outcomes: list[str] = []

        def handler(me: str, peer: str) -> Callable[[str, object], Any]:
            async def answer(source: str, message: object) -> object:
                if isinstance(message, Ping):
                    waiting.append(me)
                    if len(waiting) == 2:
                        both_waiting.set()
                    await release.wait()
                    try:
                        await nodes[me].request_future(peer, Ack(), 30.0)
                    except TransportError as exc:
                        outcomes.append(str(exc))
                return None

            return answer

        await nodes["a"].start(handler("a", "b"))
        await nodes["b"].start(handler("b", "a"))
        asks = [
            asyncio.ensure_future(nodes["a"].request("b", Ping(), 30.0)),
            asyncio.ensure_future(nodes["b"].request("a", Ping(), 30.0)),
        ]
        await asyncio.wait_for(both_waiting.wait(), 20.0)
        loop = asyncio.get_running_loop()
        began = loop.time()
        loop.call_soon(release.set)
        await asyncio.wait_for(asyncio.gather(*(n.stop() for n in nodes.values())), 20.0)
        assert loop.time() - began < 5.0  # neither waited out a 30 s request
        assert len(outcomes) == 2
        assert all("stopping" in outcome for outcome in outcomes)
        await asyncio.gather(*asks, return_exceptions=True)

    asyncio.run(main())


def test_tcp_hearing_from_a_peer_ends_the_backoff_towards_it() -> None:
    """A node that found a peer not listening backs off, until the peer connects to it.

    Nodes of a cluster start together: one may try a peer before the peer
    listens. Once the peer has connected (it is up), requests to it must not
    wait out the backoff (here 30 s, so waiting it out would fail the test).
    """
    import asyncio

    from dynamo_toolkit.errors import NodeUnavailableError
    from dynamo_toolkit.messages import Ack, Ping

    addresses = {name: f"127.0.0.1:{_free_port()}" for name in ("a", "b")}
    network = HOST.registry.create(
        "transport", "tcp", seed=1, addresses=addresses, backoff_initial=30.0
    )

    async def answer(source: str, message: object) -> object:
        return Ack()

    async def main() -> None:
        a, b = network.endpoint("a"), network.endpoint("b")
        await a.start(answer)
        try:
            with pytest.raises(NodeUnavailableError, match="cannot connect"):
                await a.request("b", Ping(), 5.0)
            with pytest.raises(NodeUnavailableError, match="next connection attempt"):
                await a.request("b", Ping(), 5.0)
            await b.start(answer)
            assert isinstance(await b.request("a", Ping(), 5.0), Ack)
            assert isinstance(await a.request("b", Ping(), 5.0), Ack)
        finally:
            await b.stop()
            await a.stop()

    asyncio.run(main())
