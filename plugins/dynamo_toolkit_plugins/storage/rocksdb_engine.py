"""The ``rocksdb`` storage engine: one RocksDB database per node, via ``rocksdict``.

``<data_dir>/<node_id>.rocksdb`` holds three column families, all raw bytes
(rocksdict's ``raw_mode``: nothing is pickled):

* ``default``: key -> 8-byte big-endian position + record;
* ``positions``: 8-byte big-endian position + key -> ``b""``, the index a scan
  reads as a range;
* ``meta``: ``b"count"`` -> the number of keys, 8 bytes big-endian, so that
  ``len()`` needs no scan at open.

Each ``put``/``delete`` that touches the index is one atomic ``WriteBatch``
across the column families.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import attrs
from rocksdict import (
    BlockBasedOptions,
    ColumnFamily,
    DBRecoveryMode,
    Options,
    Rdict,
    WriteBatch,
    WriteOptions,
)

from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.storage.durability import (
    POSITION_SIZE,
    SCAN_CHUNK,
    DurableStorage,
    ScanChunk,
    decode_position,
    encode_position,
)

__all__ = ["RocksdbStorage", "dtk_register_components"]

_COUNT: Final = b"count"


@attrs.define
class _Handles:
    """Everything that keeps the database open: all dropped on close.

    (rocksdict keeps the database, and its lock, alive while any column
    family object or handle is referenced.)
    """

    db: Rdict
    index: Rdict  # the ``positions`` column family, for iterating
    records_cf: ColumnFamily
    index_cf: ColumnFamily
    meta_cf: ColumnFamily


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    # After a crash, recover every write up to the first damaged WAL record.
    options.set_wal_recovery_mode(DBRecoveryMode.point_in_time())
    options.set_keep_log_file_num(3)
    return options


class RocksdbStorage(DurableStorage):
    """Durable engine: ``<data_dir>/<node_id>.rocksdb``, a RocksDB database (rocksdict).

    Every write goes to RocksDB's write-ahead log and memtable before it
    returns, so each ``put`` is in the OS's cache when it returns whatever the
    mode (rocksdict cannot hold a write batch open across calls and still
    read from it, and RocksDB needs none to be fast). Parameter
    ``durability`` (``"group"`` by default) decides when the log is synced:

    * ``"sync"``: each write is synced (``WriteOptions.sync``) before it
      returns. Risks: nothing acknowledged is lost, even on power loss. One
      fsync per write.
    * ``"group"``: :meth:`flush`, which the server calls every
      ``flush_interval``, and :meth:`close` sync the log (``FlushWAL(sync)``).
      Risks: a process crash loses nothing; an OS crash or power loss loses at
      most the writes since the last flush, recovering to a consistent point.
      ``flush`` blocks for the fsync.
    * ``"none"``: the log is never synced. Risks: a process crash loses
      nothing; an OS crash or power loss loses whatever the OS had not written
      back yet (typically up to 30 s on Linux), recovering to a consistent
      point.

    One database per node, opened once per process (RocksDB locks it).
    """

    engine_name = "rocksdb"

    def __init__(
        self, node_id: str, data_dir: Path | str | None = None, durability: str = "group"
    ) -> None:
        super().__init__(node_id, data_dir, durability, ".rocksdb")
        records_options = _options()
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)  # point reads of absent keys skip most files
        records_options.set_block_based_table_factory(table)
        db = Rdict(
            str(self.path),
            options=records_options,
            column_families={"positions": _options(), "meta": _options()},
        )
        try:
            handles = _Handles(
                db=db,
                index=db.get_column_family("positions"),
                records_cf=db.get_column_family_handle("default"),
                index_cf=db.get_column_family_handle("positions"),
                meta_cf=db.get_column_family_handle("meta"),
            )
            count = db.get_column_family("meta").get(_COUNT)
        except BaseException:
            db.close()
            raise
        self._handles: _Handles | None = handles
        self._count = 0 if count is None else int.from_bytes(count, "big")
        self._write_options = WriteOptions()
        self._write_options.sync = self.durability == "sync"

    def _open(self) -> _Handles:
        handles = self._handles
        if handles is None:
            self._check_open()
            raise RuntimeError("rocksdb engine: not open")  # unreachable: closed raised
        return handles

    def get(self, key: bytes) -> bytes | None:
        """Return the record under ``key``, or ``None``."""
        value = self._open().db.get(bytes(key))
        return None if value is None else bytes(value[POSITION_SIZE:])

    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Store ``record`` under ``key`` at ``position`` (synced as the mode says)."""
        encoded = encode_position(position)
        key, record = bytes(key), bytes(record)
        h = self._open()
        old = h.db.get(key)
        if old is not None and old[:POSITION_SIZE] == encoded:
            h.db.put(key, encoded + record, self._write_options)  # index unchanged
            return
        batch = WriteBatch(raw_mode=True)
        batch.put(key, encoded + record, h.records_cf)
        batch.put(encoded + key, b"", h.index_cf)
        if old is None:
            batch.put(_COUNT, (self._count + 1).to_bytes(8, "big"), h.meta_cf)
        else:
            batch.delete(old[:POSITION_SIZE] + key, h.index_cf)
        h.db.write(batch, self._write_options)
        if old is None:
            self._count += 1

    def delete(self, key: bytes) -> None:
        """Remove ``key``; absent keys are fine."""
        key = bytes(key)
        h = self._open()
        old = h.db.get(key)
        if old is None:
            return
        batch = WriteBatch(raw_mode=True)
        batch.delete(key, h.records_cf)
        batch.delete(old[:POSITION_SIZE] + key, h.index_cf)
        batch.put(_COUNT, (self._count - 1).to_bytes(8, "big"), h.meta_cf)
        h.db.write(batch, self._write_options)
        self._count -= 1

    def _scan_chunk(self, lower: bytes, upper: bytes | None, resume: object | None) -> ScanChunk:
        h = self._open()
        iterator = h.index.iter()
        start = lower if resume is None else resume
        assert isinstance(start, bytes)
        iterator.seek(start)
        index_keys: list[bytes] = []
        exhausted = False
        while True:
            if not iterator.valid():
                iterator.status()  # raises if the iteration failed rather than ended
                exhausted = True
                break
            index_key = iterator.key()
            if index_key == resume:
                iterator.next()
                continue
            if upper is not None and index_key[:POSITION_SIZE] >= upper:
                exhausted = True
                break
            if len(index_keys) == SCAN_CHUNK:
                break
            index_keys.append(index_key)
            iterator.next()
        del iterator  # an iterator keeps the database open
        keys = [index_key[POSITION_SIZE:] for index_key in index_keys]
        lookup: list[str | int | float | bytes | bool] = list(keys)  # as rocksdict types it
        values = h.db.get(lookup) if keys else []  # one multi-get
        assert isinstance(values, list)
        rows = []
        for key, index_key, value in zip(keys, index_keys, values, strict=True):
            if value is None or value[:POSITION_SIZE] != index_key[:POSITION_SIZE]:
                # Cannot happen: record and index change in one write batch.
                raise RuntimeError(f"rocksdb engine: index out of step with records in {self.path}")
            rows.append((key, decode_position(value), bytes(value[POSITION_SIZE:])))
        return rows, (None if exhausted else index_keys[-1])

    def __len__(self) -> int:
        """Number of keys stored (kept in the ``meta`` column family)."""
        self._open()
        return self._count

    def flush(self) -> None:
        """Sync the write-ahead log (group mode; nothing to do otherwise)."""
        h = self._open()
        if self.durability == "group":
            h.db.flush_wal(True)

    def _close(self) -> None:
        handles, self._handles = self._handles, None
        if handles is None:
            return
        db = handles.db
        try:
            if self.durability == "group":
                db.flush_wal(True)
        finally:
            del handles
            db.close()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``rocksdb`` storage engine."""
    registry.add_storage_engine("rocksdb", RocksdbStorage)
