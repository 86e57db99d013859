"""Scenarios on the in-process cluster, on virtual time (deterministic, seeded)."""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import (
    ConfigurationError,
    DynamoError,
    InvalidQuorumError,
    PairTooLargeError,
    QuorumNotReachedError,
    UnsupportedValueTypeError,
)
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.messages import ForwardedWrite
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit.values import encode_key, encode_value
from dynamo_toolkit.versioning import decode_context

N3 = {"store": {"n": 3, "r": 2, "w": 2}}


def test_concurrent_writes_through_two_coordinators_become_siblings() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, N3, transport="simulated", seed=11) as cluster:
            first, second = cluster.replicas("doc")[:2]
            seen = (await cluster.get("doc", via=first)).context
            await cluster.put("doc", "from-a", seen, via=first)
            await cluster.put("doc", "from-b", seen, via=second)
            read = await cluster.get("doc")
            assert sorted(read.values) == ["from-a", "from-b"]
            assert read.conflict
            await cluster.put("doc", "merged", read.context)
            again = await cluster.get("doc", r=3)
            assert again.values == ("merged",)

    run_virtual(scenario())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_read_after_acknowledged_write_sees_it(seed: int) -> None:
    """W + R > N and no failures: every read after an acknowledged write returns it."""

    async def scenario() -> None:
        rng = random.Random(seed)
        async with await Cluster.start(
            5, N3, transport="simulated", seed=seed, min_delay=0.0001, max_delay=0.02
        ) as cluster:
            nodes = list(cluster.nodes)
            latest: dict[str, int] = {}
            for step in range(200):
                key = f"k{rng.randrange(20)}"
                writer, reader = rng.choice(nodes), rng.choice(nodes)
                current = await cluster.get(key, via=writer)
                await cluster.put(key, step, current.context, via=writer)
                latest[key] = step
                read = await cluster.get(key, via=reader)
                assert read.values == (step,), (key, read.values, step)

    run_virtual(scenario())


def test_one_replica_of_three_down_keeps_r2_w2_working() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, N3, transport="simulated", seed=5) as cluster:
            await cluster.put("k", "v1")
            victim = cluster.replicas("k")[0]
            await cluster.stop_node(victim)
            for round_ in range(3):  # before and after the detector notices
                context = (await cluster.get("k")).context
                result = await cluster.put("k", f"v{round_ + 2}", context)
                assert result.acknowledged == 2
                assert (await cluster.get("k")).values == (f"v{round_ + 2}",)
                await cluster.node(cluster.replicas("k")[1]).clock.sleep(2.0)

    run_virtual(scenario())


STRICT = {"store": {"n": 3, "r": 2, "w": 2, "sloppy_quorum": False}}


def test_quorum_failure_says_how_many_answered() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, STRICT, transport="simulated", seed=5) as cluster:
            replicas = cluster.replicas("k")
            await cluster.stop_node(replicas[0])
            await cluster.stop_node(replicas[1])
            with pytest.raises(QuorumNotReachedError) as caught:
                await cluster.put("k", "v", via=replicas[2])
            assert (caught.value.answered, caught.value.required) == (1, 2)
            assert "1 of 3 replicas answered, 2 required" in str(caught.value)
            # Once the detector has noticed, the coordinator fails at once and says why.
            await cluster.node(replicas[2]).clock.sleep(5.0)
            with pytest.raises(QuorumNotReachedError, match="failure detector"):
                await cluster.get("k", via=replicas[2])
            # W=1 and R=1 still work with one replica left. The failed write
            # reached that replica, so the client writes over what it read.
            seen = await cluster.get("k", r=1, via=replicas[2])
            assert seen.values == ("v",)
            await cluster.put("k", "w1", seen.context, w=1, via=replicas[2])
            assert (await cluster.get("k", r=1, via=replicas[2])).values == ("w1",)

    run_virtual(scenario())


def test_read_repair_updates_a_stale_replica() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, N3, transport="simulated", seed=8) as cluster:
            await cluster.put("k", "old")
            await cluster.settle()
            stale = cluster.replicas("k")[2]
            await cluster.stop_node(stale)
            context = (await cluster.get("k")).context
            await cluster.put("k", "new", context)
            await cluster.restart_node(stale)
            stored = cluster.node(stale).store.read(b"k")
            assert [v.value for v in stored] == [b"\xa3old"]
            assert (await cluster.get("k", r=3)).values == ("new",)
            await cluster.settle()
            repaired = cluster.node(stale).store.read(b"k")
            assert [v.value for v in repaired] == [b"\xa3new"]
            assert sum(node.stats.read_repairs for node in cluster.nodes.values()) >= 1

    run_virtual(scenario())


