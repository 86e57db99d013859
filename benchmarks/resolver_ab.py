"""The default resolver against vector-clock on one node's RESP path, Redis as reference.

Starts Redis and a 1-node dtk cluster (N=1, memory engine) per resolver, in
turns (``--rounds`` times, so a drift of a shared machine hits each alike),
and drives each with ``redis-benchmark`` (``SET`` then ``GET``, 50 clients,
unpipelined): with random keys out of 10,000 as ``make bench`` does, and on
one hot key. Records ops/s, the ratio to Redis in the same round, and the
server's CPU time per request, which does not depend on what else the
machine runs. Writes ``docs/benchmarks/resolver_ab.json``. Run:
``.venv/bin/python benchmarks/resolver_ab.py`` (about 3 minutes; needs
redis-server and redis-benchmark).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "reference_server"))

import reference_server as bench  # noqa: E402
from dynamo_toolkit_server.local_cluster import plan_cluster, start_cluster, stop_cluster  # noqa: E402

#: Label -> conflict_resolver section (None: the store's default).
RESOLVERS: dict[str, Any] = {"default (dvv)": None, "vector-clock": "vector-clock"}
KEYS = ("random", "hot")
TESTS = ("SET", "GET")


def _run(port: int, pids: list[int], requests: int, keys: str) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for test in TESTS:
        command = bench._benchmark_command(port, test.lower(), requests, 50)
        if keys == "hot":  # without -r every request names the same key
            at = command.index("-r")
            del command[at : at + 2]
        before = bench.cpu_seconds(pids)
        out = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
        row = next(csv.DictReader(io.StringIO(out.stdout)))
        cpu_us = (bench.cpu_seconds(pids) - before) / requests * 1e6
        figures[test] = {"rps": float(row["rps"]), "cpu_us": cpu_us}
    return figures


def main() -> None:
    """Run the rounds and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        port = bench.free_base(1)
        redis = bench.start_redis(port)
        try:
            figures = {"redis": {k: _run(port, [redis.pid], args.requests, k) for k in KEYS}}
        finally:
            redis.terminate()
            redis.wait(10)
        for label, resolver in RESOLVERS.items():
            config: dict[str, Any] = {"store": {}}
            if resolver is not None:
                config["conflict_resolver"] = resolver
            with tempfile.TemporaryDirectory(prefix="dtk-ab-") as tmp:
                directory = Path(tmp)
                plan = plan_cluster(
                    1, bench.free_base(10), n=1, r=1, w=1, config=config, storage="memory"
                )
                rows = start_cluster(directory, plan)
                try:
                    node_port = int(rows[0]["resp"].rsplit(":", 1)[1])
                    pids = [int(row["pid"]) for row in rows]
                    figures[label] = {k: _run(node_port, pids, args.requests, k) for k in KEYS}
                finally:
                    stop_cluster(directory)
        rounds.append(figures)
    summary: dict[str, Any] = {}
    for label in ("redis", *RESOLVERS):
        summary[label] = {
            keys: {
                test: {
                    "rps": statistics.median(r[label][keys][test]["rps"] for r in rounds),
                    "ratio_to_redis": statistics.median(
                        r[label][keys][test]["rps"] / r["redis"][keys][test]["rps"] for r in rounds
                    ),
                    "cpu_us": statistics.median(r[label][keys][test]["cpu_us"] for r in rounds),
                }
                for test in TESTS
            }
            for keys in KEYS
        }
    results = {
        "machine": {"cpus": bench.os.cpu_count(), "python": platform.python_version()},
        "requests": args.requests,
        "rounds": rounds,
        "medians": summary,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "resolver_ab.json").write_text(json.dumps(results, indent=2) + "\n")
    for label, by_keys in summary.items():
        for keys, by_test in by_keys.items():
            for test, entry in by_test.items():
                print(
                    f"{label:14s} {keys:6s} {test}: {entry['rps']:9.0f} ops/s, "
                    f"{entry['ratio_to_redis']:.3f} of Redis, {entry['cpu_us']:5.1f} us CPU/request"
                )


if __name__ == "__main__":
    main()
