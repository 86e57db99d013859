"""The wrapper storage engines (``compressed``, ``cached``) pass the storage engine suite.

Wrappers are built as the registry would build them: with the registry, and
the inner engine named the way TOML names it (a string or a ``{name, ...}``
table). ``compressed`` and ``cached`` are added to the test registry here if
the entry points do not provide them yet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dynamo_toolkit.interfaces import StorageEngine
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.testing.conformance.storage import MakeEngine, StorageEngineSuite
from dynamo_toolkit_plugins.storage.cache_policies import POLICIES
from dynamo_toolkit_plugins.storage.cached import CachedStorage
from dynamo_toolkit_plugins.storage.compressed import CODECS, CompressedStorage


@pytest.fixture(scope="module")
def registry() -> ComponentRegistry:
    """The entry points' registry (``memory``, ``sqlitedict``), plus both wrappers."""
    registry = load_plugins().registry
    names = registry.names("storage_engine")
    if "compressed" not in names:
        registry.add_storage_engine("compressed", CompressedStorage)
    if "cached" not in names:
        registry.add_storage_engine("cached", CachedStorage)
    return registry


def _maker(
    registry: ComponentRegistry, cls: Callable[..., StorageEngine], **params: Any
) -> MakeEngine:
    def make() -> StorageEngine:
        return cls(node_id="n1", registry=registry, **params)

    return make


def _registered(
    registry: ComponentRegistry,
    data_dir: Path,
    name: str,
    cls: type[StorageEngine],
    **params: Any,
) -> MakeEngine:
    """Builds engine ``name`` through the registry, checking it is a ``cls``."""

    def make() -> StorageEngine:
        engine = registry.create("storage_engine", name, node_id="n1", data_dir=data_dir, **params)
        assert isinstance(engine, cls)
        return engine

    return make


class TestCompressed(StorageEngineSuite):
    """``compressed`` over ``memory``, each codec, with a threshold the suite's records cross."""

    @pytest.fixture(params=CODECS)
    def make_engine(
        self, request: pytest.FixtureRequest, registry: ComponentRegistry
    ) -> MakeEngine:
        return _maker(registry, CompressedStorage, inner="memory", codec=request.param, threshold=8)


class TestCompressedEverything(StorageEngineSuite):
    """``compressed`` with threshold 0: even empty records go through zstd."""

    @pytest.fixture
    def make_engine(self, registry: ComponentRegistry) -> MakeEngine:
        return _maker(registry, CompressedStorage, codec="zstd", threshold=0)


class TestCompressedDurable(StorageEngineSuite):
    """``compressed`` over ``sqlitedict``: records survive close and reopen."""

    @pytest.fixture
    def durable(self) -> bool:
        return True

    @pytest.fixture
    def make_engine(self, registry: ComponentRegistry, tmp_path: Path) -> MakeEngine:
        return _registered(
            registry,
            tmp_path,
            "compressed",
            CompressedStorage,
            codec="lz4",
            threshold=16,
            inner={"name": "sqlitedict"},
        )


class TestCached(StorageEngineSuite):
    """``cached`` over ``memory``, each policy, with a budget small enough to evict."""

    @pytest.fixture(params=sorted(POLICIES))
    def make_engine(
        self, request: pytest.FixtureRequest, registry: ComponentRegistry
    ) -> MakeEngine:
        return _maker(
            registry,
            CachedStorage,
            inner={"name": "memory"},
            policy=request.param,
            budget_bytes=8192,
        )


class TestCachedLarge(StorageEngineSuite):
    """``cached`` at its default budget: nothing is ever evicted."""

    @pytest.fixture
    def make_engine(self, registry: ComponentRegistry) -> MakeEngine:
        return _maker(registry, CachedStorage)


class TestCachedOverCompressed(StorageEngineSuite):
    """``cached`` over ``compressed`` over ``memory``, nested as TOML would nest them."""

    @pytest.fixture(params=["s3-fifo", "lru"])
    def make_engine(
        self, request: pytest.FixtureRequest, registry: ComponentRegistry
    ) -> MakeEngine:
        return _maker(
            registry,
            CachedStorage,
            policy=request.param,
            budget_bytes=16_384,
            inner={"name": "compressed", "codec": "snappy", "threshold": 8, "inner": "memory"},
        )


class TestCachedOverCompressedDurable(StorageEngineSuite):
    """``cached`` over ``compressed`` over ``sqlitedict``, built from the registry."""

    @pytest.fixture
    def durable(self) -> bool:
        return True

    @pytest.fixture
    def make_engine(self, registry: ComponentRegistry, tmp_path: Path) -> MakeEngine:
        return _registered(
            registry,
            tmp_path,
            "cached",
            CachedStorage,
            budget_bytes=4096,
            inner={"name": "compressed", "threshold": 16, "inner": {"name": "sqlitedict"}},
        )
