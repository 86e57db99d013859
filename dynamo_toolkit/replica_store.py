"""A node's replica state: sibling sets per key over a storage engine."""

from __future__ import annotations

from collections.abc import Iterable

from dynamo_toolkit.interfaces import ConflictResolver, StorageEngine
from dynamo_toolkit.versioning import Version, pack_versions, unpack_versions

__all__ = ["ReplicaStore"]


class ReplicaStore:
    """Reads and reconciles the versions one node holds for each key."""

    def __init__(self, engine: StorageEngine, resolver: ConflictResolver) -> None:
        self.engine = engine
        self.resolver = resolver

    def read(self, key: bytes) -> tuple[Version, ...]:
        """The sibling set stored for ``key`` (empty if none)."""
        record = self.engine.get(key)
        return unpack_versions(record) if record is not None else ()

    def apply(self, key: bytes, position: int, incoming: Iterable[Version]) -> tuple[Version, ...]:
        """Reconcile ``incoming`` into the stored set; write only if it changed."""
        stored = self.read(key)
        merged = self.resolver.reconcile((*stored, *incoming))
        if merged != stored:
            self.engine.put(key, position, pack_versions(merged))
        return merged
