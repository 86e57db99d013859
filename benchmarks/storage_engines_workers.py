"""The storage benchmark's data, measurements and workers (one process per row).

Run as a script with one JSON spec argument, it runs that worker and prints
its JSON result: :func:`run_worker` starts it so that every row's memory
figures come from a fresh process. ``storage_engines.py`` is the benchmark.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "reference_server"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cache_policies import ZipfSampler  # noqa: E402

SKEW = 0.99
CHUNK = 10_000  # puts between flushes (and commits of the raw bindings)
CACHE_FRACTION = 0.10
ENGINES = ("sqlitedict", "sqlite", "lmdb", "rocksdb")
CODECS = ("none", "lz4", "snappy", "zstd")
CODEC_ENGINE = "sqlite"
POLICY_ENGINE = "lmdb"
TAGS = ("alpha", "beta", "gamma", "delta", "eu-west", "us-east", "mobile", "web", "trial", "paid")


# -- data --------------------------------------------------------------------------


def key_of(index: int) -> bytes:
    """The stored form of key number ``index`` (13 bytes)."""
    return b"user:%08d" % index


def load_order(pairs: int, seed: int) -> list[int]:
    """Key numbers in the seeded random order they are written in."""
    order = list(range(pairs))
    random.Random(seed).shuffle(order)
    return order


def records(indexes: Sequence[int], seed: int) -> list[tuple[bytes, int, bytes]]:
    """``(key, position, record)`` for each key number, as the kernel would store them."""
    from dynamo_toolkit.values import encode_value, key_position
    from dynamo_toolkit.versioning import Version, pack_versions
    from dynamo_toolkit.versioning.vector_clock import ClockEntry, VectorClock

    out = []
    for index in indexes:
        rng = random.Random(seed * 1_000_003 + index)
        value = (
            f'{{"id":{index},"user":"user-{index:07d}","email":"u{index:07d}@example.com",'
            f'"score":{rng.randrange(10**6)},"tags":["{rng.choice(TAGS)}","{rng.choice(TAGS)}"]}}'
        )
        stamp = 1_767_225_600.0 + index / 1000.0
        clock = VectorClock((ClockEntry(f"n{index % 3 + 1}", 1, stamp),))
        record = pack_versions([Version(clock, encode_value(value), stamp)])
        key = key_of(index)
        out.append((key, key_position(key), record))
    return out


def chunks(order: Sequence[int], seed: int) -> Iterator[list[tuple[bytes, int, bytes]]]:
    """The records of ``order``, ``CHUNK`` at a time (built outside the timed region)."""
    for start in range(0, len(order), CHUNK):
        yield records(order[start : start + CHUNK], seed)


def uniform_keys(pairs: int, count: int, seed: int) -> list[bytes]:
    """``count`` keys drawn uniformly (with repetition) from the loaded ones."""
    rng = random.Random(seed + 1)
    return [key_of(rng.randrange(pairs)) for _ in range(count)]


def zipf_keys(pairs: int, count: int, seed: int) -> list[bytes]:
    """A Zipf(0.99) read trace over the loaded keys; popularity unrelated to key order."""
    rng = random.Random(seed + 2)
    permutation = list(range(pairs))
    rng.shuffle(permutation)
    ranks = ZipfSampler(pairs, SKEW).sample(rng, count)
    return [key_of(permutation[rank]) for rank in ranks]


# -- measurement helpers ---------------------------------------------------------------


def disk_bytes(path: Path) -> int:
    """Allocated bytes of a file or a directory tree (what ``du`` reports)."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            total += (Path(directory) / name).stat().st_blocks * 512
    return total


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def anon_rss() -> int:
    """Anonymous resident memory (heap, not file-backed maps), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def timed_gets(get: Callable[[bytes], object], keys: Sequence[bytes]) -> float:
    """Gets per second over ``keys``; every key must be found."""
    started = time.perf_counter()
    for key in keys:
        if get(key) is None:
            raise RuntimeError(f"benchmark key {key!r} not found")
    return len(keys) / (time.perf_counter() - started)


# -- workers (each runs in its own process) ----------------------------------------------


def build_engine(spec: dict[str, Any], data_dir: Path) -> Any:
    """The engine ``spec`` names, built through the component registry as a node would."""
    from dynamo_toolkit.plugin_host import load_plugins

    registry = load_plugins().registry
    params = dict(spec.get("params", {}))
    return registry.create(
        "storage_engine", spec["engine"], node_id="bench", data_dir=data_dir, **params
    )


def load(
    engine: Any, order: Sequence[int], seed: int, max_seconds: float | None = None
) -> tuple[int, float]:
    """Put the pairs of ``order``, flushing every ``CHUNK``; (puts done, seconds spent).

    With ``max_seconds`` the load stops at the first put past that time
    (checking the clock costs a little, so only the bounded sync rows do).
    """
    done, elapsed = 0, 0.0
    for chunk in chunks(order, seed):
        put = engine.put
        started = time.perf_counter()
        if max_seconds is None:
            for key, position, record in chunk:
                put(key, position, record)
            done += len(chunk)
        else:
            deadline = started + max_seconds - elapsed
            for key, position, record in chunk:
                put(key, position, record)
                done += 1
                if time.perf_counter() > deadline:
                    break
        engine.flush()
        elapsed += time.perf_counter() - started
        if max_seconds is not None and elapsed >= max_seconds:
            break
    return done, elapsed


def raw_load(raw: RawStore, order: Sequence[int], seed: int) -> float:
    """Put the pairs of ``order`` through a raw binding, committing every ``CHUNK``; seconds."""
    elapsed = 0.0
    for chunk in chunks(order, seed):
        values = [(k, p.to_bytes(8, "big") + r) for k, p, r in chunk]
        put = raw.put
        started = time.perf_counter()
        for key, value in values:
            put(key, value)
        raw.commit()
        elapsed += time.perf_counter() - started
    return elapsed


def cached_reads(
    inner: Any, policy: str, budget: int, trace: Sequence[bytes], warmup: int
) -> dict[str, Any]:
    """Replay ``trace`` through a ``cached`` wrapper: rate and hit ratio after the warm-up."""
    from dynamo_toolkit_plugins.storage.cached import CachedStorage

    cache = CachedStorage(inner=inner, budget_bytes=budget, policy=policy)
    get = cache.get
    for key in trace[:warmup]:
        get(key)
    hits = cache.hits
    measured = trace[warmup:]
    rate = timed_gets(get, measured)
    return {
        "policy": policy,
        "budget_bytes": budget,
        "entries": cache.entries,
        "gets_per_s": rate,
        "hit_ratio": (cache.hits - hits) / len(measured),
        "hit_ratio_with_warmup": cache.hit_ratio,
    }


class RawStore:
    """A raw binding behind four calls: ``put``, ``get``, ``commit``, ``close``."""

    def __init__(
        self,
        put: Callable[[bytes, bytes], object],
        get: Callable[[bytes], bytes | None],
        commit: Callable[[], object],
        close: Callable[[], object],
    ) -> None:
        self.put, self.get, self.commit, self.close = put, get, commit, close


def open_raw(binding: str, directory: Path) -> RawStore:
    """The raw binding, set up as the engine's batched mode sets it up.

    Commits (with the same sync) come every ``CHUNK`` writes from the caller;
    a get sees the latest commit (LMDB: one read transaction per get).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if binding == "sqlite3":
        import sqlite3

        conn = sqlite3.connect(directory / "raw.sqlite3", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE kv(key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL)")

        def sqlite_put(key: bytes, value: bytes) -> None:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, value))

        def sqlite_get(key: bytes) -> bytes | None:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            return None if row is None else row[0]  # type: ignore[no-any-return]

        def sqlite_commit() -> None:
            if conn.in_transaction:
                conn.execute("COMMIT")

        return RawStore(sqlite_put, sqlite_get, sqlite_commit, conn.close)
    if binding == "lmdb":
        import lmdb

        env = lmdb.open(str(directory / "raw.lmdb"), map_size=1 << 33, readahead=False)
        state: dict[str, Any] = {"txn": None}

        def lmdb_put(key: bytes, value: bytes) -> None:
            if state["txn"] is None:
                state["txn"] = env.begin(write=True)
            state["txn"].put(key, value)

        def lmdb_get(key: bytes) -> bytes | None:
            with env.begin() as txn:
                return txn.get(key)  # type: ignore[no-any-return]

        def lmdb_commit() -> None:
            if state["txn"] is not None:
                state["txn"].commit()
                state["txn"] = None

        return RawStore(lmdb_put, lmdb_get, lmdb_commit, env.close)
    if binding == "rocksdict":
        from rocksdict import BlockBasedOptions, DBRecoveryMode, Options, Rdict

        # The engine's options (the bloom filter speeds up point reads a lot).
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_wal_recovery_mode(DBRecoveryMode.point_in_time())
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)
        options.set_block_based_table_factory(table)
        db = Rdict(str(directory / "raw.rocksdb"), options=options)
        return RawStore(db.put, db.get, lambda: db.flush_wal(True), db.close)
    if binding == "sqlitedict":
        from sqlitedict import SqliteDict

        sqlite_dict = SqliteDict(
            str(directory / "raw.sqlite"),
            autocommit=False,
            encode=bytes,
            decode=bytes,
            outer_stack=False,
        )

        def dict_put(key: bytes, value: bytes) -> None:
            sqlite_dict[key.decode()] = value

        def dict_get(key: bytes) -> bytes | None:
            return sqlite_dict[key.decode()]  # type: ignore[no-any-return]

        def dict_commit() -> None:
            sqlite_dict.commit(blocking=True)

        return RawStore(dict_put, dict_get, dict_commit, sqlite_dict.close)
    raise ValueError(f"unknown binding {binding!r}")


