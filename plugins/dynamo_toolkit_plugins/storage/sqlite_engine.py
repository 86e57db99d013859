"""The ``sqlite`` storage engine: one SQLite database per node, stdlib ``sqlite3``.

Schema (no pickle: keys, positions and records are stored as plain BLOBs)::

    CREATE TABLE records(position BLOB, key BLOB, record BLOB)
    CREATE UNIQUE INDEX records_position ON records(position, key)
    CREATE TABLE moved(key BLOB PRIMARY KEY, position BLOB) WITHOUT ROWID

A position is stored as its 8-byte big-endian encoding (SQLite's INTEGER is
signed 64-bit, so it cannot hold positions >= 2**63). BLOBs compare with
``memcmp``, so that encoding sorts numerically: the one index orders rows by
(position, key), and serves both scans (range reads) and point reads. (A
``WITHOUT ROWID`` table keyed the same way loads about 1.5x slower: random
inserts move whole records around its leaves; rows appended by rowid do not.)

A point read needs the key's position: it is the key's *home* position, the
kernel's key hash (:func:`~dynamo_toolkit.values.key_position`), which is what
a node stores every key at. A key put at any other position (the hint store
files records under their owner's key's position) is also listed in
``moved``, which reads consult only while it is not empty.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.values import key_position_bytes
from dynamo_toolkit_plugins.storage.durability import (
    GROUP_COMMIT_LIMIT,
    SCAN_CHUNK,
    DurableStorage,
    ScanChunk,
    decode_position,
    encode_position,
)

__all__ = ["SqliteStorage", "dtk_register_components"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records("
    "position BLOB NOT NULL, key BLOB NOT NULL, record BLOB NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS records_position ON records(position, key)",
    "CREATE TABLE IF NOT EXISTS moved(key BLOB PRIMARY KEY NOT NULL, "
    "position BLOB NOT NULL) WITHOUT ROWID",
)
_GET = "SELECT record FROM records WHERE position = ? AND key = ?"
_UPDATE = "UPDATE records SET record = ? WHERE position = ? AND key = ?"
_INSERT = "INSERT OR IGNORE INTO records(record, position, key) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM records WHERE position = ? AND key = ?"
_MOVED_GET = "SELECT position FROM moved WHERE key = ?"
_MOVED_PUT = "INSERT OR REPLACE INTO moved(key, position) VALUES (?, ?)"
_MOVED_DELETE = "DELETE FROM moved WHERE key = ?"
_COLUMNS = "SELECT key, position, record FROM records WHERE "
_ORDER = f" ORDER BY position, key LIMIT {SCAN_CHUNK}"
# First chunk / later chunks (resuming after the last (position, key) read),
# each with or without an upper bound. All four are range reads of the table.
_SCAN_FIRST = _COLUMNS + "position >= ?" + _ORDER
_SCAN_FIRST_BOUNDED = _COLUMNS + "position >= ? AND position < ?" + _ORDER
_SCAN_NEXT = _COLUMNS + "(position, key) > (?, ?)" + _ORDER
_SCAN_NEXT_BOUNDED = _COLUMNS + "(position, key) > (?, ?) AND position < ?" + _ORDER


class SqliteStorage(DurableStorage):
    """Durable engine: ``<data_dir>/<node_id>.sqlite3``, SQLite in WAL mode (stdlib sqlite3).

    Parameter ``durability`` (``"group"`` by default):

    * ``"sync"``: every ``put``/``delete`` is its own transaction, committed
      with ``synchronous=FULL`` (the WAL is fsynced) before it returns. Risks:
      nothing acknowledged is lost, even on power loss (given honest disks);
      costs one fsync per write.
    * ``"group"``: writes go into one open transaction (visible to this
      engine's reads at once), committed with an fsync of the WAL by
      :meth:`flush`, which the server calls every ``flush_interval``, by
      :meth:`close`, and after 10 000 writes. Risks: a crash of the process or
      the machine loses the writes since the last commit (a whole transaction,
      never part of one); the file stays consistent. ``flush`` blocks for one
      fsync.
    * ``"none"``: every write is committed at once but nothing is ever synced
      (``synchronous=OFF``). Risks: a crash of the process loses nothing
      (committed data is in the OS's cache); an OS crash or power loss loses
      what the OS had not written back yet, and SQLite documents that the
      database may then be corrupted.

    One connection, to be used from one thread (the node's event loop).
    """

    engine_name = "sqlite"

    def __init__(
        self, node_id: str, data_dir: Path | str | None = None, durability: str = "group"
    ) -> None:
        super().__init__(node_id, data_dir, durability, ".sqlite3")
        # isolation_level=None: the sqlite3 module opens no transaction itself;
        # group mode issues BEGIN/COMMIT explicitly.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigurationError(
                    f"storage engine 'sqlite': cannot use WAL mode for {self.path} (got {mode!r})"
                )
            synchronous = "OFF" if self.durability == "none" else "FULL"
            conn.execute(f"PRAGMA synchronous={synchronous}")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "kv" in tables:
                raise ConfigurationError(
                    f"storage engine 'sqlite': {self.path} was written by an older version "
                    "of this engine (table kv, position index); move it away or empty it"
                )
            for statement in _SCHEMA:
                conn.execute(statement)
            self._count: int = conn.execute("SELECT count(*) FROM records").fetchone()[0]
            self._moved: int = conn.execute("SELECT count(*) FROM moved").fetchone()[0]
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._group = self.durability == "group"
        self._pending = 0  # writes in the open transaction (group mode)

    def _write_begin(self) -> sqlite3.Connection:
        """The connection, inside a transaction in group mode."""
        self._check_open()
        conn = self._conn
        if self._group and not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
        return conn

    def _write_end(self) -> None:
        if self._group:
            self._pending += 1
            if self._pending >= GROUP_COMMIT_LIMIT:
                self.flush()

    def _position_of(self, key: bytes, home: bytes) -> bytes:
        """Where ``key`` is stored if anywhere: ``home`` unless it moved."""
        if self._moved:
            row = self._conn.execute(_MOVED_GET, (key,)).fetchone()
            if row is not None:
                return bytes(row[0])
        return home

    def get(self, key: bytes) -> bytes | None:
        """Return the record under ``key``, or ``None``."""
        self._check_open()
        key = bytes(key)
        position = self._position_of(key, key_position_bytes(key))
        row = self._conn.execute(_GET, (position, key)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Store ``record`` under ``key`` at ``position`` (durable as the mode says)."""
        encoded = encode_position(position)
        key, record = bytes(key), bytes(record)
        conn = self._write_begin()
        home = key_position_bytes(key)
        old = self._position_of(key, home)
        moving = old != encoded
        if moving:  # the row leaves its old place, in one transaction
            self._begin_step(conn)
            if conn.execute(_DELETE, (old, key)).rowcount:
                self._count -= 1
            if encoded == home:
                conn.execute(_MOVED_DELETE, (key,))
                self._moved -= 1
            else:
                if old == home:
                    self._moved += 1
                conn.execute(_MOVED_PUT, (key, encoded))
        # INSERT OR IGNORE first: its row count tells whether the key is new
        # (an upsert's would not), keeping len() O(1); an existing key is then
        # updated in place.
        if conn.execute(_INSERT, (record, encoded, key)).rowcount:
            self._count += 1
        else:
            conn.execute(_UPDATE, (record, encoded, key))
        if moving:
            self._end_step(conn)
        self._write_end()

    def _begin_step(self, conn: sqlite3.Connection) -> None:
        # Several statements that must land together: in sync and none modes
        # each statement is otherwise its own transaction.
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")

    def _end_step(self, conn: sqlite3.Connection) -> None:
        if not self._group:
            conn.execute("COMMIT")

    def delete(self, key: bytes) -> None:
        """Remove ``key``; absent keys are fine."""
        key = bytes(key)
        conn = self._write_begin()
        home = key_position_bytes(key)
        position = self._position_of(key, home)
        moved = position != home
        if moved:
            self._begin_step(conn)
        if conn.execute(_DELETE, (position, key)).rowcount:
            self._count -= 1
        if moved:
            conn.execute(_MOVED_DELETE, (key,))
            self._moved -= 1
            self._end_step(conn)
        self._write_end()

    def _scan_chunk(self, lower: bytes, upper: bytes | None, resume: object | None) -> ScanChunk:
        if resume is None:
            args: tuple[bytes, ...] = (lower,)
            query = _SCAN_FIRST
        else:
            assert isinstance(resume, tuple)
            args = resume
            query = _SCAN_NEXT
        if upper is not None:
            args = (*args, upper)
            query = _SCAN_FIRST_BOUNDED if resume is None else _SCAN_NEXT_BOUNDED
        found = self._conn.execute(query, args).fetchall()
        rows = [(bytes(k), decode_position(p), bytes(r)) for k, p, r in found]
        if len(found) < SCAN_CHUNK:
            return rows, None
        last_key, last_position, _ = found[-1]
        return rows, (last_position, last_key)

    def __len__(self) -> int:
        """Number of keys stored (counted at open, then kept up to date)."""
        self._check_open()
        return self._count

    def flush(self) -> None:
        """Commit the open transaction, fsyncing the WAL (group mode; else nothing to do)."""
        self._check_open()
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")
        self._pending = 0

    def _close(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")
        finally:
            self._conn.close()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``sqlite`` storage engine."""
    registry.add_storage_engine("sqlite", SqliteStorage)
