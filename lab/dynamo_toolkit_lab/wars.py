"""The WARS model of partial-quorum staleness (pure Python, no I/O).

Bailis, Venkataraman, Franklin, Hellerstein, Stoica, "Probabilistically
Bounded Staleness for Practical Partial Quorums", VLDB 2012 (PBS), §5.
A write goes from the coordinator to each of N replicas (leg ``W``), each
replica acknowledges (leg ``A``); the write *commits* when the W-th
acknowledgement arrives. A read starts ``t`` ms later: requests (leg ``R``)
and responses (leg ``S``), and the read returns the first R responses.
Replica ``i`` answers with the new version if the write reached it before
the read request did: ``W_i <= commit + t + R_i``. The read is consistent
if at least one of the R first responders had the write.

Every delay is in milliseconds. The distributions are the kernel's
(:mod:`dynamo_toolkit.latency`, re-exported here), which the ``simulated``
and ``delayed`` transports' WAN models use too: immutable values with a
``sample(rng)`` method and a fast ``sampler(rng)`` closure the Monte Carlo
uses.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dynamo_toolkit.latency import (
    Constant,
    Distribution,
    Exponential,
    Mixture,
    Pareto,
    Sampler,
    Shifted,
    distribution_from_json,
)

__all__ = [
    "PRESETS",
    "WAN_DELAY_MS",
    "YMMR_SIMULATOR_WRITE",
    "Constant",
    "Distribution",
    "Exponential",
    "Mixture",
    "Pareto",
    "Sampler",
    "Shifted",
    "WarsModel",
    "WarsResult",
    "distribution_from_json",
    "model_from_json",
    "percentile",
    "preset",
    "simulate",
]

#: One-way delay added to a leg that crosses datacenters in the WAN model (PBS §5.2).
WAN_DELAY_MS = 75.0


def _mix(*parts: tuple[float, Distribution]) -> Mixture:
    return Mixture(tuple(parts))


@dataclass(frozen=True)
class WarsModel:
    """The four one-way legs of WARS; with ``wan_delay``, a WAN placement (see :func:`simulate`)."""

    name: str
    w: Distribution
    a: Distribution
    r: Distribution
    s: Distribution
    wan_delay: float = 0.0
    source: str = ""

    @property
    def legs_identical(self) -> bool:
        """True when all four legs share one distribution (one latency for every message)."""
        return self.w == self.a == self.r == self.s

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "W": self.w.to_json(),
            "A": self.a.to_json(),
            "R": self.r.to_json(),
            "S": self.s.to_json(),
            "wan_delay_ms": self.wan_delay,
        }


_PBS = "Bailis et al., PBS, VLDB 2012, §5.2 (table of latency fits)"

#: LNKD-SSD: LinkedIn Voldemort on SSDs; every leg
#: 91.22% Pareto(0.235, 10) + 8.78% Exp(1.66).
LNKD_SSD_LEG = _mix((0.9122, Pareto(0.235, 10.0)), (0.0878, Exponential(1.66)))
#: LNKD-DISK write leg: 38% Pareto(1.05, 1.51) + 62% Exp(0.183); A = R = S as LNKD-SSD.
LNKD_DISK_WRITE = _mix((0.38, Pareto(1.05, 1.51)), (0.62, Exponential(0.183)))
#: YMMR (Yammer Riak) write leg: 93.9% Pareto(3, 3.35) + 6.1% Exp(0.0028).
#: The paper's table prints alpha = 3.35; the authors' simulator
#: (pbailis/pbs-vldb-historical-paper-material, nrw_solver/src/Simulator.java)
#: uses 3.5 — see :data:`YMMR_SIMULATOR_WRITE`.
YMMR_WRITE = _mix((0.939, Pareto(3.0, 3.35)), (0.061, Exponential(0.0028)))
#: YMMR write leg with the simulator's alpha = 3.5 (not a named preset).
YMMR_SIMULATOR_WRITE = _mix((0.939, Pareto(3.0, 3.5)), (0.061, Exponential(0.0028)))
#: YMMR A = R = S legs: 98.2% Pareto(1.5, 3.8) + 1.8% Exp(0.0217).
YMMR_OTHER = _mix((0.982, Pareto(1.5, 3.8)), (0.018, Exponential(0.0217)))

#: The named presets of PBS, exactly as the paper names them.
PRESETS: Mapping[str, WarsModel] = {
    "LNKD-SSD": WarsModel(
        "LNKD-SSD", LNKD_SSD_LEG, LNKD_SSD_LEG, LNKD_SSD_LEG, LNKD_SSD_LEG, source=_PBS
    ),
    "LNKD-DISK": WarsModel(
        "LNKD-DISK", LNKD_DISK_WRITE, LNKD_SSD_LEG, LNKD_SSD_LEG, LNKD_SSD_LEG, source=_PBS
    ),
    "YMMR": WarsModel("YMMR", YMMR_WRITE, YMMR_OTHER, YMMR_OTHER, YMMR_OTHER, source=_PBS),
    # WAN: LNKD-DISK legs, each replica in its own datacenter, the writer and
    # the reader each in a randomly chosen one of them; a leg that crosses
    # datacenters takes WAN_DELAY_MS more.
    "WAN": WarsModel(
        "WAN",
        LNKD_DISK_WRITE,
        LNKD_SSD_LEG,
        LNKD_SSD_LEG,
        LNKD_SSD_LEG,
        wan_delay=WAN_DELAY_MS,
        source=_PBS,
    ),
}


def preset(name: str) -> WarsModel:
    """The preset called ``name`` (case-insensitive)."""
    for key, model in PRESETS.items():
        if key.lower() == name.lower():
            return model
    raise KeyError(f"unknown latency preset {name!r}; presets: {', '.join(PRESETS)}")


# -- JSON form ----------------------------------------------------------------


def model_from_json(data: Mapping[str, Any], name: str = "custom") -> WarsModel:
    """Read a model: ``{"W": dist, "A": dist, "R": dist, "S": dist, "wan_delay_ms": 0}``.

    Missing ``A``, ``R`` or ``S`` default to the previous leg's distribution.
    """
    if "W" not in data:
        raise ValueError("a latency model needs at least the W leg")
    w = distribution_from_json(data["W"])
    a = distribution_from_json(data["A"]) if "A" in data else w
    r = distribution_from_json(data["R"]) if "R" in data else a
    s = distribution_from_json(data["S"]) if "S" in data else r
    return WarsModel(
        str(data.get("name", name)), w, a, r, s, wan_delay=float(data.get("wan_delay_ms", 0.0))
    )


# -- the Monte Carlo ------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank ``q``-quantile (0 < q <= 1) of an ascending sequence."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass(frozen=True)
class WarsResult:
    """What :func:`simulate` measured."""

    n: int
    r: int
    w: int
    trials: int
    t_ms: tuple[float, ...]
    p_consistent: tuple[float, ...]
    write_latency: Mapping[str, float] = field(default_factory=dict)
    read_latency: Mapping[str, float] = field(default_factory=dict)


QUANTILES = (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))


def simulate(
    model: WarsModel,
    n: int,
    r: int,
    w: int,
    t_ms: Sequence[float],
    trials: int = 100_000,
    seed: int = 1,
) -> WarsResult:
    """Monte Carlo of WARS: ``trials`` writes, each followed by one read per ``t``.

    Every ``t`` reuses the same draws of a trial (common random numbers), so
    the estimate of ``p_consistent`` is exactly non-decreasing in ``t``.
    With ``model.wan_delay``, each trial puts replica ``i`` in datacenter
    ``i`` and the writer and the reader each in a uniformly chosen one; legs
    to or from another datacenter take ``wan_delay`` more.
    """
    if not 1 <= r <= n or not 1 <= w <= n:
        raise ValueError(f"need 1 <= R, W <= N, got N={n}, R={r}, W={w}")
    if trials < 1:
        raise ValueError("trials must be positive")
    times = [float(t) for t in t_ms]
    if any(t < 0 for t in times):
        raise ValueError("t must not be negative")
    rng = random.Random(seed)
    draw_w, draw_a = model.w.sampler(rng), model.a.sampler(rng)
    draw_r, draw_s = model.r.sampler(rng), model.s.sampler(rng)
    wan = model.wan_delay
    randrange = rng.randrange
    replicas = range(n)
    hits = [0] * len(times)
    indexed = list(enumerate(times))
    commits: list[float] = []
    reads: list[float] = []
    for _ in range(trials):
        ws = [draw_w() for _ in replicas]
        if wan:
            writer, reader = randrange(n), randrange(n)
            ws = [x if i == writer else x + wan for i, x in enumerate(ws)]
            acks = sorted([ws[i] + draw_a() + (0.0 if i == writer else wan) for i in replicas])
            rs = [draw_r() + (0.0 if i == reader else wan) for i in replicas]
            trips = [(rs[i] + draw_s() + (0.0 if i == reader else wan), i) for i in replicas]
        else:
            acks = sorted([x + draw_a() for x in ws])
            rs = [draw_r() for _ in replicas]
            trips = [(rs[i] + draw_s(), i) for i in replicas]
        commit = acks[w - 1]
        trips.sort()
        commits.append(commit)
        reads.append(trips[r - 1][0])
        # The read is consistent at t once some first responder had the write:
        # the smallest t that works is min over them of W_i - commit - R_i.
        need = min(ws[i] - rs[i] for _, i in trips[:r]) - commit
        for k, t in indexed:
            if need <= t:
                hits[k] += 1
    commits.sort()
    reads.sort()
    return WarsResult(
        n=n,
        r=r,
        w=w,
        trials=trials,
        t_ms=tuple(times),
        p_consistent=tuple(h / trials for h in hits),
        write_latency={label: percentile(commits, q) for label, q in QUANTILES},
        read_latency={label: percentile(reads, q) for label, q in QUANTILES},
    )
