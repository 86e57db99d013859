"""The RESP front-end end to end: redis-py and raw sockets against a 3-node cluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from dynamo_toolkit.consistency import LevelSpec
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit_server.auth import Authenticator, Role, User, hash_password
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.resp.server import RespServer, start_resp_server
from dynamo_toolkit_server.service import ReadOne, StoreService
from testsupport import eventually

N3 = {"store": {"n": 3, "r": 2, "w": 2}}
HOST = "127.0.0.1"


@attrs.define
class Env:
    """A cluster, a RESP server on n1 and one on n2, and their services."""

    cluster: Cluster
    first: RespServer
    second: RespServer
    services: dict[str, StoreService]
    metrics: NodeMetrics


#: Users of the auth tests, hashed once (scrypt costs tens of ms on purpose).
USERS = (
    User("default", Role.ADMIN, hash_password("s3cret")),
    User("reader", Role.READ, hash_password("r-pass")),
    User("writer", Role.READWRITE, hash_password("w-pass")),
)


@contextlib.asynccontextmanager
async def running(
    users: tuple[User, ...] = (), service_type: type[StoreService] = StoreService
) -> AsyncIterator[Env]:
    """Start everything; close everything, whatever the test did."""
    cluster = await Cluster.start(3, N3, transport="memory")
    services = {node_id: service_type(cluster.node(node_id)) for node_id in ("n1", "n2")}
    metrics = NodeMetrics(cluster.node("n1"))
    servers: list[RespServer] = []
    try:
        for node_id in ("n1", "n2"):
            server = await start_resp_server(
                services[node_id],
                HOST,
                0,
                authenticator=Authenticator(users),
                metrics=metrics if node_id == "n1" else None,
            )
            servers.append(server)
        yield Env(cluster, servers[0], servers[1], services, metrics)
    finally:
        for server in servers:
            await server.close()
        await cluster.close()


@contextlib.asynccontextmanager
async def client(server: RespServer, **options: Any) -> AsyncIterator[aioredis.Redis]:
    """A redis-py client of ``server`` (closed afterwards); RESP2, no retries unless told."""
    options.setdefault("protocol", 2)
    options.setdefault("retry", Retry(NoBackoff(), 0))  # errors are expected, not retried
    redis_client = aioredis.Redis(host=HOST, port=server.port, **options)
    try:
        yield redis_client
    finally:
        await redis_client.aclose()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` on a fresh loop and check it left no task behind."""

    async def main() -> None:
        await asyncio.wait_for(scenario(), timeout=15)
        await asyncio.sleep(0)
        leftovers = asyncio.all_tasks() - {asyncio.current_task()}
        assert not leftovers, leftovers

    asyncio.run(main())


async def raw(server: RespServer, payload: bytes, *, half_close: bool = False) -> bytes:
    """Send ``payload`` on a plain socket and read until the server closes."""
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        writer.write(payload)
        if half_close:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    """Send ``data`` and read one chunk of reply."""
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.read(65536), timeout=5)


# -- strings and keys -------------------------------------------------------------------


def test_set_through_one_node_get_through_another() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a, client(env.second) as b:
            assert await a.set("greeting", b"hello \x00 world")
            assert await b.get("greeting") == b"hello \x00 world"
            assert await b.get("missing") is None
            assert await a.set("greeting", "x", nx=True) is None
            assert await a.set("fresh", "x", xx=True) is None
            assert await a.set("fresh", "1", nx=True)
            assert await a.set("fresh", "2", get=True) == b"1"
            assert await a.set("fresh", "3", keepttl=True)
            assert await b.incr("fresh") == 4
            assert await b.decrby("fresh", 10) == -6
            with pytest.raises(ResponseError, match="EX is not supported: keys do not expire"):
                await a.set("k", "v", ex=10)
            # Values written through another API as str come back as UTF-8.
            await env.services["n1"].put("text", "héllo")
            assert await b.get("text") == "héllo".encode()

    run(scenario)


