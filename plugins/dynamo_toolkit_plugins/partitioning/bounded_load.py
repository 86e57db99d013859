"""Partitioner ``bounded-load``: consistent hashing with bounded loads over Q partitions.

Mirrokni, Thorup & Zadimoghaddam (SODA 2018). Members place virtual nodes on a
ring as in ``ring`` (``max(1, round(capacity * vnodes_per_capacity))`` tokens,
token ``i`` of ``X`` at ``mmh3(X#i)``). The space is cut into ``q`` equal
partitions, placed one at a time in the order of ``mmh3(index)``: a partition
starts at the ring owner of its midpoint and walks clockwise to the first member
holding fewer than its bound ``ceil((1 + eps) * q * capacity / total capacity)``
partitions. No member exceeds ``1 + eps`` times its fair share.

The walk of a partition is its owner, then the distinct ring owners clockwise
from its midpoint (the owner may come again; the interface allows it).
"""

from __future__ import annotations

import math
from bisect import bisect_right
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
from dynamo_toolkit_plugins.partitioning.ring import vnode_token

__all__ = ["BoundedLoadPartitioner", "BoundedLoadTable", "dtk_register_components"]

#: Bytes per ring token kept to walk (64-bit token, 4-byte member index).
_TOKEN_BYTES = 8 + 4


class BoundedLoadTable(EqualPartitionTable):
    """Owners from bounded-load placement; walks clockwise on the vnode ring."""

    def __init__(
        self,
        q: int,
        members: Sequence[str],
        owners: Sequence[int],
        tokens: Sequence[int],
        token_owners: Sequence[int],
    ) -> None:
        super().__init__(q, members, owners, {members[i] for i in set(token_owners)})
        self.tokens = tuple(tokens)
        self.token_owners = tuple(token_owners)

    def _walk_index(self, index: int) -> Iterator[str]:
        owner = self.owners[index]
        yield self.members[owner]
        tokens, token_owners = self.tokens, self.token_owners
        start = _ring_index(tokens, _midpoint(index, self.q))
        seen = {owner}
        wanted = len(self.nodes)
        count = len(tokens)
        for step in range(count):
            if len(seen) == wanted:
                return
            node = token_owners[(start + step) % count]
            if node not in seen:
                seen.add(node)
                yield self.members[node]

    def metadata_size(self) -> int:
        """Bytes to route: owner per partition, the ring, each member id once."""
        return super().metadata_size() + _TOKEN_BYTES * len(self.tokens)


def _midpoint(index: int, q: int) -> int:
    return ((index << 64) // q + ((index + 1) << 64) // q) // 2


def _ring_index(tokens: Sequence[int], position: int) -> int:
    """Index of the first token strictly after ``position`` (wrapping), like ``ring``."""
    i = bisect_right(tokens, position)
    return 0 if i == len(tokens) else i


class BoundedLoadPartitioner(Partitioner):
    """Consistent hashing with bounded loads: no node above (1 + eps) x its share."""

    def __init__(self, eps: float = 0.25, vnodes_per_capacity: int = 16, q: int = 1024) -> None:
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0:
            raise ConfigurationError(f"eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self.vnodes_per_capacity = int_param("vnodes_per_capacity", vnodes_per_capacity, 1)
        self.q = int_param("q", q, 1, MAX_Q)

    def assign(self, members: Sequence[NodeInfo]) -> BoundedLoadTable:
        """Return the table of ``members``; ``ValueError`` if empty or ids repeat."""
        ordered = checked_members(members)
        pairs = sorted(
            (vnode_token(m.node_id, v), i)
            for i, m in enumerate(ordered)
            for v in range(max(1, round(m.capacity * self.vnodes_per_capacity)))
        )
        tokens: list[int] = []
        token_owners: list[int] = []
        for token, i in pairs:  # a shared token goes to the smallest id, as in ``ring``
            if not tokens or tokens[-1] != token:
                tokens.append(token)
                token_owners.append(i)
        q = self.q
        total = sum(m.capacity for m in ordered)
        bounds = [math.ceil((1 + self.eps) * q * m.capacity / total) for m in ordered]
        load = [0] * len(ordered)
        owners = [0] * q
        count = len(tokens)
        order = sorted(range(q), key=lambda p: (int(mmh3.hash64(p.to_bytes(8, "big"))[0]), p))
        for p in order:
            t = _ring_index(tokens, _midpoint(p, q))
            while load[token_owners[t]] >= bounds[token_owners[t]]:
                t = (t + 1) % count
            owners[p] = token_owners[t]
            load[token_owners[t]] += 1
        return BoundedLoadTable(q, [m.node_id for m in ordered], owners, tokens, token_owners)

    def __repr__(self) -> str:
        return (
            f"BoundedLoadPartitioner(eps={self.eps}, "
            f"vnodes_per_capacity={self.vnodes_per_capacity}, q={self.q})"
        )


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``bounded-load`` partitioner."""
    registry.add_partitioner("bounded-load", BoundedLoadPartitioner)
