"""The WARS model of PBS (Bailis et al., VLDB 2012) and the ``staleness`` suite."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dynamo_toolkit_lab.staleness import command
from dynamo_toolkit_lab.wars import (
    PRESETS,
    Constant,
    Exponential,
    Mixture,
    Pareto,
    Shifted,
    WarsModel,
    model_from_json,
    percentile,
    preset,
    simulate,
)

DRAWS = 200_000


def _draws(dist: object, seed: int = 3) -> list[float]:
    sample = dist.sampler(random.Random(seed))  # type: ignore[attr-defined]
    return sorted(sample() for _ in range(DRAWS))


def _assert_cdf(ordered: list[float], quantile: float, q: float) -> None:
    """The share of draws at or below the closed-form q-quantile is q, within 5 binomial SEs.

    (Comparing the CDF rather than the sample quantile keeps heavy tails,
    e.g. alpha = 1.51, from making the tolerance meaningless.)
    """
    below = bisect.bisect_right(ordered, quantile) / len(ordered)
    assert below == pytest.approx(q, abs=5 * math.sqrt(q * (1 - q) / len(ordered)))


@pytest.mark.parametrize("rate", [0.0028, 0.183, 1.66])
def test_exponential_mean_and_quantiles_match_closed_forms(rate: float) -> None:
    dist = Exponential(rate)
    values = _draws(dist)
    mean = sum(values) / len(values)
    # The sample mean's standard error is (1/rate)/sqrt(DRAWS): allow 5 of them.
    assert mean == pytest.approx(1 / rate, abs=5 / rate / math.sqrt(DRAWS))
    assert dist.mean() == pytest.approx(1 / rate)
    for q in (0.5, 0.9, 0.99, 0.999):
        _assert_cdf(values, dist.quantile(q), q)


@pytest.mark.parametrize(("xm", "alpha"), [(0.235, 10.0), (1.05, 1.51), (3.0, 3.35), (1.5, 3.8)])
def test_pareto_quantiles_match_closed_form(xm: float, alpha: float) -> None:
    dist = Pareto(xm, alpha)
    values = _draws(dist)
    assert values[0] >= xm  # the support starts at xm
    for q in (0.1, 0.5, 0.9, 0.99, 0.999):
        quantile = xm / (1 - q) ** (1 / alpha)
        assert dist.quantile(q) == pytest.approx(quantile)
        _assert_cdf(values, quantile, q)


def test_mixture_and_shifted_means() -> None:
    mix = Mixture(((0.9122, Pareto(0.235, 10.0)), (0.0878, Exponential(1.66))))
    expected = 0.9122 * (10 * 0.235 / 9) + 0.0878 / 1.66
    assert mix.mean() == pytest.approx(expected)
    values = _draws(mix)
    assert sum(values) / len(values) == pytest.approx(expected, rel=0.01)
    shifted = _draws(Shifted(mix, 75.0))
    assert sum(shifted) / len(shifted) == pytest.approx(expected + 75.0, rel=0.001)
    three = Mixture(((1, Constant(1.0)), (1, Constant(2.0)), (2, Constant(4.0))))
    values = _draws(three)
    assert sum(values) / len(values) == pytest.approx(three.mean(), rel=0.01)
    assert three.mean() == pytest.approx(2.75)


def test_presets_carry_the_paper_names_and_sources() -> None:
    assert list(PRESETS) == ["LNKD-SSD", "LNKD-DISK", "YMMR", "WAN"]
    assert all("VLDB 2012" in model.source for model in PRESETS.values())
    assert PRESETS["LNKD-SSD"].legs_identical
    assert not PRESETS["LNKD-DISK"].legs_identical
    assert PRESETS["WAN"].wan_delay == 75.0
    assert preset("lnkd-ssd") is PRESETS["LNKD-SSD"]
    with pytest.raises(KeyError):
        preset("nope")


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_form_round_trips(name: str) -> None:
    model = PRESETS[name]
    again = model_from_json(json.loads(json.dumps(model.to_json())))
    assert (again.w, again.a, again.r, again.s, again.wan_delay) == (
        model.w,
        model.a,
        model.r,
        model.s,
        model.wan_delay,
    )


TIMES = [0.0, 0.5, 1.0, 5.0, 10.0, 100.0]


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize(("n", "r", "w"), [(3, 2, 2), (3, 1, 3), (3, 3, 1), (5, 3, 3), (1, 1, 1)])
def test_strict_quorums_are_always_consistent(name: str, n: int, r: int, w: int) -> None:
    result = simulate(PRESETS[name], n, r, w, TIMES, trials=3000, seed=5)
    assert result.p_consistent == (1.0,) * len(TIMES)


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize(("n", "r", "w"), [(3, 1, 1), (3, 1, 2), (3, 2, 1), (5, 2, 2)])
def test_p_consistent_is_non_decreasing_in_t(name: str, n: int, r: int, w: int) -> None:
    result = simulate(PRESETS[name], n, r, w, TIMES, trials=5000, seed=2)
    probabilities = result.p_consistent
    assert all(a <= b for a, b in itertools.pairwise(probabilities))
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_identical_exponential_legs_stale_at_first_then_consistent() -> None:
    leg = Exponential(1.0)  # mean 1 ms each way
    model = WarsModel("exp", leg, leg, leg, leg)
    result = simulate(model, 3, 1, 1, [0, 1, 5, 20], trials=40_000, seed=9)
    p0, p1, p5, p20 = result.p_consistent
    assert 0.5 < p0 < 0.9  # well below 1 right after the first ack
    assert p0 < p1 < p5
    assert p20 > 0.9999
    # More replicas acknowledged or asked: fresher reads.
    assert simulate(model, 3, 2, 1, [0], trials=40_000, seed=9).p_consistent[0] > p0
    assert simulate(model, 3, 1, 2, [0], trials=40_000, seed=9).p_consistent[0] > p0


def test_latency_percentiles_are_ordered_and_plausible() -> None:
    result = simulate(PRESETS["LNKD-SSD"], 3, 1, 1, [0], trials=20_000, seed=1)
    for quantiles in (result.write_latency, result.read_latency):
        assert 0.47 < quantiles["p50"] <= quantiles["p99"] <= quantiles["p99.9"]
        assert quantiles["p50"] < 0.6  # two Pareto(0.235, 10) legs: ~0.49 ms
    constant = WarsModel("c", Constant(1), Constant(2), Constant(3), Constant(4))
    fixed = simulate(constant, 3, 2, 2, [0], trials=10, seed=1)
    assert dict(fixed.write_latency) == {"p50": 3.0, "p99": 3.0, "p99.9": 3.0}
    assert dict(fixed.read_latency) == {"p50": 7.0, "p99": 7.0, "p99.9": 7.0}


def test_seeded_determinism() -> None:
    model = PRESETS["YMMR"]
    first = simulate(model, 3, 1, 1, TIMES, trials=5000, seed=42)
    assert simulate(model, 3, 1, 1, TIMES, trials=5000, seed=42) == first
    assert simulate(model, 3, 1, 1, TIMES, trials=5000, seed=43) != first


def test_presets_at_t0_stay_where_they_were_measured() -> None:
    """Regression figures for N=3, R=W=1 at t=0 (seed 1): 0.975 for LNKD-SSD and
    0.434 for LNKD-DISK. They are close to what we recall the PBS paper
    reporting (97.4% and 43.9%), but that recollection is not yet checked
    against the paper's text, so the docs do not cite it as a match."""
    ssd = simulate(PRESETS["LNKD-SSD"], 3, 1, 1, [0], trials=50_000, seed=1)
    disk = simulate(PRESETS["LNKD-DISK"], 3, 1, 1, [0], trials=50_000, seed=1)
    assert ssd.p_consistent[0] == pytest.approx(0.975, abs=0.01)
    assert disk.p_consistent[0] == pytest.approx(0.434, abs=0.015)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="need 1 <= R, W <= N"):
        simulate(PRESETS["LNKD-SSD"], 3, 4, 1, [0])
    with pytest.raises(ValueError, match="t must not be negative"):
        simulate(PRESETS["LNKD-SSD"], 3, 1, 1, [-1])
    with pytest.raises(ValueError, match="a Pareto needs xm > 0"):
        Pareto(0, 1)
    with pytest.raises(ValueError, match="unknown distribution type 'weibull'"):
        model_from_json({"W": {"type": "weibull"}})


