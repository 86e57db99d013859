"""``dtk bench anti-entropy``: what it costs to reconcile ``d`` differing keys among ``n``.

Each case starts two nodes, ``a`` (the initiator) and ``b`` (the peer), that
replicate a single partition (``fixed-q`` with ``q = 1``, N = 2) on the
``simulated`` transport and virtual time. Both stores are filled directly
(no coordinator) with ``n`` keys ``key:00000000`` ... of which ``d``, drawn
from ``--seed``, differ in one of these ways (``--kind``):

``changed``
   Both replicas hold the key; the peer's version is newer (a write ``a`` missed).
``missing``
   Only the peer holds the key (``a`` was down when it was written).
``extra``
   Only the initiator holds it, so the exchange pushes it to the peer.
``mixed``
   The ``d`` keys are dealt in turn to ``changed``, ``missing`` and ``extra``.

Then ``a`` runs the real exchange,
:func:`dynamo_toolkit.anti_entropy_exchange.exchange`, once, and the network
is watched: every packet of the exchange is sized as the ``tcp`` transport
would frame it (msgpack ``[kind, request_id, body]`` of
:func:`dynamo_toolkit.message_codec.encode_message`; no TCP/IP headers). Packets are
filed in three phases: **compare** (the digest walk that finds the differing
keys), **repair** (fetching their records and pushing merged ones) and
**verify** (the final root comparison). A *round trip* is a wave of requests
sent while none is outstanding; the exchange awaits each request, so here
every request is one.

Next to each measurement the suite prints an analytic estimate for the
compare phase, computed from ``n``, ``d``, the digest's shape and the key
length only (:func:`estimate_compare`): ``depth + 2`` round trips (the root,
one per inner level, the leaves), and bytes from the expected number of
differing nodes per level, ``B (1 - (1 - 1/B)^d)`` of the ``B = fanout^level``
nodes, each costing ``fanout`` 16-byte hashes, plus the ``{key: hash}`` items
of the differing leaves. ``full-exchange`` is the depth-0 case: two round
trips and every item of the partition.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dynamo_toolkit_lab.output import emit, int_list, name_list, progress, suite_options
from dynamo_toolkit_lab.traffic import ObservableNetwork, frame_bytes, observable

if TYPE_CHECKING:
    from dynamo_toolkit.in_process_cluster import Cluster
    from dynamo_toolkit_plugins.transport.simulated import Packet

__all__ = [
    "KINDS",
    "command",
    "crossover_estimate",
    "estimate_compare",
    "measure_case",
    "merkle_shapes",
    "run_suite",
]

#: The kinds of difference (see the module docstring).
KINDS = ("changed", "missing", "extra", "mixed")
#: Hash size of both built-in digests (node hashes and record hashes).
HASH_BYTES = 16
#: Keys are ``key:%08d``.
KEY_BYTES = 12
#: Keys per RecordsQuery (the exchange's batch).
RECORDS_BATCH = 256
#: Leaves a merkle shape may have (the plugin refuses more).
MAX_LEAVES = 1 << 24
#: Frame kinds as the ``tcp`` transport numbers them.
_PHASES = ("compare", "repair", "verify")
_INITIATOR, _PEER = "a", "b"


def _key(index: int) -> bytes:
    return b"key:%08d" % index


# -- the analytic model (pure) ------------------------------------------------------


def _int_size(value: int) -> int:
    """msgpack size of a non-negative integer."""
    if value < 128:
        return 1
    if value < 256:
        return 2
    if value < 65536:
        return 3
    return 5 if value < 1 << 32 else 9


def _container_header(count: float) -> int:
    """msgpack header of an array or map of ``count`` entries."""
    return 1 if count < 16 else 3 if count < 65536 else 5


def _bin_size(length: int) -> int:
    return length + (2 if length < 256 else 3 if length < 65536 else 5)


def _mean_index_size(nodes: int) -> float:
    """Mean msgpack size of an index drawn uniformly from ``range(nodes)``."""
    total, low = 0.0, 0
    for high, size in ((128, 1), (256, 2), (65536, 3), (1 << 32, 5), (1 << 64, 9)):
        if nodes > low:
            total += (min(nodes, high) - low) * size
        low = high
    return total / nodes


def _occupied(bins: int, balls: int) -> float:
    """Expected non-empty bins when ``balls`` land uniformly in ``bins``."""
    if balls <= 0:
        return 0.0
    return bins * -math.expm1(balls * math.log1p(-1.0 / bins)) if bins > 1 else 1.0


def _split(kind: str, d: int) -> tuple[int, int, int]:
    """(changed, missing, extra) counts of ``d`` differences of ``kind``."""
    if kind == "changed":
        return d, 0, 0
    if kind == "missing":
        return 0, d, 0
    if kind == "extra":
        return 0, 0, d
    return (d + 2) // 3, (d + 1) // 3, d // 3


def estimate_compare(
    *,
    fanout: int,
    depth: int,
    keys: int,
    diffs: int,
    kind: str = "changed",
    key_bytes: int = KEY_BYTES,
) -> dict[str, float]:
    """Expected round trips and bytes of the compare phase, without running anything.

    ``depth = 0`` is ``full-exchange`` (``fanout`` is then ignored). Frames are
    sized as msgpack ``[kind, id, [tag, ...]]`` with a 2-byte request id; the
    differing keys are assumed to fall in leaves independently and uniformly.
    Also returns ``round_trips``: the whole exchange's, with the repair phase's
    ``ceil(d / 256)`` record fetches, each followed by one wave of pushes
    when the peer lacks some of its keys, and the final root check.
    """
    frame = 1 + 1 + 2 + 1 + 2  # [kind, id, [tag, ...]] around the message fields
    hash_item = _bin_size(HASH_BYTES)

    def request(level: int, count: float, nodes: int) -> float:
        # TreeQuery: partition id (0 here: 1 byte), level, the indices asked.
        indices = count * _mean_index_size(nodes) if count else 0.0
        return frame + 1 + 1 + _container_header(count) + indices

    def reply(count: float, items: float) -> float:
        return frame + 1 + _container_header(count) + items

    changed, missing, extra = _split(kind, diffs)
    sent = request(-1, 0, 1)
    received = reply(1, hash_item)
    round_trips = 1
    if diffs > 0:
        frontier = 1.0
        for level in range(depth):
            # Ask for the children of the differing nodes at ``level``.
            sent += request(level, frontier, fanout**level)
            received += reply(frontier, frontier * (_container_header(fanout) + fanout * hash_item))
            frontier = _occupied(fanout ** (level + 1), diffs)
        leaves = fanout**depth if depth else 1
        # The peer's items of the differing leaves: its own differing keys, plus
        # the keys both hold that share a leaf with a difference.
        items = (keys - diffs) * frontier / leaves + changed + missing
        per_leaf = items / frontier
        sent += request(depth, frontier, leaves)
        received += reply(
            frontier,
            frontier * _container_header(per_leaf) + items * (_bin_size(key_bytes) + hash_item),
        )
        round_trips += depth + 1
    compare_round_trips = round_trips
    if diffs > 0:
        batches = math.ceil(diffs / RECORDS_BATCH)
        # Each batch of fetched records is followed by one wave of pushes if the
        # peer lacks any of its keys (extra keys are spread over the batches).
        round_trips += batches + min(batches, extra) + 1
    return {
        "compare_round_trips": compare_round_trips,
        "compare_bytes_sent": sent,
        "compare_bytes_received": received,
        "round_trips": round_trips,
    }


def crossover_estimate(
    *, fanout: int, depth: int, keys: int, kind: str = "changed", key_bytes: int = KEY_BYTES
) -> int | None:
    """Smallest ``d`` at which merkle's compare phase costs more bytes than full exchange.

    ``None`` if merkle stays cheaper up to ``d = keys``. Both directions count.
    """

    def excess(d: int) -> float:
        shape = estimate_compare(
            fanout=fanout, depth=depth, keys=keys, diffs=d, kind=kind, key_bytes=key_bytes
        )
        flat = estimate_compare(
            fanout=fanout, depth=0, keys=keys, diffs=d, kind=kind, key_bytes=key_bytes
        )
        total = shape["compare_bytes_sent"] + shape["compare_bytes_received"]
        return total - flat["compare_bytes_sent"] - flat["compare_bytes_received"]

    if keys < 1 or excess(keys) <= 0:
        return None
    # merkle's excess grows with d (more differing nodes and leaves); bisect.
    low, high = 0, keys
    while high - low > 1:
        middle = (low + high) // 2
        if excess(middle) > 0:
            high = middle
        else:
            low = middle
    return high


# -- the measurement --------------------------------------------------------------


class _Meter:
    """Observes the simulated network to size and file the exchange's packets."""

    def __init__(self) -> None:
        self.recording = False
        self.phase_of: dict[int, str] = {}
        self.seen_root = False
        self.in_flight = 0
        self.counts = {
            phase: {"bytes_sent": 0, "bytes_received": 0, "messages": 0, "round_trips": 0}
            for phase in _PHASES
        }

    def install(self, network: ObservableNetwork) -> None:
        from dynamo_toolkit.messages import RecordsQuery, ReplicaWrite, TreeQuery

        def observe(source: str, dest: str, packet: Packet) -> None:
            if self.recording:
                body, kind = packet.body, packet.kind
                phase = None
                if kind == "req" and (source, dest) == (_INITIATOR, _PEER):
                    if isinstance(body, TreeQuery):
                        verify = body.level < 0 and self.seen_root
                        self.seen_root = True
                        phase = "verify" if verify else "compare"
                    elif isinstance(body, RecordsQuery | ReplicaWrite):
                        phase = "repair"
                    if phase is not None:
                        self.phase_of[packet.request_id] = phase
                        # A request sent while none is outstanding starts a wave.
                        if self.in_flight == 0:
                            self.counts[phase]["round_trips"] += 1
                        self.in_flight += 1
                elif kind in ("rep", "err") and (source, dest) == (_PEER, _INITIATOR):
                    phase = self.phase_of.pop(packet.request_id, None)
                    if phase is not None:
                        self.in_flight -= 1
                if phase is not None:
                    size = frame_bytes(kind, packet.request_id, body)
                    side = "bytes_sent" if source == _INITIATOR else "bytes_received"
                    self.counts[phase][side] += size
                    self.counts[phase]["messages"] += 1

        network.add_observer(observe)


