"""The ``AntiEntropy`` interface: summaries of a partition that locate divergence."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["AntiEntropy", "PartitionDigest"]


class PartitionDigest(ABC):
    """A mutable summary of the records of one partition on one replica.

    Kept up to date as records change; two replicas compare digests to find
    the keys that differ, then exchange only those.
    """

    @abstractmethod
    def update(self, key: bytes, record_hash: bytes) -> None:
        """Insert ``key`` or replace its record hash."""

    @abstractmethod
    def remove(self, key: bytes) -> None:
        """Forget ``key`` (no error if absent)."""

    @abstractmethod
    def root(self) -> bytes:
        """A hash of the whole summary: equal roots mean equal contents."""

    @abstractmethod
    def diff(self, other: PartitionDigest) -> set[bytes]:
        """Exactly the keys whose record hashes differ or that only one side has."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of keys summarised."""

    # A digest is a tree that two replicas walk over the network, asking for
    # the children of the nodes that differ: ``depth`` levels below the root
    # (0 for a flat digest that sends every item at once).

    @property
    @abstractmethod
    def depth(self) -> int:
        """Levels below the root; leaves are at level ``depth``."""

    @abstractmethod
    def node_hash(self, level: int, index: int) -> bytes:
        """Hash of node ``index`` at ``level`` (0 is the root)."""

    @abstractmethod
    def children_hashes(self, level: int, index: int) -> list[bytes]:
        """Hashes of the children of inner node ``index`` at ``level``, in order."""

    @abstractmethod
    def leaf_items(self, index: int) -> dict[bytes, bytes]:
        """``{key: record_hash}`` of leaf ``index``."""


class AntiEntropy(ABC):
    """Creates partition digests of one kind (e.g. Merkle trees)."""

    @abstractmethod
    def new_digest(self) -> PartitionDigest:
        """Return an empty digest for one partition."""
