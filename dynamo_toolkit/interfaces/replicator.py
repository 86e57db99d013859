"""The ``Replicator`` interface: the preference list of a key."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import attrs

from dynamo_toolkit.interfaces.partitioner import OwnershipTable
from dynamo_toolkit.node_info import NodeInfo

__all__ = ["Placement", "Replicator"]


@attrs.frozen
class Placement:
    """Where a key lives.

    ``replicas``: up to N distinct physical nodes, in preference order (fewer
    only when the cluster has fewer nodes). ``fallbacks``: every other node, in
    the order a sloppy quorum should try them as stand-ins.
    """

    replicas: tuple[str, ...]
    fallbacks: tuple[str, ...] = ()


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
