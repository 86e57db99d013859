"""``dtk bench resolvers``: JSON schema, lost updates per resolver, seeded determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dynamo_toolkit_lab.resolvers import STRATEGIES, command, run_strategy
from testsupport.lab import run_suite

SERIES_FIELDS = {
    "round",
    "t",
    "siblings_mean",
    "siblings_max",
    "false_siblings",
    "clock_entries_mean",
    "clock_entries_max",
    "context_bytes_mean",
    "context_bytes_max",
    "metadata_bytes_mean",
    "lost",
    "blind_overwritten",
}
RESULT_FIELDS = {
    "strategy",
    "resolver",
    "resolver_params",
    "writes",
    "acknowledged",
    "lost",
    "lost_fraction",
    "blind_writes",
    "blind_overwritten",
    "forwarded",
    "converged",
    "final",
    "summary",
    "rounds",
}
SUMMARY_FIELDS = {
    "siblings_mean",
    "siblings_max",
    "false_siblings_max",
    "clock_entries_mean",
    "clock_entries_max",
    "context_bytes_mean",
    "context_bytes_max",
    "metadata_bytes_mean",
}
SMALL = ("--clients", "6", "--keys", "3", "--rounds", "25")


def run(*args: str) -> dict[str, Any]:
    return run_suite(command, *args)


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    """Every strategy, stale contexts through shared coordinators (the defaults)."""
    return run(*SMALL)


def by_strategy(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["strategy"]: r for r in payload["results"]}


def test_json_schema(small: dict[str, Any]) -> None:
    assert set(small) == {"params", "results"}
    assert small["params"] == {
        "nodes": 5,
        "n": 3,
        "r": 2,
        "w": 2,
        "clients": 6,
        "keys": 3,
        "rounds": 25,
        "stale": 0.2,
        "stale_age": 5,
        "route": "spread",
        "think_ms": 5.0,
        "max_entries": 10,
        "forward_writes": True,
        "every": 1,
        "seed": 1,
    }
    assert [r["strategy"] for r in small["results"]] == list(STRATEGIES)
    for result in small["results"]:
        assert set(result) == RESULT_FIELDS
        assert set(result["summary"]) == SUMMARY_FIELDS
        assert set(result["final"]) == SERIES_FIELDS - {"round", "t"}
        assert [s["round"] for s in result["rounds"]] == list(range(1, 26))
        times = [s["t"] for s in result["rounds"]]
        assert times == sorted(times)
        assert times[0] > 0
        for sample in result["rounds"]:
            assert set(sample) == SERIES_FIELDS
            assert 1 <= sample["siblings_mean"] <= sample["siblings_max"]
            assert sample["clock_entries_mean"] <= sample["clock_entries_max"]
        assert result["writes"] == 6 * 25
        assert 0 < result["acknowledged"] <= result["writes"]
        assert result["lost"] == result["final"]["lost"]
        assert result["converged"] is True
        assert result["forwarded"] == 0  # every coordinator is a replica
    params = by_strategy(small)
    assert params["vector-clock"]["resolver_params"] == {"max_entries": 10, "prune": True}
    assert params["vector-clock-unpruned"]["resolver_params"] == {"prune": False}
    assert params["dvv"]["resolver_params"] == {"blind_writes": "supersede"}
    assert params["dvv-blind-sibling"]["resolver_params"] == {"blind_writes": "sibling"}


def test_stale_contexts_through_shared_coordinators(small: dict[str, Any]) -> None:
    results = by_strategy(small)
    # dvv keeps every acknowledged write, and only true conflicts as siblings.
    for strategy in ("dvv", "dvv-blind-sibling"):
        assert results[strategy]["lost"] == 0, strategy
        assert results[strategy]["summary"]["false_siblings_max"] == 0, strategy
    # Some clients write blind; under dvv's default those writes replace what
    # their coordinator held, which the suite counts apart from lost writes.
    assert results["dvv"]["blind_writes"] > 0
    assert results["dvv"]["blind_overwritten"] > 0
    for strategy in ("vector-clock", "vector-clock-unpruned", "dvv-blind-sibling", "lww"):
        assert results[strategy]["blind_overwritten"] == 0, strategy
    # vector-clock's coordinator counter makes stale writes supersede unseen ones.
    assert results["vector-clock-unpruned"]["lost"] > 0
    assert results["lww"]["lost"] > results["vector-clock-unpruned"]["lost"]
    assert results["lww"]["summary"]["siblings_max"] == 1
    # dvv pays in metadata: branch entries for the concurrent writes it kept.
    assert (
        results["dvv"]["summary"]["clock_entries_max"]
        > results["vector-clock-unpruned"]["summary"]["clock_entries_max"]
    )
    # Lost counts only grow: a superseded version never comes back.
    for result in small["results"]:
        lost = [s["lost"] for s in result["rounds"]]
        assert lost == sorted(lost)


def test_one_coordinator_per_client_and_fresh_contexts_lose_nothing_but_lww() -> None:
    # Three clients, each through its own replica of the key, always reading first:
    # every concurrent write comes from a different coordinator.
    results = by_strategy(run("--clients", "3", "--keys", "3", "--rounds", "25", "--stale", "0"))
    for strategy in ("vector-clock", "vector-clock-unpruned", "dvv"):
        assert results[strategy]["lost"] == 0, strategy
        assert results[strategy]["summary"]["siblings_max"] > 1, strategy
    assert results["lww"]["lost"] > 0
    # Without concurrency through one coordinator dvv's clocks are vector clocks.
    assert results["dvv"]["rounds"] == results["vector-clock-unpruned"]["rounds"]


def test_all_clients_through_one_coordinator() -> None:
    results = by_strategy(
        run("--route", "same", "--keys", "2", "--rounds", "15", "--strategies", "vector-clock,dvv")
    )
    assert results["dvv"]["lost"] == 0
    assert results["dvv"]["summary"]["siblings_max"] > 1
    # One actor per key: vector-clock orders every write, keeping only the last.
    assert results["vector-clock"]["summary"]["siblings_max"] == 1
    assert results["vector-clock"]["lost"] > 0


def test_pruning_below_the_number_of_coordinators_makes_false_siblings() -> None:
    options: dict[str, Any] = {
        "route": "any",
        "nodes": 6,
        "clients": 6,
        "keys": 3,
        "rounds": 15,
        "max_entries": 2,
    }
    pruned = run_strategy("vector-clock", **options)
    unpruned = run_strategy("vector-clock-unpruned", **options)
    assert pruned["summary"]["false_siblings_max"] > 0
    assert pruned["summary"]["siblings_max"] > unpruned["summary"]["siblings_max"]
    assert unpruned["summary"]["false_siblings_max"] == 0


def test_forwarding_to_a_replica_keeps_dvv_exact_and_clocks_small() -> None:
    # Six clients through all six nodes: half the writes reach a node that
    # holds no replica of the key.
    options = ("--route", "any", "--nodes", "6", "--keys", "3", "--rounds", "15")
    args = (*options, "--strategies", "dvv,vector-clock-unpruned")
    forwarded_payload = run(*args)
    direct_payload = run(*args, "--no-forward-writes")
    assert forwarded_payload["params"]["forward_writes"] is True  # the store's default
    assert direct_payload["params"]["forward_writes"] is False
    assert run(*args, "--forward-writes") == forwarded_payload
    forwarded, direct = by_strategy(forwarded_payload), by_strategy(direct_payload)
    # Forwarded, every write is coordinated by one of the key's 3 replicas,
    # which knows the dots it issued: dvv loses nothing.
    assert forwarded["dvv"]["forwarded"] > 0
    assert forwarded["dvv"]["lost"] == 0
    assert forwarded["vector-clock-unpruned"]["summary"]["clock_entries_max"] == 3
    # Coordinated where they arrive, writes get up to 6 actors, and a node
    # holding no version of a key can repeat a dot already stored: dvv loses
    # acknowledged writes, as vector-clock does.
    assert direct["dvv"]["forwarded"] == 0
    assert direct["dvv"]["lost"] > 0
    assert direct["vector-clock-unpruned"]["summary"]["clock_entries_max"] > 3


def test_forward_writes_reaches_the_store_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from dynamo_toolkit.in_process_cluster import Cluster

    seen: list[bool] = []
    original = Cluster.start

    async def recording(nodes: int, config: Any, **kwargs: Any) -> Cluster:
        seen.append(config.forward_writes)
        return await original(nodes, config, **kwargs)

    monkeypatch.setattr(Cluster, "start", recording)
    for flag in ("--no-forward-writes", "--forward-writes"):
        run("--rounds", "1", "--strategies", "lww", flag)
    run("--rounds", "1", "--strategies", "lww")
    assert seen == [False, True, True]


def test_every_thins_the_series_but_not_the_summary(small: dict[str, Any]) -> None:
    thinned = run(*SMALL, "--every", "10", "--strategies", "dvv")
    result = thinned["results"][0]
    assert [s["round"] for s in result["rounds"]] == [10, 20, 25]
    full = by_strategy(small)["dvv"]
    assert result["summary"] == full["summary"]
    assert result["rounds"] == [s for s in full["rounds"] if s["round"] in (10, 20, 25)]


def test_same_seed_same_output_and_seed_matters() -> None:
    args = ("--keys", "2", "--rounds", "10", "--strategies", "dvv,lww")
    first = run(*args, "--seed", "7")
    assert run(*args, "--seed", "7") == first
    assert run(*args, "--seed", "8") != first


def test_table_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "resolvers.png"
    result = CliRunner().invoke(
        command, ["--rounds", "5", "--strategies", "dvv,lww", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    assert "dvv" in result.output
    assert "lost" in result.output
    assert plot.stat().st_size > 1000


@pytest.mark.parametrize(
    "args",
    [
        ("--strategies", "nope"),
        ("--strategies", ","),
        ("--stale", "1.5"),
        ("--clients", "0"),
        ("--nodes", "2"),
    ],
)
def test_bad_options_are_refused(args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(command, ["--json", "--rounds", "1", *args])
    assert result.exit_code != 0
