"""The ``rocksdb`` storage engine: one RocksDB database per node, via ``rocksdict``.

``<data_dir>/<node_id>.rocksdb`` holds three column families, all raw bytes
(rocksdict's ``raw_mode``: nothing is pickled):

* ``default``: 8-byte big-endian position + key -> record, ordered by
  (position, key): a scan is an iterator over a range of it, a write one put;
* ``moved``: key -> position, for keys stored away from their *home*
  position, the kernel's key hash (:func:`~dynamo_toolkit.values.key_position`).
  A point read looks a key up at its home position, which is where a node
  stores every key; only an engine that has ever held a moved key (the hint
  store files records under their owner's key's position) reads ``moved``
  first;
* ``meta``: with ``count = "exact"``, ``b"count"`` -> the number of keys
  (8 bytes big-endian) as of the last clean close, and ``b"clean"`` ->
  ``b"1"`` after such a close, ``b"0"`` while open (or after the estimating
  mode had it open). A database not closed cleanly is counted once at open
  (a scan of its keys); otherwise ``len()`` needs no scan.

A write that moves a key is one atomic ``WriteBatch`` across the column
families; other writes are one put or delete. Keeping the count exact (an
option) costs a read before a write when the bloom filter cannot rule the key
out, that is, on updates; by default ``len()`` is RocksDB's estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, cast

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

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.values import key_position_bytes
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
_CLEAN: Final = b"clean"
_COUNT_MODES: Final = ("estimate", "exact")


@attrs.define
class _Handles:
    """Everything that keeps the database open: all dropped on close.

    (rocksdict keeps the database, and its lock, alive while any column
    family object or handle is referenced.)
    """

    db: Rdict
    moved: Rdict  # the ``moved`` column family, for reading
    records_cf: ColumnFamily
    moved_cf: ColumnFamily
    meta_cf: ColumnFamily


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    # After a crash, recover every write up to the first damaged WAL record.
    options.set_wal_recovery_mode(DBRecoveryMode.point_in_time())
    options.set_keep_log_file_num(3)
    return options


def _existing_families(path: Path) -> list[str]:
    """Column families of the database at ``path`` ([] if there is none yet)."""
    if not (path / "CURRENT").exists():
        return []
    return list(Rdict.list_cf(str(path), _options()))


def _exists(db: Rdict, stored: bytes) -> bool:
    """Whether ``stored`` is in the database, reading from disk only if need be.

    The bloom filters rule out most absent keys, and a key found in memory
    (memtable or block cache) comes back with its value, without any IO.
    """
    # rocksdict's stub says bool; with fetch=True it returns (may exist, value or None).
    maybe, value = cast(tuple[bool, bytes | None], db.key_may_exist(stored, True))
    if not maybe:
        return False
    return value is not None or db.get(stored) is not None


def _count_keys(db: Rdict) -> int:
    """Keys in the default column family, by a scan (after an unclean close)."""
    iterator = db.iter()
    iterator.seek_to_first()
    count = 0
    while iterator.valid():
        count += 1
        iterator.next()
    iterator.status()  # raises if the scan failed rather than ended
    del iterator  # an iterator keeps the database open
    return count


def _any_key(family: Rdict) -> bool:
    iterator = family.iter()
    iterator.seek_to_first()
    found = bool(iterator.valid())
    del iterator  # an iterator keeps the database open
    return found


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

    Parameter ``count`` (``"estimate"`` by default) decides what ``len()``
    returns:

    * ``"estimate"``: RocksDB's own estimate (``rocksdb.estimate-num-keys``),
      which overwrites and deletes not yet compacted away can push off by
      some percent. Writes are blind puts, as RocksDB is built for.
    * ``"exact"``: the engine counts. An LSM tree cannot tell a new key from
      an existing one without looking, so each write first asks the bloom
      filters and memory (``key_may_exist``), and reads when they cannot
      answer, that is, on most updates: about a read per update.

    One database per node, opened once per process (RocksDB locks it).
    """

    engine_name = "rocksdb"

    def __init__(
        self,
        node_id: str,
        data_dir: Path | str | None = None,
        durability: str = "group",
        count: str = "estimate",
    ) -> None:
        if count not in _COUNT_MODES:
            raise ConfigurationError(
                f"storage engine 'rocksdb': count must be 'estimate' or 'exact', got {count!r}"
            )
        super().__init__(node_id, data_dir, durability, ".rocksdb")
        #: False: ``len()`` is RocksDB's estimate (see the class docstring).
        self.exact_len = count == "exact"
        records_options = _options()
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)  # point reads of absent keys skip most files
        records_options.set_block_based_table_factory(table)
        if "positions" in _existing_families(self.path):
            raise ConfigurationError(
                f"storage engine 'rocksdb': {self.path} was written by an older version "
                "of this engine (records + positions index); move it away or empty it"
            )
        db = Rdict(
            str(self.path),
            options=records_options,
            column_families={"moved": _options(), "meta": _options()},
        )
        try:
            handles = _Handles(
                db=db,
                moved=db.get_column_family("moved"),
                records_cf=db.get_column_family_handle("default"),
                moved_cf=db.get_column_family_handle("moved"),
                meta_cf=db.get_column_family_handle("meta"),
            )
            stored_count = b"\x00" * 8
            if self.exact_len:
                meta = db.get_column_family("meta")
                found = meta.get(_COUNT)
                # Not closed cleanly (or by the estimating mode): count once.
                if isinstance(found, bytes) and meta.get(_CLEAN) == b"1":
                    stored_count = found
                else:
                    stored_count = _count_keys(db).to_bytes(8, "big")
            # Until the next clean close, the stored count may fall behind.
            self._write_meta(handles, {_CLEAN: b"0"})
            # Once true, stays true: reads then check ``moved`` first.
            self._maybe_moved = _any_key(handles.moved)
        except BaseException:
            db.close()
            raise
        self._handles: _Handles | None = handles
        self._count = int.from_bytes(stored_count, "big")
        self._write_options = WriteOptions()
        self._write_options.sync = self.durability == "sync"

    def _open(self) -> _Handles:
        handles = self._handles
        if handles is None:
            self._check_open()
            raise RuntimeError("rocksdb engine: not open")  # unreachable: closed raised
        return handles

    def _where(self, h: _Handles, key: bytes, home: bytes) -> bytes:
        """The position ``key`` is stored at if anywhere: ``home``, unless it moved."""
        if self._maybe_moved:
            moved = h.moved.get(key)
            if moved is not None:
                return bytes(moved)
        return home

    def get(self, key: bytes) -> bytes | None:
        """Return the record under ``key``, or ``None``."""
        # The hot path of every read: kept to the fewest Python steps.
        h = self._handles
        if h is None:
            h = self._open()  # raises: closed
        if type(key) is not bytes:
            key = bytes(key)
        home = key_position_bytes(key)
        if self._maybe_moved:
            return h.db.get(self._where(h, key, home) + key)
        return h.db.get(home + key)

    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Store ``record`` under ``key`` at ``position`` (synced as the mode says)."""
        encoded = encode_position(position)
        key, record = bytes(key), bytes(record)
        h = self._open()
        home = key_position_bytes(key)
        old = self._where(h, key, home)
        stored = encoded + key
        if old == encoded:
            new = self.exact_len and not _exists(h.db, stored)
            h.db.put(stored, record, self._write_options)
            if new:
                self._count += 1
            return
        # A move: the record leaves its old place in the same batch.
        new = self.exact_len and h.db.get(old + key) is None
        batch = WriteBatch(raw_mode=True)
        batch.delete(old + key, h.records_cf)
        batch.put(stored, record, h.records_cf)
        if encoded == home:
            batch.delete(key, h.moved_cf)
        else:
            self._maybe_moved = True
            batch.put(key, encoded, h.moved_cf)
        h.db.write(batch, self._write_options)
        if new:
            self._count += 1

    def delete(self, key: bytes) -> None:
        """Remove ``key``; absent keys are fine."""
        key = bytes(key)
        h = self._open()
        home = key_position_bytes(key)
        old = self._where(h, key, home)
        if self.exact_len and h.db.get(old + key) is None:
            return
        if old == home:
            h.db.delete(old + key, self._write_options)  # absent keys are fine
        else:
            batch = WriteBatch(raw_mode=True)
            batch.delete(old + key, h.records_cf)
            batch.delete(key, h.moved_cf)
            h.db.write(batch, self._write_options)
        if self.exact_len:
            self._count -= 1

    def _scan_chunk(self, lower: bytes, upper: bytes | None, resume: object | None) -> ScanChunk:
        h = self._open()
        iterator = h.db.iter()
        start = lower if resume is None else resume
        assert isinstance(start, bytes)
        iterator.seek(start)
        rows: list[tuple[bytes, int, bytes]] = []
        last: bytes | None = None
        exhausted = False
        while True:
            if not iterator.valid():
                iterator.status()  # raises if the iteration failed rather than ended
                exhausted = True
                break
            stored = iterator.key()
            if stored == resume:
                iterator.next()
                continue
            if upper is not None and stored[:POSITION_SIZE] >= upper:
                exhausted = True
                break
            if len(rows) == SCAN_CHUNK:
                break
            rows.append((bytes(stored[POSITION_SIZE:]), decode_position(stored), iterator.value()))
            last = stored
            iterator.next()
        del iterator  # an iterator keeps the database open
        return rows, (None if exhausted else last)

    def __len__(self) -> int:
        """Number of keys stored: exact with ``count = "exact"``, else RocksDB's estimate."""
        h = self._open()
        if self.exact_len:
            return self._count
        return int(h.db.property_int_value("rocksdb.estimate-num-keys") or 0)

    def flush(self) -> None:
        """Sync the write-ahead log (group mode; nothing to do otherwise)."""
        h = self._open()
        if self.durability == "group":
            h.db.flush_wal(True)

    def _write_meta(self, handles: _Handles, entries: dict[bytes, bytes]) -> None:
        batch = WriteBatch(raw_mode=True)
        for name, value in entries.items():
            batch.put(name, value, handles.meta_cf)
        options = WriteOptions()
        options.sync = self.durability != "none"
        handles.db.write(batch, options)

    def _close(self) -> None:
        handles, self._handles = self._handles, None
        if handles is None:
            return
        db = handles.db
        try:
            if self.durability == "group":
                db.flush_wal(True)
            if self.exact_len:
                self._write_meta(handles, {_COUNT: self._count.to_bytes(8, "big"), _CLEAN: b"1"})
        finally:
            del handles
            db.close()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``rocksdb`` storage engine."""
    registry.add_storage_engine("rocksdb", RocksdbStorage)
