"""The simulated network's observer API: every packet is shown once, before its fate."""

from __future__ import annotations

import pytest

from dynamo_toolkit.errors import TransportError
from dynamo_toolkit.messages import Heartbeat, Ping, PingAck
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit_plugins.transport.simulated import Packet, SimulatedNetwork

Seen = list[tuple[str, str, str, object]]


async def _answer(source: str, message: object) -> object:
    return PingAck(0) if isinstance(message, Ping) else None


def test_observers_see_requests_replies_and_one_way_messages_until_removed() -> None:
    async def main() -> tuple[Seen, Seen]:
        network = SimulatedNetwork(seed=1)
        seen: Seen = []

        def observe(source: str, dest: str, packet: Packet) -> None:
            seen.append((source, dest, packet.kind, packet.body))

        remove = network.add_observer(observe)
        a, b = network.endpoint("a"), network.endpoint("b")
        await a.start(_answer)
        await b.start(_answer)
        reply = await a.request("b", Ping(), timeout=1.0)
        assert reply == PingAck(0)
        a.send("b", Heartbeat(1.0))
        before = list(seen)
        remove()
        await a.request("b", Ping(), timeout=1.0)
        await a.stop()
        await b.stop()
        return before, seen

    before, after = run_virtual(main())
    assert before == [
        ("a", "b", "req", Ping()),
        ("b", "a", "rep", PingAck(0)),
        ("a", "b", "msg", Heartbeat(1.0)),
    ]
    assert after == before  # nothing seen once removed


def test_observers_see_packets_the_network_then_drops() -> None:
    async def main() -> tuple[int, int]:
        network = SimulatedNetwork(seed=1, drop=1.0)
        kinds: list[str] = []
        network.add_observer(lambda source, dest, packet: kinds.append(packet.kind))
        a, b = network.endpoint("a"), network.endpoint("b")
        await a.start(_answer)
        await b.start(_answer)
        with pytest.raises(TransportError):
            await a.request("b", Ping(), timeout=0.5)
        await a.stop()
        await b.stop()
        return len(kinds), network.stats.dropped

    observed, dropped = run_virtual(main())
    assert observed == dropped == 1
