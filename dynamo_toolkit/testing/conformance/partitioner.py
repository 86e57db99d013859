"""Conformance suite for :class:`~dynamo_toolkit.interfaces.Partitioner` implementations."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import islice

import pytest

from dynamo_toolkit.interfaces.partitioner import OwnershipTable, Partitioner
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.values import POSITION_SPACE

__all__ = ["PartitionerSuite"]

MakePartitioner = Callable[[], Partitioner]

#: A walk longer than this is taken as endless (the interface says it stops).
_WALK_LIMIT = 1_000_000


def _members(count: int, prefix: str = "node") -> list[NodeInfo]:
    return [NodeInfo(f"{prefix}-{i}", address=f"addr-{i}") for i in range(count)]


def _positions(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    # Include the edges of the space: off-by-one bugs live there.
    return [0, 1, POSITION_SPACE - 1] + [rng.getrandbits(64) for _ in range(count)]


def _walk(table: OwnershipTable, position: int) -> list[str]:
    walked = list(islice(table.walk(position), _WALK_LIMIT + 1))
    assert len(walked) <= _WALK_LIMIT, "walk() did not stop"
    return walked


def _owner(table: OwnershipTable, position: int) -> str:
    return next(iter(table.walk(position)))


class PartitionerSuite:
    """Tests every partitioner must pass.

    Subclass it as ``class TestMine(PartitionerSuite)`` and provide a fixture
    ``make_partitioner`` returning a zero-argument callable that builds a
    fresh partitioner.
    """

    def test_deterministic(self, make_partitioner: MakePartitioner) -> None:
        """Two partitioners given the same membership answer identically."""
        members = _members(8)
        first, second = make_partitioner().assign(members), make_partitioner().assign(members)
        assert first.nodes == second.nodes
        assert list(first.partitions()) == list(second.partitions())
        for position in _positions(1, 300):
            assert _walk(first, position) == _walk(second, position)
            assert first.partition_of(position) == second.partition_of(position)

    def test_independent_of_member_order(self, make_partitioner: MakePartitioner) -> None:
        """Shuffling the membership list changes nothing."""
        members = _members(7)
        shuffled = list(members)
        random.Random(2).shuffle(shuffled)
        partitioner = make_partitioner()
        table, other = partitioner.assign(members), partitioner.assign(shuffled)
        assert list(table.partitions()) == list(other.partitions())
        for position in _positions(3, 300):
            assert _walk(table, position) == _walk(other, position)

    def test_nodes_sorted_member_ids(self, make_partitioner: MakePartitioner) -> None:
        """``nodes`` is sorted, without repeats, and names only members."""
        members = _members(6)
        table = make_partitioner().assign(members)
        assert list(table.nodes) == sorted(set(table.nodes))
        assert set(table.nodes) <= {m.node_id for m in members}
        assert table.nodes

    def test_walk_starts_at_owner_and_visits_every_node(
        self, make_partitioner: MakePartitioner
    ) -> None:
        """A walk visits every node, and all positions of a partition share an owner."""
        members = _members(6)
        table = make_partitioner().assign(members)
        for position in _positions(4, 200):
            walked = _walk(table, position)
            assert set(walked) == set(table.nodes)
            start, end = table.partition_range(table.partition_of(position))
            # The owner is a property of the partition: its first and last
            # positions have the same owner as any position inside.
            assert walked[0] == _owner(table, start) == _owner(table, end - 1)
            # Nodes cache placements per partition: the whole walk must agree.
            assert _walk(table, start) == walked == _walk(table, end - 1)

    def test_partitions_cover_the_space(self, make_partitioner: MakePartitioner) -> None:
        """Partitions tile ``[0, 2**64)`` and agree with ``partition_of``."""
        table = make_partitioner().assign(_members(5))
        ids = list(table.partitions())
        assert ids == sorted(set(ids))
        expected_start = 0
        for pid in ids:
            start, end = table.partition_range(pid)
            assert start == pid == expected_start
            assert start < end <= POSITION_SPACE
            assert table.partition_of(start) == pid
            assert table.partition_of(end - 1) == pid
            expected_start = end
        assert expected_start == POSITION_SPACE
        for position in _positions(5, 300):
            start, end = table.partition_range(table.partition_of(position))
            assert start <= position < end

    def test_unknown_partition_id_rejected(self, make_partitioner: MakePartitioner) -> None:
        """``partition_range`` of something that is not a partition id raises."""
        table = make_partitioner().assign(_members(3))
        ids = set(table.partitions())
        bogus = next(p for p in _positions(6, 50) if p not in ids)
        with pytest.raises((KeyError, ValueError)):
            table.partition_range(bogus)

    def test_single_node_owns_everything(self, make_partitioner: MakePartitioner) -> None:
        """With one member, every walk is that member only."""
        table = make_partitioner().assign([NodeInfo("solo")])
        assert table.nodes == ("solo",)
        for position in _positions(7, 100):
            assert set(_walk(table, position)) == {"solo"}

    def test_empty_membership_rejected(self, make_partitioner: MakePartitioner) -> None:
        """No members: ``ValueError``."""
        # Any message: the suite fixes the type, not a plugin's wording.
        with pytest.raises(ValueError):  # noqa: PT011
            make_partitioner().assign([])

    def test_duplicate_ids_rejected(self, make_partitioner: MakePartitioner) -> None:
        """Two members with the same id: ``ValueError``."""
        members = [*_members(3), NodeInfo("node-1", address="elsewhere")]
        # Any message: the suite fixes the type, not a plugin's wording.
        with pytest.raises(ValueError):  # noqa: PT011
            make_partitioner().assign(members)

    def test_every_node_gets_a_share(self, make_partitioner: MakePartitioner) -> None:
        """With equal capacities every node owns some of many sampled positions."""
        members = _members(5)
        table = make_partitioner().assign(members)
        counts = dict.fromkeys(table.nodes, 0)
        positions = _positions(8, 20_000)
        for position in positions:
            counts[_owner(table, position)] += 1
        assert set(counts) == {m.node_id for m in members}
        # Deliberately loose: only a partitioner that starves a node fails. The
        # floor of a tenth of the fair share tolerates even a few tokens per node.
        fair = len(positions) / len(members)
        assert min(counts.values()) > fair / 10, counts
