"""RESP2 and RESP3 wire format: an incremental request parser and reply encoders (no I/O).

Requests arrive as multibulk arrays (``*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n``) or as
inline commands (``PING\\r\\n``, what telnet and sometimes redis-cli send).
:class:`RespParser` is fed whatever bytes the socket delivered and returns the
commands completed so far, each a list of ``bytes``. Malformed or oversized input
raises :class:`ProtocolError` with a Redis-like message; the connection is then
unusable (Redis answers the error and closes it, and so does our server).

Replies are built as ``bytes`` by the functions below and by :class:`Resp2Encoder`
/ :class:`Resp3Encoder`, which differ where RESP3 has a type RESP2 lacks (null,
map, double, boolean). Frequent replies are precomputed constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "CRLF",
    "DEFAULT_MAX_ARRAY",
    "DEFAULT_MAX_BULK",
    "DEFAULT_MAX_INLINE",
    "EMPTY_ARRAY",
    "EMPTY_BULK",
    "OK",
    "ONE",
    "PONG",
    "QUEUED",
    "RESP2",
    "RESP3",
    "ZERO",
    "Command",
    "ProtocolError",
    "Resp2Encoder",
    "Resp3Encoder",
    "RespParser",
    "array",
    "bulk",
    "encode_command",
    "encoder_for",
    "error",
    "integer",
    "simple",
    "split_inline",
]

#: Largest bulk string a request may carry. Redis allows 512 MiB; our pairs are
#: at most a few KiB, so a smaller bound limits what one client can make us buffer.
DEFAULT_MAX_BULK = 16 * 1024 * 1024

#: Most elements a request array may declare (Redis's limit for unauthenticated
#: clients is far lower; this one only bounds the per-command list).
DEFAULT_MAX_ARRAY = 1024 * 1024

#: Longest inline command line (Redis's PROTO_INLINE_MAX_SIZE).
DEFAULT_MAX_INLINE = 64 * 1024

# A "*<count>" or "$<length>" header line is a handful of digits; anything much
# longer without CRLF is garbage, refused before we scan (or buffer) more of it.
_MAX_HEADER = 64

#: One command: its name and arguments, as sent.
Command = list[bytes]

CRLF = b"\r\n"
OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
QUEUED = b"+QUEUED\r\n"
ZERO = b":0\r\n"
ONE = b":1\r\n"
EMPTY_ARRAY = b"*0\r\n"
EMPTY_BULK = b"$0\r\n\r\n"

# Small integers (counts, lengths, booleans) are answered from a table.
_SMALL_INTS = tuple(b":%d\r\n" % i for i in range(1024))
_ARRAY_HEADERS = tuple(b"*%d\r\n" % i for i in range(256))


class ProtocolError(Exception):
    """The client sent bytes that are not a valid request (or exceed a limit).

    ``commands`` holds the commands completed before the bad bytes, so a server
    can answer them first, then the error, then close the connection.
    ``too_large`` tells a request refused for its size from garbage.
    """

    def __init__(
        self, message: str, commands: list[Command] | None = None, *, too_large: bool = False
    ) -> None:
        super().__init__(message)
        self.commands: list[Command] = commands if commands is not None else []
        self.too_large = too_large


class RespParser:
    """Incremental request parser: :meth:`feed` bytes, get completed commands back.

    State between calls is the unparsed tail of the input plus the position in
    the array being read, so a request split anywhere (even inside ``\\r\\n``)
    parses the same as one delivered whole. Once it has raised
    :class:`ProtocolError` the parser refuses further input.

    ``max_bulk`` bounds each bulk string, ``max_request`` (default: ``max_bulk``)
    the bulk strings of one command together; both are checked on the length
    headers, before anything is buffered.
    """

    __slots__ = (
        "_args",
        "_buf",
        "_bulk",
        "_failed",
        "_need",
        "_remaining",
        "_size",
        "max_array",
        "max_bulk",
        "max_inline",
        "max_request",
    )

    def __init__(
        self,
        max_bulk: int = DEFAULT_MAX_BULK,
        max_array: int = DEFAULT_MAX_ARRAY,
        max_inline: int = DEFAULT_MAX_INLINE,
        max_request: int | None = None,
    ) -> None:
        self.max_bulk = max_bulk
        self.max_array = max_array
        self.max_inline = max_inline
        self.max_request = max_bulk if max_request is None else max_request
        self._size = 0  # bytes of bulk strings declared so far by the current command
        self._buf = bytearray()
        self._args: Command = []
        self._remaining = 0  # elements still expected in the current array (0: none open)
        self._bulk = -1  # declared length of the bulk being read (-1: header expected)
        self._need = 0  # buffered bytes needed before parsing can progress
        self._failed: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a completed command's last argument."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Command]:
        """Add ``data``; return the commands it completed (possibly none)."""
        if self._failed is not None:
            raise ProtocolError(self._failed)
        buf = self._buf
        if buf:
            buf += data
            # Waiting for the rest of a large bulk: no need to look at anything yet.
            if len(buf) < self._need:
                return []
            src = bytes(buf)
            buf.clear()
        else:
            src = data if isinstance(data, bytes) else bytes(data)
        commands: list[Command] = []
        try:
            pos = self._parse(src, commands)
        except ProtocolError as exc:
            self._failed = str(exc)
            self._args = []
            buf.clear()
            exc.commands = commands
            raise
        if pos < len(src):
            buf += memoryview(src)[pos:]
        self._need = self._bulk + 2 if self._bulk >= 0 else 0
        return commands

    def _parse(self, src: bytes, commands: list[Command]) -> int:
        # One pass over ``src``; returns how far it consumed. Locals for speed.
        pos = 0
        end = len(src)
        find = src.find
        args = self._args
        remaining = self._remaining
        bulk = self._bulk
        size = self._size
        try:
            while True:
                if remaining == 0:
                    if pos >= end:
                        break
                    if src[pos] != 42:  # not "*": an inline command
                        nl = find(b"\n", pos, pos + self.max_inline + 1)
                        if nl < 0:
                            if end - pos > self.max_inline:
                                raise ProtocolError(
                                    "Protocol error: too big inline request", too_large=True
                                )
                            break
                        inline = split_inline(src[pos:nl])
                        pos = nl + 1
                        if inline:
                            commands.append(inline)
                        continue
                    nl = find(b"\r\n", pos, pos + _MAX_HEADER)
                    if nl < 0:
                        if end - pos >= _MAX_HEADER:
                            raise ProtocolError("Protocol error: too big mbulk count string")
                        break
                    digits = src[pos + 1 : nl]
                    if digits.isdigit():
                        count = int(digits)
                    elif digits[:1] == b"-" and digits[1:].isdigit():
                        count = 0  # "*-1" and friends: a null array, Redis ignores it
                    else:
                        raise ProtocolError("Protocol error: invalid multibulk length")
                    if count > self.max_array:
                        raise ProtocolError(
                            f"Protocol error: invalid multibulk length ({count} elements, "
                            f"limit {self.max_array})",
                            too_large=True,
                        )
                    pos = nl + 2
                    if count == 0:
                        continue
                    remaining = count
                    args = []
                    size = 0
                if bulk < 0:
                    if pos >= end:
                        break
                    if src[pos] != 36:  # "$"
                        got = chr(src[pos]) if 32 < src[pos] < 127 else f"\\x{src[pos]:02x}"
                        raise ProtocolError(f"Protocol error: expected '$', got '{got}'")
                    nl = find(b"\r\n", pos, pos + _MAX_HEADER)
                    if nl < 0:
                        if end - pos >= _MAX_HEADER:
                            raise ProtocolError("Protocol error: too big bulk count string")
                        break
                    digits = src[pos + 1 : nl]
                    if not digits.isdigit():
                        raise ProtocolError("Protocol error: invalid bulk length")
                    bulk = int(digits)
                    size += bulk
                    # Refused on the header alone: nothing is buffered for a lie.
                    if bulk > self.max_bulk or size > self.max_request:
                        too_big, bulk = bulk, -1
                        if too_big > self.max_bulk:
                            raise ProtocolError(
                                f"Protocol error: invalid bulk length ({too_big} bytes, "
                                f"limit {self.max_bulk})",
                                too_large=True,
                            )
                        raise ProtocolError(
                            f"Protocol error: request too large (over {self.max_request} bytes)",
                            too_large=True,
                        )
                    pos = nl + 2
                stop = pos + bulk
                if stop + 2 > end:
                    break
                if src[stop] != 13 or src[stop + 1] != 10:
                    raise ProtocolError("Protocol error: expected CRLF after bulk string")
                args.append(src[pos:stop])
                pos = stop + 2
                bulk = -1
                remaining -= 1
                if remaining == 0:
                    commands.append(args)
                    args = []
        finally:
            self._args = args
            self._remaining = remaining
            self._bulk = bulk
            self._size = size
        return pos


def split_inline(line: bytes) -> Command:
    """Split an inline command line into arguments (trailing ``\\r`` allowed).

    Arguments are separated by whitespace; ``"..."`` (with ``\\n``, ``\\r``,
    ``\\t``, ``\\b``, ``\\a``, ``\\xHH`` and ``\\<char>`` escapes) and ``'...'``
    (with ``\\'``) quote arguments containing spaces, as in redis-cli.
    """
    if b'"' not in line and b"'" not in line:
        return line.split()
    return _split_quoted(line)


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def _split_quoted(line: bytes) -> Command:
    # Only lines with quotes come here (rare: typed by hand), so a byte loop is fine.
    out: Command = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i : i + 1].isspace():
            i += 1
        if i >= n:
            return out
        current = bytearray()
        quote = 0
        while True:
            if i >= n:
                if quote:
                    raise ProtocolError("Protocol error: unbalanced quotes in request")
                break
            c = line[i]
            if quote == 34:  # inside "..."
                if c == 92 and i + 3 < n and line[i + 1] == 120 and _is_hex_pair(line, i + 2):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 4
                    continue
                if c == 92 and i + 1 < n:
                    current.append(_ESCAPES.get(line[i + 1], line[i + 1]))
                    i += 2
                    continue
                if c == 34:
                    if i + 1 < n and not line[i + 1 : i + 2].isspace():
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    i += 1
                    break
                current.append(c)
            elif quote == 39:  # inside '...'
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    current.append(39)
                    i += 2
                    continue
                if c == 39:
                    if i + 1 < n and not line[i + 1 : i + 2].isspace():
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    i += 1
                    break
                current.append(c)
            elif line[i : i + 1].isspace():
                break
            elif c in (34, 39):
                quote = c
            else:
                current.append(c)
            i += 1
        out.append(bytes(current))


def _is_hex_pair(line: bytes, i: int) -> bool:
    return line[i] in _HEX and line[i + 1] in _HEX


# -- encoding ----------------------------------------------------------------------


def _clean(text: bytes) -> bytes:
    # A CR or LF inside a status or error line would end it early.
    if b"\r" in text or b"\n" in text:
        return text.replace(b"\r", b" ").replace(b"\n", b" ")
    return text


def simple(text: str | bytes) -> bytes:
    """A simple string (``+text``); CR and LF are replaced by spaces."""
    raw = text.encode() if isinstance(text, str) else text
    return b"+" + _clean(raw) + CRLF


def error(message: str | bytes) -> bytes:
    """An error (``-CODE message``); CR and LF are replaced by spaces."""
    raw = message.encode("utf-8", "replace") if isinstance(message, str) else message
    return b"-" + _clean(raw) + CRLF


def integer(value: int) -> bytes:
    """An integer (``:n``)."""
    if 0 <= value < 1024:
        return _SMALL_INTS[value]
    return b":%d\r\n" % value


def bulk(value: bytes) -> bytes:
    """A (non-null) bulk string; see the encoders' ``bulk`` for the nullable form."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


def array(encoded: Sequence[bytes]) -> bytes:
    """An array of already encoded elements."""
    count = len(encoded)
    header = _ARRAY_HEADERS[count] if count < 256 else b"*%d\r\n" % count
    return header + b"".join(encoded)


def encode_command(args: Iterable[bytes | str]) -> bytes:
    """A request as a multibulk array, the way clients send commands."""
    items = [arg.encode() if isinstance(arg, str) else bytes(arg) for arg in args]
    return b"*%d\r\n" % len(items) + b"".join(bulk(item) for item in items)


class Resp2Encoder:
    """Replies whose shape depends on the protocol version, as RESP2 writes them.

    RESP2 has no null, map, double or boolean types: a null is ``$-1`` (or
    ``*-1`` for a missing array), a map a flat array of keys and values, a
    double a bulk string and a boolean the integer 0 or 1.
    """

    protocol = 2
    null = b"$-1\r\n"
    null_array = b"*-1\r\n"

    def bulk(self, value: bytes | None) -> bytes:
        """A bulk string, or the null bulk for ``None``."""
        if value is None:
            return self.null
        return b"$%d\r\n%b\r\n" % (len(value), value)

    def bulk_array(self, values: Sequence[bytes | None]) -> bytes:
        """An array of bulk strings (``None`` elements are nulls)."""
        count = len(values)
        header = _ARRAY_HEADERS[count] if count < 256 else b"*%d\r\n" % count
        null = self.null
        return header + b"".join(
            null if v is None else b"$%d\r\n%b\r\n" % (len(v), v) for v in values
        )

    def map(self, pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
        """A map of already encoded keys and values (RESP2: a flat array)."""
        return b"*%d\r\n" % (2 * len(pairs)) + b"".join(k + v for k, v in pairs)

    def double(self, value: float) -> bytes:
        """A floating-point number (RESP2: its text as a bulk string)."""
        return bulk(_float_text(value))

    def boolean(self, value: bool) -> bytes:
        """A boolean (RESP2: the integer 1 or 0)."""
        return ONE if value else ZERO


class Resp3Encoder(Resp2Encoder):
    """The RESP3 forms: ``_`` null, ``%`` map, ``,`` double, ``#`` boolean."""

    protocol = 3
    null = b"_\r\n"
    null_array = b"_\r\n"

    def map(self, pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
        """A map of already encoded keys and values."""
        return b"%%%d\r\n" % len(pairs) + b"".join(k + v for k, v in pairs)

    def double(self, value: float) -> bytes:
        """A floating-point number."""
        return b"," + _float_text(value) + CRLF

    def boolean(self, value: bool) -> bytes:
        """A boolean."""
        return b"#t\r\n" if value else b"#f\r\n"


def _float_text(value: float) -> bytes:
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    return repr(value).encode()


#: Shared stateless encoders.
RESP2 = Resp2Encoder()
RESP3 = Resp3Encoder()


def encoder_for(protocol: int) -> Resp2Encoder:
    """The encoder of protocol version 2 or 3."""
    return RESP3 if protocol == 3 else RESP2
