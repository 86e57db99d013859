"""The ``ycsb`` suite's closed-loop clients and what they measure.

:class:`Runner` loads the records, then runs a workload's operations with
concurrent closed-loop clients against a :class:`~dynamo_toolkit_lab.ycsb_stores.Store`,
checking every read for siblings and staleness; :class:`Measurements` holds
the counts and latencies.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dynamo_toolkit_lab.ycsb_workloads import (
    OPERATION_KINDS,
    InsertSequence,
    KeyIndex,
    Operation,
    OperationStream,
    RecordMaker,
    key_name,
    record_write,
)

if TYPE_CHECKING:
    pass

from dynamo_toolkit_lab.ycsb_stores import QuorumFailure, Read, Store, StoreFailure

__all__ = ["Measurements", "Runner"]


# -- measuring ----------------------------------------------------------------------


@dataclass
class Measurements:
    """What one phase (load or run) measured; latencies in seconds, successful operations only."""

    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {kind: [] for kind in OPERATION_KINDS}
    )
    quorum_failures: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(OPERATION_KINDS, 0)
    )
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATION_KINDS, 0))
    reads: int = 0
    sibling_reads: int = 0
    max_siblings: int = 0
    checked_reads: int = 0
    stale_reads: int = 0
    seconds: float = 0.0

    @property
    def operations(self) -> int:
        """Operations finished, successful or not."""
        done = sum(len(values) for values in self.latencies.values())
        return done + sum(self.quorum_failures.values()) + sum(self.errors.values())

    def summary(self) -> dict[str, Any]:
        """The JSON form: counts, throughput and latency percentiles (ms)."""
        every = sorted(v for values in self.latencies.values() for v in values)
        by_kind = {
            kind: _latency_summary(sorted(values), self.quorum_failures[kind], self.errors[kind])
            for kind, values in self.latencies.items()
            if values or self.quorum_failures[kind] or self.errors[kind]
        }
        return {
            "operations": self.operations,
            "seconds": self.seconds,
            "throughput": self.operations / self.seconds if self.seconds > 0 else math.nan,
            "mix": {
                kind: summary["count"] + summary["failed"] for kind, summary in by_kind.items()
            },
            "latency_ms": {
                "all": _latency_summary(
                    every, sum(self.quorum_failures.values()), sum(self.errors.values())
                ),
                **by_kind,
            },
            "quorum_failures": sum(self.quorum_failures.values()),
            "errors": sum(self.errors.values()),
            "reads": self.reads,
            "sibling_reads": self.sibling_reads,
            "max_siblings": self.max_siblings,
            "checked_reads": self.checked_reads,
            "stale_reads": self.stale_reads,
        }


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an ascending sequence."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def _latency_summary(ordered: Sequence[float], quorum_failures: int, errors: int) -> dict[str, Any]:
    ms = 1000.0
    return {
        "count": len(ordered),
        "failed": quorum_failures + errors,
        "mean": sum(ordered) / len(ordered) * ms if ordered else math.nan,
        "p50": _percentile(ordered, 0.50) * ms,
        "p95": _percentile(ordered, 0.95) * ms,
        "p99": _percentile(ordered, 0.99) * ms,
        "max": ordered[-1] * ms if ordered else math.nan,
    }


class _Budget:
    """Operations left to hand out, shared by the clients of a phase."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class Runner:
    """Drives a load phase and a run phase against a :class:`Store` and measures them.

    ``clock`` is the event loop's time (virtual on the simulated cluster);
    ``advance`` is called once per finished operation (the progress bar).
    """

    def __init__(
        self,
        stream: OperationStream,
        records: RecordMaker,
        *,
        prefix: str = "",
        clock: Callable[[], float],
        advance: Callable[[], None] = lambda: None,
    ) -> None:
        self.stream = stream
        self.records = records
        self.prefix = prefix
        self.clock = clock
        self.advance = advance
        self.index = KeyIndex()
        self.keynums: dict[str, int] = {}
        self.writes = 0
        self.issued_at: dict[int, float] = {}  # write number -> when it was issued
        self.acked_at: dict[int, float] = {}  # write number -> when it was acknowledged
        # Key number -> latest issue time of an acknowledged write of it: a
        # value acknowledged before that was overwritten.
        self.overwritten_before: dict[int, float] = {}
        self._measure = Measurements()
        self._inserts = stream.inserts

    async def load(self, stores: Sequence[Store], records: int) -> Measurements:
        """Insert key numbers ``0..records-1`` in order, with ``len(stores)`` clients."""
        sequence = InsertSequence(0)
        return await self._phase(
            stores, records, lambda: Operation("insert", sequence.allocate()), sequence
        )

    async def run(self, stores: Sequence[Store], operations: int) -> Measurements:
        """Run ``operations`` operations of the stream, with ``len(stores)`` clients."""
        return await self._phase(stores, operations, self.stream.next, self.stream.inserts)

    async def _phase(
        self,
        stores: Sequence[Store],
        total: int,
        next_operation: Callable[[], Operation],
        inserts: InsertSequence,
    ) -> Measurements:
        self._measure = measure = Measurements()
        self._inserts = inserts
        budget = _Budget(total)
        start = self.clock()
        await asyncio.gather(*(self._client(store, {}, budget, next_operation) for store in stores))
        measure.seconds = self.clock() - start
        return measure

    async def _client(
        self,
        store: Store,
        contexts: dict[str, bytes],
        budget: _Budget,
        next_operation: Callable[[], Operation],
    ) -> None:
        measure = self._measure
        while budget.take():
            operation = next_operation()
            began = self.clock()
            try:
                await self._execute(store, contexts, operation)
            except QuorumFailure:
                measure.quorum_failures[operation.kind] += 1
            except StoreFailure:
                measure.errors[operation.kind] += 1
            else:
                measure.latencies[operation.kind].append(self.clock() - began)
            self.advance()
            # A request answered entirely by a local replica never waits: yield,
            # so that the other clients take turns.
            await asyncio.sleep(0)

    async def _execute(self, store: Store, contexts: dict[str, bytes], op: Operation) -> None:
        key = key_name(op.keynum, self.prefix)
        if op.kind == "read":
            await self._read(store, contexts, op.keynum, key)
        elif op.kind == "update":
            await self._write(store, contexts, op.keynum, key, contexts.get(key))
        elif op.kind == "insert":
            try:
                await self._write(store, contexts, op.keynum, key, None)
                self.index.add(key)
                self.keynums[key] = op.keynum
            finally:  # as YCSB: a failed insert must not hold back later reads
                self._inserts.acknowledge(op.keynum)
        elif op.kind == "scan":
            names = self.index.scan(key, op.scan_length)
            outcomes = await asyncio.gather(
                *(self._read(store, contexts, self.keynums[name], name) for name in names),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        elif op.kind == "rmw":
            read = await self._read(store, contexts, op.keynum, key)
            await self._write(store, contexts, op.keynum, key, read.context)
        else:
            raise ValueError(f"unknown operation {op.kind!r}")

    async def _read(self, store: Store, contexts: dict[str, bytes], keynum: int, key: str) -> Read:
        floor = self.overwritten_before.get(keynum)
        read = await store.get(key)
        contexts[key] = read.context
        measure = self._measure
        measure.reads += 1
        if len(read.values) > 1:
            measure.sibling_reads += 1
            measure.max_siblings = max(measure.max_siblings, len(read.values))
        if floor is not None:
            measure.checked_reads += 1
            acked_at = self.acked_at
            fresh = False
            for value in read.values:
                write = record_write(value)
                # A write not (yet) acknowledged overlaps everything after its issue.
                if write is not None and acked_at.get(write, math.inf) >= floor:
                    fresh = True
                    break
            if not fresh:
                measure.stale_reads += 1
        return read

    async def _write(
        self,
        store: Store,
        contexts: dict[str, bytes],
        keynum: int,
        key: str,
        context: bytes | None,
    ) -> None:
        self.writes += 1
        number = self.writes
        issued = self.issued_at[number] = self.clock()
        contexts[key] = await store.put(key, self.records.make(number), context)
        self.acked_at[number] = self.clock()
        if issued > self.overwritten_before.get(keynum, -math.inf):
            self.overwritten_before[keynum] = issued
