"""Sloppy quorum and hinted handoff (Dynamo §4.6), on virtual time."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo_toolkit.errors import QuorumNotReachedError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.testing import run_virtual

DETECTED = 5.0  # seconds of virtual time after which the timeout detector has noticed


def _config(**store: Any) -> dict[str, Any]:
    return {"store": {"n": 3, "r": 2, "w": 2, **store}}


def test_stand_in_takes_the_write_and_hands_it_over() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, _config(), transport="simulated", seed=2) as cluster:
            owner, second, third = cluster.replicas("k")
            coordinator = cluster.node(second)
            await cluster.stop_node(owner)
            await coordinator.clock.sleep(DETECTED)
            result = await cluster.put("k", "v1", w=3, via=second)
            assert result.acknowledged == 3  # two owners and one stand-in
            holders = [n for n in cluster.nodes.values() if len(n.hints)]
            assert len(holders) == 1
            assert holders[0].node_id not in (owner, second, third)
            standin = holders[0]
            assert standin.hints.counts() == {owner: 1}
            # Reads reach the stand-in too (sloppy read quorum).
            assert (await cluster.get("k", r=3, via=second)).values == ("v1",)

            await cluster.restart_node(owner)
            assert cluster.node(owner).store.read(b"k") == ()
            await coordinator.clock.sleep(DETECTED)  # detection of the return, then handoff
            await cluster.settle()
            assert [v.value for v in cluster.node(owner).store.read(b"k")] == [b"\xa2v1"]
            assert len(standin.hints) == 0
            assert standin.hints.delivered == 1

    run_virtual(scenario())


def test_hinted_writes_need_not_count() -> None:
    config = _config(hinted_writes_count=False)

    async def scenario() -> None:
        async with await Cluster.start(5, config, transport="simulated", seed=3) as cluster:
            owner, second, _ = cluster.replicas("k")
            await cluster.stop_node(owner)
            await cluster.node(second).clock.sleep(DETECTED)
            with pytest.raises(QuorumNotReachedError, match="stand-in"):
                await cluster.put("k", "v", w=3, via=second)
            assert (await cluster.put("k", "v", w=2, via=second)).acknowledged == 2

    run_virtual(scenario())


def test_a_full_stand_in_refuses_hints() -> None:
    config = _config(hint_max_count=1)

    async def scenario() -> None:
        async with await Cluster.start(4, config, transport="simulated", seed=4) as cluster:
            victim = "n1"
            await cluster.stop_node(victim)
            survivor = cluster.node("n2")
            await survivor.clock.sleep(DETECTED)
            # Keys that n1 owns and whose one stand-in (the node outside their
            # preference list) is the same: n4.
            keys = [
                f"k{i}"
                for i in range(200)
                if victim in cluster.replicas(f"k{i}") and "n4" not in cluster.replicas(f"k{i}")
            ][:5]
            assert len(keys) == 5
            outcomes = []
            for key in keys:
                try:
                    await cluster.put(key, "v", w=3, via="n2")
                    outcomes.append("held")
                except QuorumNotReachedError as exc:
                    outcomes.append("refused" if "hint store full" in str(exc) else str(exc))
            assert outcomes == ["held", "refused", "refused", "refused", "refused"]
            assert len(cluster.node("n4").hints) == 1
            assert cluster.node("n4").hints.refused == 4

    run_virtual(scenario())


def test_old_hints_expire() -> None:
    config = _config(hint_max_age=60.0)

    async def scenario() -> None:
        async with await Cluster.start(5, config, transport="simulated", seed=6) as cluster:
            owner, second, _ = cluster.replicas("k")
            await cluster.stop_node(owner)
            await cluster.node(second).clock.sleep(DETECTED)
            await cluster.put("k", "v", w=3, via=second)
            standin = next(n for n in cluster.nodes.values() if len(n.hints))
            await standin.clock.sleep(120.0)  # the owner stays down past the age limit
            await standin.deliver_hints()
            assert len(standin.hints) == 0
            assert standin.hints.expired == 1

    run_virtual(scenario())
