"""The simulated network's WAN model: per-datacenter-pair latency and loss, cut links.

``async def`` tests run on virtual time (the toolkit's pytest plugin); every
run is seeded, so the sampled statistics are the same on every machine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import ConfigurationError, DynamoError, TransportError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.latency import LogNormal
from dynamo_toolkit.messages import Heartbeat, Ping, PingAck
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit_lab.wars import PRESETS
from dynamo_toolkit_plugins.transport.simulated import Packet, SimulatedNetwork
from dynamo_toolkit_plugins.transport.wan import WanModel

MEMBERS = [
    NodeInfo("a1", datacenter="dc1"),
    NodeInfo("a2", datacenter="dc1"),
    NodeInfo("b1", datacenter="dc2"),
    NodeInfo("c1", datacenter="dc3"),
]

WAN: dict[str, Any] = {
    "local": {"latency": "constant", "ms": 0.5},
    "default": {"latency": "constant", "ms": 100},
    "links": [
        {"between": ["dc1", "dc2"], "latency": "lognormal", "median_ms": 40, "p99_ms": 120},
    ],
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _arrivals(
    network: SimulatedNetwork, pairs: list[tuple[str, str]], count: int
) -> dict[tuple[str, str], list[float]]:
    """Send ``count`` one-way messages on each pair; the virtual one-way delay of each."""
    loop = asyncio.get_running_loop()
    delays: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    sent_at: dict[int, float] = {}

    def handler_for(dest: str) -> Any:
        async def handle(source: str, message: object) -> object:
            assert isinstance(message, Heartbeat)
            delays[(source, dest)].append(loop.time() - sent_at[int(message.sent_at)])
            return None

        return handle

    endpoints = {m.node_id: network.endpoint(m.node_id) for m in MEMBERS}
    for node_id, endpoint in endpoints.items():
        await endpoint.start(handler_for(node_id))
    serial = 0
    for _ in range(count):
        for source, dest in pairs:
            serial += 1
            sent_at[serial] = loop.time()
            endpoints[source].send(dest, Heartbeat(float(serial)))
        await asyncio.sleep(0.001)
    await asyncio.sleep(5.0)  # every message has arrived (or been lost)
    for endpoint in endpoints.values():
        await endpoint.stop()
    return delays


async def test_a_pairs_latency_follows_its_distribution_in_both_directions() -> None:
    network = SimulatedNetwork(seed=7, members=MEMBERS, wan=WAN)
    pairs = [("a1", "b1"), ("b1", "a1"), ("a1", "a2"), ("a1", "c1")]
    delays = await _arrivals(network, pairs, 4000)
    expected = LogNormal.from_percentiles(40, 120)
    for pair in (("a1", "b1"), ("b1", "a1")):
        ms = [d * 1000 for d in delays[pair]]
        assert len(ms) == 4000
        assert _percentile(ms, 0.5) == pytest.approx(expected.quantile(0.5), rel=0.05)
        assert _percentile(ms, 0.99) == pytest.approx(expected.quantile(0.99), rel=0.12)
    assert {round(d * 1000, 6) for d in delays[("a1", "a2")]} == {0.5}  # local
    assert {round(d * 1000, 6) for d in delays[("a1", "c1")]} == {100.0}  # default


async def test_a_links_loss_rate_is_close_to_the_configured_one() -> None:
    wan = {
        "links": [
            {"between": ["dc1", "dc2"], "latency": "constant", "ms": 10, "loss": 0.1},
        ]
    }
    network = SimulatedNetwork(seed=3, members=MEMBERS, wan=wan)
    delays = await _arrivals(network, [("a1", "b1"), ("a1", "a2")], 10_000)
    assert len(delays[("a1", "a2")]) == 10_000  # no loss inside dc1
    lost = 1 - len(delays[("a1", "b1")]) / 10_000
    assert lost == pytest.approx(0.1, abs=0.01)
    assert network.stats.dropped == 10_000 - len(delays[("a1", "b1")])


async def _answer(source: str, message: object) -> object:
    return PingAck(0) if isinstance(message, Ping) else None


async def test_a_cut_link_drops_traffic_between_datacenters_not_within_until_restored() -> None:
    network = SimulatedNetwork(seed=1, members=MEMBERS, wan=WAN)
    ends = {m.node_id: network.endpoint(m.node_id) for m in MEMBERS}
    for endpoint in ends.values():
        await endpoint.start(_answer)
    network.cut("dc1", "dc2")
    with pytest.raises(TransportError):
        await ends["a1"].request("b1", Ping(), timeout=1.0)
    with pytest.raises(TransportError):
        await ends["b1"].request("a2", Ping(), timeout=1.0)
    assert await ends["a1"].request("a2", Ping(), timeout=1.0) == PingAck(0)
    assert await ends["a1"].request("c1", Ping(), timeout=1.0) == PingAck(0)
    network.restore("dc1", "dc2")
    assert await ends["a1"].request("b1", Ping(), timeout=1.0) == PingAck(0)
    # One argument: dc3 loses every other datacenter; restore(dc) undoes it.
    network.cut("dc3")
    assert network.wan.cuts == {frozenset({"dc3"})}
    with pytest.raises(TransportError):
        await ends["b1"].request("c1", Ping(), timeout=1.0)
    network.restore("dc3")
    assert await ends["b1"].request("c1", Ping(), timeout=1.0) == PingAck(0)
    for endpoint in ends.values():
        await endpoint.stop()


async def test_a_cut_drops_messages_already_in_flight() -> None:
    network = SimulatedNetwork(seed=1, members=MEMBERS, wan=WAN)
    ends = {m.node_id: network.endpoint(m.node_id) for m in MEMBERS}
    for endpoint in ends.values():
        await endpoint.start(_answer)
    pending = asyncio.ensure_future(ends["a1"].request("b1", Ping(), timeout=1.0))
    await asyncio.sleep(0.001)  # on the wire: the link takes about 40 ms
    network.cut("dc2")
    with pytest.raises(TransportError):
        await pending
    for endpoint in ends.values():
        await endpoint.stop()


async def test_members_that_join_later_are_placed_in_their_datacenter() -> None:
    network = SimulatedNetwork(seed=1, members=MEMBERS, wan=WAN)
    network.add_members([NodeInfo("b2", datacenter="dc2")])
    assert network.wan.datacenter("b2") == "dc2"
    assert network.wan.datacenter("stranger") == ""
    network.cut("dc1", "dc2")
    assert not network.reachable("a1", "b2")
    assert network.reachable("b1", "b2")


def _trace(seed: int) -> list[tuple[float, str, str, str]]:
    async def run() -> list[tuple[float, str, str, str]]:
        wan = {**WAN, "links": [{**WAN["links"][0], "loss": 0.2}]}
        network = SimulatedNetwork(seed=seed, members=MEMBERS, wan=wan, duplicate=0.1)
        loop = asyncio.get_running_loop()
        trace: list[tuple[float, str, str, str]] = []
        ends = {m.node_id: network.endpoint(m.node_id) for m in MEMBERS}

        def record(node: str) -> Any:
            async def handle(source: str, message: object) -> object:
                trace.append((loop.time(), source, node, type(message).__name__))
                return await _answer(source, message)

            return handle

        for node_id, endpoint in ends.items():
            await endpoint.start(record(node_id))
        for i in range(200):
            source, dest = MEMBERS[i % 4].node_id, MEMBERS[(i * 7 + 1) % 4].node_id
            if source != dest:
                ends[source].send(dest, Ping())
        await asyncio.sleep(5.0)
        for endpoint in ends.values():
            await endpoint.stop()
        return trace

    return run_virtual(run())


def test_identical_seeds_give_identical_traces() -> None:
    first = _trace(5)
    assert first == _trace(5)
    assert first != _trace(6)
    assert len(first) > 100


def test_no_wan_draws_what_the_network_drew_before() -> None:
    """An empty WAN model draws nothing: old seeds replay old runs."""
    plain = SimulatedNetwork(seed=9)
    with_empty = SimulatedNetwork(seed=9, wan={})
    assert plain.wan.draw("a", "b") == (False, None)
    assert with_empty._rng.random() == plain._rng.random()


@pytest.mark.parametrize(
    ("wan", "message"),
    [
        ("fast", "wan must be a table"),
        ({"links": {"dc1-dc2": {}}}, "links must be an array of tables"),
        ({"speed": 1}, "unknown setting(s) ['speed']"),
        ({"local": {"latency": "gamma"}}, "latency must be one of"),
        ({"local": {"latency": "lognormal", "median_ms": 40}}, "needs p99_ms"),
        ({"local": {"latency": "lognormal", "median_ms": 40, "p99_ms": 10}}, "median <= p99"),
        ({"local": {"latency": "constant", "ms": 1, "loss": 2}}, "loss must be a probability"),
        ({"local": {"latency": "constant", "ms": "1"}}, "ms must be a number"),
        ({"local": {"latency": "constant", "ms": 1, "jitter": 1}}, "unknown setting(s)"),
        ({"links": [{"latency": "constant", "ms": 1}]}, "name the datacenters"),
        ({"links": [{"between": ["dc1"], "latency": "constant", "ms": 1}]}, "two datacenters"),
        (
            {
                "links": [
                    {"between": ["dc1", "dc2"], "latency": "constant", "ms": 1},
                    {"between": ["dc2", "dc1"], "latency": "constant", "ms": 2},
                ]
            },
            "given twice",
        ),
        (
            {"default": {"latency": "empirical", "percentiles": {"50": 10, "100": 20}}},
            "q=0 and q=1",
        ),
    ],
)
def test_bad_wan_tables_are_refused_with_a_clear_error(wan: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SimulatedNetwork(members=MEMBERS, wan=wan)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_directed_links_override_symmetric_ones_and_every_kind_parses() -> None:
    model = WanModel.from_config(
        {
            "links": [
                {"between": ["dc1", "dc2"], "latency": "uniform", "min_ms": 1, "max_ms": 2},
                {"from": "dc2", "to": "dc1", "latency": "exponential", "mean_ms": 30},
                {"between": ["dc1", "dc3"], "latency": "normal", "mean_ms": 9, "stddev_ms": 1},
                {"between": ["dc2", "dc3"], "latency": "pareto", "xm_ms": 5, "alpha": 2},
                {
                    "between": ["dc3", "dc4"],
                    "latency": "empirical",
                    "percentiles": {"0": 10, "50": 20, "99": 80, "100": 90},
                    "offset_ms": 5,
                },
                {
                    "between": ["dc1", "dc4"],
                    "latency": {
                        "type": "mixture",
                        "parts": [
                            {"weight": 0.9, "type": "constant", "value": 1},
                            {"weight": 0.1, "type": "constant", "value": 9},
                        ],
                    },
                },
            ]
        }
    )
    forward, backward = model.link("dc1", "dc2"), model.link("dc2", "dc1")
    assert forward is not None
    assert backward is not None
    assert forward.latency.mean() == 1.5
    assert backward.latency.mean() == pytest.approx(30)
    assert model.link("dc1", "dc1") is None
    assert model.link("dc5", "dc1") is None
    empirical = model.link("dc4", "dc3")
    assert empirical is not None
    assert empirical.latency.to_json()["offset"] == 5


def test_the_store_config_carries_the_wan_to_an_in_process_cluster() -> None:
    config = StoreConfig.from_dict({"transport": {"name": "simulated", "wan": WAN}})
    choice = config.component("transport")
    network = load_plugins().registry.create(
        "transport", choice.name, seed=1, members=MEMBERS, **choice.params
    )
    assert isinstance(network, SimulatedNetwork)
    assert network.wan.model.link("dc2", "dc1") is not None


def test_a_latency_callable_and_a_wan_are_not_given_together() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        SimulatedNetwork(latency=lambda rng: 0.001, wan=WAN)


async def test_observers_still_see_every_packet_with_a_wan() -> None:
    network = SimulatedNetwork(seed=1, members=MEMBERS, wan=WAN)
    seen: list[Packet] = []
    network.add_observer(lambda source, dest, packet: seen.append(packet))
    a, b = network.endpoint("a1"), network.endpoint("b1")
    await a.start(_answer)
    await b.start(_answer)
    await a.request("b1", Ping(), timeout=2.0)
    assert [packet.kind for packet in seen] == ["req", "rep"]
    await a.stop()
    await b.stop()


# -- a whole multi-datacenter cluster ---------------------------------------------

DC_NODES = [NodeInfo(f"{dc}n{i}", datacenter=dc) for dc in ("dc1", "dc2") for i in (1, 2, 3)]
ONE_WAY_MS = 50.0


def test_a_multi_datacenter_cluster_pays_the_wan_only_when_the_quorum_needs_it() -> None:
    """N=3 over two datacenters: W=1 through a dc1 replica answers at local speed,
    W=3 (a replica in dc2 must answer) takes at least one WAN round trip."""
    config = {
        "store": {"n": 3, "r": 1, "w": 1, "request_timeout": 2.0},
        "transport": {
            "name": "simulated",
            "wan": {
                "local": {"latency": "uniform", "min_ms": 0.2, "max_ms": 1.0},
                "links": [{"between": ["dc1", "dc2"], "latency": "constant", "ms": ONE_WAY_MS}],
            },
        },
    }

    async def scenario() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        timings: dict[str, float] = {}
        async with await Cluster.start(DC_NODES, config, seed=4) as cluster:
            key = next(
                k
                for k in (f"key{i}" for i in range(1000))
                if [n[:3] for n in cluster.replicas(k)].count("dc1") in (1, 2)
                and cluster.replicas(k)[0].startswith("dc1")
            )
            local = cluster.replicas(key)[0]
            for label, w in (("w1", 1), ("w3", 3)):
                start = loop.time()
                await cluster.put(key, label, None, w=w, via=local)
                timings[label] = loop.time() - start
            for label, r in (("r1", 1), ("r3", 3)):
                start = loop.time()
                read = await cluster.get(key, r=r, via=local)
                timings[label] = loop.time() - start
                assert "w3" in read.values
            cluster.network.cut("dc1", "dc2")  # type: ignore[attr-defined]
            start = loop.time()
            await cluster.put(key, "during the cut", None, w=1, via=local)
            timings["w1-cut"] = loop.time() - start
        return timings

    timings = run_virtual(scenario())
    round_trip = 2 * ONE_WAY_MS / 1000
    assert timings["w1"] < 0.01
    assert timings["r1"] < 0.01
    assert timings["w1-cut"] < 0.01
    assert round_trip <= timings["w3"] < round_trip + 0.01
    assert round_trip <= timings["r3"] < round_trip + 0.01


def test_a_lossy_multi_datacenter_cluster_replays_exactly_from_its_seed() -> None:
    config = {
        "store": {"n": 3, "r": 2, "w": 2, "request_timeout": 0.5},
        "transport": {
            "name": "simulated",
            "wan": {
                "links": [
                    {
                        "between": ["dc1", "dc2"],
                        "latency": "lognormal",
                        "median_ms": 40,
                        "p99_ms": 120,
                        "loss": 0.05,
                    }
                ]
            },
        },
    }

    async def scenario(seed: int) -> tuple[list[str], float, int]:
        outcomes: list[str] = []
        async with await Cluster.start(DC_NODES, config, seed=seed) as cluster:
            for i in range(40):
                try:
                    await cluster.put(f"k{i}", i, None, w=3)
                    outcomes.append("ok")
                except DynamoError as exc:  # the outcome is what is compared
                    outcomes.append(type(exc).__name__)
            network = cluster.network
            assert isinstance(network, SimulatedNetwork)
            return outcomes, asyncio.get_running_loop().time(), network.stats.dropped

    first = run_virtual(scenario(3))
    assert first == run_virtual(scenario(3))
    assert first[2] > 0  # the link did lose messages


PBS_WAN_TOML = """
[transport]
name = "simulated"

