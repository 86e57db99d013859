"""The built-in resolvers, failure detector and storage engines pass their suites.

Every component is built through the plugin system, exactly as configuration
would build it, so a broken registration fails here too.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces import ConflictResolver, FailureDetector, StorageEngine
from dynamo_toolkit.plugin_host import PluginHost, load_plugins
from dynamo_toolkit.testing.conformance.failure_detector import (
    FailureDetectorSuite,
    MakeDetector,
)
from dynamo_toolkit.testing.conformance.resolver import ConflictResolverSuite, MakeResolver
from dynamo_toolkit.testing.conformance.storage import MakeEngine, StorageEngineSuite


@pytest.fixture(scope="module")
def host() -> PluginHost:
    """One plugin host, loaded from the entry points, for the whole module."""
    return load_plugins()


def _resolver(host: PluginHost, name: str, **params: object) -> MakeResolver:
    def make() -> ConflictResolver:
        resolver = host.registry.create("conflict_resolver", name, **params)
        assert isinstance(resolver, ConflictResolver)
        return resolver

    return make


class TestVectorClockPruned(ConflictResolverSuite):
    """``vector-clock`` with its defaults (pruning at 10 entries)."""

    @pytest.fixture
    def make_resolver(self, host: PluginHost) -> MakeResolver:
        return _resolver(host, "vector-clock")


class TestVectorClockUnpruned(ConflictResolverSuite):
    """``vector-clock`` with pruning off."""

    @pytest.fixture
    def make_resolver(self, host: PluginHost) -> MakeResolver:
        return _resolver(host, "vector-clock", prune=False)


class TestVectorClockSmallPrune(ConflictResolverSuite):
    """``vector-clock`` pruning at 4 entries: the suite's four actors just fit."""

    @pytest.fixture
    def make_resolver(self, host: PluginHost) -> MakeResolver:
        return _resolver(host, "vector-clock", max_entries=4)


class TestLastWriteWins(ConflictResolverSuite):
    """``lww`` with its defaults."""

    @pytest.fixture
    def make_resolver(self, host: PluginHost) -> MakeResolver:
        return _resolver(host, "lww")


class TestDottedVersionVectors(ConflictResolverSuite):
    """``dvv`` (it takes no parameters)."""

    @pytest.fixture
    def make_resolver(self, host: PluginHost) -> MakeResolver:
        return _resolver(host, "dvv")


class TestTimeoutDetector(FailureDetectorSuite):
    """``timeout`` at its default 2 s timeout."""

    @pytest.fixture
    def make_detector(self, host: PluginHost) -> MakeDetector:
        def make() -> FailureDetector:
            detector = host.registry.create("failure_detector", "timeout")
            assert isinstance(detector, FailureDetector)
            return detector

        return make


class TestTimeoutDetectorTight(FailureDetectorSuite):
    """``timeout`` tuned tight: 0.3 s timeout, 0.1 s heartbeats, detected within 0.3 s."""

    @pytest.fixture
    def detection_bound(self) -> float:
        return 0.3

    @pytest.fixture
    def heartbeat_interval(self) -> float:
        return 0.1

    @pytest.fixture
    def make_detector(self, host: PluginHost) -> MakeDetector:
        def make() -> FailureDetector:
            detector = host.registry.create("failure_detector", "timeout", timeout=0.29)
            assert isinstance(detector, FailureDetector)
            return detector

        return make


def _engine(host: PluginHost, name: str, data_dir: Path | None, **params: object) -> MakeEngine:
    def make() -> StorageEngine:
        engine = host.registry.create(
            "storage_engine", name, node_id="n1", data_dir=data_dir, **params
        )
        assert isinstance(engine, StorageEngine)
        return engine

    return make


class TestMemoryStorage(StorageEngineSuite):
    """``memory``: volatile."""

    @pytest.fixture
    def make_engine(self, host: PluginHost) -> MakeEngine:
        return _engine(host, "memory", None)


class TestSqliteDictStorage(StorageEngineSuite):
    """``sqlitedict``: durable across close and reopen."""

    @pytest.fixture
    def durable(self) -> bool:
        return True

    @pytest.fixture
    def make_engine(self, host: PluginHost, tmp_path: Path) -> MakeEngine:
        return _engine(host, "sqlitedict", tmp_path / "data")


