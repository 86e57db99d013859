"""Gossip, join, leave and remove with data handoff, on virtual time."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.membership_state import MemberStatus
from dynamo_toolkit.testing import run_virtual

CONFIG: dict[str, Any] = {
    "store": {"n": 3, "r": 2, "w": 2, "gossip_interval": 0.5, "anti_entropy_interval": 3600.0}
}
KEYS = [f"key{i}" for i in range(600)]


async def load(cluster: Cluster) -> None:
    for index, key in enumerate(KEYS):
        await cluster.put(key, index)
    await cluster.settle()


def replica_copies(cluster: Cluster) -> dict[str, set[str]]:
    """Which nodes hold each key."""
    holders: dict[str, set[str]] = {key: set() for key in KEYS}
    for node in cluster.nodes.values():
        for key in KEYS:
            if node.store.read(key.encode()):
                holders[key].add(node.node_id)
    return holders


async def assert_all_readable(cluster: Cluster) -> None:
    for index, key in enumerate(KEYS):
        assert (await cluster.get(key)).values == (index,), key


def test_gossip_spreads_a_change_to_every_node() -> None:
    async def scenario() -> None:
        async with await Cluster.start(8, CONFIG, transport="simulated", seed=1) as cluster:
            cluster.stage_leave("n8", via="n1")
            clock = cluster.node("n1").clock
            start = clock.monotonic()
            while any(
                n.membership.state.members["n8"].status.value != "leaving"
                for n in cluster.nodes.values()
            ):
                await clock.sleep(0.1)
            # Push-pull with one random peer per round: O(log n) rounds.
            assert clock.monotonic() - start < 10 * CONFIG["store"]["gossip_interval"]

    run_virtual(scenario())


def test_join_moves_about_its_share_and_loses_nothing() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, CONFIG, transport="simulated", seed=2) as cluster:
            await load(cluster)
            before = replica_copies(cluster)
            await cluster.add_node("n6")
            await cluster.node("n1").clock.sleep(2.0)
            plan = cluster.plan()
            assert plan.owners_after == ("n1", "n2", "n3", "n4", "n5", "n6")
            assert set(plan.gained_fraction()) == {"n6"}
            cluster.commit()
            # Old owners serve while the new one pulls: reads keep working.
            await assert_all_readable(cluster)
            await cluster.wait_for_handoff()
            await assert_all_readable(cluster)
            after = replica_copies(cluster)
            received = sum(1 for key in KEYS if "n6" in after[key])
            assert received == sum(1 for key in KEYS if "n6" in cluster.replicas(key))
            # The new node holds about 1/(n+1) of all replicas: 3 * 600 / 6.
            share = received / (3 * len(KEYS))
            assert 0.5 / 6 < share < 1.8 / 6, share
            # Every key is on each of its new replicas.
            for key in KEYS:
                assert set(cluster.replicas(key)) <= after[key], key
            # Old replicas that lost a key dropped their copy: holders == replicas.
            assert all(after[key] == set(cluster.replicas(key)) for key in KEYS)
            assert any(before[key] != after[key] for key in KEYS)

    run_virtual(scenario())


def test_leave_hands_everything_off() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, CONFIG, transport="simulated", seed=3) as cluster:
            await load(cluster)
            cluster.stage_leave("n2")
            plan = cluster.commit()
            assert "n2" not in plan.owners_after
            assert "n2" in plan.owners_before
            await cluster.wait_for_handoff()
            for key in KEYS:
                replicas = cluster.replicas(key)
                assert "n2" not in replicas
                for replica in replicas:
                    assert cluster.node(replica).store.read(key.encode()), (key, replica)
            await cluster.stop_node("n2")  # it may go now: nothing is lost
            await assert_all_readable(cluster)

    run_virtual(scenario())


def test_a_dead_node_is_replaced_from_the_survivors() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, CONFIG, transport="simulated", seed=4) as cluster:
            await load(cluster)
            await cluster.stop_node("n3")  # dead for good
            await cluster.add_node("n6")
            await cluster.node("n1").clock.sleep(3.0)
            cluster.stage_remove("n3")
            cluster.commit()
            await cluster.wait_for_handoff()
            for key in KEYS:
                replicas = cluster.replicas(key)
                assert "n3" not in replicas
                for replica in replicas:
                    assert cluster.node(replica).store.read(key.encode()), (key, replica)
            await assert_all_readable(cluster)

    run_virtual(scenario())


def test_a_commit_may_not_leave_fewer_than_n_owners_and_leaves_can_be_undone() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, CONFIG, transport="simulated", seed=5) as cluster:
            cluster.stage_leave("n3")
            with pytest.raises(DynamoError, match="fewer than N=3"):
                cluster.commit()
            cluster.node("n1").membership.stage("n3", MemberStatus.UP)  # dtk cluster keep
            assert cluster.plan().owners_after == ("n1", "n2", "n3")

    run_virtual(scenario())


def test_hints_for_a_removed_node_go_to_the_new_replicas() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, CONFIG, transport="simulated", seed=6) as cluster:
            victim = cluster.replicas("orphan")[0]
            await cluster.stop_node(victim)
            survivor = next(n for n in cluster.replicas("orphan") if n != victim)
            clock = cluster.node(survivor).clock
            await clock.sleep(5.0)  # detected: a stand-in takes the write with a hint
            await cluster.put("orphan", "kept", w=3, via=survivor)
            holders = [n for n in cluster.nodes.values() if len(n.hints)]
            assert len(holders) == 1
            cluster.stage_remove(victim, via=survivor)
            cluster.commit(via=survivor)
            await cluster.wait_for_handoff()
            await holders[0].deliver_hints()
            assert len(holders[0].hints) == 0
            for replica in cluster.replicas("orphan"):
                assert cluster.node(replica).store.read(b"orphan"), replica

    run_virtual(scenario())


def test_phi_accrual_is_not_fooled_by_bursts_of_traffic() -> None:
    config: dict[str, Any] = {**CONFIG, "failure_detector": "phi-accrual"}

    async def scenario() -> None:
        async with await Cluster.start(3, config, transport="simulated", seed=7) as cluster:
            clock = cluster.node("n1").clock
            await clock.sleep(30.0)  # learn the heartbeat rhythm
            for i in range(300):  # a burst: many messages within milliseconds
                await cluster.put(f"burst{i}", i, via="n1")
            await clock.sleep(1.0)  # an ordinary gap between heartbeats
            for node in cluster.nodes.values():
                for peer in cluster.nodes:
                    if peer != node.node_id:
                        assert node.is_available(peer), (node.node_id, peer)

    run_virtual(scenario())
