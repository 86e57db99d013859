"""Consistency levels across two datacenters: LOCAL_*, EACH_QUORUM, QUORUM (virtual time)."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo_toolkit.errors import QuorumNotReachedError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.testing import run_virtual

DETECTED = 5.0  # seconds of virtual time after which the timeout detector has noticed
TIMEOUT = 1.0  # the store's request_timeout

#: dc1: n1..n3, dc2: n4..n6.
MEMBERS = [NodeInfo(f"n{i}", datacenter="dc1" if i <= 3 else "dc2") for i in range(1, 7)]
DC1 = ["n1", "n2", "n3"]
DC2 = ["n4", "n5", "n6"]


def _config(dc1: int = 3, dc2: int = 3, **store: Any) -> dict[str, Any]:
    return {
        "store": {"n": dc1 + dc2, "r": 2, "w": 2, "request_timeout": TIMEOUT, **store},
        "replicator": {"name": "network-topology", "replicas": {"dc1": dc1, "dc2": dc2}},
    }


def test_local_quorum_serves_through_the_loss_of_the_other_datacenter() -> None:
    """dc2 down: LOCAL_QUORUM in dc1 reads and writes; EACH_QUORUM and QUORUM fail
    fast naming what is short; once dc2 is back, EACH_QUORUM succeeds."""

    async def scenario() -> None:
        async with await Cluster.start(
            MEMBERS, _config(), transport="simulated", seed=1
        ) as cluster:
            n1 = cluster.node("n1")
            assert (await cluster.put("k", "v0", w="EACH_QUORUM", via="n1")).acknowledged >= 4
            for node_id in DC2:
                await cluster.stop_node(node_id)
            await n1.clock.sleep(DETECTED)

            put = await cluster.put("k", "v1", w="LOCAL_QUORUM", via="n1")
            assert put.acknowledged >= 2
            assert (await cluster.get("k", r="local_quorum", via="n1")).values == ("v1",)
            assert (await cluster.get("k", r="LOCAL_ONE", via="n2")).values == ("v1",)

            started = n1.clock.monotonic()
            with pytest.raises(QuorumNotReachedError) as each:
                await cluster.put("k", "v2", w="EACH_QUORUM", via="n1")
            assert n1.clock.monotonic() - started < TIMEOUT / 10  # refused before asking
            assert str(each.value).startswith("write EACH_QUORUM not reached: 0 of 2 in dc2")
            assert each.value.level == "EACH_QUORUM"
            assert each.value.shortfall == {"dc2": (0, 2)}
            assert each.value.required == 4

            with pytest.raises(QuorumNotReachedError, match=r"^read QUORUM not reached: 3 of 4"):
                await cluster.get("k", r="QUORUM", via="n1")
            with pytest.raises(QuorumNotReachedError, match=r"^read ALL not reached"):
                await cluster.get("k", r="ALL", via="n1")

            for node_id in DC2:
                await cluster.restart_node(node_id)
            await n1.clock.sleep(DETECTED)
            put = await cluster.put("k", "v3", w="EACH_QUORUM", via="n1")
            assert put.acknowledged >= 4
            assert (await cluster.get("k", r="EACH_QUORUM", via="n4")).values == ("v3",)

    run_virtual(scenario())


def test_local_levels_do_not_wait_for_a_remote_datacenter() -> None:
    """Cut between datacenters before anyone notices: LOCAL_QUORUM answers at once,
    EACH_QUORUM waits for dc2 until the request timeout, then names dc2."""

    async def scenario() -> None:
        async with await Cluster.start(
            MEMBERS, _config(), transport="simulated", seed=2
        ) as cluster:
            n1 = cluster.node("n1")
            cluster.partition(DC1, DC2)
            started = n1.clock.monotonic()
            await cluster.put("k", "v", w="LOCAL_QUORUM", via="n1")
            assert (await cluster.get("k", r="LOCAL_QUORUM", via="n1")).values == ("v",)
            assert n1.clock.monotonic() - started < TIMEOUT / 2

            with pytest.raises(QuorumNotReachedError) as each:
                await cluster.put("k", "v2", w="EACH_QUORUM", via="n1")
            assert "EACH_QUORUM not reached: 0 of 2 in dc2" in str(each.value)
            assert each.value.shortfall == {"dc2": (0, 2)}  # dc1 is not named
            assert each.value.answered == 3  # dc1's three replied
            cluster.heal()

    run_virtual(scenario())


def test_store_default_level_and_a_level_no_replica_set_can_meet() -> None:
    """The store's R and W may be levels; LOCAL_* where the coordinator's datacenter
    holds no replica is refused at once, naming the level and the datacenter."""

    async def scenario() -> None:
        config = _config(dc1=2, dc2=0, r="LOCAL_QUORUM", w="local_quorum")
        async with await Cluster.start(MEMBERS, config, transport="simulated", seed=3) as cluster:
            assert cluster.node("n1").config.w == "LOCAL_QUORUM"
            key = next(k for k in (f"k{i}" for i in range(50)) if "n1" in cluster.replicas(k))
            assert (await cluster.put(key, "v", via="n1")).acknowledged >= 2
            assert (await cluster.get(key, via="n1")).values == ("v",)
            with pytest.raises(QuorumNotReachedError, match=r"LOCAL_QUORUM.*datacenter dc2"):
                await cluster.get(key, via="n4")

    run_virtual(scenario())


def test_a_local_write_is_forwarded_only_inside_the_datacenter() -> None:
    """A node that holds no replica forwards a LOCAL_QUORUM write to a replica in its
    own datacenter, even when the preference list starts in the other one."""

    async def scenario() -> None:
        config = _config(dc1=2, dc2=2)
        async with await Cluster.start(MEMBERS, config, transport="simulated", seed=4) as cluster:
            chosen = None
            for key in (f"k{i}" for i in range(200)):
                replicas = cluster.replicas(key)
                outside = [n for n in DC1 if n not in replicas]
                if replicas[0] in DC2 and outside:
                    chosen = key, outside[0]
                    break
            assert chosen is not None
            key, via = chosen
            cluster.partition(DC1, DC2)  # unnoticed: dc2 still looks up
            put = await cluster.put(key, "v", w="LOCAL_QUORUM", via=via)
            assert put.acknowledged >= 2
            assert cluster.node(via).stats.forwarded_writes == 1
            cluster.heal()

    run_virtual(scenario())


@pytest.mark.parametrize("hinted_writes_count", [True, False])
def test_a_stand_in_counts_in_its_own_datacenter(hinted_writes_count: bool) -> None:
    """A dc1 replica down: its stand-in (the dc1 node outside the list) counts
    toward LOCAL_QUORUM in dc1, unless stand-ins do not count at all."""

    async def scenario() -> None:
        config = _config(dc1=2, dc2=2, hinted_writes_count=hinted_writes_count)
        async with await Cluster.start(MEMBERS, config, transport="simulated", seed=5) as cluster:
            replicas = cluster.replicas("k")
            coordinator, down = [n for n in replicas if n in DC1]
            await cluster.stop_node(down)
            await cluster.node(coordinator).clock.sleep(DETECTED)
            if hinted_writes_count:
                put = await cluster.put("k", "v", w="LOCAL_QUORUM", via=coordinator)
                assert put.acknowledged >= 2
                (standin,) = [n for n in DC1 if n not in replicas]
                assert len(cluster.node(standin).hints) == 1
            else:
                with pytest.raises(QuorumNotReachedError) as short:
                    await cluster.put("k", "v", w="LOCAL_QUORUM", via=coordinator)
                # Refused before asking: dc1's count is of the replicas up, the
                # coordinator's own (its stand-in does not count).
                assert short.value.shortfall == {"dc1": (1, 2)}
                assert short.value.answered == 0
                assert "LOCAL_QUORUM not reached: 1 of 2 in dc1" in str(short.value)

    run_virtual(scenario())


def test_a_local_read_asking_only_what_it_needs_stays_in_its_datacenter() -> None:
    """read_fanout "quorum": a LOCAL_QUORUM read asks two dc1 replicas and no dc2
    one; with a dc1 replica down it brings in the third, still none of dc2."""

    async def scenario() -> None:
        config = _config(read_fanout="quorum")
        async with await Cluster.start(MEMBERS, config, transport="simulated", seed=6) as cluster:
            await cluster.put("k", "v", w="ALL", via="n1")
            remote_reads = sum(cluster.node(n).stats.replica_reads for n in DC2)
            assert (await cluster.get("k", r="LOCAL_QUORUM", via="n1")).values == ("v",)
            local_reads = [cluster.node(n).stats.replica_reads for n in DC1]
            assert sum(local_reads) == 2
            await cluster.stop_node("n2")
            assert (await cluster.get("k", r="LOCAL_QUORUM", via="n1")).values == ("v",)
            assert sum(cluster.node(n).stats.replica_reads for n in DC2) == remote_reads
            await cluster.stop_node("n3")
            with pytest.raises(QuorumNotReachedError) as short:
                await cluster.get("k", r="LOCAL_QUORUM", via="n1")
            assert short.value.shortfall == {"dc1": (1, 2)}
            assert "LOCAL_QUORUM not reached: 1 of 2 in dc1" in str(short.value)

    run_virtual(scenario())


def test_a_forwarded_write_keeps_its_level() -> None:
    """A node outside the preference list forwards an EACH_QUORUM write: the
    replica coordinating it holds it to EACH_QUORUM, not to the store's W = 2."""

    async def scenario() -> None:
        async with await Cluster.start(
            MEMBERS, _config(dc1=2, dc2=2), transport="simulated", seed=7
        ) as cluster:
            replicas = cluster.replicas("k")
            (via,) = [n for n in DC1 if n not in replicas]
            for node_id in DC2:
                await cluster.stop_node(node_id)
            for node_id in DC1:
                await cluster.node(node_id).clock.sleep(DETECTED)
            assert (await cluster.put("k", "v", via=via)).acknowledged == 2  # W = 2
            with pytest.raises(QuorumNotReachedError) as each:
                await cluster.put("k", "v2", w="EACH_QUORUM", via=via)
            assert each.value.level == "EACH_QUORUM"
            assert "coordinated by" in str(each.value)
            assert "EACH_QUORUM not reached: 0 of 2 in dc2" in str(each.value)
            assert cluster.node(via).stats.forwarded_writes == 2

    run_virtual(scenario())
