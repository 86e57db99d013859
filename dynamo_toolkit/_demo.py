"""``dtk demo``: a narrated tour of an in-process cluster (what ``make demo`` shows)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dynamo_toolkit.errors import QuorumNotReachedError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.virtual_time import run_virtual

__all__ = ["run_demo"]


async def _tour(nodes: int, seed: int, echo: Callable[[str], object]) -> None:
    config = {"store": {"n": 3, "r": 2, "w": 2}}
    loop = asyncio.get_running_loop()
    async with await Cluster.start(nodes, config, transport="simulated", seed=seed) as cluster:
        echo(f"Started {nodes} nodes (N=3, R=2, W=2) on a simulated network, seed {seed}.")
        key = "cart:alice"
        echo(f"Replicas of {key!r}: {', '.join(cluster.replicas(key))}")
        put = await cluster.put(key, ["apple"])
        echo(f"put {key} = ['apple']: acknowledged by {put.acknowledged} replicas")

        first, second = cluster.replicas(key)[:2]
        got = await cluster.get(key)
        await cluster.put(key, [*got.value, "pear"], got.context, via=first)
        await cluster.put(key, [*got.value, "fig"], got.context, via=second)
        siblings = await cluster.get(key)
        echo(f"two writers from the same context via {first} and {second} -> siblings:")
        for value in siblings.values:
            echo(f"    {value}")
        merged = sorted({item for value in siblings.values for item in value})
        await cluster.put(key, merged, siblings.context)
        echo(f"client merges them and writes back with the context -> {merged}")

        down = cluster.replicas(key)[0]
        await cluster.stop_node(down)
        await cluster.put(key, [*merged, "kiwi"], (await cluster.get(key)).context)
        echo(f"stopped {down}; R=W=2 still works: {(await cluster.get(key)).value}")

        second_down = cluster.replicas(key)[1]
        await cluster.stop_node(second_down)
        try:
            await cluster.put(key, ["lost?"], w=2)
        except QuorumNotReachedError as exc:
            echo(f"stopped {second_down} too; a W=2 write fails clearly: {exc}")

        await cluster.restart_node(down)
        await cluster.restart_node(second_down)
        result = await cluster.get(key, r=3)
        await cluster.settle()
        echo(f"restarted both; an R=3 read returns {len(result.values)} sibling(s):")
        for value in result.values:
            echo(f"    {value}")
        echo(
            "  (a failed write is not rolled back: the replica that took 'lost?' kept it,"
            " as in Dynamo, and it is concurrent with the cart)"
        )
        stats = {n: node.stats.read_repairs for n, node in cluster.nodes.items()}
        echo(f"read repairs per coordinator: {stats}")
        echo(f"virtual time elapsed: {loop.time():.3f} s")


def run_demo(nodes: int = 5, seed: int = 7, echo: Callable[[str], object] = print) -> None:
    """Run the tour on virtual time and print each step with ``echo``."""
    run_virtual(_tour(nodes, seed, echo))