def test_key_commands() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a, client(env.second) as b:
            assert await a.mset({"k1": "v1", "k2": "v2", "k3": "v3"})
            assert await b.mget("k1", "nope", "k3") == [b"v1", None, b"v3"]
            assert await b.exists("k1", "k2", "nope", "k1") == 3
            assert await a.type("k1") == b"string"
            assert await a.type("nope") == b"none"
            assert await a.strlen("k2") == 2
            assert await a.strlen("nope") == 0
            assert await b.append("k2", "-more") == 7
            assert await a.get("k2") == b"v2-more"
            assert await a.append("new", "abc") == 3
            assert await a.ttl("k1") == -1
            assert await a.ttl("nope") == -2
            assert await b.delete("k1", "k2", "nope", "k1") == 2
            assert await a.exists("k1", "k2") == 0
            assert await a.get("k1") is None
            assert await a.delete("k1") == 0

    run(scenario)


def test_lists() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a, client(env.second) as b:
            assert await a.rpush("l", "b", "c") == 2
            assert await b.lpush("l", "a", "z") == 4
            assert await a.lrange("l", 0, -1) == [b"z", b"a", b"b", b"c"]
            assert await a.lrange("l", 1, 2) == [b"a", b"b"]
            assert await a.lrange("l", -2, 100) == [b"b", b"c"]
            assert await a.lrange("l", 5, 10) == []
            # A repeated range is answered from memory until the list changes.
            assert await a.lrange("l", 0, 1) == [b"z", b"a"]
            assert await a.lpush("l", "y") == 5
            assert await a.lrange("l", 0, 1) == [b"y", b"z"]
            assert await a.lpop("l") == b"y"
            assert await b.llen("l") == 4
            assert await b.lindex("l", -1) == b"c"
            assert await b.lindex("l", 9) is None
            assert await a.lset("l", 0, "Z")
            assert await a.lpop("l") == b"Z"
            assert await b.rpop("l") == b"c"
            assert await a.rpush("l", "d", "e") == 4
            assert await a.lpop("l", 2) == [b"a", b"b"]
            assert await a.rpop("l", 5) == [b"e", b"d"]
            assert await a.exists("l") == 0  # popping the last item deletes the key
            assert await a.lpop("l") is None
            assert await a.lpop("l", 2) is None
            assert await a.llen("l") == 0
            assert await a.lrange("l", 0, -1) == []
            with pytest.raises(ResponseError, match="no such key"):
                await a.lset("l", 0, "x")
            await a.rpush("l", "x")
            with pytest.raises(ResponseError, match="index out of range"):
                await a.lset("l", 3, "x")
            assert await a.type("l") == b"list"

    run(scenario)


# -- protocol versions, auth, connection commands --------------------------------------------


def test_hello_3_and_resp3_replies() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first, protocol=3) as a:
            await a.set("k", "v")
            assert await a.get("k") == b"v"
            assert await a.get("missing") is None
            hello = await a.execute_command("HELLO", "3")
            assert hello[b"proto"] == 3
            assert hello[b"server"] == b"dynamo-toolkit"
            assert hello[b"version"] == b"7.0.0"
            assert set(hello) == {
                b"server",
                b"version",
                b"proto",
                b"id",
                b"mode",
                b"role",
                b"modules",
            }
            assert await a.execute_command("DTK.CONSISTENCY") == {b"n": 3, b"r": 2, b"w": 2}
            # The raw RESP3 null and map on the wire.
            reader, writer = await asyncio.open_connection(HOST, env.first.port)
            try:
                assert (await exchange(reader, writer, b"HELLO 3\r\n")).startswith(b"%7\r\n")
                assert await exchange(reader, writer, b"GET missing\r\n") == b"_\r\n"
                assert (await exchange(reader, writer, b"HELLO 2\r\n")).startswith(b"*14\r\n")
                assert await exchange(reader, writer, b"GET missing\r\n") == b"$-1\r\n"
                assert (await exchange(reader, writer, b"HELLO 4\r\n")).startswith(b"-NOPROTO")
            finally:
                writer.close()
                await writer.wait_closed()

    run(scenario)


