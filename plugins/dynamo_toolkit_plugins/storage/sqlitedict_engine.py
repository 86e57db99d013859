"""The ``sqlitedict`` storage engine: one SQLite file per node, via ``sqlitedict``.

Keys are stored hex-encoded (sqlitedict keys are ``TEXT``); each value is the
8-byte big-endian position followed by the record bytes.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from sqlitedict import SqliteDict

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import StorageEngine
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.storage.memory import check_position

__all__ = ["SqliteDictStorage", "dtk_register_components"]

_POSITION = struct.Struct(">Q")


# sqlitedict pickles values by default. Unpickling runs arbitrary code chosen by
# whoever wrote the file, and records are opaque bytes anyway, so a fixed layout
# is both safe and faster than pickle.
def _encode_value(value: tuple[int, bytes]) -> bytes:
    position, record = value
    return _POSITION.pack(position) + record


def _decode_value(blob: bytes) -> tuple[int, bytes]:
    if len(blob) < _POSITION.size:
        raise ValueError("corrupt sqlitedict record: shorter than its position header")
    (position,) = _POSITION.unpack_from(blob)
    return position, bytes(blob[_POSITION.size :])


def _encode_key(key: bytes) -> str:
    # Hex is reversible for any bytes (b"", non-UTF-8) and keeps byte order.
    return key.hex()


def _decode_key(text: str) -> bytes:
    return bytes.fromhex(text)


class SqliteDictStorage(StorageEngine):
    """Durable engine: ``<data_dir>/<node_id>.sqlite`` (or ``<data_dir>/<filename>``).

    Parameters: ``filename`` overrides the file name (relative to ``data_dir``);
    ``autocommit`` commits every ``put``/``delete`` before it returns;
    ``tablename`` and ``journal_mode`` are passed to SQLite; ``fsync`` turns
    SQLite's ``synchronous`` pragma back to ``FULL`` (sqlitedict sets it ``OFF``).

    Durability: with ``autocommit=False`` (the default) writes are batched in
    one transaction committed by :meth:`flush` and :meth:`close`. An
    un-flushed ``put`` is immediately visible to this engine's reads, but is
    lost if the process dies before the next flush; the node then relies on
    its other replicas (hinted hand-off, read repair, anti-entropy) to restore
    it, which is how Dynamo gets durability in the first place. With
    ``autocommit=True`` every write is committed before it returns (slower).
    Committed data survives a process crash; surviving an OS crash or power
    loss also needs ``fsync=True``.

    :meth:`scan` reads and decodes every row, then sorts the matches: O(n) in
    the number of stored keys, adequate for the occasional anti-entropy pass.
    """

    def __init__(
        self,
        node_id: str,
        data_dir: Path | str | None = None,
        filename: str | None = None,
        autocommit: bool = False,
        tablename: str = "records",
        journal_mode: str = "DELETE",
        fsync: bool = False,
    ) -> None:
        if data_dir is None:
            raise ConfigurationError(
                "storage engine 'sqlitedict' needs a data directory (set data_dir), "
                "or use the 'memory' engine for a volatile store"
            )
        name = filename if filename is not None else f"{node_id}.sqlite"
        # A node id like "a/../b" must not escape the data directory.
        if not name or Path(name).name != name or name in (".", ".."):
            raise ConfigurationError(f"invalid sqlitedict file name {name!r} (node id {node_id!r})")
        directory = Path(data_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create data directory {directory}: {exc}") from exc
        self.node_id = node_id
        self.path = directory / name
        self.autocommit = bool(autocommit)
        self._db = SqliteDict(
            os.fspath(self.path),
            tablename=tablename,
            autocommit=self.autocommit,
            journal_mode=journal_mode,
            encode=_encode_value,
            decode=_decode_value,
            encode_key=_encode_key,
            decode_key=_decode_key,
            # The default captures a traceback on every statement: costly per put.
            outer_stack=False,
        )
        if fsync:
            self._db.conn.execute("PRAGMA synchronous=FULL")
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteDictStorage(node_id={self.node_id!r}, path={os.fspath(self.path)!r})"

    def _db_open(self) -> SqliteDict:
        if self._closed:
            raise RuntimeError(f"storage engine for {self.path} is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        """Return the record under ``key``, or ``None``."""
        try:
            _, record = self._db_open()[bytes(key)]
        except KeyError:
            return None
        return bytes(record)

    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Store ``record`` under ``key`` at ``position`` (committed now only with autocommit)."""
        check_position(position)
        self._db_open()[bytes(key)] = (position, bytes(record))

    def delete(self, key: bytes) -> None:
        """Remove ``key``; absent keys are fine."""
        with contextlib.suppress(KeyError):
            del self._db_open()[bytes(key)]

    def scan(self, start: int, end: int) -> Iterator[tuple[bytes, int, bytes]]:
        """Yield ``(key, position, record)`` for ``start <= position < end``, by (position, key)."""
        matches = [
            (position, key, record)
            for key, (position, record) in self._db_open().items()
            if start <= position < end
        ]
        matches.sort(key=lambda item: (item[0], item[1]))
        return ((key, position, record) for position, key, record in matches)

    def __len__(self) -> int:
        """Number of keys stored."""
        return len(self._db_open())

    @property
    def buffers_writes(self) -> bool:
        """Without ``autocommit``, a write is committed by the next ``flush``."""
        return not self.autocommit

    def flush(self) -> None:
        """Commit pending writes (blocks until SQLite has them)."""
        self._db_open().commit(blocking=True)

    def close(self) -> None:
        """Commit and close the file; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        # sqlitedict's close() only commits in autocommit mode: commit ourselves.
        try:
            self._db.commit(blocking=True)
        finally:
            self._db.close()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``sqlitedict`` storage engine."""
    registry.add_storage_engine("sqlitedict", SqliteDictStorage)
