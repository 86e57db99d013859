"""Python clients of the native protocol, with failover across nodes.

::

    async with AsyncClient(["127.0.0.1:7001", "127.0.0.1:7002"]) as client:
        context = await client.put("cart:42", ["apple"])
        read = await client.get("cart:42")
        if read.conflict:
            merged = sorted({item for value in read.values for item in value})
            await client.put("cart:42", merged, read.context)

    with Client(["127.0.0.1:7001"]) as client:  # blocking; fine inside Jupyter too
        client.rpush("queue", "job-1", "job-2")

Every request goes to the first address that is not known to be down. A
refused, reset or silent connection (no reply within ``timeout``) marks that
address down for ``retry_after`` seconds and the request moves on to the next
one; so does a node that answers but is stopped. Addresses marked down are
tried last, so a request still succeeds if one of them has come back. When
every address fails the request raises :class:`ConnectionFailed`, which lists
each address and why.

With ``user`` and ``password`` each connection logs in first (a node with
users configured refuses anything else); with ``tls`` (an
:class:`ssl.SSLContext`, e.g. ``ssl.create_default_context(cafile="ca.crt")``)
connections speak TLS and check the node's certificate. A wrong password
raises :class:`AuthenticationFailed` at once (every node has the same users:
no failover), an operation beyond the user's role :class:`PermissionDenied`.

A write whose connection failed after it was sent may still have been applied;
the retry on the next node is then a second write. With contexts this is safe
(the retry carries the same context); a context-less retry may leave a sibling.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import attrs

from dynamo_toolkit.closing import AsyncClosing
from dynamo_toolkit_server.native.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_ERROR_ID,
    FrameDecoder,
    ProtocolError,
    Reply,
    encode_request,
    pack_args,
    parse_reply,
)

__all__ = [
    "AsyncClient",
    "AuthenticationFailed",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "InvalidRequest",
    "PairTooLarge",
    "PermissionDenied",
    "QuorumError",
    "ReadResult",
    "ServerError",
    "SiblingsError",
    "WrongType",
    "parse_address",
]

_T = TypeVar("_T")

#: Bytes a frame adds around its arguments (array header, request id, op name), at most.
_FRAME_OVERHEAD = 64
#: Seconds a closing connection may take to flush before it is aborted.
_CLOSE_SECONDS = 1.0


# -- errors ------------------------------------------------------------------------


class ClientError(Exception):
    """Base of every error the clients raise.

    ``remote_type`` is the server's error class name when the server reported
    the error, and ``details`` the whole error map it sent.
    """

    def __init__(
        self,
        message: str,
        *,
        remote_type: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.remote_type = remote_type
        self.details: dict[str, Any] = dict(details or {})


class QuorumError(ClientError):
    """Fewer than ``required`` replicas answered (``answered`` did) on the server."""

    def __init__(self, message: str, *, answered: int, required: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.answered = answered
        self.required = required
        self.operation: str | None = self.details.get("operation")
        self.contacted: int | None = self.details.get("contacted")
        #: The consistency level not reached, by name (``None`` for a count).
        self.level: str | None = self.details.get("level")
        #: Per datacenter short of the level (``"*"``: in all): ``(answered, needed)``.
        self.shortfall: dict[str, tuple[int, int]] = {
            dc: (int(counts[0]), int(counts[1]))
            for dc, counts in (self.details.get("shortfall") or {}).items()
        }


class PairTooLarge(ClientError, ValueError):
    """The key and encoded value together exceed the store's ``limit`` (bytes)."""

    def __init__(
        self, message: str, *, key_bytes: int, value_bytes: int, limit: int, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.key_bytes = key_bytes
        self.value_bytes = value_bytes
        self.limit = limit


class WrongType(ClientError, TypeError):
    """A list operation on a key holding a non-list value."""


class InvalidRequest(ClientError, ValueError):
    """The request was refused as malformed: bad key, value, context, quorum or argument."""


class ServerError(ClientError):
    """The server failed in a way that is not the request's fault, or broke the protocol."""


class SiblingsError(ClientError, ValueError):
    """:attr:`ReadResult.value` was asked for while concurrent siblings exist."""


class AuthenticationFailed(ClientError, PermissionError):
    """The node asks for credentials and got none, or wrong ones."""


class PermissionDenied(ClientError, PermissionError):
    """The user's role does not allow the operation."""


class ConnectionFailed(ClientError, ConnectionError):
    """No address could serve the request; ``attempts`` lists ``(address, reason)``."""

    def __init__(self, attempts: Sequence[tuple[str, str]]) -> None:
        self.attempts = list(attempts)
        tried = "; ".join(f"{address}: {reason}" for address, reason in self.attempts)
        super().__init__(f"no node could serve the request ({tried or 'no addresses'})")


_INVALID = {
    "InvalidRequestError",
    "UnsupportedKeyTypeError",
    "UnsupportedValueTypeError",
    "InvalidContextError",
    "InvalidQuorumError",
    "ConfigurationError",
}
# A node that is up but stopped refuses before touching data: safe to retry elsewhere.
_RETRY_ELSEWHERE = {"NodeUnavailableError"}


def _error_from(info: Mapping[str, Any]) -> ClientError:
    kind = str(info.get("type"))
    message = str(info.get("message", kind))
    common: dict[str, Any] = {"remote_type": kind, "details": info}
    try:
        if kind == "QuorumNotReachedError":
            return QuorumError(
                message, answered=int(info["answered"]), required=int(info["required"]), **common
            )
        if kind == "PairTooLargeError":
            return PairTooLarge(
                message,
                key_bytes=int(info["key_bytes"]),
                value_bytes=int(info["value_bytes"]),
                limit=int(info["limit"]),
                **common,
            )
    except (KeyError, TypeError, ValueError):
        return ServerError(f"{kind}: {message}", **common)
    if kind == "WrongTypeError":
        return WrongType(message, **common)
    if kind == "AuthenticationFailedError":
        return AuthenticationFailed(message, **common)
    if kind == "PermissionDeniedError":
        return PermissionDenied(message, **common)
    if kind in _INVALID:
        return InvalidRequest(message, **common)
    return ServerError(f"{kind}: {message}", **common)


class _Unreachable(Exception):
    """An address failed at the connection level; the request may go elsewhere."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- results -----------------------------------------------------------------------


@attrs.frozen
class ReadResult:
    """A read: every live sibling in ``values`` and one ``context`` covering them.

    Write back with ``context`` to supersede all of them. ``values`` is empty
    when the key is absent or deleted; the context then still covers the delete.
    """

    values: tuple[Any, ...]
    context: bytes

    @property
    def found(self) -> bool:
        """True if at least one live value exists."""
        return bool(self.values)

    @property
    def conflict(self) -> bool:
        """True if there are several concurrent values (siblings)."""
        return len(self.values) > 1

    @property
    def value(self) -> Any:
        """The single value; ``None`` if absent; :class:`SiblingsError` if there are siblings."""
        if len(self.values) > 1:
            raise SiblingsError(
                f"{len(self.values)} siblings: read .values and write back with .context"
            )
        return self.values[0] if self.values else None


# -- connections ---------------------------------------------------------------------


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` (IPv6 as ``"[::1]:7001"``); ``ValueError`` if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad address {address!r}: expected host:port")
    return host.strip("[]"), int(port)


class _Connection:
    """One TCP connection to one node; requests on it are pipelined."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_frame_bytes: int,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_frame_bytes)
        self._ids = itertools.count(1)  # 0 is the server's protocol-error id
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self.closed = False
        self._reader_task = asyncio.get_running_loop().create_task(self._read_replies())

    async def request(self, op: str, packed_args: bytes, timeout: float) -> Reply:
        """Send one request and wait for its reply; :class:`_Unreachable` on connection trouble."""
        if self.closed:
            raise _Unreachable("connection closed")
        request_id = next(self._ids)
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = reply
        try:
            self._writer.write(encode_request(request_id, op, packed_args))
            async with asyncio.timeout(timeout):
                await self._writer.drain()
                return await reply
        except TimeoutError:
            raise _Unreachable(f"no reply within {timeout} s") from None
        except OSError as exc:
            raise _Unreachable(_describe(exc)) from exc
        finally:
            self._pending.pop(request_id, None)

    async def _read_replies(self) -> None:
        failure: Callable[[], Exception] = partial(_Unreachable, "connection closed by the server")
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                for frame in self._decoder.feed(data):
                    reply = parse_reply(frame)
                    if reply.request_id == PROTOCOL_ERROR_ID and not reply.ok:
                        failure = partial(
                            ServerError,
                            f"the server refused the stream: {reply.result.get('message')}",
                            remote_type=str(reply.result.get("type")),
                            details=reply.result,
                        )
                        return
                    waiter = self._pending.get(reply.request_id)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(reply)
        except ProtocolError as exc:
            failure = partial(ServerError, f"malformed reply from the server: {exc}")
        except OSError as exc:
            failure = partial(_Unreachable, _describe(exc))
        finally:
            self._fail_all(failure)

    def _fail_all(self, failure: Callable[[], Exception]) -> None:
        # One exception object per waiter: each is raised in its own task.
        self.closed = True
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(failure())
        self._pending.clear()
        self._writer.close()

    async def close(self) -> None:
        """Close the connection; requests still waiting fail as unreachable."""
        self._fail_all(partial(_Unreachable, "connection closed by the client"))
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await self._reader_task
        try:
            async with asyncio.timeout(_CLOSE_SECONDS):  # a server not reading could stall it
                await self._writer.wait_closed()
        except TimeoutError:
            self._writer.transport.abort()
        except OSError:
            pass  # reset by the server: closed all the same


@attrs.define
class _Down:
    until: float
    reason: str


class AsyncClient(AsyncClosing):
    """An asyncio client of one or more nodes' native servers.

    ``r`` and ``w`` are the default quorums of every request (``None``: the
    store's), each a count or a consistency level by name (``"LOCAL_QUORUM"``;
    a level not reached raises :class:`QuorumError` with ``level`` and
    ``shortfall``); ``timeout`` bounds connecting and each request's wait, per
    address; an address that failed is tried first again after ``retry_after``
    seconds. Use one client from one event loop.
    """

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        r: int | str | None = None,
        w: int | str | None = None,
        timeout: float = 2.0,
        retry_after: float = 5.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        user: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        if isinstance(addresses, str):
            addresses = [addresses]  # a lone "host:port" would split into characters
        if not addresses:
            raise ValueError("a client needs at least one address")
        for address in addresses:
            parse_address(address)
        self.addresses = list(addresses)
        self.r = r
        self.w = w
        self.timeout = timeout
        self.retry_after = retry_after
        self.max_frame_bytes = max_frame_bytes
        self.user = user
        self._password = password
        self.tls = tls
        self._connections: dict[str, _Connection] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._down: dict[str, _Down] = {}
        self._closed = False

    # -- plumbing ------------------------------------------------------------------

    def down(self) -> dict[str, str]:
        """Addresses currently marked down, with the reason."""
        return {address: down.reason for address, down in self._down.items()}

    def _candidates(self) -> list[str]:
        now = time.monotonic()
        up = [a for a in self.addresses if a not in self._down or self._down[a].until <= now]
        resting = sorted(
            (a for a in self.addresses if a not in up), key=lambda a: self._down[a].until
        )
        return up + resting

    async def _connection(self, address: str) -> _Connection:
        lock = self._connecting.setdefault(address, asyncio.Lock())
        async with lock:  # concurrent requests share one connection attempt
            connection = self._connections.get(address)
            if connection is not None and not connection.closed:
                return connection
            host, port = parse_address(address)
            try:
                async with asyncio.timeout(self.timeout):
                    reader, writer = await asyncio.open_connection(
                        host, port, ssl=self.tls, server_hostname=host if self.tls else None
                    )
            except (OSError, TimeoutError) as exc:
                raise _Unreachable(_describe(exc)) from exc
            connection = _Connection(reader, writer, self.max_frame_bytes)
            if self.user is not None:
                await self._log_in(connection)
            self._connections[address] = connection
            return connection

    async def _log_in(self, connection: _Connection) -> None:
        """Send ``auth`` and wait for its answer before anything else is sent."""
        credentials = pack_args({"user": self.user, "password": self._password})
        try:
            reply = await connection.request("auth", credentials, self.timeout)
        except BaseException:
            await connection.close()
            raise
        if not reply.ok:
            await connection.close()
            raise _error_from(reply.result)

    async def _mark_down(self, address: str, reason: str, connection: _Connection | None) -> None:
        self._down[address] = _Down(time.monotonic() + self.retry_after, reason)
        # Only drop the connection that failed: a concurrent request may already
        # have opened a fresh one to this address.
        if connection is not None and self._connections.get(address) is connection:
            del self._connections[address]
        if connection is not None:
            await connection.close()

    async def call(self, op: str, args: Mapping[str, Any]) -> Any:
        """Send ``op`` with ``args``, failing over between addresses.

        Arguments that are ``None`` are left out (the server's default applies),
        except ``value``: storing nil is legal.
        """
        if self._closed:
            raise ClientError("the client is closed")
        try:
            packed = pack_args(
                {name: arg for name, arg in args.items() if arg is not None or name == "value"}
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidRequest(f"cannot encode the request: {exc}") from exc
        if len(packed) > self.max_frame_bytes - _FRAME_OVERHEAD:
            limit = self.max_frame_bytes
            raise InvalidRequest(f"request of {len(packed)} bytes exceeds the {limit}-byte frames")
        attempts: list[tuple[str, str]] = []
        for address in self._candidates():
            connection: _Connection | None = None
            try:
                connection = await self._connection(address)
                reply = await connection.request(op, packed, self.timeout)
            except _Unreachable as exc:
                attempts.append((address, str(exc)))
                await self._mark_down(address, str(exc), connection)
                continue
            if not reply.ok and reply.result.get("type") in _RETRY_ELSEWHERE:
                reason = str(reply.result.get("message", "node unavailable"))
                attempts.append((address, reason))
                await self._mark_down(address, reason, connection)
                continue
            self._down.pop(address, None)
            if not reply.ok:
                raise _error_from(reply.result)
            return reply.result
        raise ConnectionFailed(attempts)

    async def close(self) -> None:
        """Close every connection; the client cannot be used afterwards."""
        self._closed = True
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await connection.close()

    # -- operations ----------------------------------------------------------------

    def _r(self, r: int | str | None) -> int | str | None:
        return self.r if r is None else r

    def _w(self, w: int | str | None) -> int | str | None:
        return self.w if w is None else w

    async def get(self, key: str | bytes, r: int | str | None = None) -> ReadResult:
        """Read ``key``: all siblings and the context covering them."""
        result = await self.call("get", {"key": key, "r": self._r(r)})
        return ReadResult(tuple(result["values"]), result["context"])

    async def put(
        self,
        key: str | bytes,
        value: object,
        context: bytes | None = None,
        w: int | str | None = None,
    ) -> bytes:
        """Write ``value`` superseding what ``context`` covers; returns the new context."""
        result = await self.call(
            "put", {"key": key, "value": value, "context": context, "w": self._w(w)}
        )
        context_out: bytes = result["context"]
        return context_out

    async def delete(
        self, key: str | bytes, context: bytes | None = None, w: int | str | None = None
    ) -> bytes:
        """Delete ``key`` (without a context: everything a read sees); returns the delete's
        context."""
        result = await self.call(
            "delete", {"key": key, "context": context, "r": self.r, "w": self._w(w)}
        )
        context_out: bytes = result["context"]
        return context_out

    async def lpush(self, key: str | bytes, *values: object, w: int | str | None = None) -> int:
        """Push ``values`` onto the head, one by one (Redis LPUSH); returns the new length."""
        length: int = await self.call(
            "lpush", {"key": key, "values": list(values), "r": self.r, "w": self._w(w)}
        )
        return length

    async def rpush(self, key: str | bytes, *values: object, w: int | str | None = None) -> int:
        """Append ``values`` (Redis RPUSH); returns the new length."""
        length: int = await self.call(
            "rpush", {"key": key, "values": list(values), "r": self.r, "w": self._w(w)}
        )
        return length

    async def lpop(
        self, key: str | bytes, count: int | None = None, w: int | str | None = None
    ) -> Any:
        """Remove and return the head (``None`` if empty), or a list of up to ``count`` items."""
        return await self.call("lpop", {"key": key, "count": count, "r": self.r, "w": self._w(w)})

    async def rpop(
        self, key: str | bytes, count: int | None = None, w: int | str | None = None
    ) -> Any:
        """Remove and return the tail (``None`` if empty), or a list of up to ``count`` items."""
        return await self.call("rpop", {"key": key, "count": count, "r": self.r, "w": self._w(w)})

    async def lrange(
        self, key: str | bytes, start: int = 0, stop: int = -1, r: int | str | None = None
    ) -> list[Any]:
        """Items ``start`` to ``stop`` inclusive; negative indexes count from the end."""
        items: list[Any] = await self.call(
            "lrange", {"key": key, "start": start, "stop": stop, "r": self._r(r)}
        )
        return items

    async def llen(self, key: str | bytes, r: int | str | None = None) -> int:
        """The length of the list at ``key`` (0 if absent)."""
        length: int = await self.call("llen", {"key": key, "r": self._r(r)})
        return length

    async def ping(self) -> float:
        """Round-trip a ping; returns the seconds it took."""
        start = time.perf_counter()
        await self.call("ping", {})
        return time.perf_counter() - start

    async def info(self) -> dict[str, Any]:
        """The serving node's id, quorum settings and counters."""
        info: dict[str, Any] = await self.call("info", {})
        return info

    async def repair(self) -> dict[str, int]:
        """Run a full anti-entropy pass on the serving node; its report."""
        report: dict[str, int] = await self.call("repair", {})
        return report

    async def admin(self, op: str, **args: Any) -> dict[str, Any]:
        """A membership operation: ``cluster_state``, ``cluster_stage`` (node, action),
        ``cluster_plan`` or ``cluster_commit``; returns the node's answer."""
        answer: dict[str, Any] = await self.call(op, args)
        return answer


def _stop_loop(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread, client: AsyncClient
) -> None:
    # A module-level function, so the finalizer holds no reference to the Client.
    if loop.is_running() and thread is not threading.current_thread():
        # Connections close on their own loop first: a reader task left pending
        # when the loop goes would be reported as destroyed (at exit, with a
        # traceback) for a Client that was simply never closed.
        closing = asyncio.run_coroutine_threadsafe(client.close(), loop)
        with contextlib.suppress(Exception):
            closing.result(timeout=2 * _CLOSE_SECONDS)
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
    if thread is not threading.current_thread():
        thread.join(timeout=5)
    if not loop.is_running() and not loop.is_closed():
        loop.close()


class Client:
    """A blocking client with the methods of :class:`AsyncClient`.

    It runs a private event loop in a daemon thread, so it works from any
    thread, including one that runs its own loop (a Jupyter kernel). Use one
    ``Client`` from as many threads as you like; calls run on its loop.
    """

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        r: int | str | None = None,
        w: int | str | None = None,
        timeout: float = 2.0,
        retry_after: float = 5.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        user: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._async = AsyncClient(
            addresses,
            r=r,
            w=w,
            timeout=timeout,
            retry_after=retry_after,
            max_frame_bytes=max_frame_bytes,
            user=user,
            password=password,
            tls=tls,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dtk-client", daemon=True
        )
        self._thread.start()
        self._closed = False
        self._finalizer = weakref.finalize(self, _stop_loop, self._loop, self._thread, self._async)

    @property
    def addresses(self) -> list[str]:
        """The addresses the client fails over between."""
        return self._async.addresses

    def down(self) -> dict[str, str]:
        """Addresses currently marked down, with the reason."""
        return self._async.down()

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._closed:
            coro.close()
            raise ClientError("the client is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a Client cannot be called from its own event loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Close the connections and stop the private loop."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()  # closes the connections, then stops the loop

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def get(self, key: str | bytes, r: int | str | None = None) -> ReadResult:
        """Read ``key``: all siblings and the context covering them."""
        return self._run(self._async.get(key, r))

    def put(
        self,
        key: str | bytes,
        value: object,
        context: bytes | None = None,
        w: int | str | None = None,
    ) -> bytes:
        """Write ``value`` superseding what ``context`` covers; returns the new context."""
        return self._run(self._async.put(key, value, context, w))

    def delete(
        self, key: str | bytes, context: bytes | None = None, w: int | str | None = None
    ) -> bytes:
        """Delete ``key`` (without a context: everything a read sees); returns its context."""
        return self._run(self._async.delete(key, context, w))

    def lpush(self, key: str | bytes, *values: object, w: int | str | None = None) -> int:
        """Push ``values`` onto the head, one by one (Redis LPUSH); returns the new length."""
        return self._run(self._async.lpush(key, *values, w=w))

    def rpush(self, key: str | bytes, *values: object, w: int | str | None = None) -> int:
        """Append ``values`` (Redis RPUSH); returns the new length."""
        return self._run(self._async.rpush(key, *values, w=w))

    def lpop(self, key: str | bytes, count: int | None = None, w: int | str | None = None) -> Any:
        """Remove and return the head (``None`` if empty), or a list of up to ``count`` items."""
        return self._run(self._async.lpop(key, count, w))

    def rpop(self, key: str | bytes, count: int | None = None, w: int | str | None = None) -> Any:
        """Remove and return the tail (``None`` if empty), or a list of up to ``count`` items."""
        return self._run(self._async.rpop(key, count, w))

    def lrange(
        self, key: str | bytes, start: int = 0, stop: int = -1, r: int | str | None = None
    ) -> list[Any]:
        """Items ``start`` to ``stop`` inclusive; negative indexes count from the end."""
        return self._run(self._async.lrange(key, start, stop, r))

    def llen(self, key: str | bytes, r: int | str | None = None) -> int:
        """The length of the list at ``key`` (0 if absent)."""
        return self._run(self._async.llen(key, r))

    def ping(self) -> float:
        """Round-trip a ping; returns the seconds it took."""
        return self._run(self._async.ping())

    def info(self) -> dict[str, Any]:
        """The serving node's id, quorum settings and counters."""
        return self._run(self._async.info())

    def repair(self) -> dict[str, int]:
        """Run a full anti-entropy pass on the serving node; its report."""
        return self._run(self._async.repair())

    def admin(self, op: str, **args: Any) -> dict[str, Any]:
        """A membership operation (see :meth:`AsyncClient.admin`)."""
        return self._run(self._async.admin(op, **args))
