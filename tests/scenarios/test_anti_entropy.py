"""Anti-entropy: Merkle exchanges converge replicas; tombstones go only when safe."""

from __future__ import annotations

from typing import Any

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.node import Node
from dynamo_toolkit.testing import run_virtual

# Strict quorums and no hints: the only way a missed write reaches a replica
# here is anti-entropy (or read repair, which these tests do not trigger).
QUIET = {
    "store": {
        "n": 3,
        "r": 2,
        "w": 2,
        "sloppy_quorum": False,
        "anti_entropy_interval": 3600.0,
        "tombstone_grace": 100.0,
    }
}


def roots(node: Node) -> dict[int, bytes]:
    return {p: node.store.digest(p).root() for p in node.my_partitions()}


def in_step(cluster: Cluster) -> bool:
    """Every replica of every partition has the same digest root."""
    nodes = list(cluster.nodes.values())
    for partition in nodes[0].table.partitions():
        owners = nodes[0].placement(partition).replicas
        if len({cluster.node(o).store.digest(partition).root() for o in owners}) != 1:
            return False
    return True


def test_a_replica_that_missed_writes_is_repaired() -> None:
    async def scenario() -> None:
        async with await Cluster.start(4, QUIET, transport="simulated", seed=9) as cluster:
            for i in range(20):
                await cluster.put(f"before{i}", i)
            await cluster.settle()
            assert in_step(cluster)
            await cluster.stop_node("n3")
            written = [f"k{i}" for i in range(60)]
            for key in written:
                await cluster.put(key, key, via=next(n for n in cluster.replicas(key) if n != "n3"))
            await cluster.restart_node("n3")
            await cluster.settle()
            missed = [k for k in written if "n3" in cluster.replicas(k)]
            assert missed
            assert not in_step(cluster)
            report = await cluster.node("n3").repair_all()
            assert in_step(cluster)
            # Only the keys n3 missed moved: everything else matched by digest.
            assert report.keys_repaired == len(missed)
            assert report.keys_compared >= report.keys_repaired
            for key in missed:
                assert [v.value for v in cluster.node("n3").store.read(key.encode())]
            again = await cluster.node("n3").repair_all()
            assert again.keys_repaired == 0
            # In sync, a partition costs one round trip per peer: the roots.
            assert again.round_trips == 2 * again.partitions

    run_virtual(scenario())


def test_periodic_passes_converge_without_being_asked() -> None:
    config: dict[str, Any] = {"store": {**QUIET["store"], "anti_entropy_interval": 5.0}}

    async def scenario() -> None:
        async with await Cluster.start(3, config, transport="simulated", seed=10) as cluster:
            await cluster.stop_node("n2")
            for i in range(30):
                await cluster.put(f"k{i}", i, via="n1")
            await cluster.restart_node("n2")
            assert not in_step(cluster)
            await cluster.node("n1").clock.sleep(60.0)
            assert in_step(cluster)
            assert sum(n.repairs.keys_repaired for n in cluster.nodes.values()) == 30

    run_virtual(scenario())


def test_deleted_data_never_comes_back() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, QUIET, transport="simulated", seed=11) as cluster:
            await cluster.put("gone", "value")
            await cluster.settle()
            await cluster.stop_node("n3")  # n3 keeps the live value
            read = await cluster.get("gone", via="n1")
            await cluster.delete("gone", read.context, via="n1")
            clock = cluster.node("n1").clock
            await clock.sleep(500.0)  # far past the tombstone grace period
            # n3 is unreachable: the tombstone must stay, or n3 would resurrect it.
            report = await cluster.node("n1").repair_all()
            assert report.tombstones_collected == 0
            assert cluster.node("n1").store.read(b"gone")[0].is_tombstone

            await cluster.restart_node("n3")
            await clock.sleep(5.0)  # the detectors see n3 again
            # n3 gets the tombstone; every replica then holds it: all collect it.
            report = await cluster.node("n1").repair_all()
            assert report.keys_repaired == 1
            assert report.tombstones_collected == 1
            for node in cluster.nodes.values():
                assert node.store.read(b"gone") == ()
            assert not (await cluster.get("gone", r=3)).found
            await cluster.node("n3").repair_all()
            for node in cluster.nodes.values():
                assert node.store.read(b"gone") == ()

    run_virtual(scenario())
