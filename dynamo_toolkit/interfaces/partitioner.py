"""The ``Partitioner`` interface: positions to owners.

Keys are hashed once by the kernel into 64-bit positions
(:func:`dynamo_toolkit.values.key_position`). A partitioner turns a membership
into an immutable :class:`OwnershipTable`; the table answers, for a position,
which nodes own it in preference order and which partition (a half-open
interval of positions) holds it. Storage, anti-entropy and handoff work per
partition.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from dynamo_toolkit.node_info import NodeInfo

__all__ = ["OwnershipTable", "Partitioner"]


class OwnershipTable(ABC):
    """Which node owns which positions; a pure, immutable value.

    Tables built from the same membership by the same partitioner (with the
    same parameters) must be equal in every answer, on every node.
    """

    @property
    @abstractmethod
    def nodes(self) -> tuple[str, ...]:
        """The node ids the table places data on, sorted."""

    @abstractmethod
    def walk(self, position: int) -> Iterator[str]:
        """Node ids in preference order for ``position``; may repeat a node.

        The first one is the position's owner (coordinator in Dynamo's terms);
        the iteration visits every node of the table at least once, then stops.
        """

    @abstractmethod
    def partitions(self) -> Sequence[int]:
        """Ids of all partitions, sorted; an id is the partition's first position."""

    @abstractmethod
    def partition_of(self, position: int) -> int:
        """Id of the partition holding ``position``.

        A partition is the unit of placement: :meth:`walk` gives the same
        nodes for every position of one partition (nodes cache placements
        per partition).
        """

    @abstractmethod
    def partition_range(self, partition: int) -> tuple[int, int]:
        """The half-open interval ``[start, end)`` of positions in ``partition``."""

    def metadata_size(self) -> int:
        """Rough size in bytes of what a node must keep to route (for comparisons)."""
        return 16 * len(self.partitions())


class Partitioner(ABC):
    """Builds ownership tables from a membership."""

    @abstractmethod
    def assign(self, members: Sequence[NodeInfo]) -> OwnershipTable:
        """Return the ownership table for ``members`` (deterministic, no I/O).

        Raises ``ValueError`` when ``members`` is empty or has duplicate ids.
        """
