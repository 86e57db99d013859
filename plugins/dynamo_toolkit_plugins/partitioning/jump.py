"""Partitioner ``jump``: jump consistent hash (Lamping & Veach, 2014) over Q partitions.

Members are sorted by id and expanded into *slots*, ``max(1, round(capacity))``
per member (jump hash has no weights; integer capacities are exact, others are
rounded). The owner of partition ``i`` is ``slots[jump(mmh3(i), len(slots))]``.
The rest of the walk repeats jump over the members not yet visited (sorted,
unweighted), with the key re-hashed for every step.

Known limitation: jump hash is minimal only when buckets are appended or removed
*at the end*. Sorted ids put a newcomer anywhere in the list and a leaver leaves
a hole, which shifts every later slot: a join or leave then moves far more than
the ideal ``1/n`` (up to about half the data). A deployment would keep an
append-only bucket list in the cluster state instead of sorting ids; a
partitioner that sees only the membership cannot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import mmh3

from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces.partitioner import Partitioner
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.partitioning.fixed_q import (
    MAX_Q,
    EqualPartitionTable,
    checked_members,
    int_param,
)

__all__ = ["JumpPartitioner", "JumpTable", "dtk_register_components", "jump_hash"]

_MASK = (1 << 64) - 1


def jump_hash(key: int, buckets: int) -> int:
    """Lamping & Veach's jump consistent hash: a bucket in ``range(buckets)`` for ``key``."""
    if buckets <= 0:
        raise ValueError("jump_hash needs at least one bucket")
    key &= _MASK
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & _MASK
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def _partition_key(index: int, step: int = 0) -> int:
    data = index.to_bytes(8, "big") + step.to_bytes(4, "big")
    return int(mmh3.hash64(data, signed=False)[0])


class JumpTable(EqualPartitionTable):
    """Owners by jump hash over capacity slots; walks by jump over the rest."""

    def _walk_index(self, index: int) -> Iterator[str]:
        owner = self.owners[index]
        yield self.members[owner]
        remaining = [i for i in range(len(self.members)) if i != owner]
        step = 1
        while remaining:
            pick = remaining.pop(jump_hash(_partition_key(index, step), len(remaining)))
            yield self.members[pick]
            step += 1

    def metadata_size(self) -> int:
        """Bytes to route: the membership only (each id and a 4-byte slot count)."""
        return sum(len(m.encode()) + 4 for m in self.members)


class JumpPartitioner(Partitioner):
    """Jump consistent hash over sorted members, Q equal partitions."""

    def __init__(self, q: int = 1024) -> None:
        self.q = int_param("q", q, 1, MAX_Q)

    def assign(self, members: Sequence[NodeInfo]) -> JumpTable:
        """Return the table of ``members``; ``ValueError`` if empty or ids repeat."""
        ordered = checked_members(members)
        slots = [i for i, m in enumerate(ordered) for _ in range(max(1, round(m.capacity)))]
        owners = [slots[jump_hash(_partition_key(p), len(slots))] for p in range(self.q)]
        ids = [m.node_id for m in ordered]
        return JumpTable(self.q, ids, owners, ids)

    def __repr__(self) -> str:
        return f"JumpPartitioner(q={self.q})"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``jump`` partitioner."""
    registry.add_partitioner("jump", JumpPartitioner)
