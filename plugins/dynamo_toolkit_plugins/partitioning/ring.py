"""Partitioner ``ring``: consistent hashing with virtual nodes (Dynamo §4.2).

Every node places ``max(1, round(capacity * vnodes_per_capacity))`` tokens on
the 64-bit ring; the token of virtual node ``i`` of node ``X`` is
``mmh3.hash64(f"{X}#{i}")``. The owner of a position ``p`` is the node of the
first token strictly greater than ``p``, wrapping around. Partitions are the
half-open intervals between consecutive boundaries ``sorted({0} | set(tokens))``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

import attrs
import mmh3

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces.partitioner import OwnershipTable, Partitioner
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.values import POSITION_SPACE

__all__ = ["RingPartitioner", "RingTable", "dtk_register_components", "vnode_token"]

#: Bytes a routing table spends per token: the 64-bit token plus a 4-byte node index.
_TOKEN_BYTES = 8 + 4


def vnode_token(node_id: str, index: int) -> int:
    """The ring position of virtual node ``index`` of ``node_id``."""
    return int(mmh3.hash64(f"{node_id}#{index}".encode(), signed=False)[0])


def _check_position(position: int) -> None:
    if not 0 <= position < POSITION_SPACE:
        raise ValueError(f"position {position} is outside [0, 2**64)")


@attrs.frozen(repr=False)
class RingTable(OwnershipTable):
    """An immutable consistent-hashing ring: sorted tokens and their owners.

    Built by :meth:`RingPartitioner.assign`; equal memberships give equal tables.
    """

    #: Sorted, distinct tokens.
    tokens: tuple[int, ...]
    #: ``owners[i]`` is the node id of ``tokens[i]``.
    owners: tuple[str, ...]
    _nodes: tuple[str, ...] = attrs.field(eq=False)
    _boundaries: tuple[int, ...] = attrs.field(eq=False)

    @classmethod
    def from_tokens(cls, pairs: Sequence[tuple[int, str]]) -> RingTable:
        """Build a table from ``(token, node_id)`` pairs; the smallest id wins a shared token."""
        if not pairs:
            raise ValueError("a ring needs at least one token")
        tokens: list[int] = []
        owners: list[str] = []
        # Sorting by (token, node_id) puts colliding tokens next to each other with
        # the smallest id first, so keeping the first one is deterministic everywhere.
        for token, node_id in sorted(pairs):
            _check_position(token)
            if tokens and tokens[-1] == token:
                continue
            tokens.append(token)
            owners.append(node_id)
        boundaries = tokens if tokens[0] == 0 else [0, *tokens]
        return cls(tuple(tokens), tuple(owners), tuple(sorted(set(owners))), tuple(boundaries))

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node ids holding at least one token, sorted."""
        return self._nodes

    def owner_index(self, position: int) -> int:
        """Index in :attr:`tokens` of the token owning ``position``."""
        _check_position(position)
        index = bisect_right(self.tokens, position)
        return 0 if index == len(self.tokens) else index

    def owner(self, position: int) -> str:
        """The node owning ``position`` (first element of :meth:`walk`)."""
        return self.owners[self.owner_index(position)]

    def walk(self, position: int) -> Iterator[str]:
        """Owners of successive tokens clockwise from ``position``'s owner, one full turn."""
        start = self.owner_index(position)
        owners = self.owners
        # Index, don't slice: a preference list needs only the first few owners.
        for index in range(start, len(owners)):
            yield owners[index]
        for index in range(start):
            yield owners[index]

    def partitions(self) -> Sequence[int]:
        """Partition ids (start positions), sorted."""
        return self._boundaries

    def partition_of(self, position: int) -> int:
        """Id of the partition holding ``position``."""
        _check_position(position)
        return self._boundaries[bisect_right(self._boundaries, position) - 1]

    def partition_range(self, partition: int) -> tuple[int, int]:
        """``[start, end)`` of ``partition``; ``ValueError`` if it is not a partition id."""
        boundaries = self._boundaries
        index = bisect_left(boundaries, partition)
        if index == len(boundaries) or boundaries[index] != partition:
            raise ValueError(
                f"{partition} is not a partition id of this ring "
                "(ids are partition start positions; see partitions())"
            )
        end = boundaries[index + 1] if index + 1 < len(boundaries) else POSITION_SPACE
        return partition, end

    def metadata_size(self) -> int:
        """Bytes to route: every token with a node index, plus each node id once."""
        return _TOKEN_BYTES * len(self.tokens) + sum(len(n.encode()) for n in self._nodes)

    def __repr__(self) -> str:
        return f"RingTable(nodes={len(self._nodes)}, tokens={len(self.tokens)})"


class RingPartitioner(Partitioner):
    """Consistent hashing with mmh3 and virtual nodes proportional to capacity."""

    def __init__(self, vnodes_per_capacity: int = 64) -> None:
        if isinstance(vnodes_per_capacity, bool) or not isinstance(vnodes_per_capacity, int):
            raise ConfigurationError(
                f"vnodes_per_capacity must be an integer, got {vnodes_per_capacity!r}"
            )
        if vnodes_per_capacity <= 0:
            raise ConfigurationError(
                f"vnodes_per_capacity must be positive, got {vnodes_per_capacity}"
            )
        self.vnodes_per_capacity = vnodes_per_capacity

    def vnode_count(self, member: NodeInfo) -> int:
        """How many tokens ``member`` places on the ring."""
        return max(1, round(member.capacity * self.vnodes_per_capacity))

    def assign(self, members: Sequence[NodeInfo]) -> RingTable:
        """Return the ring of ``members``; ``ValueError`` if empty or ids repeat."""
        if not members:
            raise ValueError("cannot build a ring from an empty membership")
        ids = [member.node_id for member in members]
        if len(set(ids)) != len(ids):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"duplicate node ids in membership: {', '.join(duplicates)}")
        pairs = [
            (vnode_token(member.node_id, i), member.node_id)
            for member in members
            for i in range(self.vnode_count(member))
        ]
        return RingTable.from_tokens(pairs)

    def __repr__(self) -> str:
        return f"RingPartitioner(vnodes_per_capacity={self.vnodes_per_capacity})"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``ring`` partitioner."""
    registry.add_partitioner("ring", RingPartitioner)