def test_auth() -> None:
    async def scenario() -> None:
        async with running(USERS) as env, client(env.first) as anonymous:
            with pytest.raises(AuthenticationError, match="Authentication required"):
                await anonymous.get("k")
        async with running(USERS) as env:
            async with client(env.first, password="wrong") as bad:
                with pytest.raises(AuthenticationError):
                    await bad.ping()
            async with client(env.first, password="s3cret") as good:
                assert await good.set("k", "v")
            async with client(env.second, password="s3cret", protocol=3) as good3:
                assert await good3.get("k") == b"v"
            async with client(env.first, username="default", password="s3cret") as named:
                assert await named.get("k") == b"v"
            payload = b"GET k\r\nAUTH nope\r\nAUTH s3cret\r\nGET k\r\nQUIT\r\n"
            assert await raw(env.first, payload) == (
                b"-NOAUTH Authentication required.\r\n"
                b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
                b"+OK\r\n$1\r\nv\r\n+OK\r\n"
            )
            reply = await raw(env.first, b"HELLO 3\r\nHELLO 3 AUTH default s3cret\r\nQUIT\r\n")
            assert reply.startswith(b"-NOAUTH HELLO must be called with the client already")
            assert b"\r\n%7\r\n" in reply
            assert reply.endswith(b"+OK\r\n")
        async with running() as env, client(env.first) as a:
            with pytest.raises(AuthenticationError, match="without any password configured"):
                await a.execute_command("AUTH", "pw")
            assert await a.execute_command("ACL", "WHOAMI") == b"default"

    run(scenario)


def test_roles() -> None:
    """A read user cannot write, a readwrite user cannot list clients; each is counted."""

    async def scenario() -> None:
        async with running(USERS) as env:
            async with client(env.first, username="writer", password="w-pass") as writer:
                assert await writer.set("k", "v")
                assert await writer.execute_command("ACL", "WHOAMI") == b"writer"
                with pytest.raises(NoPermissionError, match=r"User writer .* 'client\|list'"):
                    await writer.client_list()
                with pytest.raises(NoPermissionError, match="acl"):
                    await writer.execute_command("ACL", "USERS")
            async with client(
                env.first, username="reader", password="r-pass", protocol=3
            ) as reader:
                assert await reader.get("k") == b"v"
                for write in (reader.set("k", "x"), reader.delete("k"), reader.lpush("l", "a")):
                    with pytest.raises(NoPermissionError, match="User reader has no"):
                        await write
                assert await reader.get("k") == b"v"
            async with client(env.first, username="default", password="s3cret") as admin:
                users = await admin.execute_command("ACL", "USERS")
                assert users == [b"default", b"reader", b"writer"]
                assert b"user=default" in (await admin.execute_command("CLIENT", "INFO"))
            async with client(env.first, username="reader", password="w-pass") as wrong:
                with pytest.raises(AuthenticationError):
                    await wrong.ping()
            text = env.metrics.render().decode()
            assert 'dtk_permission_denied_total{protocol="resp"} 5.0' in text
            assert 'dtk_auth_failures_total{protocol="resp"} 1.0' in text

    run(scenario)


def test_connection_commands() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first, client_name="tester") as a:
            assert await a.client_getname() == "tester"
            assert await a.client_setname("renamed")
            assert await a.client_getname() == "renamed"
            with pytest.raises(ResponseError, match="cannot contain spaces"):
                await a.client_setname("two words")
            client_id = await a.client_id()
            info = await a.execute_command("CLIENT", "INFO")
            assert f"id={client_id} ".encode() in info
            assert b"name=renamed" in info
            assert b"lib-name=redis-py" in info
            assert await a.execute_command("CLIENT", "LIST")
            assert await a.echo("hi") == b"hi"
            assert await a.ping()
            assert await a.execute_command("SELECT", "0")
            with pytest.raises(ResponseError, match="DB index is out of range"):
                await a.execute_command("SELECT", "1")
            assert await a.command_count() > 30
            commands = await raw(env.first, b"COMMAND DOCS\r\nCOMMAND INFO get nosuch\r\nQUIT\r\n")
            assert commands.startswith(b"*0\r\n*2\r\n*10\r\n$3\r\nget\r\n:2\r\n")
            assert commands.endswith(b"$-1\r\n+OK\r\n")
            await a.set("k", "v")
            info = await a.info()
            assert info["redis_version"] == "7.0.0"
            assert info["dtk_node_id"] == "n1"
            assert "db0" in info  # keys held by this node's replicas
            assert "redis_version" not in await a.info("dynamo")
            assert await a.execute_command("CONFIG", "GET", "save") == [b"save", b""]

    run(scenario)


