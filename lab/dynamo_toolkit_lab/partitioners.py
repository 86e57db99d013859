"""``dtk bench partitioners``: balance, movement, lookup cost and metadata of partitioners.

For every strategy, parameter set and cluster size ``n`` (members ``node-0`` ..
``node-{n-1}``, capacity 1, or 1..4 drawn from ``--seed`` with
``--heterogeneous``):

* **load**: each member's share of the position space over its fair share
  ``capacity / total``; reported as the standard deviation and max/mean of that
  ratio over members. Exact: computed from partition widths, not sampled.
* **moved**: the fraction of the position space whose owner changes when
  ``node-{n}`` joins, and when a member drawn from ``--seed`` leaves (exact, from
  partition widths). ``ideal_moved`` is the newcomer's fair share (``1/(n+1)``
  with equal capacities); the table also shows the leaver's (``1/n``).
* **lookup**: microseconds per ``partition_of`` plus the first step of ``walk``,
  timed over ``--keys`` random positions (capped at 20,000 per table).
* **metadata**: ``table.metadata_size()``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dynamo_toolkit_lab.output import emit, int_list, progress, suite_options

if TYPE_CHECKING:
    from dynamo_toolkit.interfaces.partitioner import OwnershipTable, Partitioner
    from dynamo_toolkit.node_info import NodeInfo

__all__ = [
    "command",
    "load_stats",
    "moved_fraction",
    "owner_segments",
    "run_suite",
]

#: Most positions timed per table (the ``ring`` walk copies its token list per call).
LOOKUP_CAP = 20_000
_SPACE = 1 << 64

Factory = Callable[..., "Partitioner"]


def available_factories() -> dict[str, Factory]:
    """Every partitioner the plugin host registers, by name."""
    from dynamo_toolkit.plugin_host import load_plugins

    registry = load_plugins().registry
    factories: dict[str, Factory] = {}
    for name in registry.names("partitioner"):

        def build(_name: str = name, **params: Any) -> Partitioner:
            component: Partitioner = registry.create("partitioner", _name, **params)
            return component

        factories[name] = build
    return factories


def _param_sets(name: str, vnodes: Sequence[int], q: int) -> list[dict[str, Any]]:
    if name == "ring":
        return [{"vnodes_per_capacity": v} for v in vnodes]
    if name in ("fixed-q", "rendezvous", "jump", "maglev", "bounded-load"):
        return [{"q": q}]
    return [{}]


def _owner_function(table: OwnershipTable) -> Callable[[int], str]:
    owner = getattr(table, "owner", None)
    if callable(owner):
        return owner  # type: ignore[no-any-return]
    return lambda position: next(iter(table.walk(position)))


def owner_segments(table: OwnershipTable) -> list[tuple[int, str]]:
    """``(start, owner)`` of every partition, in position order."""
    owner = _owner_function(table)
    return [(start, owner(start)) for start in table.partitions()]


def load_stats(
    segments: Sequence[tuple[int, str]], members: Sequence[NodeInfo]
) -> tuple[float, float]:
    """(stddev, max/mean) over members of share / fair share, from segment widths."""
    owned = dict.fromkeys((m.node_id for m in members), 0)
    ends = [start for start, _ in segments[1:]] + [_SPACE]
    for (start, owner), end in zip(segments, ends, strict=True):
        owned[owner] += end - start
    total = sum(m.capacity for m in members)
    ratios = [owned[m.node_id] / _SPACE / (m.capacity / total) for m in members]
    mean = sum(ratios) / len(ratios)
    stddev = math.sqrt(sum((r - mean) ** 2 for r in ratios) / len(ratios))
    return stddev, max(ratios) / mean


def moved_fraction(before: Sequence[tuple[int, str]], after: Sequence[tuple[int, str]]) -> float:
    """Fraction of the position space whose owner differs between two segment lists."""
    moved = 0
    i = j = 0
    position = 0
    while position < _SPACE:
        while i + 1 < len(before) and before[i + 1][0] <= position:
            i += 1
        while j + 1 < len(after) and after[j + 1][0] <= position:
            j += 1
        end_i = before[i + 1][0] if i + 1 < len(before) else _SPACE
        end_j = after[j + 1][0] if j + 1 < len(after) else _SPACE
        end = min(end_i, end_j)
        if before[i][1] != after[j][1]:
            moved += end - position
        position = end
    return moved / _SPACE


def _lookup_us(table: OwnershipTable, positions: Sequence[int]) -> float:
    start = time.perf_counter()
    for position in positions:
        table.partition_of(position)
        next(iter(table.walk(position)))
    return (time.perf_counter() - start) / len(positions) * 1e6


def _membership(n: int, heterogeneous: bool, rng: random.Random) -> list[NodeInfo]:
    from dynamo_toolkit.node_info import NodeInfo

    return [
        NodeInfo(f"node-{i}", capacity=float(rng.randint(1, 4)) if heterogeneous else 1.0)
        for i in range(n)
    ]


def run_suite(
    *,
    node_counts: Sequence[int],
    strategies: Sequence[str] | None,
    vnodes: Sequence[int],
    q: int,
    keys: int,
    heterogeneous: bool,
    seed: int,
    quiet: bool = True,
) -> list[dict[str, Any]]:
    """Measure every (strategy, params, n); see the module docstring."""
    from dynamo_toolkit.node_info import NodeInfo

    factories = available_factories()
    names = sorted(factories) if strategies is None else list(strategies)
    unknown = [name for name in names if name not in factories]
    if unknown:
        raise click.BadParameter(
            f"unknown partitioner(s) {', '.join(unknown)}; known: {', '.join(sorted(factories))}",
            param_hint="--strategies",
        )
    position_rng = random.Random(f"{seed}/positions")
    positions = [position_rng.getrandbits(64) for _ in range(max(1, min(keys, LOOKUP_CAP)))]
    plan = [(name, params) for name in names for params in _param_sets(name, vnodes, q)]
    results: list[dict[str, Any]] = []
    bar, task = progress(len(plan) * len(node_counts), "partitioners", quiet)
    with bar:
        for n in node_counts:
            rng = random.Random(f"{seed}/{n}")
            members = _membership(n, heterogeneous, rng)
            newcomer = NodeInfo(
                f"node-{n}", capacity=float(rng.randint(1, 4)) if heterogeneous else 1.0
            )
            leaver = members[rng.randrange(n)] if n > 1 else None
            total = sum(m.capacity for m in members)
            for name, params in plan:
                partitioner = factories[name](**params)
                table = partitioner.assign(members)
                base = owner_segments(table)
                stddev, max_over_mean = load_stats(base, members)
                joined = owner_segments(partitioner.assign([*members, newcomer]))
                moved_remove = 0.0
                if leaver is not None:
                    rest = [m for m in members if m.node_id != leaver.node_id]
                    moved_remove = moved_fraction(base, owner_segments(partitioner.assign(rest)))
                results.append(
                    {
                        "strategy": name,
                        "params": dict(params),
                        "nodes": n,
                        "load_stddev": stddev,
                        "load_max_over_mean": max_over_mean,
                        "moved_on_add": moved_fraction(base, joined),
                        "moved_on_remove": moved_remove,
                        "ideal_moved": newcomer.capacity / (total + newcomer.capacity),
                        "ideal_moved_on_remove": (
                            leaver.capacity / total if leaver is not None else 0.0
                        ),
                        "lookup_us": _lookup_us(table, positions),
                        "metadata_bytes": table.metadata_size(),
                    }
                )
                bar.advance(task)
    return results


def _label(result: dict[str, Any]) -> str:
    params = ",".join(f"{k}={v}" for k, v in sorted(result["params"].items()))
    return f"{result['strategy']}({params})" if params else str(result["strategy"])


def _draw(payload: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    series: dict[str, list[dict[str, Any]]] = {}
    for result in payload["results"]:
        series.setdefault(_label(result), []).append(result)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for label, rows in series.items():
        rows = sorted(rows, key=lambda r: r["nodes"])
        xs = [r["nodes"] for r in rows]
        left.plot(xs, [r["load_max_over_mean"] for r in rows], marker="o", label=label)
        right.plot(xs, [r["moved_on_add"] for r in rows], marker="o", label=label)
    ideal = sorted({(r["nodes"], r["ideal_moved"]) for r in payload["results"]})
    right.plot([x for x, _ in ideal], [y for _, y in ideal], "k--", label="ideal")
    for axes, ylabel in ((left, "max / mean load"), (right, "fraction moved on join")):
        axes.set_xscale("log")
        axes.set_xlabel("nodes")
        axes.set_ylabel(ylabel)
        axes.grid(True, alpha=0.3)
    right.set_yscale("log")
    left.legend(fontsize="small")
    figure.suptitle("Partitioners: balance and movement")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


@click.command("partitioners")
@click.option("--nodes", default="10,100,1000", show_default=True, help="Cluster sizes.")
@click.option(
    "--strategies", default=None, help="Comma-separated partitioner names (default: all)."
)
@click.option("--vnodes", default="64", show_default=True, help="Vnodes per capacity for ring.")
@click.option("--q", "q", default=1024, show_default=True, help="Partitions (Q-based ones).")
@click.option("--keys", default=100_000, show_default=True, help="Positions timed for lookup.")
@click.option("--heterogeneous", is_flag=True, help="Capacities drawn from 1..4.")
@suite_options
def command(
    nodes: str,
    strategies: str | None,
    vnodes: str,
    q: int,
    keys: int,
    heterogeneous: bool,
    as_json: bool,
    plot_path: Path | None,
    seed: int,
) -> None:
    """Compare partitioners: balance, movement on join/leave, lookup cost, metadata."""
    if keys < 1 or q < 1:
        raise click.BadParameter("--keys and --q must be positive")
    names = [s.strip() for s in strategies.split(",") if s.strip()] if strategies else None
    results = run_suite(
        node_counts=int_list(nodes, "--nodes"),
        strategies=names,
        vnodes=int_list(vnodes, "--vnodes"),
        q=q,
        keys=keys,
        heterogeneous=heterogeneous,
        seed=seed,
        quiet=as_json,
    )
    payload = {
        "results": [{k: v for k, v in r.items() if k != "ideal_moved_on_remove"} for r in results]
    }
    rows = [
        (
            _label(r),
            r["nodes"],
            r["load_stddev"],
            r["load_max_over_mean"],
            r["moved_on_add"],
            r["ideal_moved"],
            r["moved_on_remove"],
            r["ideal_moved_on_remove"],
            r["lookup_us"],
            r["metadata_bytes"],
        )
        for r in results
    ]
    emit(
        payload,
        as_json=as_json,
        title="Partitioners" + (" (capacities 1..4)" if heterogeneous else ""),
        columns=[
            "strategy",
            "nodes",
            "load sd",
            "max/mean",
            "moved add",
            "ideal add",
            "moved remove",
            "ideal remove",
            "lookup µs",
            "metadata B",
        ],
        rows=rows,
        plot_path=plot_path,
        draw=_draw,
    )
