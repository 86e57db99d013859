"""Behaviour specific to the built-in ``vector-clock`` and ``lww`` resolvers."""

from __future__ import annotations

import itertools

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.versioning import ClockEntry, Ordering, VectorClock, Version
from dynamo_toolkit_plugins.resolution import lww, vector_clock
from dynamo_toolkit_plugins.resolution.lww import LastWriteWinsResolver
from dynamo_toolkit_plugins.resolution.vector_clock import VectorClockResolver

EMPTY = VectorClock()


def _clock(**counters: int) -> VectorClock:
    return VectorClock.from_counters(counters)


# -- vector-clock -------------------------------------------------------------------


def test_vector_clock_keeps_concurrent_siblings_and_drops_ancestor() -> None:
    resolver = VectorClockResolver()
    ancestor = resolver.new_version(EMPTY, "a", b"v0", 1.0)
    left = resolver.new_version(ancestor.clock, "a", b"left", 2.0, [ancestor])
    right = resolver.new_version(ancestor.clock, "b", b"right", 3.0, [ancestor])
    assert left.clock.compare(right.clock) is Ordering.CONCURRENT
    for order in itertools.permutations([ancestor, left, right]):
        survivors = resolver.reconcile(order)
        assert set(survivors) == {left, right}
        assert survivors == resolver.reconcile([left, right])


def test_vector_clock_merged_write_resolves_siblings() -> None:
    resolver = VectorClockResolver()
    left = resolver.new_version(EMPTY, "a", b"left", 2.0)
    right = resolver.new_version(EMPTY, "b", b"right", 3.0)
    merged = resolver.new_version(left.clock.merge(right.clock), "c", b"both", 4.0)
    assert resolver.reconcile([left, merged, right]) == (merged,)


def test_vector_clock_equal_clocks_keep_different_values_but_not_duplicates() -> None:
    resolver = VectorClockResolver()
    clock = _clock(a=1)
    one = Version(clock, b"one", 1.0)
    two = Version(clock, b"two", 1.0)
    tomb = Version(clock, None, 1.0)
    assert resolver.reconcile([one, one, one]) == (one,)
    survivors = resolver.reconcile([two, one, tomb, one])
    assert set(survivors) == {one, two, tomb}
    assert len(survivors) == 3


def test_vector_clock_duplicate_with_other_entry_timestamps_collapses_deterministically() -> None:
    resolver = VectorClockResolver()
    # Same counters (so the same causal point), only entry timestamps differ.
    early = Version(VectorClock((ClockEntry("a", 1, 1.0),)), b"v", 5.0)
    late = Version(VectorClock((ClockEntry("a", 1, 2.0),)), b"v", 5.0)
    assert resolver.reconcile([early, late]) == resolver.reconcile([late, early])
    assert len(resolver.reconcile([early, late])) == 1


def test_vector_clock_counter_goes_past_local_versions() -> None:
    resolver = VectorClockResolver()
    local = [Version(_clock(a=3, b=1), b"x", 1.0), Version(_clock(a=5), b"y", 2.0)]
    # A blind write (empty context) by "a" must not reuse a counter "a" already issued.
    version = resolver.new_version(EMPTY, "a", b"z", 3.0, local)
    assert version.clock.counters() == {"a": 6}
    assert version.timestamp == 3.0
    assert version.value == b"z"


def test_vector_clock_prunes_oldest_entries_but_keeps_the_writer() -> None:
    resolver = VectorClockResolver(max_entries=3)
    # Peers' entries are stamped *later* than the writer's clock (skew).
    context = VectorClock(tuple(ClockEntry(f"p{i}", 1, 100.0 + i) for i in range(5)))
    version = resolver.new_version(context, "w", b"v", 50.0)
    assert len(version.clock) == 3
    assert version.clock.counters() == {"p3": 1, "p4": 1, "w": 1}
    unpruned = VectorClockResolver(prune=False).new_version(context, "w", b"v", 50.0)
    assert len(unpruned.clock) == 6
    assert unpruned.clock.compare(context) is Ordering.AFTER


def test_vector_clock_prune_to_one_entry_keeps_only_the_writer() -> None:
    resolver = VectorClockResolver(max_entries=1)
    version = resolver.new_version(_clock(a=4, b=2), "c", None, 9.0)
    assert version.clock.counters() == {"c": 1}
    assert version.is_tombstone


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
@pytest.mark.parametrize("cls", [VectorClockResolver, LastWriteWinsResolver])
def test_max_entries_is_validated(cls: type, bad: object) -> None:
    with pytest.raises(ConfigurationError):
        cls(max_entries=bad)


# -- lww --------------------------------------------------------------------------------


def test_lww_keeps_the_later_timestamp_whatever_the_order() -> None:
    resolver = LastWriteWinsResolver()
    older = resolver.new_version(EMPTY, "a", b"older", 10.0)
    newer = resolver.new_version(EMPTY, "b", b"newer", 20.0)
    concurrent = resolver.new_version(EMPTY, "c", b"middle", 15.0)
    for order in itertools.permutations([older, newer, concurrent]):
        assert resolver.reconcile(order) == (newer,)


def test_lww_ties_are_broken_deterministically() -> None:
    resolver = LastWriteWinsResolver()
    tied = [
        Version(_clock(a=1), b"x", 7.0),
        Version(_clock(b=1), b"x", 7.0),
        Version(_clock(b=1), b"y", 7.0),
        Version(_clock(b=1), None, 7.0),
    ]
    winners = {resolver.reconcile(order) for order in itertools.permutations(tied)}
    assert len(winners) == 1
    # Same timestamp and clock: the delete wins the tie.
    assert winners.pop() == (tied[3],)


def test_lww_write_with_context_beats_what_it_read_despite_skew() -> None:
    resolver = LastWriteWinsResolver()
    # A peer whose clock runs ahead wrote at t=100; we read it and write at t=50.
    read = resolver.new_version(EMPTY, "fast", b"old", 100.0)
    write = resolver.new_version(read.clock, "slow", b"new", 50.0, [read])
    assert write.timestamp > read.timestamp
    assert resolver.reconcile([write, read]) == (write,)
    # A blind write keeps its own timestamp, and loses.
    blind = resolver.new_version(EMPTY, "slow", b"blind", 50.0)
    assert blind.timestamp == 50.0
    assert resolver.reconcile([blind, read]) == (read,)


def test_lww_still_maintains_and_prunes_clocks() -> None:
    resolver = LastWriteWinsResolver(max_entries=2)
    first = resolver.new_version(EMPTY, "a", b"1", 1.0)
    second = resolver.new_version(first.clock, "b", b"2", 2.0, [first])
    third = resolver.new_version(second.clock, "c", b"3", 3.0, [second])
    assert second.clock.compare(first.clock) is Ordering.AFTER
    assert third.clock.counters() == {"b": 1, "c": 1}


# -- registration -------------------------------------------------------------------------


def test_resolvers_register_under_their_names() -> None:
    registry = ComponentRegistry()
    vector_clock.dtk_register_components(registry=registry)
    lww.dtk_register_components(registry=registry)
    assert registry.names("conflict_resolver") == ["lww", "vector-clock"]
    built = registry.create("conflict_resolver", "vector-clock", max_entries=5, prune=False)
    assert isinstance(built, VectorClockResolver)
    assert (built.max_entries, built.prune) == (5, False)
    assert isinstance(registry.create("conflict_resolver", "lww"), LastWriteWinsResolver)
