"""Conformance suite for :class:`~dynamo_toolkit.interfaces.Replicator` implementations.

The suite brings its own tiny ownership table, so it depends on no partitioner.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from dynamo_toolkit.interfaces.partitioner import OwnershipTable
from dynamo_toolkit.interfaces.replicator import Placement, Replicator
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.values import POSITION_SPACE

__all__ = ["ReplicatorSuite", "StaticTable"]

MakeReplicator = Callable[[], Replicator]


class StaticTable(OwnershipTable):
    """A fixed ring of ``(token, node_id)`` pairs; the owner of ``p`` holds the next token."""

    def __init__(self, pairs: Sequence[tuple[int, str]]) -> None:
        ordered = sorted(pairs)
        self._tokens = [token for token, _ in ordered]
        self._owners = [node for _, node in ordered]
        self._bounds = sorted({0, *self._tokens})

    @classmethod
    def interleaved(cls, node_ids: Sequence[str], tokens_per_node: int, seed: int) -> StaticTable:
        """Evenly spaced tokens dealt to ``node_ids`` in a seeded shuffled order."""
        owners = [node for node in node_ids for _ in range(tokens_per_node)]
        random.Random(seed).shuffle(owners)
        step = POSITION_SPACE // len(owners)
        return cls([(step * (i + 1) - 1, node) for i, node in enumerate(owners)])

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node ids on the ring, sorted."""
        return tuple(sorted(set(self._owners)))

    def walk(self, position: int) -> Iterator[str]:
        """Owners of successive tokens from ``position``'s owner, one full turn."""
        start = bisect_right(self._tokens, position) % len(self._tokens)
        yield from self._owners[start:]
        yield from self._owners[:start]

    def partitions(self) -> Sequence[int]:
        """Partition start positions."""
        return self._bounds

    def partition_of(self, position: int) -> int:
        """Start of the partition holding ``position``."""
        return self._bounds[bisect_right(self._bounds, position) - 1]

    def partition_range(self, partition: int) -> tuple[int, int]:
        """``[start, end)`` of ``partition``."""
        index = self._bounds.index(partition)
        end = self._bounds[index + 1] if index + 1 < len(self._bounds) else POSITION_SPACE
        return partition, end


def _ids(count: int) -> list[str]:
    return [f"node-{i}" for i in range(count)]


def _plain_members(ids: Sequence[str]) -> dict[str, NodeInfo]:
    return {node_id: NodeInfo(node_id) for node_id in ids}


def _positions(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    return [0, POSITION_SPACE - 1] + [rng.getrandbits(64) for _ in range(count)]


def _distinct_walk(table: OwnershipTable, position: int) -> list[str]:
    return list(dict.fromkeys(table.walk(position)))


class ReplicatorSuite:
    """Tests every replicator must pass.

    Subclass it as ``class TestMine(ReplicatorSuite)`` and provide a fixture
    ``make_replicator`` returning a zero-argument callable that builds a fresh
    replicator.
    """

    def _placements(
        self, replicator: Replicator, table: OwnershipTable, members: Mapping[str, NodeInfo]
    ) -> Iterator[tuple[int, int, Placement]]:
        for position in _positions(11, 60):
            for n in range(1, len(table.nodes) + 3):
                yield position, n, replicator.place(table, position, n, members)

    def test_replicas_distinct_and_sized(self, make_replicator: MakeReplicator) -> None:
        """Replicas are distinct and there are ``min(n, nodes)`` of them."""
        ids = _ids(6)
        table = StaticTable.interleaved(ids, 4, seed=1)
        for _, n, placement in self._placements(make_replicator(), table, _plain_members(ids)):
            assert len(set(placement.replicas)) == len(placement.replicas)
            assert len(placement.replicas) == min(n, len(ids))

    def test_first_replica_is_owner(self, make_replicator: MakeReplicator) -> None:
        """The first replica is the first node of the walk (the coordinator)."""
        ids = _ids(5)
        table = StaticTable.interleaved(ids, 3, seed=2)
        members = _plain_members(ids)
        for position, _, placement in self._placements(make_replicator(), table, members):
            assert placement.replicas[0] == next(iter(table.walk(position)))

    def test_replicas_and_fallbacks_partition_nodes(self, make_replicator: MakeReplicator) -> None:
        """Replicas plus fallbacks are every node exactly once."""
        ids = _ids(7)
        table = StaticTable.interleaved(ids, 2, seed=3)
        for _, _, placement in self._placements(make_replicator(), table, _plain_members(ids)):
            everyone = placement.replicas + placement.fallbacks
            assert len(everyone) == len(set(everyone))
            assert set(everyone) == set(ids)

    def test_deterministic(self, make_replicator: MakeReplicator) -> None:
        """The same inputs give the same placement, on the same or a fresh replicator."""
        ids = _ids(6)
        table = StaticTable.interleaved(ids, 3, seed=4)
        members = _plain_members(ids)
        first, second = make_replicator(), make_replicator()
        for position in _positions(12, 100):
            placement = first.place(table, position, 3, members)
            assert placement == first.place(table, position, 3, members)
            assert placement == second.place(table, position, 3, members)

    def test_single_node(self, make_replicator: MakeReplicator) -> None:
        """One node: it is the only replica, with no fallbacks."""
        table = StaticTable([(POSITION_SPACE // 2, "solo")])
        placement = make_replicator().place(table, 12345, 3, _plain_members(["solo"]))
        assert placement.replicas == ("solo",)
        assert placement.fallbacks == ()

    @pytest.mark.parametrize("n", [0, -1])
    def test_n_below_one_rejected(self, make_replicator: MakeReplicator, n: int) -> None:
        """``n < 1`` raises ``ValueError``."""
        ids = _ids(3)
        table = StaticTable.interleaved(ids, 2, seed=5)
        # Any message: the suite fixes the type, not a plugin's wording.
        with pytest.raises(ValueError):  # noqa: PT011
            make_replicator().place(table, 0, n, _plain_members(ids))

    def test_declared_datacenters_all_used(self, make_replicator: MakeReplicator) -> None:
        """With ``n`` >= the number of datacenters, every datacenter holds a replica."""
        ids = _ids(9)
        datacenters = ["dc-a", "dc-b", "dc-c"]
        # Runs of the same datacenter on the ring make a naive walk pick one dc only.
        members = {
            node_id: NodeInfo(node_id, datacenter=datacenters[i // 3], rack=f"rack-{i % 3}")
            for i, node_id in enumerate(ids)
        }
        table = StaticTable([(1000 * (i + 1), node_id) for i, node_id in enumerate(ids)])
        replicator = make_replicator()
        for position in [*_positions(13, 60), *range(0, 10_000, 250)]:
            for n in range(len(datacenters), len(ids) + 1):
                placement = replicator.place(table, position, n, members)
                used = {members[node_id].datacenter for node_id in placement.replicas}
                assert used == set(datacenters), (position, n, placement)
