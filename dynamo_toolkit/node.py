"""A node: components built from configuration, wired around a coordinator.

:func:`~dynamo_toolkit.components.build_components` builds the pluggable
components; the node wires them to its coordinator, membership manager, hint
delivery and repair scheduler, each of which sees it through a narrow protocol
(:mod:`dynamo_toolkit._protocols`), and dispatches the messages it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, assert_never

from dynamo_toolkit._coordinator import Coordinator
from dynamo_toolkit._group_commit import GroupCommit
from dynamo_toolkit._hint_delivery import HintDelivery
from dynamo_toolkit._hints import HintStore
from dynamo_toolkit._membership_manager import MembershipManager
from dynamo_toolkit._node_stats import NodeStats
from dynamo_toolkit._repair import RepairScheduler
from dynamo_toolkit.anti_entropy_exchange import ExchangeStats, answer_tree_query
from dynamo_toolkit.clock import clock_for_running_loop
from dynamo_toolkit.components import NodeComponents
from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import DynamoError, TransportError
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
from dynamo_toolkit.messages import (
    Ack,
    CollectTombstones,
    ForwardedWrite,
    Gossip,
    Heartbeat,
    Message,
    Ping,
    PingAck,
    PingReq,
    RangeQuery,
    RecordsQuery,
    RecordsReply,
    ReplicaMessage,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaWrite,
    Reply,
    TreeQuery,
    is_message,
)
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import PluginHost
from dynamo_toolkit.probe_responder import ProbeResponder
from dynamo_toolkit.replica_store import ReplicaStore
from dynamo_toolkit.results import GetResult, PutResult
from dynamo_toolkit.values import Key, key_position

__all__ = ["Node", "NodeStats"]

log = logging.getLogger(__name__)


class Node:
    """One member of a store.

    Its components come built (``components``, see
    :func:`~dynamo_toolkit.components.build_components`): the node wires
    them together, it does not choose them. ``host`` is only asked to run
    the node's hooks. ``network`` supplies its transport endpoint. Start it with :meth:`start`
    inside a running event loop; it then answers replica messages and
    coordinates :meth:`get`, :meth:`put` and :meth:`delete`.
    """

    def __init__(
        self,
        info: NodeInfo,
        members: Sequence[NodeInfo],
        config: StoreConfig,
        *,
        host: PluginHost,
        network: Network,
        components: NodeComponents,
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
        self.components = components
        self.partitioner: Partitioner = components.partitioner
        self.replicator: Replicator = components.replicator
        self.resolver: ConflictResolver = components.resolver
        self.detector: FailureDetector = components.detector
        self.anti_entropy: AntiEntropy = components.anti_entropy
        self.engine: StorageEngine = components.engine
        self.store: ReplicaStore = components.store
        self.hints: HintStore = components.hints
        # Engines that make a write durable only at their next flush get group
        # commit: a write is acknowledged after the flush that covers it.
        #: Group commit of the data engine and of the hint engine (``None`` when
        #: the engine makes each write durable in ``put``); its counts show sharing.
        self.group_commit = GroupCommit(self.engine.flush) if self.engine.buffers_writes else None
        hints = self.hints.engine
        self.hint_group_commit = GroupCommit(hints.flush) if hints.buffers_writes else None
        self.membership = MembershipManager(self, members, joining=joining, seeds=seeds)
        self.members: dict[str, NodeInfo] = self.membership.live_members()
        # A view restored from disk may name members the static config did not.
        network.add_members(list(self.members.values()))
        self.table = table if table is not None else self.membership.serving_table()
        self._placements: dict[tuple[int, int], Placement] = {}
        self.store.attach_digests(self.anti_entropy, self.table.partition_of)
        self.repair_scheduler = RepairScheduler(self)
        self.hint_delivery = HintDelivery(self)
        self.coordinator = Coordinator(self)
        self._probes = ProbeResponder(
            lambda: self.detector, lambda: self.clock.monotonic(), self._ping, self.heard_from
        )
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
        if new:
            self.network.add_members(new)
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

    def standins(self, placement: Placement, replica: str) -> tuple[str, ...]:
        """The replicator's order of sloppy-quorum stand-ins for ``replica``."""
        return self.replicator.standins(placement, replica, self.members)

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
        self._handoff_task = loop.create_task(self.hint_delivery.run())
        self._anti_entropy_task = loop.create_task(self.repair_scheduler.run())
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

    async def deliver_hints(self, limit: int = 256) -> int:
        """One handoff round; returns hints delivered.

        See :meth:`HintDelivery.deliver <dynamo_toolkit._hint_delivery.HintDelivery.deliver>`.
        """
        return await self.hint_delivery.deliver(limit)

    # -- anti-entropy ------------------------------------------------------

    @property
    def repairs(self) -> ExchangeStats:
        """What every anti-entropy repair of this node did, accumulated."""
        return self.repair_scheduler.stats

    def my_partitions(self) -> list[int]:
        """Partitions this node is a replica of."""
        return self.repair_scheduler.my_partitions()

    async def repair_partition(self, partition: int, *, initiate_all: bool = True) -> ExchangeStats:
        """Anti-entropy for one partition with its other replicas.

        See :meth:`RepairScheduler.repair_partition
        <dynamo_toolkit._repair.RepairScheduler.repair_partition>`.
        """
        return await self.repair_scheduler.repair_partition(partition, initiate_all=initiate_all)

    async def repair_all(self) -> ExchangeStats:
        """A full anti-entropy pass over every partition this node replicates."""
        return await self.repair_scheduler.repair_all()

    async def request_quietly(self, dest: str, message: Message) -> None:
        """Send a request whose failure only matters to background work."""
        if self.transport is None:
            return
        with contextlib.suppress(TransportError):
            await self.transport.request(dest, message, self.config.request_timeout)

    # -- messages ------------------------------------------------------------

    async def handle(self, source: str, message: object) -> Reply | None:
        """The transport's handler: every message is also evidence of life."""
        periodic = isinstance(message, Heartbeat)
        self.heard_from(source, periodic)
        if not is_message(message):
            raise DynamoError(f"unexpected message {type(message).__name__}")
        # Exhaustive over Message: mypy fails here if a kind is left unanswered.
        match message:
            case Heartbeat():
                return None
            case Ping() | PingReq():
                return await self._answer_probe(source, message)
            case Gossip():
                return self.membership.on_gossip(message)
            case RangeQuery():
                return self.membership.answer_range(message)
            case ForwardedWrite():
                return await self.coordinator.coordinate_forwarded(message)
            case (
                ReplicaWrite() | ReplicaRead() | TreeQuery() | RecordsQuery() | CollectTombstones()
            ):
                reply = self.handle_replica_message(message)
                flushed = self.durable_after(message)
                if flushed is not None:
                    await flushed  # acknowledged once durable (group commit)
                return reply
            case _:
                assert_never(message)

    async def _answer_probe(self, source: str, message: Ping | PingReq) -> PingAck:
        return await self._probes.answer(source, message)

    async def _ping(self, target: str, timeout: float) -> object:
        """Ping ``target`` for an indirect probe."""
        if self.transport is None:
            raise DynamoError(f"{self.node_id} is stopped")
        # request_future: handlers may run eagerly, outside any task.
        return await self.transport.request_future(target, Ping(), timeout)

    def durable_after(self, message: ReplicaMessage) -> asyncio.Future[None] | None:
        """For a write just applied here: the flush that makes it durable, if one is due.

        ``None`` when the message wrote nothing an acknowledgement promises, or
        when its engine makes each write durable in ``put`` already.
        """
        if not isinstance(message, ReplicaWrite):
            return None
        owner = message.hint_for
        hinted = owner not in (None, self.node_id)
        commits = self.hint_group_commit if hinted else self.group_commit
        return None if commits is None else commits.after_flush()

    def handle_replica_message(self, message: ReplicaMessage) -> Reply:
        """Apply a replica read or write to local storage."""
        match message:
            case ReplicaWrite():
                owner = message.hint_for
                if owner is not None and owner != self.node_id:
                    held = self.hints.add(
                        owner, message.key, message.position, message.versions, self.clock.now()
                    )
                    if not held:
                        raise DynamoError(
                            f"{self.node_id}: hint store full, cannot hold for {owner}"
                        )
                    return Ack()
                self.stats.replica_writes += 1
                self.store.apply(message.key, message.position, message.versions)
                return Ack()
            case TreeQuery():
                return answer_tree_query(self, message)
            case RecordsQuery():
                return RecordsReply(
                    tuple(
                        (key, key_position(key), versions)
                        for key in message.keys
                        if (versions := self.store.read(key))
                    )
                )
            case CollectTombstones():
                for key, position, expected in message.entries:
                    self.store.collect(key, position, expected)
                return Ack()
            case ReplicaRead():
                self.stats.replica_reads += 1
                owner = message.hint_for
                if owner is not None and owner != self.node_id:
                    return ReplicaReadReply(self.hints.get(owner, message.key))
                return ReplicaReadReply(self.store.read(message.key))
            case _:
                assert_never(message)

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