RAW_BINDING = {
    "sqlitedict": "sqlitedict",
    "sqlite": "sqlite3",
    "lmdb": "lmdb",
    "rocksdb": "rocksdict",
}

#: Rounds of the engine-vs-binding comparison (best of each side is kept).
ROUNDS = 5


def overhead_rounds(engine: Any, raw: RawStore, pairs: int, seed: int, gets: int) -> dict[str, Any]:
    """Engine and raw binding, alternating, on the same work: best rates of ``ROUNDS``.

    Each round overwrites the same ``CHUNK`` random existing keys with new
    records in each store (the common write: a key's position does not
    change), then commits, and gets the same ``gets`` uniform keys from each.
    Alternating keeps a busy machine from favouring one side.
    """
    best = {"engine_updates_per_s": 0.0, "raw_updates_per_s": 0.0}
    best |= {"engine_gets_per_s": 0.0, "raw_gets_per_s": 0.0}
    for round_ in range(ROUNDS):
        rng = random.Random(seed + 10 + round_)
        chunk = records([rng.randrange(pairs) for _ in range(CHUNK)], seed + 10 + round_)
        values = [(k, p.to_bytes(8, "big") + r) for k, p, r in chunk]
        started = time.perf_counter()
        for key, position, record in chunk:
            engine.put(key, position, record)
        engine.flush()
        rate = len(chunk) / (time.perf_counter() - started)
        best["engine_updates_per_s"] = max(best["engine_updates_per_s"], rate)
        started = time.perf_counter()
        for key, value in values:
            raw.put(key, value)
        raw.commit()
        rate = len(values) / (time.perf_counter() - started)
        best["raw_updates_per_s"] = max(best["raw_updates_per_s"], rate)
        keys = uniform_keys(pairs, max(gets // 2, 1), seed + round_)
        best["engine_gets_per_s"] = max(best["engine_gets_per_s"], timed_gets(engine.get, keys))
        best["raw_gets_per_s"] = max(best["raw_gets_per_s"], timed_gets(raw.get, keys))
    # Time per operation, engine over binding: 1.0 means no overhead.
    return best | {
        "update": best["raw_updates_per_s"] / best["engine_updates_per_s"],
        "get": best["raw_gets_per_s"] / best["engine_gets_per_s"],
    }


def behind_replica_store(
    inner: Any, budget: int, trace: Sequence[bytes], warmup: int
) -> dict[str, Any]:
    """Reads as a node makes them: ``ReplicaStore.read`` over ``cached`` over the engine.

    The replica store keeps its own decoded sibling sets of the last 65,536
    keys it read or wrote (FIFO), so the ``cached`` wrapper sees only that
    cache's misses.
    """
    from dynamo_toolkit.plugin_host import load_plugins
    from dynamo_toolkit.replica_store import ReplicaStore
    from dynamo_toolkit_plugins.storage.cached import CachedStorage

    cache = CachedStorage(inner=inner, budget_bytes=budget, policy="s3-fifo")
    resolver = load_plugins().registry.create("conflict_resolver", "vector-clock")
    store = ReplicaStore(cache, resolver)
    read = store.read
    for key in trace[:warmup]:
        read(key)
    hits, misses = cache.hits, cache.misses
    measured = trace[warmup:]
    started = time.perf_counter()
    for key in measured:
        read(key)
    elapsed = time.perf_counter() - started
    wrapper_hits, wrapper_misses = cache.hits - hits, cache.misses - misses
    lookups = wrapper_hits + wrapper_misses  # reads the decoded cache did not answer
    return {
        "decoded_cache_keys": 65_536,
        "reads_per_s": len(measured) / elapsed,
        "decoded_hit_ratio": 1 - lookups / len(measured),
        "wrapper_hit_ratio": wrapper_hits / lookups if lookups else 0.0,
        "combined_hit_ratio": 1 - wrapper_misses / len(measured),
        "entries": cache.entries,
    }


def engine_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Load and measure one engine; then its raw binding; then reads behind the cache."""
    from dynamo_toolkit_plugins.storage.cached import ENTRY_OVERHEAD

    pairs, seed = spec["pairs"], spec["seed"]
    order = load_order(pairs, seed)
    sample = records(range(min(pairs, 1000)), seed)  # imports everything before measuring
    with tempfile.TemporaryDirectory(prefix="dtk-bench-engine-") as tmp:
        data_dir = Path(tmp) / "engine"
        engine = build_engine(spec, data_dir)
        rss0, anon0 = peak_rss(), anon_rss()
        done, elapsed = load(engine, order, seed, spec.get("max_seconds"))
        result: dict[str, Any] = {"pairs": done, "load_seconds": elapsed}
        result["puts_per_s"] = done / elapsed
        if spec.get("load_only"):
            engine.close()
            return result
        result["rss_growth_per_pair"] = (peak_rss() - rss0) / done
        result["anon_growth_per_pair"] = (anon_rss() - anon0) / done
        if hasattr(engine, "ratio"):
            result["compression_ratio"] = engine.ratio
            result["compressed_records"] = engine.compressed_records
        result["gets_per_s"] = timed_gets(engine.get, uniform_keys(pairs, spec["gets"], seed))
        engine.close()
        result["bytes_per_pair"] = disk_bytes(data_dir) / done
        # Opening again lets an engine drop what it kept for recovery (RocksDB's
        # write-ahead logs, pinned until every column family has flushed).
        build_engine(spec, data_dir).close()
        result["bytes_per_pair_reopened"] = disk_bytes(data_dir) / done
        engine = build_engine(spec, data_dir)
        binding = spec.get("binding")
        if binding:
            raw_dir = Path(tmp) / "raw"
            raw = open_raw(binding, raw_dir)
            raw_seconds = raw_load(raw, order, seed)
            raw_gets = timed_gets(raw.get, uniform_keys(pairs, spec["gets"], seed))
            overhead = overhead_rounds(engine, raw, pairs, seed, spec["gets"])
            # The load: the same inserts, in the same order, with the same commits.
            overhead["load"] = (pairs / raw_seconds) / result["puts_per_s"]
            result["raw"] = {
                "binding": binding,
                "puts_per_s": pairs / raw_seconds,
                "gets_per_s": raw_gets,
                "overhead": overhead,
            }
            raw.close()
            result["raw"]["bytes_per_pair"] = disk_bytes(raw_dir) / pairs
        charged = sum(len(k) + len(r) + ENTRY_OVERHEAD for k, _, r in sample) / len(sample)
        plain = sum(len(k) + len(r) for k, _, r in sample) / len(sample)
        result["mean_record_bytes"] = sum(len(r) for _, _, r in sample) / len(sample)
        result["charged_bytes_per_entry"] = charged
        trace = zipf_keys(pairs, spec["warmup"] + spec["reads"], seed)
        budget = int(CACHE_FRACTION * pairs * charged)
        result["cached"] = cached_reads(engine, "s3-fifo", budget, trace, spec["warmup"])
        if spec.get("policies"):
            result["policies"] = {
                policy: cached_reads(engine, policy, budget, trace, spec["warmup"])
                for policy in spec["policies"]
            }
            plain_budget = int(CACHE_FRACTION * pairs * plain)
            result["plain_bytes_budget"] = cached_reads(
                engine, "s3-fifo", plain_budget, trace, spec["warmup"]
            )
            result["replica_store"] = behind_replica_store(engine, budget, trace, spec["warmup"])
        engine.close()
    return result


def run_worker(spec: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Run one worker in a fresh process (clean memory figures); its JSON result."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, __file__, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    print(f"  {spec['label']}: {summary(result)}", flush=True)
    return result


def summary(result: dict[str, Any]) -> str:
    parts = [f"{result['puts_per_s']:,.0f} puts/s"]
    if "bytes_per_pair" in result:
        parts.append(f"{result['bytes_per_pair']:.0f} B/pair")
    if "gets_per_s" in result:
        parts.append(f"{result['gets_per_s']:,.0f} gets/s")
    if "cached" in result:
        cached = result["cached"]
        parts.append(f"cached {cached['gets_per_s']:,.0f} gets/s hit {cached['hit_ratio']:.3f}")
    if "raw" in result:
        overhead = result["raw"]["overhead"]
        parts.append(
            f"vs raw: load {overhead['load']:.2f}x update {overhead['update']:.2f}x"
            f" get {overhead['get']:.2f}x"
        )
    parts.append(f"{result['wall_seconds']} s")
    return ", ".join(parts)


if __name__ == "__main__":
    print(json.dumps(engine_worker(json.loads(sys.argv[1]))))
