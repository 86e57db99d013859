"""Transport ``tcp``: asyncio streams between processes, msgpack framing.

One connection per peer, opened on first use and reused; a node's requests
and the peer's replies share it. Frames written in the same loop turn go out
in one ``write`` (batching). A lost connection fails the requests waiting on
it at once; the next message reconnects, after an exponential backoff.

Every frame is a msgpack array ``[kind, request_id, body]``; the first frame on
a connection is ``[HELLO, 0, sender_id]`` so the receiver knows who speaks.

Peers may have to prove they belong to the cluster, in two ways that combine:

* ``cluster_secret``: a mutual challenge-response before any other frame.
  The connecting end sends ``[HELLO, 0, [sender_id, nonce_c]]``; the
  listener answers ``[AUTH, 0, [listener_id, nonce_s, proof_l]]``; the
  connector checks ``proof_l`` and answers ``[AUTH, 0, proof_c]``. Each proof
  is an HMAC-SHA256 keyed by the secret over both ids and both nonces, with a
  label naming the end that made it (:mod:`.peer_auth`), so neither can be
  replayed as the other and the secret never crosses the wire. The listener
  delivers nothing before ``proof_c`` checks out; the connector sends nothing
  but the handshake before ``proof_l`` does. A wrong or missing proof, or no
  handshake within ``connect_timeout``, closes the connection (the listener
  first says why in ``[ERROR, 0, reason]``).
* ``server_tls`` / ``client_tls``: TLS on the peer port; with a server
  context that requires client certificates, mutual TLS.

:attr:`TcpTransport.auth_failures` counts the connections refused either way
(see its docstring for exactly which). Without a secret or TLS the wire
format and the hot path are as they always were.

Traffic may be compressed (``compression``, as Cassandra's
``internode_compression``): ``"none"`` (the default: the wire and the hot
path as before), ``"dc"`` (only links between nodes of different
datacenters, per each member's :attr:`~dynamo_toolkit.node_info.NodeInfo.datacenter`;
an empty or unknown datacenter is its own, equal to another empty one) or
``"all"``. The sender decides per connection, when it learns who is at the
other end; a compressed frame is ``[kind + 16, request_id, header + data]``:
the kind with :data:`COMPRESSED` added, and a body of one codec header byte
(those of the ``compressed`` storage engine: ``1`` snappy, ``2`` lz4, ``3``
zstd) followed by the compressed msgpack encoding of the plain frame's body.
Every node reads compressed frames whatever its own setting, so only the
sender's setting matters; a node of an older version closes the connection
on the first one (a protocol error). Bodies shorter than
``compression_threshold`` bytes (256), and bodies the codec would not
shrink, go as plain frames. :attr:`TcpTransport.bytes_uncompressed` and
:attr:`TcpTransport.bytes_compressed` measure what compression saves.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard, cast

import attrs
import cramjam
import msgpack

from dynamo_toolkit.eager_start import start_eagerly
from dynamo_toolkit.errors import ConfigurationError, NodeUnavailableError, TransportError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import Handler, Network, Transport
from dynamo_toolkit.message_codec import WireFormatError, decode_message, encode_message
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.transport import peer_auth

__all__ = ["COMPRESSED", "COMPRESSION_CODECS", "TcpNetwork", "TcpTransport", "parse_address"]

log = logging.getLogger(__name__)

REQUEST, REPLY, ERROR, ONE_WAY, HELLO, AUTH = range(6)
#: Largest frame accepted; a pair is at most a few tens of KiB, a repair a few of them.
MAX_FRAME_BYTES = 64 * 1024 * 1024
#: Added to a frame's kind when its body is compressed (see the module's docstring).
COMPRESSED = 16
#: The kinds a compressed frame may have: requests, replies and one-way messages.
_COMPRESSED_KINDS = frozenset({REQUEST + COMPRESSED, REPLY + COMPRESSED, ONE_WAY + COMPRESSED})
#: What ``compression`` accepts.
COMPRESSION_MODES = ("none", "dc", "all")


def _lz4_compress(data: bytes) -> bytes:
    return bytes(cramjam.lz4.compress_block(data))


def _lz4_decompress(data: bytes) -> bytes:
    # The block starts with its original size (4 bytes, little-endian): refuse
    # a bomb before cramjam allocates for it.
    if len(data) < 4 or int.from_bytes(data[:4], "little") > MAX_FRAME_BYTES:
        raise WireFormatError("a compressed body larger than a frame may be")
    return bytes(cramjam.lz4.decompress_block(data))


def _snappy_compress(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


def _snappy_decompress(data: bytes) -> bytes:
    if cramjam.snappy.decompress_raw_len(data) > MAX_FRAME_BYTES:
        raise WireFormatError("a compressed body larger than a frame may be")
    return bytes(cramjam.snappy.decompress_raw(data))


def _zstd_compress(data: bytes) -> bytes:
    return bytes(cramjam.zstd.compress(data, level=1))


def _zstd_decompress(data: bytes) -> bytes:
    # Decompress into a buffer of the size the frame header declares (at most
    # a frame's): a header that lies, or frames that follow, overflow it.
    size = _zstd_content_size(data)
    if size is None or size > MAX_FRAME_BYTES:
        raise WireFormatError("a compressed body without a size, or larger than a frame may be")
    out = bytearray(size)
    if cramjam.zstd.decompress_into(data, out) != size:
        raise WireFormatError("a compressed body shorter than its header says")
    return bytes(out)


def _zstd_content_size(data: bytes) -> int | None:
    """The content size a zstd frame header declares (RFC 8878, 3.1.1.1), if any."""
    if len(data) < 5 or data[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = data[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, descriptor >> 5 & 1, descriptor & 3
    start = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    width = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if width == 0 or len(data) < start + width:
        return None
    size = int.from_bytes(data[start : start + width], "little")
    return size + 256 if width == 2 else size


#: Codec name -> (header byte, compress). Header bytes are the ``compressed``
#: storage engine's; never renumber them.
_COMPRESSORS: dict[str, tuple[int, Any]] = {
    "snappy": (1, _snappy_compress),
    "lz4": (2, _lz4_compress),
    "zstd": (3, _zstd_compress),
}
_DECOMPRESSORS: dict[int, Any] = {1: _snappy_decompress, 2: _lz4_decompress, 3: _zstd_decompress}
#: What ``compression_codec`` accepts.
COMPRESSION_CODECS = tuple(sorted(_COMPRESSORS))


def _inflate(kind: int, body: object) -> tuple[int, object]:
    """A compressed frame's plain kind and body; :class:`WireFormatError` if it is garbage."""
    if not isinstance(body, bytes) or not body:
        raise WireFormatError("a compressed body is bytes: a codec header, then data")
    decompress = _DECOMPRESSORS.get(body[0])
    if decompress is None:
        raise WireFormatError(f"unknown compression header {body[0]}")
    try:
        data = decompress(body[1:])
        return kind - COMPRESSED, msgpack.unpackb(data, raw=False, strict_map_key=False)
    except WireFormatError:
        raise
    except (cramjam.DecompressionError, msgpack.ExtraData, ValueError, TypeError) as exc:
        raise WireFormatError(f"a compressed body does not decode: {exc}") from None


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"``; a clear error when it is not one."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"bad address {address!r}: expected host:port")
    return host.strip("[]"), int(port)


