"""Partitioner ``fixed-q``: Dynamo's strategy 3, Q equal partitions placed by quota.

The position space is cut into ``q`` equal partitions once and for all (Dynamo
§6.2, strategy 3: "Q/S tokens per node, equal-sized partitions"). Each node gets
a quota of partitions proportional to its capacity (largest remainder, ties by
node id), so the balance is as exact as ``q`` allows. Which partitions a node
gets is a stateless stand-in for Dynamo's "a joining node steals tokens, a
leaving node's tokens are spread at random": the stable matching between
partitions and nodes under a common random score ``mmh3(node#partition)``, with
nodes holding at most their quota (partitions propose in score order, a full node
keeps its best-scored partitions). A join or leave then moves about the share of
the node that came or went, plus the few partitions whose quotas shifted.

The walk of a partition is Dynamo's preference list under strategy 3: the owners
of the partition and of its successors clockwise, each node once.

This module also holds the pieces every equal-partition strategy shares
(:class:`EqualPartitionTable`, :func:`checked_members`, :func:`int_param`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import mmh3

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces.partitioner import OwnershipTable, Partitioner
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.values import POSITION_SPACE

__all__ = [
    "EqualPartitionTable",
    "FixedQPartitioner",
    "FixedQTable",
    "checked_members",
    "dtk_register_components",
    "int_param",
    "pair_hash",
    "quotas",
]

#: The largest ``q`` accepted (keeps tables and their builds reasonable).
MAX_Q = 1 << 24
#: Candidates a partition keeps from its score ranking before recomputing it all.
_CANDIDATES = 16


def int_param(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` if it is an integer in ``[minimum, maximum]``, else ``ConfigurationError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"at least {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ConfigurationError(f"{name} must be {bound}, got {value}")
    return value


def checked_members(members: Sequence[NodeInfo]) -> list[NodeInfo]:
    """``members`` sorted by id; ``ValueError`` if empty or ids repeat."""
    if not members:
        raise ValueError("cannot build a table from an empty membership")
    ids = [member.node_id for member in members]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate node ids in membership: {', '.join(duplicates)}")
    return sorted(members, key=lambda member: member.node_id)


def pair_hash(node_key: bytes, index: int) -> int:
    """A 64-bit hash of (node, partition index); ``node_key`` is ``b"<id>#"``."""
    return int(mmh3.hash64(node_key + index.to_bytes(8, "big"), signed=False)[0])


def quotas(members: Sequence[NodeInfo], total: int) -> list[int]:
    """Split ``total`` among ``members`` by capacity (largest remainder, ties by order)."""
    capacity = sum(member.capacity for member in members)
    exact = [total * member.capacity / capacity for member in members]
    shares = [int(value) for value in exact]
    left = total - sum(shares)
    by_remainder = sorted(range(len(members)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares


def _check_position(position: int) -> None:
    if not 0 <= position < POSITION_SPACE:
        raise ValueError(f"position {position} is outside [0, 2**64)")


class EqualPartitionTable(OwnershipTable):
    """A table over ``q`` equal partitions: partition ``i`` is ``[i*2**64//q, (i+1)*2**64//q)``.

    Subclasses give the owner of each partition (``owners``, indexes into
    ``members``) and the rest of a partition's walk (:meth:`_walk_index`).
    """

    def __init__(
        self, q: int, members: Sequence[str], owners: Sequence[int], nodes: Iterable[str]
    ) -> None:
        self.q = q
        #: Every member id, sorted; ``owners`` index into it.
        self.members = tuple(members)
        self.owners = tuple(owners)
        self._nodes = tuple(sorted(nodes))
        self._starts = tuple((i << 64) // q for i in range(q))

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node ids the walks visit, sorted."""
        return self._nodes

    def partition_index(self, position: int) -> int:
        """Index (``0 <= i < q``) of the partition holding ``position``."""
        _check_position(position)
        # The largest i with floor(i * 2**64 / q) <= position.
        return ((position + 1) * self.q - 1) >> 64

    def owner(self, position: int) -> str:
        """The owner of ``position`` (first element of :meth:`walk`)."""
        return self.members[self.owners[self.partition_index(position)]]

    def walk(self, position: int) -> Iterator[str]:
        """The walk of ``position``'s partition (see the module docstring)."""
        return self._walk_index(self.partition_index(position))

    def _walk_index(self, index: int) -> Iterator[str]:
        raise NotImplementedError

    def partitions(self) -> Sequence[int]:
        """Partition ids (start positions), sorted."""
        return self._starts

    def partition_of(self, position: int) -> int:
        """Id of the partition holding ``position``."""
        return self._starts[self.partition_index(position)]

    def partition_range(self, partition: int) -> tuple[int, int]:
        """``[start, end)`` of ``partition``; ``ValueError`` if it is not a partition id."""
        if not 0 <= partition < POSITION_SPACE:
            raise ValueError(f"{partition} is not a partition id")
        index = self.partition_index(partition)
        if self._starts[index] != partition:
            raise ValueError(
                f"{partition} is not a partition id of this table "
                "(ids are partition start positions; see partitions())"
            )
        end = self._starts[index + 1] if index + 1 < self.q else POSITION_SPACE
        return partition, end

    def metadata_size(self) -> int:
        """Bytes to route: a 4-byte owner index per partition, plus each member id once."""
        return 4 * self.q + sum(len(m.encode()) for m in self.members)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, EqualPartitionTable)
        return (self.q, self.members, self.owners) == (other.q, other.members, other.owners)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.q, self.members, self.owners))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nodes={len(self._nodes)}, q={self.q})"


