"""The native protocol server: operations on a :class:`StoreService`, over asyncio.

Operations and their arguments (``?`` marks optional ones) and results:

==========  ==================================  ========================================
op          args                                result
==========  ==================================  ========================================
``get``     key, r?                             ``{"values": [...], "context": bytes}``
``put``     key, value, context?, w?            ``{"context": bytes, "acknowledged": int}``
``delete``  key, context?, r?, w?               ``{"context", "acknowledged", "deleted"}``
``lpush``   key, values, r?, w?                 new length (``rpush`` alike)
``lpop``    key, count?, r?, w?                 item or nil; a list when count is given
``lrange``  key, start, stop, r?                items ``start..stop`` inclusive (Redis)
``llen``    key, r?                             length
``ping``    (none)                              ``"pong"``
``info``    (none)                              node id, quorum settings, stats
==========  ==================================  ========================================

``r`` and ``w`` are a count or a consistency level by name (``"LOCAL_QUORUM"``);
a quorum error for a level adds ``level`` and ``shortfall`` (per datacenter
short, ``[answered, needed]``).

Admin operations (``dtk cluster ...`` and ``dtk repair`` send them):
``repair``, ``cluster_state``, ``cluster_stage`` (node, action
leave|remove|keep), ``cluster_plan`` (with ``placement``: one line per datacenter, the replicas
per key wanted and placeable after the commit), ``cluster_commit``.

Authentication: with users configured, a connection's first request is
``auth`` (user, password), answered ``{"user": ..., "role": ...}``; a client
waits for that answer before sending anything else (requests on a connection
run concurrently). Until then every request but ``ping`` fails with
``AuthenticationFailedError``. Reads (``get``, ``lrange``, ``llen``, ``info``,
``cluster_state``, ``cluster_plan``) need the ``read`` role, writes
``readwrite``, and ``repair``, ``cluster_stage`` and ``cluster_commit``
``admin``; beyond the role a request fails with ``PermissionDeniedError``.

Each operation is one :class:`StoreService` call: this module only checks the
arguments and shapes the answer.

Keys are str or bytes. A ``delete`` without a context first reads the key, so it
removes every sibling the read sees (a context-less tombstone would only become
one more sibling). List operations follow Redis: ``lpush`` of ``[a, b]`` leaves
``b`` first, and popping the last item deletes the key. Unknown argument names
are refused, so a typo never silently falls back to a default.

Requests on one connection run concurrently and are answered as they finish.

Limits (see :class:`~dynamo_toolkit_server.client_limit.ConnectionLimits`):
a connection idle for ``idle_timeout`` is closed; one whose replies stay
unread for ``slow_client_timeout``, or pile up past ``max_output_bytes``, is
dropped; a frame over ``max_request_bytes`` is a protocol error (refused,
then the connection closes); requests read while ``max_pipelined`` are in
flight get a ``TooManyRequests`` error each, and the connection stays.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import attrs

from dynamo_toolkit.consistency import canonical_level
from dynamo_toolkit.errors import ConfigurationError, DynamoError
from dynamo_toolkit.values import Key
from dynamo_toolkit_server.auth import ANYONE, Authenticator, Role, User
from dynamo_toolkit_server.client_limit import ClientLimit, ConnectionLimits
from dynamo_toolkit_server.errors import AuthenticationFailedError, PermissionDeniedError
from dynamo_toolkit_server.listening import ListeningServer
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.native.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_ERROR_ID,
    PROTOCOL_VERSION,
    FrameDecoder,
    InvalidRequestError,
    ProtocolError,
    Request,
    encode_error,
    encode_reply,
    error_info,
    parse_request,
)
from dynamo_toolkit_server.service import MemberAction, StoreService

__all__ = [
    "OPERATIONS",
    "NativeConnection",
    "NativeServer",
    "RequestHandler",
    "start_native_server",
]

log = logging.getLogger(__name__)

#: Requests one connection may have running before the server stops reading it.
MAX_IN_FLIGHT = 256

#: The metrics label of this front-end.
_PROTOCOL = "native"

#: Seconds :meth:`NativeServer.close` lets a connection flush before aborting it.
_CLOSE_FLUSH_SECONDS = 2.0


class _Args:
    """Typed access to a request's argument map; remembers which names were read."""

    def __init__(self, op: str, args: Mapping[Any, Any]) -> None:
        self.op = op
        self._args = args
        self._used: set[str] = set()

    def _bad(self, message: str) -> InvalidRequestError:
        return InvalidRequestError(f"{self.op}: {message}")

    def raw(self, name: str, *, required: bool = True) -> Any:
        """The argument ``name`` as sent; ``None`` if optional and absent."""
        self._used.add(name)
        if name in self._args:
            return self._args[name]
        if required:
            raise self._bad(f"missing argument {name!r}")
        return None

    def key(self) -> Key:
        """The ``key`` argument (str or bytes)."""
        key = self.raw("key")
        if not isinstance(key, str | bytes):
            raise self._bad(f"key must be str or bytes, not {type(key).__name__}")
        return key

    def context(self) -> bytes | None:
        """The optional ``context`` (bytes from an earlier reply)."""
        context = self.raw("context", required=False)
        if context is not None and not isinstance(context, bytes):
            raise self._bad(f"context must be bytes, not {type(context).__name__}")
        return context or None

    def integer(self, name: str, *, required: bool = False, minimum: int | None = None) -> Any:
        """An int argument, at least ``minimum``; ``None`` if optional and absent."""
        value = self.raw(name, required=required)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._bad(f"{name} must be an integer, not {type(value).__name__}")
        if minimum is not None and value < minimum:
            raise self._bad(f"{name} must be at least {minimum}, got {value}")
        return value

    def quorum(self, name: str) -> int | str | None:
        """An optional ``r`` or ``w``: a count, or a consistency level by name."""
        value = self.raw(name, required=False)
        if isinstance(value, str):
            try:
                return canonical_level(value)
            except ConfigurationError as exc:
                raise self._bad(f"{name}: {exc}") from None
        count: int | None = self.integer(name, minimum=1)
        return count

    def items(self) -> list[Any]:
        """The ``values`` of a push: a non-empty array."""
        values = self.raw("values")
        if not isinstance(values, list) or not values:
            raise self._bad("values must be a non-empty array")
        return values

    def check_all_used(self) -> None:
        """Refuse argument names the operation does not know."""
        unknown = [name for name in self._args if name not in self._used]
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            raise self._bad(f"unknown argument(s) {names}")