def test_quit_closes_after_answering() -> None:
    async def scenario() -> None:
        async with running() as env:
            reply = await raw(env.first, b"PING\r\nPING x\r\nQUIT\r\nPING\r\n")
            assert reply == b"+PONG\r\n$1\r\nx\r\n+OK\r\n"
            assert await raw(env.first, b"GET k\r\nQUIT\r\nGET k\r\n") == b"$-1\r\n+OK\r\n"

    run(scenario)


# -- errors ---------------------------------------------------------------------------------


def test_errors() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a:
            with pytest.raises(ResponseError) as unknown:
                await a.execute_command("FOO", "bar", "baz")
            assert str(unknown.value) == (
                "unknown command 'FOO', with args beginning with: 'bar' 'baz' "
            )
            with pytest.raises(ResponseError, match=r"^wrong number of arguments for 'get'"):
                await a.execute_command("GET")
            with pytest.raises(ResponseError, match=r"^wrong number of arguments for 'mset'"):
                await a.execute_command("MSET", "a", "1", "b")
            await a.rpush("list", "x")
            await a.set("string", "x")
            with pytest.raises(ResponseError, match=r"^WRONGTYPE Operation against a key"):
                await a.get("list")
            with pytest.raises(ResponseError, match=r"^WRONGTYPE"):
                await a.lpush("string", "y")
            with pytest.raises(ResponseError, match=r"^WRONGTYPE"):
                await a.lrange("string", 0, -1)
            # Lists written through another API: strings are items, anything else is not.
            await env.services["n1"].put("texts", ["a", "b"])
            assert await a.lpush("texts", "c") == 3
            assert await a.lrange("texts", 0, -1) == [b"c", b"a", b"b"]
            await env.services["n1"].put("mixed", [b"a", 1])
            for attempt in (a.lpush("mixed", "c"), a.lrange("mixed", 0, -1)):
                with pytest.raises(ResponseError, match="neither a string nor a list of strings"):
                    await attempt
            with pytest.raises(ResponseError, match="exceeds the limit of 10240 bytes"):
                await a.set("big", b"x" * (11 * 1024))
            with pytest.raises(ResponseError, match=r"^value is not an integer or out of range"):
                await a.execute_command("LRANGE", "list", "zero", "1")
            with pytest.raises(ResponseError, match=r"^value is not an integer or out of range"):
                await a.incr("string")
            with pytest.raises(ResponseError, match="MULTI is not supported"):
                await a.execute_command("MULTI")
            # A value written through another API that is neither string nor list.
            await env.services["n1"].put("doc", {"a": 1, "tags": ["x"]})
            with pytest.raises(ResponseError, match=r"DTK\.GETV"):
                await a.get("doc")
            assert await a.type("doc") == b"dtk-value"
            assert await a.mget("doc", "string") == [None, b"x"]
            _, values = await a.execute_command("DTK.GETV", "doc")
            assert values == [[b"a", 1, b"tags", [b"x"]]]
            assert await a.ping()  # the connection survived every error

    run(scenario)


def test_quorum_failure_is_reported() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a:
            await env.cluster.stop_node("n2")
            await env.cluster.stop_node("n3")
            with pytest.raises(ResponseError, match=r"^QUORUM read quorum not reached"):
                await a.get("k")
            assert await a.execute_command("DTK.CONSISTENCY", "LOCAL_QUORUM") == b"OK"
            level = r"^QUORUM write LOCAL_QUORUM not reached: 1 of 2 in the unnamed datacenter"
            with pytest.raises(ResponseError, match=level):
                await a.set("k", "v")
            assert await a.execute_command("DTK.CONSISTENCY", "ONE") == b"OK"
            assert await a.set("k", "one")
            assert await a.execute_command("DTK.CONSISTENCY", "1", "1") == b"OK"
            assert await a.set("k", "alone")
            assert await a.get("k") == b"alone"

    run(scenario)


# -- our commands: consistency and siblings --------------------------------------------------


