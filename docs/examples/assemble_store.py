"""Assemble your own store: pick components by name, start a cluster, use it.

The script behind the tutorial "Assemble your own store" of the documentation.
It runs a 5-node store in this process, on the simulated network and on
virtual time, so it finishes in about a second and prints the same lines on
every run. Run it with ``python docs/examples/assemble_store.py``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import PairTooLargeError, QuorumNotReachedError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.plugin_host import PluginHost, load_plugins
from dynamo_toolkit.testing import run_virtual

# -- 1. The store, described as data: one section per component, by name ------
STORE = {
    "store": {"n": 3, "r": 2, "w": 2, "max_pair_bytes": 4096},
    "partitioner": {"name": "ring", "vnodes_per_capacity": 16},
    "conflict_resolver": "vector-clock",
    "storage_engine": {"name": "sqlitedict", "journal_mode": "WAL"},
    "transport": {"name": "simulated", "min_delay": 0.001, "max_delay": 0.004},
}


def merge(values: tuple[Any, ...]) -> list[str]:
    """The application's own reconciliation: the union of the to-do lists."""
    return sorted({item for value in values for item in value})


async def tour(host: PluginHost, config: StoreConfig, data_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    cluster = await Cluster.start(5, config, host=host, seed=42, data_dir=data_dir)
    async with cluster:
        print(f"started nodes {', '.join(cluster.nodes)} (N=3, R=2, W=2)")

        # -- 3. Writes and reads ------------------------------------------------
        key = "todo:ada"
        first, second, third = cluster.replicas(key)
        print(f"replicas of {key!r}: {first}, {second}, {third}")
        put = await cluster.put(key, ["buy milk"])
        print(f"put {key} -> acknowledged by {put.acknowledged} replicas")
        got = await cluster.get(key)
        print(f"get {key} -> {got.value} ({got.replies} replies)")

        # -- 4. Two coordinators, one context: siblings --------------------------
        await cluster.put(key, [*got.value, "call Bob"], got.context, via=first)
        await cluster.put(key, [*got.value, "fix bike"], got.context, via=second)
        siblings = await cluster.get(key)
        print(f"two writes from the same context via {first} and {second}:")
        for value in siblings.values:
            print(f"    sibling {value}")
        resolved = merge(siblings.values)
        await cluster.put(key, resolved, siblings.context)
        print(f"resolved with the context -> {(await cluster.get(key)).value}")

        # -- 5. A node down: R=W=2 still answers ----------------------------------
        await cluster.stop_node(first)
        got = await cluster.get(key)
        await cluster.put(key, [*got.value, "water plants"], got.context)
        print(f"stopped {first}; R=W=2 still works -> {(await cluster.get(key)).value}")
        await cluster.restart_node(first)
        got = await cluster.get(key, r=3)
        await cluster.settle()
        repairs = sum(node.stats.read_repairs for node in cluster.nodes.values())
        print(f"restarted {first}; an R=3 read repaired {repairs} stale replica")

        # -- 6. A partition, then healing ------------------------------------------
        cluster.partition([first])
        print(f"partitioned {first} away from the other nodes")
        started = loop.time()
        try:
            await cluster.put(key, [*got.value, "minority"], got.context, via=first)
        except QuorumNotReachedError as exc:
            print(f"  write via {first} fails after {loop.time() - started:.1f} s: {exc}")
        await asyncio.sleep(3)  # virtual seconds: the failure detectors notice
        started = loop.time()
        try:
            await cluster.get(key, via=first)
        except QuorumNotReachedError as exc:
            print(f"  read via {first} fails after {loop.time() - started:.1f} s: {exc}")
        put = await cluster.put(key, [*got.value, "majority"], got.context, via=second)
        print(f"  write via {second} succeeds: acknowledged by {put.acknowledged} replicas")
        cluster.heal()
        await asyncio.sleep(1)  # heartbeats resume
        after = await cluster.get(key, r=3, via=first)
        print(f"healed; an R=3 read finds {len(after.values)} siblings:")
        for value in after.values:
            print(f"    sibling {value}")
        await cluster.put(key, merge(after.values), after.context)
        print(f"resolved with the context -> {(await cluster.get(key, r=3)).value}")

        # -- 7. The configured limits hold ------------------------------------------
        try:
            await cluster.put("big", "x" * 5000)
        except PairTooLargeError as exc:
            print(f"too large: {exc}")
        await cluster.settle()
        print(f"virtual time elapsed: {loop.time():.3f} s")


async def last_write_wins(host: PluginHost, config: StoreConfig) -> None:
    async with await Cluster.start(5, config, host=host, seed=42) as cluster:
        key = "todo:ada"
        first, second, _ = cluster.replicas(key)
        await cluster.put(key, ["buy milk"])
        got = await cluster.get(key)
        await cluster.put(key, [*got.value, "call Bob"], got.context, via=first)
        await cluster.put(key, [*got.value, "fix bike"], got.context, via=second)
        print(f"lww: the same two writes leave {list((await cluster.get(key)).values)}")


def main() -> None:
    # -- 2. Load every plugin installed (the built-ins are plugins too) ------------
    host = load_plugins()
    config = StoreConfig.from_dict(STORE)
    for interface, choice in config.components.items():
        spec = host.registry.get(interface, choice.name)  # UnknownComponentError if missing
        print(f"{interface}: {choice.name} {dict(choice.params)} from plugin {spec.plugin!r}")
    with tempfile.TemporaryDirectory(prefix="dtk-tutorial-") as tmp:
        data_dir = Path(tmp)
        run_virtual(tour(host, config, data_dir))
        files = sorted(str(path.relative_to(data_dir)) for path in data_dir.rglob("*.sqlite"))
        print(f"sqlitedict files: {', '.join(files)}")

    # -- 8. Swap one component, keep the rest ----------------------------------------
    lww = config.with_components(conflict_resolver="lww", storage_engine="memory")
    run_virtual(last_write_wins(host, lww))


if __name__ == "__main__":
    main()
