"""``dtk bench anti-entropy``: repairs are exact, costs scale as they must, the model agrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dynamo_toolkit_lab.anti_entropy import (
    KINDS,
    command,
    crossover_estimate,
    estimate_compare,
    merkle_shapes,
)
from testsupport.lab import run_suite

TOP = {"kinds", "value_size", "key_bytes", "hash_bytes", "seed", "results", "crossover"}
FIELDS = {
    "strategy",
    "params",
    "keys",
    "diffs",
    "kind",
    "differing",
    "repaired",
    "in_sync",
    "bytes_sent",
    "bytes_received",
    "messages",
    "round_trips",
    "phases",
    "estimate",
}
COUNTS = {"bytes_sent", "bytes_received", "messages", "round_trips"}
ESTIMATE = {"compare_round_trips", "compare_bytes_sent", "compare_bytes_received", "round_trips"}


def run(*args: str) -> dict[str, Any]:
    return run_suite(command, *args)


SMALL = ("--keys", "1000,3000", "--diffs", "0,1,10,100", "--shapes", "16x2,4x3")


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    return run(*SMALL)


def compare_bytes(result: dict[str, Any]) -> int:
    compare = result["phases"]["compare"]
    return int(compare["bytes_sent"] + compare["bytes_received"])


def pick(payload: dict[str, Any], label: str, n: int) -> list[dict[str, Any]]:
    """Rows of one strategy (``full-exchange`` or ``FxD``) and n, by d."""
    rows = [
        r
        for r in payload["results"]
        if r["keys"] == n
        and (
            r["strategy"] == label
            if label == "full-exchange"
            else r["params"] and f"{r['params']['fanout']}x{r['params']['depth']}" == label
        )
    ]
    return sorted(rows, key=lambda r: r["diffs"])


def test_json_schema(small: dict[str, Any]) -> None:
    assert set(small) == TOP
    assert small["kinds"] == ["changed"]
    assert small["seed"] == 1
    assert len(small["results"]) == 2 * 3 * 4  # 2 n, 3 strategies (2 shapes, full), 4 d
    for r in small["results"]:
        assert set(r) == FIELDS
        assert set(r["phases"]) == {"compare", "repair", "verify"}
        for phase in r["phases"].values():
            assert set(phase) == COUNTS
        for field in COUNTS:
            assert r[field] == sum(phase[field] for phase in r["phases"].values())
        assert set(r["estimate"]) == ESTIMATE
        assert r["params"] in ({}, {"fanout": 16, "depth": 2}, {"fanout": 4, "depth": 3})
    assert len(small["crossover"]) == 4  # per n and shape
    for c in small["crossover"]:
        assert set(c) == {"kind", "keys", "params", "estimate", "measured_between"}


def test_every_difference_is_repaired(small: dict[str, Any]) -> None:
    for r in small["results"]:
        assert r["differing"] == r["diffs"]
        assert r["repaired"] == r["diffs"]
        assert r["in_sync"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_repaired(kind: str) -> None:
    payload = run("--keys", "400", "--diffs", "7,400", "--kind", kind, "--shapes", "4x2")
    for r in payload["results"]:
        assert (r["repaired"], r["in_sync"]) == (r["diffs"], True), r
        # The peer lacks the extra keys: each batch that has some pushes them in one wave.
        batches = -(-r["diffs"] // 256)
        pushes = {"changed": 0, "missing": 0, "extra": batches, "mixed": batches}[kind]
        assert r["phases"]["repair"]["round_trips"] == batches + pushes
        assert r["round_trips"] == r["estimate"]["round_trips"]


def test_full_exchange_cost_grows_with_n_not_d(small: dict[str, Any]) -> None:
    by_n = {
        n: [compare_bytes(r) for r in pick(small, "full-exchange", n)[1:]] for n in (1000, 3000)
    }
    for costs in by_n.values():
        assert len(set(costs)) == 1  # the same for d = 1, 10, 100
    assert by_n[3000][0] > 2.5 * by_n[1000][0]  # every {key: hash} item: ~32 B each
    assert by_n[3000][0] > 3000 * 30


def test_merkle_cost_grows_with_d(small: dict[str, Any]) -> None:
    for shape in ("16x2", "4x3"):
        costs = [compare_bytes(r) for r in pick(small, shape, 3000)]
        assert costs == sorted(costs)
        assert len(set(costs)) == len(costs)
        flat = compare_bytes(pick(small, "full-exchange", 3000)[1])
        assert costs[1] * 20 < flat  # one difference: a path and one leaf, not everything


def test_round_trips_match_the_analytic_value(small: dict[str, Any]) -> None:
    for r in small["results"]:
        depth = r["params"].get("depth", 0)
        compare = r["phases"]["compare"]["round_trips"]
        # The roots; then, if they differ, one wave per inner level and the leaves.
        assert compare == (1 if r["diffs"] == 0 else depth + 2)
        assert compare == r["estimate"]["compare_round_trips"]
        assert r["round_trips"] == r["estimate"]["round_trips"]
        assert r["phases"]["verify"]["round_trips"] == (r["diffs"] > 0)
        assert r["messages"] == 2 * r["round_trips"]  # every request has its reply


def test_estimated_bytes_are_close(small: dict[str, Any]) -> None:
    for r in small["results"]:
        estimate = r["estimate"]["compare_bytes_sent"] + r["estimate"]["compare_bytes_received"]
        assert compare_bytes(r) == pytest.approx(estimate, rel=0.25, abs=50), r


def test_crossover_estimate_brackets_the_measurement() -> None:
    payload = run("--keys", "2000", "--diffs", "100,300,1000,2000", "--shapes", "16x2")
    (crossover,) = payload["crossover"]
    low, high = crossover["measured_between"]
    assert crossover["estimate"] == crossover_estimate(fanout=16, depth=2, keys=2000)
    assert low <= crossover["estimate"] <= high
    # Below the crossover merkle is cheaper, above it full exchange is.
    below = estimate_compare(fanout=16, depth=2, keys=2000, diffs=crossover["estimate"] - 1)
    flat = estimate_compare(fanout=16, depth=0, keys=2000, diffs=crossover["estimate"] - 1)
    assert sum(below[k] for k in ("compare_bytes_sent", "compare_bytes_received")) <= sum(
        flat[k] for k in ("compare_bytes_sent", "compare_bytes_received")
    )


def test_same_seed_same_output() -> None:
    args = ("--keys", "500", "--diffs", "5,50", "--shapes", "4x2", "--kind", "mixed")
    first, again = run(*args), run(*args)
    assert first == again
    other = run(*args, "--seed", "2")
    assert other["seed"] == 2
    assert [r["bytes_received"] for r in other["results"]] != [
        r["bytes_received"] for r in first["results"]
    ]


def test_shapes_and_their_limit() -> None:
    assert merkle_shapes([2, 3], [4, 16]) == [
        {"fanout": 4, "depth": 2},
        {"fanout": 16, "depth": 2},
        {"fanout": 4, "depth": 3},
        {"fanout": 16, "depth": 3},
    ]
    assert merkle_shapes([1], [2], [(1024, 3), (2, 15)]) == [{"fanout": 2, "depth": 15}]


@pytest.mark.parametrize(
    "args",
    [
        ("--strategies", "gossip"),
        ("--kind", "lost"),
        ("--shapes", "1x3"),
        ("--shapes", "16-3"),
        ("--diffs", "-1"),
        ("--keys", "0"),
    ],
)
def test_bad_options_are_refused(args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(command, ["--json", *args])
    assert result.exit_code != 0
    assert "Error" in result.output


def test_table_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "ae.png"
    result = CliRunner().invoke(
        command, ["--keys", "300", "--diffs", "0,3,30", "--shapes", "4x2", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    assert "Anti-entropy (values of 100 B, seed 1)" in result.output
    assert "merkle(4^2), n=300, changed: full exchange compares for fewer bytes" in result.output
    assert plot.stat().st_size > 10_000
