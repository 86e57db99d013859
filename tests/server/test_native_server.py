"""The native server over real TCP: operations, pipelining, limits, errors, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack

from dynamo_toolkit.consistency import LevelSpec
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.results import GetResult
from dynamo_toolkit.values import Key
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.native import NativeServer, start_native_server
from dynamo_toolkit_server.service import StoreService

N3 = {"store": {"n": 3, "r": 2, "w": 2}}


class SlowService(StoreService):
    """Reads of the key ``slow`` take 0.2 s, so later requests overtake them."""

    #: Set when a slow read begins: a test awaits it rather than guessing a delay.
    slow_read_started = asyncio.Event()

    async def get(self, key: Key, *, r: LevelSpec | None = None) -> GetResult:
        if key in ("slow", b"slow"):
            SlowService.slow_read_started.set()
            await asyncio.sleep(0.2)
        return await super().get(key, r=r)


@asynccontextmanager
async def serving(**server_options: Any) -> AsyncIterator[tuple[Cluster, NativeServer]]:
    cluster = await Cluster.start(3, N3, transport="memory")
    server = await start_native_server(
        SlowService(cluster.node("n1")), "127.0.0.1", 0, **server_options
    )
    try:
        yield cluster, server
    finally:
        await server.close()
        await cluster.close()


class Raw:
    """A bare protocol connection: send frames, read replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)

    @classmethod
    async def connect(cls, server: NativeServer) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    def send(self, *frames: list[Any]) -> None:
        self.writer.write(b"".join(msgpack.packb(f, use_bin_type=True) for f in frames))

    async def replies(self, count: int) -> list[list[Any]]:
        out: list[list[Any]] = []
        async with asyncio.timeout(5):
            while len(out) < count:
                out.extend(self.unpacker)
                if len(out) >= count:
                    break
                data = await self.reader.read(65536)
                assert data, f"connection closed after {out}"
                self.unpacker.feed(data)
        return out

    async def call(self, op: str, **args: Any) -> Any:
        self.send([7, op, args])
        [reply] = await self.replies(1)
        return reply

    async def at_eof(self) -> bool:
        async with asyncio.timeout(5):
            return await self.reader.read(1) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def test_operations_and_their_results() -> None:
    async def scenario() -> None:
        async with serving() as (_, server):
            raw = await Raw.connect(server)
            assert await raw.call("ping") == [7, True, "pong"]
            put = (await raw.call("put", key="k", value={"a": [1, b"\x00"]}))[2]
            assert put["acknowledged"] >= 2
            assert put["context"].startswith(b"dtk1")
            got = (await raw.call("get", key=b"k"))[2]
            assert got["values"] == [{"a": [1, b"\x00"]}]
            again = (await raw.call("put", key="k", value="v2", context=got["context"], w=3))[2]
            assert again["acknowledged"] == 3
            assert (await raw.call("get", key="k", r=3))[2]["values"] == ["v2"]
            deleted = (await raw.call("delete", key="k"))[2]
            assert deleted["deleted"] is True
            assert (await raw.call("get", key="k"))[2]["values"] == []
            assert (await raw.call("delete", key="k"))[2]["deleted"] is False

            assert (await raw.call("rpush", key="l", values=[1, 2, 3]))[2] == 3
            assert (await raw.call("lpush", key="l", values=["a", "b"]))[2] == 5
            assert (await raw.call("lrange", key="l", start=0, stop=-1))[2] == ["b", "a", 1, 2, 3]
            assert (await raw.call("lpop", key="l"))[2] == "b"
            assert (await raw.call("rpop", key="l", count=2))[2] == [3, 2]
            assert (await raw.call("llen", key="l"))[2] == 2
            assert (await raw.call("lpop", key="l", count=5))[2] == ["a", 1]
            assert (await raw.call("lpop", key="l"))[2] is None
            assert (await raw.call("llen", key="l"))[2] == 0

            info = (await raw.call("info"))[2]
            assert info["node"] == "n1"
            assert info["n"] == 3
            assert info["connections"] == 1
            await raw.close()

    asyncio.run(scenario())


