"""StoreService: the operations every front-end shares."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dynamo_toolkit.errors import ConfigurationError, PairTooLargeError, QuorumNotReachedError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit_server.errors import ErrorKind, WrongTypeError, describe
from dynamo_toolkit_server.service import MemberAction, StoreService, merge_lists

N3 = {"store": {"n": 3, "r": 2, "w": 2}}


def _push(item: Any) -> Any:
    return lambda items: ([*items, item], len(items) + 1)


def test_concurrent_pushes_through_one_node_all_survive() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="simulated", seed=4) as cluster:
            service = StoreService(cluster.node("n1"))
            await asyncio.gather(*(service.update_list("q", _push(i)) for i in range(40)))
            read = await service.read_one("q")
            assert sorted(read.value) == list(range(40))
            assert read.siblings == 1

    run_virtual(scenario())


def test_concurrent_pushes_through_two_nodes_merge() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="simulated", seed=5) as cluster:
            first, second = StoreService(cluster.node("n1")), StoreService(cluster.node("n2"))
            await first.update_list("q", _push("base"))
            await asyncio.gather(
                *(first.update_list("q", _push(f"a{i}")) for i in range(5)),
                *(second.update_list("q", _push(f"b{i}")) for i in range(5)),
            )
            read = await first.read_one("q", r=3)
            assert sorted(read.value) == sorted(
                ["base", *(f"a{i}" for i in range(5)), *(f"b{i}" for i in range(5))]
            )
            # Writing the merge back with its context collapses the siblings.
            await first.put("q", read.value, read.context)
            assert (await second.read_one("q", r=3)).siblings == 1

    run_virtual(scenario())


def test_overwrite_supersedes_what_the_node_holds() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="memory") as cluster:
            service = StoreService(cluster.node(cluster.replicas("k")[0]))
            other = StoreService(cluster.node(cluster.replicas("k")[1]))
            seen = (await service.get("k")).context
            await service.put("k", b"one", seen)
            await other.put("k", b"two", seen)  # the same context elsewhere: siblings
            await cluster.settle()
            assert (await service.get("k", r=3)).conflict
            await service.overwrite("k", b"three", w=3)
            read = await other.get("k", r=3)
            assert read.values == (b"three",)

    run_virtual(scenario())


def test_merge_lists_keeps_every_concurrent_push() -> None:
    assert merge_lists([[1, 2, 3], [1, 2, 4]]) == [1, 2, 3, 4]
    assert merge_lists([[1, 1], [1]]) == [1, 1]
    assert merge_lists([]) == []


def test_concurrent_updates_of_one_key_share_reads_and_writes() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="simulated", seed=6) as cluster:
            node = cluster.node("n1")
            service = StoreService(node)
            writes_before = node.stats.writes
            answers = await asyncio.gather(*(service.update_list("q", _push(i)) for i in range(40)))
            # Each caller hears the length its own push made, as if run alone.
            assert sorted(answers) == list(range(1, 41))
            assert (await service.read_one("q")).value == list(range(40))
            # All 40 queued before the batch started: one read, one write.
            assert node.stats.writes - writes_before == 1

    run_virtual(scenario())


def test_a_failing_change_fails_its_caller_only() -> None:
    def refuse(items: list[Any]) -> Any:
        raise ValueError("no")

    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="simulated", seed=7) as cluster:
            service = StoreService(cluster.node("n1"))
            results = await asyncio.gather(
                service.update_list("q", _push("a")),
                service.update_list("q", _push("b")),
                service.update_list("q", refuse),
                service.update_list("q", _push("c")),
                return_exceptions=True,
            )
            assert list(results[:2]) == [1, 1 + 1]
            assert isinstance(results[2], ValueError)
            assert results[3] == 3
            assert (await service.read_one("q")).value == ["a", "b", "c"]

    run_virtual(scenario())


def test_a_failed_batch_write_reaches_every_caller_and_later_updates_still_run() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="simulated", seed=8) as cluster:
            service = StoreService(cluster.node("n1"))
            await service.update_list("q", _push("kept"))
            cluster.partition(["n1"], ["n2", "n3"])
            results = await asyncio.gather(
                *(service.update_list("q", _push(i), r=1, w=3) for i in range(5)),
                return_exceptions=True,
            )
            assert all(isinstance(result, QuorumNotReachedError) for result in results)
            cluster.heal()
            assert await service.update_list("q", _push("after")) >= 2
            assert (await service.read_one("q", r=3)).value[0] == "kept"

    run_virtual(scenario())


def test_an_update_whose_caller_left_before_its_batch_is_not_applied() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="simulated", seed=11) as cluster:
            service = StoreService(cluster.node("n1"))
            first = asyncio.ensure_future(service.update_list("q", _push("kept")))
            await asyncio.sleep(0)  # its batch is now in flight, waiting for replicas
            gone = asyncio.ensure_future(service.update_list("q", _push("gone")))
            later = asyncio.ensure_future(service.update_list("q", _push("later")))
            await asyncio.sleep(0)  # both queued behind the first
            gone.cancel()
            assert await first == 1
            assert await later == 2
            assert gone.cancelled()
            assert (await service.read_one("q")).value == ["kept", "later"]

    run_virtual(scenario())


def test_delete_without_context_removes_every_sibling_and_skips_absent_keys() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="memory") as cluster:
            first, second = StoreService(cluster.node("n1")), StoreService(cluster.node("n2"))
            await first.put("k", b"one")
            await second.put("k", b"two")  # blind: a sibling
            await cluster.settle()
            deletion = await first.delete_versions("k", r=3)
            assert deletion.deleted
            assert deletion.acknowledged >= 2
            assert not (await second.get("k", r=3)).found
            absent = await first.delete_versions("never")
            assert not absent.deleted
            assert absent.acknowledged == 0
            assert await first.remove("never") is False

    run_virtual(scenario())


def test_list_operations_follow_redis() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="memory") as cluster:
            service = StoreService(cluster.node("n1"))
            assert await service.push("q", [b"a", b"b"], left=True) == 2
            assert await service.push("q", [b"c"], left=False) == 3
            assert await service.list_slice("q", 0, -1) == [b"b", b"a", b"c"]
            assert await service.list_length("q") == 3
            assert await service.pop("q", left=False) == [b"c"]
            assert await service.pop("q", 0, left=True) == []
            assert await service.pop("q", 5, left=True) == [b"b", b"a"]
            assert await service.pop("q", left=True) is None  # the key is gone
            assert not (await service.get("q")).found

    run_virtual(scenario())


def test_strings_only_list_operations_refuse_foreign_items() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="memory") as cluster:
            service = StoreService(cluster.node("n1"))
            await service.put("numbers", [1, 2])
            assert await service.list_length("numbers") == 2
            with pytest.raises(WrongTypeError) as foreign:
                await service.push("numbers", [b"x"], left=True, strings_only=True)
            assert foreign.value.foreign  # a list of numbers is not a Redis list
            await service.put("text", b"plain")
            with pytest.raises(WrongTypeError) as not_a_list:
                await service.list_length("text", strings_only=True)
            assert not not_a_list.value.foreign  # a string is not a list

    run_virtual(scenario())


def test_status_and_membership_admin() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="memory") as cluster:
            service = StoreService(cluster.node("n1"))
            status = service.status()
            assert status.node_id == "n1"
            assert status.running
            assert sorted(status.members) == ["n1", "n2", "n3"]
            assert (status.quorums.n, status.quorums.r, status.quorums.w) == (3, 2, 2)
            assert service.pending_hints().total == 0
            assert service.membership()["node"] == "n1"
            report = service.stage("n3", MemberAction.LEAVE)
            assert "n3" not in report["proposed_owners"]
            service.stage("n3", MemberAction.KEEP)
            with pytest.raises(ConfigurationError, match="nothing staged"):
                service.commit()
            assert (await service.repair()).peers_unreachable == 0

    run_virtual(scenario())


def test_errors_carry_their_kind_and_details() -> None:
    quorum = describe(QuorumNotReachedError("write", 1, 2, 3))
    assert quorum.kind is ErrorKind.QUORUM
    assert quorum.name == "QuorumNotReachedError"
    assert dict(quorum.fields) == {
        "operation": "write",
        "answered": 1,
        "required": 2,
        "contacted": 3,
    }
    large = describe(PairTooLargeError(3, 10, 8))
    assert large.kind is ErrorKind.TOO_LARGE
    assert dict(large.fields) == {"key_bytes": 3, "value_bytes": 10, "limit": 8}
    assert describe(ConfigurationError("bad")).kind is ErrorKind.INVALID
    assert describe(WrongTypeError()).kind is ErrorKind.WRONG_TYPE
    internal = describe(KeyError("x"))
    assert (internal.kind, internal.name, internal.message) == (
        ErrorKind.INTERNAL,
        "InternalError",
        "KeyError: 'x'",
    )
