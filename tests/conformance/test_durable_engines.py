"""The durable engines (``sqlite``, ``lmdb``, ``rocksdb``) pass the storage suite in every mode.

Until their entry points are registered the classes are built directly; the
registration hooks are exercised through a bare registry below.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces import StorageEngine
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.testing.conformance.storage import MakeEngine, StorageEngineSuite
from dynamo_toolkit.values import key_position
from dynamo_toolkit_plugins.storage import lmdb_engine, rocksdb_engine, sqlite_engine
from dynamo_toolkit_plugins.storage.durability import DURABILITY_MODES, SCAN_CHUNK

Factory = Callable[..., StorageEngine]

ENGINES: dict[str, tuple[ModuleType, Factory, str]] = {
    "sqlite": (sqlite_engine, sqlite_engine.SqliteStorage, "n1.sqlite3"),
    "lmdb": (lmdb_engine, lmdb_engine.LmdbStorage, "n1.lmdb"),
    "rocksdb": (rocksdb_engine, rocksdb_engine.RocksdbStorage, "n1.rocksdb"),
}
_END = 2**64


@pytest.fixture(params=sorted(ENGINES))
def name(request: pytest.FixtureRequest) -> str:
    """Each durable engine's name."""
    return str(request.param)


@pytest.fixture(params=DURABILITY_MODES)
def durability(request: pytest.FixtureRequest) -> str:
    """Each durability mode."""
    return str(request.param)


@pytest.fixture
def factory(name: str) -> Factory:
    return ENGINES[name][1]


class TestDurableEngine(StorageEngineSuite):
    """Every engine in every mode: the whole suite, reopening included."""

    @pytest.fixture
    def durable(self) -> bool:
        return True

    @pytest.fixture
    def make_engine(self, factory: Factory, durability: str, tmp_path: Path) -> MakeEngine:
        def make() -> StorageEngine:
            return factory(node_id="n1", data_dir=tmp_path / "data", durability=durability)

        return make


class TestRocksdbExactCount(StorageEngineSuite):
    """``rocksdb`` with ``count = "exact"``: the whole suite, ``len()`` included."""

    @pytest.fixture
    def durable(self) -> bool:
        return True

    @pytest.fixture
    def make_engine(self, durability: str, tmp_path: Path) -> MakeEngine:
        def make() -> StorageEngine:
            return rocksdb_engine.RocksdbStorage(
                node_id="n1", data_dir=tmp_path / "data", durability=durability, count="exact"
            )

        return make


def test_rocksdb_estimates_its_size_by_default(tmp_path: Path) -> None:
    engine = rocksdb_engine.RocksdbStorage(node_id="n1", data_dir=tmp_path)
    try:
        assert not engine.exact_len
        for i in range(1000):
            engine.put(b"k%d" % i, key_position(b"k%d" % i), b"v")
        assert 900 <= len(engine) <= 1100  # RocksDB's estimate, not a count
    finally:
        engine.close()
    with pytest.raises(ConfigurationError, match="count must be"):
        rocksdb_engine.RocksdbStorage(node_id="n2", data_dir=tmp_path, count="roughly")


def test_rocksdb_exact_count_survives_the_estimating_mode(tmp_path: Path) -> None:
    # An estimating session changes keys without counting: the next exact open recounts.
    def open_with(count: str) -> StorageEngine:
        return rocksdb_engine.RocksdbStorage(node_id="n1", data_dir=tmp_path, count=count)

    engine = open_with("exact")
    engine.put(b"a", key_position(b"a"), b"v")
    engine.close()
    engine = open_with("estimate")
    engine.put(b"b", key_position(b"b"), b"v")
    engine.put(b"c", key_position(b"c"), b"v")
    engine.delete(b"a")
    engine.close()
    engine = open_with("exact")
    try:
        assert len(engine) == 2
    finally:
        engine.close()


def size(engine: StorageEngine) -> int | None:
    """``len(engine)`` where it is a count, None where it is an estimate."""
    return len(engine) if engine.exact_len else None


# -- what the suite cannot know ------------------------------------------------------------


def test_registered_under_its_name(name: str) -> None:
    module, factory, _ = ENGINES[name]
    registry = ComponentRegistry()
    module.dtk_register_components(registry)
    assert registry.names("storage_engine") == [name]
    assert registry.get("storage_engine", name).factory is factory
    assert registry.get("storage_engine", name).description  # from the docstring


