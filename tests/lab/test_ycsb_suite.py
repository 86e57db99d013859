"""``dtk bench ycsb``: generators against their published definitions; runner; command."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pytest
from click.testing import CliRunner

from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit.values import DEFAULT_MAX_PAIR_BYTES
from dynamo_toolkit_lab import ycsb
from dynamo_toolkit_lab.ycsb import Read, Runner, RunSpec, command, parse_configs
from dynamo_toolkit_lab.ycsb_workloads import (
    FIELD_COUNT,
    FIELD_LENGTH,
    OPERATION_KINDS,
    SCRAMBLED_ITEM_COUNT,
    WORKLOADS,
    InsertSequence,
    KeyIndex,
    Latest,
    Operation,
    OperationStream,
    RecordMaker,
    ScrambledZipfian,
    Uniform,
    Zipfian,
    fnv1a_64,
    key_name,
    record_write,
    zeta,
)

# -- the published mixes ------------------------------------------------------------

#: Cooper et al. 2010 / YCSB workloads/workloada..f: read, update, insert, scan, rmw.
PUBLISHED = {
    "A": ((0.5, 0.5, 0, 0, 0), "zipfian"),
    "B": ((0.95, 0.05, 0, 0, 0), "zipfian"),
    "C": ((1.0, 0, 0, 0, 0), "zipfian"),
    "D": ((0.95, 0, 0.05, 0, 0), "latest"),
    "E": ((0, 0, 0.05, 0.95, 0), "zipfian"),
    "F": ((0.5, 0, 0, 0, 0.5), "zipfian"),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_workloads_are_the_published_ones(name: str) -> None:
    mix, distribution = PUBLISHED[name]
    workload = WORKLOADS[name]
    assert tuple(workload.proportions()[k] for k in OPERATION_KINDS) == mix
    assert workload.distribution == distribution
    assert workload.max_scan_length == 100


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_operation_mix_proportions(name: str) -> None:
    draws = 20_000
    stream = OperationStream(WORKLOADS[name], 1000, draws, random.Random(7))
    counts = Counter(stream.choose_kind() for _ in range(draws))
    for kind, expected in zip(OPERATION_KINDS, PUBLISHED[name][0], strict=True):
        observed = counts[kind] / draws
        # 4 binomial standard errors, never less than the granularity of one draw.
        tolerance = 4 * math.sqrt(expected * (1 - expected) / draws) + 1 / draws
        assert abs(observed - expected) <= tolerance, (kind, observed, expected)


# -- zipfian ---------------------------------------------------------------------


def test_zeta_exact_and_euler_maclaurin_agree() -> None:
    direct = math.fsum(i**-0.99 for i in range(1, 200_001))
    assert zeta(200_000) == pytest.approx(direct, rel=1e-12)
    assert zeta(1) == 1.0
    assert zeta(2) == pytest.approx(1 + 2**-0.99)


def test_zeta_of_the_scrambled_item_space_is_ycsbs_constant() -> None:
    # YCSB's ScrambledZipfianGenerator precomputes ZETAN = 26.46902820178302
    # for 10**10 items and theta 0.99.
    assert SCRAMBLED_ITEM_COUNT == 10**10
    assert zeta(SCRAMBLED_ITEM_COUNT) == pytest.approx(26.46902820178302, rel=1e-10)


def _gray_probabilities(z: Zipfian) -> list[float]:
    """The exact distribution of Gray et al.'s sampler, from its inverse (no sampling)."""
    n, eta, alpha = z.items, z._eta, z.alpha
    probs = [1 / z.zetan, (z.zeta2 - 1) / z.zetan]
    floor = z.zeta2 / z.zetan  # u below this returns rank 0 or 1

    def u_of(rank: float) -> float:  # the u at which n*(eta*u - eta + 1)**alpha == rank
        return max((math.pow(rank / n, 1 / alpha) - 1 + eta) / eta, floor)

    for rank in range(2, n):
        upper = 1.0 if rank == n - 1 else min(u_of(rank + 1), 1.0)
        probs.append(max(upper - u_of(rank), 0.0))
    return probs


