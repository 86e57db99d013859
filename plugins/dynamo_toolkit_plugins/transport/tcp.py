"""Transport ``tcp``: asyncio streams between processes, msgpack framing.

One connection per peer, opened on first use and reused; a node's requests
and the peer's replies share it. Frames written in the same loop turn go out
in one ``write`` (batching). A lost connection fails the requests waiting on
it at once; the next message reconnects, after an exponential backoff.

Every frame is a msgpack array ``[kind, request_id, body]``; the first frame on
a connection is ``[HELLO, 0, sender_id]`` so the receiver knows who speaks.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import msgpack

from dynamo_toolkit.eager_start import start_eagerly
from dynamo_toolkit.errors import ConfigurationError, NodeUnavailableError, TransportError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import Handler, Network, Transport
from dynamo_toolkit.message_codec import WireFormatError, decode_message, encode_message
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["TcpNetwork", "TcpTransport", "parse_address"]

REQUEST, REPLY, ERROR, ONE_WAY, HELLO = range(5)
#: Largest frame accepted; a pair is at most a few tens of KiB, a repair a few of them.
MAX_FRAME_BYTES = 64 * 1024 * 1024


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"``; a clear error when it is not one."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"bad address {address!r}: expected host:port")
    return host.strip("[]"), int(port)


class _Connection(asyncio.Protocol):
    """One TCP connection, inbound or outbound, with batched writes."""

    def __init__(self, owner: TcpTransport, peer: str | None) -> None:
        self.owner = owner
        self.peer = peer  # known for outbound; learnt from HELLO for inbound
        self.transport: asyncio.Transport | None = None
        self.unpacker = msgpack.Unpacker(
            raw=False, max_buffer_size=MAX_FRAME_BYTES, strict_map_key=False
        )
        self.outbox: list[bytes] = []
        self.flush_scheduled = False
        self.pending: dict[int, asyncio.Future[object]] = {}
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: cast, not check.
        self.transport = cast(asyncio.Transport, transport)
        self.owner.connections.add(self)

    def write(self, frame: list[Any]) -> None:
        """Queue a frame; every frame queued in this loop turn is written at once."""
        self.outbox.append(msgpack.packb(frame, use_bin_type=True))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.transport is not None and not self.transport.is_closing() and self.outbox:
            self.transport.write(b"".join(self.outbox))
        self.outbox.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.unpacker.feed(data)
            for frame in self.unpacker:
                self._dispatch(frame)
        except (msgpack.BufferFull, ValueError, TypeError, WireFormatError) as exc:
            # A peer speaking garbage loses its connection, never the node.
            self.owner.protocol_errors += 1
            self.abort(f"protocol error: {exc}")

    def _dispatch(self, frame: object) -> None:
        if not isinstance(frame, list) or len(frame) != 3 or type(frame[1]) is not int:
            raise WireFormatError("a frame is [kind, request_id, body]")
        kind, request_id, body = frame
        if kind == HELLO:
            if not isinstance(body, str):
                raise WireFormatError("HELLO carries the sender id")
            self.peer = body
            # The peer is up and reaching us: stop backing off our own link to it.
            self.owner.forget_backoff(body)
            return
        if kind in (REPLY, ERROR):
            future = self.pending.pop(request_id, None)
            if future is not None and not future.done():
                if kind == REPLY:
                    future.set_result(decode_message(body))
                else:
                    future.set_exception(TransportError(f"{self.peer!r} failed: {body}"))
            return
        if self.peer is None:
            raise WireFormatError("message before HELLO")
        message = decode_message(body)
        self.owner.deliver(self, kind, request_id, message)

    def abort(self, reason: str) -> None:
        """Close now and fail every request waiting on this connection."""
        if self.transport is not None:
            self.transport.abort()
        self._fail_pending(reason)

    def _fail_pending(self, reason: str) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(TransportError(f"connection to {self.peer!r} lost: {reason}"))
                # Mark it seen: at shutdown nobody may be left to look at it.
                future.exception()
        self.pending.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.connections.discard(self)
        self._fail_pending(str(exc) if exc else "closed")
        self.owner.forget_link(self)
        if not self.closed.done():
            self.closed.set_result(None)


def _expire(link: _Connection, request_id: int, dest: str, timeout: float) -> None:
    future = link.pending.pop(request_id, None)
    if future is not None and not future.done():
        future.set_exception(TransportError(f"no reply from {dest!r} within {timeout} s"))


class TcpTransport(Transport):
    """One node's endpoint: a listening socket and one outbound link per peer."""

    def __init__(self, network: TcpNetwork, node_id: str) -> None:
        self.node_id = node_id
        self.network = network
        self.connections: set[_Connection] = set()
        self.protocol_errors = 0
        self._handler: Handler | None = None
        self._server: asyncio.Server | None = None
        self._links: dict[str, _Connection] = {}
        self._connecting: dict[str, asyncio.Future[_Connection]] = {}
        self._retry_at: dict[str, tuple[float, float]] = {}  # peer -> (when, backoff)
        self._next_id = 0
        self._tasks: set[asyncio.Future[None]] = set()
        # (deadline, request id, link, dest, timeout) of requests sent; entries
        # of requests already answered simply find nothing pending at expiry.
        self._deadlines: list[tuple[float, int, _Connection, str, float]] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._handler is not None

    async def start(self, handler: Handler) -> None:
        """Listen on this node's address and deliver messages to ``handler``."""
        host, port = parse_address(self.network.address_of(self.node_id))
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self, None), host, port, reuse_address=True
        )
        self._handler = handler

    # -- outbound ---------------------------------------------------------------

    async def _link(self, dest: str) -> _Connection:
        link = self._links.get(dest)
        if link is not None:
            return link
        if not self.running:
            raise TransportError(f"{self.node_id!r} is stopped")
        loop = asyncio.get_running_loop()
        retry = self._retry_at.get(dest)
        if retry is not None and loop.time() < retry[0]:
            raise NodeUnavailableError(
                f"{dest!r} unreachable; next connection attempt in {retry[0] - loop.time():.2f} s"
            )
        waiting = self._connecting.get(dest)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[_Connection] = loop.create_future()
        self._connecting[dest] = future
        try:
            host, port = parse_address(self.network.address_of(dest))
            async with asyncio.timeout(self.network.connect_timeout):
                _, link = await loop.create_connection(lambda: _Connection(self, dest), host, port)
        except (OSError, TimeoutError) as exc:
            backoff = min(
                self.network.backoff_max,
                (retry[1] * 2) if retry is not None else self.network.backoff_initial,
            )
            # Jitter keeps a restarted node from being hit by every peer at once.
            jitter = 1 + 0.25 * self.network.rng.random()
            self._retry_at[dest] = (loop.time() + backoff * jitter, backoff)
            error = NodeUnavailableError(f"cannot connect to {dest!r}: {exc or 'timeout'}")
            future.set_exception(error)
            future.exception()  # retrieved: waiters get it through shield
            raise error from exc
        finally:
            self._connecting.pop(dest, None)
        self._retry_at.pop(dest, None)
        link.write([HELLO, 0, self.node_id])
        self._links[dest] = link
        future.set_result(link)
        return link

    def forget_backoff(self, dest: str) -> None:
        """``dest`` is known to be up: the next message to it connects at once.

        Without this, nodes started together fail requests for a backoff
        period after one of them tried a peer that was not listening yet.
        """
        self._retry_at.pop(dest, None)

    def forget_link(self, connection: _Connection) -> None:
        """A connection closed: drop it so the next message reconnects."""
        for dest, link in list(self._links.items()):
            if link is connection:
                del self._links[dest]

    async def request(self, dest: str, message: object, timeout: float) -> object:
        """Send a request over the link to ``dest`` and wait for its reply."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            # wait_for, not asyncio.timeout: callers may run eagerly, outside a task.
            link = await asyncio.wait_for(self._link(dest), timeout)
        except TimeoutError:
            raise TransportError(f"no connection to {dest!r} within {timeout} s") from None
        return await self._send_request(link, dest, message, max(0.0, deadline - loop.time()))

    def request_future(self, dest: str, message: object, timeout: float) -> asyncio.Future[object]:
        """A future of the reply; no task when the link to ``dest`` is already open."""
        link = self._links.get(dest)
        if link is None:
            return asyncio.ensure_future(self.request(dest, message, timeout))
        return self._send_request(link, dest, message, timeout)

    def _send_request(
        self, link: _Connection, dest: str, message: object, timeout: float
    ) -> asyncio.Future[object]:
        loop = asyncio.get_running_loop()
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[object] = loop.create_future()
        link.pending[request_id] = future
        link.write([REQUEST, request_id, encode_message(message)])
        # One timer for all requests, armed for the earliest deadline: a loop
        # timer per request costs more than the request itself.
        deadline = loop.time() + timeout
        heapq.heappush(self._deadlines, (deadline, request_id, link, dest, timeout))
        if self._sweeper is None or deadline < self._sweep_at:
            self._arm(deadline)
        return future

    def _arm(self, when: float) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._sweep_at = when
        self._sweeper = asyncio.get_running_loop().call_at(when, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, request_id, link, dest, timeout = heapq.heappop(deadlines)
            _expire(link, request_id, dest, timeout)
        if deadlines:
            self._arm(deadlines[0][0])

    def send(self, dest: str, message: object) -> None:
        """Send a one-way message (connecting in the background if needed)."""
        link = self._links.get(dest)
        if link is not None:
            link.write([ONE_WAY, 0, encode_message(message)])
            return
        if self.running:
            self._spawn(self._send_later(dest, message))

    async def _send_later(self, dest: str, message: object) -> None:
        try:
            link = await self._link(dest)
        except TransportError:
            return
        link.write([ONE_WAY, 0, encode_message(message)])

    # -- inbound ----------------------------------------------------------------

    def deliver(self, connection: _Connection, kind: int, request_id: int, message: object) -> None:
        """Run the handler for an incoming request or one-way message."""
        if self._handler is None:
            if kind == REQUEST:
                # Stopping: say so at once rather than let the sender wait out
                # its timeout (it may itself be stopping, waiting on us).
                connection.write([ERROR, request_id, f"{self.node_id!r} is stopping"])
            return
        # Most requests (replica reads and writes) finish without waiting:
        # run them now rather than paying for a task and a loop turn each.
        handling = start_eagerly(self._handle(connection, kind, request_id, message))
        if not handling.done():
            self._track(handling)

    async def _handle(
        self, connection: _Connection, kind: int, request_id: int, message: object
    ) -> None:
        assert self._handler is not None
        assert connection.peer is not None
        try:
            reply = await self._handler(connection.peer, message)
        except Exception as exc:
            if kind == REQUEST:
                connection.write([ERROR, request_id, f"{type(exc).__name__}: {exc}"])
            return
        if kind == REQUEST:
            connection.write([REPLY, request_id, encode_message(reply)])

    def _spawn(self, coro: Any) -> None:
        self._track(asyncio.get_running_loop().create_task(coro))

    def _track(self, running: asyncio.Future[None]) -> None:
        self._tasks.add(running)
        running.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Stop listening, let running handlers finish, close every connection."""
        self._handler = None
        if self._server is not None:
            self._server.close()
        if self._tasks:
            # Handlers may be waiting on requests of their own (a forwarded
            # write fans out to the other replicas): the deadline sweeper keeps
            # running until they end, so each of those requests still times out.
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._deadlines.clear()
        for connection in list(self.connections):
            connection._flush()
            if connection.transport is not None:
                connection.transport.close()
        if self.connections:
            await asyncio.gather(*(c.closed for c in list(self.connections)))
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._links.clear()


