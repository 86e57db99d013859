"""What the durable engines (``sqlite``, ``lmdb``, ``rocksdb``) share.

* the ``durability`` parameter and its three modes;
* parameter checks: the data directory, a file name made from the node id;
* the 8-byte big-endian position encoding, whose byte order is numeric order,
  so that a table keyed by ``position + key`` is ordered by (position, key);
* :class:`DurableStorage`, the base class: open/closed state and scans read
  in bounded chunks.
"""

from __future__ import annotations

import struct
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Literal, TypeAlias

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces import StorageEngine
from dynamo_toolkit_plugins.storage.memory import MAX_POSITION, check_position

__all__ = [
    "DURABILITY_MODES",
    "GROUP_COMMIT_LIMIT",
    "POSITION_SIZE",
    "SCAN_CHUNK",
    "Durability",
    "DurableStorage",
    "ScanChunk",
    "check_durability",
    "decode_position",
    "encode_position",
    "engine_path",
    "position_bounds",
]

Durability: TypeAlias = Literal["sync", "group", "none"]

#: The values of the ``durability`` parameter, strongest first.
DURABILITY_MODES: Final[tuple[Durability, ...]] = ("sync", "group", "none")

#: In ``group`` mode an engine holding a transaction open commits it (with a
#: sync) after this many writes even if nobody called ``flush``, bounding the
#: transaction's memory and what a crash can lose when nothing flushes.
GROUP_COMMIT_LIMIT: Final = 10_000

#: Entries read per step of a scan; nothing is held open between steps.
SCAN_CHUNK: Final = 256

POSITION_SIZE: Final = 8
_POSITION = struct.Struct(">Q")

#: One step of a scan: its rows, and where the next step resumes (an opaque,
#: engine-specific token), or ``None`` when the range is exhausted.
ScanChunk: TypeAlias = tuple[list[tuple[bytes, int, bytes]], object | None]


def check_durability(engine: str, durability: object) -> Durability:
    """Return ``durability`` if it names a mode, else raise ConfigurationError."""
    for mode in DURABILITY_MODES:
        if durability == mode and isinstance(durability, str):
            return mode
    choices = ", ".join(repr(mode) for mode in DURABILITY_MODES)
    raise ConfigurationError(
        f"storage engine {engine!r}: durability must be one of {choices}, got {durability!r}"
    )


def engine_path(engine: str, node_id: object, data_dir: Path | str | None, suffix: str) -> Path:
    """``data_dir / f"{node_id}{suffix}"``, creating ``data_dir``; checks both.

    Raises ConfigurationError when ``data_dir`` is missing or cannot be
    created, or when the node id would escape the directory ("../x", "a/b").
    """
    if data_dir is None:
        raise ConfigurationError(
            f"storage engine {engine!r} needs a data directory (set data_dir), "
            "or use the 'memory' engine for a volatile store"
        )
    if not isinstance(node_id, str) or not node_id:
        raise ConfigurationError(f"storage engine {engine!r}: invalid node id {node_id!r}")
    name = f"{node_id}{suffix}"
    # A node id like "a/../b" must not escape the data directory.
    if Path(name).name != name or node_id in (".", "..") or "\x00" in name:
        raise ConfigurationError(
            f"storage engine {engine!r}: node id {node_id!r} is not usable as a file name"
        )
    directory = Path(data_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"storage engine {engine!r}: cannot create data directory {directory}: {exc}"
        ) from exc
    return directory / name


def encode_position(position: int) -> bytes:
    """The 8-byte big-endian form of a position (checked to be unsigned 64-bit)."""
    return _POSITION.pack(check_position(position))


def decode_position(blob: bytes) -> int:
    """Inverse of :func:`encode_position` (reads the first 8 bytes)."""
    return int(_POSITION.unpack_from(blob)[0])


def position_bounds(start: int, end: int) -> tuple[bytes, bytes | None] | None:
    """Encoded ``[start, end)`` clipped to the position space, or None if empty.

    The upper bound is ``None`` when ``end`` lies past the last position
    (``2**64`` cannot be encoded in 8 bytes; nothing lies beyond it anyway).
    """
    start = max(start, 0)
    end = min(end, MAX_POSITION + 1)
    if start >= end:
        return None
    upper = None if end > MAX_POSITION else _POSITION.pack(end)
    return _POSITION.pack(start), upper


class DurableStorage(StorageEngine):
    """Base of the durable engines: ``durability``, the path, closing, chunked scans.

    Subclasses set :attr:`engine_name`, open their store in ``__init__`` after
    calling this one, and implement :meth:`_scan_chunk` and :meth:`_close`.
    """

    engine_name = "durable"

    def __init__(
        self, node_id: str, data_dir: Path | str | None, durability: str, suffix: str
    ) -> None:
        self.durability: Durability = check_durability(self.engine_name, durability)
        self.path = engine_path(self.engine_name, node_id, data_dir, suffix)
        self.node_id = node_id
        self._closed = False

    @property
    def buffers_writes(self) -> bool:
        """In ``group`` mode a write is durable once the next ``flush`` returns."""
        return self.durability == "group"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(node_id={self.node_id!r}, path={str(self.path)!r}, "
            f"durability={self.durability!r})"
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"storage engine {self.engine_name!r} for {self.path} is closed")

    def scan(self, start: int, end: int) -> Iterator[tuple[bytes, int, bytes]]:
        """Yield ``(key, position, record)`` for ``start <= position < end``, by (position, key).

        Reads :data:`SCAN_CHUNK` entries at a time in (position, key) order,
        holding no transaction, cursor or snapshot between chunks (so a paused
        scan never blocks a write, a commit or a flush). Each chunk sees every
        write made before it was read, so writes made while the iterator is
        paused may or may not show up, and a key moved further into the range
        meanwhile may be yielded twice. The first chunk is read on the first
        ``next()``.
        """
        self._check_open()
        bounds = position_bounds(start, end)
        if bounds is None:
            return iter(())
        return self._scan(*bounds)

    def _scan(self, lower: bytes, upper: bytes | None) -> Iterator[tuple[bytes, int, bytes]]:
        resume: object | None = None
        while True:
            self._check_open()
            rows, resume = self._scan_chunk(lower, upper, resume)
            yield from rows
            if resume is None:
                return

    @abstractmethod
    def _scan_chunk(self, lower: bytes, upper: bytes | None, resume: object | None) -> ScanChunk:
        """Read about :data:`SCAN_CHUNK` rows of ``[lower, upper)`` after ``resume``.

        ``resume`` is None for the first chunk, else the token the previous
        chunk returned. Returns the rows (in (position, key) order) and the
        next token, or None once the range is exhausted.
        """

    def close(self) -> None:
        """Flush (as the durability mode does), then close; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._close()

    @abstractmethod
    def _close(self) -> None:
        """Commit what is pending, make it as durable as the mode says, release the store."""
