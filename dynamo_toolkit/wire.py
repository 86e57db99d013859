"""The wire form of node-to-node messages: plain msgpack-able lists, no I/O.

Transports that cross a process boundary encode with :func:`encode_message`
and decode with :func:`decode_message`; in-process transports pass the frozen
message objects as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.messages import Ack, Heartbeat, ReplicaRead, ReplicaReadReply, ReplicaWrite
from dynamo_toolkit.versioning import Version

__all__ = ["WireFormatError", "decode_message", "encode_message"]


class WireFormatError(DynamoError, ValueError):
    """Bytes on the wire did not decode to a known message."""


def _versions(data: object) -> tuple[Version, ...]:
    if not isinstance(data, list | tuple):
        raise WireFormatError("versions must be a list")
    return tuple(Version.from_wire(item) for item in data)


def _bytes(data: object) -> bytes:
    if not isinstance(data, bytes):
        raise WireFormatError("expected bytes")
    return data


def _owner(rest: Sequence[Any]) -> str | None:
    # An optional trailing field: the owner a hinted message stands in for.
    if not rest or rest[0] is None:
        return None
    if not isinstance(rest[0], str):
        raise WireFormatError("hint owner must be a string")
    return rest[0]


def _int(data: object) -> int:
    if type(data) is not int:
        raise WireFormatError("expected an integer")
    return data


_DECODERS: dict[str, Callable[[Sequence[Any]], object]] = {
    "w": lambda f: ReplicaWrite(_bytes(f[0]), _int(f[1]), _versions(f[2]), _owner(f[3:])),
    "a": lambda f: Ack(),
    "r": lambda f: ReplicaRead(_bytes(f[0]), _owner(f[1:])),
    "R": lambda f: ReplicaReadReply(_versions(f[0])),
    "h": lambda f: Heartbeat(float(f[0])),
    "n": lambda f: None,
}


def encode_message(message: object) -> list[Any]:
    """The wire form of a kernel message (``None`` is a valid empty reply)."""
    if isinstance(message, ReplicaWrite):
        versions = [v.to_wire() for v in message.versions]
        if message.hint_for is None:
            return ["w", message.key, message.position, versions]
        return ["w", message.key, message.position, versions, message.hint_for]
    if isinstance(message, ReplicaRead):
        if message.hint_for is None:
            return ["r", message.key]
        return ["r", message.key, message.hint_for]
    if isinstance(message, ReplicaReadReply):
        return ["R", [v.to_wire() for v in message.versions]]
    if isinstance(message, Ack):
        return ["a"]
    if isinstance(message, Heartbeat):
        return ["h", message.sent_at]
    if message is None:
        return ["n"]
    raise WireFormatError(f"cannot encode {type(message).__name__}")


def decode_message(data: object) -> object:
    """Inverse of :func:`encode_message`; :class:`WireFormatError` on anything else."""
    if not isinstance(data, list | tuple) or not data or not isinstance(data[0], str):
        raise WireFormatError("a message is a non-empty list starting with its tag")
    decoder = _DECODERS.get(data[0])
    if decoder is None:
        raise WireFormatError(f"unknown message tag {data[0]!r}")
    try:
        return decoder(data[1:])
    except WireFormatError:
        raise
    except (IndexError, ValueError, TypeError) as exc:
        raise WireFormatError(f"malformed {data[0]!r} message: {exc}") from exc