def test_consistency_per_connection() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a, client(env.first) as b:
            assert await a.execute_command("DTK.CONSISTENCY", "3", "1") == b"OK"
            assert await a.execute_command("DTK.CONSISTENCY") == [b"n", 3, b"r", 3, b"w", 1]
            pool_b = await b.execute_command("DTK.CONSISTENCY")
            assert pool_b == [b"n", 3, b"r", 2, b"w", 2]
            with pytest.raises(ResponseError, match=r"R must satisfy 1 <= R <= N=3, got R=4"):
                await a.execute_command("DTK.CONSISTENCY", "4", "1")
            with pytest.raises(ResponseError, match="wrong number of arguments"):
                await a.execute_command("DTK.CONSISTENCY", "2", "2", "2")
            # Levels by name: one for both, or R and W.
            assert await a.execute_command("DTK.CONSISTENCY", "local_quorum") == b"OK"
            assert await a.execute_command("DTK.CONSISTENCY") == [
                *(b"n", 3, b"r", b"LOCAL_QUORUM", b"w", b"LOCAL_QUORUM")
            ]
            assert await a.execute_command("DTK.CONSISTENCY", "ONE", "EACH_QUORUM") == b"OK"
            assert await a.execute_command("DTK.CONSISTENCY") == [
                *(b"n", 3, b"r", b"ONE", b"w", b"EACH_QUORUM")
            ]
            with pytest.raises(ResponseError, match="unknown consistency level 'MOST'"):
                await a.execute_command("DTK.CONSISTENCY", "MOST")
            with pytest.raises(ResponseError, match="R must satisfy 1 <= R <= N=3, got R=4"):
                await a.execute_command("DTK.CONSISTENCY", "4")
            await a.set("k", "level")
            assert await a.get("k") == b"level"
            assert await a.execute_command("DTK.CONSISTENCY", "2", "2") == b"OK"
            await a.set("k", "v")
            assert await a.get("k") == b"v"

    run(scenario)


def test_siblings_are_visible_and_collapse() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a, client(env.second) as b:
            # Two writes from one context through two coordinators: concurrent versions.
            seen = (await env.services["n1"].get("doc")).context
            await env.services["n1"].put("doc", b"from-n1", seen)
            await env.services["n2"].put("doc", b"from-n2", seen)
            context, values = await a.execute_command("DTK.GETV", "doc")
            assert sorted(values) == [b"from-n1", b"from-n2"]
            assert await b.get("doc") == b"from-n2"  # plain GET: the newest sibling
            new_context = await b.execute_command("DTK.PUTV", "doc", context, "merged")
            assert isinstance(new_context, bytes)
            assert new_context
            assert (await a.execute_command("DTK.GETV", "doc"))[1] == [b"merged"]
            # A PUTV with a stale context makes a sibling again...
            await a.execute_command("DTK.PUTV", "doc", context, "another")
            context, values = await b.execute_command("DTK.GETV", "doc")
            assert sorted(values) == [b"another", b"merged"]
            # ...and a plain SET supersedes every sibling it read.
            assert await a.set("doc", "final")
            assert (await b.execute_command("DTK.GETV", "doc"))[1] == [b"final"]
            context, _ = await a.execute_command("DTK.GETV", "doc")
            assert await a.execute_command("DTK.DELV", "doc", context)
            assert (await b.execute_command("DTK.GETV", "doc"))[1] == []
            assert await b.get("doc") is None
            with pytest.raises(ResponseError, match="context"):
                await a.execute_command("DTK.PUTV", "doc", "garbage", "v")
            # List siblings: a plain read merges them, a push collapses them.
            seen = (await env.services["n1"].get("cart")).context
            await env.services["n1"].put("cart", [b"apple"], seen)
            await env.services["n2"].put("cart", [b"pear"], seen)
            assert sorted(await a.lrange("cart", 0, -1)) == [b"apple", b"pear"]
            assert await b.rpush("cart", "plum") == 3
            assert len((await a.execute_command("DTK.GETV", "cart"))[1]) == 1

    run(scenario)


# -- pipelining, malformed input, half-close, shutdown -----------------------------------------


