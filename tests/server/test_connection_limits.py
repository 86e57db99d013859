"""Per-connection limits against abuse: idle and slow clients, sizes, pipelines.

Every front-end runs in-process against a 3-node in-memory cluster, with
limits short enough to meet in a test; each refusal must be a clear error
(or the documented silent close), a count in the shared ClientLimit and in
the node's metrics, and the node must keep serving the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import attrs
import msgpack
import pytest
import redis.asyncio as aioredis

from dynamo_toolkit.consistency import LevelSpec
from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.values import Key
from dynamo_toolkit_server.client import AsyncClient
from dynamo_toolkit_server.client_limit import ClientLimit, ConnectionLimits
from dynamo_toolkit_server.http_api import HttpServer, start_http_server
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.native.server import NativeServer, start_native_server
from dynamo_toolkit_server.resp.server import RespServer, start_resp_server
from dynamo_toolkit_server.service import ReadOne, StoreService
from dynamo_toolkit_server.settings import NodeSettings
from testsupport import eventually

HOST = "127.0.0.1"
N3 = {"store": {"n": 3, "r": 2, "w": 2}}
#: Short enough for a test, long enough that a loaded machine answers well within it.
SHORT = 0.3


class GatedService(StoreService):
    """Reads of ``gate`` wait for :attr:`gate`; reads of ``slow`` take 3 x SHORT."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()

    async def _hold(self, key: Key) -> None:
        if key in ("gate", b"gate"):
            await self.gate.wait()
        elif key in ("slow", b"slow"):
            await asyncio.sleep(3 * SHORT)  # the slow work itself, not a wait for an event

    async def read_one(self, key: Key, *, r: LevelSpec | None = None) -> ReadOne:
        await self._hold(key)
        return await super().read_one(key, r=r)

    async def get(self, key: Key, *, r: LevelSpec | None = None) -> Any:
        await self._hold(key)
        return await super().get(key, r=r)


@attrs.define
class Node:
    """The three front-ends of n1, sharing one ClientLimit and its metrics."""

    service: GatedService
    limit: ClientLimit
    metrics: NodeMetrics
    resp: RespServer
    http: HttpServer
    native: NativeServer

    def closed(self, protocol: str, reason: str) -> int:
        return self.limit.closed.get((protocol, reason), 0)

    def refused(self, protocol: str, reason: str) -> int:
        return self.limit.requests_refused.get((protocol, reason), 0)


@contextlib.asynccontextmanager
async def serving(**limits: Any) -> AsyncIterator[Node]:
    """n1's RESP, HTTP and native servers with ``limits``; all closed afterwards."""
    cluster = await Cluster.start(3, N3, transport="memory")
    service = GatedService(cluster.node("n1"))
    limit = ClientLimit(100, ConnectionLimits(**limits))
    metrics = NodeMetrics(service.node, limit)
    servers: list[Any] = []
    try:
        resp = await start_resp_server(service, HOST, 0, metrics=metrics, client_limit=limit)
        servers.append(resp)
        http = await start_http_server(service, HOST, 0, metrics=metrics, client_limit=limit)
        servers.append(http)
        native = await start_native_server(service, HOST, 0, metrics=metrics, client_limit=limit)
        servers.append(native)
        yield Node(service, limit, metrics, resp, http, native)
    finally:
        service.gate.set()
        for server in servers:
            await server.close()
        await cluster.close()


def run(scenario: Any) -> None:
    async def main() -> None:
        await asyncio.wait_for(scenario(), timeout=30)

    asyncio.run(main())


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    async with asyncio.timeout(10):
        return await reader.read()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port)


async def resp_ping_works(node: Node) -> None:
    """Another RESP client is served normally."""
    reader, writer = await connect(node.resp.port)
    writer.write(b"PING\r\n")
    async with asyncio.timeout(5):
        assert await reader.readline() == b"+PONG\r\n"
    writer.close()
    await writer.wait_closed()


