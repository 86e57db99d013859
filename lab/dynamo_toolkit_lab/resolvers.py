"""Suite ``resolvers``: siblings, clock sizes and lost updates under concurrent writers.

``dtk bench resolvers --clients 6 --keys 4 --rounds 100 --stale 0.2``
starts an in-process cluster on the simulated network (virtual time, seeded)
once per strategy. In every round, each of K clients does one
read-modify-write of a random key through its coordinator: it reads (R), waits
a random think time and writes back with the read's context. The clients run
concurrently, so two clients that pick the same key in a round overlap. With
probability ``--stale`` a client skips the read and writes with the context of
its own read of that key from at least ``--stale-age`` rounds before. If it has
no such read it writes blind (no context).

``--route`` chooses the coordinators. ``spread`` (default): client *i* goes
through replica ``i mod N`` of the key, so clients reach different
coordinators, and clients beyond N share them. ``same``: every client goes
through the key's first replica. ``any``: client *i* goes through cluster node
``i mod nodes``, usually not a replica of the key. Such a node forwards the
write to the key's first replica, which coordinates it (Dynamo §4.5, the
store's ``forward_writes``). With ``--no-forward-writes`` it coordinates the
write itself, so clocks gain more actors, and a coordinator that holds no
version of the key can reuse a clock already stored.

After each round the suite reads every replica's stored sibling set directly
(no messages, so measuring does not disturb the run) and reconciles them per
key. This is what a read of all N replicas would return. It records the
sibling count, the size of the context (clock entries, and the bytes of the
encoded context a client carries), and the acknowledged writes lost so far.

Lost updates are judged against ground truth, not clocks. Every write's value
is its write id, and the suite records which writes each write causally
follows: itself plus everything in the history of each value its read
returned. An acknowledged write is *lost* if no surviving version has it in its
history: neither it nor anything written with a context that saw it survives.
A write without a context (a *blind* write) is taken to have seen what the
resolver declares it to have read (``blind_write_context``): under ``dvv``'s
default the versions its coordinator held when it made the write's version,
under the others nothing. The suite wraps each node's resolver to observe
those versions. A write that survives
only through that rule (replaced by a blind write, not by a writer that read
it) is counted apart as *blind-overwritten*, so the rule hides nothing.
A surviving sibling that is in another survivor's history is a *false
sibling*: a conflict the writers did not cause. After the last round the
cluster settles, every key is read with R = N (read repair), and the run
checks that all replicas hold the same set.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import click
import msgpack

from dynamo_toolkit.interfaces import ConflictResolver
from dynamo_toolkit.values import decode_value
from dynamo_toolkit.versioning import VectorClock, Version
from dynamo_toolkit_lab.output import emit, progress, suite_options

__all__ = ["ROUTES", "STRATEGIES", "command", "run_strategy", "run_suite", "strategy_component"]

#: The strategies the suite knows, in report order.
STRATEGIES = ("vector-clock", "vector-clock-unpruned", "dvv", "dvv-blind-sibling", "lww")
#: The ``--route`` choices: how clients pick coordinators.
ROUTES = ("spread", "same", "any")


def strategy_component(strategy: str, max_entries: int) -> tuple[str, dict[str, Any]]:
    """The conflict-resolver component (name, params) behind a strategy name."""
    if strategy == "vector-clock":
        return "vector-clock", {"max_entries": max_entries, "prune": True}
    if strategy == "vector-clock-unpruned":
        return "vector-clock", {"prune": False}
    if strategy == "dvv":
        return "dvv", {"blind_writes": "supersede"}
    if strategy == "dvv-blind-sibling":
        return "dvv", {"blind_writes": "sibling"}
    if strategy == "lww":
        return "lww", {}
    raise click.BadParameter(
        f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}",
        param_hint="--strategies",
    )


class _Truth:
    """Ground truth of the run: who saw what, and which writes were acknowledged.

    ``history`` credits a blind write with what its coordinator held;
    ``read_history`` only with what clients read (nothing, for a blind write).
    """

    def __init__(self) -> None:
        self.history: list[int] = []  # write id -> bitmask of the writes it follows
        self.read_history: list[int] = []  # the same, through client reads only
        self.blind: set[int] = set()  # ids of the writes made without a context
        self.acknowledged = 0  # bitmask of acknowledged write ids

    def new_write(self, seen: tuple[int, int], *, blind: bool = False) -> int:
        write_id = len(self.history)
        self.history.append(seen[0] | 1 << write_id)
        self.read_history.append(seen[1] | 1 << write_id)
        if blind:
            self.blind.add(write_id)
        return write_id

    def seen_by(self, values: Sequence[Any]) -> tuple[int, int]:
        mask = read_mask = 0
        for value in values:
            mask |= self.history[value]
            read_mask |= self.read_history[value]
        return mask, read_mask


class _HeldRecorder(ConflictResolver):
    """A node's resolver, unchanged, that tells ``truth`` what each blind write's coordinator held.

    The coordinator calls ``new_version`` with the versions it holds for the
    key, synchronously before anything else can land there, so this is
    exactly the set a superseding blind write replaces.
    """

    def __init__(self, inner: ConflictResolver, truth: _Truth) -> None:
        self.inner = inner
        self.truth = truth

    def blind_write_context(self, local: Sequence[Version]) -> VectorClock:
        """The wrapped resolver's answer."""
        return self.inner.blind_write_context(local)

    def reconcile(self, versions: Iterable[Version]) -> tuple[Version, ...]:
        """The wrapped resolver's answer."""
        return self.inner.reconcile(versions)

    def new_version(
        self,
        context: VectorClock,
        actor: str,
        value: bytes | None,
        timestamp: float,
        local: Sequence[Version] = (),
    ) -> Version:
        """The wrapped resolver's version; first credits a blind write with what it replaces."""
        write_id = decode_value(value) if value is not None else None
        if write_id in self.truth.blind:
            # Credit what the resolver declares a blind write to have read
            # (nothing under vector-clock, lww and dvv's "sibling" policy).
            context = self.inner.blind_write_context(local)
            held = [
                decode_value(v.value)
                for v in local
                if v.value is not None and context.descends(v.clock)
            ]
            self.truth.history[write_id] |= self.truth.seen_by(held)[0]
        return self.inner.new_version(context, actor, value, timestamp, local)