def test_gray_sampler_is_close_to_the_zipfian_law() -> None:
    z = Zipfian(1000)
    theory = [(i + 1) ** -0.99 / zeta(1000) for i in range(1000)]
    gray = _gray_probabilities(z)
    assert sum(gray) == pytest.approx(1.0, abs=1e-9)
    # Ranks 0 and 1 are exact; the closed form approximates the rest.
    assert gray[0] == pytest.approx(theory[0])
    assert gray[1] == pytest.approx(theory[1])
    total_variation = sum(abs(g - t) for g, t in zip(gray, theory, strict=True)) / 2
    assert total_variation < 0.03
    for rank in range(2, 10):
        assert gray[rank] == pytest.approx(theory[rank], rel=0.2)


def test_zipfian_draws_follow_their_rank_frequency() -> None:
    z = Zipfian(1000)
    rng = random.Random(11)
    draws = 200_000
    counts = Counter(z.sample(rng) for _ in range(draws))
    assert min(counts) == 0
    assert max(counts) <= 999
    theory = [(i + 1) ** -0.99 / zeta(1000) for i in range(1000)]
    gray = _gray_probabilities(z)
    for rank in range(10):
        observed = counts[rank] / draws
        se = math.sqrt(gray[rank] * (1 - gray[rank]) / draws)
        assert abs(observed - gray[rank]) < 5 * se, rank
    # Rank-frequency: the mass of each band of ranks is close to 1/i^0.99 / H.
    for lo, hi in ((0, 1), (1, 2), (2, 10), (10, 100), (100, 1000)):
        observed = sum(counts[i] for i in range(lo, hi)) / draws
        assert observed == pytest.approx(sum(theory[lo:hi]), abs=0.025), (lo, hi)


def test_zipfian_grows_incrementally() -> None:
    grown = Zipfian(500)
    grown.resize(1500)
    fresh = Zipfian(1500)
    assert grown.zetan == pytest.approx(fresh.zetan, rel=1e-12)
    assert grown._eta == pytest.approx(fresh._eta, rel=1e-12)
    grown.resize(10)  # shrinking recomputes
    assert grown.zetan == pytest.approx(zeta(10))


def test_tiny_zipfians() -> None:
    rng = random.Random(1)
    assert {Zipfian(1).sample(rng) for _ in range(100)} == {0}
    two = Counter(Zipfian(2).sample(rng) for _ in range(20_000))
    assert set(two) == {0, 1}
    assert two[0] / 20_000 == pytest.approx(1 / (1 + 2**-0.99), abs=0.02)


def _fnv1a_64_bytes(data: bytes) -> int:
    """FNV-1a as its authors define it: xor a byte, multiply by the prime, mod 2^64."""
    h = 14695981039346656037
    for byte in data:
        h = ((h ^ byte) * 1099511628211) % 2**64
    return h


def test_fnv_and_key_names() -> None:
    assert _fnv1a_64_bytes(b"") == 0xCBF29CE484222325  # published test vector
    assert _fnv1a_64_bytes(b"a") == 0xAF63DC4C8601EC8C  # published test vector
    for value in (0, 1, 2, 999, 123456789, 2**40 + 7):
        raw = _fnv1a_64_bytes(value.to_bytes(8, "little"))
        signed = raw - 2**64 if raw >= 2**63 else raw
        assert fnv1a_64(value) == abs(signed)
    # The first key of every YCSB load with hashed inserts.
    assert key_name(0) == "user6284781860667377211"
    assert key_name(5, prefix="t:") == f"t:user{fnv1a_64(5)}"


def test_scrambled_zipfian_scatters_the_hot_ranks() -> None:
    keys = 1000
    scrambled = ScrambledZipfian(keys)
    rng = random.Random(3)
    draws = 100_000
    counts = Counter(scrambled.sample(rng) for _ in range(draws))
    assert min(counts) >= 0
    assert max(counts) < keys
    ranked = [key for key, _ in counts.most_common(3)]
    # The hottest keys are the hashes of the hottest ranks, not keys 0, 1, 2.
    assert ranked[:2] == [fnv1a_64(0) % keys, fnv1a_64(1) % keys]
    top = counts[fnv1a_64(0) % keys] / draws
    # Rank 0 alone has 1/zeta(10^10); the folded tail adds about 1/keys of the rest.
    expected = 1 / zeta(SCRAMBLED_ITEM_COUNT) + (1 - 0.29) / keys
    assert top == pytest.approx(expected, rel=0.1)
    assert len(counts) > 0.95 * keys  # the folded tail reaches almost every key