def native_frame(request_id: int, op: str, **args: Any) -> bytes:
    return msgpack.packb([request_id, op, args], use_bin_type=True)  # type: ignore[no-any-return]


def native_replies(data: bytes) -> list[Any]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    return list(unpacker)


# -- idle clients -----------------------------------------------------------------------


def test_idle_clients_are_closed_on_every_front_end_and_counted() -> None:
    async def scenario() -> None:
        async with serving(idle_timeout=SHORT) as node:
            loop = asyncio.get_running_loop()
            started = loop.time()

            reader, writer = await connect(node.resp.port)
            writer.write(b"PING\r\n")
            # RESP closes silently, as Redis does: the PONG, then the end.
            assert await until_closed(reader) == b"+PONG\r\n"
            assert loop.time() - started >= SHORT
            writer.close()

            reader, writer = await connect(node.http.port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            page = await until_closed(reader)
            assert page.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"Connection: keep-alive" in page
            writer.close()

            reader, writer = await connect(node.native.port)
            writer.write(native_frame(1, "ping"))
            assert native_replies(await until_closed(reader)) == [[1, True, "pong"]]
            writer.close()

            assert [node.closed(p, "idle") for p in ("resp", "http", "native")] == [1, 1, 1]
            text = node.metrics.render().decode()
            assert 'dtk_clients_closed_total{protocol="resp",reason="idle"} 1.0' in text
            assert 'dtk_clients_closed_total{protocol="native",reason="idle"} 1.0' in text
            assert 'dtk_clients_closed_total{protocol="http",reason="slow"} 0.0' in text
            await eventually(lambda: node.limit.open == 0)

    run(scenario)


def test_a_request_in_flight_longer_than_the_idle_timeout_is_not_idle() -> None:
    async def scenario() -> None:
        async with serving(idle_timeout=SHORT) as node:
            reader, writer = await connect(node.resp.port)
            native_reader, native_writer = await connect(node.native.port)
            writer.write(b"GET slow\r\n")  # each takes 3 x the idle timeout
            native_writer.write(native_frame(3, "get", key="slow"))
            async with asyncio.timeout(5):
                assert await reader.readline() == b"$-1\r\n"
                [reply] = native_replies(await native_reader.read(65536))
            assert reply[:2] == [3, True]
            writer.write(b"PING\r\n")  # and the connection is still there
            async with asyncio.timeout(5):
                assert await reader.readline() == b"+PONG\r\n"
            assert node.closed("resp", "idle") == node.closed("native", "idle") == 0
            # Once idle, each goes in its turn.
            assert await until_closed(reader) == b""
            assert await until_closed(native_reader) == b""
            assert node.closed("resp", "idle") == node.closed("native", "idle") == 1
            writer.close()
            native_writer.close()

    run(scenario)


def test_idle_timeout_zero_never_closes() -> None:
    async def scenario() -> None:
        async with serving(idle_timeout=0) as node:
            reader, writer = await connect(node.resp.port)
            writer.write(b"GET slow\r\nPING\r\n")  # keeps the connection around a while
            async with asyncio.timeout(5):
                assert await reader.readline() == b"$-1\r\n"
                assert await reader.readline() == b"+PONG\r\n"
            assert node.resp.connections == 1
            writer.close()

    run(scenario)


# -- slow clients -----------------------------------------------------------------------


async def unread_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection whose kernel receive buffer is tiny and which the test never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
    return await asyncio.open_connection(sock=sock)


def test_a_client_that_never_reads_is_dropped_and_others_are_served() -> None:
    async def scenario() -> None:
        async with serving(slow_client_timeout=SHORT, max_output_bytes=0) as node:
            _, flooder = await unread_connection(node.resp.port)
            echo = b"*2\r\n$4\r\nECHO\r\n$8192\r\n" + b"x" * 8192 + b"\r\n"
            flooder.write(echo * 1500)  # 12 MB of replies: more than any socket buffers

            await eventually(lambda: node.closed("resp", "slow") == 1, timeout=10)
            await resp_ping_works(node)
            await eventually(lambda: node.resp.connections == 0)
            flooder.transport.abort()

            _, native_flooder = await unread_connection(node.native.port)
            native_flooder.write(native_frame(1, "put", key="big", value=b"v" * 8000))
            native_flooder.write(
                b"".join(native_frame(i, "get", key="big") for i in range(2, 1500))
            )
            await eventually(lambda: node.closed("native", "slow") == 1, timeout=10)
            native_flooder.transport.abort()
            await resp_ping_works(node)

    run(scenario)


def test_replies_past_max_output_bytes_drop_the_client_at_once() -> None:
    async def scenario() -> None:
        # No slow-client timeout: the output cap alone drops it.
        async with serving(slow_client_timeout=0, max_output_bytes=1024 * 1024) as node:
            _, flooder = await unread_connection(node.resp.port)
            size = 12 * 1024 * 1024  # one reply bigger than socket buffers and the cap
            flooder.write(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % size + b"x" * size + b"\r\n")
            await eventually(lambda: node.closed("resp", "slow") == 1, timeout=10)
            flooder.transport.abort()
            await resp_ping_works(node)

    run(scenario)


# -- pipelines --------------------------------------------------------------------------


def test_resp_commands_past_max_pipelined_are_refused_in_order() -> None:
    async def scenario() -> None:
        async with serving(max_pipelined=4) as node:
            reader, writer = await connect(node.resp.port)
            # GET gate waits; behind it room for 3 more, the other 6 are refused.
            writer.write(b"GET gate\r\n" + b"PING\r\n" * 9)
            await writer.drain()
            await eventually(lambda: node.refused("resp", "pipeline") == 6)
            node.service.gate.set()
            refusal = b"-ERR max pipelined requests reached (4)\r\n"
            expected = b"$-1\r\n" + b"+PONG\r\n" * 3 + refusal * 6
            async with asyncio.timeout(5):
                assert await reader.readexactly(len(expected)) == expected
            # The connection stays and serves what comes next.
            writer.write(b"PING\r\n")
            async with asyncio.timeout(5):
                assert await reader.readline() == b"+PONG\r\n"
            text = node.metrics.render().decode()
            assert 'dtk_requests_refused_total{protocol="resp",reason="pipeline"} 6.0' in text
            writer.close()

    run(scenario)


def test_native_requests_past_max_pipelined_are_refused() -> None:
    async def scenario() -> None:
        async with serving(max_pipelined=2) as node:
            reader, writer = await connect(node.native.port)
            writer.write(b"".join(native_frame(i, "get", key="gate") for i in range(1, 6)))
            await eventually(lambda: node.refused("native", "pipeline") == 3)
            async with asyncio.timeout(5):
                refusals = native_replies(await reader.read(65536))
            assert sorted(reply[0] for reply in refusals) == [3, 4, 5]
            assert refusals[0][1:] == [
                False,
                {
                    "type": "TooManyRequests",
                    "message": "max pipelined requests reached (2)",
                    "limit": 2,
                },
            ]
            node.service.gate.set()
            async with asyncio.timeout(5):
                answers = native_replies(await reader.read(65536))
                while len(answers) < 2:
                    answers += native_replies(await reader.read(65536))
            assert sorted((reply[0], reply[1]) for reply in answers) == [(1, True), (2, True)]
            writer.close()

    run(scenario)


# -- sizes -----------------------------------------------------------------------------


def test_oversized_requests_are_refused_on_every_front_end() -> None:
    async def scenario() -> None:
        async with serving(max_request_bytes=1024) as node:
            reader, writer = await connect(node.resp.port)
            writer.write(b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n")
            assert await until_closed(reader) == (
                b"+PONG\r\n-ERR Protocol error: invalid bulk length (2000 bytes, limit 1024)\r\n"
            )
            writer.close()
            # Each bulk within the limit, the command as a whole over it.
            reader, writer = await connect(node.resp.port)
            writer.write(b"*3\r\n$3\r\nSET\r\n$600\r\n" + b"k" * 600 + b"\r\n$600\r\n")
            assert await until_closed(reader) == (
                b"-ERR Protocol error: request too large (over 1024 bytes)\r\n"
            )
            writer.close()

            reader, writer = await connect(node.http.port)
            writer.write(b"PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n")
            page = await until_closed(reader)
            assert page.startswith(b"HTTP/1.1 413 Content Too Large\r\n") or page.startswith(
                b"HTTP/1.1 413 Request Entity Too Large\r\n"
            )
            assert b'"error":"BodyTooLarge","message":"body of 2000 bytes exceeds 1024"' in page
            writer.close()
            reader, writer = await connect(node.http.port)
            writer.write(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            assert (await until_closed(reader)).startswith(b"HTTP/1.1 431 ")
            writer.close()

            reader, writer = await connect(node.native.port)
            writer.write(native_frame(1, "put", key="k", value=b"v" * 2000))
            [reply] = native_replies(await until_closed(reader))
            assert reply == [
                0,
                False,
                {"type": "ProtocolError", "message": "frame larger than 1024 bytes"},
            ]
            writer.close()

            counts = [node.closed(p, "too_large") for p in ("resp", "http", "native")]
            assert counts == [2, 2, 1]
            await resp_ping_works(node)

    run(scenario)


def test_http_request_trickled_past_the_slow_client_timeout_gets_408() -> None:
    async def scenario() -> None:
        async with serving(slow_client_timeout=SHORT) as node:
            reader, writer = await connect(node.http.port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            page = await until_closed(reader)
            assert page.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert b"request not received within" in page
            writer.close()
            assert node.closed("http", "slow") == 1

    run(scenario)


# -- settings ---------------------------------------------------------------------------


def _node(**settings: Any) -> dict[str, Any]:
    return {"node": {"id": "n1", "peer": "127.0.0.1:7100", **settings}}


def test_limit_settings_defaults_and_validation() -> None:
    limits = NodeSettings.from_dict(_node()).limits
    assert limits == ConnectionLimits()
    assert (limits.idle_timeout, limits.slow_client_timeout) == (300.0, 60.0)
    assert (limits.max_request_bytes, limits.max_output_bytes) == (16 << 20, 64 << 20)
    assert limits.max_pipelined == 65_536
    chosen = NodeSettings.from_dict(
        _node(idle_timeout=0, slow_client_timeout=2.5, max_pipelined=10, max_output_bytes=0)
    ).limits
    assert chosen == ConnectionLimits(
        idle_timeout=0, slow_client_timeout=2.5, max_pipelined=10, max_output_bytes=0
    )
    for setting, value, message in [
        ("idle_timeout", -1, "idle_timeout must be a number of seconds >= 0"),
        ("idle_timeout", "300", "idle_timeout must be a number of seconds >= 0"),
        ("slow_client_timeout", float("inf"), "slow_client_timeout must be a number"),
        ("max_request_bytes", 0, "max_request_bytes must be a positive integer"),
        ("max_pipelined", 1.5, "max_pipelined must be a positive integer"),
        ("max_output_bytes", -1, "max_output_bytes must be an integer number of bytes >= 0"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            NodeSettings.from_dict(_node(**{setting: value}))


def test_pooled_clients_reconnect_after_an_idle_close() -> None:
    async def scenario() -> None:
        async with serving(idle_timeout=SHORT) as node:
            pool = aioredis.Redis(host=HOST, port=node.resp.port, protocol=2)
            python = AsyncClient([node.native.address], timeout=5)
            try:
                assert await pool.ping()
                await python.put("k", b"v")
                await eventually(
                    lambda: node.closed("resp", "idle") == node.closed("native", "idle") == 1
                )
                # Both notice the closed connection and open a fresh one.
                assert await pool.ping()
                assert (await python.get("k")).values == (b"v",)
            finally:
                await pool.aclose()
                await python.close()

    run(scenario)
