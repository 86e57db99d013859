"""Properties of :class:`dynamo_toolkit.versioning.VectorClock` and contexts."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit.errors import InvalidContextError
from dynamo_toolkit.versioning import (
    ClockEntry,
    Ordering,
    VectorClock,
    decode_context,
    encode_context,
)

# A small actor alphabet so that random clocks share actors and relate often.
actors = st.sampled_from(["a", "b", "c", "d", "e"])
counters = st.integers(min_value=1, max_value=4)
timestamps = st.sampled_from([0.0, 1.0, 1.5, 2.0, 1e9, 1.7e9 + 0.25])


@st.composite
def clocks(draw: st.DrawFn, max_size: int = 5) -> VectorClock:
    """Well-formed clocks: distinct actors, positive counters."""
    chosen = draw(st.dictionaries(actors, st.tuples(counters, timestamps), max_size=max_size))
    return VectorClock(tuple(ClockEntry(a, c, t) for a, (c, t) in chosen.items()))


MIRROR = {
    Ordering.BEFORE: Ordering.AFTER,
    Ordering.AFTER: Ordering.BEFORE,
    Ordering.EQUAL: Ordering.EQUAL,
    Ordering.CONCURRENT: Ordering.CONCURRENT,
}


def _le(a: VectorClock, b: VectorClock) -> bool:
    """Pointwise <= on counters, the definition compare() must agree with."""
    return all(count <= b.counter(actor) for actor, count in a.counters().items())


# -- partial order --------------------------------------------------------------


@given(clocks())
def test_compare_is_reflexive(a: VectorClock) -> None:
    assert a.compare(a) is Ordering.EQUAL
    assert a.descends(a)


@given(clocks(), clocks())
def test_compare_is_mirrored(a: VectorClock, b: VectorClock) -> None:
    assert b.compare(a) is MIRROR[a.compare(b)]


@given(clocks(), clocks())
def test_compare_agrees_with_pointwise_order(a: VectorClock, b: VectorClock) -> None:
    le, ge = _le(a, b), _le(b, a)
    expected = {
        (True, True): Ordering.EQUAL,
        (True, False): Ordering.BEFORE,
        (False, True): Ordering.AFTER,
        (False, False): Ordering.CONCURRENT,
    }[(le, ge)]
    assert a.compare(b) is expected


@given(clocks(), clocks())
def test_antisymmetry(a: VectorClock, b: VectorClock) -> None:
    if a.descends(b) and b.descends(a):
        assert a.counters() == b.counters()
        assert a.compare(b) is Ordering.EQUAL


@given(clocks(), clocks(), clocks(), actors, actors)
def test_before_is_transitive(
    a: VectorClock, x: VectorClock, y: VectorClock, actor1: str, actor2: str
) -> None:
    # Build a < b < c so the premise always holds.
    b = a.merge(x).increment(actor1, 5.0)
    c = b.merge(y).increment(actor2, 6.0)
    assert a.compare(b) is Ordering.BEFORE
    assert b.compare(c) is Ordering.BEFORE
    assert a.compare(c) is Ordering.BEFORE


@given(clocks(), clocks(), clocks())
def test_before_is_transitive_on_random_triples(
    a: VectorClock, b: VectorClock, c: VectorClock
) -> None:
    if a.compare(b) is Ordering.BEFORE and b.compare(c) is Ordering.BEFORE:
        assert a.compare(c) is Ordering.BEFORE


def test_empty_clock_is_before_any_other() -> None:
    empty = VectorClock()
    assert empty.compare(VectorClock()) is Ordering.EQUAL
    assert empty.compare(VectorClock.from_counters({"a": 1})) is Ordering.BEFORE
    assert VectorClock.from_counters({"a": 0}) == empty  # zero counters are absent entries


def test_concurrent_example() -> None:
    a = VectorClock.from_counters({"a": 2, "b": 1})
    b = VectorClock.from_counters({"a": 1, "b": 2})
    assert a.compare(b) is Ordering.CONCURRENT
    assert not a.descends(b)
    assert not b.descends(a)


# -- merge ------------------------------------------------------------------------


@given(clocks(), clocks())
def test_merge_is_commutative(a: VectorClock, b: VectorClock) -> None:
    assert a.merge(b) == b.merge(a)


@given(clocks(), clocks(), clocks())
def test_merge_is_associative(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(clocks())
def test_merge_is_idempotent(a: VectorClock) -> None:
    assert a.merge(a) == a
    assert a.merge(VectorClock()) == a


@given(clocks(), clocks())
def test_merge_is_the_least_upper_bound(a: VectorClock, b: VectorClock) -> None:
    merged = a.merge(b)
    assert merged.descends(a)
    assert merged.descends(b)
    actors_seen = a.counters().keys() | b.counters().keys()
    assert merged.counters() == {x: max(a.counter(x), b.counter(x)) for x in actors_seen}


# -- increment --------------------------------------------------------------------


@given(clocks(), actors, timestamps, st.integers(min_value=0, max_value=10))
def test_increment_is_strictly_after(
    a: VectorClock, actor: str, timestamp: float, at_least: int
) -> None:
    b = a.increment(actor, timestamp, at_least=at_least)
    assert b.compare(a) is Ordering.AFTER
    assert b.counter(actor) == max(a.counter(actor), at_least) + 1
    assert b.counter(actor) > at_least
    assert {x: c for x, c in b.counters().items() if x != actor} == {
        x: c for x, c in a.counters().items() if x != actor
    }
    own = [entry for entry in b.entries if entry.actor == actor]
    assert own == [ClockEntry(actor, b.counter(actor), timestamp)]


@given(clocks())
def test_entries_are_kept_sorted_by_actor(a: VectorClock) -> None:
    names = [entry.actor for entry in a.increment("zz", 1.0).increment("0", 1.0).entries]
    assert names == sorted(names)


# -- prune ------------------------------------------------------------------------


@given(clocks(), st.integers(min_value=1, max_value=6))
def test_prune_keeps_the_newest_entries(a: VectorClock, k: int) -> None:
    pruned = a.prune(k)
    assert len(pruned) == min(k, len(a))
    kept, dropped = set(pruned.entries), set(a.entries) - set(pruned.entries)
    assert kept <= set(a.entries)  # entries are kept unchanged, never rewritten
    for gone in dropped:
        for survivor in kept:
            # Oldest first; equal timestamps fall back to the actor name.
            assert (gone.timestamp, gone.actor) < (survivor.timestamp, survivor.actor)
    assert a.descends(pruned)


@given(clocks(max_size=3))
def test_prune_within_limit_is_identity(a: VectorClock) -> None:
    assert a.prune(3) == a
    assert a.prune() == a


def test_prune_drops_oldest_by_timestamp() -> None:
    clock = VectorClock(
        (
            ClockEntry("a", 9, 30.0),
            ClockEntry("b", 1, 10.0),
            ClockEntry("c", 5, 20.0),
            ClockEntry("d", 2, 40.0),
        )
    )
    assert clock.prune(2).counters() == {"a": 9, "d": 2}
    assert clock.prune(3).counters() == {"a": 9, "c": 5, "d": 2}


@pytest.mark.parametrize("k", [0, -1])
def test_prune_rejects_non_positive_limits(k: int) -> None:
    with pytest.raises(ValueError, match="max_entries must be at least 1"):
        VectorClock.from_counters({"a": 1}).prune(k)


# -- wire forms and contexts ------------------------------------------------------


@given(clocks())
def test_wire_roundtrip(a: VectorClock) -> None:
    assert VectorClock.from_wire(a.to_wire()) == a
    packed = msgpack.packb(a.to_wire(), use_bin_type=True)
    assert VectorClock.from_wire(msgpack.unpackb(packed, raw=False)) == a


@given(clocks())
def test_context_roundtrip(a: VectorClock) -> None:
    context = encode_context(a)
    assert isinstance(context, bytes)
    assert decode_context(context) == a


def test_missing_context_is_the_empty_clock() -> None:
    assert decode_context(None) == VectorClock()
    assert decode_context(b"") == VectorClock()


@given(st.binary(min_size=1).filter(lambda b: not b.startswith(b"dtk1")))
def test_foreign_bytes_are_not_a_context(garbage: bytes) -> None:
    with pytest.raises(InvalidContextError):
        decode_context(garbage)


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # a byte msgpack never uses
        b"\x91\x93",  # truncated
        msgpack.packb("text"),
        msgpack.packb(5),
        msgpack.packb([5]),
        msgpack.packb([None]),
        msgpack.packb({"a": 1}),
        msgpack.packb([["a", 1]]),
        msgpack.packb([[1, 1, 0.0]]),
        msgpack.packb([["a", "1", 0.0]]),
        msgpack.packb([["a", 1, "now"]]),
        msgpack.packb([[b"a", 1, 0.0]], use_bin_type=True),
        msgpack.packb([["a", 1, 0.0]]) + b"trailing",
    ],
)
def test_malformed_context_raises(body: bytes) -> None:
    with pytest.raises(InvalidContextError):
        decode_context(b"dtk1" + body)


def test_non_bytes_context_raises() -> None:
    with pytest.raises(InvalidContextError):
        decode_context("dtk1" + "x")  # type: ignore[arg-type]


def test_context_with_duplicate_actor_raises() -> None:
    with pytest.raises(InvalidContextError):
        decode_context(b"dtk1" + msgpack.packb([["a", 1, 0.0], ["a", 5, 0.0]]))
