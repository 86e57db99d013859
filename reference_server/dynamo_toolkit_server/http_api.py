"""A small HTTP/1.1 front-end of one node (keep-alive, no dependencies).

Routes:

``GET /kv/{key}``
    ``200`` with the value: ``bytes`` as ``application/octet-stream``, ``str`` as
    ``text/plain; charset=utf-8``, anything else as ``application/json``.
    ``300 Multiple Choices`` when concurrent siblings exist, with the JSON body
    ``{"siblings": [...], "context": "<base64>"}``. ``404`` when absent. Every
    answer carries ``X-Dtk-Context``, the base64 of the read's context (covering
    tombstones, so a PUT with it supersedes a delete). Query: ``?r=``.
``PUT /kv/{key}``
    The body is the value: parsed JSON if ``Content-Type`` is
    ``application/json``, otherwise the raw bytes. Send ``X-Dtk-Context`` from
    a GET to supersede what it saw (without it, concurrent versions become
    siblings). Query: ``?w=``. ``204`` with the new version's ``X-Dtk-Context``.
``DELETE /kv/{key}``
    ``204``. With ``X-Dtk-Context`` it supersedes what that read saw; without,
    the server reads first and deletes every sibling it finds. Query ``?r=``, ``?w=``.

``?r=`` and ``?w=`` take a count or a consistency level by name
(``?r=LOCAL_QUORUM&w=EACH_QUORUM``); ``?consistency=LEVEL`` sets both that the
method uses (an explicit ``r``/``w`` wins). A level not reached is a ``503``
whose message names it and the datacenters short.
``GET /health``
    ``200 {"status": "ok", "datacenter": ..., "rack": ..., "node": ..., ...}``
    (the membership view lists every member's datacenter and rack too); ``503`` with status
    ``"stopped"`` when the node is not running. With users configured, a
    request without credentials gets only ``{"status": ...}`` (enough for a
    liveness probe, nothing about the cluster).
``GET /metrics``
    Prometheus text format.

Authentication: with users configured (``[[users]]``), every request but a
bare ``/health`` sends HTTP Basic credentials (``Authorization: Basic
base64(user:password)``, as ``curl -u user:pass`` does); without them, or with
wrong ones, the answer is ``401`` with ``WWW-Authenticate: Basic``. Reads and
``/metrics`` need the ``read`` role, ``PUT`` and ``DELETE`` ``readwrite``;
beyond the user's role the answer is ``403``.

Keys are the rest of the path after ``/kv/``, percent-decoded to bytes
(``/kv/a%2Fb`` and ``/kv/a/b`` are both the key ``a/b``).

JSON and bytes: JSON has no bytes, so a bytes value inside a JSON document (a
sibling, or an item of a list value) is written as ``{"$base64": "<base64>"}``;
a PUT with ``application/json`` turns such an object back into bytes. Map keys
that are not strings are written as strings (bytes keys as base64).

Errors have a JSON body ``{"error": <name>, "message": ..., ...}``: ``400``
malformed request, bad query, context or JSON; ``404`` unknown path; ``405``
wrong method (with ``Allow``); ``401`` no or wrong credentials; ``403``
beyond the user's role; ``408`` a request begun but not finished within
``slow_client_timeout``; ``413`` body over ``max_request_bytes`` (16 MiB),
or key and value over the store's pair limit (with ``key_bytes``,
``value_bytes``, ``limit``); ``431`` request head over 16 KiB; ``503`` quorum
not reached (with ``answered`` and ``required``) or node stopped; ``500``
anything unexpected. A malformed request closes its connection after the
answer; other errors keep it open.

A keep-alive connection that sends nothing for ``idle_timeout`` is closed
without an answer; one that does not take its answer within
``slow_client_timeout`` is dropped. 408, 413 and 431 answers and those
closes are counted in ``dtk_clients_closed_total`` (reasons ``slow``,
``too_large``, ``idle``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import ssl
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import attrs

from dynamo_toolkit.consistency import canonical_level
from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit_server.auth import ANYONE, Authenticator, Role, User
from dynamo_toolkit_server.client_limit import (
    DEFAULT_MAX_REQUEST_BYTES,
    ClientLimit,
    ConnectionLimits,
)
from dynamo_toolkit_server.errors import ErrorKind, describe
from dynamo_toolkit_server.listening import ListeningServer
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.service import StoreService

__all__ = [
    "CONTEXT_HEADER",
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "HttpError",
    "HttpServer",
    "Request",
    "from_json",
    "parse_head",
    "start_http_server",
    "to_json",
]

log = logging.getLogger(__name__)

#: Largest request line plus headers (and chunked-encoding line) accepted.
MAX_HEAD_BYTES = 16 * 1024
#: Largest request body accepted by default (``max_request_bytes``).
MAX_BODY_BYTES = DEFAULT_MAX_REQUEST_BYTES
#: The header carrying a base64 context in both directions.
CONTEXT_HEADER = "X-Dtk-Context"
#: Key of the JSON object standing for a bytes value.
BASE64_MARKER = "$base64"

#: How long, and how much, a refused client may still send before the close.
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 4 * 1024 * 1024

_METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_QUERY_NAMES = {
    "GET": {"r", "consistency"},
    "PUT": {"w", "consistency"},
    "DELETE": {"r", "w", "consistency"},
}
_PROTOCOL = "http"  # the metrics label of this front-end
#: The statuses of a refusal that ``dtk_clients_closed_total`` counts, by reason.
_CLOSE_REASON = {408: "slow", 413: "too_large", 431: "too_large"}


class HttpError(Exception):
    """An HTTP error answer: ``status``, a message, extra JSON fields, maybe ``close``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        name: str | None = None,
        close: bool = False,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.name = name or HTTPStatus(status).phrase.replace(" ", "")
        self.close = close
        self.headers = dict(headers or {})
        self.fields = fields