_Operation = Callable[["RequestHandler", _Args], Awaitable[Any]]

#: Operation name -> implementation, filled in by :func:`_operation`.
OPERATIONS: dict[str, _Operation] = {}


def _operation(name: str) -> Callable[[_Operation], _Operation]:
    def register(function: _Operation) -> _Operation:
        OPERATIONS[name] = function
        return function

    return register


#: The least role each operation needs; anything else (admin operations) needs admin.
_ROLES = {
    "ping": Role.READ,
    "get": Role.READ,
    "lrange": Role.READ,
    "llen": Role.READ,
    "info": Role.READ,
    "cluster_state": Role.READ,
    "cluster_plan": Role.READ,
    "put": Role.READWRITE,
    "delete": Role.READWRITE,
    "lpush": Role.READWRITE,
    "rpush": Role.READWRITE,
    "lpop": Role.READWRITE,
    "rpop": Role.READWRITE,
}


class RequestHandler:
    """Runs decoded requests against a service; independent of any connection.

    The connection says who sends each request (``user``); ``None`` is a
    client that has not logged in where users are configured.
    """

    def __init__(
        self,
        service: StoreService,
        metrics: NodeMetrics | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.authenticator = authenticator or Authenticator()
        self.connections = 0

    def _permit(self, op: str, user: User | None) -> None:
        if user is None:
            if op == "ping":
                return
            raise AuthenticationFailedError(
                "authentication required: send auth (user, password) first"
            )
        needed = _ROLES.get(op, Role.ADMIN)
        if user.role < needed:
            if self.metrics is not None:
                self.metrics.denied("native")
            raise PermissionDeniedError(
                f"user {user.name} ({user.role.label}) may not run {op}: it needs {needed.label}"
            )

    async def log_in(self, request: Request) -> tuple[bytes, User | None]:
        """Answer an ``auth`` request: the reply frame, and the user if it logged in."""
        args = _Args(request.op, request.args)
        name, password = args.raw("user"), args.raw("password")
        args.check_all_used()
        if not isinstance(name, str) or not isinstance(password, str | bytes):
            error = InvalidRequestError("auth needs user (str) and password (str or bytes)")
            return encode_error(request.request_id, error_info(error)), None
        if not self.authenticator.enabled:
            # No users: everyone is the all-powerful default, whatever they send.
            return encode_reply(request.request_id, {"user": "default", "role": "admin"}), ANYONE
        secret = password.encode() if isinstance(password, str) else password
        user = await self.authenticator.authenticate(name, secret)
        if user is None:
            if self.metrics is not None:
                self.metrics.auth_failed("native")
            failure = AuthenticationFailedError("invalid username-password pair")
            return encode_error(request.request_id, error_info(failure)), None
        reply = {"user": user.name, "role": user.role.label}
        return encode_reply(request.request_id, reply), user

    async def handle(self, request: Request, user: User | None = ANYONE) -> bytes:
        """Run ``request`` as ``user``; return its encoded reply frame; never raises."""
        start = time.perf_counter()
        operation = OPERATIONS.get(request.op)
        ok = False
        try:
            if operation is None:
                known = ", ".join(sorted([*OPERATIONS, "auth"]))
                raise InvalidRequestError(f"unknown op {request.op!r}; known: {known}")
            self._permit(request.op, user)
            result = await operation(self, _Args(request.op, request.args))
            frame = encode_reply(request.request_id, result)
            ok = True
        except Exception as exc:
            if not isinstance(exc, DynamoError):
                log.exception("native %s failed unexpectedly", request.op)
            frame = encode_error(request.request_id, error_info(exc))
        if self.metrics is not None:
            # An unknown op is labelled "unknown": clients must not grow label sets.
            command = request.op if operation is not None else "unknown"
            self.metrics.observe("native", command, time.perf_counter() - start, ok)
        return frame

    # -- operations ------------------------------------------------------------

    @_operation("get")
    async def _get(self, args: _Args) -> Any:
        key, r = args.key(), args.quorum("r")
        args.check_all_used()
        result = await self.service.get(key, r=r)
        return {"values": list(result.values), "context": result.context}

    @_operation("put")
    async def _put(self, args: _Args) -> Any:
        key, value = args.key(), args.raw("value")
        context, w = args.context(), args.quorum("w")
        args.check_all_used()
        result = await self.service.put(key, value, context, w=w)
        return {"context": result.context, "acknowledged": result.acknowledged}

    @_operation("delete")
    async def _delete(self, args: _Args) -> Any:
        key, context = args.key(), args.context()
        r, w = args.quorum("r"), args.quorum("w")
        args.check_all_used()
        deletion = await self.service.delete_versions(key, context, r=r, w=w)
        return {
            "context": deletion.context,
            "acknowledged": deletion.acknowledged,
            "deleted": deletion.deleted,
        }

    async def _push(self, args: _Args, *, left: bool) -> Any:
        key, values = args.key(), args.items()
        r, w = args.quorum("r"), args.quorum("w")
        args.check_all_used()
        return await self.service.push(key, values, left=left, r=r, w=w)

    @_operation("lpush")
    async def _lpush(self, args: _Args) -> Any:
        return await self._push(args, left=True)

    @_operation("rpush")
    async def _rpush(self, args: _Args) -> Any:
        return await self._push(args, left=False)

    async def _pop(self, args: _Args, *, left: bool) -> Any:
        key = args.key()
        count: int | None = args.integer("count", minimum=0)
        r, w = args.quorum("r"), args.quorum("w")
        args.check_all_used()
        popped = await self.service.pop(key, count, left=left, r=r, w=w)
        if count is not None:
            return popped or []
        return popped[0] if popped else None

    @_operation("lpop")
    async def _lpop(self, args: _Args) -> Any:
        return await self._pop(args, left=True)

    @_operation("rpop")
    async def _rpop(self, args: _Args) -> Any:
        return await self._pop(args, left=False)

    @_operation("lrange")
    async def _lrange(self, args: _Args) -> Any:
        key = args.key()
        start: int = args.integer("start", required=True)
        stop: int = args.integer("stop", required=True)
        r = args.quorum("r")
        args.check_all_used()
        return await self.service.list_slice(key, start, stop, r=r)

    @_operation("llen")
    async def _llen(self, args: _Args) -> Any:
        key, r = args.key(), args.quorum("r")
        args.check_all_used()
        return await self.service.list_length(key, r=r)

    @_operation("ping")
    async def _ping(self, args: _Args) -> Any:
        args.check_all_used()
        return "pong"

    @_operation("repair")
    async def _repair(self, args: _Args) -> Any:
        args.check_all_used()
        return (await self.service.repair()).to_json()

    @_operation("cluster_state")
    async def _cluster_state(self, args: _Args) -> Any:
        args.check_all_used()
        return self.service.membership()

    @_operation("cluster_stage")
    async def _cluster_stage(self, args: _Args) -> Any:
        target, action = args.raw("node"), args.raw("action")
        args.check_all_used()
        actions = {action.value: action for action in MemberAction}
        if not isinstance(target, str) or action not in actions:
            raise InvalidRequestError("cluster_stage needs node (str) and action leave|remove|keep")
        return self.service.stage(target, actions[action])

    @_operation("cluster_plan")
    async def _cluster_plan(self, args: _Args) -> Any:
        args.check_all_used()
        plan = self.service.plan()
        return {**plan.to_json(), "placement": self.service.placement(plan)}

    @_operation("cluster_commit")
    async def _cluster_commit(self, args: _Args) -> Any:
        args.check_all_used()
        return self.service.commit().to_json()

    @_operation("info")
    async def _info(self, args: _Args) -> Any:
        args.check_all_used()
        status = self.service.status()
        return {
            "protocol": PROTOCOL_VERSION,
            **status.summary(),
            "max_pair_bytes": status.max_pair_bytes,
            "stats": attrs.asdict(status.stats),
            "connections": self.connections,
        }


class NativeConnection(asyncio.Protocol):
    """One client connection: decode frames, run each as a task, write replies.

    :class:`NativeServer` makes one per accepted socket; it can also be driven
    directly with any :class:`asyncio.Transport` (tests do, with a fake one).
    """

    def __init__(self, server: NativeServer) -> None:
        self._server = server
        self._decoder = FrameDecoder(server.max_frame_bytes)
        self._transport: asyncio.Transport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._closing = False
        self._writing_paused = False
        self._reading_paused = False
        self._stopped = False
        #: Who sends this connection's requests (``None``: not logged in yet).
        self.user: User | None = None if server.handler.authenticator.enabled else ANYONE
        self._loop = asyncio.get_running_loop()
        self._active_at = 0.0  # loop time of the last read, or of the last request ending
        self._idle_timer: asyncio.TimerHandle | None = None
        self._slow_timer: asyncio.TimerHandle | None = None
        self.lost: asyncio.Future[None] = self._loop.create_future()

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the server (closing at once if the server is closing)."""
        # uvloop's transports are not asyncio.Transport subclasses: cast, don't check.
        self._transport = cast(asyncio.Transport, transport)
        limit = self._server.client_limit
        if limit is not None and not limit.admit():
            info = {"type": "TooManyClients", "message": limit.message}
            self._transport.write(encode_error(PROTOCOL_ERROR_ID, info))
            self._closing = True
            self.lost.set_result(None)  # never counted: nothing to undo when it closes
            self._transport.close()
            return
        self._server._connections.add(self)
        self._server.handler.connections += 1
        if self._server.closing:
            self.close()
            return
        self._active_at = self._loop.time()
        idle = self._server.limits.idle_timeout
        if idle > 0:
            self._idle_timer = self._loop.call_later(idle, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection; requests still running finish, their replies dropped."""
        self._closing = True
        self._outbox.clear()
        self._cancel_timers()
        if not self.lost.done():
            self._server._connections.discard(self)
            self._server.handler.connections -= 1
            if self._server.client_limit is not None:
                self._server.client_limit.release()
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        """Start a task for every complete frame; a broken stream ends the connection."""
        if self._closing:
            return
        self._active_at = self._loop.time()
        try:
            for frame in self._decoder.feed(data):
                request = parse_request(frame)
                if len(self._tasks) >= self._server.limits.max_pipelined:
                    self._refuse_pipelined(request)
                else:
                    self._start(request)
        except ProtocolError as exc:
            self._protocol_error(exc)

    def pause_writing(self) -> None:
        """The client reads too slowly: stop reading its requests for now."""
        self._writing_paused = True
        self._update_reading()
        slow = self._server.limits.slow_client_timeout
        if slow > 0 and self._slow_timer is None and not self._closing:
            self._slow_timer = self._loop.call_later(slow, self._drop_slow, "timeout")

    def resume_writing(self) -> None:
        """The client caught up: read requests again (unless too many are in flight)."""
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        self._writing_paused = False
        self._update_reading()

    # -- limits ----------------------------------------------------------------------

    def _refuse_pipelined(self, request: Request) -> None:
        limits = self._server.limits
        info = {
            "type": "TooManyRequests",
            "message": limits.pipeline_message,
            "limit": limits.max_pipelined,
        }
        self._send(encode_error(request.request_id, info))
        self._server.counts.count_refused(_PROTOCOL, "pipeline")

    def _check_idle(self) -> None:
        """The idle timer: close an idle connection, or re-arm for when it could be."""
        self._idle_timer = None
        if self._closing:
            return
        idle = self._server.limits.idle_timeout
        now = self._loop.time()
        if self._tasks or self._outbox:
            deadline = now + idle  # a request in flight: not idle
        else:
            deadline = self._active_at + idle
            if now >= deadline:
                log.debug("closing native client %s: idle for %s s", self._peer(), idle)
                self._server.counts.count_closed(_PROTOCOL, "idle")
                self.close()
                return
        self._idle_timer = self._loop.call_at(deadline, self._check_idle)

    def _drop_slow(self, why: str) -> None:
        """Drop a client that does not read its replies (its output is discarded)."""
        self._slow_timer = None
        if self._closing:
            return
        limits = self._server.limits
        if why == "timeout":
            detail = f"replies unread for {limits.slow_client_timeout} s"
        else:
            detail = f"over {limits.max_output_bytes} bytes of replies waiting"
        log.info("dropping native client %s: %s", self._peer(), detail)
        self._server.counts.count_closed(_PROTOCOL, "slow")
        self.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._idle_timer, self._slow_timer):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._slow_timer = None

    def _peer(self) -> str:
        info = self._transport.get_extra_info("peername") if self._transport else None
        return f"{info[0]}:{info[1]}" if isinstance(info, tuple) and len(info) >= 2 else "?"

    # -- requests ------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        task = asyncio.get_running_loop().create_task(self._run(request))
        self._tasks.add(task)
        self._server._in_flight.add(task)
        task.add_done_callback(self._finished)
        self._update_reading()

    async def _run(self, request: Request) -> None:
        handler = self._server.handler
        if request.op == "auth":
            frame, user = await handler.log_in(request)
            if user is not None:
                self.user = user
            self._send(frame)
            return
        self._send(await handler.handle(request, self.user))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._server._in_flight.discard(task)
        if not self._tasks:
            self._active_at = self._loop.time()  # idle from now on
        if not task.cancelled() and task.exception() is not None:
            log.error("native request task failed", exc_info=task.exception())
        self._update_reading()

    def _update_reading(self) -> None:
        # Backpressure: a client that does not read its replies, or floods us
        # with requests, stops being read until it catches up.
        transport = self._transport
        if transport is None or self._closing:
            return
        in_flight = len(self._tasks)
        pause = (
            self._stopped
            or self._writing_paused
            or in_flight >= MAX_IN_FLIGHT
            or in_flight >= self._server.limits.max_pipelined
        )
        if pause and not self._reading_paused:
            transport.pause_reading()
            self._reading_paused = True
        elif not pause and self._reading_paused:
            transport.resume_reading()
            self._reading_paused = False

    # -- output ----------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        if self._closing:
            return  # the client is gone or broke the stream: drop late replies
        self._outbox.append(frame)
        if not self._flush_scheduled:
            # Replies finished in the same loop turn go out in one write.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self._transport
        if self._outbox and transport is not None and not transport.is_closing():
            transport.write(b"".join(self._outbox))
            # Over the high-water mark (writes paused): is it over the hard cap too?
            if self._writing_paused:
                cap = self._server.limits.max_output_bytes
                if cap and transport.get_write_buffer_size() > cap:
                    self._outbox.clear()
                    self._drop_slow("output")
        self._outbox.clear()

    def _protocol_error(self, exc: ProtocolError) -> None:
        if exc.too_large:
            self._server.counts.count_closed(_PROTOCOL, "too_large")
        self._send(encode_error(PROTOCOL_ERROR_ID, error_info(exc)))
        if self._server.handler.metrics is not None:
            self._server.handler.metrics.observe("native", "protocol_error", 0.0, False)
        self.close()

    def stop_reading(self) -> None:
        """Take no new requests (the server is closing)."""
        self._stopped = True
        self._update_reading()

    def close(self) -> None:
        """Write what is queued, then close; replies finishing later are dropped."""
        self._flush()
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, discarding unsent data."""
        self._closing = True
        if self._transport is not None:
            self._transport.abort()


class NativeServer(ListeningServer):
    """A listening native-protocol server; stop it with :meth:`close`."""

    def __init__(
        self,
        handler: RequestHandler,
        *,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        client_limit: ClientLimit | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.handler = handler
        self.max_frame_bytes = max_frame_bytes
        self.client_limit = client_limit
        #: Counts closures and refusals (a private one when no limit is shared).
        self.counts = client_limit if client_limit is not None else ClientLimit()
        #: The per-connection limits (``client_limit``'s unless given).
        self.limits = limits if limits is not None else self.counts.limits
        self.closing = False
        self._server: asyncio.Server | None = None
        self._connections: set[NativeConnection] = set()
        self._in_flight: set[asyncio.Task[None]] = set()

    async def _listen(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: NativeConnection(self), host, port, ssl=tls)
        self._remember_address(self._server)

    async def wait_idle(self) -> None:
        """Wait until no request is running (new ones may start afterwards)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        await asyncio.sleep(0)  # let the replies' scheduled flushes run

    async def close(self) -> None:
        """Stop accepting, finish requests in flight, send their replies, close connections."""
        if self.closing:
            return
        self.closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.stop_reading()
        await self.wait_idle()
        connections = list(self._connections)
        for connection in connections:
            connection.close()
        if connections:
            # A client that never reads could keep its buffer unflushed forever.
            _, stuck = await asyncio.wait(
                [c.lost for c in connections], timeout=_CLOSE_FLUSH_SECONDS
            )
            for connection in connections:
                if not connection.lost.done():
                    connection.abort()
            if stuck:
                await asyncio.wait(stuck, timeout=_CLOSE_FLUSH_SECONDS)
        if self._server is not None:
            await self._server.wait_closed()


async def start_native_server(
    service: StoreService,
    host: str,
    port: int,
    *,
    metrics: NodeMetrics | None = None,
    max_frame_bytes: int | None = None,
    client_limit: ClientLimit | None = None,
    authenticator: Authenticator | None = None,
    tls: ssl.SSLContext | None = None,
    limits: ConnectionLimits | None = None,
) -> NativeServer:
    """Serve ``service`` over the native protocol on ``host:port`` (port 0: any free one).

    ``metrics`` counts every request under protocol ``native``. With users in
    ``authenticator`` each connection logs in first; with ``tls``, TLS only.
    ``limits`` (default: ``client_limit``'s, else the defaults) are the
    per-connection timeouts and sizes; ``max_frame_bytes`` defaults to their
    ``max_request_bytes``.
    """
    if limits is None:
        limits = client_limit.limits if client_limit is not None else ConnectionLimits()
    server = NativeServer(
        RequestHandler(service, metrics, authenticator),
        max_frame_bytes=limits.max_request_bytes if max_frame_bytes is None else max_frame_bytes,
        client_limit=client_limit,
        limits=limits,
    )
    await server._listen(host, port, tls)
    return server
