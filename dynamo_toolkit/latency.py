"""Delay distributions: what a message's one-way latency is drawn from.

Immutable values, in milliseconds, each with a ``sample(rng)`` method and a
fast ``sampler(rng)`` closure for loops that draw millions. Every draw comes
from the ``random.Random`` passed in, so a seeded generator replays the same
delays. The strategy lab's staleness model (PBS/WARS) and the ``simulated``
and ``delayed`` transports' WAN models share them.

Pareto(xm, alpha) is sampled as ``xm / U**(1/alpha)`` and Exponential(lambda)
has rate lambda (mean ``1/lambda``), as in Bailis et al., "Probabilistically
Bounded Staleness for Practical Partial Quorums" (VLDB 2012) and its simulator.

Two forms describe a distribution as data: the JSON form
(:func:`distribution_from_json`, ``{"type": "pareto", "xm": .., "alpha": ..}``)
and the flat form of a configuration table (:func:`distribution_from_config`,
``latency = "lognormal"`` with ``median_ms`` and ``p99_ms`` beside it).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Protocol

__all__ = [
    "CONFIG_KINDS",
    "Constant",
    "Distribution",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Mixture",
    "Normal",
    "Pareto",
    "Sampler",
    "Shifted",
    "Uniform",
    "config_keys",
    "distribution_from_config",
    "distribution_from_json",
]

Sampler = Callable[[], float]

#: The standard normal's 99th percentile: a log-normal's p99 is ``median * exp(Z99 * sigma)``.
Z99 = 2.3263478740408408


class Distribution(Protocol):
    """A one-way delay distribution, in milliseconds."""

    def sampler(self, rng: random.Random) -> Sampler:
        """A zero-argument function drawing one delay from ``rng``."""
        ...

    def mean(self) -> float:
        """The mean delay (``inf`` if it has none)."""
        ...

    def to_json(self) -> dict[str, Any]:
        """The JSON form :func:`distribution_from_json` reads back."""
        ...


@dataclass(frozen=True)
class Constant:
    """Always ``value`` ms."""

    value: float

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError(f"a delay cannot be negative, got {self.value}")

    def sampler(self, rng: random.Random) -> Sampler:
        value = float(self.value)
        return lambda: value

    def sample(self, rng: random.Random) -> float:
        return float(self.value)

    def mean(self) -> float:
        return float(self.value)

    def to_json(self) -> dict[str, Any]:
        return {"type": "constant", "value": self.value}


@dataclass(frozen=True)
class Exponential:
    """Exponential with rate ``rate`` per ms (mean ``1/rate`` ms)."""

    rate: float

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"an exponential needs a positive rate, got {self.rate}")

    def sampler(self, rng: random.Random) -> Sampler:
        draw = rng.random
        log = math.log
        scale = -1.0 / self.rate
        # 1 - U lies in (0, 1], so the logarithm is always defined.
        return lambda: scale * log(1.0 - draw())

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def mean(self) -> float:
        return 1.0 / self.rate

    def quantile(self, q: float) -> float:
        """The ``q``-quantile: ``-ln(1 - q) / rate``."""
        return -math.log(1.0 - q) / self.rate

    def to_json(self) -> dict[str, Any]:
        return {"type": "exponential", "rate": self.rate}


@dataclass(frozen=True)
class Pareto:
    """Pareto with scale ``xm`` ms and shape ``alpha``, sampled as ``xm / U**(1/alpha)``."""

    xm: float
    alpha: float

    def __post_init__(self) -> None:
        if not (self.xm > 0 and self.alpha > 0):
            raise ValueError(f"a Pareto needs xm > 0 and alpha > 0, got {self.xm}, {self.alpha}")

    def sampler(self, rng: random.Random) -> Sampler:
        draw = rng.random
        xm = self.xm
        exponent = -1.0 / self.alpha
        # U = 1 - random() lies in (0, 1]: never a division by zero.
        return lambda: xm * float((1.0 - draw()) ** exponent)

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def mean(self) -> float:
        return math.inf if self.alpha <= 1 else self.alpha * self.xm / (self.alpha - 1)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile: ``xm / (1 - q)**(1/alpha)``."""
        return self.xm / float((1.0 - q) ** (1.0 / self.alpha))

    def to_json(self) -> dict[str, Any]:
        return {"type": "pareto", "xm": self.xm, "alpha": self.alpha}


