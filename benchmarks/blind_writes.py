"""Blind writes (no context) to one key: what each resolver's put costs after 200 of them.

An in-process node (N=R=W=1, memory engine and transport, real time) takes
``--writes`` puts without a context to each of ``--keys`` keys, one after
another, and this is repeated ``--repeat`` times on a fresh node per
resolver. Reports the median time of one put over all writes and over the
last tenth (the median over the runs of those medians), the siblings a read
then returns, and both times as ratios to ``vector-clock`` in the same run.
Writes ``docs/benchmarks/blind_writes.json``. Run:
``.venv/bin/python benchmarks/blind_writes.py`` (well under a minute).

Why: under ``dvv`` with ``blind_writes = "sibling"`` every blind write is a
new sibling, and every later request on the key pays for all of them; the
default (``"supersede"``) replaces what the node holds, as ``SET`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from dynamo_toolkit import Cluster

ROOT = Path(__file__).resolve().parent.parent
#: Label -> conflict_resolver section (None: the store's default).
RESOLVERS: dict[str, Any] = {
    "default (dvv, blind_writes = supersede)": None,
    "dvv, blind_writes = sibling": {"name": "dvv", "blind_writes": "sibling"},
    "vector-clock": "vector-clock",
    "lww": "lww",
}
REFERENCE = "vector-clock"


async def _run(resolver: Any, keys: int, writes: int) -> tuple[float, float, int]:
    """Median seconds per put over all writes and over the last tenth; siblings of key 0.

    Medians of single puts, not totals: on a shared machine a few puts
    delayed by other jobs would otherwise dominate.
    """
    config: dict[str, Any] = {"store": {"n": 1, "r": 1, "w": 1}, "storage_engine": "memory"}
    if resolver is not None:
        config["conflict_resolver"] = resolver
    async with await Cluster.start(1, config, transport="memory") as cluster:
        node = cluster.node("n1")
        tail = max(1, writes // 10)
        times: list[float] = []
        for index in range(writes):
            for key in range(keys):
                start = time.perf_counter()
                await node.put(f"key-{key}", f"value-{index}")
                times.append(time.perf_counter() - start)
        siblings = len((await node.get("key-0")).values)
    last = times[-tail * keys :]
    return statistics.median(times), statistics.median(last), siblings


def main() -> None:
    """Run every resolver and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=9, help="Runs; figures are medians.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    # One unmeasured run first (imports, first allocations), then the
    # resolvers take turns, so a drift of the machine hits them all alike.
    asyncio.run(_run(None, args.keys, args.writes))
    measured: dict[str, list[tuple[float, float, int]]] = {label: [] for label in RESOLVERS}
    for _ in range(args.repeat):
        for label, resolver in RESOLVERS.items():
            measured[label].append(asyncio.run(_run(resolver, args.keys, args.writes)))
    figures: dict[str, dict[str, Any]] = {}
    for label, runs in measured.items():
        figures[label] = {
            "us_per_put": statistics.median(r[0] for r in runs) * 1e6,
            "us_per_put_last_tenth": statistics.median(r[1] for r in runs) * 1e6,
            "siblings": runs[-1][2],
        }
    reference = figures[REFERENCE]
    for entry in figures.values():
        entry["ratio"] = entry["us_per_put"] / reference["us_per_put"]
        entry["ratio_last_tenth"] = (
            entry["us_per_put_last_tenth"] / reference["us_per_put_last_tenth"]
        )
    results = {
        "machine": {
            "python": platform.python_version(),
            "dynamo-toolkit": version("dynamo-toolkit"),
        },
        "keys": args.keys,
        "writes": args.writes,
        "repeat": args.repeat,
        "results": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "blind_writes.json").write_text(json.dumps(results, indent=2) + "\n")
    for label, entry in figures.items():
        print(
            f"{label:42s} {entry['us_per_put']:9.1f} us/put ({entry['ratio']:6.2f}x), last tenth "
            f"{entry['us_per_put_last_tenth']:9.1f} us ({entry['ratio_last_tenth']:6.2f}x), "
            f"{entry['siblings']} siblings"
        )


if __name__ == "__main__":
    main()
