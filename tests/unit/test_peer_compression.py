"""The tcp transport's compression between datacenters (``compression = "dc"``).

Real transports on loopback, each with its own :class:`TcpNetwork` as
separate processes would have: ``a`` and ``b`` in ``dc1``, ``c`` in ``dc2``.
Every message must arrive as it was sent; the counters say what was
compressed. Garbage in a compressed body costs its connection only.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import cramjam
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.message_codec import encode_message
from dynamo_toolkit.messages import Ping, RecordsQuery, ReplicaWrite
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.versioning import VectorClock, Version
from dynamo_toolkit_plugins.transport.tcp import (
    COMPRESSED,
    HELLO,
    ONE_WAY,
    REPLY,
    REQUEST,
    TcpNetwork,
    TcpTransport,
    _Connection,
)

BIG = RecordsQuery((b"the same sentence, again and again. " * 120,))  # ~4 KiB, compressible


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _members() -> list[NodeInfo]:
    dcs = {"a": "dc1", "b": "dc1", "c": "dc2"}
    return [NodeInfo(n, f"127.0.0.1:{_free_port()}", datacenter=dc) for n, dc in dcs.items()]


class Echo:
    def __init__(self) -> None:
        self.seen: list[object] = []

    async def __call__(self, sender: str, message: object) -> object:
        self.seen.append(message)
        return message


async def _start(members: list[NodeInfo], **params: Any) -> dict[str, TcpTransport]:
    endpoints = {}
    for member in members:
        endpoint = TcpNetwork(members=members, **params).endpoint(member.node_id)
        await endpoint.start(Echo())
        endpoints[member.node_id] = endpoint
    return endpoints


async def _stop(endpoints: dict[str, TcpTransport]) -> None:
    for endpoint in endpoints.values():
        await endpoint.stop()


def _saved(endpoint: TcpTransport) -> int:
    return endpoint.bytes_uncompressed - endpoint.bytes_compressed


def test_dc_compresses_between_datacenters_only() -> None:
    async def scenario() -> None:
        e = await _start(_members(), compression="dc")
        try:
            assert await e["a"].request("b", BIG, 5.0) == BIG  # same datacenter
            assert e["a"].bytes_uncompressed == e["b"].bytes_uncompressed == 0
            assert await e["a"].request("c", BIG, 5.0) == BIG  # across
            assert e["a"].frames_compressed == 1
            assert _saved(e["a"]) > 3000
            assert e["c"].frames_compressed == 1
            assert _saved(e["c"]) > 3000
            assert e["b"].frames_compressed == 0
        finally:
            await _stop(e)

    asyncio.run(scenario())


def test_compression_after_the_cluster_secret_handshake() -> None:
    async def scenario() -> None:
        e = await _start(_members(), compression="dc", cluster_secret=b"s3cret")
        try:
            assert await e["c"].request("a", BIG, 5.0) == BIG
            assert e["c"].frames_compressed == 1
            assert e["a"].frames_compressed == 1  # the listener learnt c's datacenter
            assert await e["a"].request("b", BIG, 5.0) == BIG
            assert e["a"].frames_compressed == 1
            assert all(x.auth_failures == 0 for x in e.values())
        finally:
            await _stop(e)

    asyncio.run(scenario())


@pytest.mark.parametrize("codec", ["lz4", "snappy", "zstd"])
def test_all_compresses_every_link_with_each_codec(codec: str) -> None:
    async def scenario() -> None:
        e = await _start(_members(), compression="all", compression_codec=codec)
        try:
            assert await e["a"].request("b", BIG, 5.0) == BIG
            e["b"].send("c", BIG)  # one-way
            for _ in range(100):
                if e["b"].frames_compressed == 2:
                    break
                await asyncio.sleep(0.01)
            assert e["a"].frames_compressed == 1
            assert e["b"].frames_compressed == 2  # the reply to a, the one-way to c
            assert all(_saved(x) > 0 for x in e.values() if x.frames_compressed)
        finally:
            await _stop(e)

    asyncio.run(scenario())


def test_none_compresses_nothing_and_sends_plain_frames() -> None:
    async def scenario() -> None:
        e = await _start(_members())
        try:
            assert await e["a"].request("c", BIG, 5.0) == BIG
            assert all(x.bytes_uncompressed == x.frames_compressed == 0 for x in e.values())
            link = next(iter(e["a"].connections))
            assert link.squeeze is None
        finally:
            await _stop(e)

    asyncio.run(scenario())


def test_small_bodies_are_never_compressed() -> None:
    async def scenario() -> None:
        e = await _start(_members(), compression="all")
        try:
            assert await e["a"].request("c", Ping((("b", 3),)), 5.0) == Ping((("b", 3),))
            assert e["a"].frames_compressed == 0
            assert e["a"].bytes_uncompressed == e["a"].bytes_compressed > 0
        finally:
            await _stop(e)

    asyncio.run(scenario())


def test_incompressible_bodies_go_plain() -> None:
    noise = RecordsQuery((bytes(cramjam.zstd.compress(bytes(range(256)) * 40)) * 2,))

    async def scenario() -> None:
        e = await _start(_members(), compression="all", compression_threshold=0)
        try:
            assert await e["a"].request("c", noise, 5.0) == noise
        finally:
            await _stop(e)

    asyncio.run(scenario())


def test_datacenters_learnt_later_count() -> None:
    network = TcpNetwork(compression="dc")
    network.add_members([NodeInfo("x", "127.0.0.1:1", datacenter="dc1"), NodeInfo("y")])
    assert network.squeeze_for("x", "y") is not None
    assert network.squeeze_for("y", "z") is None  # empty and unknown: the same datacenter
    assert network.squeeze_for("x", "x") is None


@pytest.mark.parametrize(
    "params",
    [
        {"compression": "internode"},
        {"compression_codec": "gzip"},
        {"compression_threshold": -1},
        {"compression_threshold": "256"},
    ],
)
def test_bad_settings_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        TcpNetwork(**params)


def _write(value: bytes) -> ReplicaWrite:
    clock = VectorClock.from_counters({"n1": 41, "n2": 7, "n4": 3})
    return ReplicaWrite(b"user:1234567", 17, (Version(clock, value, 1765158000.25),))


def _json_value(size: int) -> bytes:
    items: list[dict[str, object]] = []
    n = 0
    while len(json.dumps(items)) < size:
        n += 1
        items.append(
            {
                "id": n,
                "name": f"user {n}",
                "email": f"user{n}@example.com",
                "active": n % 3 != 0,
                "score": n * 37 % 1000 / 10,
                "tags": ["alpha", "beta"][: n % 3],
            }
        )
    return json.dumps(items).encode()[:size]


@pytest.mark.parametrize("size", [1024, 9216])
def test_replica_writes_of_json_values_shrink(size: int) -> None:
    """A typical replica write (figures in docs/builtins.rst come from this shape)."""
    message = _write(_json_value(size))

    async def scenario() -> None:
        e = await _start(_members(), compression="dc")
        try:
            assert await e["a"].request("c", message, 5.0) == message
            sent = e["a"]
            assert sent.bytes_compressed < sent.bytes_uncompressed * 0.7
        finally:
            await _stop(e)

    asyncio.run(scenario())


class _FakeSocket:
    def __init__(self) -> None:
        self.aborted = False

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    close = abort

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def test_garbage_in_compressed_bodies_costs_the_connection_only() -> None:
    async def scenario() -> None:
        members = _members()
        network = TcpNetwork(members=members, compression="all")
        endpoint = network.endpoint("a")
        handler = Echo()
        await endpoint.start(handler)
        hello = msgpack.packb([HELLO, 0, "b"], use_bin_type=True)
        plain = msgpack.packb(encode_message(BIG), use_bin_type=True)
        lz4 = b"\x02" + bytes(cramjam.lz4.compress_block(plain))
        bombs = [
            b"\x02" + (2**31).to_bytes(4, "little") + b"\x00" * 8,  # lz4 claiming 2 GiB
            b"\x03" + bytes(cramjam.zstd.compress(b"a" * 100_000))[:-1],  # truncated zstd
            b"\x03" + b"\x28\xb5\x2f\xfd\x00",  # zstd without a content size
            b"\x01" + b"\xff\xff\xff\xff\x0f",  # snappy claiming 4 GiB
            b"\x09" + lz4[1:],  # unknown codec
            lz4[:-3],  # truncated
            b"\x02" + bytes(cramjam.lz4.compress_block(b"\xc1" * 300)),  # not msgpack
        ]

        def feed(data: bytes) -> _Connection:
            connection = _Connection(endpoint, None)
            connection.connection_made(_FakeSocket())  # type: ignore[arg-type]
            connection.data_received(data)  # must never raise
            return connection

        @settings(max_examples=200, deadline=None)
        @given(
            st.sampled_from([REQUEST, REPLY, ONE_WAY]),
            st.binary(max_size=300)
            | st.sampled_from(bombs)
            | st.integers(-(2**31), 2**31)
            | st.none(),
        )
        def fuzz(kind: int, body: object) -> None:
            frame = msgpack.packb([kind + COMPRESSED, 1, body], use_bin_type=True)
            connection = feed(hello + frame)
            assert not handler.seen
            connection.connection_lost(None)

        try:
            fuzz()
            # A compressed frame before the HELLO is refused, not inflated.
            before = feed(msgpack.packb([REQUEST + COMPRESSED, 1, lz4], use_bin_type=True))
            assert before.transport is not None
            assert before.transport.is_closing()
            before.connection_lost(None)
            # And a good one is delivered.
            good = feed(hello + msgpack.packb([ONE_WAY + COMPRESSED, 0, lz4], use_bin_type=True))
            await asyncio.sleep(0.01)
            assert handler.seen == [BIG]
            good.connection_lost(None)
            assert endpoint.protocol_errors > 0
        finally:
            await endpoint.stop()

    asyncio.run(scenario())