@dataclass(frozen=True)
class Uniform:
    """Uniform between ``low`` and ``high`` ms."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise ValueError(f"a uniform needs 0 <= low <= high, got {self.low}, {self.high}")

    def sampler(self, rng: random.Random) -> Sampler:
        draw = rng.random
        low, span = float(self.low), float(self.high - self.low)
        return lambda: low + span * draw()

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def mean(self) -> float:
        return (self.low + self.high) / 2

    def quantile(self, q: float) -> float:
        """The ``q``-quantile: ``low + q * (high - low)``."""
        return self.low + q * (self.high - self.low)

    def to_json(self) -> dict[str, Any]:
        return {"type": "uniform", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Normal:
    """Normal with ``mu`` and ``sigma`` ms, cut at 0 (a negative draw counts as 0)."""

    mu: float
    sigma: float

    def __post_init__(self) -> None:
        if not (self.mu >= 0 and self.sigma >= 0):
            raise ValueError(f"a normal needs mu >= 0 and sigma >= 0, got {self.mu}, {self.sigma}")

    def sampler(self, rng: random.Random) -> Sampler:
        gauss = rng.gauss
        mu, sigma = self.mu, self.sigma
        return lambda: max(0.0, gauss(mu, sigma))

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def mean(self) -> float:
        """The mean of the uncut normal (the cut shifts it up by a hair when ``mu >> sigma``)."""
        return float(self.mu)

    def to_json(self) -> dict[str, Any]:
        return {"type": "normal", "mu": self.mu, "sigma": self.sigma}


@dataclass(frozen=True)
class LogNormal:
    """Log-normal: ``exp(N(ln median, sigma))`` ms. :meth:`from_percentiles` fits median and p99."""

    median: float
    sigma: float

    def __post_init__(self) -> None:
        if not (self.median > 0 and self.sigma >= 0):
            raise ValueError(
                f"a log-normal needs median > 0 and sigma >= 0, got {self.median}, {self.sigma}"
            )

    @classmethod
    def from_percentiles(cls, median: float, p99: float) -> LogNormal:
        """The log-normal whose 50th and 99th percentiles are ``median`` and ``p99``."""
        if not 0 < median <= p99:
            raise ValueError(f"a log-normal needs 0 < median <= p99, got {median}, {p99}")
        return cls(median, math.log(p99 / median) / Z99)

    def sampler(self, rng: random.Random) -> Sampler:
        draw = rng.lognormvariate
        mu, sigma = math.log(self.median), self.sigma
        return lambda: draw(mu, sigma)

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 < q < 1)."""
        return self.median * math.exp(self.sigma * NormalDist().inv_cdf(q))

    def to_json(self) -> dict[str, Any]:
        return {"type": "lognormal", "median": self.median, "sigma": self.sigma}


@dataclass(frozen=True)
class Empirical:
    """A measured percentile table: ``points`` are ``(q, ms)`` pairs, ``q`` from 0 to 1.

    A draw picks ``U`` uniform in [0, 1) and interpolates linearly between the
    two points around it, so the table's percentiles are met exactly (e.g.
    ``((0, 30), (0.5, 40), (0.99, 120), (1, 300))``).
    """

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        qs = [q for q, _ in self.points]
        values = [v for _, v in self.points]
        if len(self.points) < 2 or qs[0] != 0 or qs[-1] != 1:
            raise ValueError("a percentile table needs at least the points q=0 and q=1")
        if any(b <= a for a, b in itertools.pairwise(qs)):
            raise ValueError(f"percentile table: q must increase strictly, got {qs}")
        if values[0] < 0 or any(b < a for a, b in itertools.pairwise(values)):
            raise ValueError(f"percentile table: delays must be >= 0 and not decrease: {values}")

    def sampler(self, rng: random.Random) -> Sampler:
        draw = rng.random
        quantile = self.quantile
        return lambda: quantile(draw())

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def quantile(self, q: float) -> float:
        """The ``q``-quantile, interpolated linearly in the table."""
        qs = [p for p, _ in self.points]
        i = min(max(bisect.bisect_right(qs, q), 1), len(qs) - 1)
        (q0, v0), (q1, v1) = self.points[i - 1], self.points[i]
        return v0 + (v1 - v0) * (q - q0) / (q1 - q0)

    def mean(self) -> float:
        return sum(
            (q1 - q0) * (v0 + v1) / 2
            for (q0, v0), (q1, v1) in zip(self.points, self.points[1:], strict=False)
        )

    def to_json(self) -> dict[str, Any]:
        return {"type": "empirical", "points": [list(p) for p in self.points]}