def test_uniform_covers_the_loaded_records() -> None:
    rng = random.Random(2)
    counts = Counter(Uniform(50).sample(rng) for _ in range(50_000))
    assert set(counts) == set(range(50))
    assert max(counts.values()) < 1.2 * 1000
    assert min(counts.values()) > 0.8 * 1000


def test_latest_favours_recent_inserts() -> None:
    rng = random.Random(4)
    latest = Latest(999)
    draws = 50_000
    counts = Counter(latest.sample(rng, 999) for _ in range(draws))
    assert max(counts) == 999
    assert min(counts) >= 0
    assert counts[999] / draws == pytest.approx(1 / zeta(1000), abs=0.01)
    assert counts[999] > counts[998] > counts[997] > counts[990]
    # The newest tenth of the records takes most of the reads.
    assert sum(c for k, c in counts.items() if k >= 900) / draws > 0.6
    # A new insert becomes the hottest record at once.
    after = Counter(latest.sample(rng, 1000) for _ in range(draws))
    assert after.most_common(1)[0][0] == 1000


def test_scan_lengths_are_uniform_up_to_100() -> None:
    stream = OperationStream(WORKLOADS["E"], 1000, 1000, random.Random(9))
    lengths = [op.scan_length for op in (stream.next() for _ in range(60_000)) if op.kind == "scan"]
    counts = Counter(lengths)
    assert set(counts) == set(range(1, 101))
    expected = len(lengths) / 100
    chi2 = sum((counts[k] - expected) ** 2 / expected for k in range(1, 101))
    assert chi2 < 160  # 99 degrees of freedom: far beyond p = 0.001 only if not uniform
    assert sum(lengths) / len(lengths) == pytest.approx(50.5, abs=1.0)


def test_reads_only_choose_finished_inserts() -> None:
    stream = OperationStream(WORKLOADS["D"], 100, 1000, random.Random(1))
    pending = [stream.next() for _ in range(400)]
    inserts = [op for op in pending if op.kind == "insert"]
    assert inserts
    assert [op.keynum for op in inserts] == list(range(100, 100 + len(inserts)))
    assert all(op.keynum <= 99 for op in pending if op.kind == "read")
    stream.inserts.acknowledge(inserts[0].keynum)
    assert stream.inserts.last == 100


def test_insert_sequence_acknowledges_in_order() -> None:
    sequence = InsertSequence(10)
    first, second, third = sequence.allocate(), sequence.allocate(), sequence.allocate()
    assert (first, second, third) == (10, 11, 12)
    sequence.acknowledge(12)
    sequence.acknowledge(11)
    assert sequence.last == 9  # 10 is still running
    sequence.acknowledge(10)
    assert sequence.last == 12


def test_key_index_scans_in_key_order() -> None:
    index = KeyIndex(["b", "d"])
    index.add("a")
    index.add("c")
    index.add("c")
    assert len(index) == 4
    assert index.scan("b", 2) == ["b", "c"]
    assert index.scan("bb", 10) == ["c", "d"]
    assert index.scan("z", 3) == []


def test_records_are_ten_fields_of_100_bytes_tagged_by_write() -> None:
    maker = RecordMaker(random.Random(1))
    record = maker.make(123456)
    assert sorted(record) == [f"field{i}" for i in range(FIELD_COUNT)]
    assert all(isinstance(v, bytes) and len(v) == FIELD_LENGTH for v in record.values())
    encoded = msgpack.packb(record, use_bin_type=True)
    assert 1000 < len(encoded) < DEFAULT_MAX_PAIR_BYTES
    decoded = msgpack.unpackb(encoded, raw=False)
    assert record_write(decoded) == 123456
    assert record_write(["not", "a record"]) is None
    assert maker.make(1) != maker.make(2)


# -- the runner, on a store whose behaviour the test controls -----------------------