class TcpNetwork(Network):
    """Addresses of every member; hands out TCP endpoints.

    ``addresses`` maps node id to ``host:port``; by default each member's
    :attr:`~dynamo_toolkit.node_info.NodeInfo.address` is used.
    """

    def __init__(
        self,
        seed: int = 0,
        members: Sequence[NodeInfo] = (),
        addresses: Mapping[str, str] | None = None,
        connect_timeout: float = 1.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
    ) -> None:
        self.addresses = {m.node_id: m.address for m in members if m.address}
        self.addresses.update(addresses or {})
        for address in self.addresses.values():
            parse_address(address)
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.rng = random.Random(seed)

    def address_of(self, node_id: str) -> str:
        """The ``host:port`` of ``node_id``."""
        try:
            return self.addresses[node_id]
        except KeyError:
            raise NodeUnavailableError(f"no address known for node {node_id!r}") from None

    def endpoint(self, node_id: str) -> TcpTransport:
        """The endpoint of ``node_id``, listening on its address once started."""
        self.address_of(node_id)
        return TcpTransport(self, node_id)

    def add_members(self, members: Iterable[NodeInfo]) -> None:
        """Learn the addresses of new members."""
        for member in members:
            if member.address:
                parse_address(member.address)
                self.addresses[member.node_id] = member.address


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``tcp`` transport."""
    registry.add_transport("tcp", TcpNetwork)
