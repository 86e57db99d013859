"""Kernel messages survive msgpack framing unchanged; malformed ones are refused."""

from __future__ import annotations

import typing

import msgpack
import pytest

from dynamo_toolkit.message_codec import WireFormatError, decode_message, encode_message
from dynamo_toolkit.messages import (
    Ack,
    CollectTombstones,
    ForwardedWrite,
    ForwardedWriteReply,
    Gossip,
    Heartbeat,
    Message,
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
    Reply,
    TreeQuery,
    TreeReply,
)
from dynamo_toolkit.versioning import VectorClock, Version

_CLOCK = VectorClock.from_counters({"a": 2, "b": 1})
_VERSION = Version(_CLOCK, b"value", 12.5)
_TOMBSTONE = Version(VectorClock.from_counters({"c": 1}), None, 13.0)

MESSAGES = [
    ReplicaWrite(b"k", 7, (_VERSION, _TOMBSTONE)),
    ReplicaWrite(b"k", 7, (_VERSION,), "owner"),
    Ack(),
    ReplicaRead(b"k"),
    ReplicaRead(b"k", "owner"),
    ReplicaReadReply((_VERSION,)),
    Heartbeat(3.25),
    Ping((("n2", 4),)),
    PingAck(3),
    PingReq("n3", 0.5),
    TreeQuery(0, 1, (2, 3)),
    TreeReply(1, (b"root",)),
    RecordsQuery((b"a", b"b")),
    RecordsReply(((b"a", 1, (_VERSION,)),)),
    CollectTombstones(((b"a", 1, b"h" * 16),)),
    Gossip(("view",)),
    RangeQuery(0, 10, 2, b"x", 256),
    RangeReply(((b"a", 1, (_VERSION,)),), True),
    ForwardedWrite(b"k", b"v", b"ctx", 2, None),
    ForwardedWrite(b"k", None, None, None, 3),
    ForwardedWriteReply(_CLOCK, 2),
    ForwardedWriteReply(None, 1, "write quorum not reached", 2, 3),
    None,
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_msgpack(message: object) -> None:
    framed = msgpack.packb(encode_message(message), use_bin_type=True)
    assert decode_message(msgpack.unpackb(framed, raw=False)) == message


def test_the_samples_cover_every_message_and_reply() -> None:
    """Each class of the closed Message and Reply unions has a wire form checked here."""
    kinds = set(typing.get_args(Message)) | set(typing.get_args(Reply))
    assert kinds == {type(m) for m in MESSAGES if m is not None}


@pytest.mark.parametrize(
    "data",
    [[], ["?"], "w", ["f", b"k"], ["F", None, "two", None, 0, 0], ["f", 1, None, None, None, None]],
)
def test_malformed_messages_are_refused(data: object) -> None:
    with pytest.raises(WireFormatError):
        decode_message(data)