class _Refused(Exception):
    """A peer failed to prove it belongs to the cluster; the text says how."""


@attrs.define
class _Handshake:
    """What one connection's cluster-secret handshake has seen so far."""

    connector: str
    connector_nonce: bytes
    listener: str = ""
    listener_nonce: bytes = b""


class _Buffer(asyncio.Protocol):
    """Holds what arrives on a TLS connection until its real protocol takes over."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.lost = False
        self.exc: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost, self.exc = True, exc


def _is_challenge(body: object, fields: int) -> TypeGuard[list[Any]]:
    """``body`` is ``[node id, nonce, ...]`` with ``fields`` items (HELLO: 2, AUTH: 3)."""
    return (
        isinstance(body, list)
        and len(body) == fields
        and isinstance(body[0], str)
        and isinstance(body[1], bytes)
        and len(body[1]) == peer_auth.NONCE_BYTES
    )


class _Connection(asyncio.Protocol):
    """One TCP connection, inbound or outbound, with batched writes."""

    def __init__(self, owner: TcpTransport, peer: str | None) -> None:
        self.owner = owner
        #: Whom we dialled (outbound), or None (inbound).
        self.dest = peer
        secrets = owner.network.secrets
        # The peer, once it may be delivered to: known for outbound, learnt
        # from HELLO for inbound; with a cluster secret, only once proven.
        self.peer = peer if not secrets else None
        self.transport: asyncio.Transport | None = None
        self.unpacker = msgpack.Unpacker(
            raw=False, max_buffer_size=MAX_FRAME_BYTES, strict_map_key=False
        )
        self.outbox: list[bytes] = []
        self.flush_scheduled = False
        self.pending: dict[int, asyncio.Future[object]] = {}
        self.closed = asyncio.get_running_loop().create_future()
        #: False until the peer has proven what the network asks (secret, TLS).
        self.authenticated = not secrets and (peer is not None or owner.network.server_tls is None)
        self.handshake: _Handshake | None = None
        self.ready: asyncio.Future[None] | None = None  # outbound: the handshake's end
        self.refused = False  # set once refused: nothing more is read
        self.counted = False  # this connection's failure is counted already
        self.refusal: str | None = None  # why the peer refused us, if it said
        self._timer: asyncio.TimerHandle | None = None
        #: (header, compress) when this connection's bodies are compressed.
        self.squeeze: tuple[int, Any] | None = None
        if self.peer is not None:
            self.squeeze = owner.network.squeeze_for(owner.node_id, self.peer)

    @property
    def name(self) -> str:
        """Who is at the other end, for messages."""
        return repr(self.peer or self.dest or (self.handshake and self.handshake.connector))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: cast, not check.
        self.transport = cast(asyncio.Transport, transport)
        self.owner.connections.add(self)
        if self.authenticated or self.dest is not None:
            return
        network = self.owner.network
        loop = asyncio.get_running_loop()
        if network.secrets:
            self._timer = loop.call_later(network.connect_timeout, self._handshake_expired)
        if network.server_tls is not None:
            # The TLS handshake is ours to run (not create_server's), so that
            # a peer failing it is seen and counted. It starts now, eagerly:
            # the TLS protocol must receive the very first bytes (uvloop reads
            # them before a task could start).
            self.owner.start_handshake(self._start_tls(network.server_tls))

    async def _start_tls(self, context: ssl.SSLContext) -> None:
        raw = self.transport
        assert raw is not None
        loop = asyncio.get_running_loop()
        # Until this coroutine resumes, what TLS decrypts waits in a buffer:
        # the TLS transport to answer on is known only then.
        early = _Buffer()
        try:
            tls = await loop.start_tls(
                raw,
                early,
                context,
                server_side=True,
                ssl_handshake_timeout=self.owner.network.connect_timeout,
            )
        except asyncio.CancelledError:
            raw.abort()
            self.connection_lost(None)
            raise
        except Exception as exc:  # SSL errors, resets, timeouts: all refusals
            self.count_failure(f"TLS handshake failed: {exc}")
            raw.abort()
            self.connection_lost(exc)
            return
        if tls is None or self.refused:  # closed meanwhile
            return
        self.transport = tls
        if not self.owner.network.secrets:
            self.authenticated = True
        tls.set_protocol(self)
        for chunk in early.chunks:
            self.data_received(chunk)
        if early.lost:
            self.connection_lost(early.exc)

    def write(self, frame: list[Any]) -> None:
        """Queue a frame; every frame queued in this loop turn is written at once."""
        if self.squeeze is None:
            self.outbox.append(msgpack.packb(frame, use_bin_type=True))
        else:
            self.outbox.append(self._squeezed(frame))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _squeezed(self, frame: list[Any]) -> bytes:
        """The bytes of ``frame``, its body compressed when that pays (see the module)."""
        kind, request_id, body = frame
        if kind not in (REQUEST, REPLY, ONE_WAY):
            return cast(bytes, msgpack.packb(frame, use_bin_type=True))
        packed = cast(bytes, msgpack.packb(body, use_bin_type=True))
        owner = self.owner
        owner.bytes_uncompressed += len(packed)
        if len(packed) >= owner.network.compression_threshold:
            assert self.squeeze is not None
            header, compress = self.squeeze
            squeezed = compress(packed)
            if len(squeezed) + 1 < len(packed):
                owner.bytes_compressed += len(squeezed) + 1
                owner.frames_compressed += 1
                out = [kind + COMPRESSED, request_id, bytes((header,)) + squeezed]
                return cast(bytes, msgpack.packb(out, use_bin_type=True))
        owner.bytes_compressed += len(packed)
        # msgpack concatenates: a 3-array header, the kind, the id, the body packed already.
        prefix = cast(bytes, msgpack.packb([kind, request_id]))
        return b"\x93" + prefix[1:] + packed

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.transport is not None and not self.transport.is_closing() and self.outbox:
            self.transport.write(b"".join(self.outbox))
        self.outbox.clear()

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        try:
            self.unpacker.feed(data)
            for frame in self.unpacker:
                self._dispatch(frame)
        except _Refused as exc:
            self.refuse(str(exc))
        except (msgpack.BufferFull, ValueError, TypeError, WireFormatError) as exc:
            # A peer speaking garbage loses its connection, never the node.
            self.owner.protocol_errors += 1
            if not self.authenticated:
                self.refuse(f"protocol error during the handshake: {exc}")
            else:
                self.abort(f"protocol error: {exc}")

    def _dispatch(self, frame: object) -> None:
        if not isinstance(frame, list) or len(frame) != 3 or type(frame[1]) is not int:
            raise WireFormatError("a frame is [kind, request_id, body]")
        kind, request_id, body = frame
        if kind in _COMPRESSED_KINDS:
            if self.peer is None:  # nothing to inflate before the peer is known
                raise WireFormatError("a compressed frame before the handshake")
            kind, body = _inflate(kind, body)
        if kind == HELLO:
            if not self.authenticated:
                self._challenged(body)
                return
            if not isinstance(body, str):
                raise WireFormatError("HELLO carries the sender id")
            self.peer = body
            self.squeeze = self.owner.network.squeeze_for(self.owner.node_id, body)
            # The peer is up and reaching us: stop backing off our own link to it.
            self.owner.forget_backoff(body)
            return
        if kind in (REPLY, ERROR):
            future = self.pending.pop(request_id, None)
            if future is not None:
                if not future.done():
                    if kind == REPLY:
                        future.set_result(decode_message(body))
                    else:
                        future.set_exception(TransportError(f"{self.name} failed: {body}"))
            elif kind == ERROR and request_id == 0:
                # The peer refused this connection and says why before closing.
                self.refusal = str(body)
            return
        if self.peer is None:
            if not self.authenticated:
                if kind == AUTH:
                    self._proven(body)
                    return
                raise _Refused("a message before the cluster-secret handshake completed")
            raise WireFormatError("message before HELLO")
        message = decode_message(body)
        self.owner.deliver(self, kind, request_id, message)

    # -- the cluster-secret handshake (cold path: once per connection) ----------

    async def authenticate(self) -> None:
        """Outbound: challenge the listener; return once both ends have proven the secret."""
        nonce = peer_auth.new_nonce()
        self.handshake = _Handshake(self.owner.node_id, nonce)
        self.ready = asyncio.get_running_loop().create_future()
        self.write([HELLO, 0, [self.owner.node_id, nonce]])
        await self.ready

    def _challenged(self, body: object) -> None:
        """Inbound HELLO: answer the connector's challenge with ours and our proof."""
        if self.dest is not None or self.handshake is not None:
            raise _Refused("an unexpected HELLO during the handshake")
        if not _is_challenge(body, 2):
            raise _Refused("no cluster-secret challenge in HELLO (is cluster_secret_file set?)")
        connector, connector_nonce = body
        shake = _Handshake(connector, connector_nonce, self.owner.node_id, peer_auth.new_nonce())
        self.handshake = shake
        proof = self._proof(peer_auth.LISTENER, shake)
        self.write([AUTH, 0, [shake.listener, shake.listener_nonce, proof]])

    def _proven(self, body: object) -> None:
        """An AUTH frame: the other end's proof (and, outbound, the listener's challenge)."""
        shake = self.handshake
        if shake is None:
            raise _Refused("AUTH before HELLO")
        secrets = self.owner.network.secrets
        if self.dest is None:  # listener: the connector's proof, the last step
            if not peer_auth.verify(secrets, body, peer_auth.CONNECTOR, *_transcript(shake)):
                raise _Refused("wrong cluster secret: the connector's proof does not check out")
            self._authenticated(shake.connector)
            self.owner.forget_backoff(shake.connector)
            return
        if shake.listener_nonce or not _is_challenge(body, 3):
            raise _Refused("a malformed AUTH frame from the listener")
        shake.listener, shake.listener_nonce = body[0], body[1]
        if not peer_auth.verify(secrets, body[2], peer_auth.LISTENER, *_transcript(shake)):
            raise _Refused(f"wrong cluster secret: {self.dest!r} did not prove it")
        self.write([AUTH, 0, self._proof(peer_auth.CONNECTOR, shake)])
        self._authenticated(self.dest)
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(None)

    def _proof(self, role: peer_auth.Role, shake: _Handshake) -> bytes:
        return peer_auth.proof(self.owner.network.secrets[0], role, *_transcript(shake))

    def _authenticated(self, peer: str) -> None:
        self.peer = peer
        self.squeeze = self.owner.network.squeeze_for(self.owner.node_id, peer)
        self.authenticated = True
        self.handshake = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _handshake_expired(self) -> None:
        self._timer = None
        if not self.authenticated and not self.refused:
            self.count_failure(f"no handshake within {self.owner.network.connect_timeout} s")
            self.refused = True
            self.abort("handshake timed out")

    def count_failure(self, reason: str) -> None:
        """Count this connection as refused (once), and log why."""
        if self.counted or not self.owner.running:
            return  # counted already, or closed by our own stop
        self.counted = True
        self.owner.auth_failures += 1
        peername = self.transport.get_extra_info("peername") if self.transport else None
        direction = f"to {self.dest!r}" if self.dest is not None else f"from {peername}"
        log.warning("%s refused a peer connection %s: %s", self.owner.node_id, direction, reason)

    def refuse(self, reason: str) -> None:
        """The peer failed the handshake: count it, tell it why (inbound), close."""
        self.count_failure(reason)
        self.refused = True
        if self.dest is None and self.transport is not None:
            self.outbox.clear()
            self.write([ERROR, 0, f"refused by {self.owner.node_id!r}: {reason}"])
            self._flush()
            self.transport.close()  # after the reason is written
            self._fail_pending(reason)
        else:
            self.abort(reason)

    # -- closing ----------------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Close now and fail every request waiting on this connection."""
        if self.transport is not None:
            self.transport.abort()
        self._fail_pending(reason)

    def _fail_pending(self, reason: str) -> None:
        if self.refusal is not None:
            reason = f"{reason} ({self.refusal})"
        for future in self.pending.values():
            if not future.done():
                future.set_exception(TransportError(f"connection to {self.name} lost: {reason}"))
                # Mark it seen: at shutdown nobody may be left to look at it.
                future.exception()
        self.pending.clear()
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(TransportError(f"handshake failed: {reason}"))
            self.ready.exception()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed.done():
            return  # a failed TLS handshake may report its loss twice
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.authenticated or isinstance(exc, ssl.SSLError):
            # Closed before proving itself, or a TLS failure after the handshake
            # (TLS 1.3 reports a refused client certificate only then).
            self.count_failure(f"closed during the handshake: {exc or self.refusal or 'EOF'}")
        self.owner.connections.discard(self)
        self._fail_pending(str(exc) if exc else "closed")
        self.owner.forget_link(self)
        self.closed.set_result(None)


