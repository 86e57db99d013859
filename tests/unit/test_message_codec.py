"""Kernel messages survive msgpack framing unchanged; malformed ones are refused."""

from __future__ import annotations

import typing

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    ForwardedWrite(b"k", b"v", None, None, None, "n1/7", "LOCAL_QUORUM"),
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


# What a peer might send: any msgpack value, tagged like a message or not.
_WIRE_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True)
    | st.binary(max_size=20)
    | st.text(max_size=8)
)
_WIRE_VALUES = st.recursive(
    _WIRE_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=30,
)
_TAGS = st.sampled_from(sorted({encode_message(m)[0] for m in MESSAGES}))


@given(
    st.one_of(
        _WIRE_VALUES,
        st.tuples(_TAGS, st.lists(_WIRE_VALUES, max_size=8)).map(lambda pair: [pair[0], *pair[1]]),
    )
)
def test_a_peer_can_send_nothing_that_breaks_the_decoder(data: object) -> None:
    """Anything a peer sends decodes to a message or raises WireFormatError, nothing else."""
    try:
        decoded = decode_message(data)
    except WireFormatError:
        return
    assert encode_message(decoded)[0] == data[0]  # type: ignore[index]


def test_a_forwarded_write_without_a_level_keeps_its_old_wire_form() -> None:
    """Only a write with a level of its own grows the eighth field; a node that
    predates levels decodes either (it ignores fields it does not know)."""
    plain = ForwardedWrite(b"k", b"v", None, 2, None, "n1/1")
    assert len(encode_message(plain)) == 7
    with_level = ForwardedWrite(b"k", b"v", None, None, None, "n1/2", "EACH_QUORUM")
    assert encode_message(with_level)[-1] == "EACH_QUORUM"
    assert decode_message(encode_message(with_level)) == with_level
