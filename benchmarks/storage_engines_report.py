"""The storage benchmark's outputs: the docs' tables, the plot, the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from storage_engines_workers import CODEC_ENGINE, ROUNDS

# -- outputs ----------------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _display(row: dict[str, Any]) -> str:
    """How tables and plots name an engine row (a variant's own label if it has one)."""
    return str(row.get("display", row["engine"]))


def table(results: dict[str, Any]) -> str:
    """The rst tables the docs include: engines, overheads, sync rows, codecs, cache, cluster."""
    rows = results["engines"]
    lines = [
        ".. list-table:: Engines, batched durability"
        f" ({results['pairs']:,} pairs; reads through ``cached`` at 10 % of the pairs, s3-fifo)",
        "   :header-rows: 1",
        "",
        "   * - engine",
        "     - durability",
        "     - puts/s",
        "     - bytes/pair on disk (closed; reopened)",
        "     - memory growth, bytes/pair (peak RSS; anonymous)",
        "     - gets/s, uniform, no cache",
        "     - gets/s, zipf, cached",
        "     - hit ratio",
    ]
    for row in rows:
        if row["kind"] != "engine":
            continue
        r = row["result"]
        lines += [
            f"   * - ``{_display(row)}``",
            f"     - {row['durability']}",
            f"     - {_rate(r['puts_per_s'])}",
            f"     - {r['bytes_per_pair']:.0f}; {r['bytes_per_pair_reopened']:.0f}",
            f"     - {r['rss_growth_per_pair']:.0f}; {r['anon_growth_per_pair']:.0f}",
            f"     - {_rate(r['gets_per_s'])}",
            f"     - {_rate(r['cached']['gets_per_s'])}",
            f"     - {r['cached']['hit_ratio']:.3f}",
        ]
    lines += [
        "",
        ".. list-table:: Time per operation over the raw binding's"
        " (1.00x: no overhead; target: 1.5x or less)",
        "   :header-rows: 1",
        "",
        "   * - engine",
        "     - raw binding",
        "     - load (inserts): puts/s engine / raw",
        "     - load ratio",
        f"     - updates (best of {ROUNDS}): puts/s engine / raw",
        "     - update ratio",
        f"     - gets (best of {ROUNDS}): gets/s engine / raw",
        "     - get ratio",
        "     - bytes/pair engine (reopened) / raw",
    ]
    for row in rows:
        if row["kind"] != "engine" or "raw" not in row["result"]:
            continue
        r = row["result"]
        o = r["raw"]["overhead"]
        lines += [
            f"   * - ``{_display(row)}``",
            f"     - ``{r['raw']['binding']}``",
            f"     - {_rate(r['puts_per_s'])} / {_rate(r['raw']['puts_per_s'])}",
            f"     - **{o['load']:.2f}x**",
            f"     - {_rate(o['engine_updates_per_s'])} / {_rate(o['raw_updates_per_s'])}",
            f"     - **{o['update']:.2f}x**",
            f"     - {_rate(o['engine_gets_per_s'])} / {_rate(o['raw_gets_per_s'])}",
            f"     - **{o['get']:.2f}x**",
            f"     - {r['bytes_per_pair_reopened']:.0f} / {r['raw']['bytes_per_pair']:.0f}",
        ]
    lines += [
        "",
        ".. list-table:: Sync durability (one commit and sync per write)",
        "   :header-rows: 1",
        "",
        "   * - engine",
        "     - durability",
        "     - writes",
        "     - puts/s",
    ]
    for row in rows:
        if row["kind"] == "sync":
            r = row["result"]
            lines += [
                f"   * - ``{_display(row)}``",
                f"     - {row['durability']}",
                f"     - {r['pairs']:,}",
                f"     - {_rate(r['puts_per_s'])}",
            ]
    codec_rows = [row for row in rows if row["kind"] == "codec"]
    if codec_rows:
        base = codec_rows[0]["result"]
        lines += [
            "",
            f".. list-table:: Codecs: ``compressed`` (threshold 0) over ``{CODEC_ENGINE}``, group",
            "   :header-rows: 1",
            "",
            "   * - codec",
            "     - stored / given bytes",
            "     - bytes/pair on disk",
            "     - puts/s",
            "     - gets/s (uniform)",
            "     - gets/s (zipf, cached)",
        ]
        for row in codec_rows:
            r = row["result"]
            size = r["bytes_per_pair"] / base["bytes_per_pair"]
            lines += [
                f"   * - ``{row['codec']}``",
                f"     - {r['compression_ratio']:.3f}",
                f"     - {r['bytes_per_pair']:.0f} ({size:.2f}x)",
                f"     - {_rate(r['puts_per_s'])} ({r['puts_per_s'] / base['puts_per_s']:.2f}x)",
                f"     - {_rate(r['gets_per_s'])} ({r['gets_per_s'] / base['gets_per_s']:.2f}x)",
                f"     - {_rate(r['cached']['gets_per_s'])}",
            ]
    costs = results.get("codec_costs", [])
    if costs:
        lines += [
            "",
            ".. list-table:: Codec cost per record: ``CompressedStorage.encode`` / ``decode``"
            " (threshold 0; stored bytes include the header)",
            "   :header-rows: 1",
            "",
            "   * - records",
            "     - codec",
            "     - stored / given bytes",
            "     - µs to encode",
            "     - µs to decode",
        ]
        for cost in costs:
            lines += [
                f"   * - {cost['records']} (~{cost['mean_bytes']:,.0f} B)",
                f"     - ``{cost['codec']}``",
                f"     - {cost['ratio']:.3f}",
                f"     - {cost['encode_us']:.1f}",
                f"     - {cost['decode_us']:.1f}",
            ]
    policy_row = next((row for row in rows if "policies" in row["result"]), None)
    if policy_row:
        r = policy_row["result"]
        lines += [
            "",
            f".. list-table:: Cache policies over ``{policy_row['engine']}``"
            f" (zipf 0.99, {results['pairs']:,} keys; optimum {results['a0_bound']:.3f})",
            "   :header-rows: 1",
            "",
            "   * - policy",
            "     - budget",
            "     - entries",
            "     - hit ratio",
            "     - gets/s",
        ]
        cases = [(name, "10 % of pairs", c) for name, c in r["policies"].items()]
        cases.append(("s3-fifo", "10 % of plain bytes", r["plain_bytes_budget"]))
        for name, budget, c in cases:
            lines += [
                f"   * - ``{name}``",
                f"     - {budget} ({c['budget_bytes'] / 2**20:.1f} MiB)",
                f"     - {c['entries']:,}",
                f"     - {c['hit_ratio']:.3f}",
                f"     - {_rate(c['gets_per_s'])}",
            ]
    cluster = results.get("cluster")
    if cluster:
        lines += [
            "",
            ".. list-table:: Cluster: 3 nodes, N=3 R=2 W=2,"
            f" ``cached`` over ``{cluster['engine']['name']}``",
            "   :header-rows: 1",
            "",
            "   * - pairs",
            "     - puts/s",
            "     - zipf gets/s",
            "     - reads served from memory n1 / n2 / n3",
            "     - of which by the ``cached`` wrapper (its hit ratio)",
            "     - bytes/pair on disk, per node",
        ]

        def per_node(field: str) -> str:
            values = [node.get(field) for node in cluster["per_node"].values()]
            return " / ".join("-" if v is None else f"{v:.3f}" for v in values)

        size = sum(cluster["bytes_per_pair_per_node"].values()) / 3
        lines += [
            f"   * - {cluster['pairs']:,}",
            f"     - {_rate(cluster['puts_per_s'])}",
            f"     - {_rate(cluster['gets_per_s'])}",
            f"     - {per_node('memory_hit_ratio')}",
            f"     - {per_node('cache_hit_ratio')}",
            f"     - {size:.0f}",
        ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Bytes/pair and load rate per engine and codec; hit ratio per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in results["engines"] if row["kind"] in ("engine", "codec")]
    labels = [
        _display(row) if row["kind"] == "engine" else f"{CODEC_ENGINE}+{row['codec']}"
        for row in rows
    ]
    colors = ["tab:blue" if row["kind"] == "engine" else "tab:green" for row in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    on_disk = [row["result"]["bytes_per_pair_reopened"] for row in rows]
    sizes = axes[0].barh(labels, on_disk, color=colors)
    axes[0].bar_label(sizes, fmt="%.0f", padding=2, fontsize=8)
    axes[0].set_xlabel("bytes per pair on disk (closed, reopened, closed)")
    axes[0].invert_yaxis()
    rates = [row["result"]["puts_per_s"] / 1000 for row in rows]
    bars = axes[1].barh(labels, rates, color=colors)
    axes[1].bar_label(bars, fmt="%.0fk", padding=2, fontsize=8)
    axes[1].set_xlabel("load rate, thousand puts/s (flush every 10,000)")
    axes[1].invert_yaxis()
    axes[1].set_yticklabels([])
    for axis in axes[:2]:
        axis.margins(x=0.15)
    policy_row = next((row for row in rows if "policies" in row["result"]), None)
    if policy_row:
        r = policy_row["result"]
        cases = {name: c["hit_ratio"] for name, c in r["policies"].items()}
        cases["s3-fifo,\n10 % of\nplain bytes"] = r["plain_bytes_budget"]["hit_ratio"]
        cases["s3-fifo behind\nReplicaStore\n(combined)"] = r["replica_store"]["combined_hit_ratio"]
        bars = axes[2].bar(list(cases), list(cases.values()), color="tab:orange")
        axes[2].bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
        axes[2].axhline(results["a0_bound"], color="black", linestyle="--", linewidth=0.8)
        axes[2].axhline(0.8, color="tab:red", linestyle=":", linewidth=0.8)
        axes[2].set_ylim(0.5, max(0.9, max(cases.values()) + 0.05))
        axes[2].set_ylabel("hit ratio")
        axes[2].tick_params(axis="x", labelsize=8)
        axes[2].set_title(
            f"zipf 0.99, cache = 10 % of {results['pairs']:,} pairs\n"
            f"dashed: optimum {results['a0_bound']:.3f}; dotted: 0.8 target",
            fontsize=9,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(results: dict[str, Any], out: Path, image: Path) -> None:
    """The JSON, the docs table and the plot."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "storage_engines.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "storage_engines_table.inc").write_text(table(results))
    try:
        plot(results, image)
    except ImportError:
        print("matplotlib not installed: no plot (pip install -e '.[bench]')")