# -- the CLI -------------------------------------------------------------------------


def _run(*args: str) -> dict[str, object]:
    outcome = CliRunner().invoke(command, [*args, "--json"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.output)
    assert isinstance(payload, dict)
    return payload


def test_cli_json_schema() -> None:
    payload = _run("--trials", "500", "--latency", "LNKD-DISK", "--t", "0,1,5,10")
    assert set(payload) == {
        "n",
        "r",
        "w",
        "latency",
        "results",
        "read_latency_ms",
        "write_latency_ms",
    }
    assert (payload["n"], payload["r"], payload["w"]) == (3, 1, 1)
    assert payload["latency"] == "LNKD-DISK"
    results = payload["results"]
    assert isinstance(results, list)
    assert [row["t_ms"] for row in results] == [0, 1, 5, 10]
    assert all(set(row) == {"t_ms", "p_consistent"} for row in results)
    for key in ("read_latency_ms", "write_latency_ms"):
        quantiles = payload[key]
        assert isinstance(quantiles, dict)
        assert set(quantiles) == {"p50", "p99", "p99.9"}


def test_cli_json_latency_file_and_validation(tmp_path: Path) -> None:
    spec = tmp_path / "legs.json"
    leg = [
        {"weight": 0.9, "type": "pareto", "xm": 0.235, "alpha": 10},
        {"weight": 0.1, "type": "exponential", "rate": 1.66},
    ]
    spec.write_text(json.dumps({"W": leg, "A": leg, "R": leg, "S": leg}))
    payload = _run(
        "--trials",
        "300",
        "--latency",
        str(spec),
        "--n",
        "3",
        "--r",
        "2",
        "--w",
        "2",
        "--validate",
        "--validate-trials",
        "20",
        "--t",
        "0,2",
    )
    assert payload["latency"] == "legs"
    results = payload["results"]
    assert isinstance(results, list)
    assert [row["p_consistent"] for row in results] == [1.0, 1.0]
    validation = payload["validation"]
    assert isinstance(validation, dict)
    assert [row["measured"] for row in validation["results"]] == [1.0, 1.0]


def test_cli_table_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "staleness.png"
    outcome = CliRunner().invoke(command, ["--trials", "200", "--plot", str(plot)])
    assert outcome.exit_code == 0, outcome.output
    assert "P(consistent)" in outcome.output
    assert plot.stat().st_size > 0


def test_cli_rejects_unknown_latency() -> None:
    outcome = CliRunner().invoke(command, ["--latency", "no-such-preset", "--json"])
    assert outcome.exit_code != 0
    assert "neither a preset" in outcome.output


def test_suite_is_mounted_under_bench() -> None:
    from dynamo_toolkit_lab.plugin import bench

    assert bench.get_command(click.Context(bench), "staleness") is command


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    assert math.isnan(percentile([], 0.5))
