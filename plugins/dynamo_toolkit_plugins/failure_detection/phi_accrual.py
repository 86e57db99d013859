"""The ``phi-accrual`` failure detector: suspicion grows with how unlikely the silence is.

The accrual failure detector of Hayashibara, Défago, Yared and Katayama,
"The φ Accrual Failure Detector" (SRDS 2004). Instead of a fixed timeout,
each peer's heartbeat inter-arrival times are sampled into a sliding window,
and the silence since the last heartbeat is turned into

    φ(now) = -log10(P_later(now - last)),

the probability, under the fitted distribution, that a heartbeat arrives
*later* than that. φ = 1 means a 10 % chance the node is merely slow,
φ = 8 a 10⁻⁸ chance. A node whose heartbeats are irregular gets a wider
distribution and so more patience: the detector adapts to the network it
observes.

Two models of the inter-arrival distribution are offered, after the two
well-known implementations:

* ``"exponential"``, as in Apache Cassandra's ``FailureDetector``:
  ``P_later(t) = exp(-t / mean)``, so ``φ = t / (mean · ln 10)``. Only the
  mean is learnt; Cassandra's defaults are ``phi_convict_threshold`` 8 and a
  1000-sample window.
* ``"normal"``, as in Akka's ``PhiAccrualFailureDetector``: a normal
  distribution whose standard deviation is floored at ``min_std_deviation``
  (Akka: 100 ms) and whose mean is lengthened by ``acceptable_pause`` (Akka's
  ``acceptable-heartbeat-pause``, 3 s there, 0 here by default). Akka's
  defaults are threshold 8 with a 1 s heartbeat.

Like the ``timeout`` detector it is pure: every method takes the current
monotonic time, so it runs identically under a virtual clock.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import FailureDetector
from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["MODELS", "PhiAccrualDetector", "dtk_register_components"]

#: The inter-arrival models :class:`PhiAccrualDetector` accepts.
MODELS: Final[tuple[str, ...]] = ("exponential", "normal")

_LN10: Final = math.log(10.0)
# A floor on the fitted mean. Intervals are strictly positive (equal timestamps
# are not recorded), but running sums can drift by rounding; 1 ns is finer than
# any clock feeding this detector, so the floor never changes a real estimate.
_MIN_MEAN: Final = 1e-9


def _check_number(name: str, value: object, *, minimum: float, inclusive: bool) -> float:
    """``value`` as a float, if it is a finite real number above ``minimum``."""
    # bool is a number to Python, but never a sensible duration or threshold.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    ok = value >= minimum if inclusive else value > minimum
    if not math.isfinite(value) or not ok:
        bound = ">=" if inclusive else ">"
        raise ConfigurationError(f"{name} must be a finite number {bound} {minimum}, got {value!r}")
    return float(value)


def _normal_phi(silence: float, mean: float, std: float) -> float:
    """φ under a normal model, with the logistic approximation of its tail.

    ``P_later(t) ≈ 1 / (1 + exp(z))`` with ``y = (t - mean) / std`` and
    ``z = y · (1.5976 + 0.070566 · y²)`` (Bowling et al., "A logistic
    approximation to the cumulative normal distribution", 2009; the formula
    Akka uses, within about 1.4e-4 of the exact CDF). Then
    ``φ = log10(1 + exp(z))``, computed as a softplus so it neither underflows
    nor overflows: ``math.log10(P_later)`` would fail once ``P_later`` rounds to
    0, a few seconds into a silence, and φ must keep growing for ever.
    """
    y = (silence - mean) / std
    z = y * (1.5976 + 0.070566 * y * y)
    softplus = z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))
    return softplus / _LN10


class _History:
    """One peer's last heartbeat time and bounded window of inter-arrival times.

    The window's sum and sum of squares are kept up to date, so mean and
    variance cost O(1) per query whatever the window size.
    """

    __slots__ = ("_evictions", "intervals", "last", "sum", "sum_sq")

    def __init__(self, last: float, window: int, seeds: tuple[float, ...]) -> None:
        self.last = last
        self.intervals: deque[float] = deque(maxlen=window)
        self.sum = 0.0
        self.sum_sq = 0.0
        self._evictions = 0
        for seed in seeds:
            self.add(seed)

    def add(self, interval: float) -> None:
        """Append ``interval``, evicting the oldest sample once the window is full."""
        maxlen = self.intervals.maxlen
        if maxlen is not None and len(self.intervals) == maxlen:
            old = self.intervals[0]
            self.sum -= old
            self.sum_sq -= old * old
            self._evictions += 1
        self.intervals.append(interval)
        self.sum += interval
        self.sum_sq += interval * interval
        if maxlen is not None and self._evictions >= maxlen:
            # Adding and subtracting for ever accumulates rounding error; an
            # exact recount once per window's worth of evictions bounds it at
            # O(1) amortised cost.
            self.sum = math.fsum(self.intervals)
            self.sum_sq = math.fsum(x * x for x in self.intervals)
            self._evictions = 0

    def mean(self) -> float:
        """Mean inter-arrival time of the window (seconds)."""
        return max(self.sum / len(self.intervals), _MIN_MEAN)

    def std(self) -> float:
        """Population standard deviation of the window (seconds), as Akka computes it."""
        mean = self.sum / len(self.intervals)
        # E[x²] - mean² cancels badly for regular heartbeats and can come out a
        # hair below 0; the error is ~1e-8 s, far below any min_std_deviation.
        return math.sqrt(max(self.sum_sq / len(self.intervals) - mean * mean, 0.0))


class PhiAccrualDetector(FailureDetector):
    """Phi accrual (Hayashibara et al., SRDS 2004): available while φ < ``threshold``.

    Parameters (all durations in seconds):

    ``threshold`` (8.0)
        φ at which a node is convicted; 8 is the default of both Cassandra
        (``phi_convict_threshold``) and Akka. Lower detects sooner, with more
        false suspicions.
    ``model`` (``"exponential"``)
        ``"exponential"`` (Cassandra: ``φ = t / (mean · ln 10)``, learns the
        mean only) or ``"normal"`` (Akka: learns mean and spread; its tail is
        the logistic approximation of the normal CDF, see :func:`_normal_phi`).
    ``window`` (1000)
        Inter-arrival samples kept per node; Cassandra's sample window is 1000.
    ``first_interval`` (1.0)
        Interval assumed before any is measured, so the detector works from the
        first heartbeat. As Akka does, each new node's window is seeded with
        two samples, ``first_interval ∓ first_interval / 4``: mean
        ``first_interval``, standard deviation ``first_interval / 4``. Real
        samples push them out of the window. 1 s is Akka's heartbeat interval
        (and Cassandra's gossip interval).
    ``min_std_deviation`` (0.1)
        ``"normal"`` only: floor on the standard deviation (Akka's 100 ms), so
        perfectly regular heartbeats do not make the slightest delay fatal.
    ``acceptable_pause`` (0.0)
        Added to the fitted mean, in both models: a pause this much longer than
        usual is expected (Akka's ``acceptable-heartbeat-pause``, 3 s there).
    ``max_interval`` (None)
        Optional cap on recorded samples: a longer interval (say, the first
        heartbeat after a peer's outage) is recorded as ``max_interval``, so one
        outage cannot inflate the estimates for the next ``window`` heartbeats.
        Cassandra drops such intervals (``fd_max_interval_ms``, 2 s) instead.

    :meth:`suspicion` is φ itself: 0 for unknown nodes and at the instant of a
    heartbeat in the exponential model, growing without bound with silence.
    """

    # Intervals between periodic heartbeats only: traffic bursts would make
    # ordinary heartbeat gaps look like anomalies.
    heartbeats_only = True

    def __init__(
        self,
        threshold: float = 8.0,
        model: str = "exponential",
        window: int = 1000,
        first_interval: float = 1.0,
        min_std_deviation: float = 0.1,
        acceptable_pause: float = 0.0,
        max_interval: float | None = None,
    ) -> None:
        self.threshold = _check_number("threshold", threshold, minimum=0.0, inclusive=False)
        if model not in MODELS:
            raise ConfigurationError(
                f"model must be one of {', '.join(map(repr, MODELS))}, got {model!r}"
            )
        self.model = model
        if isinstance(window, bool) or not isinstance(window, int):
            raise ConfigurationError(f"window must be an integer, got {window!r}")
        if window < 2:
            # The seed alone is two samples, and one sample has no spread.
            raise ConfigurationError(f"window must be >= 2 samples, got {window!r}")
        self.window = window
        self.first_interval = _check_number(
            "first_interval", first_interval, minimum=0.0, inclusive=False
        )
        self.min_std_deviation = _check_number(
            "min_std_deviation", min_std_deviation, minimum=0.0, inclusive=False
        )
        self.acceptable_pause = _check_number(
            "acceptable_pause", acceptable_pause, minimum=0.0, inclusive=True
        )
        self.max_interval: float | None = None
        if max_interval is not None:
            self.max_interval = _check_number(
                "max_interval", max_interval, minimum=0.0, inclusive=False
            )
            if self.max_interval < self.first_interval:
                # Real samples would be capped below the assumed interval: the
                # estimate could only ever drift down from the seed.
                raise ConfigurationError(
                    f"max_interval ({max_interval!r}) must be >= first_interval "
                    f"({first_interval!r})"
                )
        spread = self.first_interval / 4
        self._seeds = (self.first_interval - spread, self.first_interval + spread)
        self._nodes: dict[str, _History] = {}

    def __repr__(self) -> str:
        return (
            f"PhiAccrualDetector(threshold={self.threshold}, model={self.model!r}, "
            f"window={self.window}, first_interval={self.first_interval}, "
            f"min_std_deviation={self.min_std_deviation}, "
            f"acceptable_pause={self.acceptable_pause}, max_interval={self.max_interval})"
        )

    def watch(self, node: str, now: float) -> None:
        """Start watching ``node`` as if just heard from.

        A node already watched is marked heard at ``now`` (an earlier ``now``
        never rewinds it) but no interval is recorded: the gap since its last
        heartbeat may be the watcher's own downtime, not the peer's rhythm.
        """
        history = self._nodes.get(node)
        if history is None:
            self._nodes[node] = _History(now, self.window, self._seeds)
        elif now > history.last:
            history.last = now

    def heartbeat(self, node: str, now: float) -> None:
        """Record that ``node`` was alive at ``now``, sampling the interval since the last.

        The first heartbeat of an unknown node starts watching it. Evidence no
        newer than the last heartbeat is ignored: messages can be delivered out
        of order, and an old one proves nothing new (nor is a 0 s interval a
        sample of the heartbeat rhythm).
        """
        history = self._nodes.get(node)
        if history is None:
            self._nodes[node] = _History(now, self.window, self._seeds)
            return
        if now <= history.last:
            return
        interval = now - history.last
        if self.max_interval is not None:
            interval = min(interval, self.max_interval)
        history.add(interval)
        history.last = now

    def phi(self, node: str, now: float) -> float:
        """φ of ``node`` at ``now``: ``-log10`` of the chance a heartbeat is still to come.

        0 for a node not watched. Same as :meth:`suspicion`.
        """
        history = self._nodes.get(node)
        if history is None:
            return 0.0
        # Clamp: a caller whose "now" lags the last heartbeat has heard it recently.
        silence = max(0.0, now - history.last)
        mean = history.mean() + self.acceptable_pause
        if self.model == "exponential":
            # -log10(exp(-t / mean)) in closed form: exact, and linear in silence.
            return silence / (mean * _LN10)
        return _normal_phi(silence, mean, max(history.std(), self.min_std_deviation))

    def is_available(self, node: str, now: float) -> bool:
        """True while φ < ``threshold``; unknown nodes are available."""
        return self.phi(node, now) < self.threshold

    def suspicion(self, node: str, now: float) -> float:
        """φ itself: 0 for unknown nodes, ``>= threshold`` exactly when unavailable."""
        return self.phi(node, now)

    def forget(self, node: str) -> None:
        """Stop watching ``node`` and drop its history; it counts as unknown afterwards."""
        self._nodes.pop(node, None)

    def watched(self) -> list[str]:
        """Sorted names of the nodes being watched (for diagnostics)."""
        return sorted(self._nodes)

    def intervals(self, node: str) -> tuple[float, ...]:
        """The inter-arrival samples currently in ``node``'s window, oldest first.

        Includes the two seed samples until real ones push them out; empty for
        a node not watched. For diagnostics and tests.
        """
        history = self._nodes.get(node)
        return tuple(history.intervals) if history is not None else ()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``phi-accrual`` failure detector."""
    registry.add_failure_detector("phi-accrual", PhiAccrualDetector)