def _sample(cluster: Any, keys: Sequence[str], truth: _Truth) -> dict[str, Any]:
    """Figures of the replicas' current state (read directly from their stores)."""
    from dynamo_toolkit.values import decode_value, encode_key
    from dynamo_toolkit.versioning import VectorClock, encode_context

    resolver = next(iter(cluster.nodes.values())).resolver
    siblings: list[int] = []
    entries: list[int] = []
    context_bytes: list[int] = []
    metadata: list[int] = []
    false_siblings = 0
    covered = read_covered = 0
    for key in keys:
        stored = encode_key(key)
        held = [
            v for node_id in cluster.replicas(key) for v in cluster.node(node_id).store.read(stored)
        ]
        survivors = resolver.reconcile(held)
        if not survivors:
            continue
        ids = [decode_value(v.value) for v in survivors if v.value is not None]
        clock = VectorClock()
        for version in survivors:
            clock = clock.merge(version.clock)
        siblings.append(len(survivors))
        entries.append(len(clock))
        context_bytes.append(len(encode_context(clock)))
        metadata.append(sum(len(msgpack.packb(v.clock.to_wire())) for v in survivors))
        for write_id in ids:
            covered |= truth.history[write_id]
            read_covered |= truth.read_history[write_id]
            others = (truth.history[other] for other in ids if other != write_id)
            false_siblings += any(mask >> write_id & 1 for mask in others)
    lost = truth.acknowledged & ~covered
    # Kept only by crediting blind writes with what their coordinator held.
    overwritten = truth.acknowledged & covered & ~read_covered
    return {
        "siblings_mean": _mean(siblings),
        "siblings_max": max(siblings, default=0),
        "false_siblings": false_siblings,
        "clock_entries_mean": _mean(entries),
        "clock_entries_max": max(entries, default=0),
        "context_bytes_mean": _mean(context_bytes),
        "context_bytes_max": max(context_bytes, default=0),
        "metadata_bytes_mean": _mean(metadata),
        "lost": lost.bit_count(),
        "blind_overwritten": overwritten.bit_count(),
    }


