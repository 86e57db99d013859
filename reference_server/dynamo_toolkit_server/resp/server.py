"""The RESP server: asyncio protocol, per-connection ordering, pipelining, shutdown.

Each connection parses what it receives into commands and answers them in
order. Connection commands (PING, HELLO, CLIENT, ...) are answered right in
``data_received`` when nothing is ahead of them; data commands, which wait for
replicas, go to one worker task per connection that runs them one after the
other. Replies produced in the same event-loop turn leave in one
``transport.write``.

A malformed request gets ``-ERR Protocol error: ...`` after the replies to the
commands before it, and its connection is closed; a client that shuts down its
write side still gets the replies to what it sent, then the connection closes.
Nothing a client sends can stop the node: handler failures become error replies.

Limits (see :class:`~dynamo_toolkit_server.client_limit.ConnectionLimits`):
a connection idle for ``idle_timeout`` is closed, as Redis's ``timeout``
does; one whose replies stay unread for ``slow_client_timeout``, or pile up
past ``max_output_bytes``, is dropped; a request over ``max_request_bytes``
is a protocol error; commands read past ``max_pipelined`` are refused one by
one. One timer per connection does the timing, re-armed lazily: the hot path
only notes the loop's time on each read.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from typing import Any, cast

from dynamo_toolkit.eager_start import start_eagerly
from dynamo_toolkit_server.auth import Authenticator
from dynamo_toolkit_server.client_limit import ClientLimit, ConnectionLimits
from dynamo_toolkit_server.listening import ListeningServer
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.resp.protocol import (
    DEFAULT_MAX_ARRAY,
    Command,
    ProtocolError,
    RespParser,
    error,
)
from dynamo_toolkit_server.resp.registry import (
    check,
    lookup,
    run_async,
    run_sync,
    unknown_command,
)
from dynamo_toolkit_server.resp.session import CommandSpec, ServerContext, Session
from dynamo_toolkit_server.service import StoreService

__all__ = ["RespServer", "start_resp_server"]

log = logging.getLogger(__name__)

_PROTOCOL = "resp"  # the metrics label of this front-end
_MAX_QUEUED = 4096  # commands waiting before we stop reading (or max_pipelined if lower)
_MAX_PENDING_REPLIES = 256  # replies held for batching before writing anyway


class _Registry:
    """The live connections of one server, and whether it is closing."""

    def __init__(
        self,
        context: ServerContext,
        max_bulk: int,
        max_array: int,
        client_limit: ClientLimit | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.context = context
        self.max_bulk = max_bulk
        self.max_array = max_array
        self.client_limit = client_limit
        #: Counts closures and refusals (a private one when no limit is shared).
        self.counts = client_limit if client_limit is not None else ClientLimit()
        self.limits = limits if limits is not None else self.counts.limits
        self.max_queued = min(_MAX_QUEUED, self.limits.max_pipelined)
        self.connections: set[_Connection] = set()
        self.closing = False


class _Connection(asyncio.Protocol):
    """One client: parser, command queue, worker task, reply batching."""

    def __init__(self, registry: _Registry) -> None:
        self._registry = registry
        self._admitted = False  # holds a place under the client limit
        self._ctx = registry.context
        self._parser = RespParser(
            max_bulk=registry.max_bulk,
            max_array=registry.max_array,
            max_request=registry.limits.max_request_bytes,
        )
        # Commands to run, or the reply of one already started (see data_received).
        self._queue: deque[Command | asyncio.Future[bytes]] = deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._busy = False  # the worker is running a command
        self._eof = False  # the client shut down its write side
        self._lost = False  # the transport is gone
        self._stopping = False  # the server is closing: finish the current command only
        self._fatal: bytes | None = None  # protocol error reply; the connection then closes
        self._read_paused = False
        self._wakeup: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None  # pending while writes are paused
        self._active_at = 0.0  # loop time of the last read, or of the worker going idle
        self._idle_timer: asyncio.TimerHandle | None = None
        self._slow_timer: asyncio.TimerHandle | None = None
        self.worker: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None]

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register the client and start its worker."""
        self._transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()
        self._session = Session(
            self._ctx,
            addr=_address(transport.get_extra_info("peername")),
            laddr=_address(transport.get_extra_info("sockname")),
        )
        if self._registry.closing:
            self._lost = True
            self._transport.close()
            return
        limit = self._registry.client_limit
        if limit is not None:
            if not limit.admit():
                self._lost = True
                self._transport.write(b"-ERR " + limit.message.encode() + b"\r\n")
                self._transport.close()
                return
            self._admitted = True
        self._registry.connections.add(self)
        self._ctx.sessions[self._session.client_id] = self._session
        self._ctx.total_connections += 1
        self.worker = self._loop.create_task(self._work())
        self._active_at = self._loop.time()
        idle = self._registry.limits.idle_timeout
        if idle > 0:
            self._idle_timer = self._loop.call_later(idle, self._check_idle)

    def data_received(self, data: bytes) -> None:
        """Parse, answer what can be answered at once, queue the rest."""
        if self._stopping or self._fatal is not None or self._session.quit:
            return
        self._active_at = self._loop.time()
        try:
            commands = self._parser.feed(data)
        except ProtocolError as exc:
            commands = exc.commands
            self._fatal = error(f"ERR {exc}")
            self._pause_reading()
            if exc.too_large:
                self._registry.counts.count_closed(_PROTOCOL, "too_large")
        queue = self._queue
        if not queue and not self._busy and self._writable is None:
            # Fast path: nothing is ahead of these commands, so they run here,
            # without waking the worker, until one has to wait for replicas.
            taken = 0
            waiting: asyncio.Future[bytes] | None = None
            for args in commands:
                taken += 1
                admitted = self._admit(args)
                if isinstance(admitted, bytes):
                    reply = admitted
                elif admitted.handler is not None:
                    reply = self._timed_sync(admitted, args)
                else:
                    pending = start_eagerly(self._timed(admitted, args), self._loop)
                    if not pending.done():
                        waiting = pending  # the worker sends its reply, in order
                        break
                    reply = pending.result()
                self._out.append(reply)
                if self._session.quit:
                    taken = len(commands)  # what follows QUIT is never run
                    break
            commands = commands[taken:]
            if self._out:
                self._flush()
            if waiting is not None:
                queue.append(waiting)
        if commands:
            room = self._registry.limits.max_pipelined - len(queue)
            if len(commands) > room:
                self._refuse_past_cap(commands, room)
            else:
                queue.extend(commands)
            if len(queue) >= self._registry.max_queued:
                self._pause_reading()
        if queue or self._fatal is not None or self._session.quit:
            self._wake()

    def eof_received(self) -> bool:
        """Half-close: keep the transport open to send the replies still due."""
        self._eof = True
        self._wake()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the client; commands already received still run (unanswered)."""
        if self._admitted:
            self._admitted = False
            limit = self._registry.client_limit
            assert limit is not None
            limit.release()
        self._lost = True
        self._out.clear()
        self._registry.connections.discard(self)
        self._ctx.sessions.pop(self._session.client_id, None)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._cancel_timers()
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        """The client is not reading its replies: stop running its commands."""
        if self._writable is None:
            self._writable = self._loop.create_future()
            slow = self._registry.limits.slow_client_timeout
            if slow > 0 and self._slow_timer is None and not self._lost:
                self._slow_timer = self._loop.call_later(slow, self._drop_slow, "timeout")

    def resume_writing(self) -> None:
        """The client caught up."""
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # -- limits ----------------------------------------------------------------

    def _refuse_past_cap(self, commands: list[Command], room: int) -> None:
        """Queue the commands that fit under ``max_pipelined``, then an error for each other."""
        room = max(room, 0)
        refused = len(commands) - room
        reply = error(f"ERR {self._registry.limits.pipeline_message}")
        done: asyncio.Future[bytes] = self._loop.create_future()
        done.set_result(reply * refused)  # answered in order, after the commands before
        self._queue.extend(commands[:room])
        self._queue.append(done)
        self._registry.counts.count_refused(_PROTOCOL, "pipeline", refused)

    def _check_idle(self) -> None:
        """The idle timer: close an idle connection, or re-arm for when it could be."""
        self._idle_timer = None
        if self._lost or self._stopping:
            return
        idle = self._registry.limits.idle_timeout
        now = self._loop.time()
        if self._queue or self._busy or self._out:
            deadline = now + idle  # a request in flight: not idle
        else:
            deadline = self._active_at + idle
            if now >= deadline:
                log.debug("closing RESP client %s: idle for %s s", self._session.addr, idle)
                self._registry.counts.count_closed(_PROTOCOL, "idle")
                self._stopping = True  # the worker ends and closes the transport
                self._transport.close()
                self._wake()
                return
        self._idle_timer = self._loop.call_at(deadline, self._check_idle)

    def _drop_slow(self, why: str) -> None:
        """Drop a client that does not read its replies (its output is discarded)."""
        self._slow_timer = None
        if self._lost or self._stopping:
            return
        limits = self._registry.limits
        if why == "timeout":
            detail = f"replies unread for {limits.slow_client_timeout} s"
        else:
            detail = f"over {limits.max_output_bytes} bytes of replies waiting"
        log.info("dropping RESP client %s: %s", self._session.addr, detail)
        self._registry.counts.count_closed(_PROTOCOL, "slow")
        self._stopping = True
        self._queue.clear()
        self._out.clear()
        self._transport.abort()
        self._wake()

    def _cancel_timers(self) -> None:
        for timer in (self._idle_timer, self._slow_timer):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._slow_timer = None

    # -- the worker ------------------------------------------------------------

    async def _work(self) -> None:
        queue = self._queue
        session = self._session
        try:
            while not (self._stopping or session.quit):
                if not queue:
                    if self._fatal is not None or self._eof or self._lost:
                        break
                    self._active_at = self._loop.time()  # idle from now on
                    if self._read_paused:
                        self._read_paused = False
                        self._transport.resume_reading()
                    self._wakeup = self._loop.create_future()
                    try:
                        await self._wakeup
                    finally:
                        self._wakeup = None
                    continue
                if self._writable is not None:
                    await self._writable
                    continue
                item = queue.popleft()
                self._busy = True
                try:
                    # A future is a command started in data_received that had to wait.
                    reply = await (item if isinstance(item, asyncio.Future) else self._run(item))
                finally:
                    self._busy = False
                self._send(reply)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must cost one connection, never the node
            log.exception("RESP connection %s failed", session.addr)
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._lost:
            return
        if self._fatal is not None:
            self._out.append(self._fatal)
        self._flush()
        self._transport.close()

    def shutdown(self) -> None:
        """Server closing: stop reading, drop queued commands, finish the current one."""
        self._stopping = True
        self._queue.clear()
        self._pause_reading()
        self.resume_writing()  # a worker blocked on a slow reader must see the stop
        self._wake()

    def abort(self) -> None:
        """Drop the connection without flushing (it would not close in time)."""
        if not self._lost:
            self._transport.abort()

    # -- running commands ------------------------------------------------------

    def _admit(self, args: Command) -> CommandSpec | bytes:
        """Count the command: its spec, or the reply that refuses it."""
        ctx = self._ctx
        ctx.total_commands += 1
        metrics = ctx.metrics
        spec = lookup(args[0])
        if spec is None:
            if metrics is not None:
                metrics.observe(_PROTOCOL, "unknown", 0.0, False)
            return unknown_command(args)
        rejected = check(spec, self._session, args)
        if rejected is not None:
            if metrics is not None:
                metrics.observe(_PROTOCOL, spec.name, 0.0, False)
                if rejected.startswith(b"-NOPERM"):
                    metrics.denied(_PROTOCOL)
            return rejected
        return spec

    def _timed_sync(self, spec: CommandSpec, args: Command) -> bytes:
        """Run a command that never waits, recording it in the metrics."""
        metrics = self._ctx.metrics
        if metrics is None:
            return run_sync(spec, self._session, args)
        start = time.perf_counter()
        reply = run_sync(spec, self._session, args)
        _record(metrics, spec, reply, time.perf_counter() - start)
        return reply

    async def _timed(self, spec: CommandSpec, args: Command) -> bytes:
        """Run any command, recording it in the metrics."""
        metrics = self._ctx.metrics
        if metrics is None:
            return await run_async(spec, self._session, args)
        start = time.perf_counter()
        reply = await run_async(spec, self._session, args)
        _record(metrics, spec, reply, time.perf_counter() - start)
        return reply

    async def _run(self, args: Command) -> bytes:
        admitted = self._admit(args)
        if isinstance(admitted, bytes):
            return admitted
        return await self._timed(admitted, args)

    # -- output ----------------------------------------------------------------

    def _send(self, reply: bytes) -> None:
        if self._lost:
            return
        out = self._out
        out.append(reply)
        if not self._queue or len(out) >= _MAX_PENDING_REPLIES:
            self._flush()  # nothing to batch with (or enough): write now
        elif not self._flush_scheduled:
            # More commands are queued: let this loop turn's replies accumulate.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out or self._lost:
            out.clear()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        transport = self._transport
        if not transport.is_closing():
            transport.write(data)
            # Over the high-water mark (writes paused): is it over the hard cap too?
            if self._writable is not None:
                cap = self._registry.limits.max_output_bytes
                if cap and transport.get_write_buffer_size() > cap:
                    self._drop_slow("output")

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _pause_reading(self) -> None:
        if not self._read_paused and not self._lost:
            self._read_paused = True
            self._transport.pause_reading()


def _record(metrics: NodeMetrics, spec: CommandSpec, reply: bytes, seconds: float) -> None:
    ok = reply[0] != 45  # "-": an error reply
    metrics.observe(_PROTOCOL, spec.name, seconds, ok)
    if not ok and reply.startswith(b"-NOPERM"):
        metrics.denied(_PROTOCOL)


def _address(info: Any) -> str:
    if isinstance(info, tuple) and len(info) >= 2:
        return f"{info[0]}:{info[1]}"
    return str(info or "")


class RespServer(ListeningServer):
    """A listening RESP front-end of one node; :meth:`close` it when done."""

    def __init__(self, server: asyncio.Server, registry: _Registry) -> None:
        self._server = server
        self._registry = registry
        self.context = registry.context
        self._remember_address(server)

    @property
    def connections(self) -> int:
        """Clients currently connected."""
        return len(self._registry.connections)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, let commands in progress finish, close every connection.

        Commands still queued behind the one in progress are dropped. After
        ``timeout`` seconds, workers are cancelled and connections aborted.
        """
        registry = self._registry
        if registry.closing:
            return
        registry.closing = True
        self._server.close()
        connections = list(registry.connections)
        for connection in connections:
            connection.shutdown()
        workers = [c.worker for c in connections if c.worker is not None]
        if workers:
            _, late = await asyncio.wait(workers, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        closed = [c.closed for c in connections]
        if closed:
            _, late_closes = await asyncio.wait(closed, timeout=timeout)
            if late_closes:
                for connection in connections:
                    connection.abort()
                await asyncio.wait(late_closes, timeout=timeout)
        await self._server.wait_closed()


async def start_resp_server(
    service: StoreService,
    host: str,
    port: int,
    *,
    metrics: NodeMetrics | None = None,
    authenticator: Authenticator | None = None,
    max_bulk: int | None = None,
    max_array: int = DEFAULT_MAX_ARRAY,
    client_limit: ClientLimit | None = None,
    tls: ssl.SSLContext | None = None,
    limits: ConnectionLimits | None = None,
) -> RespServer:
    """Listen on ``host``:``port`` (0: any free port) and answer RESP clients.

    With users in ``authenticator``, clients must AUTH (or HELLO ... AUTH)
    first; with ``tls``, they speak TLS only. ``max_bulk`` and
    ``max_array`` bound what one request may declare; more is a protocol error.
    Each command is recorded in ``metrics`` under protocol ``resp``. A client
    past ``client_limit`` is told ``-ERR max number of clients reached`` and
    disconnected. ``limits`` (default: ``client_limit``'s, else the defaults)
    are the per-connection timeouts and sizes; ``max_bulk`` defaults to their
    ``max_request_bytes``.
    """
    context = ServerContext(service, authenticator=authenticator, metrics=metrics)
    if limits is not None:
        chosen = limits
    else:
        chosen = client_limit.limits if client_limit is not None else ConnectionLimits()
    bulk_limit = chosen.max_request_bytes if max_bulk is None else max_bulk
    registry = _Registry(context, bulk_limit, max_array, client_limit, chosen)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(registry), host, port, ssl=tls)
    resp_server = RespServer(server, registry)
    context.port = resp_server.port
    return resp_server
