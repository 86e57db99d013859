"""Suite ``ycsb``: the YCSB core workloads A-F against the store, per configuration.

``dtk bench ycsb --workloads A,B --configs n3r2w2,n3r1w1`` loads ``--records``
records, then runs ``--operations`` operations of each workload with
``--clients`` concurrent closed-loop clients (each starts its next operation
when the previous one ends), once per configuration and workload, each on a
fresh store:

* by default on an in-process cluster of ``--nodes`` nodes over the simulated
  network, on virtual time: seeded and repeatable, throughput in operations
  per *virtual* second and latencies in *virtual* ms drawn from the simulated
  network's delay model (the client's hop to the coordinator and back
  included). Nodes answer instantly: there is no service time or queueing,
  so throughput is the number of clients over the mean latency;
* with ``--target HOST:PORT[,...]``, against a running reference cluster over
  the native protocol, on real time.

With ``--routing any`` a request reaches a random node. A node that is not a
replica of the key forwards a write to a replica, which coordinates it
(Dynamo §4.5, the store's ``forward_writes``); ``--no-forward-writes`` turns
that off in the simulated cluster, to show what forwarding prevents.

This module holds the command and the runs; the generators (mixes, zipfian,
latest, uniform, scan lengths, records) are in
:mod:`dynamo_toolkit_lab.ycsb_workloads`, the stores it drives in
:mod:`dynamo_toolkit_lab.ycsb_stores`, the clients and their measurements in
:mod:`dynamo_toolkit_lab.ycsb_runner`. How the operations map onto a Dynamo
store:

* read: a get. The client keeps the context it got, per key.
* update: a put of a whole new record with the context this client last saw
  for the key (none if it never touched it). The store has no partial update,
  and a Dynamo client carries the context of its last read or write; a stale
  context makes the write concurrent with what it did not see (a sibling
  under vector clocks).
* insert: a put without context of a new key.
* scan (workload E): a Dynamo store has no ordered range scan (consistent
  hashing scatters neighbouring keys), so a scan of L records is a multi-get:
  gets of the next L record keys in key order, issued in parallel; its
  latency is that of the slowest.
* read-modify-write (workload F): a get, then a put with the context read.

Every get is checked: reads that return several siblings are counted, and so
are *stale* reads. A read is stale if every value it returned was
overwritten before the read began: its write was acknowledged before another
write of the same key was issued, and that other write was acknowledged
before the read was issued (the condition a regular register forbids).
Writes that overlap in time are concurrent, and either may come back.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit_lab.output import emit, progress, suite_options
from dynamo_toolkit_lab.traffic import ObservableNetwork, observable
from dynamo_toolkit_lab.ycsb_runner import Measurements, Runner
from dynamo_toolkit_lab.ycsb_stores import (
    ClientStore,
    ClusterStore,
    QuorumFailure,
    Read,
    Store,
    StoreFailure,
)
from dynamo_toolkit_lab.ycsb_workloads import (
    WORKLOADS,
    OperationStream,
    RecordMaker,
)

if TYPE_CHECKING:
    from dynamo_toolkit_plugins.transport.simulated import Packet

__all__ = [
    "LATENCY_MODELS",
    "Measurements",
    "QuorumFailure",
    "Read",
    "RunSpec",
    "Runner",
    "Store",
    "StoreFailure",
    "command",
    "parse_configs",
    "run_remote",
    "run_simulated",
]

#: ``--latency`` choices: the simulated network's own uniform delay, or a PBS preset.
LATENCY_MODELS = ("uniform", "LNKD-SSD", "LNKD-DISK", "YMMR")
_CONFIG = re.compile(r"^n(\d+)r(\d+)w(\d+)$", re.IGNORECASE)
_DETECTOR_TIMEOUT_RATIO = 4.0  # the defaults': timeout 2 s over heartbeats every 0.5 s


# -- configurations ---------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One configuration to measure: N, R, W, the conflict resolver, the routing."""

    n: int
    r: int
    w: int
    resolver: str = "vector-clock"
    routing: str = "any"

    @property
    def quorum(self) -> str:
        """``n3r2w2`` style."""
        return f"n{self.n}r{self.r}w{self.w}"


