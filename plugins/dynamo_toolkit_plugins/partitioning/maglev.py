"""Partitioner ``maglev``: Maglev's lookup table (Eisenbud et al., NSDI 2016, §3.4).

Every member gets a permutation of the ``table_size`` (``M``, prime) table entries:
``offset = h1 mod M``, ``skip = h2 mod (M - 1) + 1``, ``permutation[j] = (offset +
j * skip) mod M`` with ``(h1, h2) = mmh3.hash64(id)``. Members (sorted by id) take
turns claiming their next preferred free entry until the table is full. Weights
follow capacity through fill rounds: each round a member earns
``capacity / max(capacity)`` credits and claims one entry per whole credit.

The position space is cut into ``q`` equal partitions; partition ``i`` is routed
through entry ``mmh3(i) mod M`` (hashed: a stride ``i * M // q`` aliases with the
members' skips and starves or floods some of them). Its walk is the owner of that entry, then the
distinct owners of the following entries (wrapping), until every member in the
table was named.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import mmh3

from dynamo_toolkit.errors import ConfigurationError
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

__all__ = ["MaglevPartitioner", "MaglevTable", "build_lookup", "dtk_register_components"]


def _is_prime(value: int) -> bool:
    if value < 2:
        return False
    if value % 2 == 0:
        return value == 2
    factor = 3
    while factor * factor <= value:
        if value % factor == 0:
            return False
        factor += 2
    return True


def build_lookup(members: Sequence[NodeInfo], size: int) -> list[int]:
    """Maglev's table of ``size`` entries: each entry is an index into ``members``."""
    if len(members) > size:
        raise ValueError(f"a table of {size} entries cannot hold {len(members)} members")
    top = max(m.capacity for m in members)
    weights = [m.capacity / top for m in members]
    cursor, skips = [], []
    for member in members:
        h1, h2 = mmh3.hash64(member.node_id.encode(), signed=False)
        cursor.append(int(h1) % size)
        skips.append(int(h2) % (size - 1) + 1 if size > 1 else 1)
    entries = [-1] * size
    credit = [0.0] * len(members)
    filled = 0
    while True:
        for i, weight in enumerate(weights):
            credit[i] += weight
            while credit[i] >= 1.0:
                credit[i] -= 1.0
                slot, skip = cursor[i], skips[i]
                while entries[slot] >= 0:
                    slot = (slot + skip) % size
                entries[slot] = i
                cursor[i] = (slot + skip) % size
                filled += 1
                if filled == size:
                    return entries


def _entry(index: int, size: int) -> int:
    # Hashed, not ``index * size // q``: a stride would alias with members' skips.
    return int(mmh3.hash64(index.to_bytes(8, "big"), signed=False)[0]) % size


class MaglevTable(EqualPartitionTable):
    """Q equal partitions routed through a Maglev lookup table."""

    def __init__(self, q: int, members: Sequence[str], entries: Sequence[int]) -> None:
        size = len(entries)
        owners = [entries[_entry(i, size)] for i in range(q)]
        super().__init__(q, members, owners, {members[e] for e in set(entries)})
        self.entries = tuple(entries)

    def _walk_index(self, index: int) -> Iterator[str]:
        entries, size = self.entries, len(self.entries)
        start = _entry(index, size)
        seen: set[int] = set()
        wanted = len(self.nodes)
        for step in range(size):
            owner = entries[(start + step) % size]
            if owner not in seen:
                seen.add(owner)
                yield self.members[owner]
                if len(seen) == wanted:
                    return

    def metadata_size(self) -> int:
        """Bytes to route: the lookup table (4-byte entries), plus each member id once."""
        return 4 * len(self.entries) + sum(len(m.encode()) for m in self.members)


class MaglevPartitioner(Partitioner):
    """Maglev hashing (§3.4) with capacity-weighted fill rounds, Q equal partitions."""

    def __init__(self, table_size: int = 65537, q: int = 1024) -> None:
        self.table_size = int_param("table_size", table_size, 2, MAX_Q)
        if not _is_prime(self.table_size):
            raise ConfigurationError(f"table_size must be prime, got {table_size}")
        self.q = int_param("q", q, 1, MAX_Q)

    def assign(self, members: Sequence[NodeInfo]) -> MaglevTable:
        """Return the table of ``members``; ``ValueError`` if empty, ids repeat or too many."""
        ordered = checked_members(members)
        entries = build_lookup(ordered, self.table_size)
        return MaglevTable(self.q, [m.node_id for m in ordered], entries)

    def __repr__(self) -> str:
        return f"MaglevPartitioner(table_size={self.table_size}, q={self.q})"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``maglev`` partitioner."""
    registry.add_partitioner("maglev", MaglevPartitioner)