[transport.wan.local.latency]
type = "mixture"
parts = [
  { weight = 0.9122, type = "pareto", xm = 0.235, alpha = 10.0 },
  { weight = 0.0878, type = "exponential", rate = 1.66 },
]

[transport.wan.default]
offset_ms = 75

[transport.wan.default.latency]
type = "mixture"
parts = [
  { weight = 0.9122, type = "pareto", xm = 0.235, alpha = 10.0 },
  { weight = 0.0878, type = "exponential", rate = 1.66 },
]

[[transport.wan.links]]
between = ["dc1", "dc2"]
latency = "lognormal"
median_ms = 40
p99_ms = 120
loss = 0.001
"""


async def test_the_documented_toml_builds_the_pbs_wan_model(tmp_path: Path) -> None:
    """The testing guide's TOML: LNKD-SSD legs (the lab's own), 75 ms more between DCs."""
    path = tmp_path / "store.toml"
    path.write_text(PBS_WAN_TOML)
    choice = StoreConfig.from_toml(path).component("transport")
    network = load_plugins().registry.create(
        "transport", choice.name, seed=2, members=MEMBERS, **choice.params
    )
    assert isinstance(network, SimulatedNetwork)
    local, default = network.wan.model.local, network.wan.model.default
    assert local is not None
    assert default is not None
    assert local.latency == PRESETS["LNKD-SSD"].w
    assert default.latency.mean() == pytest.approx(75 + PRESETS["LNKD-SSD"].w.mean())
    delays = await _arrivals(network, [("a1", "c1"), ("a1", "a2"), ("a1", "b1")], 500)
    assert min(delays[("a1", "c1")]) >= 0.075
    assert max(delays[("a1", "a2")]) < 0.075
    assert 0.030 < _percentile(delays[("a1", "b1")], 0.5) < 0.050
