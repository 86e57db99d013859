"""The kernel's delay distributions: quantiles, sampling, and their two data forms."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from dynamo_toolkit.latency import (
    Constant,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Mixture,
    Normal,
    Pareto,
    Shifted,
    Uniform,
    distribution_from_config,
    distribution_from_json,
)

EVERY_KIND: list[Distribution] = [
    Constant(3.0),
    Uniform(1.0, 2.0),
    Normal(10.0, 2.0),
    LogNormal.from_percentiles(40.0, 120.0),
    Exponential(0.5),
    Pareto(1.0, 3.0),
    Empirical(((0.0, 10.0), (0.5, 20.0), (1.0, 100.0))),
    Shifted(Exponential(1.0), 5.0),
    Mixture(((0.9, Constant(1.0)), (0.1, Constant(9.0)))),
]


@pytest.mark.parametrize("dist", EVERY_KIND, ids=lambda d: type(d).__name__)
def test_the_json_form_reads_back_the_same_distribution(dist: Distribution) -> None:
    assert distribution_from_json(dist.to_json()) == dist


@pytest.mark.parametrize("dist", EVERY_KIND, ids=lambda d: type(d).__name__)
def test_the_sample_mean_is_close_to_the_mean(dist: Distribution) -> None:
    draw = dist.sampler(random.Random(1))
    samples = [draw() for _ in range(40_000)]
    assert min(samples) >= 0
    assert sum(samples) / len(samples) == pytest.approx(dist.mean(), rel=0.03)


def test_a_log_normal_fitted_from_percentiles_meets_them() -> None:
    dist = LogNormal.from_percentiles(40.0, 120.0)
    assert dist.quantile(0.5) == pytest.approx(40.0)
    assert dist.quantile(0.99) == pytest.approx(120.0)
    draw = dist.sampler(random.Random(2))
    ordered = sorted(draw() for _ in range(20_000))
    assert ordered[10_000] == pytest.approx(40.0, rel=0.03)
    assert ordered[19_800] == pytest.approx(120.0, rel=0.08)


def test_an_empirical_table_interpolates_between_its_points() -> None:
    dist = Empirical(((0.0, 10.0), (0.5, 20.0), (1.0, 100.0)))
    assert dist.quantile(0.0) == 10.0
    assert dist.quantile(0.25) == 15.0
    assert dist.quantile(0.75) == 60.0
    assert dist.quantile(1.0) == 100.0


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"latency": "constant", "ms": 4}, Constant(4.0)),
        ({"latency": "uniform", "min_ms": 1, "max_ms": 3}, Uniform(1.0, 3.0)),
        ({"latency": "normal", "mean_ms": 9, "stddev_ms": 1}, Normal(9.0, 1.0)),
        ({"latency": "exponential", "mean_ms": 4}, Exponential(0.25)),
        ({"latency": "pareto", "xm_ms": 2, "alpha": 3}, Pareto(2.0, 3.0)),
        (
            {"latency": "empirical", "percentiles": {"100": 9, "0": 1, "50": 3}},
            Empirical(((0.0, 1.0), (0.5, 3.0), (1.0, 9.0))),
        ),
        ({"latency": "constant", "ms": 1, "offset_ms": 2}, Shifted(Constant(1.0), 2.0)),
        ({"latency": {"type": "pareto", "xm": 1, "alpha": 2}}, Pareto(1.0, 2.0)),
    ],
)
def test_the_configuration_form(table: dict[str, Any], expected: Distribution) -> None:
    assert distribution_from_config(table) == expected


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "latency must be one of"),
        ({"latency": "uniform", "min_ms": 1}, "needs max_ms"),
        ({"latency": "uniform", "min_ms": 3, "max_ms": 1}, "low <= high"),
        ({"latency": "exponential", "mean_ms": 0}, "mean_ms must be positive"),
        ({"latency": "constant", "ms": True}, "ms must be a number"),
        ({"latency": "constant", "ms": 1, "offset_ms": -1}, "must not be negative"),
        ({"latency": "empirical", "percentiles": [1, 2]}, "table from percentile to ms"),
        ({"latency": "empirical", "percentiles": {"p50": 1}}, "is not a percentile"),
        ({"latency": "empirical", "percentiles": {"0": 5, "100": 1}}, "not decrease"),
        ({"latency": {"type": "gamma"}}, "unknown distribution type"),
    ],
)
def test_bad_configuration_tables_say_what_is_wrong(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        distribution_from_config(table)
