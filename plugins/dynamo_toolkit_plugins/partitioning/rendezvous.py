"""Partitioner ``rendezvous``: highest random weight over Q equal partitions.

Thaler & Ravishankar (1998), with the weighted score of Schindelhauer & Schomaker:
node ``X`` of capacity ``w`` scores partition ``i`` as ``-w / ln(u)`` where
``u = (h + 0.5) / 2**64`` and ``h = mmh3(X#i)``. A partition's walk is every member
by descending score (ties by id), so its owner is the best-scored member. Each
member wins a partition with probability ``w / sum(w)``; a join moves only the
partitions the newcomer wins, a leave only those the leaver held.

Owners are computed once per table (``q * n`` hashes); the rest of a walk is
computed when asked. Routing needs nothing but the membership.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces.partitioner import Partitioner
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.partitioning.fixed_q import (
    MAX_Q,
    EqualPartitionTable,
    checked_members,
    int_param,
    pair_hash,
)

__all__ = ["RendezvousPartitioner", "RendezvousTable", "dtk_register_components", "hrw_score"]

_SPACE = float(1 << 64)


def hrw_score(node_key: bytes, capacity: float, index: int) -> float:
    """The weighted rendezvous score of a node for partition ``index`` (higher wins)."""
    return -capacity / math.log((pair_hash(node_key, index) + 0.5) / _SPACE)


class RendezvousTable(EqualPartitionTable):
    """Owners by highest random weight; walks by descending score."""

    def __init__(self, q: int, members: Sequence[NodeInfo], owners: Sequence[int]) -> None:
        ids = [m.node_id for m in members]
        super().__init__(q, ids, owners, ids)
        self._keys = tuple(f"{i}#".encode() for i in ids)
        self._capacities = tuple(m.capacity for m in members)

    def _walk_index(self, index: int) -> Iterator[str]:
        yield self.members[self.owners[index]]
        if len(self.members) == 1:
            return
        keys, capacities = self._keys, self._capacities
        ranked = sorted(
            range(len(keys)),
            key=lambda i: (-hrw_score(keys[i], capacities[i], index), i),
        )
        for i in ranked[1:]:
            yield self.members[i]

    def metadata_size(self) -> int:
        """Bytes to route: the membership only (each id and an 8-byte capacity)."""
        return sum(len(m.encode()) + 8 for m in self.members)


class RendezvousPartitioner(Partitioner):
    """Weighted highest-random-weight hashing over Q equal partitions."""

    def __init__(self, q: int = 1024) -> None:
        self.q = int_param("q", q, 1, MAX_Q)

    def assign(self, members: Sequence[NodeInfo]) -> RendezvousTable:
        """Return the table of ``members``; ``ValueError`` if empty or ids repeat."""
        ordered = checked_members(members)
        keys = [(f"{m.node_id}#".encode(), m.capacity) for m in ordered]
        owners = []
        for p in range(self.q):
            best, best_score = 0, -1.0
            for i, (key, capacity) in enumerate(keys):
                score = hrw_score(key, capacity, p)
                if score > best_score:  # strict: the first (smallest id) wins ties
                    best, best_score = i, score
            owners.append(best)
        return RendezvousTable(self.q, ordered, owners)

    def __repr__(self) -> str:
        return f"RendezvousPartitioner(q={self.q})"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``rendezvous`` partitioner."""
    registry.add_partitioner("rendezvous", RendezvousPartitioner)