@dataclass(frozen=True)
class Shifted:
    """``base`` plus a fixed ``offset`` ms (e.g. the +75 ms of PBS's WAN legs)."""

    base: Distribution
    offset: float

    def sampler(self, rng: random.Random) -> Sampler:
        inner = self.base.sampler(rng)
        offset = self.offset
        return lambda: inner() + offset

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def mean(self) -> float:
        return self.base.mean() + self.offset

    def to_json(self) -> dict[str, Any]:
        return {"type": "shifted", "offset": self.offset, "base": self.base.to_json()}


@dataclass(frozen=True)
class Mixture:
    """With probability ``weights[k]`` (normalised), draw from ``parts[k]``."""

    parts: tuple[tuple[float, Distribution], ...]

    def __post_init__(self) -> None:
        if not self.parts or any(w < 0 for w, _ in self.parts):
            raise ValueError("a mixture needs parts with non-negative weights")
        if sum(w for w, _ in self.parts) <= 0:
            raise ValueError("a mixture's weights must not all be zero")

    def sampler(self, rng: random.Random) -> Sampler:
        total = sum(w for w, _ in self.parts)
        draw = rng.random
        if len(self.parts) == 2:  # the presets' shape: one comparison per draw
            (w1, d1), (_, d2) = self.parts
            first, second, cut = d1.sampler(rng), d2.sampler(rng), w1 / total

            return lambda: first() if draw() < cut else second()
        cuts: list[float] = []
        acc = 0.0
        for w, _ in self.parts:
            acc += w / total
            cuts.append(acc)
        cuts[-1] = 1.0
        samplers = [d.sampler(rng) for _, d in self.parts]

        def sample() -> float:
            u = draw()
            for cut, part in zip(cuts, samplers, strict=True):
                if u < cut:
                    return part()
            return samplers[-1]()

        return sample

    def sample(self, rng: random.Random) -> float:
        return self.sampler(rng)()

    def mean(self) -> float:
        total = sum(w for w, _ in self.parts)
        return sum(w / total * d.mean() for w, d in self.parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "mixture",
            "parts": [{"weight": w, **d.to_json()} for w, d in self.parts],
        }


def distribution_from_json(data: Any) -> Distribution:
    """Read a distribution: ``{"type": "pareto", "xm": .., "alpha": ..}``,
    ``{"type": "exponential", "rate": ..}``, ``{"type": "constant", "value": ..}``,
    ``{"type": "uniform", "low": .., "high": ..}``, ``{"type": "normal", "mu": ..,
    "sigma": ..}``, ``{"type": "lognormal", "median": .., "sigma": ..}``,
    ``{"type": "empirical", "points": [[q, ms], ...]}``,
    ``{"type": "shifted", "offset": .., "base": {...}}`` or
    ``{"type": "mixture", "parts": [{"weight": .., <a distribution>}, ...]}``
    (a bare list is read as a mixture's parts). Bad input raises ``ValueError``."""
    if isinstance(data, list):
        data = {"type": "mixture", "parts": data}
    if not isinstance(data, Mapping):
        raise ValueError(f"a distribution must be an object or a list, got {data!r}")
    kind = str(data.get("type", "")).lower()
    try:
        if kind == "constant":
            return Constant(float(data["value"]))
        if kind in ("exponential", "exp"):
            return Exponential(float(data["rate"]))
        if kind == "pareto":
            return Pareto(float(data["xm"]), float(data["alpha"]))
        if kind == "uniform":
            return Uniform(float(data["low"]), float(data["high"]))
        if kind == "normal":
            return Normal(float(data["mu"]), float(data["sigma"]))
        if kind == "lognormal":
            return LogNormal(float(data["median"]), float(data["sigma"]))
        if kind == "empirical":
            return Empirical(tuple((float(q), float(v)) for q, v in data["points"]))
        if kind == "shifted":
            return Shifted(distribution_from_json(data["base"]), float(data["offset"]))
        if kind == "mixture":
            parts = []
            for part in data["parts"]:
                inner = {k: v for k, v in part.items() if k != "weight"}
                parts.append((float(part["weight"]), distribution_from_json(inner)))
            return Mixture(tuple(parts))
    except KeyError as exc:
        raise ValueError(f"distribution {dict(data)!r} lacks {exc}") from None
    except TypeError as exc:
        raise ValueError(f"distribution {dict(data)!r}: {exc}") from None
    raise ValueError(f"unknown distribution type {kind!r}")