def _transcript(shake: _Handshake) -> tuple[str, str, bytes, bytes]:
    return shake.connector, shake.listener, shake.connector_nonce, shake.listener_nonce


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
        #: Peer connections refused, in either direction: a peer without the
        #: cluster secret's proof or with a wrong one (and the listener tells
        #: it why), a HELLO-less or garbled handshake, no handshake within
        #: ``connect_timeout``, an inbound connection closed before it proved
        #: itself, a failed TLS handshake (inbound: a missing, expired or
        #: foreign client certificate; outbound: the peer's certificate does
        #: not verify) or a TLS error after it (how TLS 1.3 reports a refused
        #: client certificate to the client). Not counted: what our own
        #: :meth:`stop` closes.
        self.auth_failures = 0
        #: Bytes of message bodies sent on compressing connections, before
        #: compression, and what went on the wire for them (a compressed body
        #: and its header byte, or the plain body when it stayed plain): the
        #: difference is what compression saved. Connections that do not
        #: compress count in neither.
        self.bytes_uncompressed = 0
        self.bytes_compressed = 0
        #: Frames sent compressed.
        self.frames_compressed = 0
        self._handler: Handler | None = None
        self._server: asyncio.Server | None = None
        self._links: dict[str, _Connection] = {}
        self._connecting: dict[str, asyncio.Future[_Connection]] = {}
        self._retry_at: dict[str, tuple[float, float]] = {}  # peer -> (when, backoff)
        self._next_id = 0
        self._tasks: set[asyncio.Future[None]] = set()
        self._handshakes: set[asyncio.Future[None]] = set()  # inbound TLS handshakes
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
        known = self._links.get(dest)
        if known is not None:
            return known
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
        link: _Connection | None = None
        try:
            host, port = parse_address(self.network.address_of(dest))
            async with asyncio.timeout(self.network.connect_timeout):
                if self.network.client_tls is None:
                    _, link = await loop.create_connection(
                        lambda: _Connection(self, dest), host, port
                    )
                else:
                    _, link = await self._connect_tls(dest, host, port)
                if self.network.secrets:
                    await link.authenticate()
        except (OSError, TimeoutError, TransportError) as exc:
            if link is not None:  # connected, but the handshake failed
                link.abort(f"handshake failed: {exc or 'timeout'}")
            backoff = min(
                self.network.backoff_max,
                (retry[1] * 2) if retry is not None else self.network.backoff_initial,
            )
            # Jitter keeps a restarted node from being hit by every peer at once.
            jitter = 1 + 0.25 * self.network.rng.random()
            self._retry_at[dest] = (loop.time() + backoff * jitter, backoff)
            if link is not None or isinstance(exc, ssl.SSLError):
                error = NodeUnavailableError(f"cannot authenticate {dest!r}: {exc or 'timeout'}")
            else:
                error = NodeUnavailableError(f"cannot connect to {dest!r}: {exc or 'timeout'}")
            future.set_exception(error)
            future.exception()  # retrieved: waiters get it through shield
            raise error from exc
        finally:
            self._connecting.pop(dest, None)
        self._retry_at.pop(dest, None)
        assert link is not None
        if not self.network.secrets:
            link.write([HELLO, 0, self.node_id])
        self._links[dest] = link
        future.set_result(link)
        return link

    async def _connect_tls(
        self, dest: str, host: str, port: int
    ) -> tuple[asyncio.BaseTransport, _Connection]:
        """Connect over TLS, checking the peer's certificate; a failure is counted."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.create_connection(
                lambda: _Connection(self, dest),
                host,
                port,
                ssl=self.network.client_tls,
                server_hostname=host,
                ssl_handshake_timeout=self.network.connect_timeout,
            )
        except ssl.SSLError as exc:
            self.auth_failures += 1
            log.warning("%s refused a peer connection to %r: %s", self.node_id, dest, exc)
            raise

    def start_handshake(self, handshake: Any) -> None:
        """Start an inbound connection's TLS handshake now; :meth:`stop` waits for it."""
        running = start_eagerly(handshake)
        if not running.done():
            self._handshakes.add(running)
            running.add_done_callback(self._handshakes.discard)

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
        if self._handshakes:  # their connections are closed: they end at once
            await asyncio.gather(*list(self._handshakes), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._links.clear()


class TcpNetwork(Network):
    """Addresses of every member; hands out TCP endpoints.

    ``addresses`` maps node id to ``host:port``; by default each member's
    :attr:`~dynamo_toolkit.node_info.NodeInfo.address` is used.

    ``cluster_secret`` (bytes, or several during a rotation: the first proves,
    any is accepted) makes peers prove they know it before anything else;
    ``server_tls`` and ``client_tls`` (both or neither) put the peer port under
    TLS, mutual when the server context requires client certificates.
    ``compression`` (``"none"``, ``"dc"`` or ``"all"``), ``compression_codec``
    (``"lz4"``, ``"snappy"`` or ``"zstd"``) and ``compression_threshold``
    (bytes) compress traffic between datacenters or all of it. See the
    module's docstring.
    """

    def __init__(
        self,
        seed: int = 0,
        members: Sequence[NodeInfo] = (),
        addresses: Mapping[str, str] | None = None,
        connect_timeout: float = 1.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        cluster_secret: bytes | Sequence[bytes] | None = None,
        server_tls: ssl.SSLContext | None = None,
        client_tls: ssl.SSLContext | None = None,
        compression: str = "none",
        compression_codec: str = "lz4",
        compression_threshold: int = 256,
    ) -> None:
        self.addresses = {m.node_id: m.address for m in members if m.address}
        self.addresses.update(addresses or {})
        for address in self.addresses.values():
            parse_address(address)
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.rng = random.Random(seed)
        #: The cluster secrets accepted; the first is the one we prove with.
        self.secrets = _secrets(cluster_secret)
        if (server_tls is None) != (client_tls is None):
            raise ConfigurationError("peer TLS needs both server_tls and client_tls")
        self.server_tls = server_tls
        self.client_tls = client_tls
        if compression not in COMPRESSION_MODES:
            raise ConfigurationError(
                f"transport tcp: compression must be one of {', '.join(COMPRESSION_MODES)}; "
                f"got {compression!r}"
            )
        if compression_codec not in _COMPRESSORS:
            raise ConfigurationError(
                f"transport tcp: compression_codec must be one of "
                f"{', '.join(COMPRESSION_CODECS)}; got {compression_codec!r}"
            )
        if type(compression_threshold) is not int or compression_threshold < 0:
            raise ConfigurationError(
                f"transport tcp: compression_threshold must be a whole number of bytes >= 0; "
                f"got {compression_threshold!r}"
            )
        self.compression = compression
        self.compression_codec = compression_codec
        self.compression_threshold = compression_threshold
        #: Each member's datacenter, for ``compression = "dc"``.
        self.datacenters = {m.node_id: m.datacenter for m in members}

    def squeeze_for(self, node_id: str, peer: str) -> tuple[int, Any] | None:
        """How a connection between ``node_id`` and ``peer`` compresses: None for not at all."""
        if self.compression == "none":
            return None
        if self.compression == "dc" and (
            self.datacenters.get(node_id, "") == self.datacenters.get(peer, "")
        ):
            return None
        return _COMPRESSORS[self.compression_codec]

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
            self.datacenters[member.node_id] = member.datacenter
            if member.address:
                parse_address(member.address)
                self.addresses[member.node_id] = member.address


def _secrets(value: bytes | Sequence[bytes] | None) -> tuple[bytes, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, bytes | str) else list(value)
    secrets = tuple(item.encode() if isinstance(item, str) else bytes(item) for item in items)
    if not secrets or not all(secrets):
        raise ConfigurationError("a cluster secret must not be empty")
    return secrets


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``tcp`` transport."""
    registry.add_transport("tcp", TcpNetwork)
