"""Anti-entropy between replicas (Dynamo §4.7): walk two digests, swap what differs.

A node compares its digest of a partition with a peer's: the roots first (one
round trip when in sync), then, level by level, only the children of nodes
that differ, down to the leaves' ``{key: record hash}`` items. The keys whose
hashes differ are exchanged as whole sibling sets and reconciled on both
sides, so both end with the same records. Tombstones that every replica was
seen to hold, and that are older than the grace period, are then removed
everywhere at once (so a deleted key cannot come back from a replica that
still had it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import attrs

from dynamo_toolkit._protocols import ExchangeContext, ReplicaAccess
from dynamo_toolkit.errors import DynamoError, TransportError
from dynamo_toolkit.messages import (
    CollectTombstones,
    Message,
    RecordsQuery,
    RecordsReply,
    ReplicaWrite,
    TreeQuery,
    TreeReply,
)
from dynamo_toolkit.replica_store import record_hash
from dynamo_toolkit.values import key_position
from dynamo_toolkit.versioning import pack_versions

__all__ = ["ExchangeStats", "answer_tree_query", "collect_tombstones", "exchange"]


@attrs.define
class ExchangeStats:
    """What anti-entropy did: partitions compared, keys compared and repaired."""

    partitions: int = 0
    keys_compared: int = 0
    keys_repaired: int = 0
    round_trips: int = 0
    tombstones_collected: int = 0
    peers_unreachable: int = 0

    def add(self, other: ExchangeStats) -> None:
        """Accumulate ``other`` into this one."""
        for field in attrs.fields(ExchangeStats):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def to_json(self) -> dict[str, int]:
        """Plain form for reports."""
        return attrs.asdict(self)


def answer_tree_query(node: ReplicaAccess, query: TreeQuery) -> TreeReply:
    """What a replica answers about its digest of a partition."""
    digest = node.store.digest(query.partition)
    if query.level < 0:
        return TreeReply(digest.depth, (digest.root(),))
    if query.level < digest.depth:
        items: tuple[Any, ...] = tuple(
            digest.children_hashes(query.level, index) for index in query.indices
        )
    else:
        items = tuple(digest.leaf_items(index) for index in query.indices)
    return TreeReply(digest.depth, items)


async def _ask(node: ExchangeContext, peer: str, message: Message, stats: ExchangeStats) -> object:
    if node.transport is None:
        raise TransportError(f"{node.node_id} is stopped")
    stats.round_trips += 1
    return await node.transport.request(peer, message, node.config.request_timeout)


async def _differing_keys(
    node: ExchangeContext, partition: int, peer: str, stats: ExchangeStats
) -> set[bytes] | None:
    """Keys whose records differ between us and ``peer``; None if already in sync."""
    digest = node.store.digest(partition)
    reply = await _ask(node, peer, TreeQuery(partition, -1), stats)
    if not isinstance(reply, TreeReply) or reply.depth != digest.depth:
        raise DynamoError(f"{peer} answered with an incompatible digest")
    if reply.items[0] == digest.root():
        return None
    frontier = [0]
    for level in range(digest.depth):
        reply = await _ask(node, peer, TreeQuery(partition, level, tuple(frontier)), stats)
        assert isinstance(reply, TreeReply)
        next_frontier = []
        for index, theirs in zip(frontier, reply.items, strict=True):
            ours = digest.children_hashes(level, index)
            if not isinstance(theirs, list) or len(theirs) != len(ours):
                raise DynamoError(f"{peer} answered with a tree of another shape")
            fanout = len(ours)
            next_frontier += [
                index * fanout + child
                for child, (mine, other) in enumerate(zip(ours, theirs, strict=True))
                if mine != other
            ]
        frontier = next_frontier
    reply = await _ask(node, peer, TreeQuery(partition, digest.depth, tuple(frontier)), stats)
    assert isinstance(reply, TreeReply)
    keys: set[bytes] = set()
    for index, remote_items in zip(frontier, reply.items, strict=True):
        local_items = digest.leaf_items(index)
        if not isinstance(remote_items, dict):
            raise DynamoError(f"{peer} answered leaves in an unknown form")
        keys |= {
            k
            for k in local_items.keys() | remote_items.keys()
            if local_items.get(k) != remote_items.get(k)
        }
    return keys


async def _ask_all(
    node: ExchangeContext, peer: str, messages: list[ReplicaWrite], stats: ExchangeStats
) -> None:
    """Send ``messages`` concurrently: one round trip for the lot."""
    transport = node.transport
    if transport is None:
        raise TransportError(f"{node.node_id} is stopped")
    stats.round_trips += 1
    timeout = node.config.request_timeout
    replies = await asyncio.gather(
        *(transport.request(peer, message, timeout) for message in messages),
        return_exceptions=True,
    )
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply


async def exchange(node: ExchangeContext, partition: int, peer: str) -> tuple[ExchangeStats, bool]:
    """Bring ``node`` and ``peer`` in step for ``partition``.

    Returns the stats and whether the two ended in sync (equal roots).
    """
    stats = ExchangeStats(partitions=1)
    stats.keys_compared = len(node.store.digest(partition))
    keys = await _differing_keys(node, partition, peer, stats)
    if keys is None:
        return stats, True
    # A peer still on another table (mid-handoff) may summarise a different
    # range under the same id: only this partition's keys are ours to take.
    start, end = node.table.partition_range(partition)
    batch = sorted(key for key in keys if start <= key_position(key) < end)
    for start in range(0, len(batch), 256):
        chunk = tuple(batch[start : start + 256])
        reply = await _ask(node, peer, RecordsQuery(chunk), stats)
        assert isinstance(reply, RecordsReply)
        theirs = {key: (position, versions) for key, position, versions in reply.records}
        pushes: list[ReplicaWrite] = []
        for key in chunk:
            mine = node.store.read(key)
            position, remote = theirs.get(key, (None, ()))
            if position is None:
                position = key_position(key)
            merged = node.store.apply(key, position, remote)
            if set(mine) != set(merged) or set(remote) != set(merged):
                stats.keys_repaired += 1
            if set(remote) != set(merged):
                pushes.append(ReplicaWrite(key, position, merged))
        if pushes:
            # What the peer lacks goes in one wave (the transport batches the
            # frames), not one round trip per key.
            await _ask_all(node, peer, pushes, stats)
    after = await _ask(node, peer, TreeQuery(partition, -1), stats)
    in_sync = isinstance(after, TreeReply) and after.items[0] == node.store.digest(partition).root()
    return stats, in_sync


def collectable_tombstones(
    node: ExchangeContext, partition: int, now: float
) -> tuple[tuple[bytes, int, bytes], ...]:
    """Records of ``partition`` that are only tombstones older than the grace period."""
    start, end = node.table.partition_range(partition)
    grace = node.config.tombstone_grace
    found = []
    for key, position, versions in node.store.tombstones(start, end):
        if now - max(v.timestamp for v in versions) > grace:
            found.append((key, position, record_hash(pack_versions(versions))))
    return tuple(found)


async def collect_tombstones(
    node: ExchangeContext, partition: int, peers: Sequence[str], stats: ExchangeStats
) -> None:
    """Remove old tombstones of ``partition`` here and on ``peers`` (all in sync)."""
    entries = collectable_tombstones(node, partition, node.clock.now())
    if not entries:
        return
    message = CollectTombstones(entries)
    for peer in peers:
        await _ask(node, peer, message, stats)
    for key, position, digest in entries:
        if node.store.collect(key, position, digest):
            stats.tombstones_collected += 1


__all__ += ["collectable_tombstones"]
