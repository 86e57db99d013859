"""The ``StorageEngine`` interface: durable local records of one node."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

__all__ = ["StorageEngine"]


class StorageEngine(ABC):
    """Local key -> record bytes, with each key's 64-bit position kept for scans.

    The kernel stores serialised sibling sets (value + version); an engine never
    interprets them. Calls are synchronous and should be short: the node calls
    them from its event loop.
    """

    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """Return the record stored under ``key``, or ``None``."""

    @abstractmethod
    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Store ``record`` under ``key`` (replacing any), remembering ``position``."""

    @abstractmethod
    def delete(self, key: bytes) -> None:
        """Remove ``key`` physically (tombstone collection only); no error if absent."""

    @abstractmethod
    def scan(self, start: int, end: int) -> Iterator[tuple[bytes, int, bytes]]:
        """Yield ``(key, position, record)`` for positions in ``[start, end)``, by position."""

    #: False for engines whose ``len()`` is an estimate (``rocksdb`` by
    #: default: an exact count would cost an LSM tree a read per write).
    exact_len: bool = True

    @abstractmethod
    def __len__(self) -> int:
        """Number of keys stored (an estimate where :attr:`exact_len` is false)."""

    @property
    def buffers_writes(self) -> bool:
        """True when a ``put`` is durable only once a later :meth:`flush` returns.

        The node then acknowledges a write only after the flush that covers it
        (group commit: writers waiting at once share one flush). False by
        default: ``put`` itself makes the write as durable as the engine goes.
        """
        return False

    def flush(self) -> None:  # noqa: B027 - optional hook, nothing to flush by default
        """Make every acknowledged ``put`` durable (no-op for volatile engines)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources; the engine is unusable afterwards."""
