"""Logging in on HTTP and the native port, in process (RESP: test_resp_server)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit_server.auth import Authenticator, Role, User, hash_password
from dynamo_toolkit_server.client import AsyncClient, AuthenticationFailed, PermissionDenied
from dynamo_toolkit_server.http_api import start_http_server
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.native.server import start_native_server
from dynamo_toolkit_server.service import StoreService

HOST = "127.0.0.1"
N3 = {"store": {"n": 3, "r": 2, "w": 2}}
#: Hashed once: scrypt costs tens of milliseconds on purpose.
USERS = (
    User("admin", Role.ADMIN, hash_password("a-pass")),
    User("reader", Role.READ, hash_password("r-pass")),
    User("writer", Role.READWRITE, hash_password("w-pass")),
)


async def _http(port: int, method: str, path: str, credentials: str = "") -> bytes:
    """Send one request; the status line and headers of the answer."""
    reader, writer = await asyncio.open_connection(HOST, port)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if credentials:
        head += f"Authorization: Basic {base64.b64encode(credentials.encode()).decode()}\r\n"
    body = b"value" if method == "PUT" else b""
    writer.write(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    try:
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()


def test_http_asks_for_basic_credentials_and_checks_roles() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="memory") as cluster:
            service = StoreService(cluster.node("n1"))
            metrics = NodeMetrics(service.node)
            server = await start_http_server(
                service, HOST, 0, metrics=metrics, authenticator=Authenticator(USERS)
            )
            try:
                port = server.port
                anonymous = await _http(port, "GET", "/kv/k")
                assert anonymous.startswith(b"HTTP/1.1 401 ")
                assert b'WWW-Authenticate: Basic realm="dtk"' in anonymous
                assert (await _http(port, "GET", "/kv/k", "reader:nope")).startswith(
                    b"HTTP/1.1 401 "
                )
                assert (await _http(port, "GET", "/metrics")).startswith(b"HTTP/1.1 401 ")
                bare = await _http(port, "GET", "/health")
                assert bare.startswith(b"HTTP/1.1 200 ")
                assert bare.endswith(b'{"status":"ok"}')
                full = await _http(port, "GET", "/health", "reader:r-pass")
                assert b'"membership"' in full
                refused = await _http(port, "PUT", "/kv/k", "reader:r-pass")
                assert refused.startswith(b"HTTP/1.1 403 ")
                assert b"that needs readwrite" in refused
                assert (await _http(port, "PUT", "/kv/k", "writer:w-pass")).startswith(
                    b"HTTP/1.1 204 "
                )
                assert (await _http(port, "GET", "/kv/k", "reader:r-pass")).endswith(b"value")
                assert (await _http(port, "GET", "/kv/k", "bad-header")).startswith(
                    b"HTTP/1.1 401 "
                )
                text = metrics.render().decode()
                assert 'dtk_auth_failures_total{protocol="http"} 1.0' in text
                assert 'dtk_permission_denied_total{protocol="http"} 1.0' in text
            finally:
                await server.close()

    asyncio.run(scenario())


def test_the_native_port_asks_for_auth_first_and_checks_roles() -> None:
    async def scenario() -> None:
        async with await Cluster.start(3, N3, transport="memory") as cluster:
            service = StoreService(cluster.node("n1"))
            metrics = NodeMetrics(service.node)
            server = await start_native_server(
                service, HOST, 0, metrics=metrics, authenticator=Authenticator(USERS)
            )
            address = f"{HOST}:{server.port}"
            try:
                async with AsyncClient([address]) as nobody:
                    assert await nobody.ping() >= 0  # a probe needs no login
                    with pytest.raises(AuthenticationFailed, match="send auth"):
                        await nobody.get("k")
                async with AsyncClient([address], user="reader", password="nope") as wrong:
                    with pytest.raises(AuthenticationFailed, match="invalid"):
                        await wrong.get("k")
                async with AsyncClient([address], user="writer", password="w-pass") as writer:
                    await writer.put("k", "v")
                    with pytest.raises(PermissionDenied, match="cluster_commit: it needs admin"):
                        await writer.admin("cluster_commit")
                async with AsyncClient([address], user="reader", password="r-pass") as reader:
                    assert (await reader.get("k")).values == ("v",)
                    with pytest.raises(PermissionDenied, match="needs readwrite"):
                        await reader.put("k", "w")
                async with AsyncClient([address], user="admin", password="a-pass") as admin:
                    assert (await admin.admin("cluster_plan"))["moves"] == []
                text = metrics.render().decode()
                assert 'dtk_auth_failures_total{protocol="native"} 1.0' in text
                assert 'dtk_permission_denied_total{protocol="native"} 2.0' in text
            finally:
                await server.close()

    asyncio.run(scenario())
