"""Native protocol framing, fuzzed: garbage yields ProtocolError frames, never a crash.

The connection is driven directly through a fake transport, on one event loop
that keeps a one-node cluster for the whole hypothesis run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit_server.native.protocol import (
    FrameDecoder,
    ProtocolError,
    encode_request,
    pack_args,
    parse_reply,
    parse_request,
)
from dynamo_toolkit_server.native.server import (
    OPERATIONS,
    NativeConnection,
    NativeServer,
    RequestHandler,
)
from dynamo_toolkit_server.service import StoreService, list_range

ONE_NODE = {"store": {"n": 1, "r": 1, "w": 1}}

# Error types a request may legitimately earn; anything else (InternalError) is a bug.
REQUEST_ERRORS = {
    "InvalidRequestError",
    "ConfigurationError",  # membership admin ops refuse impossible changes
    "UnsupportedKeyTypeError",
    "UnsupportedValueTypeError",
    "InvalidContextError",
    "InvalidQuorumError",
    "PairTooLargeError",
    "WrongTypeError",
}


class FakeTransport(asyncio.Transport):
    """Collects what the connection writes; closing reports the loss like a socket."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@contextmanager
def one_node_loop() -> Iterator[Callable[[list[bytes]], tuple[list[Any], bool]]]:
    """A loop with a one-node cluster; yields ``feed(chunks) -> (replies, closed)``."""
    loop = asyncio.new_event_loop()
    cluster = loop.run_until_complete(Cluster.start(1, ONE_NODE, transport="memory"))
    server = NativeServer(RequestHandler(StoreService(cluster.node("n1"))))

    async def run(chunks: list[bytes]) -> tuple[list[Any], bool]:
        connection = NativeConnection(server)
        transport = FakeTransport(connection)
        connection.connection_made(transport)
        for chunk in chunks:
            connection.data_received(chunk)  # must never raise
        await server.wait_idle()
        await asyncio.sleep(0)
        closed = transport.closed
        if not closed:
            transport.close()
            await asyncio.sleep(0)
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        unpacker.feed(bytes(transport.written))
        replies = list(unpacker)
        return replies, closed

    try:
        yield lambda chunks: loop.run_until_complete(run(chunks))
    finally:
        loop.run_until_complete(cluster.close())
        loop.close()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (positions modulo its length)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


def check_reply_shapes(replies: list[Any]) -> None:
    for frame in replies:
        reply = parse_reply(frame)  # raises on a malformed reply
        if not reply.ok:
            assert isinstance(reply.result["message"], str)
            assert reply.result["type"] != "InternalError", reply.result


def frame_shaped(obj: object) -> bool:
    try:
        parse_request(obj)
    except ProtocolError:
        return False
    return True


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
packable = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.integers(0, 9), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_random_bytes_only_ever_yield_protocol_errors() -> None:
    with one_node_loop() as feed:

        @settings(max_examples=150)
        @given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=4))
        def check(data: bytes, cuts: list[int]) -> None:
            replies, closed = feed(split(data, cuts))
            check_reply_shapes(replies)
            protocol_errors = [r for r in replies if r[0] == 0 and not r[1]]
            if closed:
                # The error frame is the last thing the connection wrote.
                assert protocol_errors
                assert replies[-1] is protocol_errors[-1]
                assert replies[-1][2]["type"] == "ProtocolError"
            for frame in replies:
                if not frame[1] and frame[0] != 0:
                    assert frame[2]["type"] in REQUEST_ERRORS

        check()


def test_well_formed_msgpack_of_the_wrong_shape_is_a_protocol_error() -> None:
    with one_node_loop() as feed:

        @given(st.lists(packable, min_size=1, max_size=3), st.lists(st.integers(0, 200)))
        def check(objects: list[Any], cuts: list[int]) -> None:
            if frame_shaped(objects[0]):
                objects[0] = [objects[0]]
            data = b"".join(msgpack.packb(o, use_bin_type=True) for o in objects)
            replies, closed = feed(split(data, cuts))
            assert closed
            assert len(replies) == 1
            assert replies[0][:2] == [0, False]
            assert replies[0][2]["type"] == "ProtocolError"

        check()


ARG_NAMES = ["key", "value", "values", "context", "r", "w", "count", "start", "stop", "bogus"]
arg_values = (
    packable
    | st.integers(-3, 5)
    | st.binary(max_size=6).map(lambda b: b"dtk1" + b)
    | packable.map(lambda v: b"dtk1" + msgpack.packb(v, use_bin_type=True))
)
requests = st.tuples(
    st.integers(1, 2**40),
    st.sampled_from([*OPERATIONS, "bogus"]),
    st.dictionaries(st.sampled_from(ARG_NAMES), arg_values, max_size=5),
)


def test_well_shaped_requests_with_random_args_get_one_reply_each() -> None:
    with one_node_loop() as feed:

        @settings(max_examples=200)
        @given(st.lists(requests, min_size=1, max_size=4), st.lists(st.integers(0, 500)))
        def check(batch: list[tuple[int, str, dict[str, Any]]], cuts: list[int]) -> None:
            data = b"".join(encode_request(i, op, pack_args(args)) for i, op, args in batch)
            replies, closed = feed(split(data, cuts))
            assert not closed
            check_reply_shapes(replies)
            assert sorted(r[0] for r in replies) == sorted(i for i, _, _ in batch)
            for frame in replies:
                if not frame[1]:
                    assert frame[2]["type"] in REQUEST_ERRORS, frame

        check()


@given(st.lists(packable, max_size=5), st.lists(st.integers(0, 400), max_size=6))
def test_decoder_yields_the_same_frames_however_the_stream_is_cut(
    objects: list[Any], cuts: list[int]
) -> None:
    data = b"".join(msgpack.packb(o, use_bin_type=True) for o in objects)
    decoder = FrameDecoder()
    decoded = [frame for chunk in split(data, cuts) for frame in decoder.feed(chunk)]
    assert decoded == objects


def test_decoder_limits_frame_size_exactly() -> None:
    frame = msgpack.packb([1, "put", {"key": "k", "value": b"x" * 200}], use_bin_type=True)
    fits = FrameDecoder(max_frame_bytes=len(frame))
    assert [f[0] for chunk in split(frame * 2, [7, 250, 300]) for f in fits.feed(chunk)] == [1, 1]
    too_small = FrameDecoder(max_frame_bytes=len(frame) - 1)
    with pytest.raises(ProtocolError, match="frame larger than"):
        list(too_small.feed(frame))
    with pytest.raises(ProtocolError):  # and it stays broken
        list(too_small.feed(b"\x90"))


def test_decoder_refuses_huge_declared_lengths_at_once() -> None:
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError, match="malformed"):
        list(decoder.feed(b"\xdd\xff\xff\xff\xff"))  # an array of 4 billion items


def test_frames_before_garbage_are_still_decoded() -> None:
    decoder = FrameDecoder()
    seen: list[Any] = []
    frames = decoder.feed(msgpack.packb([1, "ping", {}]) + b"\xc1")
    with pytest.raises(ProtocolError):
        seen.extend(frames)
    assert seen == [[1, "ping", {}]]


@pytest.mark.parametrize(
    ("start", "stop", "expected"),
    [(0, -1, "abcde"), (1, 2, "bc"), (-2, -1, "de"), (3, 1, ""), (-100, 100, "abcde"), (5, 9, "")],
)
def test_redis_range(start: int, stop: int, expected: str) -> None:
    assert "".join(list_range(list("abcde"), start, stop)) == expected