def test_unknown_parameters_are_refused(name: str, tmp_path: Path) -> None:
    module, factory, _ = ENGINES[name]
    registry = ComponentRegistry()
    module.dtk_register_components(registry)
    with pytest.raises(ConfigurationError, match="colour"):
        registry.create("storage_engine", name, node_id="n1", data_dir=tmp_path, colour="red")
    with pytest.raises(TypeError, match="colour"):
        factory(node_id="n1", data_dir=tmp_path, colour="red")


def test_needs_a_data_directory(name: str, factory: Factory) -> None:
    with pytest.raises(ConfigurationError, match=f"'{name}' needs a data directory"):
        factory(node_id="n1", data_dir=None)


@pytest.mark.parametrize("durability", ["fsync", "", "SYNC", None, True, 1])
def test_durability_must_name_a_mode(
    name: str, factory: Factory, tmp_path: Path, durability: object
) -> None:
    with pytest.raises(ConfigurationError, match=f"'{name}': durability must be one of"):
        factory(node_id="n1", data_dir=tmp_path, durability=durability)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("node_id", ["../n1", "a/b", "..", ".", "", "n\x001"])
def test_node_id_cannot_escape_the_directory(
    factory: Factory, tmp_path: Path, node_id: str
) -> None:
    data_dir = tmp_path / "data"
    with pytest.raises(ConfigurationError):
        factory(node_id=node_id, data_dir=data_dir)
    assert list(tmp_path.iterdir()) == []


