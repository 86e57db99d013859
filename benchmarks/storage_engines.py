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
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "reference_server"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cache_policies import ZipfSampler  # noqa: E402
from storage_engines_report import table, write_outputs  # noqa: E402
from storage_engines_workers import (  # noqa: E402
    CACHE_FRACTION,
    CHUNK,
    CODEC_ENGINE,
    CODECS,
    ENGINES,
    POLICY_ENGINE,
    RAW_BINDING,
    SKEW,
    TAGS,
    disk_bytes,
    key_of,
    load_order,
    records,
    run_worker,
    zipf_keys,
)

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

    return free_base_port(ports, start=21000, step=300)


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
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = 5 * args.pairs
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
