"""Cache eviction policies and the ``cached`` wrapper engine built on them."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.storage.cache_policies import (
    DEFAULT_POLICY,
    POLICIES,
    CachePolicy,
    LRUPolicy,
    S3FIFOPolicy,
    make_policy,
)
from dynamo_toolkit_plugins.storage.cached import (
    ENTRY_OVERHEAD,
    CachedStorage,
    dtk_register_components,
)
from dynamo_toolkit_plugins.storage.memory import MemoryStorage

NAMES = sorted(POLICIES)

operations = st.lists(
    st.tuples(
        st.sampled_from(["get", "put", "put", "remove"]),
        st.integers(0, 30),  # key
        st.integers(0, 120),  # size: some entries exceed the smaller budgets
    ),
    max_size=300,
)


def warm(policy: CachePolicy[int, int], keys: Sequence[int], rounds: int) -> None:
    """Read-through access of every key in ``keys``, ``rounds`` times."""
    for _ in range(rounds):
        for key in keys:
            if policy.get(key) is None:
                policy.put(key, key, 1)


# -- every policy -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@given(ops=operations, budget=st.sampled_from([0, 1, 50, 100, 400]))
def test_budget_never_exceeded_and_values_never_stale(
    name: str, ops: list[tuple[str, int, int]], budget: int
) -> None:
    """After every operation: bytes_used <= budget, equals the sizes of the cached keys,
    and a cached key returns the value of its last put."""
    policy: CachePolicy[int, int] = make_policy(name, budget)
    latest: dict[int, tuple[int, int]] = {}  # key -> (value, size) of the last put
    for step, (op, key, size) in enumerate(ops):
        if op == "put":
            policy.put(key, step, size)
            latest[key] = (step, size)
        elif op == "remove":
            policy.remove(key)
            assert key not in policy
        else:
            value = policy.get(key)
            assert value is None or value == latest[key][0]
        cached = [k for k in latest if k in policy]
        assert policy.bytes_used == sum(latest[k][1] for k in cached)
        assert policy.bytes_used <= budget
        assert len(policy) == len(cached)
    policy.clear()
    assert (policy.bytes_used, len(policy)) == (0, 0)


@pytest.mark.parametrize("name", NAMES)
def test_hit_and_miss_accounting(name: str) -> None:
    """get counts one hit or one miss; put, remove and ``in`` count nothing."""
    policy: CachePolicy[str, int] = make_policy(name, 1000)
    assert (policy.hits, policy.misses, policy.hit_ratio) == (0, 0, 0.0)
    assert policy.get("a") is None
    policy.put("a", 1, 10)
    assert "a" in policy
    assert policy.get("a") == 1
    assert policy.get("a") == 1
    policy.remove("a")
    assert policy.get("a") is None
    assert (policy.hits, policy.misses) == (2, 2)
    assert policy.hit_ratio == 0.5


@pytest.mark.parametrize("name", NAMES)
def test_oversized_entry_is_not_cached_and_drops_the_old_copy(name: str) -> None:
    """An entry larger than the budget is refused, and an older cached value removed."""
    policy: CachePolicy[str, str] = make_policy(name, 100)
    policy.put("k", "small", 10)
    policy.put("k", "huge", 101)
    assert "k" not in policy
    assert policy.bytes_used == 0


def test_unknown_policy_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="available: lru, s3-fifo, w-tinylfu"):
        make_policy("arc", 10)
    with pytest.raises(ValueError, match="cache budget must be a non-negative int"):
        LRUPolicy(-1)


# -- LRU ---------------------------------------------------------------------------


def test_lru_evicts_the_least_recently_used() -> None:
    """A read refreshes a key: the key neither read nor written for longest goes first."""
    policy: LRUPolicy[str, int] = LRUPolicy(3)
    for key in "abc":
        policy.put(key, 0, 1)
    assert policy.get("a") == 0  # b is now the least recent
    policy.put("d", 0, 1)
    assert "b" not in policy
    assert all(key in policy for key in "acd")
    policy.put("e", 0, 2)  # needs two units: c, then a go
    assert sorted(k for k in "abcde" if k in policy) == ["d", "e"]


# -- S3-FIFO -----------------------------------------------------------------------


def test_s3fifo_one_hit_scan_does_not_evict_the_hot_set() -> None:
    """Keys read repeatedly survive a scan of 10x the cache size of keys read once."""
    hot = range(60)
    s3: S3FIFOPolicy[int, int] = S3FIFOPolicy(100)
    lru: LRUPolicy[int, int] = LRUPolicy(100)
    for policy in (s3, lru):
        warm(policy, hot, rounds=3)
        warm(policy, range(1000, 2000), rounds=1)  # the scan
    assert all(key in s3 for key in hot)
    assert not any(key in lru for key in hot)  # the contrast: LRU lost all of them
    hits = s3.hits
    warm(s3, hot, rounds=1)
    assert s3.hits - hits == len(hot)


def test_s3fifo_ghost_hit_goes_straight_to_main() -> None:
    """A key evicted from the small queue and read again soon is admitted to main."""
    policy: S3FIFOPolicy[int, int] = S3FIFOPolicy(100)  # small queue: 10 entries
    warm(policy, range(101), rounds=1)  # the cache is full: key 0 leaves for the ghost
    assert 0 not in policy
    warm(policy, [0], rounds=1)  # a ghost hit: in main now
    warm(policy, range(1000, 1100), rounds=1)  # scan through the small queue
    assert 0 in policy


def _zipf_trace(keys: int, requests: int, seed: int) -> list[int]:
    """Zipf(0.99) ranks by inverse CDF (the sampler of benchmarks/cache_policies.py)."""
    rng = random.Random(seed)
    cum = list(itertools.accumulate((k + 1) ** -0.99 for k in range(keys)))
    return rng.choices(range(keys), cum_weights=cum, k=requests)


def _hit_ratio(policy: CachePolicy[int, int], trace: list[int]) -> float:
    for key in trace:
        if policy.get(key) is None:
            policy.put(key, key, 1)
    return policy.hit_ratio


def test_s3fifo_on_a_zipf_trace_matches_or_beats_lru() -> None:
    """Zipf(0.99), 10,000 keys, cache of 10 %: S3-FIFO >= LRU - 0.01, and near the bound.

    The bound: under independent requests no online policy beats keeping the
    1,000 most popular keys, whose probability mass is 0.756 here (0.800 for
    100,000 keys): a hit ratio of 0.8 at 10 % is out of reach at this scale.
    Measured (seed 7): LRU 0.664, S3-FIFO 0.725 (W-TinyLFU 0.735).
    """
    keys, requests = 10_000, 200_000
    trace = _zipf_trace(keys, requests, seed=7)
    weights = [(k + 1) ** -0.99 for k in range(keys)]
    bound = sum(weights[: keys // 10]) / sum(weights)
    assert bound == pytest.approx(0.756, abs=0.001)
    s3 = _hit_ratio(S3FIFOPolicy(keys // 10), trace)
    lru = _hit_ratio(LRUPolicy(keys // 10), trace)
    assert s3 >= lru - 0.01
    assert s3 >= bound - 0.05


# -- the cached engine -------------------------------------------------------------


def test_cached_engine_reads_through_and_counts() -> None:
    """A miss reads the inner engine and caches; the next read is a hit; bytes are charged."""
    inner = MemoryStorage()
    inner.put(b"k", 1, b"record")
    engine = CachedStorage("n", inner=inner)
    assert engine.policy_name == DEFAULT_POLICY
    assert engine.get(b"k") == b"record"
    assert engine.get(b"k") == b"record"
    assert engine.get(b"absent") is None
    assert (engine.hits, engine.misses) == (1, 2)
    assert engine.hit_ratio == pytest.approx(1 / 3)
    assert engine.entries == 1
    assert engine.bytes_used == len(b"k") + len(b"record") + ENTRY_OVERHEAD


def test_cached_engine_writes_through_and_invalidates() -> None:
    """put writes the inner engine and refreshes a cached copy; delete drops it."""
    inner = MemoryStorage()
    engine = CachedStorage("n", inner=inner)
    engine.put(b"k", 1, b"v1")
    assert inner.get(b"k") == b"v1"
    assert engine.entries == 0  # no write-allocate
    assert engine.get(b"k") == b"v1"  # miss, now cached
    engine.put(b"k", 2, b"v2-longer")
    assert inner.get(b"k") == b"v2-longer"
    assert engine.get(b"k") == b"v2-longer"  # a hit on the refreshed copy
    assert engine.hits == 1
    assert engine.bytes_used == 1 + len(b"v2-longer") + ENTRY_OVERHEAD
    engine.delete(b"k")
    assert inner.get(b"k") is None
    assert engine.get(b"k") is None
    assert engine.bytes_used == 0


@pytest.mark.parametrize("name", NAMES)
def test_cached_engine_stays_within_budget(name: str) -> None:
    """Many reads of many keys: bytes_used stays within budget_bytes, records stay right."""
    rng = random.Random(3)
    engine = CachedStorage("n", policy=name, budget_bytes=10 * (ENTRY_OVERHEAD + 40))
    for i in range(200):
        engine.put(b"key-%d" % i, i, rng.randbytes(rng.randint(0, 60)))
    for _ in range(2000):
        i = min(int(rng.paretovariate(1.0)) - 1, 199)
        record = engine.get(b"key-%d" % i)
        assert record == engine.inner.get(b"key-%d" % i)
        assert engine.bytes_used <= engine.budget_bytes
    assert engine.hits > 0
    assert engine.entries > 0


def test_cached_engine_records_larger_than_the_budget_bypass_the_cache() -> None:
    engine = CachedStorage("n", budget_bytes=ENTRY_OVERHEAD + 10)
    engine.put(b"big", 1, b"x" * 100)
    assert engine.get(b"big") == b"x" * 100
    assert engine.entries == 0


def test_cached_engine_parameters_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="available: lru, s3-fifo, w-tinylfu"):
        CachedStorage("n", policy="clock")
    with pytest.raises(ConfigurationError, match="budget_bytes"):
        CachedStorage("n", budget_bytes=-5)


def test_cached_engine_registered_and_built_through_the_registry() -> None:
    registry = ComponentRegistry()
    registry.add_storage_engine("memory", MemoryStorage)
    dtk_register_components(registry)
    engine = registry.create("storage_engine", "cached", node_id="n", policy="lru")
    assert isinstance(engine, CachedStorage)
    assert isinstance(engine.inner, MemoryStorage)
    assert engine.inner.node_id == "n"