def _mean(values: Sequence[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def run_strategy(
    strategy: str,
    *,
    nodes: int = 5,
    clients: int = 6,
    keys: int = 4,
    rounds: int = 100,
    stale: float = 0.2,
    stale_age: int = 5,
    route: str = "spread",
    think_ms: float = 5.0,
    max_entries: int = 10,
    every: int = 1,
    seed: int = 1,
    forward_writes: bool | None = None,
    on_round: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run the workload (see the module docstring) against one strategy.

    The clients' choices (key, staleness, think time) come from per-client
    generators seeded by ``seed`` and never depend on what a read returned, so
    every strategy faces the same sequence of decisions. Every round is
    measured for the summary; the returned series keeps every ``every``-th
    round and the last. ``forward_writes`` sets the store's option of that
    name (None: the store's default).
    """
    from dynamo_toolkit.config import ComponentChoice, StoreConfig
    from dynamo_toolkit.errors import DynamoError
    from dynamo_toolkit.in_process_cluster import Cluster
    from dynamo_toolkit.values import encode_key
    from dynamo_toolkit.virtual_time import run_virtual

    name, params = strategy_component(strategy, max_entries)
    store = StoreConfig() if forward_writes is None else StoreConfig(forward_writes=forward_writes)
    config = store.with_components(conflict_resolver=ComponentChoice(name, params))
    key_names = [f"key-{i}" for i in range(keys)]
    truth = _Truth()
    writes = 0

    async def scenario() -> dict[str, Any]:
        nonlocal writes
        series: list[dict[str, Any]] = []
        async with await Cluster.start(nodes, config, transport="simulated", seed=seed) as cluster:
            members = sorted(cluster.nodes)
            for node in cluster.nodes.values():
                node.resolver = _HeldRecorder(node.resolver, truth)
            loop = asyncio.get_running_loop()
            start = loop.time()
            rngs = [random.Random(f"{seed}/client/{c}") for c in range(clients)]
            # Per client and key: (round, context, seen mask) of each real read.
            reads: list[dict[str, list[tuple[int, bytes, tuple[int, int]]]]] = [
                {} for _ in range(clients)
            ]

            def coordinator(client: int, key: str) -> str:
                if route == "any":
                    return members[client % len(members)]
                replicas = cluster.replicas(key)
                return replicas[0] if route == "same" else replicas[client % len(replicas)]

            async def step(client: int, round_no: int) -> None:
                nonlocal writes
                rng = rngs[client]
                key = key_names[rng.randrange(keys)]
                is_stale = rng.random() < stale
                think = rng.uniform(0.0, think_ms) / 1000.0
                via = coordinator(client, key)
                if is_stale:
                    old = [r for r in reads[client].get(key, []) if r[0] <= round_no - stale_age]
                    _, context, seen = old[-1] if old else (round_no, b"", (0, 0))
                else:
                    try:
                        result = await cluster.get(key, via=via)
                    except DynamoError:
                        return
                    context, seen = result.context, truth.seen_by(result.values)
                    reads[client].setdefault(key, []).append((round_no, context, seen))
                await asyncio.sleep(think)
                write_id = truth.new_write(seen, blind=not context)
                writes += 1
                try:
                    await cluster.put(key, write_id, context or None, via=via)
                except DynamoError:
                    return  # not acknowledged: its loss would not be silent
                truth.acknowledged |= 1 << write_id

            for round_no in range(rounds):
                await asyncio.gather(*(step(c, round_no) for c in range(clients)))
                sample = _sample(cluster, key_names, truth)
                series.append({"round": round_no + 1, "t": loop.time() - start, **sample})
                if on_round is not None:
                    on_round()
            # Let the cluster settle: late replica writes land, then a full
            # read of every key repairs whatever replica still differs.
            await cluster.settle()
            for key in key_names:
                await cluster.get(key, r=config.n)
            await cluster.settle()
            final = _sample(cluster, key_names, truth)
            forwarded = sum(node.stats.forwarded_writes for node in cluster.nodes.values())
            converged = all(
                len({cluster.node(r).store.read(encode_key(key)) for r in cluster.replicas(key)})
                == 1
                for key in key_names
            )
        return {
            "strategy": strategy,
            "resolver": name,
            "resolver_params": params,
            "writes": writes,
            "acknowledged": truth.acknowledged.bit_count(),
            "lost": final["lost"],
            "lost_fraction": final["lost"] / max(1, truth.acknowledged.bit_count()),
            "blind_writes": len(truth.blind),
            "blind_overwritten": final["blind_overwritten"],
            "forwarded": forwarded,
            "converged": converged,
            "final": final,
            "summary": _summary(series),
            "rounds": [s for s in series if s["round"] % every == 0 or s["round"] == rounds],
        }

    return run_virtual(scenario())


def _summary(series: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Time averages of the per-round means, and maxima over the whole run."""
    count = max(1, len(series))
    return {
        "siblings_mean": sum(s["siblings_mean"] for s in series) / count,
        "siblings_max": max((s["siblings_max"] for s in series), default=0),
        "false_siblings_max": max((s["false_siblings"] for s in series), default=0),
        "clock_entries_mean": sum(s["clock_entries_mean"] for s in series) / count,
        "clock_entries_max": max((s["clock_entries_max"] for s in series), default=0),
        "context_bytes_mean": sum(s["context_bytes_mean"] for s in series) / count,
        "context_bytes_max": max((s["context_bytes_max"] for s in series), default=0),
        "metadata_bytes_mean": sum(s["metadata_bytes_mean"] for s in series) / count,
    }


def run_suite(
    strategies: Sequence[str], *, quiet: bool = True, **options: Any
) -> list[dict[str, Any]]:
    """:func:`run_strategy` for each strategy, with one progress bar over all rounds."""
    for strategy in strategies:
        strategy_component(strategy, 1)  # fail on a bad name before any run
    bar, task = progress(len(strategies) * options.get("rounds", 100), "resolvers", quiet)
    with bar:
        return [
            run_strategy(strategy, on_round=lambda: bar.advance(task), **options)
            for strategy in strategies
        ]


# -- the command -------------------------------------------------------------------


def _draw(payload: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    panels = (
        ("siblings_mean", "siblings per key (mean)"),
        ("clock_entries_mean", "context clock entries per key (mean)"),
        ("context_bytes_mean", "context bytes per key (mean)"),
        ("lost", "acknowledged writes lost (so far)"),
    )
    figure, grid = plt.subplots(2, 2, figsize=(11, 7.5))
    axes = list(grid.flat)
    styles = ("-", "--", "-", "-")
    for index, result in enumerate(payload["results"]):
        rounds = [s["round"] for s in result["rounds"]]
        for axis, (field, _) in zip(axes, panels, strict=True):
            axis.plot(
                rounds,
                [s[field] for s in result["rounds"]],
                styles[index % len(styles)],
                label=result["strategy"],
            )
    for axis, (_, label) in zip(axes, panels, strict=True):
        axis.set_xlabel("round")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
    axes[0].legend()
    p = payload["params"]
    figure.suptitle(
        f"{p['clients']} clients, {p['keys']} keys, {p['nodes']} nodes, route {p['route']}"
        f"{'' if p['forward_writes'] else ' (no forwarding)'}, "
        f"stale {p['stale']} (age {p['stale_age']}), seed {p['seed']}"
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


@click.command("resolvers")
@click.option(
    "--strategies",
    default=",".join(STRATEGIES),
    show_default=True,
    help="Comma-separated strategies.",
)
@click.option("--nodes", default=5, show_default=True, help="Cluster size (N = 3, R = W = 2).")
@click.option("--clients", default=6, show_default=True, help="Concurrent clients.")
@click.option("--keys", default=4, show_default=True, help="Keys the clients share.")
@click.option("--rounds", default=100, show_default=True, help="Read-modify-writes per client.")
@click.option(
    "--stale",
    default=0.2,
    show_default=True,
    help="Probability a write reuses an old context instead of a fresh read.",
)
@click.option(
    "--stale-age",
    default=5,
    show_default=True,
    help="How old (in rounds) a reused context is at least.",
)
@click.option(
    "--route",
    type=click.Choice(ROUTES),
    default="spread",
    show_default=True,
    help="Coordinators: replicas by client, the first replica, or any node.",
)
@click.option("--think", "think_ms", default=5.0, show_default=True, help="Max think time (ms).")
@click.option(
    "--max-entries",
    default=10,
    show_default=True,
    help="Pruning threshold of the pruned vector-clock strategy.",
)
@click.option(
    "--forward-writes/--no-forward-writes",
    default=None,
    help="Whether a node that is not a replica of a key forwards a write of it to a "
    "replica to coordinate (Dynamo 4.5). Default: the store's default, forward.",
)
@click.option(
    "--every",
    default=1,
    show_default=True,
    help="Keep every N-th round in the JSON series (summaries use all rounds).",
)
@suite_options
def command(
    strategies: str,
    nodes: int,
    clients: int,
    keys: int,
    rounds: int,
    stale: float,
    stale_age: int,
    route: str,
    think_ms: float,
    max_entries: int,
    forward_writes: bool | None,
    every: int,
    as_json: bool,
    plot_path: Path | None,
    seed: int,
) -> None:
    """Concurrent read-modify-writes: siblings, clock sizes and lost updates per resolver."""
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    if not names:
        raise click.BadParameter("name at least one strategy", param_hint="--strategies")
    if nodes < 3:
        raise click.BadParameter("the cluster needs at least 3 nodes (N = 3)")
    if min(clients, keys, rounds, max_entries, every) < 1:
        raise click.BadParameter(
            "--clients, --keys, --rounds, --max-entries and --every must be positive"
        )
    if not 0.0 <= stale <= 1.0 or stale_age < 0 or think_ms < 0:
        raise click.BadParameter("need 0 <= --stale <= 1, --stale-age >= 0 and --think >= 0")
    from dynamo_toolkit.config import StoreConfig

    forward = StoreConfig().forward_writes if forward_writes is None else forward_writes
    params = {
        "nodes": nodes,
        "n": 3,
        "r": 2,
        "w": 2,
        "clients": clients,
        "keys": keys,
        "rounds": rounds,
        "stale": stale,
        "stale_age": stale_age,
        "route": route,
        "think_ms": think_ms,
        "max_entries": max_entries,
        "forward_writes": forward,
        "every": every,
        "seed": seed,
    }
    results = run_suite(
        names,
        quiet=as_json,
        nodes=nodes,
        clients=clients,
        keys=keys,
        rounds=rounds,
        stale=stale,
        stale_age=stale_age,
        route=route,
        think_ms=think_ms,
        max_entries=max_entries,
        every=every,
        seed=seed,
        forward_writes=forward,
    )
    payload = {"params": params, "results": results}
    rows = [
        (
            r["strategy"],
            r["acknowledged"],
            r["forwarded"],
            f"{r['lost']} ({100 * r['lost_fraction']:.1f} %)",
            r["blind_overwritten"],
            r["summary"]["siblings_mean"],
            r["summary"]["siblings_max"],
            r["summary"]["false_siblings_max"],
            r["summary"]["clock_entries_mean"],
            r["summary"]["clock_entries_max"],
            r["summary"]["context_bytes_mean"],
            r["summary"]["context_bytes_max"],
        )
        for r in results
    ]
    emit(
        payload,
        as_json=as_json,
        title=(
            f"resolvers: {clients} clients, {keys} keys, {rounds} rounds, route {route}"
            f"{'' if forward else ' (no forwarding)'}, stale {stale} (age {stale_age}), "
            f"seed {seed}"
        ),
        columns=[
            "strategy",
            "acked",
            "forwarded",
            "lost",
            "blind-over-written",
            "siblings mean",
            "max",
            "false siblings max",
            "clock entries mean",
            "max",
            "context bytes mean",
            "max",
        ],
        rows=rows,
        plot_path=plot_path,
        draw=_draw,
    )
