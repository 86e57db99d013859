"""The replica store's decoded-set cache: bounded in bytes, not in entries."""

from __future__ import annotations

import pytest

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.replica_store import ReplicaStore, decoded_charge
from dynamo_toolkit.versioning import VectorClock, Version, pack_versions
from dynamo_toolkit_plugins.resolution.vector_clock import VectorClockResolver
from dynamo_toolkit_plugins.storage.memory import MemoryStorage


def _write(store: ReplicaStore, key: bytes, size: int) -> int:
    version = Version(VectorClock.from_counters({"n1": 1}), b"x" * size, 1.0)
    store.apply(key, 1, [version])
    return decoded_charge(key, len(pack_versions((version,))), 1)


def test_the_cache_never_holds_more_bytes_than_its_budget() -> None:
    budget = 50_000
    store = ReplicaStore(MemoryStorage(), VectorClockResolver(), decoded_cache_bytes=budget)
    for index in range(100):
        _write(store, b"k%03d" % index, 1_000 + 37 * index)
        assert store.decoded_bytes <= budget
    # The newest entries stayed; the oldest were evicted.
    newest = b"k099"
    assert store.read(newest)
    assert store.decoded_hits == 1
    assert store.read(b"k000")
    assert store.decoded_hits == 1  # evicted: read from the engine
    assert store.decoded_bytes <= budget


def test_an_entry_larger_than_the_budget_is_not_kept_and_zero_turns_it_off() -> None:
    store = ReplicaStore(MemoryStorage(), VectorClockResolver(), decoded_cache_bytes=2_000)
    _write(store, b"big", 5_000)
    assert store.decoded_bytes == 0
    off = ReplicaStore(MemoryStorage(), VectorClockResolver(), decoded_cache_bytes=0)
    _write(off, b"k", 10)
    off.read(b"k")
    assert off.decoded_hits == 0
    assert off.decoded_bytes == 0


def test_rewrites_and_removals_keep_the_count_exact() -> None:
    store = ReplicaStore(MemoryStorage(), VectorClockResolver())
    first = _write(store, b"k", 100)
    assert store.decoded_bytes == first
    newer = Version(VectorClock.from_counters({"n1": 2}), b"y" * 300, 2.0)
    store.apply(b"k", 1, [newer])
    assert store.decoded_bytes == decoded_charge(b"k", len(pack_versions((newer,))), 1)
    assert store.drop_range(0, 10) == 1
    assert store.decoded_bytes == 0


def test_the_budget_is_a_store_setting() -> None:
    assert StoreConfig().decoded_cache_bytes == 64 * 1024 * 1024
    config = StoreConfig.from_dict({"store": {"decoded_cache_bytes": 1024}})
    assert config.decoded_cache_bytes == 1024
    with pytest.raises(ConfigurationError, match="decoded_cache_bytes must be a non-negative"):
        StoreConfig.from_dict({"store": {"decoded_cache_bytes": -1}})
