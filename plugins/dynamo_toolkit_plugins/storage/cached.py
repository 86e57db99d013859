"""The ``cached`` storage engine: an in-memory read cache in front of another engine.

A *wrapper*: it builds the engine it wraps (``inner``, ``memory`` by default)
through the component registry, so in TOML::

    [storage_engine]
    name = "cached"
    budget_bytes = 67108864
    policy = "s3-fifo"
    inner = {name = "compressed", inner = {name = "sqlitedict"}}

The inner engine stays the source of truth:

* ``get`` reads through: a miss reads the inner engine and offers the record
  to the cache policy;
* ``put`` writes through: the inner engine is written first, then a cached
  copy of the key is replaced. A key that is not cached is not added (no
  write-allocate): hand-off and anti-entropy write many keys nobody reads
  soon, while the node's own read-modify-write path reads a key (caching it)
  before writing it;
* ``delete`` deletes from the inner engine, then drops the cached copy;
* ``scan`` goes to the inner engine and does not touch the cache (a scan
  would otherwise evict the hot set).

Each cached entry is charged ``len(key) + len(record) + ENTRY_OVERHEAD`` bytes
against ``budget_bytes``; see :data:`ENTRY_OVERHEAD`. The default policy is
``s3-fifo``: on the zipfian and scan-polluted traces of
``benchmarks/cache_policies.py`` it matches or beats ``lru`` (see
``docs/benchmarks/cache_policies.json``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import StorageEngine
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.storage.cache_policies import (
    DEFAULT_POLICY,
    POLICIES,
    CachePolicy,
    make_policy,
)
from dynamo_toolkit_plugins.storage.compressed import InnerSpec, build_inner_engine

__all__ = ["DEFAULT_BUDGET_BYTES", "ENTRY_OVERHEAD", "CachedStorage", "dtk_register_components"]

#: Default cache budget: 64 MiB.
DEFAULT_BUDGET_BYTES: Final = 64 * 1024 * 1024

#: Bytes charged per cached entry on top of its key and record, measured with
#: ``tracemalloc`` on CPython 3.11: the policy's ``OrderedDict`` slot (~110),
#: the entry object (56) and the two ``bytes`` object headers (2 x 33), rounded up.
ENTRY_OVERHEAD: Final = 240


class CachedStorage(StorageEngine):
    """Wrapper engine: read-through, write-through cache of records within ``budget_bytes``.

    Parameters: ``inner`` the wrapped engine (a name, a ``{name, params}``
    table, or an engine); ``budget_bytes`` the memory the cache may charge
    (see :data:`ENTRY_OVERHEAD`); ``policy`` one of ``lru``, ``s3-fifo``,
    ``w-tinylfu``.

    Metrics: :attr:`hits`, :attr:`misses`, :attr:`hit_ratio`,
    :attr:`bytes_used` and :attr:`entries`.
    """

    def __init__(
        self,
        node_id: str | None = None,
        data_dir: Path | str | None = None,
        registry: ComponentRegistry | None = None,
        inner: InnerSpec = "memory",
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        policy: str = DEFAULT_POLICY,
    ) -> None:
        if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes < 0:
            raise ConfigurationError(
                f"budget_bytes must be a non-negative integer, got {budget_bytes!r}"
            )
        if policy not in POLICIES:
            raise ConfigurationError(
                f"unknown cache policy {policy!r}; available: {', '.join(sorted(POLICIES))}"
            )
        self.node_id = node_id
        self.policy_name = policy
        self.cache: CachePolicy[bytes, bytes] = make_policy(policy, budget_bytes)
        self.inner = build_inner_engine(
            inner, wrapper="cached", node_id=node_id, data_dir=data_dir, registry=registry
        )

    def __repr__(self) -> str:
        return f"CachedStorage(cache={self.cache!r}, inner={self.inner!r})"

    # -- metrics ----------------------------------------------------------------

    @property
    def hits(self) -> int:
        """Reads answered from the cache."""
        return self.cache.hits

    @property
    def misses(self) -> int:
        """Reads that went to the inner engine."""
        return self.cache.misses

    @property
    def hit_ratio(self) -> float:
        """hits / reads (0.0 before any read)."""
        return self.cache.hit_ratio

    @property
    def bytes_used(self) -> int:
        """Bytes charged by cached entries (never above ``budget_bytes``)."""
        return self.cache.bytes_used

    @property
    def budget_bytes(self) -> int:
        """The cache's byte budget."""
        return self.cache.budget

    @property
    def entries(self) -> int:
        """Number of cached records."""
        return len(self.cache)

    # -- StorageEngine ------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The record under ``key``: from the cache, or read through from the inner engine."""
        key = bytes(key)
        record = self.cache.get(key)
        if record is None:
            record = self.inner.get(key)
            if record is not None:
                record = bytes(record)
                self.cache.put(key, record, len(key) + len(record) + ENTRY_OVERHEAD)
        return record

    def put(self, key: bytes, position: int, record: bytes) -> None:
        """Write ``record`` to the inner engine, then refresh a cached copy of ``key``."""
        key, record = bytes(key), bytes(record)
        try:
            self.inner.put(key, position, record)
        except BaseException:
            self.cache.remove(key)  # the inner engine may or may not hold the new record
            raise
        if key in self.cache:
            self.cache.put(key, record, len(key) + len(record) + ENTRY_OVERHEAD)

    def delete(self, key: bytes) -> None:
        """Delete ``key`` from the inner engine and the cache."""
        key = bytes(key)
        try:
            self.inner.delete(key)
        finally:
            self.cache.remove(key)

    def scan(self, start: int, end: int) -> Iterator[tuple[bytes, int, bytes]]:
        """The inner engine's scan (the cache is neither read nor filled)."""
        return self.inner.scan(start, end)

    def __len__(self) -> int:
        """Number of keys stored (in the inner engine)."""
        return len(self.inner)

    @property
    def buffers_writes(self) -> bool:
        """As the engine it wraps."""
        return self.inner.buffers_writes

    def flush(self) -> None:
        """Flush the inner engine (the cache holds nothing that is not there)."""
        self.inner.flush()

    def close(self) -> None:
        """Drop the cache and close the inner engine; closing twice is harmless."""
        self.cache.clear()
        self.inner.close()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``cached`` wrapper storage engine."""
    registry.add_storage_engine("cached", CachedStorage)
