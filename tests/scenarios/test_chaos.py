"""Seeded fault injection on the simulated network: nothing acknowledged is lost.

Crashes and restarts, partitions that heal, message loss, duplication and
delay, and slow nodes, all drawn from one seed while clients write. After the
faults stop and the cluster heals, every acknowledged write (W=2) must read
back, and every partition's replicas must hold identical Merkle roots.
A failing run prints its seed; replay it with ``DTK_CHAOS_SEED=<seed>``.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import pytest

from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.testing import run_virtual

SEEDS = [int(os.environ["DTK_CHAOS_SEED"])] if "DTK_CHAOS_SEED" in os.environ else [1, 2, 3, 4]
CONFIG: dict[str, Any] = {
    "store": {
        "n": 3,
        "r": 2,
        "w": 2,
        "hint_delivery_interval": 1.0,
        "anti_entropy_interval": 30.0,
        "anti_entropy_pause": 0.01,
    },
    "failure_detector": {"name": "timeout", "timeout": 2.0},
}
NODES = [f"n{i}" for i in range(1, 6)]
CHAOS_SECONDS = 120.0


async def inject_faults(cluster: Cluster, rng: random.Random, log: list[str]) -> None:
    """Every few seconds, one fault; at most two nodes down at a time."""
    network: Any = cluster.network
    clock = cluster.node("n1").clock
    start = clock.monotonic()
    while clock.monotonic() - start < CHAOS_SECONDS:
        await clock.sleep(rng.uniform(1.0, 6.0))
        down = [n for n in NODES if not cluster.node(n).running]
        action = rng.choice(["crash", "restart", "partition", "heal", "lossy", "calm", "slow"])
        if action == "crash" and len(down) < 2:
            victim = rng.choice([n for n in NODES if n not in down])
            await cluster.stop_node(victim)
        elif action == "restart" and down:
            victim = rng.choice(down)
            await cluster.restart_node(victim)
        elif action == "partition":
            cut = rng.sample(NODES, rng.choice([1, 2]))
            cluster.partition(cut, [n for n in NODES if n not in cut])
            victim = ",".join(cut)
        elif action == "heal":
            cluster.heal()
            victim = "-"
        elif action == "lossy":
            network.drop, network.duplicate = rng.uniform(0.0, 0.2), rng.uniform(0.0, 0.1)
            victim = f"{network.drop:.2f}"
        elif action == "calm":
            network.drop = network.duplicate = 0.0
            victim = "-"
        elif action == "slow":
            victim = rng.choice(NODES)
            network.slow_down(victim, rng.choice([0.0, 0.05, 0.3]))
        else:
            continue
        log.append(f"{clock.monotonic() - start:7.2f}s {action} {victim}")


async def write_unique_keys(
    cluster: Cluster, rng: random.Random, acknowledged: dict[str, int], stop: asyncio.Event
) -> None:
    """A client writing fresh keys through random live nodes, remembering acks."""
    clock = cluster.node("n1").clock
    sequence = 0
    while not stop.is_set():
        await clock.sleep(rng.uniform(0.01, 0.2))
        live = [n.node_id for n in cluster.running()]
        if not live:
            continue
        sequence += 1
        key = f"key-{rng.getrandbits(32):08x}-{sequence}"
        try:
            await cluster.put(key, sequence, w=2, via=rng.choice(live))
        except DynamoError:
            continue  # not acknowledged: promises nothing
        acknowledged[key] = sequence


async def recover(cluster: Cluster) -> None:
    """Stop the faults, heal, restart everyone, let hints and anti-entropy finish."""
    network: Any = cluster.network
    network.drop = network.duplicate = 0.0
    for node in NODES:
        network.slow_down(node, 0.0)
    cluster.heal()
    for node in NODES:
        if not cluster.node(node).running:
            await cluster.restart_node(node)
    clock = cluster.node("n1").clock
    await clock.sleep(10.0)  # detectors see everyone; hints are handed over
    for node in NODES:
        await cluster.node(node).repair_all()
    await cluster.settle()


def in_step(cluster: Cluster) -> list[int]:
    """Partitions whose replicas disagree (empty when converged)."""
    first = cluster.node("n1")
    return [
        partition
        for partition in first.table.partitions()
        if len(
            {
                cluster.node(owner).store.digest(partition).root()
                for owner in first.placement(partition).replicas
            }
        )
        != 1
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_no_acknowledged_write_is_lost(seed: int) -> None:
    log: list[str] = []
    acknowledged: dict[str, int] = {}

    async def scenario() -> None:
        rng = random.Random(seed)
        async with await Cluster.start(
            NODES, CONFIG, transport="simulated", seed=seed, max_delay=0.02
        ) as cluster:
            stop = asyncio.Event()
            writers = [
                asyncio.ensure_future(
                    write_unique_keys(cluster, random.Random(seed * 100 + i), acknowledged, stop)
                )
                for i in range(3)
            ]
            await inject_faults(cluster, rng, log)
            stop.set()
            await asyncio.gather(*writers)
            await recover(cluster)
            lost = []
            for key, value in acknowledged.items():
                read = await cluster.get(key, r=3)
                if read.values != (value,):
                    lost.append((key, value, read.values))
            diverged = in_step(cluster)
            report = (
                f"seed {seed}: {len(lost)} acknowledged writes lost {lost[:3]}, "
                f"{len(diverged)} partitions diverged; replay with DTK_CHAOS_SEED={seed}\n"
                + "\n".join(log)
            )
            assert not lost, report
            assert not diverged, report
            faults = {line.split()[1] for line in log}
            assert {"crash", "partition"} & faults, log

    run_virtual(scenario())
    assert len(acknowledged) > 100  # the run did real work


def test_a_chaos_run_replays_exactly() -> None:
    def trace(seed: int) -> tuple[list[str], dict[str, int]]:
        log: list[str] = []
        acknowledged: dict[str, int] = {}

        async def scenario() -> None:
            async with await Cluster.start(
                NODES, CONFIG, transport="simulated", seed=seed, max_delay=0.02
            ) as cluster:
                stop = asyncio.Event()
                writer = asyncio.ensure_future(
                    write_unique_keys(cluster, random.Random(seed), acknowledged, stop)
                )
                await inject_faults(cluster, random.Random(seed), log)
                stop.set()
                await writer

        run_virtual(scenario())
        return log, acknowledged

    assert trace(7) == trace(7)