def test_delete_is_a_versioned_tombstone() -> None:
    async def scenario() -> None:
        async with await Cluster.start(4, N3, transport="memory") as cluster:
            written = await cluster.put("k", "v")
            await cluster.delete("k", written.context)
            await cluster.settle()
            gone = await cluster.get("k")
            assert not gone.found
            assert gone.values == ()
            for replica in cluster.replicas("k"):
                versions = cluster.node(replica).store.read(b"k")
                assert len(versions) == 1
                assert versions[0].is_tombstone
            # The context of the miss covers the tombstone: a put with it supersedes it.
            await cluster.put("k", "again", gone.context)
            await cluster.settle()
            assert (await cluster.get("k", r=3)).values == ("again",)
            for replica in cluster.replicas("k"):
                assert len(cluster.node(replica).store.read(b"k")) == 1

    run_virtual(scenario())


def test_quorum_settings_are_validated_per_store_and_per_request() -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidQuorumError, match="R must satisfy"):
            await Cluster.start(3, {"store": {"n": 3, "r": 4, "w": 2}})
        with pytest.raises(InvalidQuorumError, match="W must satisfy"):
            await Cluster.start(3, {"store": {"n": 3, "r": 1, "w": 0}})
        async with await Cluster.start(3, N3) as cluster:
            with pytest.raises(InvalidQuorumError):
                await cluster.put("k", "v", w=4)
            with pytest.raises(InvalidQuorumError):
                await cluster.get("k", r=0)
            assert (await cluster.put("k", "v", w=3)).acknowledged == 3
            assert (await cluster.get("k", r=3)).replies == 3

    run_virtual(scenario())


def test_bad_values_are_refused_and_nothing_is_stored() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3) as cluster:
            with pytest.raises(PairTooLargeError) as too_big:
                await cluster.put("big", "x" * 20_000)
            assert too_big.value.size > too_big.value.limit == 10 * 1024
            assert "exceeds the limit of 10240 bytes" in str(too_big.value)
            with pytest.raises(UnsupportedValueTypeError, match="'set'"):
                await cluster.put("odd", {1, 2})
            for node in cluster.nodes.values():
                assert len(node.engine) == 0
            # Values of every supported shape round-trip.
            samples: list[Any] = ["text", b"\x00bytes", ["a", b"b"], {"n": 1, "f": [1.5, None]}]
            for index, value in enumerate(samples):
                await cluster.put(f"v{index}", value)
                assert (await cluster.get(f"v{index}")).value == value

    run_virtual(scenario())


def test_partition_then_heal() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, STRICT, transport="simulated", seed=21) as cluster:
            replicas = cluster.replicas("k")
            others = [n for n in cluster.nodes if n != replicas[0]]
            cluster.partition([replicas[0]], others)
            await cluster.put("k", "majority side", via=replicas[1])
            with pytest.raises(QuorumNotReachedError):
                await cluster.put("k", "minority side", via=replicas[0])
            cluster.heal()
            read = await cluster.get("k", r=3, via=replicas[1])
            # The minority write landed on its own replica: Dynamo keeps it as a sibling.
            assert sorted(read.values) == ["majority side", "minority side"]

    run_virtual(scenario())


def _trace(seed: int) -> list[Any]:
    async def scenario() -> list[Any]:
        trace: list[Any] = []
        rng = random.Random(seed)
        async with await Cluster.start(
            5, N3, transport="simulated", seed=seed, drop=0.05, duplicate=0.05, max_delay=0.05
        ) as cluster:
            for step in range(150):
                key = f"k{rng.randrange(10)}"
                via = rng.choice([node.node_id for node in cluster.running()])
                try:
                    if rng.random() < 0.5:
                        result = await cluster.put(key, step, via=via)
                        trace.append(("put", key, result.acknowledged, result.context))
                    else:
                        read = await cluster.get(key, via=via)
                        trace.append(("get", key, read.values, read.context))
                except QuorumNotReachedError as exc:
                    trace.append(("fail", key, str(exc)))
                if step == 70:
                    await cluster.stop_node("n2")
                if step == 110:
                    await cluster.restart_node("n2")
            await cluster.settle()
            stats = cluster.network.stats  # type: ignore[attr-defined]
            trace.append(("net", stats.sent, stats.dropped, stats.duplicated))
            trace.append(("time", cluster.node("n1").clock.monotonic()))
        return trace

    return run_virtual(scenario())


def test_same_seed_same_run() -> None:
    first, second = _trace(99), _trace(99)
    assert first == second
    assert any(entry[0] == "fail" for entry in first) or first[-2][2] > 0  # faults happened
    assert _trace(100) != first


