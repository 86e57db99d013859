"""The RESP parser and encoders: fuzzed input, split-anywhere roundtrips, limits."""

from __future__ import annotations

import re
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit_server.resp.protocol import (
    RESP2,
    RESP3,
    Command,
    ProtocolError,
    RespParser,
    array,
    bulk,
    encode_command,
    error,
    integer,
    simple,
    split_inline,
)


def feed_in_chunks(parser: RespParser, data: bytes, cuts: list[int]) -> list[Command]:
    """Feed ``data`` split at the (sorted, deduplicated) offsets ``cuts``."""
    commands: list[Command] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        commands.extend(parser.feed(data[start:cut]))
        start = cut
    return commands


commands_strategy = st.lists(
    st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1, max_size=8
)
cuts_strategy = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)

# Fragments that make random input look like RESP often enough to reach deep states.
TOKENS = [b"*", b"$", b"\r\n", b"\r", b"\n", b"-", b"0", b"1", b"3", b"12", b"a", b" "]
TOKENS += [b'"', b"'", b"\\", b"\\x4", b"99999999999999", b"*2\r\n", b"$3\r\nGET\r\n"]
protocolish = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)


# -- roundtrips -------------------------------------------------------------------


@given(commands_strategy, cuts_strategy)
def test_multibulk_roundtrip_split_anywhere(commands: list[Command], cuts: list[int]) -> None:
    data = b"".join(encode_command(command) for command in commands)
    assert feed_in_chunks(RespParser(), data, cuts) == commands


@given(commands_strategy)
def test_byte_by_byte_feeding_parses_the_same(commands: list[Command]) -> None:
    data = b"".join(encode_command(command) for command in commands)
    parser = RespParser()
    parsed: list[Command] = []
    for i in range(len(data)):
        parsed.extend(parser.feed(data[i : i + 1]))
    assert parsed == commands
    assert parser.buffered == 0


word = st.binary(min_size=1, max_size=12).filter(
    lambda w: not any(c in w for c in b" \t\r\n\x0b\x0c\"'")
)


@given(st.lists(st.lists(word, min_size=1, max_size=5), min_size=1, max_size=5), cuts_strategy)
def test_inline_roundtrip_split_anywhere(commands: list[Command], cuts: list[int]) -> None:
    data = b"".join(b" ".join(command) + b"\r\n" for command in commands)
    assert feed_in_chunks(RespParser(), data, cuts) == commands


def test_inline_and_multibulk_mix_on_one_connection() -> None:
    data = b"PING\r\n" + encode_command([b"GET", b"k"]) + b"set a b\n\r\n  \r\nECHO x\r\n"
    assert RespParser().feed(data) == [
        [b"PING"],
        [b"GET", b"k"],
        [b"set", b"a", b"b"],
        [b"ECHO", b"x"],
    ]


def test_inline_quotes_and_escapes() -> None:
    assert split_inline(b"SET \"a b\" 'c d'") == [b"SET", b"a b", b"c d"]
    assert split_inline(b"ECHO \"x\\ty\\n\\x41\\\"\" 'it\\'s'") == [b"ECHO", b'x\ty\nA"', b"it's"]
    assert split_inline(b'SET "" x') == [b"SET", b"", b"x"]
    for bad in (b'GET "abc', b"GET 'abc", b'GET "a"b'):
        with pytest.raises(ProtocolError, match="unbalanced quotes"):
            split_inline(bad)


