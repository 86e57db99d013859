"""Suite ``staleness``: how often a partial quorum reads the latest write (PBS/WARS).

``dtk bench staleness --n 3 --r 1 --w 1 --t 0,1,5,10 --latency LNKD-SSD``
runs the WARS Monte Carlo of :mod:`dynamo_toolkit_lab.wars` (Bailis et al.,
VLDB 2012). ``--validate`` also runs the real coordinator on a 5-node
simulated cluster on virtual time, with every message delayed by a draw from
the model's leg for that message, and reports measured against modelled.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dynamo_toolkit_lab.output import emit, float_list, suite_options
from dynamo_toolkit_lab.traffic import ObservableNetwork, observable
from dynamo_toolkit_lab.wars import PRESETS, WarsModel, model_from_json, preset, simulate

if TYPE_CHECKING:
    from dynamo_toolkit_plugins.transport.simulated import Packet

__all__ = ["command", "load_model", "measure_cluster"]


def load_model(spec: str) -> WarsModel:
    """A preset name (``LNKD-SSD``, ``LNKD-DISK``, ``YMMR``, ``WAN``) or a JSON file."""
    try:
        return preset(spec)
    except KeyError:
        pass
    path = Path(spec)
    if not path.is_file():
        raise click.BadParameter(
            f"{spec!r} is neither a preset ({', '.join(PRESETS)}) nor a JSON file",
            param_hint="--latency",
        )
    try:
        data = json.loads(path.read_text())
        return model_from_json(data, name=path.stem)
    except (ValueError, TypeError, AttributeError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--latency") from exc


class _LegLatency:
    """The simulated network's ``latency(rng)``, drawing from the leg being sent.

    The kernel's latency callable sees only the network's rng, so the
    network is observed (:meth:`SimulatedNetwork.add_observer`) to note
    which WARS leg the packet is — a ReplicaWrite request (W), its Ack (A), a
    ReplicaRead request (R), its reply (S) — just before the delay is drawn.
    Every other message (heartbeats, gossip) draws from the W leg. With a WAN
    model, the writer's and the reader's datacenter are a replica chosen per
    trial, and legs to other replicas take ``wan_delay`` more.
    """

    def __init__(self, model: WarsModel) -> None:
        self.model = model
        self.leg = "W"
        self.replica = ""
        self.write_local = ""
        self.read_local = ""

    def __call__(self, rng: random.Random) -> float:
        model = self.model
        dist = {"W": model.w, "A": model.a, "R": model.r, "S": model.s}[self.leg]
        delay = dist.sampler(rng)()
        if model.wan_delay and self.replica:
            local = self.write_local if self.leg in "WA" else self.read_local
            if self.replica != local:
                delay += model.wan_delay
        return delay / 1000.0  # ms -> s

    def install(self, network: ObservableNetwork) -> None:
        from dynamo_toolkit.messages import Ack, ReplicaRead, ReplicaReadReply, ReplicaWrite

        def observe(source: str, dest: str, packet: Packet) -> None:
            body = packet.body
            self.replica = ""
            if packet.kind == "req" and isinstance(body, ReplicaWrite):
                self.leg, self.replica = "W", dest
            elif packet.kind == "req" and isinstance(body, ReplicaRead):
                self.leg, self.replica = "R", dest
            elif packet.kind == "rep" and isinstance(body, ReplicaReadReply):
                self.leg, self.replica = "S", source
            elif packet.kind == "rep" and isinstance(body, Ack):
                self.leg, self.replica = "A", source
            else:
                self.leg = "W"

        network.add_observer(observe)


def measure_cluster(
    model: WarsModel,
    n: int,
    r: int,
    w: int,
    t_ms: Sequence[float],
    trials: int,
    seed: int,
    nodes: int = 5,
) -> list[float]:
    """Fraction of reads, ``t`` ms after an acknowledged write, that saw it.

    Per trial and ``t``: a fresh key is written (W acks) through a node that
    is not one of its replicas (so no leg is free), the client waits ``t`` ms
    of virtual time, reads with R through the same node and checks the value;
    then the cluster settles so nothing in flight leaks into the next trial.
    """
    from dynamo_toolkit.in_process_cluster import Cluster
    from dynamo_toolkit.virtual_time import run_virtual

    latency = _LegLatency(model)
    config = {
        "store": {
            "n": n,
            "r": r,
            "w": w,
            "sloppy_quorum": False,
            "request_timeout": 60.0,
            # WARS has the coordinator send all N write legs; a forward to a
            # replica would make one of them local (free).
            "forward_writes": False,
        }
    }
    choose = random.Random(seed ^ 0x5EED)

    async def scenario() -> list[float]:
        seen = [0] * len(t_ms)
        async with await Cluster.start(
            nodes, config, transport="simulated", seed=seed, latency=latency
        ) as cluster:
            latency.install(observable(cluster.network))
            for trial in range(trials):
                for k, t in enumerate(t_ms):
                    key = f"pbs:{trial}:{k}"
                    owners = cluster.replicas(key)
                    via = next(node for node in cluster.nodes if node not in owners)
                    latency.write_local = choose.choice(owners)
                    latency.read_local = choose.choice(owners)
                    await cluster.put(key, trial, via=via)
                    if t > 0:
                        await cluster.node(via).clock.sleep(t / 1000.0)
                    read = await cluster.get(key, via=via)
                    seen[k] += read.values == (trial,)
                    await cluster.settle()
        return [count / trials for count in seen]

    return run_virtual(scenario())


# -- the command -------------------------------------------------------------------


def _draw(payload: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    ts = [row["t_ms"] for row in payload["results"]]
    axes.plot(ts, [row["p_consistent"] for row in payload["results"]], "o-", label="WARS model")
    validation = payload.get("validation")
    if validation:
        axes.plot(
            ts,
            [row["measured"] for row in validation["results"]],
            "s--",
            label="simulated cluster",
        )
    axes.set_xlabel("t after write commit (ms)")
    axes.set_ylabel("P(consistent read)")
    axes.set_title(f"{payload['latency']}: N={payload['n']} R={payload['r']} W={payload['w']}")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


@click.command("staleness")
@click.option("--n", "n", default=3, show_default=True, help="Replicas per key (N).")
@click.option("--r", "r", default=1, show_default=True, help="Read quorum (R).")
@click.option("--w", "w", default=1, show_default=True, help="Write quorum (W).")
@click.option("--t", "t_text", default="0,1,5,10", show_default=True, help="Read delays (ms).")
@click.option(
    "--latency",
    "latency_spec",
    default="LNKD-SSD",
    show_default=True,
    help=f"Preset ({', '.join(PRESETS)}) or a JSON file of the W, A, R, S legs.",
)
@click.option("--trials", default=100_000, show_default=True, help="Monte Carlo trials.")
@click.option(
    "--validate",
    is_flag=True,
    help="Also measure the real coordinator on a 5-node simulated cluster.",
)
@click.option(
    "--validate-trials",
    default=1000,
    show_default=True,
    help="Writes per t for --validate.",
)
@suite_options
def command(
    n: int,
    r: int,
    w: int,
    t_text: str,
    latency_spec: str,
    trials: int,
    validate: bool,
    validate_trials: int,
    as_json: bool,
    plot_path: Path | None,
    seed: int,
) -> None:
    """Probability a read sees the last write, t ms after it commits (PBS, WARS model)."""
    times = float_list(t_text, "--t", positive=False)
    model = load_model(latency_spec)
    if not 1 <= r <= n or not 1 <= w <= n:
        raise click.BadParameter(f"need 1 <= R, W <= N, got N={n}, R={r}, W={w}")
    if trials < 1:
        raise click.BadParameter("--trials must be positive")
    result = simulate(model, n, r, w, times, trials=trials, seed=seed)
    payload: dict[str, Any] = {
        "n": n,
        "r": r,
        "w": w,
        "latency": model.name,
        "results": [
            {"t_ms": t, "p_consistent": p}
            for t, p in zip(result.t_ms, result.p_consistent, strict=True)
        ],
        "read_latency_ms": dict(result.read_latency),
        "write_latency_ms": dict(result.write_latency),
    }
    columns = ["t (ms)", "P(consistent)"]
    rows: list[list[Any]] = [[t, p] for t, p in zip(result.t_ms, result.p_consistent, strict=True)]
    if validate:
        if n > 5:
            raise click.BadParameter("--validate runs 5 nodes: N must be at most 5")
        if validate_trials < 1:
            raise click.BadParameter("--validate-trials must be positive")
        measured = measure_cluster(model, n, r, w, times, validate_trials, seed)
        payload["validation"] = {
            "nodes": 5,
            "trials": validate_trials,
            "results": [
                {"t_ms": t, "model": p, "measured": m, "difference": m - p}
                for t, p, m in zip(result.t_ms, result.p_consistent, measured, strict=True)
            ],
        }
        columns.append("measured (cluster)")
        for row, m in zip(rows, measured, strict=True):
            row.append(m)
    lat = (
        f"write p50/p99/p99.9 {_triple(result.write_latency)} ms, "
        f"read {_triple(result.read_latency)} ms"
    )
    emit(
        payload,
        as_json=as_json,
        title=f"staleness {model.name} N={n} R={r} W={w} ({trials} trials; {lat})",
        columns=columns,
        rows=rows,
        plot_path=plot_path,
        draw=_draw,
    )


def _triple(quantiles: Any) -> str:
    return "/".join(f"{quantiles[k]:.3g}" for k in ("p50", "p99", "p99.9"))