@attrs.frozen
class Request:
    """A parsed request head (headers lower-cased) plus its body."""

    method: str
    path: str
    query: str
    version: tuple[int, int]
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept after this request."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version >= (1, 1):
            return "close" not in tokens
        return "keep-alive" in tokens


def parse_head(head: bytes) -> Request:
    """Parse a request line and headers (ending with an empty line); :class:`HttpError` 400."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line", close=True)
    method, target, version_text = parts
    version = _VERSION.fullmatch(version_text)
    if not _TOKEN.fullmatch(method) or version is None:
        raise HttpError(400, "malformed request line", close=True)
    major, minor = int(version[1]), int(version[2])
    if major != 1:
        raise HttpError(505, f"HTTP/{major}.{minor} is not supported", close=True)
    if _BAD_VALUE_CHARS.search(target) or "\t" in target:
        raise HttpError(400, "control characters in the request target", close=True)
    if target.startswith(("http://", "https://")):  # absolute form: keep only the path
        slash = target.find("/", target.index("//") + 2)
        target = target[slash:] if slash >= 0 else "/"
    if not target.startswith("/"):
        raise HttpError(400, "the request target must be a path", close=True)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue  # the empty lines that end the head
        if line[0] in " \t":
            raise HttpError(400, "folded header lines are not accepted", close=True)
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise HttpError(400, f"malformed header line {line[:40]!r}", close=True)
        value = value.strip(" \t")
        if _BAD_VALUE_CHARS.search(value):
            raise HttpError(400, f"control characters in header {name!r}", close=True)
        name = name.lower()
        if name in headers:
            if name == "content-length" and headers[name] != value:
                # Two lengths would let a proxy and us disagree on the framing.
                raise HttpError(400, "conflicting Content-Length headers", close=True)
            if name != "content-length":
                headers[name] = f"{headers[name]}, {value}"
            continue
        headers[name] = value
    path, _, query = target.partition("?")
    return Request(method, path, query, (major, minor), headers)


# -- JSON with bytes -------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def to_json(value: Any) -> Any:
    """``value`` with bytes as ``{"$base64": ...}`` and map keys as strings, for json.dumps."""
    if isinstance(value, bytes | bytearray):
        return {BASE64_MARKER: _b64(bytes(value))}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, bytes):
                text = _b64(key)
            elif isinstance(key, str):
                text = key
            else:
                text = json.dumps(key)  # 1 -> "1", True -> "true", as json.dumps would
            out[text] = to_json(item)
        return out
    return value


def from_json(value: Any) -> Any:
    """Undo :func:`to_json`'s bytes marker on a parsed JSON document."""
    if isinstance(value, list):
        return [from_json(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(BASE64_MARKER), str):
            try:
                return base64.b64decode(value[BASE64_MARKER], validate=True)
            except binascii.Error as exc:
                raise HttpError(400, f"bad base64 in {BASE64_MARKER}: {exc}") from exc
        return {key: from_json(item) for key, item in value.items()}
    return value


def _json_body(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


# -- the server ----------------------------------------------------------------------------


@attrs.define
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    close: bool = False


def _error_response(error: HttpError) -> _Response:
    document = {"error": error.name, "message": error.message, **error.fields}
    return _Response(
        error.status, _json_body(document), "application/json", error.headers, error.close
    )


#: The HTTP status of each error kind (the JSON body carries the details).
_STATUS = {
    ErrorKind.QUORUM: 503,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.INVALID: 400,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.AUTH: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.WRONG_TYPE: 500,  # no HTTP route reads lists; kept as it always was
    ErrorKind.STORE: 500,
    ErrorKind.INTERNAL: 500,
}


def _service_error(exc: Exception) -> HttpError:
    """Map a store error to its HTTP status and JSON fields."""
    details = describe(exc)
    if details.kind is ErrorKind.INTERNAL:
        log.exception("HTTP request failed unexpectedly", exc_info=exc)
    return HttpError(_STATUS[details.kind], details.message, name=details.name, **details.fields)


_PROTOCOL = "http"


def _unauthorized(message: str) -> HttpError:
    return HttpError(
        401, message, name="Unauthorized", headers={"WWW-Authenticate": 'Basic realm="dtk"'}
    )


class _Connection:
    """Book-keeping for one client connection."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.idle = True


class HttpServer(ListeningServer):
    """A listening HTTP server of one node; stop it with :meth:`close`.

    ``idle_timeout`` closes keep-alive connections that send nothing for that
    many seconds (0: never); ``slow_client_timeout`` bounds how long the rest
    of a request head, then its body, may take to arrive (``408``), and how
    long a client may take to accept its answer. Both come from ``limits``
    (default: ``client_limit``'s, else the defaults) unless given.
    """

    def __init__(
        self,
        service: StoreService,
        metrics: NodeMetrics,
        *,
        idle_timeout: float | None = None,
        client_limit: ClientLimit | None = None,
        authenticator: Authenticator | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.authenticator = authenticator or Authenticator()
        self.client_limit = client_limit
        #: Counts closures (a private one when no limit is shared).
        self.counts = client_limit if client_limit is not None else ClientLimit()
        self.limits = limits if limits is not None else self.counts.limits
        self.idle_timeout = self.limits.idle_timeout if idle_timeout is None else idle_timeout
        self.slow_timeout = self.limits.slow_client_timeout
        self.max_body = self.limits.max_request_bytes
        self.closing = False
        self.scheme = "http"
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _listen(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_HEAD_BYTES, ssl=tls
        )
        self.scheme = "https" if tls is not None else "http"
        self._remember_address(self._server)

    @property
    def url(self) -> str:
        """``http://host:port`` (``https`` with TLS)."""
        return f"{self.scheme}://{self.address}"

    async def close(self) -> None:
        """Stop accepting, let requests being handled finish, close every connection."""
        if self.closing:
            return
        self.closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            if connection.idle:
                connection.writer.close()  # its read fails and the handler returns
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- connections ---------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limit = self.client_limit
        if limit is not None and not limit.admit():
            await self._turn_away(writer, limit.message)
            return
        try:
            await self._serve_admitted(reader, writer)
        finally:
            if limit is not None:
                limit.release()

    async def _turn_away(self, writer: asyncio.StreamWriter, message: str) -> None:
        """Answer 503 at once (no request read) and hang up: too many clients."""
        document = {"error": "TooManyClients", "message": message}
        refusal = _Response(503, _json_body(document), "application/json", {}, True)
        writer.write(self._render(refusal, keep_alive=False))
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(_LINGER_SECONDS):
                await writer.drain()
        writer.close()

    async def _serve_admitted(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = _Connection(writer)
        self._connections.add(connection)
        try:
            if self.closing:
                return
            await self._serve_requests(reader, connection)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away or stayed silent: nobody to answer
        finally:
            self._connections.discard(connection)
            self._tasks.discard(task)
            writer.close()
            try:
                # A client that does not read could hold the close forever.
                async with asyncio.timeout(_LINGER_SECONDS):
                    await writer.wait_closed()
            except TimeoutError:
                writer.transport.abort()
            except Exception:
                pass  # the peer reset the connection: it is closed either way

    async def _serve_requests(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        writer = connection.writer
        idle, slow = self.idle_timeout or None, self.slow_timeout or None  # 0: never
        too_slow = HttpError(408, f"request not received within {slow} s", close=True)
        while not self.closing:
            connection.idle = True
            try:
                async with asyncio.timeout(idle):  # keep-alive: waiting for a request
                    first = await reader.readexactly(1)
            except TimeoutError:
                log.debug("closing HTTP client: idle for %s s", idle)
                self.counts.count_closed(_PROTOCOL, "idle")
                return
            try:
                async with asyncio.timeout(slow):  # begun: the rest must come in time
                    head = first + await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                await self._refuse(
                    reader,
                    writer,
                    HttpError(431, f"request head over {MAX_HEAD_BYTES} bytes", close=True),
                )
                return
            except TimeoutError:
                await self._refuse(reader, writer, too_slow)
                return
            connection.idle = False
            head = head.lstrip(b"\r\n")  # tolerate stray CRLFs between requests
            if not head:
                continue
            try:
                request = parse_head(head)
                try:
                    async with asyncio.timeout(slow):  # a trickled body is cut off too
                        body = await self._read_body(reader, writer, request)
                except TimeoutError:
                    raise too_slow from None
                request = attrs.evolve(request, body=body)
            except HttpError as error:
                connection.idle = True  # closable while lingering
                await self._refuse(reader, writer, error)
                return
            response = await self._respond(request)
            keep = request.keep_alive and not response.close and not self.closing
            writer.write(self._render(response, keep))
            try:
                async with asyncio.timeout(slow):  # a client must take its answer
                    await writer.drain()
            except TimeoutError:
                log.info("dropping HTTP client: answer not taken within %s s", slow)
                self.counts.count_closed(_PROTOCOL, "slow")
                writer.transport.abort()
                return
            if not keep:
                return

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, error: HttpError
    ) -> None:
        """Answer an unreadable request and close: its framing can no longer be trusted."""
        reason = _CLOSE_REASON.get(error.status)
        if reason is not None:
            self.counts.count_closed(_PROTOCOL, reason)
        writer.write(self._render(_error_response(error), keep_alive=False))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            # Half-close, then swallow what the client is still sending for a
            # moment: closing with unread input sends a reset, which can destroy
            # the answer before the client reads it.
            if writer.can_write_eof():
                writer.write_eof()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_LINGER_SECONDS):
                    discarded = 0
                    while discarded < _LINGER_BYTES and (data := await reader.read(65536)):
                        discarded += len(data)

    async def _read_body(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request
    ) -> bytes:
        headers = request.headers
        if "transfer-encoding" in headers:
            if "content-length" in headers:
                raise HttpError(400, "both Transfer-Encoding and Content-Length", close=True)
            if headers["transfer-encoding"].lower() != "chunked":
                raise HttpError(501, "only chunked transfer coding is supported", close=True)
            await self._continue(writer, request)
            return await self._read_chunked(reader)
        length_text = headers.get("content-length")
        if length_text is None:
            return b""
        if not length_text.isdigit() or not length_text.isascii():
            raise HttpError(400, "malformed Content-Length", close=True)
        length = int(length_text)
        if length > self.max_body:
            raise HttpError(
                413,
                f"body of {length} bytes exceeds {self.max_body}",
                name="BodyTooLarge",
                close=True,
                body_bytes=length,
                limit=self.max_body,
            )
        if length == 0:
            return b""
        await self._continue(writer, request)
        return await reader.readexactly(length)

    async def _continue(self, writer: asyncio.StreamWriter, request: Request) -> None:
        # curl and others wait for this before sending a large body.
        expects = request.headers.get("expect", "").lower() == "100-continue"
        if expects and request.version >= (1, 1):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            line = await self._line(reader)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError(400, "malformed chunk size", close=True) from None
            if size < 0 or not size_text.isalnum():
                raise HttpError(400, "malformed chunk size", close=True)
            if size == 0:
                break
            if len(body) + size > self.max_body:
                raise HttpError(
                    413,
                    f"body exceeds {self.max_body} bytes",
                    name="BodyTooLarge",
                    close=True,
                    limit=self.max_body,
                )
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise HttpError(400, "chunk not followed by CRLF", close=True)
        trailers = 0
        while (line := await self._line(reader)) != b"\r\n":
            trailers += len(line)  # trailers are read and ignored, within the head limit
            if trailers > MAX_HEAD_BYTES:
                raise HttpError(431, "trailers too large", close=True)
        return bytes(body)

    @staticmethod
    async def _line(reader: asyncio.StreamReader) -> bytes:
        try:
            return await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            raise HttpError(400, "chunked-encoding line too long", close=True) from None

    @staticmethod
    def _render(response: _Response, keep_alive: bool) -> bytes:
        status = HTTPStatus(response.status)
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
        if response.content_type is not None:
            lines.append(f"Content-Type: {response.content_type}")
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        if response.status != 204:  # a 204 must not announce a length (RFC 9110)
            lines.append(f"Content-Length: {len(response.body)}")
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body

    # -- routes -------------------------------------------------------------------------

    async def _respond(self, request: Request) -> _Response:
        try:
            user = await self._user(request)
            if request.path.startswith("/kv/"):
                needed = Role.READ if request.method == "GET" else Role.READWRITE
                self._permit(user, needed, request)
                return await self._kv(request)
            if request.path == "/health":
                self._only(request, "GET")
                if user is None:
                    return self._bare_health()
                return self._health()
            if request.path == "/metrics":
                self._only(request, "GET")
                self._permit(user, Role.READ, request)
                return _Response(200, self.metrics.render(), _METRICS_TYPE)
            raise HttpError(404, f"no resource at {request.path}")
        except HttpError as error:
            return _error_response(error)
        except Exception as exc:  # one bad request must not take the connection down
            return _error_response(_service_error(exc))

    async def _user(self, request: Request) -> User | None:
        """Who sends ``request``: ``None`` only for a credential-less bare ``/health``.

        Without users every request acts as an admin.
        """
        if not self.authenticator.enabled:
            return ANYONE
        header = request.headers.get("authorization")
        if header is None:
            if request.path == "/health":
                return None
            raise _unauthorized("this node asks for credentials (HTTP Basic auth)")
        scheme, _, encoded = header.partition(" ")
        try:
            if scheme.lower() != "basic":
                raise ValueError
            name, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
            if not sep:
                raise ValueError
        except (ValueError, binascii.Error):
            raise _unauthorized("Authorization must be Basic base64(user:password)") from None
        user = await self.authenticator.authenticate(name.decode("utf-8", "replace"), password)
        if user is None:
            self.metrics.auth_failed(_PROTOCOL)
            raise _unauthorized("invalid username-password pair")
        return user

    def _permit(self, user: User | None, needed: Role, request: Request) -> None:
        if user is None:
            raise _unauthorized("this node asks for credentials (HTTP Basic auth)")
        if user.role < needed:
            self.metrics.denied(_PROTOCOL)
            raise HttpError(
                403,
                f"user {user.name} ({user.role.label}) may not {request.method} "
                f"{request.path.split('/')[1]}: that needs {needed.label}",
                name="Forbidden",
            )

    def _bare_health(self) -> _Response:
        running = self.service.status().running
        document = {"status": "ok" if running else "stopped"}
        return _Response(200 if running else 503, _json_body(document), "application/json")

    @staticmethod
    def _only(request: Request, *methods: str) -> None:
        if request.method not in methods:
            allow = ", ".join(methods)
            raise HttpError(
                405, f"{request.method} not allowed here; use {allow}", headers={"Allow": allow}
            )

    def _health(self) -> _Response:
        status = self.service.status()
        hints = self.service.pending_hints()
        document = {
            "status": "ok" if status.running else "stopped",
            **status.summary(),
            "hints_pending": hints.total,
            "hints_by_owner": hints.by_owner,
            "membership": self.service.membership(),
        }
        return _Response(200 if status.running else 503, _json_body(document), "application/json")

    async def _kv(self, request: Request) -> _Response:
        self._only(request, "GET", "PUT", "DELETE")
        key = unquote_to_bytes(request.path[len("/kv/") :])
        if not key:
            raise HttpError(400, "empty key")
        quorums = self._quorums(request)
        context = self._context(request)
        command = request.method.lower()
        start = time.perf_counter()
        ok = False
        try:
            if request.method == "GET":
                response = await self._get(key, quorums.get("r"))
            elif request.method == "PUT":
                value = self._value(request)
                result = await self.service.put(key, value, context, w=quorums.get("w"))
                response = _Response(204, headers={CONTEXT_HEADER: _b64(result.context)})
            else:
                response = await self._delete(key, context, quorums.get("r"), quorums.get("w"))
            ok = True
            return response
        except HttpError:
            raise
        except Exception as exc:
            raise _service_error(exc) from exc
        finally:
            self.metrics.observe("http", command, time.perf_counter() - start, ok)

    @staticmethod
    def _quorums(request: Request) -> dict[str, int | str]:
        allowed = _QUERY_NAMES[request.method]
        quorums: dict[str, int | str] = {}
        try:
            pairs = parse_qsl(request.query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise HttpError(400, f"malformed query string {request.query!r}") from None
        for name, value in pairs:
            if name not in allowed:
                raise HttpError(
                    400, f"unknown query parameter {name!r}; allowed: {sorted(allowed)}"
                )
            if value.isascii() and value.isdigit():
                if int(value) < 1:
                    raise HttpError(400, f"{name} must be a positive integer, got {value!r}")
                quorum: int | str = int(value)
            else:
                try:
                    quorum = canonical_level(value)
                except ConfigurationError as exc:
                    raise HttpError(400, f"{name}: {exc}") from None
            if name == "consistency":  # the level of whatever the method waits for
                for implied in allowed - {"consistency"}:
                    quorums.setdefault(implied, quorum)
            else:
                quorums[name] = quorum
        return quorums

    @staticmethod
    def _context(request: Request) -> bytes | None:
        text = request.headers.get(CONTEXT_HEADER.lower(), "")
        if not text:
            return None
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise HttpError(400, f"{CONTEXT_HEADER} is not base64: {exc}") from exc

    @staticmethod
    def _value(request: Request) -> Any:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return request.body
        try:
            document = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise HttpError(400, f"body is not valid JSON: {exc}") from exc
        return from_json(document)

    async def _get(self, key: bytes, r: int | str | None) -> _Response:
        result = await self.service.get(key, r=r)
        headers = {CONTEXT_HEADER: _b64(result.context)}
        document: dict[str, Any]
        if not result.values:
            document = {"error": "NotFound", "message": "no value for this key"}
            return _Response(404, _json_body(document), "application/json", headers)
        if len(result.values) > 1:
            document = {
                "siblings": [to_json(value) for value in result.values],
                "context": _b64(result.context),
            }
            return _Response(300, _json_body(document), "application/json", headers)
        value = result.values[0]
        if isinstance(value, bytes):
            return _Response(200, value, "application/octet-stream", headers)
        if isinstance(value, str):
            return _Response(200, value.encode("utf-8"), "text/plain; charset=utf-8", headers)
        return _Response(200, _json_body(to_json(value)), "application/json", headers)

    async def _delete(
        self, key: bytes, context: bytes | None, r: int | str | None, w: int | str | None
    ) -> _Response:
        deletion = await self.service.delete_versions(key, context, r=r, w=w)
        return _Response(204, headers={CONTEXT_HEADER: _b64(deletion.context)})


async def start_http_server(
    service: StoreService,
    host: str,
    port: int,
    *,
    metrics: NodeMetrics | None = None,
    idle_timeout: float | None = None,
    client_limit: ClientLimit | None = None,
    authenticator: Authenticator | None = None,
    tls: ssl.SSLContext | None = None,
    limits: ConnectionLimits | None = None,
) -> HttpServer:
    """Serve ``service`` over HTTP on ``host:port`` (port 0: any free one).

    ``metrics`` counts requests under protocol ``http`` and is what ``/metrics``
    shows; without it the server keeps its own for the node. With users in
    ``authenticator`` requests need Basic credentials; with ``tls``, HTTPS only.
    ``limits`` (default: ``client_limit``'s) are the timeouts and body size;
    ``idle_timeout`` overrides theirs.
    """
    server = HttpServer(
        service,
        metrics or NodeMetrics(service.node, client_limit),
        idle_timeout=idle_timeout,
        client_limit=client_limit,
        authenticator=authenticator,
        limits=limits,
    )
    await server._listen(host, port, tls)
    return server
