"""Suite ``datacenters``: what each consistency level costs across a WAN.

``dtk bench datacenters --rtt-ms 10,50,100`` starts, per round-trip time, an
in-process cluster of two datacenters of three nodes each, replicated by
``network-topology`` with ``{dc1 = 3, dc2 = 3}`` (six copies of every key), on
the ``simulated`` transport with a WAN between the datacenters: one-way
delays between them drawn from a log-normal of median RTT/2 (or a constant
RTT/2), inside a datacenter uniform in 0.2 .. 1 ms. For each level it writes
``--requests`` fresh keys at that level through ``n1`` (dc1), then reads them
back at the same level through ``n1``, and reports the latency of each
(virtual time, so machine-independent and identical for a seed) and the
data messages (replica writes and reads, and their replies) that crossed
between datacenters per request, counted by observing the network.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from dynamo_toolkit_lab.output import emit, float_list, name_list, suite_options
from dynamo_toolkit_lab.traffic import observable

if TYPE_CHECKING:
    from dynamo_toolkit_plugins.transport.simulated import Packet

__all__ = ["LEVELS", "LevelResult", "command", "measure", "quantile", "wan_config"]

#: The levels measured, in the order they are reported.
LEVELS = ("ONE", "LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL")
#: Datacenter of every node: dc1 = n1..n3, dc2 = n4..n6; n1 coordinates.
DATACENTERS = {f"n{i}": "dc1" if i <= 3 else "dc2" for i in range(1, 7)}
COORDINATOR = "n1"
LOCAL_MS = (0.2, 1.0)


@dataclass(frozen=True)
class LevelResult:
    """One (RTT, level) cell: latencies in virtual ms, cross-datacenter messages."""

    rtt_ms: float
    level: str
    write_ms: dict[str, float]
    read_ms: dict[str, float]
    cross_dc_per_write: float
    cross_dc_per_read: float

    def as_json(self) -> dict[str, Any]:
        """The cell as a JSON object."""
        return {
            "rtt_ms": self.rtt_ms,
            "level": self.level,
            "write_ms": self.write_ms,
            "read_ms": self.read_ms,
            "cross_dc_messages_per_write": self.cross_dc_per_write,
            "cross_dc_messages_per_read": self.cross_dc_per_read,
        }


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values``, interpolated linearly between order statistics."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def wan_config(rtt_ms: float, latency: str = "lognormal", p99_ratio: float = 1.5) -> dict[str, Any]:
    """The simulated transport's ``wan`` table for one inter-datacenter RTT.

    One way between datacenters: a log-normal of median ``rtt_ms / 2`` and
    99th percentile ``p99_ratio`` times that, or ``constant`` at ``rtt_ms / 2``.
    """
    one_way = rtt_ms / 2
    if latency == "constant":
        link: dict[str, Any] = {"latency": "constant", "ms": one_way}
    else:
        link = {"latency": "lognormal", "median_ms": one_way, "p99_ms": one_way * p99_ratio}
    return {
        "local": {"latency": "uniform", "min_ms": LOCAL_MS[0], "max_ms": LOCAL_MS[1]},
        "links": [{"between": ["dc1", "dc2"], **link}],
    }


def _summary(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000.0 for s in samples_s]
    return {
        "p50": round(quantile(ms, 0.5), 3),
        "p99": round(quantile(ms, 0.99), 3),
        "mean": round(sum(ms) / len(ms), 3),
    }


def measure(
    rtts_ms: Sequence[float],
    levels: Sequence[str],
    requests: int,
    seed: int,
    *,
    latency: str = "lognormal",
    p99_ratio: float = 1.5,
) -> list[LevelResult]:
    """Every (RTT, level) cell, one fresh cluster per RTT (see the module docstring)."""
    from dynamo_toolkit.in_process_cluster import Cluster
    from dynamo_toolkit.messages import (
        Ack,
        ForwardedWrite,
        ForwardedWriteReply,
        ReplicaRead,
        ReplicaReadReply,
        ReplicaWrite,
    )
    from dynamo_toolkit.node_info import NodeInfo
    from dynamo_toolkit.virtual_time import run_virtual

    data = (Ack, ForwardedWrite, ForwardedWriteReply, ReplicaRead, ReplicaReadReply, ReplicaWrite)
    members = [NodeInfo(node, datacenter=dc) for node, dc in DATACENTERS.items()]
    crossed = [0]

    def observe(source: str, dest: str, packet: Packet) -> None:
        if DATACENTERS.get(source) != DATACENTERS.get(dest) and isinstance(packet.body, data):
            crossed[0] += 1

    async def one_rtt(rtt: float, cluster_seed: int) -> list[LevelResult]:
        config: dict[str, Any] = {
            "store": {"n": 6, "r": "LOCAL_QUORUM", "w": "LOCAL_QUORUM", "request_timeout": 10.0},
            "replicator": {"name": "network-topology", "replicas": {"dc1": 3, "dc2": 3}},
            "transport": {"name": "simulated", "wan": wan_config(rtt, latency, p99_ratio)},
        }
        loop = asyncio.get_running_loop()
        cells = []
        async with await Cluster.start(members, config, seed=cluster_seed) as cluster:
            observable(cluster.network).add_observer(observe)
            for level in levels:
                writes: list[float] = []
                reads: list[float] = []
                write_crossed = read_crossed = 0
                keys = [f"dc:{level}:{i}" for i in range(requests)]
                for i, key in enumerate(keys):
                    before, start = crossed[0], loop.time()
                    await cluster.put(key, i, w=level, via=COORDINATOR)
                    writes.append(loop.time() - start)
                    await cluster.settle()  # the replicas not waited for still count
                    write_crossed += crossed[0] - before
                for i, key in enumerate(keys):
                    before, start = crossed[0], loop.time()
                    got = await cluster.get(key, r=level, via=COORDINATOR)
                    reads.append(loop.time() - start)
                    if got.values != (i,):
                        raise RuntimeError(f"{level} read of {key} saw {got.values}, wrote {i}")
                    await cluster.settle()
                    read_crossed += crossed[0] - before
                cells.append(
                    LevelResult(
                        rtt_ms=rtt,
                        level=level,
                        write_ms=_summary(writes),
                        read_ms=_summary(reads),
                        cross_dc_per_write=write_crossed / requests,
                        cross_dc_per_read=read_crossed / requests,
                    )
                )
        return cells

    results: list[LevelResult] = []
    for index, rtt in enumerate(rtts_ms):
        results.extend(run_virtual(one_rtt(rtt, seed * 1000 + index)))
    return results


@click.command("datacenters")
@click.option(
    "--rtt-ms",
    "rtt_text",
    default="10,50,100",
    show_default=True,
    help="Round-trip times between the two datacenters (ms).",
)
@click.option(
    "--levels",
    "levels_text",
    default=",".join(LEVELS),
    show_default=True,
    help="Consistency levels, for both writes and reads.",
)
@click.option("--requests", default=200, show_default=True, help="Writes, then reads, per cell.")
@click.option(
    "--wan-latency",
    type=click.Choice(["lognormal", "constant"]),
    default="lognormal",
    show_default=True,
    help="One-way delay between datacenters: log-normal of median RTT/2, or RTT/2.",
)
@click.option(
    "--p99-ratio",
    default=1.5,
    show_default=True,
    help="The log-normal's p99 over its median.",
)
@suite_options
def command(
    rtt_text: str,
    levels_text: str,
    requests: int,
    wan_latency: str,
    p99_ratio: float,
    as_json: bool,
    plot_path: Any,
    seed: int,
) -> None:
    """Latency and cross-datacenter messages per consistency level, against the WAN RTT."""
    rtts = float_list(rtt_text, "--rtt-ms")
    levels = name_list(levels_text.upper(), LEVELS, "--levels")
    if requests < 1:
        raise click.BadParameter("--requests must be positive")
    if not math.isfinite(p99_ratio) or p99_ratio <= 1.0:
        raise click.BadParameter("--p99-ratio must be above 1", param_hint="--p99-ratio")
    if plot_path is not None:
        raise click.ClickException("this suite has no plot yet")
    results = measure(rtts, levels, requests, seed, latency=wan_latency, p99_ratio=p99_ratio)
    payload = {
        "datacenters": {"dc1": 3, "dc2": 3},
        "replicas": {"dc1": 3, "dc2": 3},
        "coordinator": f"{COORDINATOR} (dc1)",
        "requests": requests,
        "seed": seed,
        "wan": {"latency": wan_latency, "p99_ratio": p99_ratio, "local_ms": list(LOCAL_MS)},
        "results": [cell.as_json() for cell in results],
    }
    rows = [
        [
            cell.rtt_ms,
            cell.level,
            cell.write_ms["p50"],
            cell.write_ms["p99"],
            cell.read_ms["p50"],
            cell.read_ms["p99"],
            cell.cross_dc_per_write,
            cell.cross_dc_per_read,
        ]
        for cell in results
    ]
    emit(
        payload,
        as_json=as_json,
        title=f"datacenters dc1:3,dc2:3 ({requests} writes+reads per cell, virtual ms)",
        columns=[
            "RTT (ms)",
            "level",
            "write p50",
            "write p99",
            "read p50",
            "read p99",
            "x-DC msgs/write",
            "x-DC msgs/read",
        ],
        rows=rows,
    )
