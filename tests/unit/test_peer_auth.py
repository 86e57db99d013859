"""Peers prove they belong: the tcp transport's cluster secret and mutual TLS.

Each test runs real transports on loopback, each with its own
:class:`TcpNetwork` (as separate processes would have), on both asyncio's
loop and uvloop (what ``dtk serve`` runs). A refused peer's messages must
never reach the handler, and the refusal is counted.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import msgpack
import pytest
import uvloop

from dynamo_toolkit.errors import ConfigurationError, NodeUnavailableError, TransportError
from dynamo_toolkit.message_codec import encode_message
from dynamo_toolkit.messages import Ack, Ping
from dynamo_toolkit_plugins.transport import peer_auth
from dynamo_toolkit_plugins.transport.tcp import (
    AUTH,
    ERROR,
    HELLO,
    REQUEST,
    TcpNetwork,
    TcpTransport,
)
from dynamo_toolkit_server.tls import issue_certificate, make_local_pki, peer_contexts

SECRET = b"the cluster's secret"
OTHER = b"a rogue's guess"

Runner = Callable[[Coroutine[Any, Any, None]], None]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    return asyncio.run if request.param == "asyncio" else uvloop.run


@pytest.fixture
def addresses() -> dict[str, str]:
    return {name: f"127.0.0.1:{_free_port()}" for name in ("a", "b")}


class Recorder:
    """A handler that answers every message and remembers it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    async def __call__(self, source: str, message: object) -> object:
        self.seen.append((source, message))
        return Ack()


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll state another connection changes (it offers no event); fail on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def endpoint(addresses: dict[str, str], name: str, **options: Any) -> TcpTransport:
    options.setdefault("connect_timeout", 2.0)
    return TcpNetwork(seed=1, addresses=addresses, **options).endpoint(name)


async def pair(
    addresses: dict[str, str], a: dict[str, Any], b: dict[str, Any]
) -> tuple[TcpTransport, TcpTransport, Recorder, Recorder]:
    node_a, node_b = endpoint(addresses, "a", **a), endpoint(addresses, "b", **b)
    seen_a, seen_b = Recorder(), Recorder()
    await node_a.start(seen_a)
    await node_b.start(seen_b)
    return node_a, node_b, seen_a, seen_b


def scenario(run: Runner, body: Callable[[], Awaitable[tuple[TcpTransport, ...]]]) -> None:
    async def main() -> None:
        nodes = await body()
        for node in nodes:
            await node.stop()

    run(main())


# -- the cluster secret ----------------------------------------------------------


def test_peers_with_the_same_secret_talk_both_ways(run: Runner, addresses: dict[str, str]) -> None:
    async def body() -> tuple[TcpTransport, ...]:
        a, b, seen_a, seen_b = await pair(
            addresses, {"cluster_secret": SECRET}, {"cluster_secret": SECRET}
        )
        assert isinstance(await a.request("b", Ping(), 5.0), Ack)
        assert isinstance(await b.request("a", Ping(), 5.0), Ack)
        a.send("b", Ping())
        await until(lambda: len(seen_b.seen) == 2)
        assert [source for source, _ in seen_b.seen] == ["a", "a"]
        assert [source for source, _ in seen_a.seen] == ["b"]
        assert a.auth_failures == b.auth_failures == 0
        return a, b

    scenario(run, body)


@pytest.mark.parametrize("rogue", [{"cluster_secret": OTHER}, {}], ids=["wrong", "none"])
def test_a_peer_without_the_secret_is_refused_and_counted(
    run: Runner, addresses: dict[str, str], rogue: dict[str, Any]
) -> None:
    async def body() -> tuple[TcpTransport, ...]:
        a, b, _, seen_b = await pair(addresses, rogue, {"cluster_secret": SECRET})
        with pytest.raises(TransportError) as refused:
            await a.request("b", Ping(), 5.0)
        if rogue:  # it finds out first: b cannot prove the secret it knows
            assert "cannot authenticate 'b'" in str(refused.value)
            assert a.auth_failures == 1
        else:  # b tells it why before closing
            assert "no cluster-secret challenge" in str(refused.value)
        a.send("b", Ping())
        await until(lambda: b.auth_failures >= 1)
        assert seen_b.seen == []  # nothing reached the handler
        return a, b

    scenario(run, body)


