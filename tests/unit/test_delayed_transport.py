"""The ``delayed`` transport wrapper: WAN delays between real processes.

On virtual time over the in-process ``memory`` transport (the loop's clock
measures the delays exactly), and once over real loopback sockets.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from dynamo_toolkit.errors import ConfigurationError, TransportError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.messages import Heartbeat, Ping, PingAck
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit_plugins.transport.delayed import DelayedNetwork
from dynamo_toolkit_plugins.transport.memory import MemoryNetwork

HOST = load_plugins()
MEMBERS = [
    NodeInfo("a1", datacenter="dc1"),
    NodeInfo("a2", datacenter="dc1"),
    NodeInfo("b1", datacenter="dc2"),
]
WAN: dict[str, Any] = {
    "links": [{"between": ["dc1", "dc2"], "latency": "constant", "ms": 30}],
}


async def _answer(source: str, message: object) -> object:
    return PingAck(0) if isinstance(message, Ping) else None


def _network(wan: dict[str, Any] = WAN, **params: Any) -> DelayedNetwork:
    network = HOST.registry.create(
        "transport", "delayed", seed=1, members=MEMBERS, **{"inner": "memory", "wan": wan, **params}
    )
    assert isinstance(network, DelayedNetwork)
    return network


async def test_a_request_across_datacenters_waits_both_legs_and_local_ones_none() -> None:
    network = _network()
    assert isinstance(network.inner, MemoryNetwork)
    ends = {m.node_id: network.endpoint(m.node_id) for m in MEMBERS}
    for endpoint in ends.values():
        await endpoint.start(_answer)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await ends["a1"].request("b1", Ping(), timeout=1.0) == PingAck(0)
    assert loop.time() - start == pytest.approx(0.060)
    start = loop.time()
    assert await ends["a1"].request("a2", Ping(), timeout=1.0) == PingAck(0)
    assert loop.time() - start == 0.0
    for endpoint in ends.values():
        await endpoint.stop()


async def test_a_one_way_message_arrives_after_its_links_delay() -> None:
    network = _network()
    loop = asyncio.get_running_loop()
    arrived: list[tuple[str, float]] = []

    async def record(source: str, message: object) -> object:
        arrived.append((source, loop.time()))
        return None

    ends = {m.node_id: network.endpoint(m.node_id) for m in MEMBERS}
    for endpoint in ends.values():
        await endpoint.start(record)
    ends["b1"].send("a1", Heartbeat(0.0))
    ends["a2"].send("a1", Heartbeat(0.0))
    await asyncio.sleep(0.1)
    assert [source for source, _ in arrived] == ["a2", "b1"]
    assert [at for _, at in arrived] == pytest.approx([0.0, 0.030])
    for endpoint in ends.values():
        await endpoint.stop()


async def test_the_timeout_covers_the_delays_and_cut_or_lossy_links_time_out() -> None:
    network = _network()
    ends = {m.node_id: network.endpoint(m.node_id) for m in MEMBERS}
    for endpoint in ends.values():
        await endpoint.start(_answer)
    loop = asyncio.get_running_loop()
    with pytest.raises(TransportError, match=r"within 0\.05 s"):
        await ends["a1"].request("b1", Ping(), timeout=0.05)  # the round trip takes 60 ms
    network.cut("dc1", "dc2")
    start = loop.time()
    with pytest.raises(TransportError):
        await ends["a1"].request("b1", Ping(), timeout=0.5)
    assert loop.time() - start == pytest.approx(0.5)
    assert await ends["a1"].request("a2", Ping(), timeout=0.5) == PingAck(0)
    network.restore()
    assert await ends["b1"].request("a2", Ping(), timeout=0.5) == PingAck(0)
    for endpoint in ends.values():
        await endpoint.stop()
    lossy = _network({"links": [{**WAN["links"][0], "loss": 1.0}]})
    a1, b1 = lossy.endpoint("a1"), lossy.endpoint("b1")
    await a1.start(_answer)
    await b1.start(_answer)
    with pytest.raises(TransportError):
        await a1.request("b1", Ping(), timeout=0.5)
    await a1.stop()
    await b1.stop()


def test_bad_inner_transports_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot wrap itself"):
        _network(inner="delayed")
    with pytest.raises(ConfigurationError, match="must name a transport"):
        HOST.registry.create("transport", "delayed", inner={"speed": 1})
    with pytest.raises(ConfigurationError, match="needs the component registry"):
        DelayedNetwork(inner="memory")
    with pytest.raises(ConfigurationError, match="unknown setting"):
        HOST.registry.create("transport", "delayed", inner="memory", wan={"speed": 1})


def test_an_in_process_cluster_runs_over_the_wrapper() -> None:
    """The wrapper composes like any transport: a store over delayed(memory)."""
    nodes = [NodeInfo(f"{dc}n{i}", datacenter=dc) for dc in ("dc1", "dc2") for i in (1, 2)]
    config = {
        "store": {"n": 3, "r": 3, "w": 3},
        "transport": {"name": "delayed", "inner": "memory", "wan": WAN},
    }

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        async with await Cluster.start(nodes, config) as cluster:
            via = next(n for n in cluster.replicas("k") if n.startswith("dc1"))
            start = loop.time()
            await cluster.put("k", "v", None, via=via)
            took = loop.time() - start
            assert (await cluster.get("k", via=via)).values == ("v",)
            return took

    assert run_virtual(scenario()) == pytest.approx(0.060)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_real_sockets_see_the_wan_delay() -> None:
    """Two tcp endpoints on loopback in two datacenters, 40 ms apart each way."""
    members = [
        NodeInfo("x", f"127.0.0.1:{_free_port()}", datacenter="east"),
        NodeInfo("y", f"127.0.0.1:{_free_port()}", datacenter="west"),
    ]

    async def scenario() -> tuple[float, float]:
        network = HOST.registry.create(
            "transport",
            "delayed",
            seed=0,
            members=members,
            wan={"links": [{"between": ["east", "west"], "latency": "constant", "ms": 40}]},
        )
        x, y = network.endpoint("x"), network.endpoint("y")
        await x.start(_answer)
        await y.start(_answer)
        loop = asyncio.get_running_loop()
        await x.request("y", Ping(), timeout=2.0)  # connect first
        start = loop.time()
        await x.request("y", Ping(), timeout=2.0)
        wan = loop.time() - start
        start = loop.time()
        await y.request("y", Ping(), timeout=2.0)  # same datacenter: no delay
        local = loop.time() - start
        await x.stop()
        await y.stop()
        await network.close()
        return wan, local

    wan, local = asyncio.run(scenario())
    assert 0.080 <= wan < 0.5
    assert local < 0.05
