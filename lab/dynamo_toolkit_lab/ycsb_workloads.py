"""The YCSB core workloads: operation mixes, request distributions, records. Pure, no I/O.

Written from the published definitions: the workloads and their parameters
are those of Cooper et al., "Benchmarking Cloud Serving Systems with YCSB"
(SoCC 2010) and of the ``workloads/`` files of brianfrankcooper/YCSB; the
zipfian sampler is the algorithm of Gray et al., "Quickly Generating
Billion-Record Synthetic Databases" (SIGMOD 1994), which YCSB uses.

* **zipfian** (constant 0.99), *scrambled*: a rank is drawn from a zipfian over
  a large item space (10^10 items, as YCSB's ``ScrambledZipfianGenerator``
  originally used), then hashed (FNV-1a, 64 bits) onto the key space, so the
  popular keys are scattered rather than clustered at the low key numbers.
* **latest**: a zipfian rank counted back from the most recently inserted
  record, so new records are the hottest.
* **uniform**: every loaded record equally likely.
* scan length: uniform over ``1..max_scan_length`` (100 in workload E).

Key numbers become names as YCSB's hashed insert order does: ``"user"``
followed by the decimal FNV-1a hash of the number. A record is 10 fields of
100 bytes, stored as one value: a map ``{"field0": bytes, ...}`` (msgpack, as
every value of the store; about 1.1 KB encoded, well under the 10 KiB pair
limit). The first 8 bytes of ``field0`` carry the number of the write that
produced the record, so a benchmark can tell which write a read returned.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "FIELD_COUNT",
    "FIELD_LENGTH",
    "OPERATION_KINDS",
    "SCRAMBLED_ITEM_COUNT",
    "WORKLOADS",
    "ZIPFIAN_CONSTANT",
    "InsertSequence",
    "KeyIndex",
    "Latest",
    "Operation",
    "OperationStream",
    "RecordMaker",
    "ScrambledZipfian",
    "Uniform",
    "Workload",
    "Zipfian",
    "fnv1a_64",
    "key_name",
    "record_write",
    "zeta",
]

#: YCSB's zipfian constant (theta).
ZIPFIAN_CONSTANT = 0.99
#: The item space the scrambled zipfian draws from before hashing onto the keys.
SCRAMBLED_ITEM_COUNT = 10**10
#: Fields per record and bytes per field (YCSB's ``fieldcount`` and ``fieldlength``).
FIELD_COUNT = 10
FIELD_LENGTH = 100
#: The operation kinds, in the order the mix is drawn.
OPERATION_KINDS = ("read", "update", "insert", "scan", "rmw")

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
# Below this many terms zeta is summed exactly; above, Euler-Maclaurin.
_EXACT_TERMS = 100_000
_EM_SPLIT = 1000


# -- hashing and names -----------------------------------------------------------


def fnv1a_64(value: int) -> int:
    """FNV-1a (64 bits) over the 8 little-endian bytes of ``value``, as a non-negative number.

    The result is the absolute value of the hash read as a signed 64-bit
    integer, which is what YCSB's key names and scrambling use.
    """
    h = _FNV_OFFSET
    for _ in range(8):
        h ^= value & 0xFF
        value >>= 8
        h = (h * _FNV_PRIME) & _MASK64
    return (1 << 64) - h if h >= 1 << 63 else h


def key_name(keynum: int, prefix: str = "") -> str:
    """The record key of ``keynum``: ``prefix + "user" + str(fnv1a_64(keynum))``."""
    return f"{prefix}user{fnv1a_64(keynum)}"


# -- zipfian -----------------------------------------------------------------------


def zeta(n: int, theta: float = ZIPFIAN_CONSTANT) -> float:
    """``sum(1 / i**theta for i in 1..n)``.

    Summed exactly up to 100,000 terms; beyond, the first 999 terms exactly
    and the rest by the Euler-Maclaurin formula (two correction terms: the
    error is far below 1e-12 for theta near 1), which makes ``n = 10**10``
    instant.
    """
    if n < 1:
        return 0.0
    if n <= _EXACT_TERMS:
        return math.fsum(i**-theta for i in range(1, n + 1))
    m = _EM_SPLIT
    head = math.fsum(i**-theta for i in range(1, m))
    big, small = float(n), float(m)
    if theta == 1.0:
        integral = math.log(big / small)
    else:
        integral = (big ** (1 - theta) - small ** (1 - theta)) / (1 - theta)

    def d1(x: float) -> float:  # f'(x) of f(x) = x**-theta
        return -theta * math.pow(x, -theta - 1)

    def d3(x: float) -> float:  # f'''(x)
        return -theta * (theta + 1) * (theta + 2) * math.pow(x, -theta - 3)

    ends = (math.pow(small, -theta) + math.pow(big, -theta)) / 2
    # Bernoulli numbers B2 = 1/6 and B4 = -1/30 over (2k)!.
    corrections = (d1(big) - d1(small)) / 12 - (d3(big) - d3(small)) / 720
    return head + integral + ends + corrections


class Zipfian:
    """Zipfian ranks ``0..n-1`` (rank 0 the most popular), by Gray et al.'s method.

    P(rank i) is proportional to ``1 / (i + 1)**theta``. Ranks 0 and 1 are
    exact; higher ranks come from Gray et al.'s closed-form approximation of
    the inverse distribution. The item count may change between draws (it
    grows as records are inserted); zeta is then extended incrementally.
    """

    def __init__(
        self, items: int, theta: float = ZIPFIAN_CONSTANT, zetan: float | None = None
    ) -> None:
        if items < 1:
            raise ValueError(f"a zipfian needs at least one item, got {items}")
        if not 0 < theta < 1:
            raise ValueError(f"Gray et al.'s method needs 0 < theta < 1, got {theta}")
        self.theta = theta
        self.alpha = 1 / (1 - theta)
        self.zeta2 = 1 + math.pow(0.5, theta)
        self._items = items
        self.zetan = zeta(items, theta) if zetan is None else zetan
        self._eta = self._make_eta()

    @property
    def items(self) -> int:
        """The current item count."""
        return self._items

    def _make_eta(self) -> float:
        n = self._items
        if n <= 2:
            return 0.0  # draws never get past the two exact ranks
        return (1 - math.pow(2 / n, 1 - self.theta)) / (1 - self.zeta2 / self.zetan)

    def resize(self, items: int) -> None:
        """Draw from ``items`` items from now on."""
        if items == self._items:
            return
        if items < 1:
            raise ValueError(f"a zipfian needs at least one item, got {items}")
        if items > self._items and items - self._items <= _EXACT_TERMS:
            theta = self.theta
            added = math.fsum(i**-theta for i in range(self._items + 1, items + 1))
            self.zetan += added
        else:
            self.zetan = zeta(items, self.theta)
        self._items = items
        self._eta = self._make_eta()

    def sample(self, rng: random.Random) -> int:
        """One rank in ``0..items-1``."""
        u = rng.random()
        uz = u * self.zetan
        if uz < 1.0:
            return 0
        if uz < self.zeta2:
            return 1
        rank = int(self._items * (self._eta * u - self._eta + 1) ** self.alpha)
        return min(rank, self._items - 1)  # guard the float edge at u -> 1

    def probability(self, rank: int) -> float:
        """The exact zipfian probability of ``rank`` (what the sampler approximates)."""
        return float((rank + 1) ** -self.theta / self.zetan)


class ScrambledZipfian:
    """Zipfian popularity scattered over ``0..items-1`` (YCSB's request distribution ``zipfian``).

    A rank is drawn from a zipfian over :data:`SCRAMBLED_ITEM_COUNT` items and
    hashed onto the key numbers with :func:`fnv1a_64`. Because the big item
    space is folded onto far fewer keys, the result is much flatter than a
    zipfian over the keys themselves: with 1000 keys the ranks below 1000
    carry only about 29 % of the draws (``zeta(1000) / zeta(10**10)``), and the
    rest land almost uniformly.
    """

    _zetan: float | None = None

    def __init__(self, items: int) -> None:
        if items < 1:
            raise ValueError(f"need at least one key, got {items}")
        self.items = items
        if ScrambledZipfian._zetan is None:  # the same for every instance: compute once
            ScrambledZipfian._zetan = zeta(SCRAMBLED_ITEM_COUNT, ZIPFIAN_CONSTANT)
        self.ranks = Zipfian(SCRAMBLED_ITEM_COUNT, ZIPFIAN_CONSTANT, ScrambledZipfian._zetan)

    def sample(self, rng: random.Random) -> int:
        """One key number in ``0..items-1``."""
        return fnv1a_64(self.ranks.sample(rng)) % self.items


class Uniform:
    """Every key number in ``0..items-1`` equally likely."""

    def __init__(self, items: int) -> None:
        if items < 1:
            raise ValueError(f"need at least one key, got {items}")
        self.items = items

    def sample(self, rng: random.Random) -> int:
        """One key number."""
        return rng.randrange(self.items)


class Latest:
    """Recent inserts are hottest: ``last - zipfian rank`` over the ``last + 1`` records."""

    def __init__(self, last: int) -> None:
        self.ranks = Zipfian(max(last + 1, 1))

    def sample(self, rng: random.Random, last: int) -> int:
        """A key number in ``0..last``; ``last`` (the newest record) is the most likely."""
        self.ranks.resize(last + 1)
        return last - self.ranks.sample(rng)


# -- inserts and key order ----------------------------------------------------------


class InsertSequence:
    """Key numbers for inserts, and the highest one below which every insert has finished.

    Reads choose only among records whose insert finished, as YCSB's
    acknowledged counter does, so a read never races the insert of its key.
    """

    def __init__(self, start: int) -> None:
        self._next = start
        self.last = start - 1
        self._done: set[int] = set()

    def allocate(self) -> int:
        """The next key number to insert."""
        keynum = self._next
        self._next += 1
        return keynum

    def acknowledge(self, keynum: int) -> None:
        """The insert of ``keynum`` finished (successfully or not)."""
        self._done.add(keynum)
        while self.last + 1 in self._done:
            self.last += 1
            self._done.discard(self.last)


class KeyIndex:
    """The key names written so far, in key order, for scans."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names = sorted(set(names))

    def __len__(self) -> int:
        return len(self._names)

    def add(self, name: str) -> None:
        """Remember ``name`` (idempotent)."""
        at = bisect.bisect_left(self._names, name)
        if at == len(self._names) or self._names[at] != name:
            self._names.insert(at, name)

    def scan(self, start: str, count: int) -> list[str]:
        """Up to ``count`` names from ``start`` on, in key order (``start`` included if known)."""
        at = bisect.bisect_left(self._names, start)
        return self._names[at : at + count]


# -- workloads --------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """An operation mix (proportions of :data:`OPERATION_KINDS`) and a request distribution."""

    name: str
    read: float = 0.0
    update: float = 0.0
    insert: float = 0.0
    scan: float = 0.0
    rmw: float = 0.0
    distribution: str = "zipfian"
    max_scan_length: int = 100
    description: str = ""

    def proportions(self) -> dict[str, float]:
        """The mix, by operation kind."""
        return {kind: getattr(self, kind) for kind in OPERATION_KINDS}


#: YCSB's core workloads A-F (Cooper et al. 2010; YCSB ``workloads/workloada``..``f``).
WORKLOADS: Mapping[str, Workload] = {
    "A": Workload("A", read=0.5, update=0.5, description="update heavy"),
    "B": Workload("B", read=0.95, update=0.05, description="read mostly"),
    "C": Workload("C", read=1.0, description="read only"),
    "D": Workload("D", read=0.95, insert=0.05, distribution="latest", description="read latest"),
    "E": Workload("E", scan=0.95, insert=0.05, description="short ranges"),
    "F": Workload("F", read=0.5, rmw=0.5, description="read-modify-write"),
}


@dataclass(frozen=True)
class Operation:
    """One operation to run: its kind, its record, and for a scan how many records."""

    kind: str
    keynum: int
    scan_length: int = 0


class OperationStream:
    """The run phase's operations, drawn as YCSB's core workload draws them.

    One stream is shared by every client of a run. The key chooser follows
    the workload's distribution (or ``distribution`` if given): ``zipfian``
    spans the loaded records plus room for twice the expected inserts, as
    YCSB sizes it, and a draw beyond the last finished insert is drawn again.
    """

    def __init__(
        self,
        workload: Workload,
        records: int,
        operations: int,
        rng: random.Random,
        distribution: str | None = None,
    ) -> None:
        if records < 1:
            raise ValueError("need at least one record")
        self.workload = workload
        self.rng = rng
        self.distribution = distribution or workload.distribution
        self.inserts = InsertSequence(records)
        weights = workload.proportions()
        total = sum(weights.values())
        if total <= 0:
            raise ValueError(f"workload {workload.name} has no operations")
        self._cumulative: list[tuple[float, str]] = []
        running = 0.0
        for kind in OPERATION_KINDS:
            if weights[kind] > 0:
                running += weights[kind] / total
                self._cumulative.append((running, kind))
        self._zipfian: ScrambledZipfian | None = None
        self._uniform: Uniform | None = None
        self._latest: Latest | None = None
        if self.distribution == "zipfian":
            expected_new = int(operations * workload.insert * 2)
            self._zipfian = ScrambledZipfian(records + expected_new)
        elif self.distribution == "uniform":
            self._uniform = Uniform(records)
        elif self.distribution == "latest":
            self._latest = Latest(records - 1)
        else:
            raise ValueError(f"unknown request distribution {self.distribution!r}")

    def choose_kind(self) -> str:
        """An operation kind, drawn from the mix."""
        u = self.rng.random()
        for bound, kind in self._cumulative:
            if u < bound:
                return kind
        return self._cumulative[-1][1]

    def choose_key(self) -> int:
        """A key number among the records whose insert has finished."""
        last = self.inserts.last
        if self._latest is not None:
            return self._latest.sample(self.rng, last)
        chooser = self._zipfian or self._uniform
        assert chooser is not None
        while True:
            keynum = chooser.sample(self.rng)
            if keynum <= last:
                return keynum

    def next(self) -> Operation:
        """The next operation."""
        kind = self.choose_kind()
        if kind == "insert":
            return Operation(kind, self.inserts.allocate())
        keynum = self.choose_key()
        if kind == "scan":
            return Operation(kind, keynum, self.rng.randint(1, self.workload.max_scan_length))
        return Operation(kind, keynum)


# -- records ------------------------------------------------------------------------


class RecordMaker:
    """Records of :data:`FIELD_COUNT` fields of :data:`FIELD_LENGTH` bytes, tagged by write.

    Field contents come from a pool of seeded random chunks (the store never
    looks inside a value, so fresh random bytes per write would only cost
    time); the first 8 bytes of ``field0`` hold the write number.
    """

    def __init__(self, rng: random.Random, pool: int = 64) -> None:
        self._pool = [rng.randbytes(FIELD_LENGTH) for _ in range(pool)]
        self._names = [f"field{i}" for i in range(FIELD_COUNT)]

    def make(self, write: int) -> dict[str, bytes]:
        """The record written by write number ``write``."""
        pool = self._pool
        size = len(pool)
        record = {name: pool[(write + i) % size] for i, name in enumerate(self._names)}
        record["field0"] = write.to_bytes(8, "big") + record["field0"][8:]
        return record


def record_write(value: object) -> int | None:
    """The write number carried by a record read back, or None if it is not one."""
    if isinstance(value, Mapping):
        head = value.get("field0")
        if isinstance(head, bytes) and len(head) >= 8:
            return int.from_bytes(head[:8], "big")
    return None