def parse_configs(text: str) -> list[tuple[int, int, int]]:
    """``"n3r2w2,n3r1w1"`` -> ``[(3, 2, 2), (3, 1, 1)]``; ``BadParameter`` if malformed."""
    from dynamo_toolkit.config import validate_quorum

    out = []
    for part in (p.strip() for p in text.split(",")):
        match = _CONFIG.match(part)
        if not match:
            raise click.BadParameter(f"{part!r} is not of the form n3r2w2", param_hint="--configs")
        n, r, w = (int(g) for g in match.groups())
        try:
            validate_quorum(n, r, w)
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc), param_hint="--configs") from exc
        out.append((n, r, w))
    if not out:
        raise click.BadParameter("no configuration given", param_hint="--configs")
    return out


def _store_config(
    spec: RunSpec, heartbeat_interval: float | None, forward_writes: bool | None = None
) -> dict[str, Any]:
    store: dict[str, Any] = {"n": spec.n, "r": spec.r, "w": spec.w}
    if forward_writes is not None:
        store["forward_writes"] = forward_writes
    config: dict[str, Any] = {"store": store, "conflict_resolver": spec.resolver}
    if heartbeat_interval is not None:
        # Keep the default detector's ratio: a node is down after 4 silent intervals.
        store["heartbeat_interval"] = heartbeat_interval
        config["failure_detector"] = {
            "name": "timeout",
            "timeout": _DETECTOR_TIMEOUT_RATIO * heartbeat_interval,
        }
    return config


class _LegLatency:
    """A PBS preset as the simulated network's delay: each message draws from its leg.

    ReplicaWrite requests draw from W, their acknowledgements from A,
    ReplicaRead requests from R, their replies from S; other traffic
    (heartbeats, gossip) from W. A forwarded write and its reply draw from R
    and S, as the client's own hop does: they relay a request and write
    nothing to disk, which the W and A legs include. An observer of the
    network notes the leg just before the delay is drawn.
    """

    def __init__(self, name: str) -> None:
        from dynamo_toolkit_lab.wars import preset

        model = preset(name)
        self.legs = {"W": model.w, "A": model.a, "R": model.r, "S": model.s}
        self.leg = "W"

    def __call__(self, rng: random.Random) -> float:
        return self.legs[self.leg].sampler(rng)() / 1000.0  # ms -> s

    def client_hops(self, rng: random.Random) -> tuple[Callable[[], float], Callable[[], float]]:
        """The client's hop to the coordinator (an R leg) and back (an S leg), in seconds."""
        request, reply = self.legs["R"].sampler(rng), self.legs["S"].sampler(rng)
        return (lambda: request() / 1000.0), (lambda: reply() / 1000.0)

    def install(self, network: ObservableNetwork) -> None:
        from dynamo_toolkit.messages import (
            Ack,
            ForwardedWrite,
            ForwardedWriteReply,
            ReplicaRead,
            ReplicaReadReply,
        )

        def observe(source: str, dest: str, packet: Packet) -> None:
            body = packet.body
            if packet.kind == "req" and isinstance(body, ReplicaRead | ForwardedWrite):
                self.leg = "R"
            elif packet.kind == "rep" and isinstance(body, ReplicaReadReply | ForwardedWriteReply):
                self.leg = "S"
            elif packet.kind == "rep" and isinstance(body, Ack):
                self.leg = "A"
            else:
                self.leg = "W"  # ReplicaWrite requests and all other traffic

        network.add_observer(observe)


# -- running ------------------------------------------------------------------------


def _result(
    workload: str,
    spec: RunSpec,
    load: Measurements,
    run: Measurements,
    wall: dict[str, float],
) -> dict[str, Any]:
    return {
        "workload": workload,
        "n": spec.n,
        "r": spec.r,
        "w": spec.w,
        "resolver": spec.resolver,
        "routing": spec.routing,
        "load": load.summary(),
        "run": run.summary(),
        "wall_seconds": wall,
    }