@pytest.mark.parametrize("forward", [True, False])
def test_a_non_replica_coordinator_never_reuses_a_stored_clock(forward: bool) -> None:
    """A blind write through a node that holds no copy of the key must not vanish.

    Without forwarding, that node's new clock can equal one it made before
    (it has no local versions to count past): the write then looks older than
    what the replicas hold and is dropped although acknowledged. Forwarding
    to a replica (Dynamo §4.5) lets a node that holds the versions coordinate.
    """

    async def scenario() -> None:
        config = {"store": {"n": 3, "r": 2, "w": 2, "forward_writes": forward}}
        async with await Cluster.start(5, config, transport="simulated", seed=5) as cluster:
            replicas = cluster.replicas("doc")
            outsider = next(node for node in cluster.nodes if node not in replicas)
            await cluster.put("doc", "first", via=outsider)
            seen = await cluster.get("doc", via=replicas[0])
            await cluster.put("doc", "second", seen.context, via=replicas[0])
            acknowledged = await cluster.put("doc", "third", via=outsider)
            assert acknowledged.acknowledged >= 2
            read = await cluster.get("doc", r=3)
            if forward:
                assert "third" in read.values
                forwarded = cluster.node(outsider).stats.forwarded_writes
                assert forwarded == 2
            else:
                assert "third" not in read.values  # the loss forwarding prevents

    run_virtual(scenario())


def test_a_forwarded_write_reports_the_replicas_quorum_failure() -> None:
    async def scenario() -> None:
        config = {"store": {"n": 3, "r": 2, "w": 3, "sloppy_quorum": False}}
        async with await Cluster.start(5, config, transport="simulated", seed=6) as cluster:
            replicas = cluster.replicas("doc")
            outsider = next(node for node in cluster.nodes if node not in replicas)
            others = [node for node in cluster.nodes if node not in (outsider, replicas[0])]
            # The outsider reaches the first replica, which reaches no other.
            cluster.partition([outsider, replicas[0]], others)
            with pytest.raises(QuorumNotReachedError, match=f"coordinated by {replicas[0]}"):
                await cluster.put("doc", "x", via=outsider)
            assert cluster.node(outsider).stats.forwarded_writes == 1

    run_virtual(scenario())


QUORUM_READS = {"store": {"n": 3, "r": 2, "w": 2, "read_fanout": "quorum"}}


def _replica_reads(cluster: Cluster) -> dict[str, int]:
    return {name: node.stats.replica_reads for name, node in cluster.nodes.items()}


@pytest.mark.parametrize(("fanout", "asked"), [("all", 3), ("quorum", 2)])
def test_read_fanout_says_how_many_replicas_a_read_asks(fanout: str, asked: int) -> None:
    config = {"store": {**N3["store"], "read_fanout": fanout}}

    async def scenario() -> None:
        async with await Cluster.start(5, config, transport="simulated", seed=9) as cluster:
            await cluster.put("k", "v")
            await cluster.settle()
            replicas = cluster.replicas("k")
            coordinator = replicas[1]
            before = _replica_reads(cluster)
            assert (await cluster.get("k", via=coordinator)).values == ("v",)
            await cluster.settle()
            after = _replica_reads(cluster)
            read = {name for name in after if after[name] > before[name]}
            assert len(read) == asked
            # The coordinator's own copy is always among those asked.
            assert coordinator in read
            assert read <= set(replicas)

    run_virtual(scenario())


def test_quorum_reads_ask_another_replica_when_one_fails() -> None:
    async def scenario() -> None:
        async with await Cluster.start(5, QUORUM_READS, transport="simulated", seed=10) as cluster:
            await cluster.put("k", "v", w=3)
            replicas = cluster.replicas("k")
            coordinator = replicas[0]
            # The replica a quorum read asks after the coordinator's own copy.
            await cluster.stop_node(replicas[1])
            before = _replica_reads(cluster)
            result = await cluster.get("k", via=coordinator)  # detector not yet aware
            assert result.values == ("v",)
            assert result.replies == 2
            assert _replica_reads(cluster)[replicas[2]] == before[replicas[2]] + 1
            # R=3 cannot be met with one replica stopped: the error says who failed.
            with pytest.raises(QuorumNotReachedError, match=replicas[1]):
                await cluster.get("k", r=3, via=coordinator)

    run_virtual(scenario())


def test_read_fanout_must_be_known() -> None:
    with pytest.raises(ConfigurationError, match="read_fanout must be one of all, quorum"):
        StoreConfig(read_fanout="some")


