"""Storage engines, codecs and the read cache, engine by engine, then on a cluster.

Engine level (each configuration in a fresh process, files in a temporary
directory):

* loads ``--pairs`` pairs (1,000,000 by default) through ``put``, calling
  ``flush`` after every 10,000, in a seeded random key order. Keys are
  ``user:NNNNNNNN`` (13 bytes); each record is what the kernel stores, a
  sibling set of one version packed with ``pack_versions``: a one-entry
  vector clock, a timestamp and a ~100-byte JSON-like string value, about
  133 bytes in all;
* reports the load rate (puts/s, flushes included), bytes per pair on disk
  (the allocated size of the engine's files after ``flush`` and ``close``,
  as ``du`` counts it, over the pairs), the process's memory growth over the
  load per pair (peak RSS from ``resource.getrusage``, and anonymous RSS
  from ``/proc/self/status``, which leaves out LMDB's file-backed map), and
  the rate of uniform random ``get`` calls;
* loads the same pairs through the engine's raw Python binding (a
  ``sqlite3`` table, LMDB transactions, a ``Rdict``, a ``SqliteDict``: the
  same keys, the same 8-byte position + record values, the same settings,
  a commit with the same sync every 10,000 writes, one ``get`` per read),
  then alternates engine and binding for ``ROUNDS`` rounds of 10,000
  overwrites and of uniform gets. Engine time over binding time, per
  operation, is the engine's overhead (load, update, get);
* reopens the engine behind a ``cached`` wrapper whose budget holds 10 % of
  the pairs (10 % of the pairs' charged size: key + record +
  ``ENTRY_OVERHEAD`` each) and replays a seeded Zipf(0.99) read trace over
  all keys: ``--warmup`` reads (by default 5 per pair: a cache's hit ratio
  is a steady-state figure, and with one read per pair the least popular
  cached keys have been seen about once, too few to tell them from the rest),
  then ``--reads`` measured ones (gets/s and the hit ratio of the measured
  reads).

Rows: the four disk engines in their batched mode (``group``; sqlitedict's
default, commit on flush without fsync), one ``sync`` row per engine with
``--sync-writes`` writes (at most ``--sync-seconds``), and the
``compressed`` wrapper over ``sqlite`` with each codec (threshold 0: these
records are below the default threshold of 256 bytes and would be stored
raw). Over ``lmdb`` the zipf trace is also replayed with each eviction
policy, with a budget of 10 % of the plain bytes (key + record, no
overhead), and through a ``ReplicaStore`` (the node's own decoded cache of
65,536 keys in front of the wrapper). Then each codec encodes and decodes
records of three sizes, without storage, for its ratio and cost.

Cluster level: ``dtk cluster up --nodes 3`` (127.0.0.1 only) with
``cached`` (10 % of the pairs, s3-fifo) over ``--cluster-engine`` (``lmdb``,
group durability), ``--cluster-pairs`` pairs loaded by three
``AsyncClient`` objects (one per node as first address) with
``--concurrency`` requests in flight,
a restart (so that the caches start empty), ``--cluster-warmup`` Zipf(0.99)
reads (5 per pair by default), then ``--cluster-reads`` measured ones; from
each node's ``/metrics`` before and after them, the share of its store
reads served from memory (its decoded-set cache, then the ``cached``
wrapper) and the wrapper's own hit ratio. The cluster is always brought
down.

Writes ``docs/benchmarks/storage_engines.json`` (every figure),
``docs/benchmarks/storage_engines_table.inc`` (the tables the docs include)
and ``docs/_static/bench_storage_engines.png``. ``--from-json`` redraws the
tables and the plot from the JSON. Run: ``.venv/bin/python
benchmarks/storage_engines.py`` (about 25 minutes on 2 CPUs; ``--pairs``
makes it shorter). Figures depend on the machine, its disk and what else
runs; the ratios within one run are the comparable part.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
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
    from dynamo_toolkit.plugin_manager import load_plugins

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
    from dynamo_toolkit.plugin_manager import load_plugins
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
        [sys.executable, __file__, "--worker", json.dumps(spec)],
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


# -- the engine-level run ---------------------------------------------------------------


def engine_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every engine-level configuration to measure, as worker specs."""
    common = {"pairs": args.pairs, "seed": args.seed, "gets": args.gets}
    reads = {"reads": args.reads, "warmup": args.warmup}
    rows: list[dict[str, Any]] = []
    for engine in ENGINES:
        params = {} if engine == "sqlitedict" else {"durability": "group"}
        durability = "commit on flush, no fsync" if engine == "sqlitedict" else "group"
        row = {"kind": "engine", "label": engine, "engine": engine, "params": params}
        row |= {"durability": durability, "codec": None, "binding": RAW_BINDING[engine]}
        row |= common | reads
        if engine == POLICY_ENGINE:
            row["policies"] = ["lru", "s3-fifo", "w-tinylfu"]
        rows.append(row)
        if engine == "rocksdb":
            # The engine's option that counts keys exactly, at a read per update.
            exact = row | {"label": "rocksdb (count exact)", "display": "rocksdb, count exact"}
            rows.append(exact | {"params": {"durability": "group", "count": "exact"}})
    for engine in ENGINES:
        if engine == "sqlitedict":
            params: dict[str, Any] = {"autocommit": True, "fsync": True}
            durability = "autocommit + fsync"
        else:
            params, durability = {"durability": "sync"}, "sync"
        rows.append(
            {
                "kind": "sync",
                "label": f"{engine} (sync)",
                "engine": engine,
                "params": params,
                "durability": durability,
                "codec": None,
                "pairs": args.sync_writes,
                "seed": args.seed,
                "load_only": True,
                "max_seconds": args.sync_seconds,
            }
        )
    for codec in CODECS:
        params = {
            "codec": codec,
            "threshold": 0,
            "inner": {"name": CODEC_ENGINE, "durability": "group"},
        }
        row = {"kind": "codec", "label": f"compressed {codec} / {CODEC_ENGINE}"}
        row |= {"engine": "compressed", "params": params, "durability": "group", "codec": codec}
        rows.append(row | common | reads)
    return rows