def test_a_listener_without_the_secret_is_refused_by_the_connector(
    run: Runner, addresses: dict[str, str]
) -> None:
    async def body() -> tuple[TcpTransport, ...]:
        a, b, _seen_a, seen_b = await pair(addresses, {"cluster_secret": SECRET}, {})
        with pytest.raises(NodeUnavailableError, match="cannot authenticate 'b'"):
            await a.request("b", Ping(), 5.0)
        assert a.auth_failures == 1
        assert seen_b.seen == []
        return a, b

    scenario(run, body)


def test_during_a_rotation_any_listed_secret_is_accepted(
    run: Runner, addresses: dict[str, str]
) -> None:
    async def body() -> tuple[TcpTransport, ...]:
        # a already proves with the new secret; b still proves with the old one.
        a, b, _seen_a, _seen_b = await pair(
            addresses, {"cluster_secret": [OTHER, SECRET]}, {"cluster_secret": [SECRET, OTHER]}
        )
        assert isinstance(await a.request("b", Ping(), 5.0), Ack)
        assert isinstance(await b.request("a", Ping(), 5.0), Ack)
        assert a.auth_failures == b.auth_failures == 0
        return a, b

    scenario(run, body)


def _frame(*parts: object) -> bytes:
    return bytes(msgpack.packb(list(parts), use_bin_type=True))


