"""A version of a key: a value (or a tombstone) with its vector clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
import msgpack

from dynamo_toolkit.versioning.vector_clock import VectorClock

__all__ = ["Version", "pack_versions", "unpack_versions"]


@attrs.frozen
class Version:
    """One version: encoded ``value`` (``None`` for a tombstone), its clock, and
    the coordinator's wall-clock ``timestamp`` (seconds) when it was written."""

    clock: VectorClock
    value: bytes | None
    timestamp: float = 0.0

    @property
    def is_tombstone(self) -> bool:
        """True when this version records a delete."""
        return self.value is None

    def to_wire(self) -> list[object]:
        """Plain msgpack-able form."""
        return [self.clock.to_wire(), self.value, self.timestamp]

    @classmethod
    def from_wire(cls, data: Sequence[object]) -> Version:
        """Inverse of :meth:`to_wire`."""
        clock, value, timestamp = data
        if value is not None and not isinstance(value, bytes):
            raise ValueError("malformed version value")
        if not isinstance(timestamp, int | float) or not isinstance(clock, list):
            raise ValueError("malformed version")
        return cls(VectorClock.from_wire(clock), value, float(timestamp))


def pack_versions(versions: Iterable[Version]) -> bytes:
    """Serialise a sibling set for a storage engine."""
    return msgpack.packb([v.to_wire() for v in versions], use_bin_type=True)  # type: ignore[no-any-return]


def unpack_versions(data: bytes) -> tuple[Version, ...]:
    """Inverse of :func:`pack_versions`."""
    return tuple(Version.from_wire(item) for item in msgpack.unpackb(data, raw=False))