def run_simulated(
    workload: str,
    spec: RunSpec,
    *,
    nodes: int,
    records: int,
    operations: int,
    clients: int,
    seed: int,
    latency: str = "uniform",
    heartbeat_interval: float | None = None,
    distribution: str | None = None,
    forward_writes: bool | None = None,
    advance: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Load and run ``workload`` on a fresh simulated cluster, on virtual time.

    ``forward_writes`` sets the store's option of that name (None: its default).
    """
    from dynamo_toolkit.in_process_cluster import Cluster
    from dynamo_toolkit.virtual_time import run_virtual

    config = _store_config(spec, heartbeat_interval, forward_writes)
    leg_latency = _LegLatency(latency) if latency != "uniform" else None
    network: dict[str, Any] = {"latency": leg_latency} if leg_latency is not None else {}

    async def scenario() -> dict[str, Any]:
        began = time.perf_counter()
        cluster = await Cluster.start(nodes, config, transport="simulated", seed=seed, **network)
        started = time.perf_counter()
        try:
            if leg_latency is not None:
                leg_latency.install(observable(cluster.network))
            loop = asyncio.get_running_loop()
            stream = OperationStream(
                WORKLOADS[workload],
                records,
                operations,
                random.Random(f"ycsb:{seed}:{workload}"),
                distribution,
            )
            runner = Runner(
                stream,
                RecordMaker(random.Random(f"records:{seed}")),
                clock=loop.time,
                advance=advance,
            )
            hop_rng = random.Random(f"client-hops:{seed}")
            if leg_latency is not None:
                hops = leg_latency.client_hops(hop_rng)
            else:
                low, high = cluster.network.min_delay, cluster.network.max_delay  # type: ignore[attr-defined]
                hop = partial(hop_rng.uniform, low, high)
                hops = (hop, hop)
            store = ClusterStore(cluster, spec.routing, random.Random(f"routing:{seed}"), hops)
            stores = [store] * clients
            load = await runner.load(stores, records)
            loaded = time.perf_counter()
            run = await runner.run(stores, operations)
            ran = time.perf_counter()
            messages = cluster.network.stats.sent  # type: ignore[attr-defined]
            node_stats = [node.stats for node in cluster.nodes.values()]
        finally:
            await cluster.close()
        wall = {
            "start": started - began,
            "load": loaded - started,
            "run": ran - loaded,
            "total": time.perf_counter() - began,
        }
        result = _result(workload, spec, load, run, wall)
        result["cluster"] = {
            "messages": messages,
            "read_repairs": sum(s.read_repairs for s in node_stats),
            "hinted_requests": sum(s.hinted_requests for s in node_stats),
            "forwarded_writes": sum(s.forwarded_writes for s in node_stats),
        }
        return result

    return run_virtual(scenario())


async def _remote(
    workload: str,
    spec: RunSpec,
    addresses: Sequence[str],
    *,
    records: int,
    operations: int,
    clients: int,
    seed: int,
    distribution: str | None,
    timeout: float,
    advance: Callable[[], None],
) -> dict[str, Any]:
    from dynamo_toolkit_server.client import AsyncClient

    loop = asyncio.get_running_loop()
    stream = OperationStream(
        WORKLOADS[workload],
        records,
        operations,
        random.Random(f"ycsb:{seed}:{workload}"),
        distribution,
    )
    # Fresh keys per run: the cluster outlives the run and keeps the data of
    # earlier runs, which blind inserts would otherwise meet as siblings.
    prefix = f"ycsb-{secrets.token_hex(4)}:"
    runner = Runner(
        stream,
        RecordMaker(random.Random(f"records:{seed}")),
        prefix=prefix,
        clock=loop.time,
        advance=advance,
    )
    # Client i starts at address i (mod the count): requests spread over the
    # nodes as behind a load balancer, and fail over to the others.
    connections = [
        AsyncClient(
            [*addresses[i % len(addresses) :], *addresses[: i % len(addresses)]],
            r=spec.r,
            w=spec.w,
            timeout=timeout,
        )
        for i in range(clients)
    ]
    began = time.perf_counter()
    try:
        stores = [ClientStore(client) for client in connections]
        load = await runner.load(stores, records)
        loaded = time.perf_counter()
        run = await runner.run(stores, operations)
        ran = time.perf_counter()
    finally:
        for client in connections:
            await client.close()
    wall = {"start": 0.0, "load": loaded - began, "run": ran - loaded, "total": ran - began}
    result = _result(workload, spec, load, run, wall)
    result["key_prefix"] = prefix
    return result


async def _cluster_quorum(addresses: Sequence[str], timeout: float) -> dict[str, Any]:
    from dynamo_toolkit_server.client import AsyncClient

    async with AsyncClient(list(addresses), timeout=timeout) as client:
        info: dict[str, Any] = await client.info()
    return info


def run_remote(
    workload: str,
    spec: RunSpec,
    addresses: Sequence[str],
    *,
    records: int,
    operations: int,
    clients: int,
    seed: int,
    distribution: str | None = None,
    timeout: float = 5.0,
    advance: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Load and run ``workload`` against a running reference cluster, on real time."""
    return asyncio.run(
        _remote(
            workload,
            spec,
            addresses,
            records=records,
            operations=operations,
            clients=clients,
            seed=seed,
            distribution=distribution,
            timeout=timeout,
            advance=advance,
        )
    )


# -- the command ----------------------------------------------------------------------


def _label(row: dict[str, Any], payload: dict[str, Any]) -> str:
    parts = [f"N{row['n']}R{row['r']}W{row['w']}"]
    if len(payload["resolvers"]) > 1:
        parts.append(row["resolver"])
    if len(payload["routings"]) > 1:
        parts.append(row["routing"])
    return " ".join(parts)


def _draw(payload: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    results = payload["results"]
    workloads = list(dict.fromkeys(row["workload"] for row in results))
    labels = list(dict.fromkeys(_label(row, payload) for row in results))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(len(labels), 1)
    for index, label in enumerate(labels):
        rows = {row["workload"]: row for row in results if _label(row, payload) == label}
        xs = [i + (index - (len(labels) - 1) / 2) * width for i in range(len(workloads))]
        throughput = [rows[w]["run"]["throughput"] if w in rows else 0 for w in workloads]
        p50 = [rows[w]["run"]["latency_ms"]["all"]["p50"] if w in rows else 0 for w in workloads]
        p99 = [rows[w]["run"]["latency_ms"]["all"]["p99"] if w in rows else 0 for w in workloads]
        bars = left.bar(xs, throughput, width, label=label)
        right.bar(xs, p50, width, color=bars.patches[0].get_facecolor(), label=label)
        right.scatter(xs, p99, marker="_", s=200, color="black", zorder=3)
    unit = "virtual" if payload["target"] == "simulated" else "real"
    for axes, ylabel in (
        (left, f"operations per {unit} second"),
        (right, f"latency ({unit} ms): bar p50, dash p99"),
    ):
        axes.set_xticks(range(len(workloads)), workloads)
        axes.set_xlabel("workload")
        axes.set_ylabel(ylabel)
        axes.grid(True, axis="y", alpha=0.3)
    right.set_yscale("log")  # scans (E) take an order of magnitude longer
    left.legend(fontsize="small")
    where = (
        f"{payload['nodes']} simulated nodes, {payload['latency']} latency"
        f"{'' if payload.get('forward_writes', True) else ', no forwarding'}"
        if payload["target"] == "simulated"
        else "reference cluster " + ",".join(payload["target"])
    )
    figure.suptitle(
        f"YCSB: {payload['records']} records, {payload['operations']} operations, "
        f"{payload['clients']} clients; {where}"
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@click.command("ycsb")
@click.option(
    "--workloads",
    "workloads_text",
    default="A,B,C,D,E,F",
    show_default=True,
    help="YCSB core workloads to run, comma-separated.",
)
@click.option(
    "--configs",
    "configs_text",
    default="n3r2w2",
    show_default=True,
    help="Quorum configurations to compare, e.g. n3r2w2,n3r1w1,n3r3w1.",
)
@click.option(
    "--resolvers",
    "resolvers_text",
    default="vector-clock",
    show_default=True,
    help="Conflict resolvers to compare (simulated cluster only).",
)
@click.option(
    "--routing",
    "routing_text",
    default="any",
    show_default=True,
    help="Who coordinates: 'any' node at random (a load balancer) or the key's first "
    "'replica' (a partition-aware client); comma-separated to compare (simulated only).",
)
@click.option("--records", default=1000, show_default=True, help="Records loaded first.")
@click.option("--operations", default=1000, show_default=True, help="Operations per run.")
@click.option("--clients", default=16, show_default=True, help="Concurrent closed-loop clients.")
@click.option("--nodes", default=5, show_default=True, help="Simulated cluster size.")
@click.option(
    "--latency",
    type=click.Choice(LATENCY_MODELS, case_sensitive=False),
    default="uniform",
    show_default=True,
    help="Simulated one-way delays: uniform 0.5-2 ms (the simulated network's own) "
    "or a PBS preset (each message from its WARS leg).",
)
@click.option(
    "--heartbeat-interval",
    type=float,
    default=None,
    help="Seconds between heartbeats (default: the store's 0.5); the timeout "
    "detector's timeout follows at 4x. Heartbeats go to every member, so large "
    "simulated clusters run much faster with a longer interval.",
)
@click.option(
    "--forward-writes/--no-forward-writes",
    default=None,
    help="Whether a node that is not a replica of a key forwards a write of it to a "
    "replica to coordinate (Dynamo 4.5). Default: the store's default, forward. "
    "Simulated cluster only: a running cluster has its own setting.",
)
@click.option(
    "--distribution",
    type=click.Choice(["zipfian", "latest", "uniform"]),
    default=None,
    help="Override every workload's request distribution.",
)
@click.option(
    "--target",
    default=None,
    help="HOST:PORT[,HOST:PORT...] of a running reference cluster's native ports: "
    "run there on real time instead of the simulated cluster.",
)
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    help="Per-request timeout (s) of the native clients, with --target.",
)
@suite_options
def command(
    workloads_text: str,
    configs_text: str,
    resolvers_text: str,
    routing_text: str,
    records: int,
    operations: int,
    clients: int,
    nodes: int,
    latency: str,
    heartbeat_interval: float | None,
    forward_writes: bool | None,
    distribution: str | None,
    target: str | None,
    timeout: float,
    as_json: bool,
    plot_path: Path | None,
    seed: int,
) -> None:
    """Run the YCSB core workloads A-F against the store, once per configuration."""
    workloads = [w.upper() for w in _split(workloads_text)]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if not workloads or unknown:
        raise click.BadParameter(
            f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}",
            param_hint="--workloads",
        )
    quorums = parse_configs(configs_text)
    resolvers = _split(resolvers_text)
    routings = _split(routing_text)
    for routing in routings:
        if routing not in ("any", "replica"):
            raise click.BadParameter(f"{routing!r}: use any or replica", param_hint="--routing")
    if records < 1 or operations < 1 or clients < 1:
        raise click.BadParameter("--records, --operations and --clients must be positive")
    if heartbeat_interval is not None and heartbeat_interval <= 0:
        raise click.BadParameter("--heartbeat-interval must be positive")
    addresses = _split(target) if target else []
    if target is not None:
        if forward_writes is not None:
            raise click.BadParameter(
                "a running cluster forwards writes as its own configuration says "
                "(store.forward_writes): --forward-writes/--no-forward-writes are for "
                "the simulated cluster"
            )
        _check_remote(addresses, quorums, resolvers, routings, timeout)
    else:
        _check_simulated(quorums, resolvers, nodes)
        if forward_writes is None:
            from dynamo_toolkit.config import StoreConfig

            forward_writes = StoreConfig().forward_writes
    latency = next(m for m in LATENCY_MODELS if m.lower() == latency.lower())
    specs = [
        RunSpec(n, r, w, resolver, routing)
        for (n, r, w) in quorums
        for resolver in resolvers
        for routing in routings
    ]
    runs = [(spec, workload) for spec in specs for workload in workloads]
    bar, task = progress(len(runs) * (records + operations), "ycsb", as_json)
    results = []
    with bar:

        def advance() -> None:
            bar.advance(task)

        for spec, workload in runs:
            if target is not None:
                result = run_remote(
                    workload,
                    spec,
                    addresses,
                    records=records,
                    operations=operations,
                    clients=clients,
                    seed=seed,
                    distribution=distribution,
                    timeout=timeout,
                    advance=advance,
                )
            else:
                result = run_simulated(
                    workload,
                    spec,
                    nodes=nodes,
                    records=records,
                    operations=operations,
                    clients=clients,
                    seed=seed,
                    latency=latency,
                    heartbeat_interval=heartbeat_interval,
                    distribution=distribution,
                    forward_writes=forward_writes,
                    advance=advance,
                )
            results.append(result)
    payload: dict[str, Any] = {
        "suite": "ycsb",
        "target": "simulated" if target is None else addresses,
        "nodes": nodes if target is None else None,
        "latency": latency if target is None else "real",
        "heartbeat_interval": heartbeat_interval,
        "forward_writes": forward_writes,
        "records": records,
        "operations": operations,
        "clients": clients,
        "seed": seed,
        "distribution": distribution,
        "resolvers": resolvers,
        "routings": routings,
        "results": results,
    }
    unit = "virtual" if target is None else "real"
    columns = [
        "configuration",
        "workload",
        f"ops/s ({unit})",
        "p50 ms",
        "p99 ms",
        "read p99",
        "write p99",
        "quorum fail",
        "errors",
        "sibling reads",
        "stale reads",
    ]
    rows = [_row(result, payload) for result in results]
    where = (
        f"{nodes} simulated nodes, {latency} latency"
        f"{'' if forward_writes else ', no forwarding'}, virtual time"
        if target is None
        else f"{target}, real time"
    )
    emit(
        payload,
        as_json=as_json,
        title=f"ycsb: {records} records, {operations} operations, {clients} clients; {where}",
        columns=columns,
        rows=rows,
        plot_path=plot_path,
        draw=_draw,
    )


def _row(result: dict[str, Any], payload: dict[str, Any]) -> list[Any]:
    run = result["run"]
    latency = run["latency_ms"]
    writes = [latency[k]["p99"] for k in ("update", "insert", "rmw") if k in latency]
    reads = [latency[k]["p99"] for k in ("read", "scan") if k in latency]
    return [
        _label(result, payload),
        result["workload"],
        run["throughput"],
        latency["all"]["p50"],
        latency["all"]["p99"],
        max(reads) if reads else "-",
        max(writes) if writes else "-",
        run["quorum_failures"],
        run["errors"],
        run["sibling_reads"],
        f"{run['stale_reads']}/{run['checked_reads']}",
    ]


def _check_simulated(quorums: list[tuple[int, int, int]], resolvers: list[str], nodes: int) -> None:
    from dynamo_toolkit.plugin_host import load_plugins

    if nodes < 1:
        raise click.BadParameter("--nodes must be positive")
    for n, _, _ in quorums:
        if n > nodes:
            raise click.BadParameter(f"N={n} needs at least {n} nodes; --nodes is {nodes}")
    known = load_plugins().registry.names("conflict_resolver")
    for resolver in resolvers:
        if resolver not in known:
            raise click.BadParameter(
                f"unknown resolver {resolver!r}; installed: {', '.join(known)}",
                param_hint="--resolvers",
            )


def _check_remote(
    addresses: list[str],
    quorums: list[tuple[int, int, int]],
    resolvers: list[str],
    routings: list[str],
    timeout: float,
) -> None:
    try:
        from dynamo_toolkit_server.client import ClientError, parse_address
    except ImportError as exc:  # the kernel does not need the server installed
        raise click.ClickException(
            "--target needs the reference server's client (dynamo_toolkit_server)"
        ) from exc
    if not addresses:
        raise click.BadParameter("no address given", param_hint="--target")
    for address in addresses:
        try:
            parse_address(address)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--target") from exc
    if len(resolvers) > 1 or routings != ["any"]:
        raise click.BadParameter(
            "a running cluster has its own resolver, and the clients cannot route by "
            "replica: --resolvers and --routing are for the simulated cluster"
        )
    try:
        info = asyncio.run(_cluster_quorum(addresses, timeout))
    except ClientError as exc:
        raise click.ClickException(f"cannot reach the cluster: {exc}") from exc
    for n, _, _ in quorums:
        if n != info["n"]:
            raise click.BadParameter(
                f"the cluster stores N={info['n']} replicas; a configuration with N={n} "
                "cannot be tested on it (R and W may vary)",
                param_hint="--configs",
            )
