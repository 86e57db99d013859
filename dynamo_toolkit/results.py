"""What the coordinator returns to clients."""

from __future__ import annotations

import functools
from typing import Any

import attrs

from dynamo_toolkit.values import decode_value
from dynamo_toolkit.versioning import VectorClock, Version, encode_context

__all__ = ["GetResult", "PutResult"]


@attrs.frozen
class GetResult:
    """A read: the live sibling ``values`` (decoded) and one ``context`` covering them.

    ``values`` is empty when the key was never written or is deleted; the
    context still covers any tombstone, so a put with it supersedes the delete.
    Pass ``context`` unchanged to the next ``put`` to supersede every sibling.
    """

    key: bytes
    versions: tuple[Version, ...]
    replies: int

    @functools.cached_property
    def values(self) -> tuple[Any, ...]:
        """The live sibling values, decoded (on first use: a caller that only
        needs the encoded ``versions`` pays no decoding)."""
        return tuple(decode_value(v.value) for v in self.versions if v.value is not None)

    @property
    def context(self) -> bytes:
        """The opaque context covering every version read (tombstones included)."""
        # Computed on demand: plain reads (Redis GET) never need it.
        clock = VectorClock()
        for version in self.versions:
            clock = clock.merge(version.clock)
        return encode_context(clock)

    @property
    def found(self) -> bool:
        """True if at least one live value exists."""
        return bool(self.values)

    @property
    def conflict(self) -> bool:
        """True if there are several concurrent live values (siblings)."""
        return len(self.values) > 1

    @property
    def value(self) -> Any:
        """The single live value; ``None`` if none; ``ValueError`` if there are siblings."""
        if len(self.values) > 1:
            raise ValueError(
                f"{len(self.values)} siblings: read .values and write back with .context"
            )
        return self.values[0] if self.values else None


@attrs.frozen
class PutResult:
    """A write: the ``context`` of the new version and how many replicas acknowledged."""

    key: bytes
    clock: VectorClock
    acknowledged: int

    @property
    def context(self) -> bytes:
        """The opaque context of the version written."""
        return encode_context(self.clock)