def _config(strategy: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "store": {
            "n": 2,
            "r": 1,
            "w": 1,
            "sloppy_quorum": False,
            # No background pass may run an exchange of its own meanwhile.
            "anti_entropy_interval": 1e9,
            "request_timeout": 600.0,
        },
        "partitioner": {"name": "fixed-q", "q": 1},
        "anti_entropy": {"name": strategy, **params},
    }


def _fill(cluster: Cluster, keys: int, diffs: int, kind: str, value_size: int, seed: int) -> None:
    """Load both replicas: ``keys`` keys, ``diffs`` of them differing as ``kind`` says.

    Records go straight to each node's engine and digest, exactly as
    ``ReplicaStore.apply`` would store a single version, but without its
    reconcile and decoded-record cache, which a bulk load does not need.
    """
    from dynamo_toolkit.replica_store import ReplicaStore, record_hash
    from dynamo_toolkit.values import key_position
    from dynamo_toolkit.versioning import VectorClock, Version, pack_versions

    rng = random.Random(f"{seed}/{keys}/{diffs}/{kind}")
    differing = rng.sample(range(keys), diffs)
    # Dealt in turn, so ``mixed`` interleaves its three kinds over the key space.
    role = {
        index: ("changed", "missing", "extra")[turn % 3] for turn, index in enumerate(differing)
    }
    if kind != "mixed":
        role = dict.fromkeys(differing, kind)
    old, new = VectorClock.from_counters({"c": 1}), VectorClock.from_counters({"c": 2})
    initiator, peer = cluster.node(_INITIATOR), cluster.node(_PEER)

    def store(
        target: ReplicaStore, partition: int, key: bytes, position: int, record: bytes
    ) -> None:
        target.engine.put(key, position, record)
        target.digest(partition).update(key, record_hash(record))

    for index in range(keys):
        key = _key(index)
        position = key_position(key)
        partition = initiator.table.partition_of(position)
        pad = key * (value_size // len(key) + 1)
        first = pack_versions((Version(old, pad[:value_size], 0.0),))
        what = role.get(index)
        if what != "missing":
            store(initiator.store, partition, key, position, first)
        if what == "changed":
            newer = pack_versions((Version(new, pad[::-1][:value_size], 0.0),))
            store(peer.store, partition, key, position, newer)
        elif what != "extra":
            store(peer.store, partition, key, position, first)


def measure_case(
    *,
    strategy: str,
    params: dict[str, Any],
    keys: int,
    diffs: int,
    kind: str,
    value_size: int,
    seed: int,
) -> dict[str, Any]:
    """Run one exchange between two replicas and return what crossed the network."""
    from dynamo_toolkit.anti_entropy_exchange import exchange
    from dynamo_toolkit.in_process_cluster import Cluster
    from dynamo_toolkit.virtual_time import run_virtual

    meter = _Meter()

    async def scenario() -> dict[str, Any]:
        async with await Cluster.start(
            [_INITIATOR, _PEER], _config(strategy, params), transport="simulated", seed=seed
        ) as cluster:
            _fill(cluster, keys, diffs, kind, value_size, seed)
            partition = cluster.node(_INITIATOR).table.partitions()[0]
            mine = cluster.node(_INITIATOR).store.digest(partition)
            theirs = cluster.node(_PEER).store.digest(partition)
            differing = len(mine.diff(theirs))
            meter.install(observable(cluster.network))
            meter.recording = True
            stats, in_sync = await exchange(cluster.node(_INITIATOR), partition, _PEER)
            meter.recording = False
            roots_equal = mine.root() == theirs.root()
            return {
                "differing": differing,
                "repaired": stats.keys_repaired,
                "in_sync": in_sync and roots_equal,
                "exchange_round_trips": stats.round_trips,
            }

    outcome = run_virtual(scenario())
    phases = meter.counts
    totals = {
        field: sum(phases[phase][field] for phase in _PHASES)
        for field in ("bytes_sent", "bytes_received", "messages", "round_trips")
    }
    if totals["round_trips"] != outcome["exchange_round_trips"]:
        # Every request of the exchange must have been seen and sized.
        raise RuntimeError(
            f"metered {totals['round_trips']} round trips, the exchange counted "
            f"{outcome['exchange_round_trips']}"
        )
    depth = 0 if strategy == "full-exchange" else int(params.get("depth", 3))
    fanout = int(params.get("fanout", 16))
    return {
        "strategy": strategy,
        "params": dict(params),
        "keys": keys,
        "diffs": diffs,
        "kind": kind,
        "differing": outcome["differing"],
        "repaired": outcome["repaired"],
        "in_sync": outcome["in_sync"],
        **totals,
        "phases": {phase: dict(phases[phase]) for phase in _PHASES},
        "estimate": estimate_compare(fanout=fanout, depth=depth, keys=keys, diffs=diffs, kind=kind),
    }


def merkle_shapes(
    depths: Sequence[int], fanouts: Sequence[int], shapes: Sequence[tuple[int, int]] = ()
) -> list[dict[str, int]]:
    """Merkle parameters: ``shapes`` (fanout, depth) if given, else each fan-out with each depth.

    Shapes with more than ``2 ** 24`` leaves (the plugin's limit) are left out.
    """
    pairs = list(shapes) if shapes else [(f, d) for d in depths for f in fanouts]
    return [{"fanout": f, "depth": d} for f, d in pairs if f**d <= MAX_LEAVES]


def run_suite(
    *,
    keys: Sequence[int],
    diffs: Sequence[int],
    strategies: Sequence[str],
    shapes: Sequence[dict[str, int]],
    kinds: Sequence[str],
    value_size: int,
    seed: int,
    quiet: bool = True,
) -> dict[str, Any]:
    """Measure every (kind, n, strategy, shape, d) with ``d <= n``; the JSON payload."""
    plan = [
        (kind, n, strategy, params, d)
        for kind in kinds
        for n in keys
        for strategy in strategies
        for params in (shapes if strategy == "merkle" else [{}])
        for d in diffs
        if d <= n
    ]
    results = []
    bar, task = progress(len(plan), "anti-entropy", quiet)
    with bar:
        for kind, n, strategy, params, d in plan:
            results.append(
                measure_case(
                    strategy=strategy,
                    params=params,
                    keys=n,
                    diffs=d,
                    kind=kind,
                    value_size=value_size,
                    seed=seed,
                )
            )
            bar.advance(task)
    return {
        "kinds": list(kinds),
        "value_size": value_size,
        "key_bytes": KEY_BYTES,
        "hash_bytes": HASH_BYTES,
        "seed": seed,
        "results": results,
        "crossover": _crossovers(results),
    }


def _compare_bytes(result: dict[str, Any]) -> int:
    compare = result["phases"]["compare"]
    return int(compare["bytes_sent"] + compare["bytes_received"])


def _crossovers(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kind, n and merkle shape: from which d full exchange compares for fewer bytes."""
    flat = {
        (r["kind"], r["keys"], r["diffs"]): r for r in results if r["strategy"] == "full-exchange"
    }
    shapes: dict[tuple[str, int, int, int], list[dict[str, Any]]] = {}
    for r in results:
        if r["strategy"] == "merkle":
            key = (r["kind"], r["keys"], r["params"]["fanout"], r["params"]["depth"])
            shapes.setdefault(key, []).append(r)
    crossovers = []
    for (kind, n, fanout, depth), rows in sorted(shapes.items()):
        measured: list[int] | None = None
        previous = 0
        for r in sorted(rows, key=lambda row: row["diffs"]):
            base = flat.get((kind, n, r["diffs"]))
            if base is None or r["diffs"] == 0:
                continue  # with equal roots both strategies stop after one round trip
            if _compare_bytes(r) > _compare_bytes(base):
                measured = [previous, r["diffs"]]
                break
            previous = r["diffs"]
        crossovers.append(
            {
                "kind": kind,
                "keys": n,
                "params": {"fanout": fanout, "depth": depth},
                "estimate": crossover_estimate(fanout=fanout, depth=depth, keys=n, kind=kind),
                "measured_between": measured,
            }
        )
    return crossovers


# -- output -------------------------------------------------------------------------


def _label(result: dict[str, Any]) -> str:
    params = result["params"]
    if params:
        return f"{result['strategy']}({params['fanout']}^{params['depth']})"
    return str(result["strategy"])


def _draw(payload: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    results = payload["results"]
    series: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for result in results:
        series.setdefault((_label(result), result["keys"], result["kind"]), []).append(result)
    # Colour by strategy; line style by (n, kind) when a run has several.
    variants = sorted({(n, kind) for _, n, kind in series})
    styles = ["-", ":", "-.", "--"]
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 5))
    colors: dict[str, Any] = {}
    for (label, n, kind), rows in series.items():
        rows = sorted((r for r in rows if r["diffs"] > 0), key=lambda r: r["diffs"])
        if not rows:
            continue  # d = 0 has no place on a log axis
        xs = [r["diffs"] for r in rows]
        style = styles[variants.index((n, kind)) % len(styles)]
        name = label
        if len({v[0] for v in variants}) > 1:
            name += f", n={n}"
        if len({v[1] for v in variants}) > 1:
            name += f", {kind}"
        line_args: dict[str, Any] = {"marker": "o", "ls": style, "label": name}
        if label in colors:
            line_args["color"] = colors[label]
        (line,) = left.plot(xs, [_compare_bytes(r) for r in rows], **line_args)
        colors[label] = line_args["color"] = line.get_color()
        estimate = [
            r["estimate"]["compare_bytes_sent"] + r["estimate"]["compare_bytes_received"]
            for r in rows
        ]
        left.plot(xs, estimate, ls="none", marker="x", ms=9, color=colors[label])
        middle.plot(xs, [r["bytes_sent"] + r["bytes_received"] for r in rows], **line_args)
        right.plot(xs, [r["round_trips"] for r in rows], **line_args)
    left.set_title("compare phase: bytes to find the differences\n(x: analytic estimate)")
    middle.set_title("whole exchange: bytes, both ways")
    right.set_title("whole exchange: round trips")
    for axes, ylabel in ((left, "bytes"), (middle, "bytes"), (right, "round trips")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("differing keys d")
        axes.set_ylabel(ylabel)
        axes.grid(True, alpha=0.3)
    left.legend(fontsize="small")
    sizes = sorted({r["keys"] for r in results})
    figure.suptitle(
        f"Anti-entropy: reconciling d of n = {', '.join(map(str, sizes))} keys "
        f"({', '.join(payload['kinds'])})"
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _shape_list(text: str) -> list[tuple[int, int]]:
    shapes = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        fanout, sep, depth = part.lower().partition("x")
        if not sep or not fanout.isdigit() or not depth.isdigit():
            raise click.BadParameter(f"expected FANOUTxDEPTH, got {part!r}", param_hint="--shapes")
        if int(fanout) < 2 or int(depth) < 1:
            raise click.BadParameter(
                f"need fanout >= 2 and depth >= 1, got {part!r}", param_hint="--shapes"
            )
        shapes.append((int(fanout), int(depth)))
    return shapes


def _thousands(value: float) -> str:
    return f"{value:,.0f}"


@click.command("anti-entropy")
@click.option("--keys", default="10000", show_default=True, help="Keys per partition (n).")
@click.option(
    "--diffs", default="1,10,100,1000,10000", show_default=True, help="Differing keys (d)."
)
@click.option(
    "--strategies",
    default="merkle,full-exchange",
    show_default=True,
    help="Comma-separated: merkle, full-exchange.",
)
@click.option("--depth", "depths", default="3", show_default=True, help="Merkle depths.")
@click.option("--fanout", "fanouts", default="16", show_default=True, help="Merkle fan-outs.")
@click.option(
    "--shapes",
    default=None,
    help="Merkle shapes FANOUTxDEPTH (e.g. 2x12,16x3) instead of each --fanout with each --depth.",
)
@click.option(
    "--kind",
    "kinds",
    default="changed",
    show_default=True,
    help=f"How the keys differ, comma-separated: {', '.join(KINDS)}.",
)
@click.option("--value-size", default=100, show_default=True, help="Bytes per value.")
@suite_options
def command(
    keys: str,
    diffs: str,
    strategies: str,
    depths: str,
    fanouts: str,
    shapes: str | None,
    kinds: str,
    value_size: int,
    as_json: bool,
    plot_path: Path | None,
    seed: int,
) -> None:
    """Bytes, messages and round trips to reconcile d differing keys among n."""
    names = name_list(strategies, ("merkle", "full-exchange"), "--strategies")
    kind_names = name_list(kinds, KINDS, "--kind")
    if value_size < 1:
        raise click.BadParameter("--value-size must be positive", param_hint="--value-size")
    key_counts = int_list(keys, "--keys", 1)
    diff_counts = int_list(diffs, "--diffs", 0)
    skipped = sorted({d for d in diff_counts if d > max(key_counts)})
    if skipped:
        click.echo(f"warning: --diffs {skipped} exceed every --keys; skipped", err=True)
    shape_params = merkle_shapes(
        int_list(depths, "--depth", 1),
        int_list(fanouts, "--fanout", 2),
        _shape_list(shapes) if shapes else (),
    )
    if "merkle" in names and not shape_params:
        raise click.BadParameter(f"every merkle shape has more than {MAX_LEAVES} leaves")
    payload = run_suite(
        keys=key_counts,
        diffs=diff_counts,
        strategies=names,
        shapes=shape_params,
        kinds=kind_names,
        value_size=value_size,
        seed=seed,
        quiet=as_json,
    )
    rows = []
    for r in payload["results"]:
        compare, estimate = r["phases"]["compare"], r["estimate"]
        flag = "" if r["repaired"] == r["diffs"] and r["in_sync"] else " (!)"
        rows.append(
            (
                _label(r),
                r["kind"],
                r["keys"],
                r["diffs"],
                f"{r['repaired']}{flag}",
                f"{compare['bytes_sent']:,} / {compare['bytes_received']:,}",
                _thousands(estimate["compare_bytes_sent"] + estimate["compare_bytes_received"]),
                f"{compare['round_trips']} / {estimate['compare_round_trips']}",
                f"{r['bytes_sent']:,} / {r['bytes_received']:,}",
                r["messages"],
                f"{r['round_trips']} / {estimate['round_trips']}",
            )
        )
    emit(
        payload,
        as_json=as_json,
        title=f"Anti-entropy (values of {value_size} B, seed {seed})",
        columns=[
            "strategy",
            "kind",
            "n",
            "d",
            "repaired",
            "compare B a→b / b→a",
            "est. B",
            "compare RT / est.",
            "total B a→b / b→a",
            "msgs",
            "RT / est.",
        ],
        rows=rows,
        plot_path=plot_path,
        draw=_draw,
    )
    if not as_json:
        for c in payload["crossover"]:
            shape = f"merkle({c['params']['fanout']}^{c['params']['depth']})"
            measured = c["measured_between"]
            seen = (
                f"measured: between d={measured[0]} and d={measured[1]}"
                if measured
                else "measured: not within the d run"
            )
            estimate = "never" if c["estimate"] is None else f"d >= {c['estimate']}"
            click.echo(
                f"{shape}, n={c['keys']}, {c['kind']}: full exchange compares for fewer bytes "
                f"from {estimate} (estimate); {seen}"
            )
