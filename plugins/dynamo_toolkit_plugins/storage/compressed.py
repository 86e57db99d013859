"""The ``compressed`` storage engine: compresses records on their way to another engine.

A *wrapper*: it stores nothing itself but builds the engine it wraps (``inner``,
``memory`` by default) through the component registry, so in TOML::

    [storage_engine]
    name = "compressed"
    codec = "zstd"
    threshold = 256
    inner = {name = "sqlitedict"}

Every stored record starts with a one-byte header naming how the rest was
encoded (:data:`HEADERS`), so a store can change ``codec`` between runs and
still read the records written before. Records shorter than ``threshold``
bytes, and records that a codec would not shrink, are stored as they are
behind the ``raw`` header: one byte of overhead, no CPU spent on them.

Codecs come from ``cramjam``: ``snappy`` (raw block format), ``lz4`` (block
format, original size stored) and ``zstd`` (one frame), plus ``none``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import cramjam

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import StorageEngine
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.inner_spec import split_inner_spec
from dynamo_toolkit_plugins.storage.memory import MemoryStorage

__all__ = [
    "CODECS",
    "HEADERS",
    "CompressedStorage",
    "InnerSpec",
    "build_inner_engine",
    "dtk_register_components",
]

#: What ``inner`` may be: a registered engine name, a table ``{name = ..., params...}``
#: as TOML gives it, or an already built engine (programmatic composition).
InnerSpec = str | Mapping[str, Any] | StorageEngine

Codec = tuple[Callable[[bytes, int | None], bytes], Callable[[bytes], bytes]]


def _zstd_compress(data: bytes, level: int | None) -> bytes:
    # cramjam's own default level is 11: slow for a write path; 3 is zstd's default.
    return bytes(cramjam.zstd.compress(data, level=3 if level is None else level))


def _lz4_compress(data: bytes, level: int | None) -> bytes:
    if level is None:
        return bytes(cramjam.lz4.compress_block(data))
    return bytes(cramjam.lz4.compress_block(data, mode="high_compression", compression=level))


def _snappy_compress(data: bytes, level: int | None) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


def _decoder(module: Any, name: str) -> Callable[[bytes], bytes]:
    function = getattr(module, name)

    def decode(data: bytes) -> bytes:
        return bytes(function(data))

    return decode


#: Header byte -> (compress(data, level), decompress(data)). Header 0 is raw.
#: These numbers are on disk: never renumber them, only add new ones.
_BY_HEADER: Final[dict[int, Codec]] = {
    1: (_snappy_compress, _decoder(cramjam.snappy, "decompress_raw")),
    2: (_lz4_compress, _decoder(cramjam.lz4, "decompress_block")),
    3: (_zstd_compress, _decoder(cramjam.zstd, "decompress")),
}

#: Codec name -> header byte written in front of records it compressed.
HEADERS: Final[dict[str, int]] = {"none": 0, "snappy": 1, "lz4": 2, "zstd": 3}

#: The codec names ``codec`` accepts.
CODECS: Final[tuple[str, ...]] = tuple(sorted(HEADERS))

_RAW: Final = b"\x00"


def build_inner_engine(
    inner: InnerSpec,
    *,
    wrapper: str,
    node_id: str | None,
    data_dir: Path | str | None,
    registry: ComponentRegistry | None,
) -> StorageEngine:
    """Build the engine a wrapper wraps, from a name, a ``{name, params}`` table or an engine.

    Names are looked up in ``registry`` (the one building the wrapper); without
    a registry only ``memory`` can be built.
    """
    if isinstance(inner, StorageEngine):
        return inner
    name, params = split_inner_spec(
        inner, owner=f"storage engine {wrapper!r}", kind="an engine", example="memory"
    )
    if registry is None:
        if name != "memory":
            raise ConfigurationError(
                f"storage engine {wrapper!r} needs the component registry to build "
                f"inner engine {name!r} (build it through ComponentRegistry.create)"
            )
        return MemoryStorage(node_id=node_id, data_dir=data_dir, **params)
    engine = registry.create("storage_engine", name, node_id=node_id, data_dir=data_dir, **params)
    assert isinstance(engine, StorageEngine)  # checked by create()
    return engine


class CompressedStorage(StorageEngine):
    """Wrapper engine: records of ``threshold`` bytes or more compressed with ``codec``.

    Parameters: ``inner`` the wrapped engine (see :data:`InnerSpec`); ``codec``
    one of :data:`CODECS`; ``threshold`` the smallest record size worth
    compressing (0 compresses everything); ``level`` the codec's level
    (``zstd``: 1-22, default 3; ``lz4``: high-compression level 1-12, default
    fast mode; ``snappy`` and ``none`` take none).

    Metrics, counted over the ``put`` calls since this engine was opened (not
    over the data at rest, which would cost a read per overwrite):
    :attr:`bytes_in` (records as given), :attr:`bytes_stored` (as written,
    headers included), :attr:`ratio` (stored / in, below 1 is a saving),
    :attr:`compressed_records` and :attr:`raw_records`.
    """

    def __init__(
        self,
        node_id: str | None = None,
        data_dir: Path | str | None = None,
        registry: ComponentRegistry | None = None,
        inner: InnerSpec = "memory",
        codec: str = "zstd",
        threshold: int = 256,
        level: int | None = None,
    ) -> None:
        if codec not in HEADERS:
            raise ConfigurationError(
                f"unknown compression codec {codec!r}; available: {', '.join(CODECS)}"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ConfigurationError(
                f"threshold must be a non-negative integer of bytes, got {threshold!r}"
            )
        if level is not None:
            if codec in ("none", "snappy"):
                raise ConfigurationError(f"codec {codec!r} takes no level")
            if isinstance(level, bool) or not isinstance(level, int):
                raise ConfigurationError(f"level must be an integer, got {level!r}")
        self.node_id = node_id
        self.codec = codec
        self.threshold = threshold
        self.level = level
        self._header = HEADERS[codec]
        self._compress = _BY_HEADER[self._header][0] if self._header else None
        if self._compress is not None:
            try:  # a bad level fails now, not on the first large put
                self._compress(b"probe" * 64, level)
            except Exception as exc:
                raise ConfigurationError(f"codec {codec!r} refuses level {level!r}: {exc}") from exc
        self.inner = build_inner_engine(
            inner, wrapper="compressed", node_id=node_id, data_dir=data_dir, registry=registry
        )
        self.bytes_in = 0
        self.bytes_stored = 0
        self.compressed_records = 0
        self.raw_records = 0

    def __repr__(self) -> str:
        return f"CompressedStorage(codec={self.codec!r}, inner={self.inner!r})"

    @property
    def ratio(self) -> float:
        """Bytes stored / bytes given since opening (1.0 before any put)."""
        return self.bytes_stored / self.bytes_in if self.bytes_in else 1.0

    def encode(self, record: bytes) -> bytes:
        """The stored form of ``record`` (header byte + body); updates no counter."""
        if self._compress is not None and len(record) >= self.threshold:
            body = self._compress(record, self.level)
            if len(body) < len(record):  # only when it really saves space
                return bytes((self._header,)) + body
        return _RAW + record

    @staticmethod
    def decode(stored: bytes) -> bytes:
        """The record held in ``stored``, whichever codec wrote it."""
        if not stored:
            raise ValueError("corrupt compressed record: empty (no codec header)")
        header = stored[0]
        if header == 0:
            return bytes(stored[1:])
        codec = _BY_HEADER.get(header)
        if codec is None:
            raise ValueError(f"corrupt compressed record: unknown codec header {header}")
        try:
            return codec[1](stored[1:])
        except Exception as exc:  # cramjam.DecompressionError and friends
            raise ValueError(f"corrupt compressed record (codec header {header}): {exc}") from exc

    def get(self, key: bytes) -> bytes | None:
        """Return the decompressed record under ``key``, or ``None``."""
        stored = self.inner.get(key)
        return None if stored is None else self.decode(stored)

    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Store ``record`` (compressed if large enough) under ``key`` at ``position``."""
        record = bytes(record)
        stored = self.encode(record)
        self.inner.put(key, position, stored)
        self.bytes_in += len(record)
        self.bytes_stored += len(stored)
        if stored[0]:
            self.compressed_records += 1
        else:
            self.raw_records += 1

    def delete(self, key: bytes) -> None:
        """Remove ``key``; absent keys are fine."""
        self.inner.delete(key)

    def scan(self, start: int, end: int) -> Iterator[tuple[bytes, int, bytes]]:
        """The inner engine's scan, records decompressed."""
        decode = self.decode
        return ((key, pos, decode(stored)) for key, pos, stored in self.inner.scan(start, end))

    def __len__(self) -> int:
        """Number of keys stored."""
        return len(self.inner)

    @property
    def buffers_writes(self) -> bool:
        """As the engine it wraps."""
        return self.inner.buffers_writes

    def flush(self) -> None:
        """Flush the inner engine."""
        self.inner.flush()

    def close(self) -> None:
        """Close the inner engine (closing twice is as harmless as it is for the inner one)."""
        self.inner.close()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``compressed`` wrapper storage engine."""
    registry.add_storage_engine("compressed", CompressedStorage)