def run_engines(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every engine-level row, each with its ``result``."""
    rows = []
    for spec in engine_rows(args):
        wanted = "codecs" if spec["kind"] == "codec" else spec["engine"]
        if args.only and wanted not in args.only:
            continue
        rows.append(spec | {"result": run_worker(spec)})
    return rows


def big_record(index: int, items: int, seed: int) -> bytes:
    """A record whose value is a list of ``items`` JSON-like strings (~100 bytes each)."""
    from dynamo_toolkit.values import encode_value
    from dynamo_toolkit.versioning import Version, pack_versions
    from dynamo_toolkit.versioning.vector_clock import ClockEntry, VectorClock

    rng = random.Random(seed * 7919 + index)
    value = [
        f'{{"id":{index * items + i},"score":{rng.randrange(10**6)},'
        f'"email":"u{rng.randrange(10**7):07d}@example.com","tags":["{rng.choice(TAGS)}",'
        f'"{rng.choice(TAGS)}"]}}'
        for i in range(items)
    ]
    stamp = 1_767_225_600.0 + index / 1000.0
    clock = VectorClock((ClockEntry("n1", 1, stamp),))
    return pack_versions([Version(clock, encode_value(value), stamp)])  # type: ignore[no-any-return]


def codec_costs(seed: int, count: int = 5_000) -> list[dict[str, Any]]:
    """Each codec on records of three sizes: stored/given bytes, µs to encode and decode.

    Calls the ``compressed`` engine's own ``encode`` and ``decode`` (threshold
    0, so every record is tried), without any storage behind them.
    """
    from dynamo_toolkit_plugins.storage.compressed import CompressedStorage

    sets = {
        "loaded records": [record for _, _, record in records(range(count), seed)],
        "10 items": [big_record(i, 10, seed) for i in range(count)],
        "40 items": [big_record(i, 40, seed) for i in range(count)],
    }
    out = []
    for name, batch in sets.items():
        given = sum(len(record) for record in batch)
        for codec in CODECS:
            wrapper = CompressedStorage(inner="memory", codec=codec, threshold=0)
            started = time.perf_counter()
            stored = [wrapper.encode(record) for record in batch]
            encode = time.perf_counter() - started
            started = time.perf_counter()
            for blob in stored:
                wrapper.decode(blob)
            decode = time.perf_counter() - started
            out.append(
                {
                    "records": name,
                    "mean_bytes": given / len(batch),
                    "codec": codec,
                    "ratio": sum(len(blob) for blob in stored) / given,
                    "encode_us": encode / len(batch) * 1e6,
                    "decode_us": decode / len(batch) * 1e6,
                }
            )
    return out


# -- the cluster-level run ----------------------------------------------------------------


def free_base(ports: int) -> int:
    """A base port with ``ports`` free ports after it on 127.0.0.1."""
    from dynamo_toolkit_server.local_cluster import free_base_port

    return free_base_port(ports, start=31000, step=300)


def dtk(*args: str) -> str:
    """Run the ``dtk`` command line (from this interpreter's environment)."""
    command = [sys.executable, "-m", "dynamo_toolkit.cli", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dtk {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def metrics(http: str) -> dict[str, float]:
    """The ``dtk_*`` gauges and counters of one node (labelled series left out)."""
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("dtk_") and "{" not in line:
            name, _, value = line.partition(" ")
            values[name] = float(value)
    return values


async def drive(
    addresses: list[str], keys: Sequence[str], value_of: Callable[[str], str] | None, tasks: int
) -> float:
    """Put (``value_of`` given) or get every key with ``tasks`` concurrent requests; ops/s."""
    from dynamo_toolkit_server.client import AsyncClient

    # One client per node, so that every node coordinates a share of the requests.
    clients = [AsyncClient(addresses[i:] + addresses[:i]) for i in range(len(addresses))]
    position = 0

    async def worker(index: int) -> None:
        nonlocal position
        client = clients[index % len(clients)]
        while position < len(keys):
            key = keys[position]
            position += 1
            if value_of is None:
                read = await client.get(key)
                if not read.values:
                    raise RuntimeError(f"cluster lost {key!r}")
            else:
                await client.put(key, value_of(key))

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(i) for i in range(tasks)))
    finally:
        for client in clients:
            await client.close()
    return len(keys) / (time.perf_counter() - started)


def cluster_value(key: str) -> str:
    """The same shape of value as the engine-level records (~100 bytes)."""
    index = int(key.split(":")[1])
    rng = random.Random(index)
    return (
        f'{{"id":{index},"user":"user-{index:07d}","email":"u{index:07d}@example.com",'
        f'"score":{rng.randrange(10**6)},"tags":["{rng.choice(TAGS)}","{rng.choice(TAGS)}"]}}'
    )


def run_cluster(args: argparse.Namespace) -> dict[str, Any]:
    """Load and read a 3-node local cluster with a cached disk engine."""
    from dynamo_toolkit_plugins.storage.cached import ENTRY_OVERHEAD

    pairs = args.cluster_pairs
    sample = records(range(1000), args.seed)
    charged = sum(len(k) + len(r) + ENTRY_OVERHEAD for k, _, r in sample) / len(sample)
    budget = int(CACHE_FRACTION * pairs * charged)  # every node holds every key (N=3)
    engine = {"name": args.cluster_engine, "durability": "group"}
    toml = (
        "[storage_engine]\n"
        'name = "cached"\n'
        f"budget_bytes = {budget}\n"
        'policy = "s3-fifo"\n'
        f'inner = {{name = "{engine["name"]}", durability = "{engine["durability"]}"}}\n'
    )
    order = load_order(pairs, args.seed)
    load_keys = [key_of(i).decode() for i in order]
    warmup = 5 * pairs if args.cluster_warmup is None else args.cluster_warmup
    trace = [key.decode() for key in zipf_keys(pairs, warmup + args.cluster_reads, args.seed)]
    warm_keys, read_keys = trace[:warmup], trace[warmup:]
    result: dict[str, Any] = {
        "nodes": 3,
        "n_r_w": [3, 2, 2],
        "engine": engine,
        "policy": "s3-fifo",
        "budget_bytes": budget,
        "pairs": pairs,
        "warmup_reads": len(warm_keys),
        "reads": len(read_keys),
        "concurrency": args.concurrency,
        "config": toml,
    }
    with tempfile.TemporaryDirectory(prefix="dtk-bench-cluster-") as tmp:
        directory = Path(tmp) / "cluster"
        config = Path(tmp) / "storage.toml"
        config.write_text(toml)
        base = free_base(30)
        up = ["cluster", "up", "--nodes", "3", "--dir", str(directory), "--json"]
        try:
            nodes = json.loads(dtk(*up, "--base-port", str(base), "--config", str(config)))
            addresses = [node["native"] for node in nodes["nodes"]]
            print(f"  cluster up; loading {pairs:,} pairs", flush=True)
            result["puts_per_s"] = asyncio.run(
                drive(addresses, load_keys, cluster_value, args.concurrency)
            )
            # Restart: decoded caches, storage caches and their counters start empty,
            # so the hit ratios below count the reads only.
            dtk("cluster", "down", "--dir", str(directory))
            nodes = json.loads(dtk("cluster", "up", "--dir", str(directory), "--json"))
            addresses = [node["native"] for node in nodes["nodes"]]
            https = [node["http"] for node in nodes["nodes"]]
            if warm_keys:
                print(f"  restarted; {len(warm_keys):,} zipf reads of warm-up", flush=True)
                asyncio.run(drive(addresses, warm_keys, None, args.concurrency))
            before = [metrics(http) for http in https]
            print(f"  {len(read_keys):,} zipf reads measured", flush=True)
            result["gets_per_s"] = asyncio.run(drive(addresses, read_keys, None, args.concurrency))
            result["per_node"] = {}
            for index, http in enumerate(https):
                scraped = metrics(http)

                def delta(name: str, now: dict[str, float] = scraped, i: int = index) -> float:
                    return now.get(name, 0.0) - before[i].get(name, 0.0)

                lookups = delta("dtk_store_lookups_total")
                decoded = delta("dtk_store_decoded_hits_total")
                wrapper = delta("dtk_storage_cache_hits_total")
                result["per_node"][f"n{index + 1}"] = {
                    # Over the measured reads: the decoded cache, then the wrapper.
                    "memory_hit_ratio": (decoded + wrapper) / lookups if lookups else None,
                    "decoded_hit_ratio": decoded / lookups if lookups else None,
                    "cache_hit_ratio": wrapper / (lookups - decoded) if lookups > decoded else None,
                    "cache_bytes": scraped.get("dtk_storage_cache_bytes"),
                    "stored_keys": scraped.get("dtk_stored_keys"),
                }
        finally:
            if (directory / "cluster.json").exists():
                dtk("cluster", "down", "--dir", str(directory))
        result["bytes_per_pair_per_node"] = {
            name: disk_bytes(directory / name) / pairs for name in ("n1", "n2", "n3")
        }
    print(f"  cluster: {json.dumps({k: result[k] for k in ('puts_per_s', 'gets_per_s')})}")
    return result


# -- outputs ----------------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _display(row: dict[str, Any]) -> str:
    """How tables and plots name an engine row (a variant's own label if it has one)."""
    return str(row.get("display", row["engine"]))


def table(results: dict[str, Any]) -> str:
    """The rst tables the docs include: engines, overheads, sync rows, codecs, cache, cluster."""
    rows = results["engines"]
    lines = [
        ".. list-table:: Engines, batched durability"
        f" ({results['pairs']:,} pairs; reads through ``cached`` at 10 % of the pairs, s3-fifo)",
        "   :header-rows: 1",
        "",
        "   * - engine",
        "     - durability",
        "     - puts/s",
        "     - bytes/pair on disk (closed; reopened)",
        "     - memory growth, bytes/pair (peak RSS; anonymous)",
        "     - gets/s, uniform, no cache",
        "     - gets/s, zipf, cached",
        "     - hit ratio",
    ]
    for row in rows:
        if row["kind"] != "engine":
            continue
        r = row["result"]
        lines += [
            f"   * - ``{_display(row)}``",
            f"     - {row['durability']}",
            f"     - {_rate(r['puts_per_s'])}",
            f"     - {r['bytes_per_pair']:.0f}; {r['bytes_per_pair_reopened']:.0f}",
            f"     - {r['rss_growth_per_pair']:.0f}; {r['anon_growth_per_pair']:.0f}",
            f"     - {_rate(r['gets_per_s'])}",
            f"     - {_rate(r['cached']['gets_per_s'])}",
            f"     - {r['cached']['hit_ratio']:.3f}",
        ]
    lines += [
        "",
        ".. list-table:: Time per operation over the raw binding's"
        " (1.00x: no overhead; target: 1.5x or less)",
        "   :header-rows: 1",
        "",
        "   * - engine",
        "     - raw binding",
        "     - load (inserts): puts/s engine / raw",
        "     - load ratio",
        f"     - updates (best of {ROUNDS}): puts/s engine / raw",
        "     - update ratio",
        f"     - gets (best of {ROUNDS}): gets/s engine / raw",
        "     - get ratio",
        "     - bytes/pair engine (reopened) / raw",
    ]
    for row in rows:
        if row["kind"] != "engine" or "raw" not in row["result"]:
            continue
        r = row["result"]
        o = r["raw"]["overhead"]
        lines += [
            f"   * - ``{_display(row)}``",
            f"     - ``{r['raw']['binding']}``",
            f"     - {_rate(r['puts_per_s'])} / {_rate(r['raw']['puts_per_s'])}",
            f"     - **{o['load']:.2f}x**",
            f"     - {_rate(o['engine_updates_per_s'])} / {_rate(o['raw_updates_per_s'])}",
            f"     - **{o['update']:.2f}x**",
            f"     - {_rate(o['engine_gets_per_s'])} / {_rate(o['raw_gets_per_s'])}",
            f"     - **{o['get']:.2f}x**",
            f"     - {r['bytes_per_pair_reopened']:.0f} / {r['raw']['bytes_per_pair']:.0f}",
        ]
    lines += [
        "",
        ".. list-table:: Sync durability (one commit and sync per write)",
        "   :header-rows: 1",
        "",
        "   * - engine",
        "     - durability",
        "     - writes",
        "     - puts/s",
    ]
    for row in rows:
        if row["kind"] == "sync":
            r = row["result"]
            lines += [
                f"   * - ``{_display(row)}``",
                f"     - {row['durability']}",
                f"     - {r['pairs']:,}",
                f"     - {_rate(r['puts_per_s'])}",
            ]
    codec_rows = [row for row in rows if row["kind"] == "codec"]
    if codec_rows:
        base = codec_rows[0]["result"]
        lines += [
            "",
            f".. list-table:: Codecs: ``compressed`` (threshold 0) over ``{CODEC_ENGINE}``, group",
            "   :header-rows: 1",
            "",
            "   * - codec",
            "     - stored / given bytes",
            "     - bytes/pair on disk",
            "     - puts/s",
            "     - gets/s (uniform)",
            "     - gets/s (zipf, cached)",
        ]
        for row in codec_rows:
            r = row["result"]
            size = r["bytes_per_pair"] / base["bytes_per_pair"]
            lines += [
                f"   * - ``{row['codec']}``",
                f"     - {r['compression_ratio']:.3f}",
                f"     - {r['bytes_per_pair']:.0f} ({size:.2f}x)",
                f"     - {_rate(r['puts_per_s'])} ({r['puts_per_s'] / base['puts_per_s']:.2f}x)",
                f"     - {_rate(r['gets_per_s'])} ({r['gets_per_s'] / base['gets_per_s']:.2f}x)",
                f"     - {_rate(r['cached']['gets_per_s'])}",
            ]
    costs = results.get("codec_costs", [])
    if costs:
        lines += [
            "",
            ".. list-table:: Codec cost per record: ``CompressedStorage.encode`` / ``decode``"
            " (threshold 0; stored bytes include the header)",
            "   :header-rows: 1",
            "",
            "   * - records",
            "     - codec",
            "     - stored / given bytes",
            "     - µs to encode",
            "     - µs to decode",
        ]
        for cost in costs:
            lines += [
                f"   * - {cost['records']} (~{cost['mean_bytes']:,.0f} B)",
                f"     - ``{cost['codec']}``",
                f"     - {cost['ratio']:.3f}",
                f"     - {cost['encode_us']:.1f}",
                f"     - {cost['decode_us']:.1f}",
            ]
    policy_row = next((row for row in rows if "policies" in row["result"]), None)
    if policy_row:
        r = policy_row["result"]
        lines += [
            "",
            f".. list-table:: Cache policies over ``{policy_row['engine']}``"
            f" (zipf 0.99, {results['pairs']:,} keys; optimum {results['a0_bound']:.3f})",
            "   :header-rows: 1",
            "",
            "   * - policy",
            "     - budget",
            "     - entries",
            "     - hit ratio",
            "     - gets/s",
        ]
        cases = [(name, "10 % of pairs", c) for name, c in r["policies"].items()]
        cases.append(("s3-fifo", "10 % of plain bytes", r["plain_bytes_budget"]))
        for name, budget, c in cases:
            lines += [
                f"   * - ``{name}``",
                f"     - {budget} ({c['budget_bytes'] / 2**20:.1f} MiB)",
                f"     - {c['entries']:,}",
                f"     - {c['hit_ratio']:.3f}",
                f"     - {_rate(c['gets_per_s'])}",
            ]
    cluster = results.get("cluster")
    if cluster:
        lines += [
            "",
            ".. list-table:: Cluster: 3 nodes, N=3 R=2 W=2,"
            f" ``cached`` over ``{cluster['engine']['name']}``",
            "   :header-rows: 1",
            "",
            "   * - pairs",
            "     - puts/s",
            "     - zipf gets/s",
            "     - reads served from memory n1 / n2 / n3",
            "     - of which by the ``cached`` wrapper (its hit ratio)",
            "     - bytes/pair on disk, per node",
        ]

        def per_node(field: str) -> str:
            values = [node.get(field) for node in cluster["per_node"].values()]
            return " / ".join("-" if v is None else f"{v:.3f}" for v in values)

        size = sum(cluster["bytes_per_pair_per_node"].values()) / 3
        lines += [
            f"   * - {cluster['pairs']:,}",
            f"     - {_rate(cluster['puts_per_s'])}",
            f"     - {_rate(cluster['gets_per_s'])}",
            f"     - {per_node('memory_hit_ratio')}",
            f"     - {per_node('cache_hit_ratio')}",
            f"     - {size:.0f}",
        ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Bytes/pair and load rate per engine and codec; hit ratio per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in results["engines"] if row["kind"] in ("engine", "codec")]
    labels = [
        _display(row) if row["kind"] == "engine" else f"{CODEC_ENGINE}+{row['codec']}"
        for row in rows
    ]
    colors = ["tab:blue" if row["kind"] == "engine" else "tab:green" for row in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    on_disk = [row["result"]["bytes_per_pair_reopened"] for row in rows]
    sizes = axes[0].barh(labels, on_disk, color=colors)
    axes[0].bar_label(sizes, fmt="%.0f", padding=2, fontsize=8)
    axes[0].set_xlabel("bytes per pair on disk (closed, reopened, closed)")
    axes[0].invert_yaxis()
    rates = [row["result"]["puts_per_s"] / 1000 for row in rows]
    bars = axes[1].barh(labels, rates, color=colors)
    axes[1].bar_label(bars, fmt="%.0fk", padding=2, fontsize=8)
    axes[1].set_xlabel("load rate, thousand puts/s (flush every 10,000)")
    axes[1].invert_yaxis()
    axes[1].set_yticklabels([])
    for axis in axes[:2]:
        axis.margins(x=0.15)
    policy_row = next((row for row in rows if "policies" in row["result"]), None)
    if policy_row:
        r = policy_row["result"]
        cases = {name: c["hit_ratio"] for name, c in r["policies"].items()}
        cases["s3-fifo,\n10 % of\nplain bytes"] = r["plain_bytes_budget"]["hit_ratio"]
        cases["s3-fifo behind\nReplicaStore\n(combined)"] = r["replica_store"]["combined_hit_ratio"]
        bars = axes[2].bar(list(cases), list(cases.values()), color="tab:orange")
        axes[2].bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
        axes[2].axhline(results["a0_bound"], color="black", linestyle="--", linewidth=0.8)
        axes[2].axhline(0.8, color="tab:red", linestyle=":", linewidth=0.8)
        axes[2].set_ylim(0.5, max(0.9, max(cases.values()) + 0.05))
        axes[2].set_ylabel("hit ratio")
        axes[2].tick_params(axis="x", labelsize=8)
        axes[2].set_title(
            f"zipf 0.99, cache = 10 % of {results['pairs']:,} pairs\n"
            f"dashed: optimum {results['a0_bound']:.3f}; dotted: 0.8 target",
            fontsize=9,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(results: dict[str, Any], out: Path, image: Path) -> None:
    """The JSON, the docs table and the plot."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "storage_engines.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "storage_engines_table.inc").write_text(table(results))
    try:
        plot(results, image)
    except ImportError:
        print("matplotlib not installed: no plot (pip install -e '.[bench]')")


def main(argv: Sequence[str] | None = None) -> None:
    """Run everything (or one worker) and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000, help="pairs per engine row")
    parser.add_argument("--gets", type=int, default=100_000, help="uniform gets per phase")
    parser.add_argument(
        "--warmup", type=int, default=None, help="zipf reads not counted (default: 5 per pair)"
    )
    parser.add_argument("--reads", type=int, default=500_000, help="zipf reads measured")
    parser.add_argument("--sync-writes", type=int, default=5_000)
    parser.add_argument("--sync-seconds", type=float, default=20.0, help="cap per sync row")
    parser.add_argument("--cluster-pairs", type=int, default=2_000_000)
    parser.add_argument(
        "--cluster-warmup", type=int, default=None, help="zipf reads before measuring (5 per pair)"
    )
    parser.add_argument("--cluster-reads", type=int, default=200_000)
    parser.add_argument("--cluster-engine", default="lmdb")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--only", nargs="*", help="engines (and 'codecs') to run; for trials")
    parser.add_argument("--no-cluster", action="store_true")
    parser.add_argument("--no-engines", action="store_true", help="cluster only; for trials")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "docs" / "_static" / "bench_storage_engines.png"
    )
    parser.add_argument(
        "--from-json", action="store_true", help="Only redraw the table and plot from --out."
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = 5 * args.pairs
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(engine_worker(spec)))
        return
    if args.from_json:
        results = json.loads((args.out / "storage_engines.json").read_text())
        write_outputs(results, args.out, args.plot)
        return
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "loadavg_at_start": os.getloadavg(),
        },
        "pairs": args.pairs,
        "default_pairs": 1_000_000,
        "seed": args.seed,
        "skew": SKEW,
        "cache_fraction": CACHE_FRACTION,
        "flush_every": CHUNK,
        "gets": args.gets,
        "zipf_warmup": args.warmup,
        "zipf_reads": args.reads,
        "a0_bound": round(ZipfSampler(args.pairs, SKEW).top_mass(int(args.pairs * 0.1)), 4),
        "a0_bound_100k": round(ZipfSampler(100_000, SKEW).top_mass(10_000), 4),
    }
    print(f"engine level, {args.pairs:,} pairs per row", flush=True)
    results["engines"] = [] if args.no_engines else run_engines(args)
    results["codec_costs"] = codec_costs(args.seed)
    if not args.no_cluster:
        print("cluster level", flush=True)
        results["cluster"] = run_cluster(args)
        results["cluster"]["a0_bound"] = round(
            ZipfSampler(args.cluster_pairs, SKEW).top_mass(args.cluster_pairs // 10), 4
        )
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    print(f"done in {results['wall_seconds']} s")
    if not args.no_write:
        write_outputs(results, args.out, args.plot)
    print(table(results))


if __name__ == "__main__":
    main()