class TestSqliteDictAutocommit(StorageEngineSuite):
    """``sqlitedict`` committing every write."""

    @pytest.fixture
    def durable(self) -> bool:
        return True

    @pytest.fixture
    def make_engine(self, host: PluginHost, tmp_path: Path) -> MakeEngine:
        return _engine(host, "sqlitedict", tmp_path, autocommit=True)


# -- what the suites cannot know: the built-ins' own parameters -----------------------------


@pytest.mark.parametrize(
    ("interface", "name"),
    [
        ("conflict_resolver", "vector-clock"),
        ("conflict_resolver", "lww"),
        ("conflict_resolver", "dvv"),
        ("failure_detector", "timeout"),
        ("storage_engine", "memory"),
        ("storage_engine", "sqlitedict"),
    ],
)
def test_builtins_are_registered_by_the_builtin_plugins(
    host: PluginHost, interface: str, name: str
) -> None:
    spec = host.registry.get(interface, name)
    assert spec.description  # taken from the factory's docstring
    assert name in host.registry.names(interface)


def test_sqlitedict_needs_a_data_directory(host: PluginHost) -> None:
    with pytest.raises(ConfigurationError, match="data directory"):
        host.registry.create("storage_engine", "sqlitedict", node_id="n1", data_dir=None)


def test_sqlitedict_creates_its_directory_and_file(host: PluginHost, tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "dir"
    engine = host.registry.create("storage_engine", "sqlitedict", node_id="n7", data_dir=data_dir)
    try:
        engine.put(b"k", 1, b"v")
        engine.flush()
        assert (data_dir / "n7.sqlite").is_file()
    finally:
        engine.close()


def test_sqlitedict_rejects_a_node_id_escaping_the_directory(
    host: PluginHost, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError):
        host.registry.create("storage_engine", "sqlitedict", node_id="../n1", data_dir=tmp_path)


def test_sqlitedict_does_not_pickle(host: PluginHost, tmp_path: Path) -> None:
    engine = host.registry.create("storage_engine", "sqlitedict", node_id="n1", data_dir=tmp_path)
    try:
        engine.put(b"\x01\x02", 5, b"record")
        engine.flush()
    finally:
        engine.close()
    with sqlite3.connect(tmp_path / "n1.sqlite") as conn:
        rows = conn.execute("SELECT key, value FROM records").fetchall()
    # Hex key; value = 8-byte big-endian position + the record, no pickle opcodes.
    assert rows == [("0102", (5).to_bytes(8, "big") + b"record")]


def test_sqlitedict_rejects_unknown_parameters(host: PluginHost, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        host.registry.create(
            "storage_engine", "sqlitedict", node_id="n1", data_dir=tmp_path, colour="red"
        )


def test_memory_ignores_data_dir_and_refuses_unknown_parameters(
    host: PluginHost, tmp_path: Path
) -> None:
    engine = host.registry.create("storage_engine", "memory", node_id="n1", data_dir=tmp_path)
    engine.close()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigurationError):
        host.registry.create("storage_engine", "memory", node_id="n1", data_dir=None, size=3)


@pytest.mark.parametrize("name", ["memory", "sqlitedict"])
@pytest.mark.parametrize("position", [-1, 2**64])
def test_positions_outside_64_bits_are_refused(
    host: PluginHost, tmp_path: Path, name: str, position: int
) -> None:
    engine = host.registry.create("storage_engine", name, node_id="n1", data_dir=tmp_path)
    try:
        with pytest.raises(ValueError, match=r"is outside \[0, 2\*\*64\)"):
            engine.put(b"k", position, b"v")
        assert len(engine) == 0
    finally:
        engine.close()


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_timeout_must_be_a_positive_number(host: PluginHost, timeout: object) -> None:
    with pytest.raises(ConfigurationError):
        host.registry.create("failure_detector", "timeout", timeout=timeout)


def test_timeout_suspicion_is_silence_in_timeouts(host: PluginHost) -> None:
    detector = host.registry.create("failure_detector", "timeout", timeout=2.0)
    detector.watch("n1", 100.0)
    assert detector.suspicion("n1", 100.0) == 0.0
    assert detector.suspicion("n1", 101.0) == pytest.approx(0.5)
    assert detector.is_available("n1", 102.0)  # exactly at the timeout: still up
    assert detector.suspicion("n1", 102.0) == pytest.approx(1.0)
    assert not detector.is_available("n1", 102.001)
    assert detector.suspicion("n1", 106.0) == pytest.approx(3.0)
    # A caller's clock lagging the last heartbeat does not give negative suspicion.
    assert detector.suspicion("n1", 99.0) == 0.0
