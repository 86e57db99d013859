"""Frames of the native protocol: msgpack values back to back on a TCP stream.

A request is the array ``[request_id, op, args]`` (an int, a str, a map with
str keys); its reply is ``[request_id, ok, result]`` where ``result`` is the
operation's answer when ``ok`` is true and an error map when it is false::

    {"type": "QuorumNotReachedError", "message": "...", "operation": "write",
     "answered": 1, "required": 2, "contacted": 3}

Error maps always carry ``type`` (the server's error class name) and
``message``; quorum errors add ``operation``, ``answered``, ``required`` and
``contacted``; size errors add ``key_bytes``, ``value_bytes`` and ``limit``.

A stream that is not msgpack, or a frame of the wrong shape, gets one error
reply with request id ``0`` and type ``ProtocolError``, then the connection is
closed: after garbage the server cannot tell where the next frame starts.
Clients should therefore number their requests from 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import msgpack

from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit_server.errors import describe

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_ITEMS",
    "PROTOCOL_ERROR_ID",
    "PROTOCOL_VERSION",
    "FrameDecoder",
    "InvalidRequestError",
    "ProtocolError",
    "Reply",
    "Request",
    "encode_error",
    "encode_reply",
    "encode_request",
    "error_info",
    "pack_args",
    "parse_reply",
    "parse_request",
]

#: Version reported by the ``info`` operation; bumped on incompatible changes.
PROTOCOL_VERSION = 1

#: Largest frame either side accepts (the whole msgpack array, in bytes).
MAX_FRAME_BYTES = 16 * 1024 * 1024

#: Largest array or map length accepted inside a frame. msgpack allocates a
#: declared length before the items arrive, so tiny frames could otherwise
#: make the server reserve gigabytes.
MAX_ITEMS = 1 << 20

#: The request id of the error frame sent before closing a broken stream.
PROTOCOL_ERROR_ID = 0


class ProtocolError(DynamoError):
    """The byte stream is not a sequence of well-formed frames; the connection closes."""

    #: True when a frame was refused for its size (``max_frame_bytes``), not its bytes.
    too_large: bool = False


def _frame_too_large(limit: int) -> ProtocolError:
    error = ProtocolError(f"frame larger than {limit} bytes")
    error.too_large = True
    return error


class InvalidRequestError(DynamoError, ValueError):
    """A well-formed frame asks for an unknown operation or has bad arguments."""


@attrs.frozen
class Request:
    """A decoded request frame."""

    request_id: int
    op: str
    args: Mapping[Any, Any]


@attrs.frozen
class Reply:
    """A decoded reply frame: ``result`` is the answer if ``ok``, else an error map."""

    request_id: int
    ok: bool
    result: Any


class FrameDecoder:
    """Splits a byte stream into msgpack objects, refusing oversized or malformed input.

    Once it has raised :class:`ProtocolError` it stays broken: the stream has
    lost its framing.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES, max_items: int = MAX_ITEMS) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._unpacker = msgpack.Unpacker(
            raw=False,
            # User values may be maps with int keys; arg maps are checked later.
            strict_map_key=False,
            max_buffer_size=max_frame_bytes,
            max_array_len=max_items,
            max_map_len=max_items,
        )
        self._fed = 0  # bytes fed so far
        self._frame_start = 0  # stream offset where the incomplete frame begins
        self._broken: str | None = None

    def feed(self, data: bytes) -> Iterator[Any]:
        """Add ``data`` and yield every object it completes.

        Iterate the result to the end: the data is consumed as it goes, and a
        :class:`ProtocolError` arrives only after the frames that preceded the
        garbage.
        """
        if self._broken is not None:
            raise ProtocolError(self._broken)
        view = memoryview(data)
        while True:
            # Feed no more than the room left, so a frame's size is checked
            # exactly and independently of how the stream was chunked. The
            # unpacker's own max_buffer_size is no bound: it only counts bytes
            # not yet parsed, and it parses incomplete frames as far as it can.
            room = self.max_frame_bytes - (self._fed - self._frame_start)
            if room <= 0:
                error = _frame_too_large(self.max_frame_bytes)
                self._broken = str(error)
                raise error
            chunk, view = view[:room], view[room:]
            try:
                self._unpacker.feed(chunk)
            except msgpack.BufferFull as exc:  # not expected given the room check
                error = _frame_too_large(self.max_frame_bytes)
                self._broken = str(error)
                raise error from exc
            self._fed += len(chunk)
            while True:
                try:
                    frame = next(self._unpacker)
                except StopIteration:
                    break
                except Exception as exc:
                    # Whatever the unpacker raises (format, depth, length limits,
                    # bad UTF-8, unhashable map keys) means the stream is garbage.
                    detail = f": {exc}" if str(exc) else ""
                    self._broken = f"malformed msgpack ({type(exc).__name__}{detail})"
                    raise ProtocolError(self._broken) from exc
                self._frame_start = self._unpacker.tell()
                yield frame
            if not view:
                return


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_request(frame: object) -> Request:
    """Check a decoded object is ``[int, str, map]``; :class:`ProtocolError` if not."""
    if not isinstance(frame, list) or len(frame) != 3:
        raise ProtocolError("a request must be an array [request_id, op, args]")
    request_id, op, args = frame
    if not _is_int(request_id) or not isinstance(op, str) or not isinstance(args, dict):
        raise ProtocolError("a request must be [int request_id, str op, map args]")
    return Request(request_id, op, args)


def parse_reply(frame: object) -> Reply:
    """Check a decoded object is ``[int, bool, result]``; :class:`ProtocolError` if not."""
    if not isinstance(frame, list) or len(frame) != 3:
        raise ProtocolError("a reply must be an array [request_id, ok, result]")
    request_id, ok, result = frame
    if not _is_int(request_id) or not isinstance(ok, bool):
        raise ProtocolError("a reply must be [int request_id, bool ok, result]")
    if not ok and not (isinstance(result, dict) and isinstance(result.get("type"), str)):
        raise ProtocolError("an error reply must carry a map with a str 'type'")
    return Reply(request_id, ok, result)


def pack_args(args: Mapping[str, Any]) -> bytes:
    """Encode a request's argument map once (a client may send it to several nodes)."""
    return msgpack.packb(args, use_bin_type=True)  # type: ignore[no-any-return]


def encode_request(request_id: int, op: str, packed_args: bytes) -> bytes:
    """A request frame around arguments already encoded by :func:`pack_args`."""
    # 0x93 is the header of a 3-element array; the parts follow it as-is.
    head: bytes = msgpack.packb(request_id) + msgpack.packb(op, use_bin_type=True)
    return b"\x93" + head + packed_args


def encode_reply(request_id: int, result: object) -> bytes:
    """A successful reply frame."""
    return msgpack.packb([request_id, True, result], use_bin_type=True)  # type: ignore[no-any-return]


def encode_error(request_id: int, info: Mapping[str, Any]) -> bytes:
    """An error reply frame; ``info`` comes from :func:`error_info`."""
    return msgpack.packb([request_id, False, dict(info)], use_bin_type=True)  # type: ignore[no-any-return]


def error_info(exc: BaseException) -> dict[str, Any]:
    """The error map of ``exc``: its class name, message and the facts to act on.

    Every error kind has the same wire form here (see
    :func:`dynamo_toolkit_server.errors.describe`): the kind shows in ``type``,
    the error's class name, which clients map to their own errors. Errors
    outside :class:`DynamoError` are bugs or surprises on the server; they are
    reported as ``InternalError`` so clients never depend on them.
    """
    details = describe(exc)
    return {"type": details.name, "message": details.message, **details.fields}
