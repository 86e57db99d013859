"""Vector clocks (Dynamo §4.4): a pure value, no I/O.

A clock maps actor (node id) to a counter and the time of that actor's last
increment; the timestamp only serves pruning, never ordering.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping

import attrs

__all__ = ["DEFAULT_MAX_ENTRIES", "ClockEntry", "Ordering", "VectorClock"]

#: Dynamo truncates clocks "when the number of (node, counter) pairs reaches a threshold (say 10)".
DEFAULT_MAX_ENTRIES = 10


class Ordering(enum.Enum):
    """How two clocks relate in the happened-before partial order."""

    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"


@attrs.frozen(order=True)
class ClockEntry:
    """One actor's entry: its counter and when (clock seconds) it last advanced."""

    actor: str
    counter: int
    timestamp: float = 0.0


def _by_actor(entries: Iterable[ClockEntry]) -> tuple[ClockEntry, ...]:
    return tuple(sorted(entries, key=lambda entry: entry.actor))


@attrs.frozen
class VectorClock:
    """An immutable vector clock; entries are kept sorted by actor."""

    entries: tuple[ClockEntry, ...] = attrs.field(default=(), converter=_by_actor)

    @classmethod
    def from_counters(cls, counters: Mapping[str, int]) -> VectorClock:
        """Build a clock from ``{actor: counter}`` (timestamps zero); handy in tests."""
        return cls(tuple(ClockEntry(actor, count) for actor, count in counters.items() if count))

    @classmethod
    def _sorted(cls, entries: tuple[ClockEntry, ...]) -> VectorClock:
        # Internal fast constructor for entries already sorted by unique actor:
        # skips the converter, which matters on every read and write.
        clock = object.__new__(cls)
        object.__setattr__(clock, "entries", entries)
        return clock

    def counters(self) -> dict[str, int]:
        """Return ``{actor: counter}``."""
        return {entry.actor: entry.counter for entry in self.entries}

    def counter(self, actor: str) -> int:
        """Return ``actor``'s counter, 0 when absent."""
        for entry in self.entries:
            if entry.actor == actor:
                return entry.counter
        return 0

    def __len__(self) -> int:
        return len(self.entries)

    def compare(self, other: VectorClock) -> Ordering:
        """Relate ``self`` to ``other``: BEFORE means ``self`` happened before ``other``."""
        # A merge walk over both actor-sorted entry lists: this sits on every
        # read and write path, so no dicts are built.
        mine, theirs = self.entries, other.entries
        i = j = 0
        less = greater = False
        while i < len(mine) and j < len(theirs):
            a, b = mine[i], theirs[j]
            if a.actor == b.actor:
                if a.counter < b.counter:
                    less = True
                elif a.counter > b.counter:
                    greater = True
                i += 1
                j += 1
            elif a.actor < b.actor:
                greater = greater or a.counter > 0
                i += 1
            else:
                less = less or b.counter > 0
                j += 1
            if less and greater:
                return Ordering.CONCURRENT
        greater = greater or any(e.counter > 0 for e in mine[i:])
        less = less or any(e.counter > 0 for e in theirs[j:])
        if less and greater:
            return Ordering.CONCURRENT
        if less:
            return Ordering.BEFORE
        if greater:
            return Ordering.AFTER
        return Ordering.EQUAL

    def descends(self, other: VectorClock) -> bool:
        """True when ``self`` is equal to or after ``other``."""
        return self.compare(other) in (Ordering.AFTER, Ordering.EQUAL)

    def merge(self, other: VectorClock) -> VectorClock:
        """Pointwise maximum (the least clock that descends both)."""
        if not other.entries or self.entries == other.entries:
            return self
        if not self.entries:
            return other
        merged: dict[str, ClockEntry] = {entry.actor: entry for entry in self.entries}
        for entry in other.entries:
            current = merged.get(entry.actor)
            if current is None or (entry.counter, entry.timestamp) > (
                current.counter,
                current.timestamp,
            ):
                merged[entry.actor] = entry
        return VectorClock._sorted(tuple(merged[actor] for actor in sorted(merged)))

    def increment(self, actor: str, timestamp: float, at_least: int = 0) -> VectorClock:
        """Advance ``actor``'s counter past both its own and ``at_least``, stamped ``timestamp``."""
        counter = max(self.counter(actor), at_least) + 1
        fresh = ClockEntry(actor, counter, timestamp)
        kept = [entry for entry in self.entries if entry.actor != actor]
        index = 0
        while index < len(kept) and kept[index].actor < actor:
            index += 1
        kept.insert(index, fresh)
        return VectorClock._sorted(tuple(kept))

    def prune(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> VectorClock:
        """Drop the oldest entries (by timestamp, then actor) down to ``max_entries``."""
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if len(self.entries) <= max_entries:
            return self
        newest = sorted(self.entries, key=lambda e: (e.timestamp, e.actor))[-max_entries:]
        return VectorClock(tuple(newest))

    def to_wire(self) -> list[list[object]]:
        """Plain msgpack-able form: ``[[actor, counter, timestamp], ...]``."""
        return [[e.actor, e.counter, e.timestamp] for e in self.entries]

    @classmethod
    def from_wire(cls, data: Iterable[Iterable[object]]) -> VectorClock:
        """Inverse of :meth:`to_wire`; ``ValueError`` on anything malformed."""
        entries = []
        previous = ""
        in_order = True
        seen: set[str] = set()
        for item in data:
            actor, counter, timestamp = item
            if not isinstance(actor, str) or actor in seen:
                raise ValueError(f"malformed or repeated clock actor {actor!r}")
            if type(counter) is not int or counter < 1:
                raise ValueError(f"clock counter must be a positive integer, got {counter!r}")
            if type(timestamp) not in (int, float) or not math.isfinite(timestamp):  # type: ignore[arg-type]
                raise ValueError(f"clock timestamp must be a finite number, got {timestamp!r}")
            in_order = in_order and actor > previous
            previous = actor
            seen.add(actor)
            entries.append(ClockEntry(actor, counter, float(timestamp)))  # type: ignore[arg-type]
        # to_wire emits sorted entries; only foreign input needs sorting.
        return cls._sorted(tuple(entries)) if in_order else cls(tuple(entries))
