"""Keys, values and their encoding: what may be stored, and how big it may be.

Keys are ``str`` (stored as UTF-8) or ``bytes`` (for example a hash). Values are
``str``, ``bytes``, lists of them, or any other msgpack-serialisable object; they
are encoded once, by the coordinator, with msgpack, and travel and rest as bytes.
A pair (key bytes + encoded value bytes) must not exceed the configured limit.
"""

from __future__ import annotations

from typing import Any

import mmh3
import msgpack

from dynamo_toolkit.errors import (
    PairTooLargeError,
    UnsupportedKeyTypeError,
    UnsupportedValueTypeError,
)

__all__ = [
    "DEFAULT_MAX_PAIR_BYTES",
    "POSITION_SPACE",
    "Key",
    "decode_value",
    "encode_key",
    "encode_value",
    "key_position",
    "key_position_bytes",
]

#: Default limit on key bytes + encoded value bytes (10 KiB, as in the design brief).
DEFAULT_MAX_PAIR_BYTES = 10 * 1024

#: Keys hash into positions in ``range(POSITION_SPACE)`` (64-bit unsigned).
POSITION_SPACE = 1 << 64

#: What callers may pass as a key.
Key = str | bytes

_SCALARS = (str, bytes, bytearray, int, float, bool, type(None))


def encode_key(key: object) -> bytes:
    """Return the stored form of ``key``: UTF-8 for ``str``, unchanged for ``bytes``.

    Raises :class:`~dynamo_toolkit.errors.UnsupportedKeyTypeError` for anything else.
    """
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bytearray | memoryview):
        return bytes(key)
    raise UnsupportedKeyTypeError(type(key))


def key_position(key: bytes) -> int:
    """Hash a stored key once into the 64-bit position space (MurmurHash3 x64)."""
    return int(mmh3.hash64(key, signed=False)[0])


def key_position_bytes(key: bytes) -> bytes:
    """:func:`key_position` as 8 big-endian bytes, the form durable engines sort by.

    It is on every point read of those engines, so it takes the cheapest
    route to the same number: ``hash_bytes`` is the 128-bit hash whose first
    8 bytes are ``hash64``'s first half, little-endian; reversed, big-endian.
    """
    return mmh3.hash_bytes(key)[7::-1]


def _check_encodable(value: object, path: str) -> None:
    # msgpack's own error does not say where the bad object sits; walk first.
    if isinstance(value, _SCALARS):
        if isinstance(value, int) and not -(1 << 63) <= value < (1 << 64):
            raise UnsupportedValueTypeError(type(value), f"{path} (integer beyond 64 bits)")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_encodable(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for item_key, item in value.items():
            _check_encodable(item_key, f"{path} key {item_key!r}")
            _check_encodable(item, f"{path}[{item_key!r}]")
        return
    raise UnsupportedValueTypeError(type(value), path)


_FLAT_TYPES = frozenset(_SCALARS)


def _is_flat(value: object) -> bool:
    # A scalar, or a list or tuple of scalars: checked by type at C speed
    # (``map(type, ...)``), where the recursive walk costs a Python call per
    # item (most of a list push's time on a long list).
    if type(value) in _FLAT_TYPES:
        return True
    if type(value) is list or type(value) is tuple:
        return set(map(type, value)) <= _FLAT_TYPES
    return False


def encode_value(value: object) -> bytes:
    """Encode a user value with msgpack; refuse unsupported types by name."""
    if _is_flat(value):
        try:
            return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]
        except OverflowError:
            pass  # an integer beyond 64 bits: the walk below names where
    _check_encodable(value, "value")
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def decode_value(data: bytes) -> Any:
    """Decode bytes produced by :func:`encode_value` (tuples come back as lists)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def check_pair_size(key: bytes, encoded_value: bytes, limit: int) -> None:
    """Raise :class:`~dynamo_toolkit.errors.PairTooLargeError` if the pair is over ``limit``."""
    if len(key) + len(encoded_value) > limit:
        raise PairTooLargeError(len(key), len(encoded_value), limit)


__all__ += ["check_pair_size"]
