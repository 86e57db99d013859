"""The ``network-topology`` replicator in a running cluster: two datacenters, virtual time."""

from __future__ import annotations

from typing import Any

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.testing import run_virtual

DETECTED = 5.0  # seconds of virtual time after which the timeout detector has noticed

#: dc1: n1..n3 on racks a, b, a; dc2: n4..n6 on racks a, b, a.
MEMBERS = [
    NodeInfo(f"n{i}", datacenter="dc1" if i <= 3 else "dc2", rack="ab"[(i - 1) % 3 % 2])
    for i in range(1, 7)
]
DC = {member.node_id: member.datacenter for member in MEMBERS}
RACK = {member.node_id: member.rack for member in MEMBERS}
KEYS = [f"k{i}" for i in range(40)]


def _config(**store: Any) -> dict[str, Any]:
    return {
        "store": {"n": 3, "r": 1, "w": 3, **store},
        "replicator": {"name": "network-topology", "replicas": {"dc1": 2, "dc2": 1}},
    }


def test_every_key_has_two_replicas_in_dc1_and_one_in_dc2() -> None:
    async def scenario() -> None:
        async with await Cluster.start(
            MEMBERS, _config(), transport="simulated", seed=1
        ) as cluster:
            for key in KEYS:
                replicas = cluster.replicas(key)
                assert sorted(DC[r] for r in replicas) == ["dc1", "dc1", "dc2"], key
                # dc1 has racks a and b: its two replicas are on both.
                assert {RACK[r] for r in replicas if DC[r] == "dc1"} == {"a", "b"}, key

    run_virtual(scenario())


def test_a_write_survives_the_loss_of_a_whole_datacenter() -> None:
    async def scenario() -> None:
        async with await Cluster.start(
            MEMBERS, _config(), transport="simulated", seed=2
        ) as cluster:
            for key in KEYS[:10]:
                assert (await cluster.put(key, f"v-{key}")).acknowledged == 3
            for lost, kept in (("dc1", "dc2"), ("dc2", "dc1")):
                for node_id in [n for n, dc in DC.items() if dc == lost]:
                    await cluster.stop_node(node_id)
                for key in KEYS[:10]:
                    survivor = next(r for r in cluster.replicas(key) if DC[r] == kept)
                    result = await cluster.get(key, r=1, via=survivor)
                    assert result.values == (f"v-{key}",), (lost, key)
                for node_id in [n for n, dc in DC.items() if dc == lost]:
                    await cluster.restart_node(node_id)

    run_virtual(scenario())


def test_a_stand_in_for_a_down_replica_comes_from_its_datacenter() -> None:
    async def scenario() -> None:
        config = _config(w=3)
        async with await Cluster.start(MEMBERS, config, transport="simulated", seed=3) as cluster:
            checked = 0
            for key in KEYS[:8]:
                replicas = cluster.replicas(key)
                down = next(r for r in replicas if DC[r] == "dc2")
                coordinator = next(r for r in replicas if DC[r] == "dc1")
                await cluster.stop_node(down)
                await cluster.node(coordinator).clock.sleep(DETECTED)
                assert (await cluster.put(key, "v", via=coordinator)).acknowledged == 3
                holders = [n.node_id for n in cluster.nodes.values() if n.running and len(n.hints)]
                # A dc2 replica's stand-in is the other dc2 node outside the
                # list, though dc1 has a non-replica node too.
                assert len(holders) == 1
                assert DC[holders[0]] == "dc2"
                assert holders[0] not in replicas
                await cluster.restart_node(down)
                await cluster.node(coordinator).clock.sleep(DETECTED)
                await cluster.settle()
                assert not any(len(n.hints) for n in cluster.nodes.values())
                checked += 1
            assert checked == 8

    run_virtual(scenario())
