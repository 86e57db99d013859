"""Opaque contexts: what ``get`` hands out and ``put`` takes back.

A context is the merge of the clocks of every version a read saw, so a write
carrying it supersedes all of them. Clients treat it as opaque bytes.
"""

from __future__ import annotations

import msgpack

from dynamo_toolkit.errors import InvalidContextError
from dynamo_toolkit.versioning.vector_clock import VectorClock

__all__ = ["decode_context", "encode_context"]

_MAGIC = b"dtk1"


def encode_context(clock: VectorClock) -> bytes:
    """Encode ``clock`` as an opaque context."""
    packed: bytes = msgpack.packb(clock.to_wire(), use_bin_type=True)
    return _MAGIC + packed


def decode_context(context: bytes | None) -> VectorClock:
    """Decode a context; ``None`` or ``b""`` mean "no context" (an empty clock)."""
    if not context:
        return VectorClock()
    if not isinstance(context, bytes) or not context.startswith(_MAGIC):
        raise InvalidContextError("context was not produced by get() of this store")
    try:
        return VectorClock.from_wire(msgpack.unpackb(context[len(_MAGIC) :], raw=False))
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.UnpackException) as exc:
        raise InvalidContextError(f"malformed context: {exc or type(exc).__name__}") from exc
