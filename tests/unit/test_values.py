"""Keys and values: what is accepted, how it is encoded, what is refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit.errors import (
    PairTooLargeError,
    UnsupportedKeyTypeError,
    UnsupportedValueTypeError,
)
from dynamo_toolkit.values import (
    POSITION_SPACE,
    check_pair_size,
    decode_value,
    encode_key,
    encode_value,
    key_position,
    key_position_bytes,
)

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(plain)
def test_values_round_trip(value: Any) -> None:
    assert decode_value(encode_value(value)) == value


@given(st.text() | st.binary())
def test_keys_encode_and_hash_into_the_position_space(key: str | bytes) -> None:
    stored = encode_key(key)
    assert isinstance(stored, bytes)
    assert 0 <= key_position(stored) < POSITION_SPACE
    assert key_position(stored) == key_position(encode_key(key))


def test_str_keys_are_utf8() -> None:
    assert encode_key("clé") == "clé".encode()


@pytest.mark.parametrize("key", [42, 1.5, None, ("a",)])
def test_bad_keys_name_their_type(key: object) -> None:
    with pytest.raises(UnsupportedKeyTypeError, match=type(key).__name__):
        encode_key(key)


def test_bad_values_name_their_type_and_place() -> None:
    with pytest.raises(UnsupportedValueTypeError, match=r"'set' at value\[1\]"):
        encode_value(["ok", {1}])
    with pytest.raises(UnsupportedValueTypeError, match="'object'"):
        encode_value({"k": object()})
    with pytest.raises(UnsupportedValueTypeError, match="beyond 64 bits"):
        encode_value(2**70)


def test_size_limit_names_both_sizes() -> None:
    check_pair_size(b"k" * 10, b"v" * 10230, 10240)
    with pytest.raises(PairTooLargeError) as caught:
        check_pair_size(b"k" * 10, b"v" * 10231, 10240)
    error = caught.value
    assert (error.key_bytes, error.value_bytes, error.limit) == (10, 10231, 10240)
    assert "key 10 + encoded value 10231" in str(error)


@given(st.binary(max_size=600))
def test_key_position_bytes_is_the_position_big_endian(key: bytes) -> None:
    # Durable engines find a key at these bytes; a mismatch would lose every record.
    assert key_position_bytes(key) == key_position(key).to_bytes(8, "big")