async def _raw_exchange(address: str, data: bytes) -> list[Any]:
    """Send ``data`` on a plain socket; the frames received until the listener closes."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    received = await reader.read()  # until the listener closes the connection
    writer.close()
    return list(msgpack.Unpacker(io.BytesIO(received), raw=False))


@pytest.mark.parametrize(
    "opening",
    [
        pytest.param(_frame(HELLO, 0, "rogue"), id="hello-without-challenge"),
        pytest.param(_frame(HELLO, 0, ["rogue", b"n" * 16]), id="challenge-without-proof"),
        pytest.param(
            _frame(HELLO, 0, ["rogue", b"n" * 16]) + _frame(AUTH, 0, b"p" * 32), id="bad-proof"
        ),
        pytest.param(b"", id="no-hello"),
    ],
)
def test_a_raw_request_without_a_proof_is_never_delivered(
    run: Runner, addresses: dict[str, str], opening: bytes
) -> None:
    async def body() -> tuple[TcpTransport, ...]:
        b = endpoint(addresses, "b", cluster_secret=SECRET)
        seen = Recorder()
        await b.start(seen)
        request = _frame(REQUEST, 7, encode_message(Ping()))
        frames = await _raw_exchange(addresses["b"], opening + request)
        errors = [frame for frame in frames if frame[0] == ERROR]
        assert errors
        assert errors[-1][1] == 0
        assert "refused by 'b'" in errors[-1][2]
        assert seen.seen == []
        assert b.auth_failures == 1
        return (b,)

    scenario(run, body)


def test_a_silent_connection_is_closed_after_the_connect_timeout(
    run: Runner, addresses: dict[str, str]
) -> None:
    async def body() -> tuple[TcpTransport, ...]:
        b = endpoint(addresses, "b", cluster_secret=SECRET, connect_timeout=0.2)
        await b.start(Recorder())
        host, port = addresses["b"].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        assert await asyncio.wait_for(reader.read(), 5.0) == b""  # closed by b
        writer.close()
        assert b.auth_failures == 1
        return (b,)

    scenario(run, body)


def test_the_listener_proof_is_not_the_connector_proof() -> None:
    ids_and_nonces = ("a", "b", b"c" * 16, b"l" * 16)
    listener = peer_auth.proof(SECRET, peer_auth.LISTENER, *ids_and_nonces)
    connector = peer_auth.proof(SECRET, peer_auth.CONNECTOR, *ids_and_nonces)
    assert listener != connector
    assert peer_auth.verify([SECRET], listener, peer_auth.LISTENER, *ids_and_nonces)
    assert not peer_auth.verify([SECRET], listener, peer_auth.CONNECTOR, *ids_and_nonces)
    assert not peer_auth.verify([OTHER], listener, peer_auth.LISTENER, *ids_and_nonces)
    assert not peer_auth.verify([SECRET], "text", peer_auth.LISTENER, *ids_and_nonces)


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="must not be empty"):
        TcpNetwork(cluster_secret=b"")
    with pytest.raises(ConfigurationError, match="must not be empty"):
        TcpNetwork(cluster_secret=[])


# -- mutual TLS ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("pki")
    cluster = make_local_pki(home / "cluster", ["a", "b"])
    foreign = make_local_pki(home / "foreign", ["a", "b"])
    expired = (home / "expired.crt", home / "expired.key")
    now = datetime.datetime.now(datetime.UTC)
    issue_certificate(
        *expired,
        "a",
        hosts=["127.0.0.1"],
        ca_cert=cluster.ca_cert,
        ca_key=cluster.ca_key,
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    return {"cluster": cluster, "foreign": foreign, "expired": expired}


def _tls(files: tuple[Path, Path], ca: Path) -> dict[str, ssl.SSLContext]:
    server, client = peer_contexts(*files, ca)
    return {"server_tls": server, "client_tls": client}


def test_tls_peers_of_one_ca_talk(
    run: Runner, addresses: dict[str, str], pki: dict[str, Any]
) -> None:
    cluster = pki["cluster"]

    async def body() -> tuple[TcpTransport, ...]:
        a, b, seen_a, seen_b = await pair(
            addresses,
            _tls(cluster.nodes["a"], cluster.ca_cert),
            _tls(cluster.nodes["b"], cluster.ca_cert),
        )
        assert isinstance(await a.request("b", Ping(), 5.0), Ack)
        assert isinstance(await b.request("a", Ping(), 5.0), Ack)
        assert seen_a.seen == [("b", Ping())]
        assert seen_b.seen == [("a", Ping())]
        assert a.auth_failures == b.auth_failures == 0
        return a, b

    scenario(run, body)


def test_tls_with_a_secret_talks(
    run: Runner, addresses: dict[str, str], pki: dict[str, Any]
) -> None:
    cluster = pki["cluster"]

    async def body() -> tuple[TcpTransport, ...]:
        a, b, _, _seen_b = await pair(
            addresses,
            {**_tls(cluster.nodes["a"], cluster.ca_cert), "cluster_secret": SECRET},
            {**_tls(cluster.nodes["b"], cluster.ca_cert), "cluster_secret": SECRET},
        )
        assert isinstance(await a.request("b", Ping(), 5.0), Ack)
        assert isinstance(await b.request("a", Ping(), 5.0), Ack)
        assert a.auth_failures == b.auth_failures == 0
        return a, b

    scenario(run, body)


@pytest.mark.parametrize("rogue_cert", ["foreign", "expired"])
def test_a_tls_peer_without_a_valid_certificate_is_refused(
    run: Runner, addresses: dict[str, str], pki: dict[str, Any], rogue_cert: str
) -> None:
    cluster, foreign = pki["cluster"], pki["foreign"]
    if rogue_cert == "foreign":  # another CA: it trusts only that one too
        rogue = _tls(foreign.nodes["a"], foreign.ca_cert)
    else:  # our CA, but expired
        rogue = _tls(pki["expired"], cluster.ca_cert)

    async def body() -> tuple[TcpTransport, ...]:
        a, b, seen_a, seen_b = await pair(
            addresses, rogue, _tls(cluster.nodes["b"], cluster.ca_cert)
        )
        with pytest.raises(TransportError):
            await a.request("b", Ping(), 5.0)
        await until(lambda: b.auth_failures >= 1)  # the listener saw the failed handshake
        if rogue_cert == "foreign":
            assert a.auth_failures >= 1  # b's certificate does not verify for it
        # b, connecting to the rogue, refuses its certificate too.
        with pytest.raises(TransportError):
            await b.request("a", Ping(), 5.0)
        assert seen_a.seen == []
        assert seen_b.seen == []
        return a, b

    scenario(run, body)
