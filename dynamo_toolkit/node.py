"""A node: its components, built from configuration, around a coordinator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import attrs

from dynamo_toolkit.anti_entropy_exchange import (
    ExchangeStats,
    answer_tree_query,
    collect_tombstones,
    exchange,
)
from dynamo_toolkit.clock import clock_for_running_loop
from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.coordinator import Coordinator
from dynamo_toolkit.errors import DynamoError, TransportError
from dynamo_toolkit.hints import HintLimits, HintStore
from dynamo_toolkit.interfaces import (
    ActiveFailureDetector,
    AntiEntropy,
    Clock,
    ConflictResolver,
    FailureDetector,
    Network,
    OwnershipTable,
    Partitioner,
    Placement,
    Prober,
    Replicator,
    StorageEngine,
    Transport,
)
from dynamo_toolkit.membership import NodeInfo
from dynamo_toolkit.membership_manager import MembershipManager
from dynamo_toolkit.messages import (
    Ack,
    CollectTombstones,
    ForwardedWrite,
    Gossip,
    Heartbeat,
    Ping,
    PingAck,
    PingReq,
    RangeQuery,
    RecordsQuery,
    RecordsReply,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaWrite,
    TreeQuery,
)
from dynamo_toolkit.plugin_manager import PluginHost
from dynamo_toolkit.replica_store import ReplicaStore
from dynamo_toolkit.results import GetResult, PutResult
from dynamo_toolkit.values import Key, key_position

__all__ = ["Node", "NodeStats"]

log = logging.getLogger(__name__)


@attrs.define
class NodeStats:
    """Counters a node keeps about its own work."""

    reads: int = 0
    writes: int = 0
    quorum_failures: int = 0
    read_repairs: int = 0
    replica_writes: int = 0
    replica_reads: int = 0
    hinted_requests: int = 0
    forwarded_writes: int = 0  # writes handed to a replica to coordinate


class Node:
    """One member of a store.

    Built from a :class:`~dynamo_toolkit.config.StoreConfig` through the plugin
    registry; ``network`` supplies its transport endpoint. Start it with
    :meth:`start` inside a running event loop; it then answers replica messages
    and coordinates :meth:`get`, :meth:`put` and :meth:`delete`.
    """

    def __init__(
        self,
        info: NodeInfo,
        members: Sequence[NodeInfo],
        config: StoreConfig,
        *,
        host: PluginHost,
        network: Network,
        data_dir: Path | None = None,
        clock: Clock | None = None,
        table: OwnershipTable | None = None,
        joining: bool = False,
        seeds: Sequence[NodeInfo] = (),
    ) -> None:
        self.info = info
        self.config = config
        self.host = host
        self.network = network
        self.data_dir = data_dir
        self._clock = clock
        self.stats = NodeStats()
        if not joining and info.node_id not in {member.node_id for member in members}:
            raise DynamoError(f"node {info.node_id!r} is not in the membership")

        def build(interface: str, **extra: Any) -> Any:
            choice = config.component(interface)
            return host.registry.create(interface, choice.name, **extra, **choice.params)

        self.partitioner: Partitioner = build("partitioner")
        self.replicator: Replicator = build("replicator")
        self.resolver: ConflictResolver = build("conflict_resolver")
        self.detector: FailureDetector = build("failure_detector")
        self.anti_entropy: AntiEntropy = build("anti_entropy")
        self.engine: StorageEngine = build(
            "storage_engine", node_id=info.node_id, data_dir=data_dir
        )
        self.store = ReplicaStore(self.engine, self.resolver)
        # Hints live in an engine of their own: as durable as the data, and
        # never mixed with it.
        hint_engine = build("storage_engine", node_id=f"{info.node_id}-hints", data_dir=data_dir)
        limits = HintLimits(config.hint_max_count, config.hint_max_bytes, config.hint_max_age)
        self.hints = HintStore(hint_engine, self.resolver, limits)
        self.membership = MembershipManager(self, members, joining=joining, seeds=seeds)
        self.members: dict[str, NodeInfo] = self.membership.live_members()
        # A view restored from disk may name members the static config did not.
        add_members = getattr(network, "add_members", None)
        if add_members is not None:
            add_members(list(self.members.values()))
        self.table = table if table is not None else self.membership.serving_table()
        self._placements: dict[tuple[int, int], Placement] = {}
        self.store.attach_digests(self.anti_entropy, self.table.partition_of)
        self.repairs = ExchangeStats()
        self.coordinator = Coordinator(self)
        self.transport: Transport | None = None
        self._background: set[asyncio.Future[Any]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._handoff_task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._anti_entropy_task: asyncio.Task[None] | None = None

    # -- identity and state --------------------------------------------------

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self.info.node_id

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self.transport is not None

    @property
    def clock(self) -> Clock:
        """The node's clock (the running loop's unless one was given)."""
        if self._clock is None:
            self._clock = clock_for_running_loop()
        return self._clock

    def members_changed(self) -> None:
        """The membership view changed: learn new members' addresses, watch them."""
        members = self.membership.live_members()
        new = [info for node_id, info in members.items() if node_id not in self.members]
        self.members = members
        self._placements.clear()
        add = getattr(self.network, "add_members", None)
        if new and add is not None:
            add(new)
        now = self.clock.monotonic() if self.running else 0.0
        for info in new:
            if info.node_id != self.node_id:
                self.detector.watch(info.node_id, now)

    def use_table(self, table: OwnershipTable) -> None:
        """Serve with ``table`` from now on (after a handoff)."""
        self.table = table
        self._placements.clear()
        self.store.attach_digests(self.anti_entropy, table.partition_of)

    def placement(self, position: int, n: int | None = None) -> Placement:
        """Replicas (and sloppy-quorum fallbacks) of ``position``.

        Every position of a partition has the same placement, so it is
        computed once per partition and kept until the table changes.
        """
        count = self.config.n if n is None else n
        slot = (self.table.partition_of(position), count)
        placement = self._placements.get(slot)
        if placement is None:
            placement = self.replicator.place(self.table, position, count, self.members)
            self._placements[slot] = placement
        return placement

    def is_available(self, node_id: str, now: float | None = None) -> bool:
        """The failure detector's opinion of ``node_id``."""
        when = self.clock.monotonic() if now is None else now
        return self.detector.is_available(node_id, when)

    def heard_from(self, node_id: str, periodic: bool = False) -> None:
        """Record evidence that ``node_id`` is alive (``periodic`` for heartbeats)."""
        if periodic or not self.detector.heartbeats_only:
            self.detector.heartbeat(node_id, self.clock.monotonic())

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Attach to the network, start heartbeats, call ``dtk_node_started``."""
        if self.running:
            return
        transport = self.network.endpoint(self.node_id)
        await transport.start(self.handle)
        self.transport = transport
        now = self.clock.monotonic()
        for peer in self.members:
            if peer != self.node_id:
                self.detector.watch(peer, now)
        loop = asyncio.get_running_loop()
        self._heartbeat_task = loop.create_task(self._heartbeats())
        self._handoff_task = loop.create_task(self._deliver_hints())
        self._anti_entropy_task = loop.create_task(self._anti_entropy_passes())
        self.membership.start()
        if isinstance(self.detector, ActiveFailureDetector):
            self._probe_task = loop.create_task(self.detector.run(_NodeProber(self)))
        self.host.hook.dtk_node_started(node=self)

    async def stop(self) -> None:
        """Stop answering (storage stays open, so the node can :meth:`start` again)."""
        if not self.running:
            return
        self.host.hook.dtk_node_stopping(node=self)
        await self.membership.stop()
        for periodic in (
            self._heartbeat_task,
            self._handoff_task,
            self._probe_task,
            self._anti_entropy_task,
        ):
            if periodic is not None:
                periodic.cancel()
                await asyncio.gather(periodic, return_exceptions=True)
        transport, self.transport = self.transport, None
        assert transport is not None
        await transport.stop()
        for task in list(self._background):
            task.cancel()
        await self.settle()
        self.engine.flush()
        self.hints.engine.flush()

    async def close(self) -> None:
        """Stop and close storage for good."""
        await self.stop()
        self.engine.close()
        self.hints.engine.close()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, tracked so :meth:`settle` can wait for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._task_finished)

    def track(self, future: asyncio.Future[Any]) -> None:
        """Keep ``future`` (e.g. a replica's reply) in the background work :meth:`settle` awaits."""
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    def _task_finished(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background task failed", self.node_id, exc_info=task.exception())

    async def settle(self) -> None:
        """Wait until background work (late replies, read repair) has finished."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _heartbeats(self) -> None:
        beat_every = self.config.heartbeat_interval
        while True:
            assert self.transport is not None
            beat = Heartbeat(self.clock.now())
            for peer in self.members:
                if peer != self.node_id:
                    self.transport.send(peer, beat)
            await self.clock.sleep(beat_every)

    async def _deliver_hints(self) -> None:
        # Hinted handoff: hand each owner what we hold for it once the failure
        # detector says it is back; a failure ends the round for that owner.
        while True:
            await self.clock.sleep(self.config.hint_delivery_interval)
            await self.deliver_hints()

    async def deliver_hints(self, limit: int = 256) -> int:
        """One handoff round: send pending hints to reachable owners; returns hints delivered."""
        delivered = 0
        now = self.clock.monotonic()
        self.hints.expire(self.clock.now())
        for owner in self.hints.owners():
            if owner != self.node_id and owner not in self.members:
                delivered += await self._redirect_hints(owner, limit)
                continue
            if owner == self.node_id:
                continue
            if self.transport is None or not self.is_available(owner, now):
                continue
            for hint in self.hints.pending(owner, self.clock.now(), limit):
                message = ReplicaWrite(hint.key, hint.position, hint.versions)
                try:
                    await self.transport.request(owner, message, self.config.request_timeout)
                except TransportError:
                    break
                self.hints.remove(hint)
                delivered += 1
        return delivered

    # -- anti-entropy ------------------------------------------------------

    def my_partitions(self) -> list[int]:
        """Partitions this node is a replica of."""
        return [
            partition
            for partition in self.table.partitions()
            if self.node_id in self.placement(partition).replicas
        ]

    async def repair_partition(self, partition: int, *, initiate_all: bool = True) -> ExchangeStats:
        """Anti-entropy for one partition with its other replicas.

        Without ``initiate_all`` only peers with a greater id are contacted,
        so each pair of replicas is compared once per round across the
        cluster. Old tombstones are collected when every replica was in sync.
        """
        stats = ExchangeStats()
        peers = [p for p in self.placement(partition).replicas if p != self.node_id]
        now = self.clock.monotonic()
        all_in_sync = True
        for peer in peers:
            if not initiate_all and peer < self.node_id:
                all_in_sync = False  # that peer's own pass covers the pair
                continue
            if not self.is_available(peer, now):
                stats.peers_unreachable += 1
                all_in_sync = False
                continue
            try:
                done, in_sync = await exchange(self, partition, peer)
            except DynamoError:
                stats.peers_unreachable += 1
                all_in_sync = False
                continue
            stats.add(done)
            all_in_sync = all_in_sync and in_sync
        stats.partitions = 1
        if all_in_sync and peers:
            with contextlib.suppress(DynamoError):
                await collect_tombstones(self, partition, peers, stats)
        self.repairs.add(stats)
        return stats

    async def repair_all(self) -> ExchangeStats:
        """A full anti-entropy pass over every partition this node replicates."""
        total = ExchangeStats()
        for partition in self.my_partitions():
            total.add(await self.repair_partition(partition))
        return total

    async def _anti_entropy_passes(self) -> None:
        while True:
            await self.clock.sleep(self.config.anti_entropy_interval)
            for partition in self.my_partitions():
                await self.repair_partition(partition, initiate_all=False)
                # The rate limit: a pause between partitions keeps a pass from
                # crowding out client requests.
                await self.clock.sleep(self.config.anti_entropy_pause)

    async def _redirect_hints(self, owner: str, limit: int) -> int:
        """Hints for a member that was removed go to the keys' current replicas."""
        moved = 0
        for hint in self.hints.pending(owner, self.clock.now(), limit):
            write = ReplicaWrite(hint.key, hint.position, hint.versions)
            for replica in self.placement(hint.position).replicas:
                if replica == self.node_id:
                    self.handle_replica_message(write)
                else:
                    await self.request_quietly(replica, write)
            self.hints.remove(hint)
            moved += 1
        return moved

    async def request_quietly(self, dest: str, message: object) -> None:
        """Send a request whose failure only matters to background work."""
        if self.transport is None:
            return
        with contextlib.suppress(TransportError):
            await self.transport.request(dest, message, self.config.request_timeout)

    # -- messages ------------------------------------------------------------

    async def handle(self, source: str, message: object) -> object:
        """The transport's handler: every message is also evidence of life."""
        periodic = isinstance(message, Heartbeat)
        self.heard_from(source, periodic)
        if periodic:
            return None
        if isinstance(message, Ping | PingReq):
            return await self._answer_probe(source, message)
        if isinstance(message, Gossip):
            return self.membership.on_gossip(message)
        if isinstance(message, RangeQuery):
            return self.membership.answer_range(message)
        if isinstance(message, ForwardedWrite):
            return await self.coordinator.coordinate_forwarded(message)
        return self.handle_replica_message(message)

    async def _answer_probe(self, source: str, message: Ping | PingReq) -> object:
        detector = self.detector
        if isinstance(message, Ping):
            if isinstance(detector, ActiveFailureDetector):
                now = self.clock.monotonic()
                return PingAck(detector.on_ping(source, list(message.suspects), now))
            return PingAck(0)
        # An indirect probe: ping the target ourselves and relay its answer.
        if self.transport is None:
            raise DynamoError(f"{self.node_id} is stopped")
        # request_future: handlers may run eagerly, outside any task.
        reply = await self.transport.request_future(message.target, Ping(), message.timeout)
        self.heard_from(message.target)
        return reply

    def handle_replica_message(self, message: object) -> object:
        """Apply a replica read or write to local storage."""
        if isinstance(message, ReplicaWrite):
            owner = message.hint_for
            if owner is not None and owner != self.node_id:
                held = self.hints.add(
                    owner, message.key, message.position, message.versions, self.clock.now()
                )
                if not held:
                    raise DynamoError(f"{self.node_id}: hint store full, cannot hold for {owner}")
                return Ack()
            self.stats.replica_writes += 1
            self.store.apply(message.key, message.position, message.versions)
            return Ack()
        if isinstance(message, TreeQuery):
            return answer_tree_query(self, message)
        if isinstance(message, RecordsQuery):
            return RecordsReply(
                tuple(
                    (key, key_position(key), versions)
                    for key in message.keys
                    if (versions := self.store.read(key))
                )
            )
        if isinstance(message, CollectTombstones):
            for key, position, expected in message.entries:
                self.store.collect(key, position, expected)
            return Ack()
        if isinstance(message, ReplicaRead):
            self.stats.replica_reads += 1
            owner = message.hint_for
            if owner is not None and owner != self.node_id:
                return ReplicaReadReply(self.hints.get(owner, message.key))
            return ReplicaReadReply(self.store.read(message.key))
        raise DynamoError(f"unexpected message {type(message).__name__}")

    # -- client API ----------------------------------------------------------

    async def get(self, key: Key, *, r: int | None = None, n: int | None = None) -> GetResult:
        """Coordinate a read (see :meth:`Coordinator.get`)."""
        return await self.coordinator.get(key, r=r, n=n)

    async def put(
        self,
        key: Key,
        value: object,
        context: bytes | None = None,
        *,
        w: int | None = None,
        n: int | None = None,
        supersede_local: bool = False,
    ) -> PutResult:
        """Coordinate a write (see :meth:`Coordinator.put`)."""
        return await self.coordinator.put(
            key, value, context, w=w, n=n, supersede_local=supersede_local
        )

    async def delete(
        self,
        key: Key,
        context: bytes | None = None,
        *,
        w: int | None = None,
        n: int | None = None,
        supersede_local: bool = False,
    ) -> PutResult:
        """Coordinate a delete (a versioned tombstone)."""
        return await self.coordinator.delete(
            key, context, w=w, n=n, supersede_local=supersede_local
        )


class _NodeProber(Prober):
    """Probes for an active failure detector, over the node's own transport."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.node_id = node.node_id

    def members(self) -> list[str]:
        return sorted(m for m in self.node.members if m != self.node_id)

    def monotonic(self) -> float:
        return self.node.clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.node.clock.sleep(seconds)

    async def _ask(self, dest: str, message: object, timeout: float) -> int | None:
        transport = self.node.transport
        if transport is None:
            return None
        try:
            reply = await transport.request(dest, message, timeout)
        except TransportError:
            return None
        return reply.incarnation if isinstance(reply, PingAck) else None

    async def ping(
        self, target: str, timeout: float, suspects: list[tuple[str, int]]
    ) -> int | None:
        return await self._ask(target, Ping(tuple(suspects)), timeout)

    async def ping_req(self, via: str, target: str, timeout: float) -> int | None:
        # The helper itself waits ``timeout`` for the target: allow it that long too.
        return await self._ask(via, PingReq(target, timeout), 2 * timeout)
