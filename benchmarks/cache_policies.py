"""Hit ratios of the ``cached`` engine's eviction policies on synthetic traces.

Replays two seeded traces over ``--keys`` keys (100,000 by default) through
every policy of ``dynamo_toolkit_plugins.storage.cache_policies``, with caches
holding 1 % and 10 % of the keys (all entries the same size), and prints a
table of hit ratios. Traces:

* ``zipf``: ``--requests`` reads drawn from a Zipf(0.99) popularity law
  (rank ``k`` has probability proportional to ``1 / k**0.99``), ranks mapped
  to keys by a seeded shuffle;
* ``zipf+scan``: the same law, but after every 40,000 reads comes a scan of
  10,000 keys never read before nor after (one-hit wonders, 20 % of requests),
  as a bulk export or a hand-off would read them.

Each cache is read-through: a miss inserts the key. Every read counts,
including the cold start. For reference the table also gives ``A0``, the
hit ratio of the best online policy for independent requests: the probability
mass of the most popular ``cache size`` keys (for ``zipf+scan``, times the
80 % of requests that are not scans). No policy can beat it on average.

Run: ``.venv/bin/python benchmarks/cache_policies.py`` (about a minute).
Writes ``docs/benchmarks/cache_policies.json`` (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

from dynamo_toolkit_plugins.storage.cache_policies import (  # noqa: E402
    DEFAULT_POLICY,
    POLICIES,
)

SKEW = 0.99
FRACTIONS = (0.01, 0.10)
SCAN_EVERY = 40_000
SCAN_LENGTH = 10_000


class ZipfSampler:
    """Ranks ``0 .. n-1`` with ``P(k) ~ 1 / (k + 1) ** skew``, by inverse CDF.

    The cumulative weights are computed once; each draw is a binary search
    (``random.choices`` with ``cum_weights``, done in C).
    """

    def __init__(self, n: int, skew: float = SKEW) -> None:
        self.n = n
        self.skew = skew
        self.cum_weights = list(itertools.accumulate((k + 1) ** -skew for k in range(n)))

    def sample(self, rng: random.Random, count: int) -> list[int]:
        """``count`` ranks (0 is the most popular)."""
        return rng.choices(range(self.n), cum_weights=self.cum_weights, k=count)

    def top_mass(self, k: int) -> float:
        """Probability that a draw is one of the ``k`` most popular ranks."""
        return self.cum_weights[k - 1] / self.cum_weights[-1] if k > 0 else 0.0


def zipf_trace(keys: int, requests: int, seed: int) -> list[int]:
    """A seeded Zipf(0.99) read trace over keys ``0 .. keys-1``."""
    rng = random.Random(seed)
    permutation = list(range(keys))
    rng.shuffle(permutation)  # popularity is unrelated to key order
    return [permutation[rank] for rank in ZipfSampler(keys).sample(rng, requests)]


def scan_polluted_trace(keys: int, requests: int, seed: int) -> list[int]:
    """``zipf_trace`` with a one-hit scan of fresh keys after every ``SCAN_EVERY`` reads."""
    hot = iter(zipf_trace(keys, requests, seed))
    fresh = itertools.count(keys)  # keys >= ``keys`` are read exactly once
    trace: list[int] = []
    while len(trace) < requests:
        trace.extend(itertools.islice(hot, SCAN_EVERY))
        trace.extend(itertools.islice(fresh, SCAN_LENGTH))
    return trace[:requests]


def replay(policy_name: str, capacity: int, trace: Sequence[int]) -> tuple[float, float]:
    """Hit ratio of a read-through cache of ``capacity`` unit-size entries, and µs per read."""
    policy = POLICIES[policy_name](capacity)
    get, put = policy.get, policy.put
    started = time.perf_counter()
    for key in trace:
        if get(key) is None:
            put(key, key, 1)
    elapsed = time.perf_counter() - started
    assert policy.bytes_used <= capacity
    return policy.hit_ratio, elapsed / len(trace) * 1e6


def run(keys: int, requests: int, seed: int) -> dict[str, Any]:
    """Every (trace, cache size, policy) result, as the JSON file holds them."""
    sampler = ZipfSampler(keys)
    traces = {
        "zipf": (zipf_trace(keys, requests, seed), 1.0),
        "zipf+scan": (
            scan_polluted_trace(keys, requests, seed),
            SCAN_EVERY / (SCAN_EVERY + SCAN_LENGTH),
        ),
    }
    results: list[dict[str, Any]] = []
    for trace_name, (trace, hot_share) in traces.items():
        for fraction in FRACTIONS:
            capacity = int(keys * fraction)
            row: dict[str, Any] = {
                "trace": trace_name,
                "cache_fraction": fraction,
                "cache_entries": capacity,
                "a0_bound": round(hot_share * sampler.top_mass(capacity), 4),
                "hit_ratio": {},
                "us_per_read": {},
            }
            for name in POLICIES:
                ratio, micros = replay(name, capacity, trace)
                row["hit_ratio"][name] = round(ratio, 4)
                row["us_per_read"][name] = round(micros, 2)
            results.append(row)
    return {
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "keys": keys,
        "requests": requests,
        "seed": seed,
        "skew": SKEW,
        "scan": {"every": SCAN_EVERY, "length": SCAN_LENGTH},
        "default_policy": DEFAULT_POLICY,
        "results": results,
    }


def table(report: dict[str, Any]) -> Iterator[str]:
    """The results as aligned text rows."""
    names = list(POLICIES)
    yield (
        f"{'trace':<10} {'cache':>6} " + " ".join(f"{n:>10}" for n in names) + f" {'A0 bound':>10}"
    )
    for row in report["results"]:
        cells = " ".join(f"{row['hit_ratio'][n]:>10.4f}" for n in names)
        yield f"{row['trace']:<10} {row['cache_fraction']:>6.0%} {cells} {row['a0_bound']:>10.4f}"
    yield ""
    yield (
        "µs per read (Python, read-through replay): "
        + ", ".join(f"{n} {max(r['us_per_read'][n] for r in report['results']):.2f}" for n in names)
        + " (worst case over rows)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--output", type=Path, default=ROOT / "docs/benchmarks/cache_policies.json")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    report = run(args.keys, args.requests, args.seed)
    for line in table(report):
        print(line)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
