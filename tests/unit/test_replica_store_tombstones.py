"""ReplicaStore's tombstone index: what collection reads instead of scanning the store."""

from __future__ import annotations

from collections.abc import Iterator

from dynamo_toolkit.replica_store import ReplicaStore, record_hash
from dynamo_toolkit.versioning import VectorClock, Version, pack_versions
from dynamo_toolkit_plugins.resolution.vector_clock import VectorClockResolver
from dynamo_toolkit_plugins.storage.memory import MemoryStorage


class CountingScans(MemoryStorage):
    """A memory engine that counts its scans."""

    scans = 0

    def scan(self, start: int, end: int) -> Iterator[tuple[bytes, int, bytes]]:
        self.scans += 1
        return super().scan(start, end)


def _version(counter: int, value: bytes | None) -> Version:
    return Version(VectorClock.from_counters({"n1": counter}), value, float(counter))


def test_the_index_follows_every_write_after_one_scan() -> None:
    engine = CountingScans()
    before = ReplicaStore(engine, VectorClockResolver())
    before.apply(b"old-grave", 10, [_version(1, None)])  # already a tombstone
    before.apply(b"alive", 20, [_version(1, b"v")])
    store = ReplicaStore(engine, VectorClockResolver())  # a restart: learns by one scan
    assert [key for key, _, _ in store.tombstones(0, 100)] == [b"old-grave"]
    assert engine.scans == 1

    store.apply(b"alive", 20, [_version(2, None)])  # deleted
    store.apply(b"elsewhere", 500, [_version(1, None)])
    assert [key for key, _, _ in store.tombstones(0, 100)] == [b"old-grave", b"alive"]
    assert [key for key, _, _ in store.tombstones(100, 1000)] == [b"elsewhere"]

    store.apply(b"old-grave", 10, [_version(2, b"back")])  # written again: no longer dead
    assert [key for key, _, _ in store.tombstones(0, 100)] == [b"alive"]

    record = engine.get(b"alive")
    assert record is not None
    assert store.collect(b"alive", 20, record_hash(record))
    assert store.tombstones(0, 100) == []
    assert store.drop_range(100, 1000) == 1
    assert store.tombstones(0, 1000) == []
    assert engine.scans == 2  # the first call's, and drop_range's own


def test_tombstones_come_with_their_versions() -> None:
    store = ReplicaStore(MemoryStorage(), VectorClockResolver())
    grave = _version(3, None)
    store.apply(b"k", 7, [grave])
    [(key, position, versions)] = store.tombstones(0, 8)
    assert (key, position, versions) == (b"k", 7, (grave,))
    assert pack_versions(versions) == store.engine.get(b"k")