def test_pipeline_answers_in_order() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a:
            pipe = a.pipeline(transaction=False)
            for i in range(100):
                if i % 4 == 0:
                    pipe.set(f"p{i}", i)
                elif i % 4 == 1:
                    pipe.get(f"p{i - 1}")
                elif i % 4 == 2:
                    pipe.ping()
                else:
                    pipe.echo(f"e{i}")
            replies = await pipe.execute()
            for i, reply in enumerate(replies):
                expected = [True, str(i - 1).encode(), True, f"e{i}".encode()][i % 4]
                assert reply == expected, (i, reply)
            # Synchronous and waiting commands interleaved in one packet keep their order.
            payload = b"PING\r\nSET x 1\r\nECHO a\r\nGET x\r\nPING\r\nQUIT\r\n"
            assert await raw(env.first, payload) == (
                b"+PONG\r\n+OK\r\n$1\r\na\r\n$1\r\n1\r\n+PONG\r\n+OK\r\n"
            )

    run(scenario)


def test_malformed_input_closes_only_that_connection() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as other:
            await other.set("k", "v")
            reply = await raw(env.first, b"PING\r\nGET k\r\n*1\r\n$abc\r\nPING\r\n")
            assert reply == b"+PONG\r\n$1\r\nv\r\n-ERR Protocol error: invalid bulk length\r\n"
            reply = await raw(env.first, b"*1\r\n$99999999999\r\n")
            assert reply == (
                b"-ERR Protocol error: invalid bulk length (99999999999 bytes, limit 16777216)\r\n"
            )
            reply = await raw(env.first, b"*3\r\n$3\r\nSET\r\n:1\r\n")
            assert reply.startswith(b"-ERR Protocol error: expected '$'")
            assert await other.get("k") == b"v"
            assert env.first.connections == 1

    run(scenario)


def test_half_close_still_gets_replies() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.second) as other:
            reply = await raw(env.first, b"SET hc v\r\nGET hc\r\nPING\r\n", half_close=True)
            assert reply == b"+OK\r\n$1\r\nv\r\n+PONG\r\n"
            assert await raw(env.first, b"", half_close=True) == b""
            assert await other.get("hc") == b"v"

    run(scenario)


def test_abrupt_disconnect_with_commands_in_flight() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.second) as other:
            _, writer = await asyncio.open_connection(HOST, env.first.port)
            writer.write(b"SET gone 1\r\n" * 20 + b"GET gone\r\n")
            await writer.drain()
            writer.transport.abort()
            await eventually(lambda: env.first.connections == 0)
            assert await other.get("gone") == b"1"  # what was received still ran

    run(scenario)


class SlowService(StoreService):
    """Reads take 200 ms, so a shutdown finds one in progress."""

    #: Set when a read begins: a test awaits it rather than guessing a delay.
    read_started = asyncio.Event()

    async def read_one(self, key: Any, *, r: LevelSpec | None = None) -> ReadOne:
        SlowService.read_started.set()
        await asyncio.sleep(0.2)
        return await super().read_one(key, r=r)


def test_close_lets_the_command_in_progress_finish() -> None:
    async def scenario() -> None:
        SlowService.read_started = asyncio.Event()
        async with running(service_type=SlowService) as env:
            reader, writer = await asyncio.open_connection(HOST, env.first.port)
            writer.write(b"GET k\r\nGET k\r\n")
            await writer.drain()
            await asyncio.wait_for(SlowService.read_started.wait(), 5)
            await env.first.close()
            assert await asyncio.wait_for(reader.read(), timeout=5) == b"$-1\r\n"
            writer.close()
            await writer.wait_closed()
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(HOST, env.first.port)

    run(scenario)


def test_metrics_count_resp_commands() -> None:
    async def scenario() -> None:
        async with running() as env, client(env.first) as a:
            await a.set("k", "v")
            await a.get("k")
            with pytest.raises(ResponseError):
                await a.execute_command("GET", "k", "extra")
            text = env.metrics.render().decode()
            assert 'dtk_requests_total{command="get",outcome="ok",protocol="resp"} 1.0' in text
            assert 'dtk_requests_total{command="set",outcome="ok",protocol="resp"} 1.0' in text

    run(scenario)