def test_errors_carry_their_type_and_facts_and_keep_the_connection() -> None:
    async def scenario() -> None:
        async with serving() as (cluster, server):
            raw = await Raw.connect(server)
            big = (await raw.call("put", key="k", value=b"x" * 20_000))[2]
            assert big["type"] == "PairTooLargeError"
            assert (big["key_bytes"], big["value_bytes"], big["limit"]) == (1, 20_003, 10_240)

            await raw.call("put", key="s", value="text")
            assert (await raw.call("lpush", key="s", values=[1]))[2]["type"] == "WrongTypeError"
            assert (await raw.call("lrange", key="s", start=0, stop=1))[2]["type"] == (
                "WrongTypeError"
            )

            cases: list[tuple[str, dict[str, Any]]] = [
                ("nope", {}),
                ("get", {}),
                ("get", {"key": 5}),
                ("get", {"key": "k", "colour": "red"}),
                ("put", {"key": "k", "value": 1, "context": "not-bytes"}),
                ("put", {"key": "k", "value": 1, "w": 0}),
                ("put", {"key": "k", "value": 1, "w": "MOST"}),
                ("lpush", {"key": "k", "values": []}),
                ("lrange", {"key": "k", "start": "0", "stop": 1}),
            ]
            for op, args in cases:
                reply = await raw.call(op, **args)
                assert reply[:2] == [7, False], (op, args)
                assert reply[2]["type"] == "InvalidRequestError", (op, args, reply)
            bad_context = await raw.call("put", key="k", value=1, context=b"junk")
            assert bad_context[2]["type"] == "InvalidContextError"
            assert (await raw.call("get", key="k", r=9))[2]["type"] == "InvalidQuorumError"

            await cluster.stop_node("n2")
            await cluster.stop_node("n3")
            quorum = (await raw.call("put", key="k", value=1))[2]
            assert quorum["type"] == "QuorumNotReachedError"
            assert (quorum["answered"], quorum["required"]) == (1, 2)
            level = (await raw.call("put", key="k", value=1, w="each_quorum"))[2]
            assert level["type"] == "QuorumNotReachedError"
            assert level["level"] == "EACH_QUORUM"
            assert level["message"].startswith("write EACH_QUORUM not reached: 1 of 2")
            assert (await raw.call("put", key="k", value=2, w="ONE"))[1] is True
            assert (await raw.call("get", key="k", r="1"))[1] is True
            assert await raw.call("ping") == [7, True, "pong"]
            await raw.close()

    asyncio.run(scenario())


def test_pipelined_requests_are_answered_out_of_order() -> None:
    async def scenario() -> None:
        async with serving() as (_, server):
            raw = await Raw.connect(server)
            raw.send(
                [1, "get", {"key": "slow"}],
                [2, "put", {"key": "fast", "value": 1}],
                [3, "ping", {}],
            )
            replies = await raw.replies(3)
            assert [r[0] for r in replies][-1] == 1  # the slow read finishes last
            assert sorted(r[0] for r in replies) == [1, 2, 3]
            assert all(r[1] for r in replies)
            await raw.close()

    asyncio.run(scenario())


def test_garbage_gets_a_protocol_error_then_the_connection_closes() -> None:
    async def scenario() -> None:
        async with serving() as (_, server):
            for garbage in [b"\xc1", msgpack.packb({"not": "a frame"}), msgpack.packb([1, 2])]:
                raw = await Raw.connect(server)
                raw.writer.write(garbage)
                [reply] = await raw.replies(1)
                assert reply[:2] == [0, False]
                assert reply[2]["type"] == "ProtocolError"
                assert await raw.at_eof()
                await raw.close()
            raw = await Raw.connect(server)  # the server itself is fine
            assert await raw.call("ping") == [7, True, "pong"]
            await raw.close()

    asyncio.run(scenario())


def test_oversized_frames_are_refused() -> None:
    async def scenario() -> None:
        async with serving(max_frame_bytes=1024) as (_, server):
            raw = await Raw.connect(server)
            assert (await raw.call("put", key="k", value=b"x" * 900))[1] is True
            raw.send([8, "put", {"key": "k", "value": b"x" * 2000}])
            [reply] = await raw.replies(1)
            assert reply[:2] == [0, False]
            assert "larger than 1024" in reply[2]["message"]
            assert await raw.at_eof()
            await raw.close()

    asyncio.run(scenario())


def test_close_finishes_requests_in_flight() -> None:
    async def scenario() -> None:
        async with serving() as (_, server):
            raw = await Raw.connect(server)
            SlowService.slow_read_started = asyncio.Event()
            raw.send([1, "get", {"key": "slow"}])
            await asyncio.wait_for(SlowService.slow_read_started.wait(), 5)
            closing = asyncio.create_task(server.close())
            [reply] = await raw.replies(1)
            assert reply[:2] == [1, True]
            assert await raw.at_eof()
            await closing
            await raw.close()
            try:
                await asyncio.open_connection("127.0.0.1", server.port)
            except OSError:
                pass
            else:
                raise AssertionError("a closed server accepted a connection")

    asyncio.run(scenario())


def test_requests_are_counted_in_metrics() -> None:
    async def scenario() -> None:
        cluster = await Cluster.start(3, N3, transport="memory")
        metrics = NodeMetrics(cluster.node("n1"))
        server = await start_native_server(
            StoreService(cluster.node("n1")), "127.0.0.1", 0, metrics=metrics
        )
        try:
            raw = await Raw.connect(server)
            await raw.call("put", key="k", value=1)
            await raw.call("no-such-op")
            await raw.close()
            text = metrics.render().decode()
            assert 'dtk_requests_total{command="put",outcome="ok",protocol="native"} 1.0' in text
            assert 'command="unknown",outcome="error",protocol="native"} 1.0' in text
        finally:
            await server.close()
            await cluster.close()

    asyncio.run(scenario())
