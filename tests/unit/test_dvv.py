"""The ``dvv`` resolver: exact causality through one coordinator, properties over histories."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces import ConflictResolver
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.versioning import Ordering, VectorClock, Version
from dynamo_toolkit_plugins.resolution.dvv import (
    BRANCH_SEPARATOR,
    DottedVersionVectorResolver,
    branch_entry,
    split_entry,
)
from dynamo_toolkit_plugins.resolution.vector_clock import VectorClockResolver

EMPTY = VectorClock()


def _merged(versions: Sequence[Version]) -> VectorClock:
    clock = VectorClock()
    for version in versions:
        clock = clock.merge(version.clock)
    return clock


def _write(
    resolver: ConflictResolver,
    stored: tuple[Version, ...],
    context: VectorClock,
    actor: str,
    value: bytes,
    timestamp: float,
) -> tuple[Version, tuple[Version, ...]]:
    """A write coordinated by a replica: made from its local set, then applied to it."""
    version = resolver.new_version(context, actor, value, timestamp, stored)
    return version, resolver.reconcile((*stored, version))


# -- the lost update dvv exists for -------------------------------------------------------


def test_stale_writes_through_one_coordinator_become_siblings() -> None:
    dvv = DottedVersionVectorResolver()
    first, stored = _write(dvv, (), EMPTY, "n1", b"first", 1.0)
    # A second client read before the first write landed: same (empty) context.
    second, stored = _write(dvv, stored, EMPTY, "n1", b"second", 2.0)
    assert set(stored) == {first, second}
    assert first.clock.compare(second.clock) is Ordering.CONCURRENT
    assert first.clock.counters() == {"n1": 1}
    # The second dot went on branch 1 with a counter no other n1 dot has.
    assert second.clock.counters() == {branch_entry("n1", 1): 2}


def test_vector_clock_loses_the_same_update() -> None:
    # The contrast: the node's counter steps past the first write, which looks seen.
    vc = VectorClockResolver(prune=False)
    first, stored = _write(vc, (), EMPTY, "n1", b"first", 1.0)
    second, stored = _write(vc, stored, EMPTY, "n1", b"second", 2.0)
    assert stored == (second,)
    assert first.clock.compare(second.clock) is Ordering.BEFORE


def test_merged_context_resolves_siblings_and_returns_to_branch_zero() -> None:
    dvv = DottedVersionVectorResolver()
    _, stored = _write(dvv, (), EMPTY, "n1", b"first", 1.0)
    _, stored = _write(dvv, stored, EMPTY, "n1", b"second", 2.0)
    merged, stored = _write(dvv, stored, _merged(stored), "n1", b"merged", 3.0)
    assert stored == (merged,)
    # Branch 0's tip (1) was seen, so the dot goes back there, past every counter used.
    assert merged.clock.counters() == {"n1": 3, branch_entry("n1", 1): 2}


def test_a_free_branch_is_reused_before_a_new_one_is_opened() -> None:
    dvv = DottedVersionVectorResolver()
    _, stored = _write(dvv, (), EMPTY, "n1", b"a", 1.0)
    second, stored = _write(dvv, stored, EMPTY, "n1", b"b", 2.0)
    merged, stored = _write(dvv, stored, _merged(stored), "n1", b"c", 3.0)
    # A client still holding the context of ``second`` writes again: branch 0's
    # tip (merged) is unseen, branch 1's tip (second) is seen, so branch 1 continues.
    late, stored = _write(dvv, stored, second.clock, "n1", b"d", 4.0)
    assert set(stored) == {merged, late}
    assert late.clock.counters() == {branch_entry("n1", 1): 4}
    # A blind write sees no tip at all: a new branch.
    blind, stored = _write(dvv, stored, EMPTY, "n1", b"e", 5.0)
    assert set(stored) == {merged, late, blind}
    assert blind.clock.counters() == {branch_entry("n1", 2): 5}


def test_without_concurrency_clocks_equal_vector_clocks() -> None:
    dvv = DottedVersionVectorResolver()
    vc = VectorClockResolver(prune=False)
    stored_dvv: tuple[Version, ...] = ()
    stored_vc: tuple[Version, ...] = ()
    for step, actor in enumerate(["n1", "n2", "n1", "n3", "n3", "n2"]):
        made_dvv, stored_dvv = _write(dvv, stored_dvv, _merged(stored_dvv), actor, b"v", step)
        made_vc, stored_vc = _write(vc, stored_vc, _merged(stored_vc), actor, b"v", step)
        assert made_dvv.clock == made_vc.clock
    assert stored_dvv == stored_vc


def test_concurrent_writes_through_different_coordinators_are_siblings() -> None:
    dvv = DottedVersionVectorResolver()
    base = dvv.new_version(EMPTY, "n1", b"base", 1.0)
    left = dvv.new_version(base.clock, "n1", b"left", 2.0, [base])
    right = dvv.new_version(base.clock, "n2", b"right", 2.0, [base])
    for order in itertools.permutations([base, left, right]):
        assert set(dvv.reconcile(order)) == {left, right}


def test_entry_names_round_trip_and_separator_in_node_ids_is_refused() -> None:
    assert branch_entry("n1", 0) == "n1"
    for actor in ("n1", "node-a", "10.0.0.1:7000"):
        for branch in (0, 1, 12):
            assert split_entry(branch_entry(actor, branch)) == (actor, branch)
    assert split_entry(f"n1{BRANCH_SEPARATOR}x") == (f"n1{BRANCH_SEPARATOR}x", 0)
    with pytest.raises(ValueError, match="separator"):
        DottedVersionVectorResolver().new_version(EMPTY, f"n{BRANCH_SEPARATOR}1", b"v", 1.0)


def test_dvv_is_registered_by_its_plugin() -> None:
    host = load_plugins()
    resolver = host.registry.create("conflict_resolver", "dvv")
    assert isinstance(resolver, DottedVersionVectorResolver)
    assert "dvv" in host.registry.names("conflict_resolver")
    assert repr(resolver) == "DottedVersionVectorResolver(blind_writes='supersede')"
    sibling = host.registry.create("conflict_resolver", "dvv", blind_writes="sibling")
    assert repr(sibling) == "DottedVersionVectorResolver(blind_writes='sibling')"


def test_blind_writes_must_be_a_known_policy() -> None:
    with pytest.raises(ConfigurationError, match="blind_writes must be one of supersede, sibling"):
        DottedVersionVectorResolver(blind_writes="drop")


# -- writes without a context -------------------------------------------------------------


def test_a_blind_write_supersedes_what_its_coordinator_holds_by_default() -> None:
    dvv = DottedVersionVectorResolver()
    _, stored = _write(dvv, (), EMPTY, "n1", b"a", 1.0)
    # Two concurrent siblings, one on a second branch.
    _, stored = _write(dvv, stored, EMPTY, "n1", b"b", 2.0)
    assert len(stored) == 2
    context = dvv.blind_write_context(stored)
    assert context == _merged(stored)
    blind, stored = _write(dvv, stored, context, "n1", b"blind", 3.0)
    assert stored == (blind,)
    # Its dot goes on branch 0: a blind write opens no branch.
    assert blind.clock.counters() == {"n1": 3, branch_entry("n1", 1): 2}


@pytest.mark.parametrize(("policy", "siblings"), [("supersede", 1), ("sibling", 200)])
def test_repeated_blind_writes_pile_up_only_under_the_sibling_policy(
    policy: str, siblings: int
) -> None:
    dvv = DottedVersionVectorResolver(blind_writes=policy)
    stored: tuple[Version, ...] = ()
    for step in range(200):
        context = dvv.blind_write_context(stored)
        _, stored = _write(dvv, stored, context, "n1", b"%d" % step, float(step))
    assert len(stored) == siblings
    # One clock entry per sibling: one branch each under "sibling", one in all.
    assert len(_merged(stored)) == siblings


def test_a_blind_write_keeps_versions_its_coordinator_does_not_hold() -> None:
    dvv = DottedVersionVectorResolver()
    held, _ = _write(dvv, (), EMPTY, "n1", b"held", 1.0)
    elsewhere, _ = _write(dvv, (), held.clock, "n2", b"elsewhere", 2.0)  # not at n1 yet
    blind, stored = _write(dvv, (held,), dvv.blind_write_context((held,)), "n1", b"x", 3.0)
    assert stored == (blind,)
    assert set(dvv.reconcile((*stored, elsewhere))) == {blind, elsewhere}


def test_the_sibling_policy_treats_a_blind_write_as_having_seen_nothing() -> None:
    dvv = DottedVersionVectorResolver(blind_writes="sibling")
    held, stored = _write(dvv, (), EMPTY, "n1", b"held", 1.0)
    assert dvv.blind_write_context(stored) == EMPTY
    blind, stored = _write(dvv, stored, EMPTY, "n1", b"blind", 2.0)
    assert set(stored) == {held, blind}


# -- the two patterns of the DVVSet README (ricardobcl/Dotted-Version-Vectors) -------------
# Both go through one server. The README reports 101 siblings after 101 writes
# for Riak with merged server-id version vectors, and 2 or 3 with DVVSet.


def _one_server(
    resolver: ConflictResolver, pattern: int, rounds: int = 101
) -> tuple[list[int], list[int]]:
    """Run a pattern through server ``n1``; sibling and clock-entry counts after each write."""
    stored: tuple[Version, ...] = ()
    contexts = {"first": EMPTY, "second": EMPTY}
    counts: list[int] = []
    entries: list[int] = []

    def write(client: str, context: VectorClock) -> None:
        nonlocal stored
        now = float(len(counts))
        version = resolver.new_version(context, "n1", f"{client}{now}".encode(), now, stored)
        stored = resolver.reconcile((*stored, version))
        counts.append(len(stored))
        entries.append(len(_merged(stored)))

    for _ in range(rounds):
        # Pattern 1: one client writes then reads; another writes blind.
        # Pattern 2: two clients take turns, each writing then reading.
        write("first", contexts["first"])
        contexts["first"] = _merged(stored)
        write("second", EMPTY if pattern == 1 else contexts["second"])
        if pattern == 2:
            contexts["second"] = _merged(stored)
    return counts, entries


@pytest.mark.parametrize(("pattern", "most"), [(1, 3), (2, 2)])
def test_readme_patterns_keep_two_or_three_siblings(pattern: int, most: int) -> None:
    counts, entries = _one_server(DottedVersionVectorResolver(), pattern)
    assert max(counts) == most
    assert counts[-1] == most
    # Branches are reused once their dots are seen: the clock stays small.
    assert max(entries) == most
    # vector-clock neither piles up nor keeps the concurrent write: one survivor.
    counts, entries = _one_server(VectorClockResolver(prune=False), pattern)
    assert set(counts) == {1}
    assert set(entries) == {1}


def test_a_branch_whose_dot_another_write_saw_is_reused() -> None:
    dvv = DottedVersionVectorResolver()
    _, stored = _write(dvv, (), EMPTY, "n1", b"a", 1.0)
    blind, stored = _write(dvv, stored, EMPTY, "n1", b"b", 2.0)
    assert blind.clock.counters() == {branch_entry("n1", 1): 2}
    resolved, stored = _write(dvv, stored, _merged(stored), "n1", b"c", 3.0)
    assert stored == (resolved,)
    # Another blind write: branch 0's dot is ``resolved`` itself (live), but
    # branch 1's dot was seen by ``resolved``, so branch 1 takes the new dot.
    again, stored = _write(dvv, stored, EMPTY, "n1", b"d", 4.0)
    assert again.clock.counters() == {branch_entry("n1", 1): 4}
    assert set(stored) == {resolved, again}


@pytest.mark.parametrize(("when", "entry"), [(3.0, "n1"), (2.0, branch_entry("n1", 1))])
def test_a_descendant_written_at_the_same_instant_keeps_the_branch_in_use(
    when: float, entry: str
) -> None:
    dvv = DottedVersionVectorResolver()
    _, stored = _write(dvv, (), EMPTY, "n1", b"a", 2.0)
    resolved, stored = _write(dvv, stored, _merged(stored), "n2", b"b", when)
    again, stored = _write(dvv, stored, EMPTY, "n1", b"c", 4.0)
    # Written later, ``resolved`` is recognised as having seen n1's dot, so
    # branch 0 is reused. Written at the dot's own instant it cannot be told
    # from the dot's own version: a new branch (an entry more, never a write less).
    assert again.clock.counters() == {entry: 2}
    assert set(stored) == {resolved, again}


# -- properties over replicated histories --------------------------------------------------

REPLICAS = ("n1", "n2", "n3")

# One step of a history: (kind, a, b). kind 0: a client reads the replicas in
# bitmask a; 1: replica a % 3 coordinates a write whose context is the b-th
# most recent read (stale when b > 0); 2: deliver the a-th pending replica
# write; 3: replicas a and b exchange their whole sets (anti-entropy).
STEP = st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 7))


class _History:
    """Three replicas, a client population, and the ground truth of who saw what.

    Coordinators are replicas that write locally first and replicate single
    versions, in any order, as the kernel does. ``seen[w]`` is the bitmask of
    writes that write ``w`` causally follows (itself included), computed from
    the values its context came from, never from clocks.
    """

    def __init__(self, resolver: ConflictResolver, tick: int = 1) -> None:
        self.resolver = resolver
        self.tick = tick  # writes per timestamp: > 1 makes timestamps collide
        self.sets: dict[str, tuple[Version, ...]] = {r: () for r in REPLICAS}
        self.pending: list[tuple[str, Version]] = []
        self.reads: list[tuple[Version, ...]] = [()]
        self.seen: dict[int, int] = {}
        self.made: list[Version] = []

    def run(self, steps: Sequence[tuple[int, int, int]]) -> tuple[Version, ...]:
        for kind, a, b in steps:
            if kind == 0:
                chosen = [r for i, r in enumerate(REPLICAS) if (a or 1) >> i & 1]
                versions = [v for r in chosen for v in self.sets[r]]
                self.reads.append(self.resolver.reconcile(versions))
            elif kind == 1:
                self._write(REPLICAS[a % 3], self.reads[max(0, len(self.reads) - 1 - b)])
            elif kind == 2 and self.pending:
                replica, version = self.pending.pop(a % len(self.pending))
                self._apply(replica, (version,))
            elif kind == 3:
                left, right = REPLICAS[a % 3], REPLICAS[b % 3]
                both = (*self.sets[left], *self.sets[right])
                self._apply(left, both)
                self._apply(right, both)
        for replica, version in self.pending:
            self._apply(replica, (version,))
        return self.resolver.reconcile(v for r in REPLICAS for v in self.sets[r])

    def _apply(self, replica: str, versions: Sequence[Version]) -> None:
        self.sets[replica] = self.resolver.reconcile((*self.sets[replica], *versions))

    def _write(self, coordinator: str, read: tuple[Version, ...]) -> None:
        write_id = len(self.seen)
        mask = 1 << write_id
        for version in read:
            mask |= self.seen[_id(version)]
        self.seen[write_id] = mask
        version = self.resolver.new_version(
            _merged(read),
            coordinator,
            str(write_id).encode(),
            float(write_id // self.tick),
            self.sets[coordinator],
        )
        self.made.append(version)
        self._apply(coordinator, (version,))
        self.pending += [(r, version) for r in REPLICAS if r != coordinator]


def _id(version: Version) -> int:
    assert version.value is not None
    return int(version.value)


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, max_size=40), st.integers(1, 3))
def test_survivors_are_exactly_the_writes_no_other_write_saw(
    steps: list[tuple[int, int, int]], tick: int
) -> None:
    history = _History(DottedVersionVectorResolver(), tick)
    final = history.run(steps)
    survivors = {_id(version) for version in final}
    seen = history.seen
    unseen = {w for w in seen if not any(o != w and seen[o] >> w & 1 for o in seen)}
    # No acknowledged write lost (each is a survivor or in a survivor's past) and
    # no sibling that another survivor saw (no false conflict): exactly the maxima.
    assert survivors == unseen
    covered = 0
    for w in survivors:
        covered |= seen[w]
    assert covered == (1 << len(seen)) - 1


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, max_size=30), st.randoms(use_true_random=False))
def test_reconcile_is_commutative_idempotent_and_associative(
    steps: list[tuple[int, int, int]], rng: random.Random
) -> None:
    resolver = DottedVersionVectorResolver()
    history = _History(resolver)
    history.run(steps)
    versions = list(history.made)
    if not versions:
        return
    sample = [rng.choice(versions) for _ in range(rng.randint(1, 2 * len(versions)))]
    once = resolver.reconcile(sample)
    shuffled = list(sample)
    rng.shuffle(shuffled)
    assert resolver.reconcile(shuffled) == once
    assert resolver.reconcile(once) == once
    assert resolver.reconcile(sample + sample) == once
    cut = rng.randint(0, len(sample))
    assert resolver.reconcile((*resolver.reconcile(sample[:cut]), *sample[cut:])) == once


@settings(max_examples=100, deadline=None)
@given(st.lists(STEP, max_size=30))
def test_new_versions_descend_their_context_and_no_local_version(
    steps: list[tuple[int, int, int]],
) -> None:
    resolver = DottedVersionVectorResolver()
    history = _History(resolver)
    history.run(steps)
    for read in history.reads:
        context = _merged(read)
        for coordinator in REPLICAS:
            local = history.sets[coordinator]
            version = resolver.new_version(context, coordinator, b"x", 1e6, local)
            assert version.clock.compare(context) is Ordering.AFTER
            for held in local:
                # A local version is superseded if the context saw it, else a sibling.
                expected = Ordering.BEFORE if context.descends(held.clock) else Ordering.CONCURRENT
                assert held.clock.compare(version.clock) is expected


def test_the_history_model_catches_vector_clock_lost_updates() -> None:
    # The model is not vacuous: the same steps lose an update under vector-clock.
    steps = [(1, 0, 0), (1, 0, 0)]
    history = _History(VectorClockResolver(prune=False))
    final = history.run(steps)
    assert {_id(v) for v in final} == {1}
    history = _History(DottedVersionVectorResolver())
    assert {_id(v) for v in history.run(steps)} == {0, 1}
