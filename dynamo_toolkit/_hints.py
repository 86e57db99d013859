"""Hinted handoff (Dynamo §4.6): writes a node holds for an owner that was down.

A stand-in keeps each hinted write in a separate storage engine instance (so
hints are as durable as the data), keyed by owner and key, and hands it to
the owner once the owner is reachable again; then the hint is dropped.
Hints are bounded by count, bytes and age: a stand-in that is full refuses
the hinted write (the coordinator counts it as a failed replica) rather than
grow without limit, and a hint older than the age limit is dropped (the
owner then catches up through anti-entropy or read repair).
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import msgpack

from dynamo_toolkit.interfaces import ConflictResolver, StorageEngine
from dynamo_toolkit.versioning import Version, pack_versions, unpack_versions

__all__ = ["Hint", "HintLimits", "HintStore"]

_SEPARATOR = b"\x00"


@attrs.frozen
class HintLimits:
    """Bounds on what one node holds for others."""

    max_count: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    max_age: float = 3 * 3600.0


@attrs.frozen
class Hint:
    """One hinted write: ``versions`` of ``key`` meant for ``owner``."""

    owner: str
    key: bytes
    position: int
    versions: tuple[Version, ...]
    created: float


def _slot(owner: str, key: bytes) -> bytes:
    # Node ids never contain NUL, so the owner prefix cannot run into the key.
    return owner.encode() + _SEPARATOR + key


class HintStore:
    """The hints one node holds, over a storage engine of their own."""

    def __init__(
        self, engine: StorageEngine, resolver: ConflictResolver, limits: HintLimits | None = None
    ) -> None:
        self.engine = engine
        self.resolver = resolver
        self.limits = limits or HintLimits()
        self.stored = self.delivered = self.refused = self.expired = 0
        self._bytes = sum(len(record) for _, _, record in engine.scan(0, 1 << 64))

    def __len__(self) -> int:
        return len(self.engine)

    @property
    def size_bytes(self) -> int:
        """Bytes of hint records held."""
        return self._bytes

    def get(self, owner: str, key: bytes) -> tuple[Version, ...]:
        """The versions held for ``owner`` under ``key`` (empty if none)."""
        record = self.engine.get(_slot(owner, key))
        return self._decode(owner, key, record).versions if record is not None else ()

    def add(
        self, owner: str, key: bytes, position: int, versions: tuple[Version, ...], now: float
    ) -> bool:
        """Hold ``versions`` for ``owner``; False (refused) when over a limit."""
        slot = _slot(owner, key)
        old = self.engine.get(slot)
        if old is None and len(self.engine) >= self.limits.max_count:
            self.refused += 1
            return False
        merged = versions
        created = now
        if old is not None:
            previous = self._decode(owner, key, old)
            merged = self.resolver.reconcile((*previous.versions, *versions))
            created = previous.created
        record = msgpack.packb([position, created, pack_versions(merged)], use_bin_type=True)
        grown = len(record) - (len(old) if old is not None else 0)
        if self._bytes + grown > self.limits.max_bytes:
            self.refused += 1
            return False
        self.engine.put(slot, position, record)
        self._bytes += grown
        self.stored += 1
        return True

    def remove(self, hint: Hint) -> None:
        """Drop ``hint`` (delivered), unless a newer write for it arrived meanwhile."""
        slot = _slot(hint.owner, hint.key)
        record = self.engine.get(slot)
        if record is None:
            return
        current = self._decode(hint.owner, hint.key, record)
        if current.versions != hint.versions:
            return  # more arrived since it was sent: keep it for the next round
        self.engine.delete(slot)
        self._bytes -= len(record)
        self.delivered += 1

    def owners(self) -> list[str]:
        """Owners with at least one pending hint, sorted."""
        found = {slot.split(_SEPARATOR, 1)[0].decode() for slot, _, _ in self._all()}
        return sorted(found)

    def pending(self, owner: str, now: float, limit: int) -> list[Hint]:
        """Up to ``limit`` live hints for ``owner``; expired ones are dropped on the way."""
        prefix = owner.encode() + _SEPARATOR
        out: list[Hint] = []
        for slot, _, record in list(self._all()):  # a snapshot: expired ones are deleted
            if not slot.startswith(prefix):
                continue
            hint = self._decode(owner, slot[len(prefix) :], record)
            if now - hint.created > self.limits.max_age:
                self.engine.delete(slot)
                self._bytes -= len(record)
                self.expired += 1
                continue
            out.append(hint)
            if len(out) >= limit:
                break
        return out

    def expire(self, now: float) -> int:
        """Drop every hint older than the age limit; returns how many."""
        dropped = 0
        for slot, _, record in list(self._all()):
            created = msgpack.unpackb(record, raw=False)[1]
            if now - created > self.limits.max_age:
                self.engine.delete(slot)
                self._bytes -= len(record)
                dropped += 1
        self.expired += dropped
        return dropped

    def counts(self) -> dict[str, int]:
        """Pending hints per owner."""
        counts: dict[str, int] = {}
        for slot, _, _ in self._all():
            owner = slot.split(_SEPARATOR, 1)[0].decode()
            counts[owner] = counts.get(owner, 0) + 1
        return counts

    def _all(self) -> Iterator[tuple[bytes, int, bytes]]:
        return self.engine.scan(0, 1 << 64)

    @staticmethod
    def _decode(owner: str, key: bytes, record: bytes) -> Hint:
        position, created, packed = msgpack.unpackb(record, raw=False)
        return Hint(owner, key, position, unpack_versions(packed), created)
