"""The ``memory`` storage engine: a dict, lost when the process ends.

The default engine, so ``get``/``put``/``delete`` are O(1). Scans (used by
anti-entropy and hand-off, far rarer than reads and writes) use a sorted index
that is rebuilt lazily, only after the set of (position, key) pairs changed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path

from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import StorageEngine
from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["MAX_POSITION", "MemoryStorage", "check_position", "dtk_register_components"]

#: Positions are unsigned 64-bit integers: ``0 <= position <= MAX_POSITION``.
MAX_POSITION = 2**64 - 1


def check_position(position: int) -> int:
    """Return ``position`` if it is an unsigned 64-bit int, else raise ValueError."""
    if isinstance(position, bool) or not isinstance(position, int):
        raise TypeError(f"position must be an int, got {type(position).__name__}")
    if not 0 <= position <= MAX_POSITION:
        raise ValueError(f"position {position} is outside [0, 2**64)")
    return position


class MemoryStorage(StorageEngine):
    """Volatile engine: ``key -> (position, record)`` in a dict.

    Built as ``MemoryStorage(node_id=..., data_dir=...)``; both are accepted for
    uniformity with durable engines and ignored; unknown parameters are refused
    (a typo in configuration should not pass silently).
    """

    def __init__(self, node_id: str | None = None, data_dir: Path | str | None = None) -> None:
        self.node_id = node_id
        self._data: dict[bytes, tuple[int, bytes]] = {}
        # Sorted (position, key) pairs, valid only while ``_dirty`` is False.
        self._index: list[tuple[int, bytes]] = []
        self._dirty = False

    def __repr__(self) -> str:
        return f"MemoryStorage(node_id={self.node_id!r}, keys={len(self._data)})"

    def get(self, key: bytes) -> bytes | None:
        """Return the record under ``key``, or ``None``."""
        entry = self._data.get(key)
        return None if entry is None else entry[1]

    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Store ``record`` under ``key`` at ``position`` (replacing any)."""
        check_position(position)
        key, record = bytes(key), bytes(record)  # copy: callers may reuse a bytearray
        previous = self._data.get(key)
        # Rewriting a key at its old position (the common update) leaves the index valid.
        if previous is None or previous[0] != position:
            self._dirty = True
        self._data[key] = (position, record)

    def delete(self, key: bytes) -> None:
        """Remove ``key``; absent keys are fine."""
        if self._data.pop(key, None) is not None:
            self._dirty = True

    def _sorted_index(self) -> list[tuple[int, bytes]]:
        if self._dirty:
            self._index = sorted((position, key) for key, (position, _) in self._data.items())
            self._dirty = False
        return self._index

    def scan(self, start: int, end: int) -> Iterator[tuple[bytes, int, bytes]]:
        """Yield ``(key, position, record)`` with ``start <= position < end``, by (position, key).

        The range is located now; records are read as the iterator advances, and
        keys deleted or moved meanwhile are skipped.
        """
        index = self._sorted_index()
        lo = bisect.bisect_left(index, (start, b""))
        # Every key at position end - 1 sorts before (end, b"").
        hi = bisect.bisect_left(index, (end, b""), lo=lo) if end > start else lo
        return self._iter_range(index[lo:hi])

    def _iter_range(self, pairs: list[tuple[int, bytes]]) -> Iterator[tuple[bytes, int, bytes]]:
        for position, key in pairs:
            entry = self._data.get(key)
            if entry is not None and entry[0] == position:
                yield key, position, entry[1]

    def __len__(self) -> int:
        """Number of keys stored."""
        return len(self._data)

    def close(self) -> None:
        """Drop the data (nothing to flush); closing twice is harmless."""
        self._data.clear()
        self._index = []
        self._dirty = False


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``memory`` storage engine."""
    registry.add_storage_engine("memory", MemoryStorage)
