"""Conformance suite for :class:`~dynamo_toolkit.interfaces.ConflictResolver`.

The laws every resolver must obey so that replicas converge: reconciliation is
commutative, associative and idempotent, never keeps a version another
survivor supersedes, and a write made with the merged context of what a read
saw supersedes all of it. Histories are generated from a seeded
:class:`random.Random` (no hypothesis needed by plugin authors), so every run
checks the same cases.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest

from dynamo_toolkit.interfaces import ConflictResolver
from dynamo_toolkit.versioning import Ordering, VectorClock, Version

__all__ = ["ConflictResolverSuite", "MakeResolver"]

#: What the ``make_resolver`` fixture returns: builds a fresh resolver per call.
MakeResolver = Callable[[], ConflictResolver]

_ACTORS = ("node-a", "node-b", "node-c", "node-d")
# Few distinct values (and a tombstone) so equal values under different clocks
# and equal clocks under different values both occur.
_VALUES: tuple[bytes | None, ...] = (b"x", b"y", b"", b"\xff\x00", None)
_SEEDS = range(25)


def _merged(versions: Sequence[Version]) -> VectorClock:
    clock = VectorClock()
    for version in versions:
        clock = clock.merge(version.clock)
    return clock


def _history(resolver: ConflictResolver, rng: random.Random, writes: int = 20) -> list[Version]:
    """Versions from several actors writing with partial, overlapping reads."""
    # Per-actor wall-clock skew, so timestamps tie and even go backwards.
    skew = {actor: rng.choice((-2.0, 0.0, 0.0, 1.0)) for actor in _ACTORS}
    pool: list[Version] = []
    now = 1_000.0
    for _ in range(writes):
        now += rng.choice((0.0, 0.5, 1.0))
        actor = rng.choice(_ACTORS)
        seen = rng.sample(pool, rng.randint(0, min(3, len(pool))))
        local = rng.sample(pool, rng.randint(0, min(4, len(pool))))
        value = rng.choice(_VALUES)
        pool.append(resolver.new_version(_merged(seen), actor, value, now + skew[actor], local))
    return pool


def _sample(rng: random.Random, pool: Sequence[Version]) -> list[Version]:
    """A random multiset drawn from ``pool`` (duplicates included on purpose)."""
    chosen = rng.sample(list(pool), rng.randint(1, len(pool)))
    chosen += rng.sample(chosen, rng.randint(0, min(2, len(chosen))))
    rng.shuffle(chosen)
    return chosen


def _cases(resolver: ConflictResolver) -> list[tuple[int, random.Random, list[Version]]]:
    cases = []
    for seed in _SEEDS:
        rng = random.Random(seed)
        cases.append((seed, rng, _history(resolver, rng)))
    return cases


class ConflictResolverSuite:
    """Subclass and provide the fixture ``make_resolver``: a zero-argument
    callable returning a fresh :class:`~dynamo_toolkit.interfaces.ConflictResolver`.

    Histories use at most four actors, below any sensible clock-pruning
    threshold: pruning may legitimately break "supersedes" (Dynamo §4.4).
    """

    @pytest.fixture
    def resolver(self, make_resolver: MakeResolver) -> ConflictResolver:
        """A fresh resolver built with ``make_resolver``."""
        return make_resolver()

    def test_empty_input_gives_empty_tuple(self, resolver: ConflictResolver) -> None:
        """Nothing to reconcile gives ``()``."""
        assert resolver.reconcile([]) == ()
        assert resolver.reconcile(iter(())) == ()

    def test_reconcile_returns_a_tuple_of_input_versions(self, resolver: ConflictResolver) -> None:
        """Survivors are a non-empty tuple of versions taken from the input."""
        for seed, rng, pool in _cases(resolver):
            versions = _sample(rng, pool)
            result = resolver.reconcile(versions)
            assert isinstance(result, tuple), f"seed {seed}"
            assert result, f"seed {seed}: non-empty input lost every version"
            for survivor in result:
                assert survivor in versions, f"seed {seed}: {survivor} was not in the input"

    def test_single_version_survives_alone(self, resolver: ConflictResolver) -> None:
        """One version (or the same one twice) reconciles to itself."""
        version = resolver.new_version(VectorClock(), "node-a", b"v", 5.0)
        assert resolver.reconcile([version]) == (version,)
        assert resolver.reconcile([version, version]) == (version,)

    def test_new_version_is_strictly_after_its_context(self, resolver: ConflictResolver) -> None:
        """A new version's clock descends its context and is not equal to it."""
        for seed, rng, pool in _cases(resolver):
            for _ in range(5):
                context = _merged(rng.sample(pool, rng.randint(0, len(pool))))
                actor = rng.choice(_ACTORS)
                local = rng.sample(pool, rng.randint(0, len(pool)))
                value = rng.choice(_VALUES)
                version = resolver.new_version(context, actor, value, 2_000.0, local)
                assert version.clock.compare(context) is Ordering.AFTER, f"seed {seed}"
                assert version.value == value, f"seed {seed}"

    def test_new_version_is_after_the_local_versions_it_saw(
        self, resolver: ConflictResolver
    ) -> None:
        """A write whose context covers the local versions supersedes them."""
        for seed, rng, pool in _cases(resolver):
            local = _sample(rng, pool)
            version = resolver.new_version(_merged(local), "node-b", b"new", 3_000.0, local)
            for old in local:
                assert old.clock.compare(version.clock) is Ordering.BEFORE, f"seed {seed}"

    def test_write_with_merged_context_supersedes_everything_read(
        self, resolver: ConflictResolver
    ) -> None:
        """Reading a set and writing back with its merged context leaves one version."""
        for seed, rng, pool in _cases(resolver):
            read = _sample(rng, pool)
            later = max(version.timestamp for version in read) + 1.0
            local = rng.sample(pool, rng.randint(0, len(pool)))
            value = rng.choice(_VALUES)
            actor = rng.choice(_ACTORS)
            write = resolver.new_version(_merged(read), actor, value, later, local)
            for arrangement in ([*read, write], [write, *read]):
                assert resolver.reconcile(arrangement) == (write,), f"seed {seed}"

    def test_reconcile_is_idempotent(self, resolver: ConflictResolver) -> None:
        """Reconciling survivors again, or the input twice over, changes nothing."""
        for seed, rng, pool in _cases(resolver):
            versions = _sample(rng, pool)
            once = resolver.reconcile(versions)
            assert resolver.reconcile(once) == once, f"seed {seed}"
            assert resolver.reconcile(versions + versions) == once, f"seed {seed}"

    def test_reconcile_is_commutative(self, resolver: ConflictResolver) -> None:
        """The order versions arrive in does not matter, including the output's order."""
        for seed, rng, pool in _cases(resolver):
            versions = _sample(rng, pool)
            expected = resolver.reconcile(versions)
            assert resolver.reconcile(list(reversed(versions))) == expected, f"seed {seed}"
            for _ in range(3):
                shuffled = list(versions)
                rng.shuffle(shuffled)
                assert resolver.reconcile(shuffled) == expected, f"seed {seed}"

    def test_reconcile_is_associative(self, resolver: ConflictResolver) -> None:
        """Grouping does not matter: replicas may reconcile partial sets first."""
        for seed, rng, pool in _cases(resolver):
            for _ in range(3):
                versions = _sample(rng, pool)
                a: list[Version] = []
                b: list[Version] = []
                c: list[Version] = []
                for version in versions:
                    rng.choice((a, b, c)).append(version)
                left = resolver.reconcile([*resolver.reconcile([*a, *b]), *c])
                right = resolver.reconcile([*a, *resolver.reconcile([*b, *c])])
                assert left == right, f"seed {seed}"
                assert left == resolver.reconcile(versions), f"seed {seed}"

    def test_no_survivor_is_before_another(self, resolver: ConflictResolver) -> None:
        """Syntactic reconciliation: a superseded version never survives."""
        for seed, rng, pool in _cases(resolver):
            survivors = resolver.reconcile(_sample(rng, pool))
            for one in survivors:
                for other in survivors:
                    assert one.clock.compare(other.clock) is not Ordering.BEFORE, f"seed {seed}"

    def test_a_blind_write_claims_no_more_than_its_coordinator_holds(
        self, resolver: ConflictResolver
    ) -> None:
        """``blind_write_context`` covers no event the held versions do not cover.

        It may cover nothing (the write is then concurrent with what it does
        not descend) or what ``local`` holds (it replaces that, as ``SET``
        does), but never more: a blind write must not claim to have seen a
        version written elsewhere that has not reached its coordinator.
        """
        assert resolver.blind_write_context(()) == VectorClock()
        for seed, rng, pool in _cases(resolver):
            local = rng.sample(pool, rng.randint(0, len(pool)))
            context = resolver.blind_write_context(local)
            assert _merged(local).descends(context), f"seed {seed}"

    def test_tombstone_is_a_version_like_any_other(self, resolver: ConflictResolver) -> None:
        """A delete supersedes what it read, and a later write supersedes the delete."""
        first = resolver.new_version(VectorClock(), "node-a", b"v1", 10.0)
        tomb = resolver.new_version(first.clock, "node-b", None, 11.0, [first])
        assert tomb.is_tombstone
        assert tomb.clock.compare(first.clock) is Ordering.AFTER
        assert resolver.reconcile([first, tomb]) == (tomb,)
        assert resolver.reconcile([tomb, first]) == (tomb,)
        revived = resolver.new_version(tomb.clock, "node-c", b"v2", 12.0, [tomb])
        assert resolver.reconcile([tomb, revived, first]) == (revived,)
        assert resolver.reconcile([tomb, tomb]) == (tomb,)
