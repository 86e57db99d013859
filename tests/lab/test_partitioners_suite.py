"""``dtk bench partitioners``: JSON schema, movement near ideal, seeded determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit_lab.partitioners import command, load_stats, moved_fraction
from dynamo_toolkit_plugins.partitioning.fixed_q import FixedQPartitioner, quotas
from testsupport.lab import run_suite

FIELDS = {
    "strategy",
    "params",
    "nodes",
    "load_stddev",
    "load_max_over_mean",
    "moved_on_add",
    "moved_on_remove",
    "ideal_moved",
    "lookup_us",
    "metadata_bytes",
}
ALL = ["bounded-load", "fixed-q", "jump", "maglev", "rendezvous", "ring"]


def run(*args: str) -> dict[str, Any]:
    return run_suite(command, *args)


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    return run("--nodes", "5,10", "--keys", "200", "--q", "512")


def test_json_schema(small: dict[str, Any]) -> None:
    assert set(small) == {"results"}
    results = small["results"]
    assert sorted({r["strategy"] for r in results}) == ALL
    assert len(results) == 2 * len(ALL)
    for r in results:
        assert set(r) == FIELDS
        assert r["nodes"] in (5, 10)
        assert isinstance(r["params"], dict)
        assert r["load_stddev"] >= 0
        assert r["load_max_over_mean"] >= 1
        assert 0 <= r["moved_on_add"] <= 1
        assert 0 <= r["moved_on_remove"] <= 1
        assert r["ideal_moved"] == pytest.approx(1 / (r["nodes"] + 1))
        assert r["lookup_us"] > 0
        assert r["metadata_bytes"] > 0
    ring = next(r for r in results if r["strategy"] == "ring")
    assert ring["params"] == {"vnodes_per_capacity": 64}


@pytest.mark.parametrize("strategy", ["ring", "rendezvous", "fixed-q"])
def test_moved_fractions_near_ideal(small: dict[str, Any], strategy: str) -> None:
    for r in small["results"]:
        if r["strategy"] == strategy:
            ideal_remove = 1 / r["nodes"]
            assert 0.4 * r["ideal_moved"] <= r["moved_on_add"] <= 2 * r["ideal_moved"], r
            assert 0.4 * ideal_remove <= r["moved_on_remove"] <= 2 * ideal_remove, r


def test_fixed_q_balance_is_exact(small: dict[str, Any]) -> None:
    for r in small["results"]:
        if r["strategy"] == "fixed-q":
            # 512 partitions over 5 or 10 nodes: quotas differ by at most one.
            assert r["load_max_over_mean"] < 1.03, r


def test_seeded_runs_are_identical() -> None:
    args = ("--nodes", "5,8", "--keys", "50", "--q", "256", "--heterogeneous", "--seed", "7")
    first, second = run(*args), run(*args)
    for a, b in zip(first["results"], second["results"], strict=True):
        a.pop("lookup_us"), b.pop("lookup_us")  # wall-clock time
        assert a == b


def test_strategy_selection_and_vnodes() -> None:
    payload = run("--nodes", "4", "--keys", "20", "--strategies", "ring", "--vnodes", "8,32")
    assert [r["params"] for r in payload["results"]] == [
        {"vnodes_per_capacity": 8},
        {"vnodes_per_capacity": 32},
    ]


def test_unknown_strategy_rejected() -> None:
    result = CliRunner().invoke(command, ["--json", "--strategies", "nope", "--nodes", "3"])
    assert result.exit_code != 0
    assert "nope" in result.output


def test_table_and_plot(tmp_path: Path) -> None:
    plot = tmp_path / "p.png"
    result = CliRunner().invoke(
        command,
        [
            "--nodes",
            "3,6",
            "--keys",
            "20",
            "--q",
            "64",
            "--strategies",
            "ring,jump",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Partitioners" in result.stdout
    assert plot.stat().st_size > 0


def test_moved_fraction_and_load_stats_exact() -> None:
    half = 1 << 63
    assert moved_fraction([(0, "a"), (half, "b")], [(0, "a")]) == 0.5
    assert moved_fraction([(0, "a")], [(0, "a"), (half, "a")]) == 0.0
    members = [NodeInfo("a", capacity=1), NodeInfo("b", capacity=3)]
    stddev, max_over_mean = load_stats([(0, "a"), (1 << 62, "b")], members)
    assert stddev == pytest.approx(0)
    assert max_over_mean == pytest.approx(1)


def test_quotas_follow_capacity() -> None:
    members = [NodeInfo(f"n{i}", capacity=c) for i, c in enumerate([1, 2, 3, 4])]
    assert quotas(members, 100) == [10, 20, 30, 40]
    assert sum(quotas(members[:3], 7)) == 7


def test_fixed_q_heterogeneous_shares_exact() -> None:
    members = [NodeInfo(f"n{i}", capacity=c) for i, c in enumerate([1, 2, 3, 4])]
    table = FixedQPartitioner(q=100).assign(members)
    counts = {m.node_id: 0 for m in members}
    for owner in table.owners:
        counts[table.members[owner]] += 1
    assert counts == {"n0": 10, "n1": 20, "n2": 30, "n3": 40}
