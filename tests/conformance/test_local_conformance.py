"""The built-in resolvers, failure detector and storage engines pass their suites.

Every component is built through the plugin system, exactly as configuration
would build it, so a broken registration fails here too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_toolkit.interfaces import ConflictResolver, FailureDetector, StorageEngine
from dynamo_toolkit.plugin_manager import PluginHost, load_plugins
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
