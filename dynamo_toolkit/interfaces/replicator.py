"""The ``Replicator`` interface: the preference list of a key."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import attrs

from dynamo_toolkit.interfaces.partitioner import OwnershipTable
from dynamo_toolkit.node_info import NodeInfo

__all__ = ["DatacenterPlacement", "Placement", "Replicator"]


@attrs.frozen
class Placement:
    """Where a key lives.

    ``replicas``: up to N distinct physical nodes, in preference order (fewer
    only when the cluster has fewer nodes, or when a replicator with
    per-datacenter targets finds a datacenter short of nodes). ``fallbacks``:
    every other node, in the order a sloppy quorum should try them as
    stand-ins (a replicator may reorder them per replica:
    :meth:`Replicator.standins`).
    """

    replicas: tuple[str, ...]
    fallbacks: tuple[str, ...] = ()


@attrs.frozen
class DatacenterPlacement:
    """What a replicator wants in one datacenter, and what the membership allows.

    ``wanted`` replicas per key; ``placed``: how many it places (fewer when the
    datacenter has fewer nodes); ``racks``: how many distinct racks those
    replicas span (fewer than ``placed`` when the datacenter has too few racks
    to give each replica its own).
    """

    datacenter: str
    wanted: int
    placed: int
    racks: int

    @property
    def short(self) -> int:
        """Replicas per key this datacenter cannot hold."""
        return self.wanted - self.placed

    @property
    def rack_distinct(self) -> bool:
        """Whether every replica in the datacenter is on a rack of its own."""
        return self.racks >= self.placed

    def describe(self) -> str:
        """One line for an operator, e.g. ``dc2: 2 of 3 replicas (1 short), 2 racks``."""
        name = self.datacenter or "(undeclared)"
        text = f"{name}: {self.placed} of {self.wanted} replicas"
        if self.short:
            text += f" ({self.short} short: too few nodes)"
        text += f", on {self.racks} rack{'s' if self.racks != 1 else ''}"
        if not self.rack_distinct:
            text += " (too few racks for one rack per replica)"
        return text


class Replicator(ABC):
    """Chooses the N replicas of a position from an ownership table."""

    @abstractmethod
    def place(
        self,
        table: OwnershipTable,
        position: int,
        n: int,
        members: Mapping[str, NodeInfo],
    ) -> Placement:
        """Return the placement of ``position`` with ``n`` replicas (pure, deterministic)."""

    def check_n(self, n: int) -> None:  # noqa: B027 - optional hook, accepting by default
        """Raise :class:`~dynamo_toolkit.errors.ConfigurationError` if the store's N does
        not fit this replicator's own configuration (called when a node's components
        are built). The default accepts any N.
        """

    def standins(
        self, placement: Placement, replica: str, members: Mapping[str, NodeInfo]
    ) -> tuple[str, ...]:
        """The nodes to try, in order, as sloppy-quorum stand-ins for ``replica``.

        The coordinator takes the first healthy one not already standing in
        for another replica. The default is ``placement.fallbacks`` for every
        replica.
        """
        return placement.fallbacks

    def datacenter_placement(
        self, n: int, members: Mapping[str, NodeInfo]
    ) -> tuple[DatacenterPlacement, ...]:
        """Per datacenter: replicas wanted per key versus what ``members`` allow.

        For ``dtk cluster plan`` to say where placement falls short. The
        default is ``()``: the replicator makes no per-datacenter promise.
        """
        return ()
