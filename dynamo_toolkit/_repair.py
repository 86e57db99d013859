"""Repair scheduling: when and with whom a node runs anti-entropy (Dynamo §4.7).

:mod:`dynamo_toolkit.anti_entropy_exchange` compares one partition with one
peer; this module decides which partitions and peers, collects old
tombstones once every replica is in sync, and runs the periodic, rate-limited
passes.
"""

from __future__ import annotations

import contextlib

from dynamo_toolkit._protocols import RepairContext
from dynamo_toolkit.anti_entropy_exchange import ExchangeStats, collect_tombstones, exchange
from dynamo_toolkit.errors import DynamoError

__all__ = ["RepairScheduler"]


class RepairScheduler:
    """Runs one node's anti-entropy: on demand or in periodic passes.

    ``stats`` accumulates what every repair did.
    """

    def __init__(self, node: RepairContext) -> None:
        self.node = node
        self.stats = ExchangeStats()

    def my_partitions(self) -> list[int]:
        """Partitions this node is a replica of."""
        node = self.node
        return [
            partition
            for partition in node.table.partitions()
            if node.node_id in node.placement(partition).replicas
        ]

    async def repair_partition(self, partition: int, *, initiate_all: bool = True) -> ExchangeStats:
        """Anti-entropy for one partition with its other replicas.

        Without ``initiate_all`` only peers with a greater id are contacted,
        so each pair of replicas is compared once per round across the
        cluster. Old tombstones are collected when every replica was in sync.
        """
        node = self.node
        stats = ExchangeStats()
        peers = [p for p in node.placement(partition).replicas if p != node.node_id]
        now = node.clock.monotonic()
        all_in_sync = True
        for peer in peers:
            if not initiate_all and peer < node.node_id:
                all_in_sync = False  # that peer's own pass covers the pair
                continue
            if not node.is_available(peer, now):
                stats.peers_unreachable += 1
                all_in_sync = False
                continue
            try:
                done, in_sync = await exchange(node, partition, peer)
            except DynamoError:
                stats.peers_unreachable += 1
                all_in_sync = False
                continue
            stats.add(done)
            all_in_sync = all_in_sync and in_sync
        stats.partitions = 1
        if all_in_sync and peers:
            with contextlib.suppress(DynamoError):
                await collect_tombstones(node, partition, peers, stats)
        self.stats.add(stats)
        return stats

    async def repair_all(self) -> ExchangeStats:
        """A full anti-entropy pass over every partition this node replicates."""
        total = ExchangeStats()
        for partition in self.my_partitions():
            total.add(await self.repair_partition(partition))
        return total

    async def run(self) -> None:
        """A pass every ``anti_entropy_interval``, until cancelled."""
        node = self.node
        while True:
            await node.clock.sleep(node.config.anti_entropy_interval)
            for partition in self.my_partitions():
                await self.repair_partition(partition, initiate_all=False)
                # The rate limit: a pause between partitions keeps a pass from
                # crowding out client requests.
                await node.clock.sleep(node.config.anti_entropy_pause)
