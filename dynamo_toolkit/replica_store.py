"""A node's replica state: sibling sets per key over a storage engine."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import mmh3

from dynamo_toolkit.interfaces import AntiEntropy, ConflictResolver, PartitionDigest, StorageEngine
from dynamo_toolkit.values import POSITION_SPACE
from dynamo_toolkit.versioning import Version, pack_versions, unpack_versions

__all__ = ["DEFAULT_DECODED_CACHE_BYTES", "ReplicaStore", "decoded_charge", "record_hash"]

#: The decoded-set cache's default budget: 64 MiB.
DEFAULT_DECODED_CACHE_BYTES = 64 * 1024 * 1024

# What a decoded entry costs beyond its packed bytes, measured with
# tracemalloc on CPython 3.11: about 400 bytes per version (the Version, its
# clock and entries) and 100 for the cache's own slot.
_PER_VERSION_BYTES = 400
_PER_ENTRY_BYTES = 100


def decoded_charge(key: bytes, record_bytes: int, versions: int) -> int:
    """Bytes a decoded sibling set is charged in the cache (an estimate, see above)."""
    return len(key) + record_bytes + versions * _PER_VERSION_BYTES + _PER_ENTRY_BYTES


class ReplicaStore:
    """Reads and reconciles the versions one node holds for each key.

    Keeps the decoded sibling sets of the most recently used keys, so a hot
    key is not unpacked from the engine's bytes on every request, and, once
    :meth:`attach_digests` was called, one anti-entropy digest per partition.
    Every write goes through :meth:`apply` (or :meth:`collect`), which keeps
    all three in step.
    """

    def __init__(
        self,
        engine: StorageEngine,
        resolver: ConflictResolver,
        decoded_cache_bytes: int = DEFAULT_DECODED_CACHE_BYTES,
    ) -> None:
        self.engine = engine
        self.resolver = resolver
        # An OrderedDict, not a dict: evicting a plain dict's oldest key gets
        # slower with every deletion (iteration skips the freed slots at its front).
        self._decoded: OrderedDict[bytes, tuple[tuple[Version, ...], int]] = OrderedDict()
        self._cache_budget = decoded_cache_bytes
        #: Bytes the decoded-set cache holds now (estimated, never above its budget).
        self.decoded_bytes = 0
        #: Reads of sibling sets, and those the decoded cache answered.
        self.lookups = 0
        self.decoded_hits = 0
        self._digests: dict[int, PartitionDigest] = {}
        self._anti_entropy: AntiEntropy | None = None
        self._partition_of: Callable[[int], int] = lambda position: 0
        # Keys whose whole sibling set is tombstones, with their positions:
        # learned by one scan when first asked, then kept by every write, so
        # tombstone collection does not scan each partition on every pass.
        self._tombstoned: dict[bytes, int] | None = None

    def attach_digests(self, anti_entropy: AntiEntropy, partition_of: Callable[[int], int]) -> None:
        """(Re)build one digest per partition from storage, and keep them current."""
        self._anti_entropy = anti_entropy
        self._partition_of = partition_of
        self._digests = {}
        for key, position, record in self.engine.scan(0, POSITION_SPACE):
            self.digest(partition_of(position)).update(key, record_hash(record))

    def digest(self, partition: int) -> PartitionDigest:
        """The digest of ``partition`` (empty if nothing stored there)."""
        digest = self._digests.get(partition)
        if digest is None:
            if self._anti_entropy is None:
                raise RuntimeError("attach_digests() was not called")
            digest = self._digests[partition] = self._anti_entropy.new_digest()
        return digest

    def _remember(self, key: bytes, versions: tuple[Version, ...], record_bytes: int) -> None:
        charge = decoded_charge(key, record_bytes, len(versions))
        if charge > self._cache_budget:
            self._drop_decoded(key)  # too big to keep (or the cache is off)
            return
        old = self._decoded.get(key)
        if old is not None:
            self.decoded_bytes -= old[1]
        self._decoded[key] = (versions, charge)
        self.decoded_bytes += charge
        while self.decoded_bytes > self._cache_budget:
            # Evict the oldest insertion; cheaper than LRU bookkeeping per read.
            _, (_, freed) = self._decoded.popitem(last=False)
            self.decoded_bytes -= freed

    def _drop_decoded(self, key: bytes) -> None:
        old = self._decoded.pop(key, None)
        if old is not None:
            self.decoded_bytes -= old[1]

    def read(self, key: bytes) -> tuple[Version, ...]:
        """The sibling set stored for ``key`` (empty if none)."""
        self.lookups += 1
        cached = self._decoded.get(key)
        if cached is not None:
            self.decoded_hits += 1
            return cached[0]
        record = self.engine.get(key)
        if record is None:
            self._remember(key, (), 0)
            return ()
        versions = unpack_versions(record)
        self._remember(key, versions, len(record))
        return versions

    def apply(self, key: bytes, position: int, incoming: Iterable[Version]) -> tuple[Version, ...]:
        """Reconcile ``incoming`` into the stored set; write only if it changed."""
        stored = self.read(key)
        merged = self.resolver.reconcile((*stored, *incoming))
        if merged != stored:
            record = pack_versions(merged)
            self.engine.put(key, position, record)
            self._remember(key, merged, len(record))
            if self._tombstoned is not None:
                if all(version.is_tombstone for version in merged):
                    self._tombstoned[key] = position
                else:
                    self._tombstoned.pop(key, None)
            if self._anti_entropy is not None:
                self.digest(self._partition_of(position)).update(key, record_hash(record))
        return merged

    def collect(self, key: bytes, position: int, expected_hash: bytes) -> bool:
        """Physically remove ``key`` if its record still hashes to ``expected_hash``.

        Tombstone collection: only a record every replica was seen to hold is
        removed, so a newer write that raced in is never lost.
        """
        record = self.engine.get(key)
        if record is None or record_hash(record) != expected_hash:
            return False
        self.engine.delete(key)
        self._drop_decoded(key)
        if self._tombstoned is not None:
            self._tombstoned.pop(key, None)
        if self._anti_entropy is not None:
            self.digest(self._partition_of(position)).remove(key)
        return True

    def drop_range(self, start: int, end: int) -> int:
        """Physically remove every key with a position in ``[start, end)``; returns how many."""
        doomed = [(key, position) for key, position, _ in self.engine.scan(start, end)]
        for key, position in doomed:
            self.engine.delete(key)
            self._drop_decoded(key)
            if self._tombstoned is not None:
                self._tombstoned.pop(key, None)
            if self._anti_entropy is not None:
                self.digest(self._partition_of(position)).remove(key)
        return len(doomed)

    def scan(self, start: int, end: int) -> Iterable[tuple[bytes, int, tuple[Version, ...]]]:
        """``(key, position, versions)`` stored with positions in ``[start, end)``."""
        for key, position, record in self.engine.scan(start, end):
            yield key, position, unpack_versions(record)

    def tombstones(self, start: int, end: int) -> list[tuple[bytes, int, tuple[Version, ...]]]:
        """Records with positions in ``[start, end)`` whose versions are all tombstones.

        The first call scans the engine once; later calls read a kept index,
        so a pass over every partition costs the tombstones, not the store.
        """
        if self._tombstoned is None:
            self._tombstoned = {
                key: position
                for key, position, versions in self.scan(0, POSITION_SPACE)
                if versions and all(version.is_tombstone for version in versions)
            }
        found = []
        for key, position in self._tombstoned.items():
            if start <= position < end:
                # The engine, not read(): a collection pass is not a client read.
                record = self.engine.get(key)
                if record is not None:
                    found.append((key, position, unpack_versions(record)))
        return sorted(found, key=lambda item: (item[1], item[0]))

    def forget(self, key: bytes) -> None:
        """Drop ``key`` from the decoded cache (after a direct engine change)."""
        self._drop_decoded(key)


def record_hash(record: bytes) -> bytes:
    """The 16-byte hash anti-entropy compares for one stored record."""
    return mmh3.hash_bytes(record)