def test_empty_and_null_arrays_are_skipped() -> None:
    assert RespParser().feed(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n") == [[b"PING"]]


def test_large_bulk_in_small_chunks() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    data = encode_command([b"SET", b"k", value])
    parser = RespParser()
    parsed: list[Command] = []
    for start in range(0, len(data), 1000):
        parsed.extend(parser.feed(data[start : start + 1000]))
    assert parsed == [[b"SET", b"k", value]]


# -- malformed input and limits ---------------------------------------------------------


@given(st.one_of(st.binary(max_size=300), protocolish), cuts_strategy)
def test_random_bytes_raise_only_protocol_error(data: bytes, cuts: list[int]) -> None:
    parser = RespParser(max_bulk=1000, max_array=50, max_inline=200)
    commands: list[Command] = []
    try:
        commands.extend(feed_in_chunks(parser, data, cuts))
    except ProtocolError as exc:
        failure: ProtocolError | None = exc
    else:
        failure = None
    for command in commands:
        assert command
        assert all(isinstance(arg, bytes) for arg in command)
    if failure is not None:
        assert str(failure).startswith("Protocol error: ")
        with pytest.raises(ProtocolError):  # a failed parser stays failed
            parser.feed(b"PING\r\n")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*1\r\n$abc\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*x\r\n", "invalid multibulk length"),
        (b"*2\r\n:1\r\n", "expected '$', got ':'"),
        (b"*1\r\n$3\r\nGETXX\r\n", "expected CRLF after bulk string"),
        (b"*" + b"1" * 80, "too big mbulk count string"),
        (b"*1\r\n$" + b"1" * 80, "too big bulk count string"),
    ],
)
def test_malformed_requests(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match="^" + re.escape(f"Protocol error: {message}")):
        RespParser().feed(data)


def test_commands_before_the_error_are_kept() -> None:
    with pytest.raises(ProtocolError) as caught:
        RespParser().feed(b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n")
    assert caught.value.commands == [[b"PING"], [b"PING"]]


def test_huge_declared_lengths_are_refused_without_allocating() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="invalid bulk length"):
            RespParser().feed(b"*1\r\n$99999999999999\r\n")
        with pytest.raises(ProtocolError, match="invalid bulk length"):
            RespParser(max_bulk=1024).feed(b"*1\r\n$1025\r\n")
        with pytest.raises(ProtocolError, match="invalid multibulk length"):
            RespParser().feed(b"*2000000\r\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_bulk_at_the_limit_is_accepted() -> None:
    parser = RespParser(max_bulk=8)
    assert parser.feed(b"*1\r\n$8\r\n12345678\r\n") == [[b"12345678"]]


def test_inline_line_limit() -> None:
    parser = RespParser(max_inline=100)
    assert parser.feed(b"X" * 90) == []
    with pytest.raises(ProtocolError, match="too big inline request"):
        parser.feed(b"X" * 20)


# -- encoders ---------------------------------------------------------------------------


def test_scalar_encoders() -> None:
    assert simple("OK") == b"+OK\r\n"
    assert error("ERR bad\r\nthing") == b"-ERR bad  thing\r\n"
    assert integer(0) == b":0\r\n"
    assert integer(-7) == b":-7\r\n"
    assert integer(1 << 40) == b":1099511627776\r\n"
    assert bulk(b"") == b"$0\r\n\r\n"
    assert bulk(b"a\r\nb") == b"$4\r\na\r\nb\r\n"
    assert array([integer(1), bulk(b"x")]) == b"*2\r\n:1\r\n$1\r\nx\r\n"
    assert array([]) == b"*0\r\n"


def test_protocol_dependent_encoders() -> None:
    assert RESP2.bulk(None) == b"$-1\r\n"
    assert RESP3.bulk(None) == b"_\r\n"
    assert RESP2.null_array == b"*-1\r\n"
    assert RESP3.null_array == b"_\r\n"
    assert RESP2.bulk_array([b"a", None]) == b"*2\r\n$1\r\na\r\n$-1\r\n"
    assert RESP3.bulk_array([b"a", None]) == b"*2\r\n$1\r\na\r\n_\r\n"
    pairs = [(bulk(b"k"), integer(1))]
    assert RESP2.map(pairs) == b"*2\r\n$1\r\nk\r\n:1\r\n"
    assert RESP3.map(pairs) == b"%1\r\n$1\r\nk\r\n:1\r\n"
    assert RESP2.double(1.5) == b"$3\r\n1.5\r\n"
    assert RESP3.double(1.5) == b",1.5\r\n"
    assert RESP3.double(float("inf")) == b",inf\r\n"
    assert RESP2.boolean(True) == b":1\r\n"
    assert RESP3.boolean(False) == b"#f\r\n"
