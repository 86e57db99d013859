"""AsyncClient and Client against native servers on two nodes of a 3-node cluster."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit_server.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    InvalidRequest,
    PairTooLarge,
    QuorumError,
    SiblingsError,
    WrongType,
)
from dynamo_toolkit_server.native import NativeServer, start_native_server
from dynamo_toolkit_server.service import StoreService

N3 = {"store": {"n": 3, "r": 2, "w": 2}}
T = TypeVar("T")


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[Cluster, list[NativeServer]]]:
    """A 3-node cluster with native servers on n1 and n2."""
    cluster = await Cluster.start(3, N3, transport="memory")
    servers: list[NativeServer] = []
    try:
        for node_id in ("n1", "n2"):
            service = StoreService(cluster.node(node_id))
            servers.append(await start_native_server(service, "127.0.0.1", 0))
        yield cluster, servers
    finally:
        for server in servers:
            await server.close()
        await cluster.close()


async def make_siblings(cluster: Cluster, key: str, first: object, second: object) -> None:
    """Two writes from one read's context through two coordinators: concurrent versions.

    (Context-less writes would not do: the second coordinator holds the first
    write by then, and a blind write supersedes what its coordinator holds.)
    """
    seen = (await StoreService(cluster.node("n1")).get(key)).context
    await StoreService(cluster.node("n1")).put(key, first, seen)
    await StoreService(cluster.node("n2")).put(key, second, seen)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_put_get_delete_and_contexts() -> None:
    async def scenario() -> None:
        async with serving() as (_, servers), AsyncClient([s.address for s in servers]) as client:
            missing = await client.get("cart")
            assert not missing.found
            assert missing.value is None
            assert missing.values == ()
            context = await client.put("cart", ["apple"])
            read = await client.get("cart")
            assert read.found
            assert read.value == ["apple"]
            assert not read.conflict
            assert read.context == context
            await client.put("cart", ["apple", "pear"], read.context, w=3)
            assert (await client.get("cart", r=3)).value == ["apple", "pear"]
            await client.put(b"\x00bin", b"\xff\x00")
            assert (await client.get(b"\x00bin")).value == b"\xff\x00"
            await client.put("nil", None)
            assert (await client.get("nil")).values == (None,)
            await client.delete("cart")
            gone = await client.get("cart")
            assert not gone.found
            # A write with the tombstone's context supersedes the delete.
            await client.put("cart", ["fig"], gone.context)
            assert (await client.get("cart")).value == ["fig"]
            assert await client.ping() > 0
            assert (await client.info())["node"] == "n1"

    asyncio.run(scenario())


def test_siblings_and_collapsing_them() -> None:
    async def scenario() -> None:
        async with serving() as (cluster, servers), AsyncClient([servers[1].address]) as client:
            await make_siblings(cluster, "doc", "from-n1", "from-n2")
            read = await client.get("doc")
            assert read.conflict
            assert sorted(read.values) == ["from-n1", "from-n2"]
            with pytest.raises(SiblingsError):
                _ = read.value
            await client.put("doc", "merged", read.context)
            assert (await client.get("doc", r=3)).values == ("merged",)

            await make_siblings(cluster, "gone", 1, 2)
            await client.delete("gone")  # without a context: removes every sibling
            assert not (await client.get("gone")).found

    asyncio.run(scenario())


def test_list_operations() -> None:
    async def scenario() -> None:
        async with serving() as (_, servers), AsyncClient([servers[0].address]) as client:
            assert await client.rpush("q", "a", "b") == 2
            assert await client.lpush("q", "y", "z") == 4
            assert await client.lrange("q") == ["z", "y", "a", "b"]
            assert await client.lrange("q", 1, -2) == ["y", "a"]
            assert await client.llen("q") == 4
            assert await client.lpop("q") == "z"
            assert await client.rpop("q", 2) == ["b", "a"]
            assert await client.rpop("q") == "y"
            assert await client.rpop("q") is None
            assert await client.llen("q") == 0
            await client.put("text", "not a list")
            with pytest.raises(WrongType):
                await client.rpush("text", 1)

    asyncio.run(scenario())


def test_errors_mirror_the_server() -> None:
    async def scenario() -> None:
        async with serving() as (_, servers):
            async with AsyncClient([servers[0].address]) as client:
                with pytest.raises(PairTooLarge) as too_large:
                    await client.put("big", b"x" * 20_000)
                assert too_large.value.limit == 10_240
                assert too_large.value.value_bytes == 20_003
                with pytest.raises(InvalidRequest):
                    await client.put("k", 1, context=b"not a context")
                with pytest.raises(InvalidRequest):
                    await client.put("k", {1, 2})  # not msgpack-able: refused before sending
                with pytest.raises(InvalidRequest):
                    await client.get("k", r=7)
                with pytest.raises(InvalidRequest, match="unknown op"):
                    await client.call("frobnicate", {})
            async with AsyncClient([servers[0].address], max_frame_bytes=1000) as small:
                with pytest.raises(InvalidRequest, match="exceeds"):
                    await small.put("k", b"x" * 2000)  # refused before it reaches the server
                assert await small.ping() > 0

    asyncio.run(scenario())


def test_quorum_errors_surface_as_quorum_error() -> None:
    async def scenario() -> None:
        async with serving() as (cluster, servers):
            # n2 goes down with n3: n2's server still answers but its node refuses,
            # so the client moves on to n1, which cannot reach a quorum.
            addresses = [servers[1].address, servers[0].address]
            async with AsyncClient(addresses) as client:
                await client.put("k", "v")
                others = [n for n in cluster.replicas("k") if n != "n1"]
                for node_id in others:
                    await cluster.stop_node(node_id)
                with pytest.raises(QuorumError) as failed:
                    await client.put("k", "w")
                assert (failed.value.answered, failed.value.required) == (1, 2)
                assert failed.value.operation == "write"
                assert (failed.value.level, failed.value.shortfall) == (None, {})
                with pytest.raises(QuorumError):
                    await client.get("k")
                # A failed write may still have landed on the replica that answered,
                # and there, blind, it superseded the "v" that replica held.
                assert (await client.get("k", r=1)).values == ("w",)
                assert servers[1].address in client.down()
                # A level by name: the error names it and what fell short.
                with pytest.raises(QuorumError, match=r"^write LOCAL_QUORUM not reached") as level:
                    await client.put("k", "x", w="local_quorum")
                assert level.value.level == "LOCAL_QUORUM"
                assert level.value.shortfall == {"": (1, 2)}
                assert (await client.get("k", r="ONE")).values == ("x",)

    asyncio.run(scenario())


def test_failover_when_a_server_dies_and_return_when_it_is_back() -> None:
    async def scenario() -> None:
        async with serving() as (cluster, servers):
            first, second = servers
            port = first.port
            async with AsyncClient([first.address, second.address], retry_after=0.2) as client:
                await client.put("k", "v")
                assert (await client.info())["node"] == "n1"
                await first.close()
                assert (await client.get("k")).value == "v"
                assert (await client.info())["node"] == "n2"
                assert first.address in client.down()
                # Requests are pipelined on the surviving connection.
                results = await asyncio.gather(*(client.put(f"k{i}", i) for i in range(50)))
                assert len(results) == 50

                reborn = await start_native_server(
                    StoreService(cluster.node("n1")), "127.0.0.1", port
                )
                try:
                    await asyncio.sleep(0.25)  # past retry_after: n1 is tried first again
                    assert (await client.info())["node"] == "n1"
                    assert client.down() == {}
                finally:
                    await reborn.close()

    asyncio.run(scenario())


def test_a_silent_server_times_out_and_is_skipped() -> None:
    async def scenario() -> None:
        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # never answers
            writer.close()

        silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
        silent_address = f"127.0.0.1:{silent.sockets[0].getsockname()[1]}"
        try:
            async with serving() as (_, servers):
                addresses = [silent_address, servers[0].address]
                async with AsyncClient(addresses, timeout=0.3) as client:
                    await client.put("k", 1)
                    assert "no reply within" in client.down()[silent_address]
        finally:
            silent.close()
            await silent.wait_closed()

    asyncio.run(scenario())


def test_connection_failed_lists_every_address() -> None:
    async def scenario() -> None:
        addresses = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
        async with AsyncClient(addresses, timeout=0.5) as client:
            with pytest.raises(ConnectionFailed) as failed:
                await client.get("k")
        assert [address for address, _ in failed.value.attempts] == addresses
        assert all("refused" in reason for _, reason in failed.value.attempts)
        assert addresses[0] in str(failed.value)

    asyncio.run(scenario())


class BackgroundLoop:
    """An event loop in its own thread, hosting the cluster for the blocking client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def test_blocking_client_inside_a_thread_that_runs_a_loop() -> None:
    background = BackgroundLoop()
    cluster = background.run(Cluster.start(3, N3, transport="memory"))
    servers = [
        background.run(start_native_server(StoreService(cluster.node(n)), "127.0.0.1", 0))
        for n in ("n1", "n2")
    ]
    try:

        async def notebook_cell() -> None:
            # Like Jupyter: this thread runs a loop, and the blocking client still works.
            with Client([s.address for s in servers]) as client:
                context = client.put("k", {"n": 1})
                read = client.get("k")
                assert read.value == {"n": 1}
                assert read.context == context
                background.run(make_siblings(cluster, "doc", "a", "b"))
                siblings = client.get("doc")
                assert sorted(siblings.values) == ["a", "b"]
                client.put("doc", "ab", siblings.context)
                assert client.get("doc").value == "ab"
                assert client.rpush("q", 1, 2, 3) == 3
                assert client.lrange("q", 0, 1) == [1, 2]
                assert client.lpop("q", 2) == [1, 2]
                assert client.llen("q") == 1
                client.delete("k")
                assert not client.get("k").found
                with pytest.raises(PairTooLarge):
                    client.put("big", "x" * 20_000)
                background.run(servers[0].close())
                assert client.info()["node"] == "n2"  # failed over
                assert client.ping() > 0

        asyncio.run(notebook_cell())
    finally:
        for server in servers:
            background.run(server.close())
        background.run(cluster.close())
        background.stop()


def test_a_blocking_client_never_closed_leaves_quietly() -> None:
    """The README's one-liner never closes its Client: exit and GC must stay silent."""
    background = BackgroundLoop()
    cluster = background.run(Cluster.start(3, N3, transport="memory"))
    server = background.run(start_native_server(StoreService(cluster.node("n1")), "127.0.0.1", 0))
    script = f"""
import gc
from dynamo_toolkit_server.client import Client
dropped = Client([{server.address!r}])
dropped.put("k", ["a"])
thread = dropped._thread
del dropped
gc.collect()
assert not thread.is_alive(), "a dropped Client keeps its loop thread"
kept = Client([{server.address!r}])
print(kept.get("k").values)
"""
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    finally:
        background.run(server.close())
        background.run(cluster.close())
        background.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(['a'],)"
    assert done.stderr == ""
