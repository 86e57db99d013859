"""The wire form of node-to-node messages: plain msgpack-able lists, no I/O.

Transports that cross a process boundary encode with :func:`encode_message`
and decode with :func:`decode_message`; in-process transports pass the frozen
message objects as they are. Every :data:`~dynamo_toolkit.messages.Message`
and :data:`~dynamo_toolkit.messages.Reply` has a form here; the
documentation's "Wire format" page lists them, field by field, with what a
transport's framing must carry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.messages import (
    Ack,
    CollectTombstones,
    ForwardedWrite,
    ForwardedWriteReply,
    Gossip,
    Heartbeat,
    Ping,
    PingAck,
    PingReq,
    RangeQuery,
    RangeReply,
    RecordsQuery,
    RecordsReply,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaWrite,
    TreeQuery,
    TreeReply,
)
from dynamo_toolkit.versioning import VectorClock, Version

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


def _str(data: object) -> str:
    if not isinstance(data, str):
        raise WireFormatError("expected a string")
    return data


def _suspects(data: object) -> tuple[tuple[str, int], ...]:
    if not isinstance(data, list | tuple):
        raise WireFormatError("suspects must be a list")
    return tuple((_str(item[0]), _int(item[1])) for item in data)


def _optional_bytes(data: object) -> bytes | None:
    return None if data is None else _bytes(data)


def _optional_int(data: object) -> int | None:
    return None if data is None else _int(data)


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
    "p": lambda f: Ping(_suspects(f[0])),
    "P": lambda f: PingAck(_int(f[0])),
    "q": lambda f: PingReq(_str(f[0]), float(f[1])),
    "t": lambda f: TreeQuery(_int(f[0]), _int(f[1]), tuple(_int(i) for i in f[2])),
    "T": lambda f: TreeReply(_int(f[0]), tuple(f[1])),
    "k": lambda f: RecordsQuery(tuple(_bytes(k) for k in f[0])),
    "K": lambda f: RecordsReply(tuple((_bytes(k), _int(p), _versions(v)) for k, p, v in f[0])),
    "G": lambda f: Gossip(tuple(f[0])),
    "x": lambda f: RangeQuery(
        _int(f[0]), _int(f[1]), _int(f[2]), None if f[3] is None else _bytes(f[3]), _int(f[4])
    ),
    "X": lambda f: RangeReply(
        tuple((_bytes(k), _int(p), _versions(v)) for k, p, v in f[0]), bool(f[1])
    ),
    "g": lambda f: CollectTombstones(tuple((_bytes(k), _int(p), _bytes(h)) for k, p, h in f[0])),
    "f": lambda f: ForwardedWrite(
        _bytes(f[0]),
        _optional_bytes(f[1]),
        _optional_bytes(f[2]),
        _optional_int(f[3]),
        _optional_int(f[4]),
        _str(f[5]) if len(f) > 5 else "",
        _str(f[6]) if len(f) > 6 else "",
    ),
    "F": lambda f: ForwardedWriteReply(
        None if f[0] is None else VectorClock.from_wire(f[0]),
        _int(f[1]),
        None if f[2] is None else _str(f[2]),
        _int(f[3]),
        _int(f[4]),
    ),
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
    if isinstance(message, TreeQuery):
        return ["t", message.partition, message.level, list(message.indices)]
    if isinstance(message, TreeReply):
        return ["T", message.depth, list(message.items)]
    if isinstance(message, RecordsQuery):
        return ["k", list(message.keys)]
    if isinstance(message, RecordsReply):
        return [
            "K",
            [[k, p, [v.to_wire() for v in versions]] for k, p, versions in message.records],
        ]
    if isinstance(message, Gossip):
        return ["G", list(message.state)]
    if isinstance(message, RangeQuery):
        m = message
        return ["x", m.start, m.last, m.after_position, m.after_key, m.limit]
    if isinstance(message, RangeReply):
        return [
            "X",
            [[k, p, [v.to_wire() for v in versions]] for k, p, versions in message.records],
            message.more,
        ]
    if isinstance(message, CollectTombstones):
        return ["g", [list(entry) for entry in message.entries]]
    if isinstance(message, Ping):
        return ["p", [list(pair) for pair in message.suspects]]
    if isinstance(message, PingAck):
        return ["P", message.incarnation]
    if isinstance(message, PingReq):
        return ["q", message.target, message.timeout]
    if isinstance(message, ForwardedWrite):
        f = message
        if f.level:
            return ["f", f.key, f.value, f.context, f.w, f.n, f.write_id, f.level]
        return ["f", f.key, f.value, f.context, f.w, f.n, f.write_id]
    if isinstance(message, ForwardedWriteReply):
        clock = None if message.clock is None else message.clock.to_wire()
        r = message
        return ["F", clock, r.acknowledged, r.error, r.required, r.contacted]
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
