"""Conformance suite for transports (a :class:`~dynamo_toolkit.interfaces.Network`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from dynamo_toolkit.errors import TransportError
from dynamo_toolkit.interfaces import Network
from dynamo_toolkit.messages import Heartbeat, ReplicaRead, ReplicaWrite
from dynamo_toolkit.node_info import NodeInfo

__all__ = ["TransportSuite"]

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


def _ask(text: str) -> ReplicaRead:
    return ReplicaRead(text.encode())


def _answer(name: str, text: str) -> ReplicaWrite:
    return ReplicaWrite(f"{name}:{text}".encode(), 0, ())


class _Echo:
    """A handler that answers ``ReplicaRead(k)`` with ``ReplicaWrite(b"name:k")``.

    Only kernel messages are used: a socket transport need carry nothing else.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.received: list[tuple[str, object]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, source: str, message: object) -> object:
        self.received.append((source, message))
        self.arrived.set()
        if not isinstance(message, ReplicaRead):
            return None
        text = message.key.decode()
        if text == "boom":
            raise ValueError("handler failed on purpose")
        if text.startswith("sleep:"):
            await asyncio.sleep(float(text.removeprefix("sleep:")))
        return _answer(self.name, text)


class _Pair:
    """Endpoints ``a`` and ``b`` of one network, started with echo handlers."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.endpoints: list[Any] = []
        self.echo_a, self.echo_b = _Echo("a"), _Echo("b")
        self.a: Any = None
        self.b: Any = None

    async def start(self, name: str, handler: _Echo) -> Any:
        """Start a (possibly new) endpoint ``name``; stopped with the pair."""
        endpoint = self.network.endpoint(name)
        await endpoint.start(handler)
        self.endpoints.append(endpoint)
        return endpoint


@contextlib.asynccontextmanager
async def _pair(network: Network) -> AsyncIterator[_Pair]:
    """A started pair; every endpoint stopped and the network closed afterwards,
    whatever the check did."""
    pair = _Pair(network)
    try:
        pair.a = await pair.start("a", pair.echo_a)
        pair.b = await pair.start("b", pair.echo_b)
        yield pair
    finally:
        for endpoint in reversed(pair.endpoints):
            with contextlib.suppress(Exception):  # a check may have stopped it already
                await endpoint.stop()
        await network.close()


class TransportSuite:
    """Checks any transport.

    Fixtures to provide: ``make_network``, a zero-argument callable returning a
    fresh fault-free :class:`~dynamo_toolkit.interfaces.Network` (called inside
    the running loop) that knows members ``a`` and ``b``. Optional: ``run``,
    how to run a coroutine to completion (default ``asyncio.run``; a
    virtual-time runner suits in-process networks), and ``new_member``, the
    :class:`~dynamo_toolkit.node_info.NodeInfo` of a member the network did
    not know at start, by id (default: the id alone; a socket transport
    gives it an address).
    """

    @pytest.fixture
    def run(self) -> Runner:
        """How the suite runs its coroutines."""
        return asyncio.run

    @pytest.fixture
    def new_member(self) -> Callable[[str], NodeInfo]:
        """A member unknown to ``make_network``'s network, by id."""
        return NodeInfo

    def test_running_follows_start_and_stop(
        self, make_network: Callable[[], Network], run: Runner
    ) -> None:
        """An endpoint is ``running`` from ``start`` until ``stop``, and not before or after."""

        async def scenario() -> None:
            network = make_network()
            endpoint = network.endpoint("a")
            try:
                assert not endpoint.running
                await endpoint.start(_Echo("a"))
                assert endpoint.running
            finally:
                await endpoint.stop()
                await network.close()
            assert not endpoint.running

        run(scenario())

    def test_member_added_later_is_reached(
        self,
        make_network: Callable[[], Network],
        new_member: Callable[[str], NodeInfo],
        run: Runner,
    ) -> None:
        """``add_members`` makes a member that joined later reachable; repeats are harmless.

        A node hands the network every member it learns of, known ones
        included, each time its view changes.
        """

        async def scenario() -> None:
            network = make_network()
            async with _pair(network) as pair:
                joiner = new_member("c")
                network.add_members([joiner])
                network.add_members([NodeInfo("a"), joiner])  # known ids change nothing
                await pair.start("c", _Echo("c"))
                assert await pair.a.request("c", _ask("welcome"), 5.0) == _answer("c", "welcome")
                assert await pair.a.request("b", _ask("still"), 5.0) == _answer("b", "still")

        run(scenario())

    def test_request_gets_the_reply(self, make_network: Callable[[], Network], run: Runner) -> None:
        """A request reaches the peer's handler and its reply comes back."""

        async def scenario() -> None:
            async with _pair(make_network()) as pair:
                assert await pair.a.request("b", _ask("hello"), 5.0) == _answer("b", "hello")
                assert pair.echo_b.received == [("a", _ask("hello"))]

        run(scenario())

    def test_parallel_requests_get_their_own_replies(
        self, make_network: Callable[[], Network], run: Runner
    ) -> None:
        """Concurrent requests are not mixed up."""

        async def scenario() -> None:
            async with _pair(make_network()) as pair:
                asks = (pair.a.request("b", _ask(str(i)), 5.0) for i in range(50))
                replies = await asyncio.gather(*asks)
                assert replies == [_answer("b", str(i)) for i in range(50)]

        run(scenario())

    def test_one_way_message_arrives(
        self, make_network: Callable[[], Network], run: Runner
    ) -> None:
        """A one-way message reaches the peer's handler."""

        async def scenario() -> None:
            async with _pair(make_network()) as pair:
                pair.a.send("b", Heartbeat(1.5))
                async with asyncio.timeout(5.0):
                    await pair.echo_b.arrived.wait()
                assert pair.echo_b.received == [("a", Heartbeat(1.5))]

        run(scenario())

    def test_request_to_stopped_node_fails(
        self, make_network: Callable[[], Network], run: Runner
    ) -> None:
        """A request to a stopped node fails with TransportError."""

        async def scenario() -> None:
            async with _pair(make_network()) as pair:
                await pair.b.stop()
                with pytest.raises(TransportError):
                    await pair.a.request("b", _ask("anyone?"), 0.5)

        run(scenario())

    def test_restarted_node_answers_again(
        self, make_network: Callable[[], Network], run: Runner
    ) -> None:
        """A node restarted with a new endpoint answers again."""

        async def scenario() -> None:
            async with _pair(make_network()) as pair:
                await pair.b.stop()
                await pair.start("b", _Echo("b2"))
                assert await pair.a.request("b", _ask("back?"), 5.0) == _answer("b2", "back?")

        run(scenario())

    def test_slow_handler_times_out(self, make_network: Callable[[], Network], run: Runner) -> None:
        """A reply later than the timeout is a TransportError."""

        async def scenario() -> None:
            async with _pair(make_network()) as pair:
                with pytest.raises(TransportError):
                    await pair.a.request("b", _ask("sleep:2.0"), 0.2)

        run(scenario())

    def test_request_future_completes_within_its_timeout(
        self, make_network: Callable[[], Network], run: Runner
    ) -> None:
        """``request_future`` resolves or fails within its timeout."""

        async def scenario() -> None:
            async with _pair(make_network()) as pair:
                a = pair.a
                assert await a.request_future("b", _ask("warm"), 5.0) == _answer("b", "warm")
                slow = a.request_future("b", _ask("sleep:2.0"), 0.2)
                with pytest.raises(TransportError):
                    await slow
                fast = [a.request_future("b", _ask(str(i)), 5.0) for i in range(10)]
                assert await asyncio.gather(*fast) == [_answer("b", str(i)) for i in range(10)]

        run(scenario())

    def test_handler_error_reaches_the_caller(
        self, make_network: Callable[[], Network], run: Runner
    ) -> None:
        """A handler's exception becomes the caller's TransportError; the node survives."""

        async def scenario() -> None:
            async with _pair(make_network()) as pair:
                with pytest.raises(TransportError, match="on purpose"):
                    await pair.a.request("b", _ask("boom"), 5.0)
                # The node survives its handler's error.
                assert await pair.a.request("b", _ask("still"), 5.0) == _answer("b", "still")

        run(scenario())
