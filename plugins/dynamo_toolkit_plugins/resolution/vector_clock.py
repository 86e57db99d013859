"""The ``vector-clock`` conflict resolver: Dynamo's own (§4.4).

Versions whose clocks are strictly before another's are dropped (syntactic
reconciliation); concurrent versions survive together as siblings, for the
client to merge (semantic reconciliation) and write back with the merged
context.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import ConflictResolver
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.versioning import ClockEntry, Ordering, VectorClock, Version

__all__ = [
    "VectorClockResolver",
    "canonical_key",
    "dtk_register_components",
    "next_clock",
    "validate_max_entries",
]


def validate_max_entries(max_entries: int) -> int:
    """Return ``max_entries`` if it is a usable clock size, else raise ConfigurationError."""
    # bool is an int subclass; ``max_entries: true`` in a config file is surely a mistake.
    if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
        raise ConfigurationError(f"max_entries must be an integer >= 1, got {max_entries!r}")
    return max_entries


def next_clock(
    context: VectorClock,
    actor: str,
    timestamp: float,
    local: Sequence[Version] = (),
    max_entries: int | None = None,
) -> VectorClock:
    """The clock of a write by ``actor`` that read ``context``.

    ``actor``'s counter goes past every counter it already has in the ``local``
    versions, so the new clock is never equal to (or before) one of the
    coordinator's own earlier writes it did not see in ``context``. With
    ``max_entries``, the oldest entries are pruned (Dynamo §4.4) but ``actor``'s
    fresh entry is always kept: without it the write could compare as *before*
    a version it is meant to supersede.
    """
    at_least = max((version.clock.counter(actor) for version in local), default=0)
    clock = context.increment(actor, timestamp, at_least=at_least)
    if max_entries is None or len(clock) <= max_entries:
        return clock
    own = next(entry for entry in clock.entries if entry.actor == actor)
    if max_entries == 1:
        return VectorClock((own,))
    # A skewed peer may have stamped entries later than our own timestamp, so
    # prune the others to leave room rather than trusting timestamps alone.
    others = VectorClock(tuple(e for e in clock.entries if e.actor != actor))
    kept: tuple[ClockEntry, ...] = others.prune(max_entries - 1).entries
    return VectorClock((*kept, own))


def canonical_key(version: Version) -> tuple[list[list[object]], float, bool, bytes]:
    """A total, deterministic sort key over versions (every field takes part)."""
    value = version.value
    return (version.clock.to_wire(), version.timestamp, value is None, value or b"")


def _identity(version: Version) -> tuple[frozenset[tuple[str, int]], float, bytes | None]:
    # Entry timestamps only serve pruning, so clocks with equal counters are the
    # same causal point: the same value written at the same time is one write.
    return (frozenset(version.clock.counters().items()), version.timestamp, version.value)


class VectorClockResolver(ConflictResolver):
    """Keeps concurrent versions as siblings; drops versions another one descends.

    ``max_entries`` bounds clock size when ``prune`` is on (Dynamo truncates at
    about 10); pruning trades occasional false conflicts for bounded metadata.
    """

    def __init__(self, max_entries: int = 10, prune: bool = True) -> None:
        self.max_entries = validate_max_entries(max_entries)
        self.prune = bool(prune)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(max_entries={self.max_entries}, prune={self.prune})"

    def new_version(
        self,
        context: VectorClock,
        actor: str,
        value: bytes | None,
        timestamp: float,
        local: Sequence[Version] = (),
    ) -> Version:
        """Version of a write by ``actor`` that read ``context``; strictly after ``context``."""
        limit = self.max_entries if self.prune else None
        clock = next_clock(context, actor, timestamp, local, limit)
        return Version(clock, value, timestamp)

    def reconcile(self, versions: Iterable[Version]) -> tuple[Version, ...]:
        """Survivors: versions no other version strictly descends, deduplicated, sorted."""
        versions = tuple(versions)
        if len(versions) == 1:  # the common case on reads: nothing to reconcile
            return versions
        if len(versions) == 2:  # the common case on writes: new version over old
            order = versions[0].clock.compare(versions[1].clock)
            if order is Ordering.BEFORE:
                return versions[1:]
            if order is Ordering.AFTER:
                return versions[:1]
        # Exact duplicates collapse to the smallest representative so that the
        # choice does not depend on arrival order.
        unique: dict[tuple[frozenset[tuple[str, int]], float, bytes | None], Version] = {}
        for version in versions:
            ident = _identity(version)
            current = unique.get(ident)
            if current is None or canonical_key(version) < canonical_key(current):
                unique[ident] = version
        candidates = list(unique.values())
        survivors = [
            version
            for version in candidates
            if not any(
                version.clock.compare(other.clock) is Ordering.BEFORE for other in candidates
            )
        ]
        return tuple(sorted(survivors, key=canonical_key))


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``vector-clock`` conflict resolver."""
    registry.add_conflict_resolver("vector-clock", VectorClockResolver)
