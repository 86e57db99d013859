"""The HTTP front-end, driven with http.client (in a thread) and raw sockets."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit_server.http_api import (
    CONTEXT_HEADER,
    HttpServer,
    from_json,
    start_http_server,
    to_json,
)
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.service import StoreService

N3 = {"store": {"n": 3, "r": 2, "w": 2}}


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["content-type"] == "application/json"
        return json.loads(self.body)

    @property
    def context(self) -> str:
        return self.headers[CONTEXT_HEADER.lower()]


def exchange(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


class Http:
    """Blocking requests run in a thread, so the server's loop keeps turning."""

    def __init__(self, server: HttpServer) -> None:
        self.port = server.port

    async def __call__(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        def blocking() -> Answer:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                return exchange(conn, method, path, body, headers)
            finally:
                conn.close()

        return await asyncio.to_thread(blocking)

    async def session(self, steps: Callable[[http.client.HTTPConnection], Any]) -> Any:
        """Run ``steps`` on one keep-alive connection."""

        def blocking() -> Any:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                return steps(conn)
            finally:
                conn.close()

        return await asyncio.to_thread(blocking)


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[Cluster, HttpServer, Http]]:
    cluster = await Cluster.start(3, N3, transport="memory")
    node = cluster.node("n1")
    server = await start_http_server(StoreService(node), "127.0.0.1", 0, metrics=NodeMetrics(node))
    try:
        yield cluster, server, Http(server)
    finally:
        await server.close()
        await cluster.close()


