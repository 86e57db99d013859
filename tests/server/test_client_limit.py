"""One cap on client connections for all of a node's front-ends (max_clients)."""

from __future__ import annotations

import asyncio

import msgpack

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit_server.client_limit import ClientLimit
from dynamo_toolkit_server.http_api import start_http_server
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.native.server import start_native_server
from dynamo_toolkit_server.resp.server import start_resp_server
from dynamo_toolkit_server.service import StoreService
from testsupport import eventually

HOST = "127.0.0.1"
N3 = {"store": {"n": 3, "r": 2, "w": 2}}


async def _answer(port: int, request: bytes = b"") -> bytes:
    """What the server says to a new connection (after ``request``), until it hangs up."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()


def test_one_limit_for_every_front_end_and_each_refusal_says_why() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="memory") as cluster:
            service = StoreService(cluster.node("n1"))
            limit = ClientLimit(1)
            metrics = NodeMetrics(service.node, limit)
            resp = await start_resp_server(service, HOST, 0, client_limit=limit)
            http = await start_http_server(service, HOST, 0, metrics=metrics, client_limit=limit)
            native = await start_native_server(service, HOST, 0, client_limit=limit)
            try:
                # One RESP client holds the only place.
                reader, writer = await asyncio.open_connection(HOST, resp.port)
                writer.write(b"PING\r\n")
                assert await reader.readline() == b"+PONG\r\n"
                assert limit.open == 1

                # Refused at once, before any request (one sent would be unread).
                refused = await _answer(resp.port)
                assert refused == b"-ERR max number of clients reached (1)\r\n"
                page = await _answer(http.port)
                assert page.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
                assert page.endswith(
                    b'{"error":"TooManyClients","message":"max number of clients reached (1)"}'
                )
                frame = msgpack.unpackb(await _answer(native.port))
                assert frame[1:] == [
                    False,
                    {"type": "TooManyClients", "message": "max number of clients reached (1)"},
                ]
                assert (limit.open, limit.refused) == (1, 3)

                # The place comes back when the client leaves.
                writer.close()
                await writer.wait_closed()
                await eventually(lambda: limit.open == 0)
                request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                page = await _answer(http.port, request)
                assert page.startswith(b"HTTP/1.1 200 OK\r\n")
                await eventually(lambda: limit.open == 0)
                metrics.render()
                assert metrics.counter_values["clients_refused"] == 3
            finally:
                for server in (resp, http, native):
                    await server.close()

    asyncio.run(scenario())