#: The flat configuration form: ``latency = <kind>`` and the keys each kind needs.
CONFIG_KINDS: Mapping[str, tuple[str, ...]] = {
    "constant": ("ms",),
    "uniform": ("min_ms", "max_ms"),
    "normal": ("mean_ms", "stddev_ms"),
    "lognormal": ("median_ms", "p99_ms"),
    "exponential": ("mean_ms",),
    "pareto": ("xm_ms", "alpha"),
    "empirical": ("percentiles",),
}


def _number(table: Mapping[str, Any], key: str) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {value!r}")
    return float(value)


def distribution_from_config(table: Mapping[str, Any]) -> Distribution:
    """Read the flat form a configuration table uses (every value in ms).

    ``latency`` names the kind and its keys sit beside it:
    ``"constant"`` (``ms``), ``"uniform"`` (``min_ms``, ``max_ms``),
    ``"normal"`` (``mean_ms``, ``stddev_ms``; cut at 0), ``"lognormal"``
    (``median_ms``, ``p99_ms``), ``"exponential"`` (``mean_ms``),
    ``"pareto"`` (``xm_ms``, ``alpha``) or ``"empirical"`` (``percentiles``, a
    table from percentile to ms, e.g. ``{"0" = 30, "50" = 40, "99" = 120,
    "100" = 300}``). An optional ``offset_ms`` is added to every draw.
    ``latency`` may instead be a table in the JSON form of
    :func:`distribution_from_json` (mixtures, the lab's presets). Keys other
    than these are left to the caller; bad values raise ``ValueError``.
    """
    kind = table.get("latency")
    dist: Distribution
    if isinstance(kind, Mapping | list):
        dist = distribution_from_json(kind)
    elif not isinstance(kind, str) or kind.lower() not in CONFIG_KINDS:
        raise ValueError(
            f"latency must be one of {', '.join(CONFIG_KINDS)} (or a table), got {kind!r}"
        )
    else:
        kind = kind.lower()
        missing = [key for key in CONFIG_KINDS[kind] if key not in table]
        if missing:
            raise ValueError(f'latency = "{kind}" needs {", ".join(missing)}')
        if kind == "constant":
            dist = Constant(_number(table, "ms"))
        elif kind == "uniform":
            dist = Uniform(_number(table, "min_ms"), _number(table, "max_ms"))
        elif kind == "normal":
            dist = Normal(_number(table, "mean_ms"), _number(table, "stddev_ms"))
        elif kind == "lognormal":
            dist = LogNormal.from_percentiles(_number(table, "median_ms"), _number(table, "p99_ms"))
        elif kind == "exponential":
            mean = _number(table, "mean_ms")
            if mean <= 0:
                raise ValueError(f"mean_ms must be positive, got {mean}")
            dist = Exponential(1.0 / mean)
        elif kind == "pareto":
            dist = Pareto(_number(table, "xm_ms"), _number(table, "alpha"))
        else:
            dist = _empirical(table["percentiles"])
    if "offset_ms" in table:
        offset = _number(table, "offset_ms")
        if offset < 0:
            raise ValueError(f"offset_ms must not be negative, got {offset}")
        dist = Shifted(dist, offset)
    return dist


def config_keys(table: Mapping[str, Any]) -> set[str]:
    """The keys of ``table`` that :func:`distribution_from_config` reads."""
    kind = table.get("latency")
    named = CONFIG_KINDS.get(kind.lower(), ()) if isinstance(kind, str) else ()
    return {"latency", "offset_ms", *named}


def _empirical(percentiles: Any) -> Empirical:
    if not isinstance(percentiles, Mapping):
        raise ValueError(f"percentiles must be a table from percentile to ms, got {percentiles!r}")
    points: list[tuple[float, float]] = []
    for key in percentiles:
        try:
            q = float(key) / 100
        except ValueError:
            raise ValueError(f"percentiles: {key!r} is not a percentile (0 to 100)") from None
        points.append((q, _number(percentiles, key)))
    return Empirical(tuple(sorted(points)))