async def raw_exchange(server: HttpServer, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        async with asyncio.timeout(5):
            return await reader.read(-1)
    finally:
        writer.close()
        await writer.wait_closed()


def test_put_get_delete_with_content_types() -> None:
    async def scenario() -> None:
        async with serving() as (_, _, request):
            put = await request("PUT", "/kv/raw", b"\x00\xffbytes")
            assert put.status == 204
            assert put.body == b""
            assert put.context
            got = await request("GET", "/kv/raw")
            assert got.status == 200
            assert got.body == b"\x00\xffbytes"
            assert got.headers["content-type"] == "application/octet-stream"
            assert got.context == put.context

            document = {"items": [1, 2.5, None, True], "blob": {"$base64": "AAE="}}
            body = json.dumps(document).encode()
            json_type = {"Content-Type": "application/json; charset=utf-8"}
            assert (await request("PUT", "/kv/doc?w=3", body, json_type)).status == 204
            got = await request("GET", "/kv/doc?r=3")
            assert got.json() == document  # bytes travel as the $base64 marker both ways

            assert (await request("PUT", "/kv/text", b'"caf\xc3\xa9"', json_type)).status == 204
            got = await request("GET", "/kv/text")
            assert got.headers["content-type"] == "text/plain; charset=utf-8"
            assert got.body.decode() == "café"

            deleted = await request("DELETE", "/kv/raw")
            assert deleted.status == 204
            missing = await request("GET", "/kv/raw")
            assert missing.status == 404
            assert missing.json()["error"] == "NotFound"
            assert missing.context  # covers the tombstone
            revived = await request("PUT", "/kv/raw", b"again", {CONTEXT_HEADER: missing.context})
            assert revived.status == 204
            assert (await request("GET", "/kv/raw")).body == b"again"
            assert (await request("DELETE", "/kv/never-written")).status == 204

    asyncio.run(scenario())


def test_keys_are_percent_decoded() -> None:
    async def scenario() -> None:
        async with serving() as (cluster, _, request):
            assert (await request("PUT", "/kv/a%2Fb%20c%F0", b"v")).status == 204
            assert (await request("GET", "/kv/a/b%20c%f0")).body == b"v"
            assert (await cluster.get(b"a/b c\xf0")).values == (b"v",)

    asyncio.run(scenario())


def test_siblings_answer_300_and_a_put_with_the_context_collapses_them() -> None:
    async def scenario() -> None:
        async with serving() as (cluster, _, request):
            # Two writes from one context through two coordinators: concurrent.
            seen = (await StoreService(cluster.node("n1")).get("doc")).context
            await StoreService(cluster.node("n1")).put("doc", b"\x00\x01", seen)
            await StoreService(cluster.node("n2")).put("doc", "text", seen)
            conflict = await request("GET", "/kv/doc")
            assert conflict.status == 300
            document = conflict.json()
            assert sorted(document["siblings"], key=str) == ["text", {"$base64": "AAE="}]
            assert document["context"] == conflict.context
            put = await request("PUT", "/kv/doc", b"merged", {CONTEXT_HEADER: document["context"]})
            assert put.status == 204
            again = await request("GET", "/kv/doc?r=3")
            assert again.status == 200
            assert again.body == b"merged"

    asyncio.run(scenario())


def test_health_and_metrics() -> None:
    async def scenario() -> None:
        async with serving() as (cluster, _, request):
            health = await request("GET", "/health")
            assert health.status == 200
            assert health.json()["status"] == "ok"
            assert health.json()["node"] == "n1"
            await request("PUT", "/kv/k", b"v")
            metrics = await request("GET", "/metrics")
            assert metrics.status == 200
            assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
            text = metrics.body.decode()
            assert "dtk_requests" in text
            assert 'dtk_requests_total{command="put",outcome="ok",protocol="http"} 1.0' in text
            # Monotonic node counts are Prometheus counters; levels are gauges.
            await request("GET", "/kv/k")
            text = (await request("GET", "/metrics")).body.decode()
            assert "# TYPE dtk_coordinated_writes_total counter" in text
            assert "dtk_coordinated_writes_total 1.0" in text
            assert "dtk_coordinated_reads_total 1.0" in text
            # n1 coordinated both; with N=3 it is a replica of every key.
            assert "dtk_replica_reads_total 1.0" in text
            assert "dtk_forwarded_writes_total 0.0" in text
            assert "# TYPE dtk_hints_pending gauge" in text
            assert "dtk_stored_keys 1.0" in text
            await cluster.stop_node("n1")
            stopped = await request("GET", "/health")
            assert stopped.status == 503
            assert stopped.json()["status"] == "stopped"

    asyncio.run(scenario())


def test_errors() -> None:
    async def scenario() -> None:
        async with serving() as (cluster, _, request):
            too_large = await request("PUT", "/kv/big", b"x" * 20_000)
            assert too_large.status == 413
            assert too_large.json()["error"] == "PairTooLargeError"
            assert {k: too_large.json()[k] for k in ("key_bytes", "value_bytes", "limit")} == {
                "key_bytes": 3,
                "value_bytes": 20_003,
                "limit": 10_240,
            }
            # A large body (under max_request_bytes) is read whole, then refused by the pair limit.
            at_limit = await request("PUT", "/kv/big", b"x" * (1024 * 1024))
            assert at_limit.status == 413
            assert at_limit.json()["error"] == "PairTooLargeError"
            assert (await request("GET", "/nowhere")).status == 404
            wrong = await request("POST", "/kv/k", b"v")
            assert wrong.status == 405
            assert wrong.headers["allow"] == "GET, PUT, DELETE"
            assert (await request("DELETE", "/health")).status == 405
            for method, path, body, headers in [
                ("PUT", "/kv/k?w=twice", b"v", {}),
                ("PUT", "/kv/k?consistency=MOST", b"v", {}),
                ("PUT", "/kv/k?colour=red", b"v", {}),
                ("GET", "/kv/k?r=0", None, {}),
                ("GET", "/kv/k?r=9", None, {}),
                ("PUT", "/kv/k", b"v", {CONTEXT_HEADER: "%%%"}),
                ("PUT", "/kv/k", b"v", {CONTEXT_HEADER: base64.b64encode(b"junk").decode()}),
                ("PUT", "/kv/k", b"{not json", {"Content-Type": "application/json"}),
                ("PUT", "/kv/k", b'{"$base64": "!!"}', {"Content-Type": "application/json"}),
                ("GET", "/kv/", None, {}),
            ]:
                answer = await request(method, path, body, headers)
                assert answer.status == 400, (method, path, answer)
                assert answer.json()["message"]

            await cluster.stop_node("n2")
            await cluster.stop_node("n3")
            unavailable = await request("PUT", "/kv/k", b"v")
            assert unavailable.status == 503
            assert unavailable.json()["error"] == "QuorumNotReachedError"
            assert (unavailable.json()["answered"], unavailable.json()["required"]) == (1, 2)
            # A level, by r/w or consistency=, is reported by name with what is short.
            for path in ("/kv/k?w=local_quorum", "/kv/k?consistency=LOCAL_QUORUM"):
                level = await request("PUT", path, b"v")
                assert level.status == 503, path
                assert level.json()["level"] == "LOCAL_QUORUM"
                assert level.json()["shortfall"] == {"": [1, 2]}
                assert "LOCAL_QUORUM not reached: 1 of 2" in level.json()["message"]
            assert (await request("PUT", "/kv/k?consistency=ONE", b"v")).status == 204
            assert (await request("GET", "/kv/k?r=ONE&consistency=ALL")).status == 200
            assert (await request("GET", "/kv/k?consistency=ALL")).status == 503

    asyncio.run(scenario())


def test_keep_alive_survives_request_errors() -> None:
    async def scenario() -> None:
        async with serving() as (_, _, request):

            def steps(conn: http.client.HTTPConnection) -> list[int]:
                statuses = [exchange(conn, "PUT", "/kv/k", b"v").status]
                statuses.append(exchange(conn, "PUT", "/kv/k", b"x" * 20_000).status)
                statuses.append(exchange(conn, "GET", "/missing").status)
                statuses.append(exchange(conn, "GET", "/kv/k").status)
                return statuses

            assert await request.session(steps) == [204, 413, 404, 200]

    asyncio.run(scenario())


def test_malformed_requests_get_400_and_the_server_keeps_serving() -> None:
    async def scenario() -> None:
        async with serving() as (_, server, request):
            for garbage in [
                b"GARBAGE\r\n\r\n",
                b"GET /kv/k\r\n\r\n",
                b"GET kv/k HTTP/1.1\r\n\r\n",
                b"GET /kv/k HTTP/1.1\r\nNo colon here\r\n\r\n",
                b"GET /kv/k HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                b"PUT /kv/k HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                b"PUT /kv/k HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                b"PUT /kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            ]:
                answer = await raw_exchange(server, garbage)
                assert answer.startswith(b"HTTP/1.1 400 "), (garbage, answer)
                assert b"Connection: close" in answer

            huge_head = b"GET /kv/k HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
            assert (await raw_exchange(server, huge_head)).startswith(b"HTTP/1.1 431 ")
            huge_body = b"PUT /kv/k HTTP/1.1\r\nContent-Length: 20000000\r\n\r\n"
            answer = await raw_exchange(server, huge_body)
            assert answer.startswith(b"HTTP/1.1 413 ")
            assert b"BodyTooLarge" in answer
            assert (await raw_exchange(server, b"GET / HTTP/2.0\r\n\r\n")).startswith(
                b"HTTP/1.1 505 "
            )
            assert (await request("GET", "/health")).status == 200

    asyncio.run(scenario())


def test_chunked_bodies_expect_continue_and_pipelining() -> None:
    async def scenario() -> None:
        async with serving() as (_, server, request):
            chunked = (
                b"PUT /kv/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n"
                b"GET /kv/c HTTP/1.1\r\nConnection: close\r\n\r\n"
            )
            answer = await raw_exchange(server, chunked)
            assert answer.startswith(b"HTTP/1.1 204 ")
            assert answer.endswith(b"\r\n\r\nabcdefg")  # the pipelined GET, in order

            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"PUT /kv/e HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"hello")
            assert (await reader.readline()).startswith(b"HTTP/1.1 204 ")
            writer.close()
            await writer.wait_closed()
            assert (await request("GET", "/kv/e")).body == b"hello"

    asyncio.run(scenario())


def test_close_ends_idle_keep_alive_connections() -> None:
    async def scenario() -> None:
        cluster = await Cluster.start(3, N3, transport="memory")
        server = await start_http_server(StoreService(cluster.node("n1")), "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /health HTTP/1.1\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"Connection: keep-alive" in head
            async with asyncio.timeout(5):
                await server.close()
                rest = await reader.read(-1)  # the body, then EOF
            assert rest.startswith(b"{")
            writer.close()
            await writer.wait_closed()
        finally:
            await server.close()
            await cluster.close()

    asyncio.run(scenario())


def test_json_marker_round_trip() -> None:
    value = {"b": b"\x00", "list": [b"x", "y"], 1: "int key", b"k": 2}
    encoded = to_json(value)
    assert encoded == {
        "b": {"$base64": "AA=="},
        "list": [{"$base64": "eA=="}, "y"],
        "1": "int key",
        "aw==": 2,
    }
    assert from_json(json.loads(json.dumps(encoded)))["list"] == [b"x", "y"]
