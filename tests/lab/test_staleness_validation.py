"""The WARS model against the real coordinator on the simulated cluster.

The lab's ``measure_cluster`` runs 5 nodes on virtual time, each message
delayed by a draw from the model's leg for it (W, A, R or S), writes a fresh
key through a non-replica node (so every leg crosses the network, as in
WARS), waits ``t`` ms, reads with R and checks the value. If the coordinator
implements "return after W acks / after the first R replies" the two agree up
to sampling noise.

Tolerance: both sides are binomial proportions, so the difference has
standard error sqrt(p(1-p)/M + p(1-p)/T) for M cluster trials and T model
trials; we allow 4 standard errors plus 0.002 (a 4-SE miss happens about 1 in
16,000 runs by chance, and the seeds are fixed so the test is deterministic).
Getting the quorum rule wrong moves P(consistent) at t=0 far more than that:
waiting for one reply more on reads makes it 1.0 (W + R > N), and waiting for
one ack more on writes takes LNKD-DISK from 0.43 to 0.71.
"""

from __future__ import annotations

import math

import pytest

from dynamo_toolkit_lab.staleness import measure_cluster
from dynamo_toolkit_lab.wars import PRESETS, simulate

MODEL_TRIALS = 100_000


def _tolerance(p: float, cluster_trials: int) -> float:
    variance = p * (1 - p)
    return 4 * math.sqrt(variance / cluster_trials + variance / MODEL_TRIALS) + 0.002


@pytest.mark.parametrize(
    ("name", "times", "cluster_trials"),
    [
        ("LNKD-SSD", (0.0, 1.0), 3000),  # one distribution for every message
        ("LNKD-DISK", (0.0, 5.0), 1500),  # a slower W leg: per-leg latency on the wire
    ],
)
def test_model_matches_cluster_n3_r1_w1(
    name: str, times: tuple[float, ...], cluster_trials: int
) -> None:
    model = PRESETS[name]
    predicted = simulate(model, 3, 1, 1, times, trials=MODEL_TRIALS, seed=1).p_consistent
    measured = measure_cluster(model, 3, 1, 1, times, trials=cluster_trials, seed=7)
    for t, p, m in zip(times, predicted, measured, strict=True):
        assert m == pytest.approx(p, abs=_tolerance(p, cluster_trials)), (name, t, p, m)
    # t = 0 is genuinely stale some of the time, and waiting helps.
    assert predicted[0] < predicted[1]
    assert measured[0] < measured[1]
    assert measured[0] < 0.995
