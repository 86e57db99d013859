"""Conformance suite for :class:`~dynamo_toolkit.interfaces.AntiEntropy` implementations."""

from __future__ import annotations

import random
from collections.abc import Callable

from dynamo_toolkit.interfaces.anti_entropy import AntiEntropy, PartitionDigest

__all__ = ["AntiEntropySuite"]

MakeAntiEntropy = Callable[[], AntiEntropy]


def _random_records(rng: random.Random, count: int) -> dict[bytes, bytes]:
    return {rng.randbytes(rng.randint(1, 12)): rng.randbytes(16) for _ in range(count)}


def _fill(digest: PartitionDigest, records: dict[bytes, bytes]) -> PartitionDigest:
    for key, record_hash in records.items():
        digest.update(key, record_hash)
    return digest


def _expected_diff(a: dict[bytes, bytes], b: dict[bytes, bytes]) -> set[bytes]:
    return {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}


def _diverge(rng: random.Random, records: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """A copy of ``records`` with some keys changed, dropped and added."""
    other = dict(records)
    for key in rng.sample(sorted(records), k=len(records) // 10):
        roll = rng.random()
        if roll < 0.4:
            other[key] = rng.randbytes(16)
        elif roll < 0.8:
            del other[key]
    other.update(_random_records(rng, len(records) // 20))
    return other


class AntiEntropySuite:
    """Tests every anti-entropy component must pass.

    Subclass it as ``class TestMine(AntiEntropySuite)`` and provide a fixture
    ``make_anti_entropy`` returning a zero-argument callable that builds a
    fresh component.
    """

    def test_empty_digests_equal(self, make_anti_entropy: MakeAntiEntropy) -> None:
        """Two empty digests have equal roots, no differences and length 0."""
        first, second = make_anti_entropy().new_digest(), make_anti_entropy().new_digest()
        assert first.root() == second.root()
        assert first.diff(second) == set()
        assert len(first) == 0

    def test_insertion_order_irrelevant(self, make_anti_entropy: MakeAntiEntropy) -> None:
        """The root depends on the contents only."""
        rng = random.Random(21)
        records = _random_records(rng, 500)
        keys = list(records)
        rng.shuffle(keys)
        component = make_anti_entropy()
        forward = _fill(component.new_digest(), records)
        shuffled = _fill(component.new_digest(), {key: records[key] for key in keys})
        assert forward.root() == shuffled.root()
        assert forward.diff(shuffled) == set()

    def test_root_changes_with_contents(self, make_anti_entropy: MakeAntiEntropy) -> None:
        """Changing one record hash changes the root; restoring it restores the root."""
        records = _random_records(random.Random(22), 200)
        digest = _fill(make_anti_entropy().new_digest(), records)
        before = digest.root()
        key = next(iter(records))
        digest.update(key, b"something else")
        assert digest.root() != before
        digest.update(key, records[key])
        assert digest.root() == before

    def test_diff_finds_exactly_the_differing_keys(
        self, make_anti_entropy: MakeAntiEntropy
    ) -> None:
        """``diff`` is exactly the keys that differ or exist on one side, both ways."""
        rng = random.Random(23)
        component = make_anti_entropy()
        for size in (1, 10, 300, 2000):
            mine = _random_records(rng, size)
            theirs = _diverge(rng, mine)
            a, b = _fill(component.new_digest(), mine), _fill(component.new_digest(), theirs)
            expected = _expected_diff(mine, theirs)
            assert a.diff(b) == expected
            assert b.diff(a) == expected
            assert (a.root() == b.root()) == (not expected)

    def test_converged_after_repair(self, make_anti_entropy: MakeAntiEntropy) -> None:
        """Copying the differing records across makes roots equal and the diff empty."""
        rng = random.Random(24)
        component = make_anti_entropy()
        mine = _random_records(rng, 800)
        theirs = _diverge(rng, mine)
        a, b = _fill(component.new_digest(), mine), _fill(component.new_digest(), theirs)
        for key in a.diff(b):
            if key in mine:
                b.update(key, mine[key])
            else:
                b.remove(key)
        assert a.root() == b.root()
        assert a.diff(b) == set() == b.diff(a)

    def test_remove(self, make_anti_entropy: MakeAntiEntropy) -> None:
        """Removing keys undoes their insertion; removing an absent key is a no-op."""
        rng = random.Random(25)
        component = make_anti_entropy()
        base = _random_records(rng, 300)
        extra = {k: v for k, v in _random_records(rng, 50).items() if k not in base}
        digest = _fill(component.new_digest(), base)
        root = digest.root()
        _fill(digest, extra)
        for key in extra:
            digest.remove(key)
        digest.remove(b"never inserted \x00")
        assert digest.root() == root
        assert len(digest) == len(base)
        for key in base:
            digest.remove(key)
        assert digest.root() == component.new_digest().root()

    def test_len(self, make_anti_entropy: MakeAntiEntropy) -> None:
        """``len`` counts distinct keys: replacing a hash does not add one."""
        digest = make_anti_entropy().new_digest()
        digest.update(b"a", b"1")
        digest.update(b"b", b"1")
        digest.update(b"a", b"2")
        assert len(digest) == 2
        digest.remove(b"a")
        digest.remove(b"a")
        assert len(digest) == 1