def test_creates_its_directory_and_file(name: str, factory: Factory, tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "dir"
    engine = factory(node_id="n1", data_dir=str(data_dir))
    try:
        engine.put(b"k", 1, b"v")
        engine.flush()
    finally:
        engine.close()
    assert (data_dir / ENGINES[name][2]).exists()


@pytest.mark.parametrize("position", [-1, 2**64, 1.0, True])
def test_positions_outside_64_bits_are_refused(
    factory: Factory, durability: str, tmp_path: Path, position: object
) -> None:
    engine = factory(node_id="n1", data_dir=tmp_path, durability=durability)
    try:
        with pytest.raises((ValueError, TypeError)):
            engine.put(b"k", position, b"v")  # type: ignore[arg-type]
        assert len(engine) == 0
        assert engine.get(b"k") is None
    finally:
        engine.close()


def test_closed_engine_refuses_calls(factory: Factory, tmp_path: Path) -> None:
    engine = factory(node_id="n1", data_dir=tmp_path)
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.get(b"k")
    with pytest.raises(RuntimeError, match="closed"):
        engine.put(b"k", 1, b"v")
    with pytest.raises(RuntimeError, match="closed"):
        len(engine)


def test_scans_read_in_chunks_and_survive_writes_and_flushes(
    factory: Factory, durability: str, tmp_path: Path
) -> None:
    """A paused scan holds nothing: writes, flushes and close go ahead meanwhile."""
    engine = factory(node_id="n1", data_dir=tmp_path, durability=durability)
    count = 3 * SCAN_CHUNK + 7
    try:
        for i in range(count):
            engine.put(b"k%05d" % i, i // 2, b"r%d" % i)
        expected = [(b"k%05d" % i, i // 2, b"r%d" % i) for i in range(count)]
        assert list(engine.scan(0, _END)) == expected
        assert list(engine.scan(10, 300)) == expected[20:600]
        scan = engine.scan(0, _END)
        seen = [next(scan) for _ in range(SCAN_CHUNK + 1)]
        engine.put(b"k00000", 0, b"changed")  # behind the scan: not seen
        engine.put(b"late", 2**64 - 1, b"last")  # ahead of it: seen
        engine.flush()
        seen.extend(scan)
        assert seen == [*expected, (b"late", 2**64 - 1, b"last")]
        paused = engine.scan(0, _END)
        next(paused)
    finally:
        engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        list(paused)
    reopened = factory(node_id="n1", data_dir=tmp_path, durability=durability)
    try:
        assert size(reopened) in (count + 1, None)
        assert reopened.get(b"k00000") == b"changed"
    finally:
        reopened.close()


# -- sqlite ---------------------------------------------------------------------------------


def test_sqlite_layout_is_plain_blobs_in_wal_mode(tmp_path: Path) -> None:
    home = key_position(b"home")
    engine = sqlite_engine.SqliteStorage(node_id="n1", data_dir=tmp_path)
    try:
        engine.put(b"\x01\x02", 2**64 - 1, b"record")
        engine.put(b"home", home, b"at home")
        engine.flush()
        with sqlite3.connect(tmp_path / "n1.sqlite3") as conn:
            rows = conn.execute("SELECT key, position, record FROM records").fetchall()
            moved = conn.execute("SELECT key, position FROM moved").fetchall()
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        engine.close()
    # 8-byte big-endian position BLOB (SQLite INTEGER is signed), no pickle.
    assert sorted(rows) == [
        (b"\x01\x02", b"\xff" * 8, b"record"),
        (b"home", home.to_bytes(8, "big"), b"at home"),
    ]
    # Only the key stored away from its hash is listed as moved.
    assert moved == [(b"\x01\x02", b"\xff" * 8)]


def test_keys_move_between_home_and_other_positions(
    factory: Factory, durability: str, tmp_path: Path
) -> None:
    # Nodes store keys at their hash (home); the hint store files them elsewhere.
    # Moves in both directions keep one copy, findable, counted, and durable.
    home = key_position(b"k")
    engine = factory(node_id="n1", data_dir=tmp_path, durability=durability)
    try:
        engine.put(b"k", home, b"v1")
        engine.put(b"k", 7, b"v2")
        assert engine.get(b"k") == b"v2"
        assert size(engine) in (1, None)
        assert list(engine.scan(0, 2**64)) == [(b"k", 7, b"v2")]
        engine.put(b"k", 9, b"v3")
        engine.put(b"other", key_position(b"other"), b"o")
        assert list(engine.scan(0, 10)) == [(b"k", 9, b"v3")]
        engine.put(b"k", home, b"v4")
        assert engine.get(b"k") == b"v4"
        assert size(engine) in (2, None)
        assert list(engine.scan(0, 10)) == []
        engine.put(b"k", 5, b"v5")
        engine.delete(b"k")
        assert engine.get(b"k") is None
        assert size(engine) in (1, None)
        engine.put(b"k", 3, b"v6")
    finally:
        engine.close()
    reopened = factory(node_id="n1", data_dir=tmp_path, durability=durability)
    try:
        assert reopened.get(b"k") == b"v6"
        assert reopened.get(b"other") == b"o"
        assert size(reopened) in (2, None)
        assert (b"k", 3, b"v6") in list(reopened.scan(0, 2**64))
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "query",
    [
        sqlite_engine._SCAN_FIRST,
        sqlite_engine._SCAN_FIRST_BOUNDED,
        sqlite_engine._SCAN_NEXT,
        sqlite_engine._SCAN_NEXT_BOUNDED,
    ],
)
def test_sqlite_scans_are_index_range_reads(tmp_path: Path, query: str) -> None:
    engine = sqlite_engine.SqliteStorage(node_id="n1", data_dir=tmp_path)
    engine.close()
    with sqlite3.connect(tmp_path / "n1.sqlite3") as conn:
        plan = conn.execute("EXPLAIN QUERY PLAN " + query, [b"x"] * query.count("?")).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert "SEARCH records USING INDEX records_position" in details
    assert "TEMP B-TREE" not in details  # no sort: the table order is the scan order


def test_sqlite_group_mode_commits_only_on_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_engine, "GROUP_COMMIT_LIMIT", 5)
    engine = sqlite_engine.SqliteStorage(node_id="n1", data_dir=tmp_path, durability="group")
    reader = sqlite3.connect(tmp_path / "n1.sqlite3")

    def committed() -> int:
        return int(reader.execute("SELECT count(*) FROM records").fetchone()[0])

    try:
        for i in range(3):
            engine.put(b"k%d" % i, i, b"v")
        assert (len(engine), committed()) == (3, 0)
        engine.flush()
        assert committed() == 3
        for i in range(3, 10):
            engine.put(b"k%d" % i, i, b"v")
        assert committed() == 8  # the 5th write since the flush committed by itself
    finally:
        engine.close()
        assert committed() == 10
        reader.close()


# -- lmdb -----------------------------------------------------------------------------------


@pytest.mark.parametrize("map_size", [True, "1G", 1.5, 1024, -1])
def test_lmdb_map_size_is_checked(tmp_path: Path, map_size: object) -> None:
    with pytest.raises(ConfigurationError, match="map_size"):
        lmdb_engine.LmdbStorage(node_id="n1", data_dir=tmp_path, map_size=map_size)  # type: ignore[arg-type]


def test_lmdb_map_grows_when_full(durability: str, tmp_path: Path) -> None:
    engine = lmdb_engine.LmdbStorage(
        node_id="n1", data_dir=tmp_path, durability=durability, map_size=1 << 16
    )
    record = bytes(range(256)) * 40  # 10 KiB
    try:
        for i in range(150):  # ~1.5 MiB through a 64 KiB map
            engine.put(b"k%d" % i, i, record)
        engine.put(b"big", 7, record * 100)  # one 1 MiB record
        assert engine.map_size > 1 << 20
        assert len(engine) == 151
    finally:
        engine.close()
    engine = lmdb_engine.LmdbStorage(node_id="n1", data_dir=tmp_path, map_size=1 << 16)
    try:
        assert engine.map_size > 1 << 20  # sized for what is stored, not the parameter
        assert len(engine) == 151
        assert engine.get(b"k149") == record
        assert engine.get(b"big") == record * 100
        assert [key for key, _, _ in engine.scan(7, 8)] == [b"big", b"k7"]
    finally:
        engine.close()


def test_lmdb_keys_longer_than_lmdb_allows(durability: str, tmp_path: Path) -> None:
    """Keys past LMDB's 511-byte limit, sharing long prefixes, still sort by key."""
    prefix = b"p" * 450
    keys = [prefix + b"%04d" % i for i in range(2 * SCAN_CHUNK + 3)]  # one run per position
    keys += [prefix, prefix[:400], prefix[:399] + b"q", b"", b"x" * 5000, b"x" * 5001]
    engine = lmdb_engine.LmdbStorage(node_id="n1", data_dir=tmp_path, durability=durability)
    try:
        for i, key in enumerate(reversed(keys)):
            engine.put(key, 5, b"r%d" % i)
        engine.put(b"x" * 5000, 9, b"moved")
        expected = sorted((key, 5, engine.get(key)) for key in keys if key != b"x" * 5000)
        assert list(engine.scan(0, _END)) == [*expected, (b"x" * 5000, 9, b"moved")]
        assert engine.get(prefix + b"9999") is None  # same prefix, not stored
        engine.delete(keys[0])
        engine.delete(prefix + b"9999")
        assert engine.get(keys[0]) is None
        assert len(engine) == len(keys) - 1
    finally:
        engine.close()


# -- rocksdb --------------------------------------------------------------------------------


def test_rocksdb_keeps_its_count_across_reopen(tmp_path: Path) -> None:
    engine = rocksdb_engine.RocksdbStorage(node_id="n1", data_dir=tmp_path, count="exact")
    try:
        for i in range(20):
            engine.put(b"k%d" % i, i, b"v")
        for i in range(5):
            engine.delete(b"k%d" % i)
        engine.delete(b"k0")
        engine.put(b"k5", 99, b"moved")
    finally:
        engine.close()
    engine = rocksdb_engine.RocksdbStorage(node_id="n1", data_dir=tmp_path, count="exact")
    try:
        assert len(engine) == 15
        assert len(list(engine.scan(0, _END))) == 15
    finally:
        engine.close()


def test_rocksdb_counts_again_after_an_unclean_close(tmp_path: Path) -> None:
    engine = rocksdb_engine.RocksdbStorage(
        node_id="n1", data_dir=tmp_path, durability="sync", count="exact"
    )
    for i in range(30):
        engine.put(b"k%d" % i, key_position(b"k%d" % i), b"v")
    engine.delete(b"k3")
    # A crash: the database goes away without the clean-close count.
    handles, engine._handles = engine._handles, None
    assert handles is not None
    db = handles.db
    del handles
    db.close()
    engine._closed = True
    reopened = rocksdb_engine.RocksdbStorage(
        node_id="n1", data_dir=tmp_path, durability="sync", count="exact"
    )
    try:
        assert len(reopened) == 29
        reopened.put(b"new", key_position(b"new"), b"v")
        assert len(reopened) == 30
    finally:
        reopened.close()
    again = rocksdb_engine.RocksdbStorage(
        node_id="n1", data_dir=tmp_path, durability="sync", count="exact"
    )
    try:
        assert len(again) == 30  # the clean close stored it
    finally:
        again.close()
