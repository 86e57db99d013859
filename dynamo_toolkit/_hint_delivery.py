"""Hinted handoff, the delivering side (Dynamo §4.6).

A stand-in hands each owner the writes it holds for it once the failure
detector says the owner is back; a failure ends the round for that owner.
Hints for a member that was removed go to the keys' current replicas instead.
:mod:`dynamo_toolkit._hints` keeps the hints; this module moves them.
"""

from __future__ import annotations

from dynamo_toolkit._protocols import HintDeliveryContext
from dynamo_toolkit.errors import TransportError
from dynamo_toolkit.messages import ReplicaWrite

__all__ = ["HintDelivery"]


class HintDelivery:
    """Delivers one node's hints, in rounds (:meth:`deliver`) or periodically (:meth:`run`)."""

    def __init__(self, node: HintDeliveryContext) -> None:
        self.node = node

    async def run(self) -> None:
        """Deliver every ``hint_delivery_interval``, until cancelled."""
        node = self.node
        while True:
            await node.clock.sleep(node.config.hint_delivery_interval)
            await self.deliver()

    async def deliver(self, limit: int = 256) -> int:
        """One handoff round: send pending hints to reachable owners; returns hints delivered."""
        node = self.node
        hints = node.hints
        delivered = 0
        now = node.clock.monotonic()
        hints.expire(node.clock.now())
        for owner in hints.owners():
            if owner != node.node_id and owner not in node.members:
                delivered += await self._redirect(owner, limit)
                continue
            if owner == node.node_id:
                continue
            transport = node.transport
            if transport is None or not node.is_available(owner, now):
                continue
            for hint in hints.pending(owner, node.clock.now(), limit):
                message = ReplicaWrite(hint.key, hint.position, hint.versions)
                try:
                    await transport.request(owner, message, node.config.request_timeout)
                except TransportError:
                    break
                hints.remove(hint)
                delivered += 1
        return delivered

    async def _redirect(self, owner: str, limit: int) -> int:
        """Hints for a member that was removed go to the keys' current replicas."""
        node = self.node
        moved = 0
        for hint in node.hints.pending(owner, node.clock.now(), limit):
            write = ReplicaWrite(hint.key, hint.position, hint.versions)
            for replica in node.placement(hint.position).replicas:
                if replica == node.node_id:
                    node.handle_replica_message(write)
                else:
                    await node.request_quietly(replica, write)
            node.hints.remove(hint)
            moved += 1
        return moved
