"""A node's replica state: sibling sets per key over a storage engine."""

from __future__ import annotations

from collections.abc import Iterable

from dynamo_toolkit.interfaces import ConflictResolver, StorageEngine
from dynamo_toolkit.versioning import Version, pack_versions, unpack_versions

__all__ = ["ReplicaStore"]


class ReplicaStore:
    """Reads and reconciles the versions one node holds for each key.

    Keeps the decoded sibling sets of the most recently used keys, so a hot
    key is not unpacked from the engine's bytes on every request. Every write
    goes through :meth:`apply`, which keeps the two in step.
    """

    def __init__(
        self, engine: StorageEngine, resolver: ConflictResolver, decoded_cache: int = 65536
    ) -> None:
        self.engine = engine
        self.resolver = resolver
        self._decoded: dict[bytes, tuple[Version, ...]] = {}
        self._cache_size = decoded_cache

    def _remember(self, key: bytes, versions: tuple[Version, ...]) -> None:
        if self._cache_size <= 0:
            return
        self._decoded[key] = versions
        if len(self._decoded) > self._cache_size:
            # Evict the oldest insertion; cheaper than LRU bookkeeping per read.
            del self._decoded[next(iter(self._decoded))]

    def read(self, key: bytes) -> tuple[Version, ...]:
        """The sibling set stored for ``key`` (empty if none)."""
        cached = self._decoded.get(key)
        if cached is not None:
            return cached
        record = self.engine.get(key)
        versions = unpack_versions(record) if record is not None else ()
        self._remember(key, versions)
        return versions

    def apply(self, key: bytes, position: int, incoming: Iterable[Version]) -> tuple[Version, ...]:
        """Reconcile ``incoming`` into the stored set; write only if it changed."""
        stored = self.read(key)
        merged = self.resolver.reconcile((*stored, *incoming))
        if merged != stored:
            self.engine.put(key, position, pack_versions(merged))
            self._remember(key, merged)
        return merged

    def forget(self, key: bytes) -> None:
        """Drop ``key`` from the decoded cache (after a direct engine change)."""
        self._decoded.pop(key, None)
