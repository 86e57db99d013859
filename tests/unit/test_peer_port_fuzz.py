"""The inter-node (tcp) port fuzzed as the client ports are: garbage costs a connection only.

Frames go straight into the node's connection protocol (no socket): random
bytes, random msgpack values, and well-formed frames of every kind carrying
random bodies after a HELLO. None may raise out of the protocol, and the
node must still serve afterwards.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.message_codec import encode_message
from dynamo_toolkit.messages import Ping
from dynamo_toolkit_plugins.transport.tcp import HELLO, TcpNetwork, TcpTransport, _Connection

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True)
    | st.binary(max_size=16)
    | st.text(max_size=6)
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)
_TAGGED = st.tuples(st.sampled_from(list("wrtxgpPqfFaRTXYn")), st.lists(_VALUES, max_size=6)).map(
    lambda pair: [pair[0], *pair[1]]
)
_FRAMES = st.lists(
    st.tuples(
        st.integers(-1, 6) | st.sampled_from([16, 17, 19]),  # plain and compressed kinds
        st.integers(-(2**31), 2**31),
        _TAGGED | _VALUES | st.binary(max_size=40).map(lambda b: b"\x02" + b),
    ).map(list),
    min_size=1,
    max_size=4,
)


class _FakeSocket:
    """Just what a connection asks of its asyncio transport."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_a_peer_sends_escapes_the_connection_or_stops_the_node() -> None:
    loop = asyncio.new_event_loop()
    addresses = {name: f"127.0.0.1:{_free_port()}" for name in ("n1", "n2")}
    config = {"store": {"n": 2, "r": 1, "w": 1}}
    cluster = loop.run_until_complete(
        Cluster.start(2, config, transport="tcp", addresses=addresses)
    )
    endpoint = cluster.node("n1").transport
    assert isinstance(endpoint, TcpTransport)

    def feed(data: bytes) -> None:
        async def run() -> None:
            connection = _Connection(endpoint, None)
            connection.connection_made(_FakeSocket())  # type: ignore[arg-type]
            connection.data_received(data)  # must never raise
            await asyncio.sleep(0.01)  # let handlers started by the frames finish
            connection.connection_lost(None)

        loop.run_until_complete(run())

    hello = msgpack.packb([HELLO, 0, "rogue"], use_bin_type=True)

    @settings(max_examples=150, deadline=None)
    @given(st.binary(max_size=200) | _VALUES.map(lambda v: msgpack.packb(v, use_bin_type=True)))
    def garbage(data: bytes) -> None:
        feed(data)

    @settings(max_examples=150, deadline=None)
    @given(_FRAMES)
    def frames(batch: list[list[Any]]) -> None:
        feed(hello + b"".join(msgpack.packb(frame, use_bin_type=True) for frame in batch))

    try:
        garbage()
        frames()

        async def still_serving() -> None:
            await cluster.put("after-fuzz", "ok", via="n1")
            assert (await cluster.get("after-fuzz", r=2, via="n1")).values == ("ok",)
            assert await endpoint.request("n2", Ping(), 5.0) is not None

        loop.run_until_complete(still_serving())
        assert endpoint.protocol_errors > 0  # the garbage was seen, and refused
        assert encode_message(Ping())  # the codec still works
    finally:
        loop.run_until_complete(cluster.close())
        loop.close()


def test_with_a_cluster_secret_nothing_unproven_is_delivered() -> None:
    """Garbage before, inside and after a handshake that never proves anything.

    The node's handler must see none of it, nothing may escape the
    connection, and each refusal is counted.
    """
    loop = asyncio.new_event_loop()
    network = TcpNetwork(addresses={"n1": f"127.0.0.1:{_free_port()}"}, cluster_secret=b"s")
    endpoint = network.endpoint("n1")
    delivered: list[object] = []

    async def handler(source: str, message: object) -> object:
        delivered.append(message)
        return None

    def feed(data: bytes) -> None:
        async def run() -> None:
            connection = _Connection(endpoint, None)
            connection.connection_made(_FakeSocket())  # type: ignore[arg-type]
            connection.data_received(data)  # must never raise
            connection.data_received(msgpack.packb([0, 1, encode_message(Ping())]))
            await asyncio.sleep(0)  # let anything started by the frames run
            connection.connection_lost(None)

        loop.run_until_complete(run())

    challenge = msgpack.packb([HELLO, 0, ["rogue", b"n" * 16]], use_bin_type=True)
    openings = st.sampled_from([b"", msgpack.packb([HELLO, 0, "rogue"]), challenge])

    @settings(max_examples=150, deadline=None)
    @given(openings, _FRAMES, st.binary(max_size=64))
    def attempts(opening: bytes, batch: list[list[Any]], tail: bytes) -> None:
        frames = b"".join(msgpack.packb(frame, use_bin_type=True) for frame in batch)
        feed(opening + frames + tail)

    try:
        loop.run_until_complete(endpoint.start(handler))
        attempts()
        assert delivered == []
        assert endpoint.auth_failures > 0
    finally:
        loop.run_until_complete(endpoint.stop())
        loop.close()
