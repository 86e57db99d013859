"""What each part of a node needs from the node it runs in: narrow, typed views.

The coordinator, the membership manager, the anti-entropy exchange, hint
delivery and repair scheduling each take one of the ``*Context`` protocols
below instead of :class:`~dynamo_toolkit.node.Node`. A protocol names exactly
the attributes its consumer reads, so a test can hand in a small fake, and a
change to ``Node`` that a consumer does not see cannot break it.
:class:`~dynamo_toolkit.node.Node` satisfies all of them (mypy checks it where
the node builds its parts).

The small protocols (:class:`NodeIdentity`, :class:`PeerEndpoint`, ...) are
the building blocks the ``*Context`` ones are made of.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    # Annotations only: these modules import this one (a cycle at run time).
    from dynamo_toolkit._hints import HintStore
    from dynamo_toolkit._node_stats import NodeStats
    from dynamo_toolkit.anti_entropy_exchange import ExchangeStats
    from dynamo_toolkit.config import StoreConfig
    from dynamo_toolkit.interfaces import (
        Clock,
        ConflictResolver,
        OwnershipTable,
        Partitioner,
        Placement,
        Replicator,
        Transport,
    )
    from dynamo_toolkit.messages import Message, ReplicaMessage, Reply
    from dynamo_toolkit.node_info import NodeInfo
    from dynamo_toolkit.replica_store import ReplicaStore

__all__ = [
    "CoordinatorContext",
    "ExchangeContext",
    "HintDeliveryContext",
    "LivenessView",
    "LocalReplica",
    "MembershipContext",
    "NodeIdentity",
    "PeerEndpoint",
    "PlacementView",
    "RepairContext",
    "ReplicaAccess",
    "StandinOrder",
]


# -- building blocks -----------------------------------------------------------


class NodeIdentity(Protocol):
    """Who the node is, what it was configured with, and its clock."""

    @property
    def node_id(self) -> str:
        """This node's id."""

    @property
    def config(self) -> StoreConfig:
        """The store's configuration."""

    @property
    def clock(self) -> Clock:
        """The node's clock."""


class PeerEndpoint(Protocol):
    """The node's transport endpoint (``None`` while stopped)."""

    @property
    def transport(self) -> Transport | None:
        """The started endpoint, or ``None``."""


class LivenessView(Protocol):
    """The failure detector's opinion of other members."""

    def is_available(self, node_id: str, now: float | None = None) -> bool:
        """Whether ``node_id`` is believed up (at ``now``, default the clock's)."""


class PlacementView(Protocol):
    """Where keys live in the table this node serves with."""

    def placement(self, position: int, n: int | None = None) -> Placement:
        """Replicas and sloppy-quorum fallbacks of ``position``."""


class StandinOrder(Protocol):
    """The replicator's choice of sloppy-quorum stand-ins."""

    def standins(self, placement: Placement, replica: str) -> tuple[str, ...]:
        """The order in which to try stand-ins for ``replica`` of ``placement``."""


class ReplicaAccess(Protocol):
    """This node's own replica of the data."""

    @property
    def store(self) -> ReplicaStore:
        """The replica store (records, digests)."""


class LocalReplica(Protocol):
    """Answering a replica request locally, as if it had come over the network."""

    def handle_replica_message(self, message: ReplicaMessage) -> Reply:
        """Apply ``message`` to local storage (or the hint store) and answer it."""


# -- what each part needs ------------------------------------------------------


class CoordinatorContext(
    NodeIdentity,
    PeerEndpoint,
    LivenessView,
    PlacementView,
    StandinOrder,
    ReplicaAccess,
    LocalReplica,
    Protocol,
):
    """What :class:`~dynamo_toolkit._coordinator.Coordinator` needs."""

    @property
    def running(self) -> bool:
        """True while the node answers messages."""

    @property
    def resolver(self) -> ConflictResolver:
        """Makes new versions and reconciles sibling sets."""

    @property
    def stats(self) -> NodeStats:
        """Counters the coordinator adds to."""

    def heard_from(self, node_id: str, periodic: bool = False) -> None:
        """Record that ``node_id`` answered (evidence of life)."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, tracked until the node settles."""

    def track(self, future: asyncio.Future[Any]) -> None:
        """Keep ``future`` among the background work the node settles."""

    async def request_quietly(self, dest: str, message: Message) -> None:
        """Send a request whose failure only matters to background work."""

    def durable_after(self, message: ReplicaMessage) -> asyncio.Future[None] | None:
        """For a write just applied locally: the flush to wait for, if its engine buffers."""


class ExchangeContext(NodeIdentity, PeerEndpoint, ReplicaAccess, Protocol):
    """What the anti-entropy exchange (:mod:`dynamo_toolkit.anti_entropy_exchange`) needs."""

    @property
    def table(self) -> OwnershipTable:
        """The ownership table served with (partition ranges)."""


class RepairContext(ExchangeContext, LivenessView, PlacementView, Protocol):
    """What repair scheduling (:mod:`dynamo_toolkit._repair`) needs."""


class HintDeliveryContext(
    NodeIdentity, PeerEndpoint, LivenessView, PlacementView, LocalReplica, Protocol
):
    """What hinted handoff (:mod:`dynamo_toolkit._hint_delivery`) needs."""

    @property
    def members(self) -> Mapping[str, NodeInfo]:
        """Live members by id (a hint for anyone else is redirected)."""

    @property
    def hints(self) -> HintStore:
        """The hints this node holds for others."""

    async def request_quietly(self, dest: str, message: Message) -> None:
        """Send a request whose failure only matters to background work."""


class MembershipContext(NodeIdentity, PeerEndpoint, LivenessView, ReplicaAccess, Protocol):
    """What :class:`~dynamo_toolkit._membership_manager.MembershipManager` needs."""

    @property
    def info(self) -> NodeInfo:
        """This node as the membership knows it."""

    @property
    def data_dir(self) -> Path | None:
        """Where the view is saved across restarts (``None``: not saved)."""

    @property
    def table(self) -> OwnershipTable:
        """The ownership table served with."""

    @property
    def partitioner(self) -> Partitioner:
        """Builds ownership tables from owners."""

    @property
    def replicator(self) -> Replicator:
        """Places replicas in a table (to plan what moves)."""

    def members_changed(self) -> None:
        """The view changed: learn new members' addresses, watch them."""

    def use_table(self, table: OwnershipTable) -> None:
        """Serve with ``table`` from now on."""

    async def repair_partition(self, partition: int, *, initiate_all: bool = True) -> ExchangeStats:
        """Run anti-entropy for ``partition`` with its other replicas."""