class FixedQTable(EqualPartitionTable):
    """Strategy 3 ownership: each partition has one owner; walks go clockwise."""

    def _walk_index(self, index: int) -> Iterator[str]:
        seen: set[int] = set()
        wanted = len(self._nodes)
        owners, q = self.owners, self.q
        for step in range(q):
            owner = owners[(index + step) % q]
            if owner not in seen:
                seen.add(owner)
                yield self.members[owner]
                if len(seen) == wanted:
                    return


class FixedQPartitioner(Partitioner):
    """Dynamo strategy 3: Q equal partitions, quotas proportional to capacity."""

    def __init__(self, q: int = 1024) -> None:
        self.q = int_param("q", q, 1, MAX_Q)

    def assign(self, members: Sequence[NodeInfo]) -> FixedQTable:
        """Return the table of ``members``; ``ValueError`` if empty or ids repeat."""
        ordered = checked_members(members)
        q = self.q
        quota = quotas(ordered, q)
        keys = [f"{m.node_id}#".encode() for m in ordered]
        eligible = [i for i, share in enumerate(quota) if share > 0]

        def ranking(index: int, limit: int | None) -> list[tuple[int, int]]:
            # Higher hash first; ties (practically impossible) by member order.
            scored = ((pair_hash(keys[i], index), -i) for i in eligible)
            best = sorted(scored, reverse=True) if limit is None else heapq.nlargest(limit, scored)
            return [(score, -neg) for score, neg in best]

        choices = [ranking(p, _CANDIDATES) for p in range(q)]
        cursor = [0] * q
        # held[i]: min-heap of (score, partition) a node holds; its root is evicted first.
        held: list[list[tuple[int, int]]] = [[] for _ in ordered]
        free = list(range(q - 1, -1, -1))
        while free:
            p = free.pop()
            if cursor[p] == len(choices[p]):
                choices[p] = ranking(p, None)  # rare: fell off the short list
            score, node = choices[p][cursor[p]]
            cursor[p] += 1
            heapq.heappush(held[node], (score, p))
            if len(held[node]) > quota[node]:
                free.append(heapq.heappop(held[node])[1])
        owners = [0] * q
        for node, partitions in enumerate(held):
            for _, p in partitions:
                owners[p] = node
        ids = [m.node_id for m in ordered]
        return FixedQTable(q, ids, owners, {ids[i] for i in owners})

    def __repr__(self) -> str:
        return f"FixedQPartitioner(q={self.q})"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``fixed-q`` partitioner."""
    registry.add_partitioner("fixed-q", FixedQPartitioner)