class FakeStore:
    """A dict store; ``stale`` keys answer with the first value ever written.

    Gets take 1 ms and puts 2 ms of virtual time (the tests run it on
    :func:`run_virtual`), so latencies are known exactly.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[object]] = {}
        self.gets: list[str] = []
        self.stale: set[str] = set()
        self.fail_puts = False
        self.siblings: set[str] = set()

    async def get(self, key: str) -> Read:
        self.gets.append(key)
        await asyncio.sleep(0.001)
        versions = self.history.get(key, [])
        if key in self.stale:
            versions = versions[:1]
        elif key in self.siblings:
            versions = versions[-2:]
        else:
            versions = versions[-1:]
        return Read(tuple(versions), b"ctx")

    async def put(self, key: str, value: object, context: bytes | None) -> bytes:
        await asyncio.sleep(0.002)
        if self.fail_puts:
            raise ycsb.QuorumFailure("1 of 2 replicas answered")
        self.history.setdefault(key, []).append(value)
        return b"ctx"


def _runner(workload: str, records: int, operations: int, seed: int = 1) -> Runner:
    stream = OperationStream(WORKLOADS[workload], records, operations, random.Random(seed))
    return Runner(stream, RecordMaker(random.Random(seed)), clock=lambda: 0.0)


def test_runner_counts_stale_reads_and_siblings() -> None:
    async def scenario() -> tuple[Any, Any, FakeStore]:
        store = FakeStore()
        runner = _runner("A", 20, 400)
        runner.clock = asyncio.get_running_loop().time
        load = await runner.load([store] * 4, 20)
        keys = sorted(store.history)
        store.stale = set(keys[:10])
        store.siblings = set(keys[10:])
        run = await runner.run([store] * 4, 400)
        return load, run, store

    load, run, _ = run_virtual(scenario())
    assert load.operations == 20
    assert load.stale_reads == 0
    assert len(load.latencies["insert"]) == 20
    assert run.operations == 400
    assert run.reads > 100
    assert run.checked_reads == run.reads
    # A stale key answers with its load-time value: stale once it was updated.
    assert 0 < run.stale_reads < run.reads
    assert run.sibling_reads > 0
    assert run.max_siblings == 2
    summary = run.summary()
    assert summary["latency_ms"]["read"]["p50"] == pytest.approx(1.0, abs=0.5)
    assert summary["latency_ms"]["update"]["p50"] == pytest.approx(2.0, abs=0.5)
    assert summary["mix"]["read"] + summary["mix"]["update"] == 400


class ScriptedStore:
    """Puts take the delays the test lists; gets answer with the records the test names."""

    def __init__(self, put_delays: list[float]) -> None:
        self.put_delays = put_delays
        self.written: dict[int, object] = {}
        self.answer: tuple[int, ...] = ()

    async def get(self, key: str) -> Read:
        return Read(tuple(self.written[w] for w in self.answer), b"")

    async def put(self, key: str, value: object, context: bytes | None) -> bytes:
        number = record_write(value)
        assert number is not None
        self.written[number] = value  # readable at once, acknowledged after the delay
        await asyncio.sleep(self.put_delays.pop(0))
        return b""


def test_stale_means_overwritten_before_the_read_began() -> None:
    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        runner = _runner("A", 1, 1)
        runner.clock = loop.time
        store = ScriptedStore([10.0, 1.0, 1.0])
        stale = []

        async def read(*writes: int) -> None:
            store.answer = writes
            before = runner._measure.stale_reads
            await runner._read(store, {}, 0, "k")
            stale.append(runner._measure.stale_reads - before)

        slow = loop.create_task(runner._write(store, {}, 0, "k", None))  # 1: t=0..10
        await asyncio.sleep(5)
        await runner._write(store, {}, 0, "k", None)  # 2: t=5..6, overlaps 1
        await read(1)  # t=6: 1 is still in flight
        await slow
        await read(1)  # t=10: 1 and 2 overlapped, either may win
        await read(2)
        await asyncio.sleep(2)
        await runner._write(store, {}, 0, "k", None)  # 3: t=12..13, after both
        await read(1)  # overwritten by 3 before the read began
        await read(2)
        await read(1, 3)  # a sibling is the latest write
        return stale

    assert run_virtual(scenario()) == [0, 0, 0, 1, 1, 0]


def test_runner_counts_quorum_failures_and_keeps_going() -> None:
    async def scenario() -> Any:
        store = FakeStore()
        runner = _runner("A", 10, 100)
        await runner.load([store] * 2, 10)
        store.fail_puts = True
        return await runner.run([store] * 2, 100)

    run = run_virtual(scenario())
    assert run.operations == 100
    assert run.quorum_failures["update"] > 0
    assert run.latencies["update"] == []
    assert len(run.latencies["read"]) == 100 - run.quorum_failures["update"]


def test_scan_is_a_parallel_multiget_of_the_next_keys_in_key_order() -> None:
    async def scenario() -> tuple[FakeStore, float, list[str]]:
        store = FakeStore()
        runner = _runner("E", 200, 30)
        loop = asyncio.get_running_loop()
        await runner.load([store], 200)
        store.gets.clear()
        began = loop.time()
        await runner._execute(store, {}, Operation("scan", 17, 5))
        return store, loop.time() - began, sorted(store.history)

    store, elapsed, ordered = run_virtual(scenario())
    start = ordered.index(key_name(17))
    assert store.gets == ordered[start : start + 5]
    # Five 1 ms gets in parallel take about 1 ms, not 5.
    assert elapsed < 0.004


def test_scan_near_the_end_of_the_key_order_reads_what_is_there() -> None:
    async def scenario() -> list[str]:
        store = FakeStore()
        runner = _runner("E", 50, 10)
        await runner.load([store], 50)
        store.gets.clear()
        last = max(range(50), key=key_name)
        await runner._execute(store, {}, Operation("scan", last, 100))
        return store.gets

    assert run_virtual(scenario()) == [max(key_name(k) for k in range(50))]


# -- the command ---------------------------------------------------------------------


def run_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(command, ["--json", *args])
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


SMALL = ("--records", "60", "--operations", "80", "--clients", "4", "--nodes", "4")


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    return run_json(*SMALL, "--workloads", "A,D,F", "--configs", "n3r2w2,n3r1w1")


def test_json_schema(small: dict[str, Any]) -> None:
    assert small["suite"] == "ycsb"
    assert small["target"] == "simulated"
    assert small["nodes"] == 4
    assert small["records"] == 60
    assert small["operations"] == 80
    assert small["forward_writes"] is True  # the store's default
    results = small["results"]
    assert [(r["workload"], r["r"], r["w"]) for r in results] == [
        ("A", 2, 2),
        ("D", 2, 2),
        ("F", 2, 2),
        ("A", 1, 1),
        ("D", 1, 1),
        ("F", 1, 1),
    ]
    for r in results:
        assert r["n"] == 3
        assert r["resolver"] == "vector-clock"
        assert r["routing"] == "any"
        assert r["load"]["operations"] == 60
        assert r["load"]["mix"] == {"insert": 60}
        run = r["run"]
        assert run["operations"] == 80
        assert sum(run["mix"].values()) == 80
        assert run["seconds"] > 0
        assert run["throughput"] == pytest.approx(80 / run["seconds"])
        lat = run["latency_ms"]["all"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert run["quorum_failures"] == 0
        assert run["errors"] == 0
        assert r["cluster"]["messages"] > 0
        # Routed to any of 4 nodes, some writes reach a non-replica and are forwarded.
        assert r["cluster"]["forwarded_writes"] > 0
        assert set(r["wall_seconds"]) == {"start", "load", "run", "total"}


def test_mixes_in_the_run_follow_the_workload(small: dict[str, Any]) -> None:
    kinds = {r["workload"]: set(r["run"]["mix"]) for r in small["results"]}
    assert kinds["A"] <= {"read", "update"}
    assert kinds["D"] <= {"read", "insert"}
    assert kinds["F"] == {"read", "rmw"}


def test_latencies_come_from_the_simulated_network(small: dict[str, Any]) -> None:
    # One-way delays are 0.5-2 ms: the client's round trip to the coordinator
    # and the coordinator's to the replicas take 1-4 ms each; a
    # read-modify-write is two such operations.
    for r in small["results"]:
        lat = r["run"]["latency_ms"]
        assert lat["read"]["p50"] >= 1.0
        assert lat["read"]["max"] <= 8.0 + 1e-9
        if "rmw" in lat:
            assert lat["rmw"]["p50"] > lat["read"]["p50"]
            assert lat["rmw"]["max"] <= 16.0 + 1e-9


def test_seeded_runs_are_identical(small: dict[str, Any]) -> None:
    again = run_json(*SMALL, "--workloads", "A,D,F", "--configs", "n3r2w2,n3r1w1")

    def strip(payload: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in payload["results"]]

    assert strip(again) == strip(small)


def test_strict_quorums_through_replicas_read_every_acknowledged_write() -> None:
    payload = run_json(
        *SMALL, "--workloads", "A,F", "--configs", "n3r2w2,n3r3w1", "--routing", "replica"
    )
    for r in payload["results"]:
        assert r["run"]["checked_reads"] > 0
        assert r["run"]["stale_reads"] == 0, r


def test_forwarding_writes_to_a_replica_removes_the_stale_reads_of_any_routing() -> None:
    # Few hot records, many clients, any node coordinates: the coordinator
    # problem shows within 200 operations.
    args = ("--records", "10", "--operations", "200", "--clients", "8", "--nodes", "5",
            "--workloads", "A")  # fmt: skip
    forwarded = run_json(*args)
    direct = run_json(*args, "--no-forward-writes")
    assert forwarded["forward_writes"] is True
    assert direct["forward_writes"] is False
    (fwd,), (own,) = forwarded["results"], direct["results"]
    assert fwd["cluster"]["forwarded_writes"] > 0
    assert own["cluster"]["forwarded_writes"] == 0
    assert fwd["run"]["checked_reads"] == own["run"]["checked_reads"] > 0
    # A non-replica coordinator has no local versions: its clock can repeat
    # one already stored, and the acknowledged write is dropped as an
    # ancestor, so later reads return what it overwrote.
    assert own["run"]["stale_reads"] > 0
    # Forwarded, a replica coordinates, and its counter steps past what it holds.
    assert fwd["run"]["stale_reads"] == 0
    # Only replicas as actors: fewer concurrent versions kept apart.
    assert fwd["run"]["sibling_reads"] < own["run"]["sibling_reads"]


def test_forward_writes_reaches_the_store_config() -> None:
    spec = RunSpec(3, 2, 2)
    assert "forward_writes" not in ycsb._store_config(spec, None)["store"]
    assert ycsb._store_config(spec, None, False)["store"]["forward_writes"] is False
    assert ycsb._store_config(spec, None, True)["store"]["forward_writes"] is True
    payload = run_json(*SMALL, "--workloads", "A", "--routing", "replica", "--no-forward-writes")
    assert payload["forward_writes"] is False
    # The partition-aware client already reaches a replica: nothing to forward.
    assert payload["results"][0]["cluster"]["forwarded_writes"] == 0


async def test_forwarded_writes_draw_a_client_hop_under_a_pbs_preset() -> None:
    from dynamo_toolkit.messages import ForwardedWrite, ForwardedWriteReply
    from dynamo_toolkit_plugins.transport.simulated import Packet, SimulatedNetwork

    legs = ycsb._LegLatency("LNKD-DISK")
    network = SimulatedNetwork(seed=1, latency=legs)
    legs.install(network)
    drawn: list[str] = []
    # Observers run in the order they were added: this one sees the leg just set.
    network.add_observer(lambda source, dest, packet: drawn.append(legs.leg))
    network.transmit("n1", "n2", Packet("req", 1, ForwardedWrite(b"k", b"v", None, None, None)))
    network.transmit("n2", "n1", Packet("rep", 1, ForwardedWriteReply(None, 2)))
    assert drawn == ["R", "S"]


def test_scan_workload_and_resolver_comparison() -> None:
    payload = run_json(
        "--records", "50", "--operations", "20", "--clients", "2", "--nodes", "3",
        "--workloads", "E", "--resolvers", "vector-clock,lww",
    )  # fmt: skip
    assert [r["resolver"] for r in payload["results"]] == ["vector-clock", "lww"]
    for r in payload["results"]:
        assert set(r["run"]["mix"]) <= {"scan", "insert"}
        assert r["run"]["reads"] > 20  # each scan reads several records


def test_heartbeat_interval_and_latency_preset() -> None:
    spec = RunSpec(3, 2, 2)
    config = ycsb._store_config(spec, 30.0)
    assert config["store"]["heartbeat_interval"] == 30.0
    assert config["failure_detector"] == {"name": "timeout", "timeout": 120.0}
    payload = run_json(
        *SMALL, "--workloads", "C", "--heartbeat-interval", "30", "--latency", "LNKD-SSD"
    )
    (result,) = payload["results"]
    assert payload["latency"] == "LNKD-SSD"
    assert payload["heartbeat_interval"] == 30.0
    # LNKD-SSD legs are mostly 0.24-0.5 ms: a read's four legs (client hop,
    # replica round trip) stay under 2 ms at p50, against 2.5 ms or more with
    # the default 0.5-2 ms legs.
    assert result["run"]["latency_ms"]["read"]["p50"] < 2.0


def test_table_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "ycsb.png"
    result = CliRunner().invoke(
        command, [*SMALL, "--workloads", "B", "--plot", str(plot)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "ycsb" in result.output
    assert "N3R2W2" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the harness at scale ------------------------------------------------------------


def test_a_200_node_cluster_runs_a_workload() -> None:
    result = ycsb.run_simulated(
        "B", RunSpec(3, 2, 2), nodes=200, records=30, operations=30, clients=4, seed=2,
        heartbeat_interval=60.0,
    )  # fmt: skip
    assert result["run"]["operations"] == 30
    assert result["run"]["quorum_failures"] == 0
    # One heartbeat round (200 x 199) plus the workload's own messages.
    assert 200 * 199 < result["cluster"]["messages"] < 200 * 199 + 2000


def test_steady_gossip_skips_equal_views_and_changes_still_spread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dynamo_toolkit.in_process_cluster import Cluster
    from dynamo_toolkit.membership_state import ClusterState, MemberStatus

    decoded = []
    original = ClusterState.from_wire

    def counting(data: Any) -> ClusterState:
        decoded.append(1)
        return original(data)

    monkeypatch.setattr(ClusterState, "from_wire", staticmethod(counting))

    async def scenario() -> tuple[int, int, set[str]]:
        config = ycsb._store_config(RunSpec(3, 2, 2), 60.0)  # as the suite runs it
        async with await Cluster.start(20, config, transport="simulated", seed=1) as cluster:
            clock = cluster.node("n1").clock
            await clock.sleep(5.0)  # 5 gossip rounds of 20 nodes, all views equal
            steady = len(decoded)
            cluster.stage_leave("n7", via="n1")
            await clock.sleep(10.0)
            statuses = {
                str(node.membership.state.members["n7"].status) for node in cluster.running()
            }
            return steady, len(decoded), statuses

    steady, after, statuses = run_virtual(scenario())
    assert steady == 0
    assert after > 0  # a changed view is decoded and merged
    assert statuses == {str(MemberStatus.LEAVING)}  # and reaches every member


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workloads", "G"), "unknown workload"),
        (("--configs", "n3r4w1"), "R must satisfy"),
        (("--configs", "3-2-2"), "n3r2w2"),
        (("--configs", "n5r3w3", "--nodes", "4"), "needs at least 5 nodes"),
        (("--resolvers", "nope"), "unknown resolver"),
        (("--routing", "nearest"), "use any or replica"),
        (("--target", "127.0.0.1:1", "--resolvers", "vector-clock,lww"), "simulated cluster"),
        (("--target", "127.0.0.1:1", "--no-forward-writes"), "simulated cluster"),
        (("--target", "127.0.0.1:1", "--forward-writes"), "simulated cluster"),
    ],
)
def test_bad_options(args: tuple[str, ...], message: str) -> None:
    result = CliRunner().invoke(command, list(args))
    assert result.exit_code != 0
    assert message in result.output


def test_parse_configs() -> None:
    assert parse_configs("n3r2w2, N3R1W1") == [(3, 2, 2), (3, 1, 1)]
