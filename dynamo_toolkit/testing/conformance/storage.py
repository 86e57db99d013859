"""Conformance suite for :class:`~dynamo_toolkit.interfaces.StorageEngine`.

Engines are checked against a plain ``dict`` model, with awkward keys (empty,
non-UTF-8, long), boundary positions (0 and 2**64 - 1) and, for durable
engines, a close and reopen. Random operations come from seeded generators.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from dynamo_toolkit.interfaces import StorageEngine

__all__ = ["MakeEngine", "StorageEngineSuite"]

#: What the ``make_engine`` fixture returns: opens an engine per call.
MakeEngine = Callable[[], StorageEngine]

_MAX = 2**64 - 1
_END = 2**64  # exclusive end of the whole position space
_AWKWARD_KEYS = (
    b"",
    b"\x00",
    b"\x00\x00",
    b"\xff\xfe\xfd",
    "clé".encode(),
    b"key",
    b"key\x00",
    b"k" * 1000,
)

Model = dict[bytes, tuple[int, bytes]]


def _expected_scan(model: Model, start: int, end: int) -> list[tuple[bytes, int, bytes]]:
    hits = [(key, pos, rec) for key, (pos, rec) in model.items() if start <= pos < end]
    return sorted(hits, key=lambda item: (item[1], item[0]))


def _random_bytes(rng: random.Random, longest: int) -> bytes:
    return rng.randbytes(rng.randint(0, longest))


def _populate(engine: StorageEngine, rng: random.Random, count: int) -> Model:
    """Put ``count`` random keys at positions that often collide and hit both ends."""
    positions = [0, 1, _MAX - 1, _MAX, *(rng.randrange(_END) for _ in range(20))]
    model: Model = {}
    for key in _AWKWARD_KEYS:
        model[key] = (rng.choice(positions), _random_bytes(rng, 64))
    while len(model) < count:
        model[_random_bytes(rng, 12)] = (rng.choice(positions), _random_bytes(rng, 64))
    for key, (position, record) in model.items():
        engine.put(key, position, record)
    return model


def _assert_len(engine: StorageEngine, expected: int) -> None:
    # An engine that only estimates its size (exact_len false) is not held to it.
    if engine.exact_len:
        assert len(engine) == expected


def _assert_matches(engine: StorageEngine, model: Model) -> None:
    _assert_len(engine, len(model))
    for key, (_, record) in model.items():
        assert engine.get(key) == record, f"wrong record for key {key!r}"
    assert list(engine.scan(0, _END)) == _expected_scan(model, 0, _END)


class StorageEngineSuite:
    """Subclass and provide the fixture ``make_engine``: a zero-argument callable
    returning a :class:`~dynamo_toolkit.interfaces.StorageEngine`.

    Override the fixture ``durable`` to return True for engines whose data must
    survive ``close()``: calling ``make_engine`` again must then open an engine
    over the same data. The suite closes every engine it opens (closing twice
    must be harmless).
    """

    @pytest.fixture
    def durable(self) -> bool:
        """Whether ``make_engine`` reopens the same data after ``close()``."""
        return False

    @pytest.fixture
    def open_engine(self, make_engine: MakeEngine) -> Iterator[MakeEngine]:
        """``make_engine``, with every engine it opened closed at teardown."""
        opened: list[StorageEngine] = []

        def open_() -> StorageEngine:
            engine = make_engine()
            opened.append(engine)
            return engine

        yield open_
        for engine in reversed(opened):
            engine.close()

    @pytest.fixture
    def engine(self, open_engine: MakeEngine) -> StorageEngine:
        """A fresh engine, closed at teardown."""
        return open_engine()

    def test_get_missing_is_none(self, engine: StorageEngine) -> None:
        """An absent key reads as ``None``, and an empty engine has length 0."""
        assert engine.get(b"missing") is None
        assert engine.get(b"") is None
        _assert_len(engine, 0)
        assert list(engine.scan(0, _END)) == []

    def test_roundtrip_of_awkward_keys_and_records(self, engine: StorageEngine) -> None:
        """Any bytes key (empty, NUL, non-UTF-8, long) stores any bytes record exactly."""
        rng = random.Random(1)
        records = [b"", b"\x00", b"\xff" * 3, rng.randbytes(10_000)]
        model: Model = {}
        for i, key in enumerate(_AWKWARD_KEYS):
            model[key] = (i * 1_000_003, records[i % len(records)])
            engine.put(key, *model[key])
        _assert_matches(engine, model)
        for key, (_, record) in model.items():
            got = engine.get(key)
            assert isinstance(got, bytes)
            assert got == record

    def test_keys_differing_only_in_a_prefix_are_distinct(self, engine: StorageEngine) -> None:
        """``b""``, ``b"\\x00"`` and ``b"\\x00\\x00"`` are three keys, as are case variants."""
        for i, key in enumerate((b"", b"\x00", b"\x00\x00", b"a", b"A", b"a\x00")):
            engine.put(key, 7, bytes([i]))
        _assert_len(engine, 6)
        assert engine.get(b"\x00") == b"\x01"
        assert engine.get(b"A") == b"\x04"

    def test_overwrite_replaces_record_and_position(self, engine: StorageEngine) -> None:
        """A second put of a key replaces both its record and its position."""
        engine.put(b"k", 10, b"old")
        engine.put(b"other", 15, b"o")
        assert list(engine.scan(0, _END)) == [(b"k", 10, b"old"), (b"other", 15, b"o")]
        engine.put(b"k", 20, b"new")  # moves past "other", after a scan already ran
        assert engine.get(b"k") == b"new"
        _assert_len(engine, 2)
        assert list(engine.scan(0, _END)) == [(b"other", 15, b"o"), (b"k", 20, b"new")]
        assert list(engine.scan(10, 11)) == []
        engine.put(b"k", 20, b"newer")
        assert list(engine.scan(20, 21)) == [(b"k", 20, b"newer")]
        engine.put(b"k", 0, b"first")
        assert list(engine.scan(0, _END)) == [(b"k", 0, b"first"), (b"other", 15, b"o")]

    def test_delete(self, engine: StorageEngine) -> None:
        """Delete removes a key; deleting an absent key is fine; a key can come back."""
        engine.put(b"a", 1, b"1")
        engine.put(b"b", 2, b"2")
        engine.delete(b"a")
        assert engine.get(b"a") is None
        assert engine.get(b"b") == b"2"
        _assert_len(engine, 1)
        assert list(engine.scan(0, _END)) == [(b"b", 2, b"2")]
        engine.delete(b"a")
        engine.delete(b"never-there")
        _assert_len(engine, 1)
        engine.put(b"a", 3, b"again")
        assert engine.get(b"a") == b"again"
        _assert_len(engine, 2)

    def test_len_counts_keys(self, engine: StorageEngine) -> None:
        """``len`` counts distinct keys through puts, overwrites and deletes."""
        for i in range(50):
            engine.put(b"key-%d" % i, i, b"x")
            _assert_len(engine, i + 1)
        for i in range(0, 50, 2):
            engine.put(b"key-%d" % i, i + 1, b"y")
        _assert_len(engine, 50)
        for i in range(10):
            engine.delete(b"key-%d" % i)
        _assert_len(engine, 40)

    def test_scan_returns_exactly_the_range_in_position_order(self, engine: StorageEngine) -> None:
        """``scan(start, end)`` yields positions in ``[start, end)``, by (position, key)."""
        rng = random.Random(2)
        model = _populate(engine, rng, 300)
        positions = sorted({pos for pos, _ in model.values()})
        ranges = [
            (0, _END),
            (0, 1),
            (0, 2),
            (1, _MAX),
            (_MAX, _END),
            (_MAX - 1, _MAX),
            (5, 5),
            (_MAX, _MAX),
        ]
        for _ in range(30):
            a, b = rng.choice(positions), rng.choice(positions)
            ranges.append((min(a, b), max(a, b)))
            ranges.append((min(a, b), max(a, b) + 1))
            start = rng.randrange(_END)
            ranges.append((start, rng.randrange(start, _END + 1)))
        for start, end in ranges:
            assert list(engine.scan(start, end)) == _expected_scan(model, start, end), (
                f"scan({start}, {end})"
            )

    def test_scan_follows_updates(self, engine: StorageEngine) -> None:
        """Moves, deletes and new keys are each reflected by the next scan."""
        rng = random.Random(3)
        model = _populate(engine, rng, 100)
        assert list(engine.scan(0, _END)) == _expected_scan(model, 0, _END)
        # One kind of change at a time, so that no kind hides another's effect.
        for key in rng.sample(sorted(model), 20):
            model[key] = (rng.randrange(_END), _random_bytes(rng, 8))
            engine.put(key, *model[key])
        _assert_matches(engine, model)
        for key in rng.sample(sorted(model), 20):
            engine.delete(key)
            del model[key]
        _assert_matches(engine, model)
        for _ in range(10):
            key = b"new-" + rng.randbytes(4)
            model[key] = (rng.choice((0, _MAX, rng.randrange(_END))), b"n")
            engine.put(key, *model[key])
        _assert_matches(engine, model)
        middle = 2**63
        assert list(engine.scan(0, middle)) + list(engine.scan(middle, _END)) == (
            _expected_scan(model, 0, _END)
        )

    def test_random_operations_match_a_dict(self, engine: StorageEngine) -> None:
        """A seeded mix of puts, overwrites, deletes and reads agrees with a dict model."""
        rng = random.Random(4)
        keys = [*_AWKWARD_KEYS, *(rng.randbytes(rng.randint(1, 6)) for _ in range(40))]
        positions = [0, 1, 2**32, _MAX]
        model: Model = {}
        for step in range(1_500):
            key = rng.choice(keys)
            roll = rng.random()
            if roll < 0.55:
                model[key] = (rng.choice(positions), _random_bytes(rng, 16))
                engine.put(key, *model[key])
            elif roll < 0.75:
                engine.delete(key)
                model.pop(key, None)
            else:
                expected = model.get(key)
                assert engine.get(key) == (None if expected is None else expected[1]), step
            if step % 50 == 0:
                _assert_matches(engine, model)
        _assert_matches(engine, model)

    def test_flush(self, engine: StorageEngine) -> None:
        """``flush`` works on an empty engine and loses nothing."""
        engine.flush()
        model = _populate(engine, random.Random(5), 50)
        engine.flush()
        engine.flush()
        _assert_matches(engine, model)
        engine.put(b"after-flush", 9, b"z")
        assert engine.get(b"after-flush") == b"z"

    def test_close_twice_is_harmless(self, open_engine: MakeEngine) -> None:
        """``close`` may be called more than once."""
        engine = open_engine()
        engine.put(b"k", 1, b"v")
        engine.close()
        engine.close()

    def test_data_survives_close_and_reopen(self, open_engine: MakeEngine, durable: bool) -> None:
        """Durable engines: everything written (and deleted) before close is there after."""
        if not durable:
            pytest.skip("engine is not durable")
        rng = random.Random(6)
        engine = open_engine()
        model = _populate(engine, rng, 200)
        for key in rng.sample(sorted(model), 40):
            engine.delete(key)
            del model[key]
        for key in rng.sample(sorted(model), 40):
            model[key] = (rng.randrange(_END), _random_bytes(rng, 32))
            engine.put(key, *model[key])
        engine.close()  # no flush: close must flush by itself
        reopened = open_engine()
        _assert_matches(reopened, model)
        reopened.put(b"second-life", 3, b"s")
        model[b"second-life"] = (3, b"s")
        reopened.flush()
        reopened.close()
        _assert_matches(open_engine(), model)
