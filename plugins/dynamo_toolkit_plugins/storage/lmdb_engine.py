"""The ``lmdb`` storage engine: one LMDB environment per node (``lmdb`` binding).

Two named databases in ``<data_dir>/<node_id>.lmdb/``:

* ``by_position``: 8-byte big-endian position + ident -> record. One B-tree
  ordered by (position, key): a scan is a cursor walk over a range of it, and
  a write is one put.
* ``moved``: ``b"\x00" + ident`` -> position, for keys stored away from their
  *home* position, the kernel's key hash
  (:func:`~dynamo_toolkit.values.key_position`). A point read looks a key up
  at its home position, which is where a node stores every key; only an
  engine that has ever held a moved key (the hint store files records under
  their owner's key's position) consults ``moved`` first.

``ident`` is the key itself when it has at most 400 bytes. LMDB limits keys
to 511 bytes (and refuses the empty key, hence the ``b"\x00"`` prefix in
``moved``), so a longer key's ident is its first 400 bytes + its SHA-256, 432
bytes, and its record value then also carries the full key (4-byte length +
key + record). Idents of different lengths never collide, and the table
still sorts by (position, key) except among long keys sharing position and
first 400 bytes, which a scan sorts by full key itself.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any, Final

import lmdb

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.values import key_position_bytes
from dynamo_toolkit_plugins.storage.durability import (
    GROUP_COMMIT_LIMIT,
    POSITION_SIZE,
    SCAN_CHUNK,
    DurableStorage,
    ScanChunk,
    decode_position,
    encode_position,
)

__all__ = ["DEFAULT_MAP_SIZE", "LmdbStorage", "dtk_register_components"]

#: Initial map size: 1 GiB of address space (the file grows only as used).
DEFAULT_MAP_SIZE: Final = 1 << 30
_MIN_MAP_SIZE: Final = 1 << 16

_SHORT: Final = 400  # keys up to this length are their own ident
_DIGEST: Final = 32
_LONG: Final = _SHORT + _DIGEST  # length of every long key's ident
_LONG_PREFIX: Final = POSITION_SIZE + _SHORT  # index-key prefix shared by a run
_LENGTH = struct.Struct(">I")
_TAG: Final = b"\x00"

# A write replayed after the map grew: (key, position, record), or (key, None, None) to delete.
_Op = tuple[bytes, bytes | None, bytes | None]


def _ident(key: bytes) -> bytes:
    if len(key) <= _SHORT:
        return key
    return key[:_SHORT] + hashlib.sha256(key).digest()


def _unpack(ident: bytes, value: bytes) -> tuple[bytes, bytes]:
    """``(key, record)`` from a ``by_position`` value."""
    if len(ident) != _LONG:
        return ident, value
    (length,) = _LENGTH.unpack_from(value)
    start = _LENGTH.size
    return value[start : start + length], value[start + length :]


class LmdbStorage(DurableStorage):
    """Durable engine: ``<data_dir>/<node_id>.lmdb/``, an LMDB environment.

    Parameters: ``durability`` (``"group"`` by default, below) and
    ``map_size``, the initial size in bytes of the memory map (default 1 GiB,
    at least 64 KiB). The map doubles whenever LMDB reports it full
    (``MapFullError``), the failed transaction being replayed, so the map size
    only bounds memory reserved up front, not how much can be stored. On
    reopen the map is doubled until at least half of it is free.

    * ``"sync"``: every ``put``/``delete`` is its own transaction; LMDB fsyncs
      data and meta page at each commit, before the call returns. Risks:
      nothing acknowledged is lost, even on power loss. One or two fsyncs per
      write.
    * ``"group"``: writes go into one open write transaction (this engine's
      reads use it, so see them at once), committed and fsynced by
      :meth:`flush`, which the server calls every ``flush_interval``, by
      :meth:`close`, and after 10 000 writes. Risks: a crash of the process or
      the machine loses the writes since the last commit (a whole transaction,
      never part of one); the environment stays consistent. ``flush`` blocks
      for the fsync.
    * ``"none"``: every write is committed at once, never synced
      (``MDB_NOSYNC``). Risks: a process crash loses nothing (commits are
      written to the OS's cache); an OS crash or power loss loses what the OS
      had not written back, and per LMDB's documentation can corrupt the
      environment unless the file system preserves write order.

    One environment per node, opened once per process, used from one thread.
    """

    engine_name = "lmdb"

    def __init__(
        self,
        node_id: str,
        data_dir: Path | str | None = None,
        durability: str = "group",
        map_size: int = DEFAULT_MAP_SIZE,
    ) -> None:
        if isinstance(map_size, bool) or not isinstance(map_size, int):
            raise ConfigurationError(
                f"storage engine 'lmdb': map_size must be an int, got {map_size!r}"
            )
        if map_size < _MIN_MAP_SIZE:
            raise ConfigurationError(
                f"storage engine 'lmdb': map_size must be at least {_MIN_MAP_SIZE}, got {map_size}"
            )
        super().__init__(node_id, data_dir, durability, ".lmdb")
        env = lmdb.open(
            str(self.path),
            map_size=map_size,
            subdir=True,
            max_dbs=2,
            sync=self.durability != "none",
            readahead=False,  # random access: reading ahead only evicts useful pages
            meminit=False,
        )
        try:
            if env.max_key_size() < POSITION_SIZE + _LONG:
                raise ConfigurationError(
                    f"storage engine 'lmdb': keys of {POSITION_SIZE + _LONG} bytes are needed, "
                    f"this LMDB build allows {env.max_key_size()}"
                )
            with env.begin() as txn:
                if txn.get(b"positions") is not None:
                    raise ConfigurationError(
                        f"storage engine 'lmdb': {self.path} was written by an older version "
                        "of this engine (records + positions index); move it away or empty it"
                    )
            self._records = env.open_db(b"by_position")
            self._moved = env.open_db(b"moved")
            with env.begin(db=self._moved) as txn:
                # Once true, stays true: reads then check ``moved`` first.
                self._maybe_moved = txn.stat(self._moved)["entries"] > 0
            info, stat = env.info(), env.stat()
            used = (info["last_pgno"] + 1) * stat["psize"]
            size = map_size
            while size < 2 * used:
                size *= 2
            if size != info["map_size"]:
                env.set_mapsize(size)
        except BaseException:
            env.close()
            raise
        self._env = env
        #: The current map size in bytes (grows by doubling).
        self.map_size = size
        self._txn: Any = None  # the open write transaction (group mode)
        self._pending: list[_Op] = []  # its writes, replayed if the map must grow

    # -- transactions ---------------------------------------------------------------------

    def _read_txn(self) -> Any:
        """The open write transaction (whose writes reads must see), else a new read one.

        Callers abort the read transaction (never the write one) when done.
        """
        self._check_open()
        return self._txn if self._txn is not None else self._env.begin(db=self._records)

    def _done(self, txn: Any) -> None:
        if txn is not self._txn:
            txn.abort()

    def _grow(self) -> None:
        self.map_size *= 2
        self._env.set_mapsize(self.map_size)

    def _where(self, txn: Any, ident: bytes, home: bytes) -> bytes:
        """The position ``ident`` is stored at if anywhere: home, unless it moved."""
        if self._maybe_moved:
            moved = txn.get(_TAG + ident, db=self._moved)
            if moved is not None:
                return bytes(moved)
        return home

    def _apply(self, txn: Any, op: _Op) -> None:
        key, position, record = op
        ident = _ident(key)
        home = key_position_bytes(key)
        old = self._where(txn, ident, home) if self._maybe_moved else home
        if len(ident) == _LONG:
            stored = txn.get(old + ident, db=self._records)
            if stored is not None and _unpack(ident, stored)[0] != key:
                raise RuntimeError(f"lmdb engine: SHA-256 collision between stored keys ({key!r})")
        if position != old:  # a move or a delete: leave the old place
            txn.delete(old + ident, db=self._records)
            if old != home:
                txn.delete(_TAG + ident, db=self._moved)
            if position is not None and position != home:
                self._maybe_moved = True
                txn.put(_TAG + ident, position, db=self._moved)
        if position is None or record is None:
            return
        if len(ident) == _LONG:
            record = _LENGTH.pack(len(key)) + key + record
        txn.put(position + ident, record, db=self._records)

    def _write(self, op: _Op) -> None:
        self._check_open()
        if self.durability != "group":
            self._write_alone(op)
            return
        if self._txn is None:
            self._txn = self._env.begin(write=True)
        self._pending.append(op)
        try:
            self._apply(self._txn, op)
        except lmdb.MapFullError:
            self._restart(grow=True)
        except BaseException:
            # An LMDB error can leave the transaction unusable: start over
            # without the failed write, keeping the earlier ones.
            self._pending.pop()
            self._restart(grow=False)
            raise
        if len(self._pending) >= GROUP_COMMIT_LIMIT:
            self._commit()

    def _write_alone(self, op: _Op) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:  # commits (and syncs, in sync mode)
                    self._apply(txn, op)
                return
            except lmdb.MapFullError:
                self._grow()

    def _restart(self, grow: bool) -> None:
        """Abort the open transaction and replay its writes in a new one, growing the map first."""
        while True:
            if self._txn is not None:
                self._txn.abort()
                self._txn = None
            if grow:
                self._grow()
            txn = self._txn = self._env.begin(write=True)
            try:
                for op in self._pending:
                    self._apply(txn, op)
                return
            except lmdb.MapFullError:
                grow = True

    # -- StorageEngine ----------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """Return the record under ``key``, or ``None``."""
        # The hot path of every read: kept to the fewest Python steps.
        if type(key) is not bytes:
            key = bytes(key)
        if len(key) > _SHORT or self._maybe_moved:
            return self._get_slowly(key)
        txn = self._txn
        if txn is not None:  # group mode's open write transaction: see its writes
            return txn.get(key_position_bytes(key) + key, db=self._records)  # type: ignore[no-any-return]
        if self._closed:
            self._check_open()
        txn = self._env.begin(db=self._records)
        value = txn.get(key_position_bytes(key) + key)
        txn.abort()
        return value

    def _get_slowly(self, key: bytes) -> bytes | None:
        """``get`` of a long key, or in an engine that holds moved keys."""
        ident = _ident(key)
        txn = self._read_txn()
        try:
            value = txn.get(
                self._where(txn, ident, key_position_bytes(key)) + ident, db=self._records
            )
        finally:
            self._done(txn)
        if value is None or len(ident) != _LONG:
            return value  # type: ignore[no-any-return]
        stored, record = _unpack(ident, value)
        return record if stored == key else None

    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Store ``record`` under ``key`` at ``position`` (durable as the mode says)."""
        self._write((bytes(key), encode_position(position), bytes(record)))

    def delete(self, key: bytes) -> None:
        """Remove ``key``; absent keys are fine."""
        self._write((bytes(key), None, None))

    def _scan_chunk(self, lower: bytes, upper: bytes | None, resume: object | None) -> ScanChunk:
        txn = self._read_txn()
        cursor = txn.cursor(db=self._records)
        try:
            start = lower if resume is None else resume
            assert isinstance(start, bytes)
            found: list[tuple[bytes, bytes]] = []
            exhausted = True
            if cursor.set_range(start):
                for table_key, value in cursor.iternext(keys=True, values=True):
                    if table_key == resume:
                        continue
                    if upper is not None and table_key[:POSITION_SIZE] >= upper:
                        break
                    # Past a chunk's worth, stop, but not inside a run of long keys
                    # whose table order is not key order.
                    if len(found) >= SCAN_CHUNK and not (
                        len(table_key) == len(found[-1][0]) == POSITION_SIZE + _LONG
                        and table_key[:_LONG_PREFIX] == found[-1][0][:_LONG_PREFIX]
                    ):
                        exhausted = False
                        break
                    found.append((bytes(table_key), bytes(value)))
        finally:
            cursor.close()
            self._done(txn)
        rows = []
        has_long = False
        for table_key, value in found:
            ident = table_key[POSITION_SIZE:]
            has_long = has_long or len(ident) == _LONG
            key, record = _unpack(ident, value)
            rows.append((key, decode_position(table_key), record))
        if has_long:
            rows.sort(key=lambda row: (row[1], row[0]))
        return rows, (None if exhausted else found[-1][0])

    def __len__(self) -> int:
        """Number of keys stored (LMDB keeps the count)."""
        txn = self._read_txn()
        try:
            return int(txn.stat(self._records)["entries"])
        finally:
            self._done(txn)

    def flush(self) -> None:
        """Commit the open write transaction, fsynced (group mode; else nothing to do)."""
        self._check_open()
        self._commit()

    def _commit(self) -> None:
        while self._txn is not None:
            txn, self._txn = self._txn, None
            try:
                txn.commit()
            except lmdb.MapFullError:
                # LMDB has aborted the transaction: replay it in a bigger map.
                self._restart(grow=True)
            except BaseException:
                self._pending.clear()  # lost with the transaction
                raise
        self._pending.clear()

    def _close(self) -> None:
        try:
            self._commit()
        finally:
            if self._txn is not None:
                self._txn.abort()
                self._txn = None
            self._env.close()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``lmdb`` storage engine."""
    registry.add_storage_engine("lmdb", LmdbStorage)
