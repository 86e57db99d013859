"""Eviction policies for the ``cached`` storage engine: small, pure, byte-budgeted.

Each policy maps keys to values with a caller-given ``size`` per entry and keeps
the sum of sizes (:attr:`CachePolicy.bytes_used`) within ``budget``, always, not
just after a clean-up. One interface (:class:`CachePolicy`):

* ``get(key)`` returns the value or ``None`` and counts as an access (a hit or
  a miss, in :attr:`~CachePolicy.hits` / :attr:`~CachePolicy.misses`);
* ``put(key, value, size)`` inserts, evicting as needed, or replaces the value
  of a cached key in place (keeping its queue position and frequency, and
  counting no access); an entry larger than the budget is not cached
  (``w-tinylfu``: larger than its main area, 99 % of the budget), and a cached
  older value of its key is dropped;
* ``remove(key)`` forgets a key; ``key in policy`` checks without an access.

Policies (:data:`POLICIES`):

* ``lru``: least recently used, an ``OrderedDict``.
* ``s3-fifo``: S3-FIFO (Yang et al., "FIFO queues are all you need for cache
  eviction", SOSP 2023). A small FIFO (10 % of the budget) takes new keys; its
  tail goes to the main FIFO if it was read while there, else to a ghost FIFO
  that remembers only keys (up to the main queue's budget in sizes). A key
  found in the ghost is inserted straight into main. Main is FIFO with
  reinsertion: a tail entry read since it was last considered goes back to the
  head with its 2-bit frequency (0-3) decreased by one. One-hit wonders (a
  scan) go through the small queue only and never disturb main.
* ``w-tinylfu``: W-TinyLFU (Einziger, Friedman & Manes, "TinyLFU: a highly
  efficient cache admission policy", 2017, as in Caffeine): a 1 % LRU window,
  then a segmented LRU main (20 % probation, 80 % protected) guarded by a
  count-min sketch of 4-bit counters: a window victim enters main only if it
  was seen more often than the main victim it would replace.

Memory outside the budget: the ghost queue of ``s3-fifo`` (keys and sizes, at
most as many as fit main) and the sketch of ``w-tinylfu`` (16 counters per
cached entry, one byte each here). The sketch hashes keys with ``hash()``,
salted per process for ``bytes``: collisions, hence ``w-tinylfu``'s exact hit
ratio, vary a little from run to run (and an outsider cannot aim them).

``benchmarks/cache_policies.py`` compares the policies; ``s3-fifo`` is the
default: within a point of ``w-tinylfu``'s hit ratio there, at a fifth of its
CPU cost per access in CPython.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "CachePolicy",
    "CountMinSketch",
    "LRUPolicy",
    "S3FIFOPolicy",
    "WTinyLFUPolicy",
    "make_policy",
]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Entry(Generic[V]):
    __slots__ = ("freq", "size", "value")

    def __init__(self, value: V, size: int) -> None:
        self.value = value
        self.size = size
        self.freq = 0


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"entry size must be a non-negative int, got {size!r}")
    return size


class CachePolicy(ABC, Generic[K, V]):
    """A byte-budgeted cache of ``key -> value``; see the module docstring."""

    #: Name in :data:`POLICIES` and configuration.
    name: str = ""

    def __init__(self, budget: int) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ValueError(f"cache budget must be a non-negative int of bytes, got {budget!r}")
        self.budget = budget
        self.hits = 0
        self.misses = 0

    @abstractmethod
    def get(self, key: K) -> V | None:
        """The cached value of ``key`` or ``None``; counts one hit or miss."""

    @abstractmethod
    def put(self, key: K, value: V, size: int) -> None:
        """Cache ``value`` under ``key`` (``size`` bytes), or replace a cached value."""

    @abstractmethod
    def remove(self, key: K) -> None:
        """Forget ``key`` (absent keys are fine)."""

    @property
    @abstractmethod
    def bytes_used(self) -> int:
        """Sum of the sizes of cached entries; never above :attr:`budget`."""

    @abstractmethod
    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is cached (not an access)."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of cached entries."""

    @abstractmethod
    def clear(self) -> None:
        """Drop every entry (counters are kept)."""

    @property
    def hit_ratio(self) -> float:
        """hits / (hits + misses), 0.0 before any access."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(budget={self.budget}, used={self.bytes_used}, "
            f"entries={len(self)}, hit_ratio={self.hit_ratio:.3f})"
        )


class LRUPolicy(CachePolicy[K, V]):
    """Least recently used: evicts the entry read or written longest ago."""

    name = "lru"

    def __init__(self, budget: int) -> None:
        super().__init__(budget)
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()  # oldest first
        self._used = 0

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: K, value: V, size: int) -> None:
        _check_size(size)
        self.remove(key)
        if size > self.budget:
            return
        while self._used + size > self.budget:
            _, victim = self._entries.popitem(last=False)
            self._used -= victim.size
        self._entries[key] = _Entry(value, size)
        self._used += size

    def remove(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._used -= entry.size

    @property
    def bytes_used(self) -> int:
        return self._used

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._used = 0


class S3FIFOPolicy(CachePolicy[K, V]):
    """S3-FIFO: small FIFO (10 %), main FIFO with 2-bit reinsertion, ghost FIFO.

    ``small_ratio`` is the small queue's share of the budget; ``move_threshold``
    how many reads in the small queue earn a move to main (the paper's 1).
    """

    name = "s3-fifo"
    MAX_FREQ: Final = 3  # two bits

    def __init__(self, budget: int, small_ratio: float = 0.1, move_threshold: int = 1) -> None:
        super().__init__(budget)
        if not 0.0 < small_ratio < 1.0:
            raise ValueError(f"small_ratio must be in (0, 1), got {small_ratio!r}")
        self.small_budget = int(budget * small_ratio)
        self.main_budget = budget - self.small_budget
        self.move_threshold = move_threshold
        # Oldest (tail) first; new entries go to the end (head).
        self._small: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._main: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._ghost: OrderedDict[K, int] = OrderedDict()  # key -> size
        self._small_used = 0
        self._main_used = 0
        self._ghost_used = 0

    def _find(self, key: K) -> _Entry[V] | None:
        entry = self._small.get(key)
        return self._main.get(key) if entry is None else entry

    def get(self, key: K) -> V | None:
        entry = self._find(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        if entry.freq < self.MAX_FREQ:
            entry.freq += 1
        return entry.value

    def put(self, key: K, value: V, size: int) -> None:
        _check_size(size)
        entry = self._find(key)
        if entry is not None:
            if size > self.budget:
                self.remove(key)
                return
            entry.value = value
            grow = size - entry.size
            entry.size = size
            if key in self._small:
                self._small_used += grow
            else:
                self._main_used += grow
            while self._small_used + self._main_used > self.budget:
                self._evict()
            return
        if size > self.budget:
            return
        ghost_size = self._ghost.pop(key, None)
        if ghost_size is not None:
            self._ghost_used -= ghost_size
        while self._small_used + self._main_used + size > self.budget:
            self._evict()
        if ghost_size is not None:
            self._main[key] = _Entry(value, size)
            self._main_used += size
        else:
            self._small[key] = _Entry(value, size)
            self._small_used += size

    def _evict(self) -> None:
        if self._small and (self._small_used >= self.small_budget or not self._main):
            self._evict_small()
        else:
            self._evict_main()

    def _evict_small(self) -> None:
        small, main = self._small, self._main
        while small:
            key, entry = small.popitem(last=False)
            self._small_used -= entry.size
            if entry.freq >= self.move_threshold:
                entry.freq = 0
                main[key] = entry
                self._main_used += entry.size
                while self._main_used > self.main_budget and main:
                    self._evict_main()
            else:
                self._remember(key, entry.size)
                return

    def _evict_main(self) -> None:
        main = self._main
        while main:
            key, entry = main.popitem(last=False)
            if entry.freq > 0:
                entry.freq -= 1
                main[key] = entry  # reinserted at the head
            else:
                self._main_used -= entry.size
                return

    def _remember(self, key: K, size: int) -> None:
        ghost = self._ghost
        ghost[key] = size
        self._ghost_used += size
        while self._ghost_used > self.main_budget and ghost:
            _, old = ghost.popitem(last=False)
            self._ghost_used -= old

    def remove(self, key: K) -> None:
        entry = self._small.pop(key, None)
        if entry is not None:
            self._small_used -= entry.size
        else:
            entry = self._main.pop(key, None)
            if entry is not None:
                self._main_used -= entry.size
        ghost_size = self._ghost.pop(key, None)
        if ghost_size is not None:
            self._ghost_used -= ghost_size

    @property
    def bytes_used(self) -> int:
        return self._small_used + self._main_used

    def __contains__(self, key: object) -> bool:
        return key in self._small or key in self._main

    def __len__(self) -> int:
        return len(self._small) + len(self._main)

    def clear(self) -> None:
        self._small.clear()
        self._main.clear()
        self._ghost.clear()
        self._small_used = self._main_used = self._ghost_used = 0


_HALVE: Final = bytes(i >> 1 for i in range(256))
_MASK64: Final = 2**64 - 1
_SEEDS: Final = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)


class CountMinSketch:
    """Four rows of 4-bit counters (one per byte here), halved every ``10 x width`` adds.

    Sized for about ``entries`` distinct hot keys; :meth:`ensure_capacity` grows
    it (starting the counts afresh) when the cache holds more.
    """

    def __init__(self, entries: int = 16) -> None:
        self._build(entries)

    def _build(self, entries: int) -> None:
        width = 16
        while width < 4 * entries:
            width *= 2
        self.entries = entries
        self.width = width
        self._shift = 64 - (width.bit_length() - 1)
        self._rows = [bytearray(width) for _ in _SEEDS]
        self._sample = 10 * width
        self._added = 0

    def ensure_capacity(self, entries: int) -> None:
        """Resize (and reset) if sized for fewer than ``entries`` keys."""
        if entries > self.entries:
            self._build(max(entries, 2 * self.entries))

    def _slots(self, key: Hashable) -> list[int]:
        h = (hash(key) * 0xFF51AFD7ED558CCD) & _MASK64
        h ^= h >> 33
        shift = self._shift
        return [((h * seed) & _MASK64) >> shift for seed in _SEEDS]

    def add(self, key: Hashable) -> None:
        """Count one occurrence of ``key`` (counters saturate at 15)."""
        for row, slot in zip(self._rows, self._slots(key), strict=True):
            if row[slot] < 15:
                row[slot] += 1
        self._added += 1
        if self._added >= self._sample:  # ageing: recent popularity counts more
            for i, row in enumerate(self._rows):
                self._rows[i] = bytearray(row.translate(_HALVE))
            self._added //= 2

    def estimate(self, key: Hashable) -> int:
        """Estimated count of ``key`` (never below the true recent count, up to 15)."""
        return min(row[slot] for row, slot in zip(self._rows, self._slots(key), strict=True))


class WTinyLFUPolicy(CachePolicy[K, V]):
    """W-TinyLFU: 1 % LRU window, then segmented LRU behind a frequency-sketch filter."""

    name = "w-tinylfu"

    def __init__(self, budget: int, window_ratio: float = 0.01) -> None:
        super().__init__(budget)
        if not 0.0 < window_ratio < 1.0:
            raise ValueError(f"window_ratio must be in (0, 1), got {window_ratio!r}")
        self.window_budget = int(budget * window_ratio)
        self.main_budget = budget - self.window_budget
        self.protected_budget = int(self.main_budget * 0.8)
        self._window: OrderedDict[K, _Entry[V]] = OrderedDict()  # LRU first
        self._probation: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._protected: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._window_used = self._probation_used = self._protected_used = 0
        self.sketch = CountMinSketch()

    def get(self, key: K) -> V | None:
        self.sketch.add(key)
        entry = self._window.get(key)
        if entry is not None:
            self._window.move_to_end(key)
        elif (entry := self._protected.get(key)) is not None:
            self._protected.move_to_end(key)
        elif (entry := self._probation.pop(key, None)) is not None:
            self._probation_used -= entry.size
            self._protected[key] = entry
            self._protected_used += entry.size
            while self._protected_used > self.protected_budget:
                old_key, old = self._protected.popitem(last=False)
                self._protected_used -= old.size
                self._probation[old_key] = old
                self._probation_used += old.size
        else:
            self.misses += 1
            return None
        self.hits += 1
        return entry.value

    def _segment(self, key: K) -> OrderedDict[K, _Entry[V]] | None:
        for segment in (self._window, self._probation, self._protected):
            if key in segment:
                return segment
        return None

    def _adjust(self, segment: OrderedDict[K, _Entry[V]], delta: int) -> None:
        if segment is self._window:
            self._window_used += delta
        elif segment is self._probation:
            self._probation_used += delta
        else:
            self._protected_used += delta

    def put(self, key: K, value: V, size: int) -> None:
        _check_size(size)
        segment = self._segment(key)
        if segment is not None:
            entry = segment[key]
            if size > self.main_budget:
                self.remove(key)
                return
            entry.value = value
            self._adjust(segment, size - entry.size)
            entry.size = size
            self._rebalance()
            return
        if size > self.main_budget:
            return
        self._window[key] = _Entry(value, size)
        self._window_used += size
        self.sketch.ensure_capacity(len(self))
        self._rebalance()

    def _main_used(self) -> int:
        return self._probation_used + self._protected_used

    def _rebalance(self) -> None:
        """Restore every segment's budget: window overflow asks for admission to main."""
        while self._protected_used > self.protected_budget:
            key, entry = self._protected.popitem(last=False)
            self._protected_used -= entry.size
            self._probation[key] = entry
            self._probation_used += entry.size
        while self._window_used > self.window_budget:
            key, candidate = self._window.popitem(last=False)
            self._window_used -= candidate.size
            self._admit(key, candidate)
        while self._main_used() > self.main_budget:
            self._evict_main_victim()

    def _evict_main_victim(self) -> None:
        if self._probation:
            _, victim = self._probation.popitem(last=False)
            self._probation_used -= victim.size
        else:
            _, victim = self._protected.popitem(last=False)
            self._protected_used -= victim.size

    def _admit(self, key: K, candidate: _Entry[V]) -> None:
        candidate_freq = self.sketch.estimate(key)
        while self._main_used() + candidate.size > self.main_budget:
            victims = self._probation or self._protected
            victim_key = next(iter(victims))
            if candidate_freq <= self.sketch.estimate(victim_key):
                return  # the candidate is dropped: it is no more popular than the victim
            self._evict_main_victim()
        self._probation[key] = candidate
        self._probation_used += candidate.size

    def remove(self, key: K) -> None:
        segment = self._segment(key)
        if segment is not None:
            self._adjust(segment, -segment.pop(key).size)

    @property
    def bytes_used(self) -> int:
        return self._window_used + self._probation_used + self._protected_used

    def __contains__(self, key: object) -> bool:
        return key in self._window or key in self._probation or key in self._protected

    def __len__(self) -> int:
        return len(self._window) + len(self._probation) + len(self._protected)

    def clear(self) -> None:
        self._window.clear()
        self._probation.clear()
        self._protected.clear()
        self._window_used = self._probation_used = self._protected_used = 0


#: Policy name (configuration) -> class.
POLICIES: Final[dict[str, type[CachePolicy[Hashable, object]]]] = {
    "lru": LRUPolicy,
    "s3-fifo": S3FIFOPolicy,
    "w-tinylfu": WTinyLFUPolicy,
}

#: The default of the ``cached`` engine, chosen by ``benchmarks/cache_policies.py``.
DEFAULT_POLICY: Final = "s3-fifo"


def make_policy(name: str, budget: int) -> CachePolicy[K, V]:
    """Build policy ``name`` with ``budget`` bytes; unknown names list the known ones."""
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(
            f"unknown cache policy {name!r}; available: {', '.join(sorted(POLICIES))}"
        ) from None
    policy: CachePolicy[K, V] = cls(budget)  # type: ignore[assignment]
    return policy
