"""The simulated network's observer API: every packet is shown once, before its fate.

These tests are ``async def`` on virtual time (the toolkit's pytest plugin).
"""

from __future__ import annotations

import asyncio

import pytest

from dynamo_toolkit.errors import TransportError
from dynamo_toolkit.messages import Heartbeat, Ping, PingAck
from dynamo_toolkit.virtual_time import VirtualTimeLoop
from dynamo_toolkit_plugins.transport.simulated import Packet, SimulatedNetwork


async def _answer(source: str, message: object) -> object:
    return PingAck(0) if isinstance(message, Ping) else None


async def test_observers_see_requests_replies_and_one_way_messages_until_removed() -> None:
    network = SimulatedNetwork(seed=1)
    seen: list[tuple[str, str, str, object]] = []

    def observe(source: str, dest: str, packet: Packet) -> None:
        seen.append((source, dest, packet.kind, packet.body))

    remove = network.add_observer(observe)
    a, b = network.endpoint("a"), network.endpoint("b")
    await a.start(_answer)
    await b.start(_answer)
    assert await a.request("b", Ping(), timeout=1.0) == PingAck(0)
    a.send("b", Heartbeat(1.0))
    assert seen == [
        ("a", "b", "req", Ping()),
        ("b", "a", "rep", PingAck(0)),
        ("a", "b", "msg", Heartbeat(1.0)),
    ]
    remove()
    await a.request("b", Ping(), timeout=1.0)
    assert len(seen) == 3  # nothing seen once removed
    await a.stop()
    await b.stop()


async def test_observers_see_packets_the_network_then_drops() -> None:
    network = SimulatedNetwork(seed=1, drop=1.0)
    kinds: list[str] = []
    network.add_observer(lambda source, dest, packet: kinds.append(packet.kind))
    a, b = network.endpoint("a"), network.endpoint("b")
    await a.start(_answer)
    await b.start(_answer)
    with pytest.raises(TransportError):
        await a.request("b", Ping(), timeout=0.5)
    assert kinds == ["req"]
    assert network.stats.dropped == 1
    await a.stop()
    await b.stop()


async def test_async_tests_run_on_a_fresh_virtual_time_loop() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    start = loop.time()
    await asyncio.sleep(3600)  # an hour of virtual time, no real time
    assert loop.time() - start == 3600