@pytest.mark.parametrize("nodes", [1, 3])
def test_a_sole_replica_answers_itself_and_its_failure_is_a_quorum_failure(nodes: int) -> None:
    """N=1: the coordinator that holds the key answers from its own copy, and a
    storage failure there is the request's quorum failure, as for any replica."""

    async def scenario() -> None:
        config = {"store": {"n": 1, "r": 1, "w": 1}}
        async with await Cluster.start(nodes, config, transport="simulated", seed=5) as cluster:
            owner = cluster.node(cluster.replicas("solo")[0])
            await cluster.put("solo", "v1", via=owner.node_id)
            assert (await cluster.get("solo", via=owner.node_id)).values == ("v1",)
            assert (owner.stats.writes, owner.stats.replica_writes) == (1, 1)
            assert (owner.stats.reads, owner.stats.replica_reads) == (1, 1)

            def broken(*args: Any) -> Any:
                raise DynamoError("disk on fire")

            owner.store.apply = broken  # type: ignore[method-assign,assignment]
            with pytest.raises(QuorumNotReachedError) as write:
                await cluster.put("solo", "v2", via=owner.node_id)
            assert str(write.value) == (
                f"write quorum not reached: 0 of 1 replicas answered, 1 required: "
                f"{owner.node_id}: disk on fire"
            )
            owner.store.read = broken  # type: ignore[method-assign,assignment]
            with pytest.raises(QuorumNotReachedError, match="read quorum not reached: 0 of 1"):
                await cluster.get("solo", via=owner.node_id)
            assert owner.stats.quorum_failures == 2

    run_virtual(scenario())


async def test_a_duplicated_forwarded_write_is_coordinated_once() -> None:
    # With blind writes as siblings a second coordination would be visible as
    # a sibling of the first (the default would supersede it silently).
    config = {**N3, "conflict_resolver": {"name": "dvv", "blind_writes": "sibling"}}
    async with await Cluster.start(3, config, transport="memory") as cluster:
        replica = cluster.node(cluster.replicas("k")[0])
        forwarded = ForwardedWrite(b"k", encode_value("v"), None, None, None, "n9/1")
        first = await replica.handle("n9", forwarded)
        again = await replica.handle("n9", forwarded)  # delivered twice, or retried
        assert again == first
        assert (await cluster.get("k", r=3)).values == ("v",)
        # Another id is another write: without a context, a sibling.
        await replica.handle("n9", attrs.evolve(forwarded, write_id="n9/2"))
        assert (await cluster.get("k", r=3)).values == ("v", "v")


async def test_default_settings_keep_both_writes_of_two_clients_through_one_coordinator() -> None:
    """Two clients, one context, one coordinator: by default both writes survive."""
    async with await Cluster.start(3, N3, transport="memory") as cluster:
        via = cluster.replicas("cart:shared")[0]
        await cluster.put("cart:shared", ["milk"], via=via)
        seen = await cluster.get("cart:shared", via=via)
        await cluster.put("cart:shared", ["milk", "eggs"], seen.context, via=via)
        await cluster.put("cart:shared", ["milk", "bread"], seen.context, via=via)
        both = await cluster.get("cart:shared", r=3, via=via)
        assert sorted(both.values) == [["milk", "bread"], ["milk", "eggs"]]


async def test_default_settings_keep_one_version_under_repeated_blind_writes() -> None:
    """Writes without a context supersede what their coordinator holds: no pile-up."""
    async with await Cluster.start(3, N3, transport="memory") as cluster:
        coordinators = [*cluster.replicas("hot"), *cluster.replicas("hot")[:1]]
        for round_no in range(50):
            for via in coordinators:  # every replica coordinates, and the same one twice
                await cluster.put("hot", f"{round_no}/{via}", via=via)
        await cluster.settle()
        read = await cluster.get("hot", r=3)
        assert read.values == (f"49/{coordinators[-1]}",)
        clock = decode_context(read.context)
        # One entry per coordinator: blind writes never open a dvv branch.
        assert sorted(entry.actor for entry in clock.entries) == sorted(cluster.replicas("hot"))
        for replica in cluster.replicas("hot"):
            assert len(cluster.node(replica).store.read(encode_key("hot"))) == 1


def test_a_blind_write_keeps_what_its_coordinator_has_not_seen() -> None:
    """A version only the other replicas hold survives a blind write as a sibling."""

    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="simulated", seed=3) as cluster:
            first, second, third = cluster.replicas("k")
            await cluster.put("k", "old", via=first)
            await cluster.settle()
            seen = (await cluster.get("k", via=second)).context
            cluster.partition([first], [second, third])
            await cluster.put("k", "unseen", seen, via=second)  # never reaches ``first``
            cluster.heal()
            await cluster.put("k", "blind", via=first)  # supersedes "old" only
            await cluster.settle()
            assert sorted((await cluster.get("k", r=3)).values) == ["blind", "unseen"]

    run_virtual(scenario())
