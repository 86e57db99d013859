"""Behaviour specific to the ``phi-accrual`` failure detector (Hayashibara et al., SRDS 2004)."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.failure_detection import phi_accrual
from dynamo_toolkit_plugins.failure_detection.phi_accrual import PhiAccrualDetector

T0 = 10_000.0  # far from 0, as in the conformance suite
MODELS = ["exponential", "normal"]


def _beat(detector: PhiAccrualDetector, intervals: list[float], node: str = "n1") -> float:
    """Watch ``node`` at ``T0``, heartbeat it after each interval; return the last beat time."""
    detector.watch(node, T0)
    now = T0
    for interval in intervals:
        now += interval
        detector.heartbeat(node, now)
    return now


def _time_to_detect(detector: PhiAccrualDetector, last: float, node: str = "n1") -> float:
    """Seconds of silence after ``last`` until ``node`` is unavailable (bisection, to 1 µs)."""
    low, high = 0.0, 1.0
    while detector.is_available(node, last + high):
        high *= 2
    while high - low > 1e-6:
        middle = (low + high) / 2
        if detector.is_available(node, last + middle):
            low = middle
        else:
            high = middle
    return high


def _jittery(rng: random.Random, count: int, mean: float = 1.0, spread: float = 0.5) -> list[float]:
    """``count`` intervals uniform in ``mean ± spread``."""
    return [rng.uniform(mean - spread, mean + spread) for _ in range(count)]


# -- phi itself -----------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_phi_grows_strictly_with_silence_and_never_overflows(model: str) -> None:
    detector = PhiAccrualDetector(model=model)
    last = _beat(detector, [1.0] * 50)
    silences = [0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 60.0, 3600.0, 1e6, 1e9]
    phis = [detector.phi("n1", last + s) for s in silences]
    assert all(later > earlier for earlier, later in itertools.pairwise(phis))
    assert all(math.isfinite(phi) and phi >= 0.0 for phi in phis)
    assert phis == [detector.suspicion("n1", last + s) for s in silences]


def test_exponential_phi_matches_the_closed_form() -> None:
    """Regular 1 s heartbeats: mean 1 s, so φ(t) = -log10(e^-t) = t / ln 10."""
    detector = PhiAccrualDetector()
    last = _beat(detector, [1.0] * 1000)
    for silence in (0.0, 0.25, 1.0, 2.5, 10.0, 18.0, 100.0):
        expected = silence / (1.0 * math.log(10))
        assert detector.phi("n1", last + silence) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_normal_phi_tracks_the_exact_normal_tail() -> None:
    """The logistic approximation stays within 2e-4 of the exact P(later) = erfc(y/√2)/2."""
    detector = PhiAccrualDetector(model="normal")
    rng = random.Random(7)
    last = _beat(detector, _jittery(rng, 500))
    history = detector.intervals("n1")
    mean = math.fsum(history) / len(history)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in history) / len(history))
    assert std > detector.min_std_deviation  # the floor plays no part here
    for y in (-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0):
        exact = 0.5 * math.erfc(y / math.sqrt(2))
        approx = 10 ** -detector.phi("n1", last + mean + y * std)
        assert approx == pytest.approx(exact, abs=2e-4)


@pytest.mark.parametrize(("model", "expected"), [("exponential", 18.4207), ("normal", 1.5226)])
def test_detection_time_at_the_defaults(model: str, expected: float) -> None:
    """Regular 1 s beats, threshold 8: 8 · ln 10 s (exponential), 1 + 5.23 · 0.1 s (normal)."""
    detector = PhiAccrualDetector(model=model)
    last = _beat(detector, [1.0] * 100)
    assert _time_to_detect(detector, last) == pytest.approx(expected, abs=1e-3)


def test_unknown_and_forgotten_nodes_have_no_suspicion() -> None:
    detector = PhiAccrualDetector()
    assert detector.phi("stranger", T0) == 0.0
    last = _beat(detector, [1.0] * 10)
    assert not detector.is_available("n1", last + 100)
    detector.forget("n1")
    assert detector.suspicion("n1", last + 100) == 0.0
    assert detector.intervals("n1") == ()
    assert detector.watched() == []


def test_a_lagging_clock_counts_as_no_silence() -> None:
    detector = PhiAccrualDetector()
    last = _beat(detector, [1.0] * 10)
    assert detector.phi("n1", last - 5.0) == 0.0


# -- adapting to the heartbeat rhythm -----------------------------------------------------


def test_the_first_heartbeat_seeds_the_window_as_akka_does() -> None:
    """Mean ``first_interval``, std ``first_interval / 4``, before any interval is measured."""
    detector = PhiAccrualDetector(first_interval=2.0)
    detector.heartbeat("n1", T0)  # an unknown node's first heartbeat starts watching it
    assert detector.watched() == ["n1"]
    assert detector.intervals("n1") == (1.5, 2.5)
    # exponential: φ = t / (2 · ln 10) reaches 8 at 8 · ln 10 · 2 s
    assert _time_to_detect(detector, T0) == pytest.approx(16 * math.log(10), abs=1e-5)


def test_jitter_makes_the_normal_model_more_patient() -> None:
    """The accrual property: irregular heartbeats, same mean, take longer to convict."""
    rng = random.Random(2004)
    regular = PhiAccrualDetector(model="normal")
    jittery = PhiAccrualDetector(model="normal")
    regular_last = _beat(regular, [1.0] * 500)
    jittery_last = _beat(jittery, _jittery(rng, 500))
    regular_time = _time_to_detect(regular, regular_last)
    jittery_time = _time_to_detect(jittery, jittery_last)
    assert jittery_time > regular_time + 0.5  # uniform ±0.5 s: std 0.29 s against 0.1 s
    # The same late heartbeat (1.4 s) is far less suspect from the jittery node.
    assert jittery.phi("n1", jittery_last + 1.4) < regular.phi("n1", regular_last + 1.4) / 3


def test_the_exponential_model_adapts_to_the_mean_only() -> None:
    """Cassandra's model: jitter of the same mean changes nothing, a slower rhythm does."""
    rng = random.Random(2004)
    jittery = PhiAccrualDetector()
    intervals = _jittery(rng, 500)
    last = _beat(jittery, intervals)
    mean = math.fsum(jittery.intervals("n1")) / len(jittery.intervals("n1"))
    assert _time_to_detect(jittery, last) == pytest.approx(8 * math.log(10) * mean, abs=1e-5)
    slow = PhiAccrualDetector()
    slow_time = _time_to_detect(slow, _beat(slow, [2.0] * 500))
    assert slow_time > 1.9 * _time_to_detect(jittery, last)


@pytest.mark.parametrize("model", MODELS)
def test_a_lower_threshold_detects_sooner(model: str) -> None:
    rng = random.Random(8)
    intervals = _jittery(rng, 200)
    times = []
    for threshold in (8.0, 4.0, 1.0):
        detector = PhiAccrualDetector(model=model, threshold=threshold)
        times.append(_time_to_detect(detector, _beat(detector, intervals)))
    assert times[0] > times[1] > times[2]


def test_acceptable_pause_delays_detection_by_about_the_pause() -> None:
    plain = PhiAccrualDetector(model="normal")
    patient = PhiAccrualDetector(model="normal", acceptable_pause=3.0)
    plain_time = _time_to_detect(plain, _beat(plain, [1.0] * 100))
    patient_time = _time_to_detect(patient, _beat(patient, [1.0] * 100))
    assert patient_time == pytest.approx(plain_time + 3.0, abs=1e-5)


# -- the window ------------------------------------------------------------------------------


def test_the_window_is_bounded_and_forgets_the_old_rhythm() -> None:
    detector = PhiAccrualDetector(window=10)
    last = _beat(detector, [1.0] * 1000)
    assert len(detector.intervals("n1")) == 10
    now = last
    for _ in range(10):  # a full window at a new rhythm pushes the old one out
        now += 2.0
        detector.heartbeat("n1", now)
    assert detector.intervals("n1") == (2.0,) * 10
    assert detector.phi("n1", now + 4.0) == pytest.approx(4.0 / (2.0 * math.log(10)))


def test_the_default_window_holds_1000_samples() -> None:
    detector = PhiAccrualDetector()
    _beat(detector, [0.5] * 3000)
    assert detector.intervals("n1") == (0.5,) * 1000


def test_running_sums_stay_exact_over_many_evictions() -> None:
    rng = random.Random(1)
    detector = PhiAccrualDetector(window=7)
    last = _beat(detector, [rng.expovariate(1.0) + 1e-3 for _ in range(20_000)])
    window = detector.intervals("n1")
    mean = math.fsum(window) / len(window)
    assert detector.phi("n1", last + 3.0) == pytest.approx(3.0 / (mean * math.log(10)), rel=1e-9)


def test_stale_and_duplicate_heartbeats_record_nothing() -> None:
    detector = PhiAccrualDetector()
    last = _beat(detector, [1.0] * 5)
    before = detector.intervals("n1")
    detector.heartbeat("n1", last)  # same instant: no new evidence, no 0 s sample
    detector.heartbeat("n1", last - 3.0)  # delivered out of order
    assert detector.intervals("n1") == before
    assert detector.phi("n1", last + 1.0) == pytest.approx(1.0 / math.log(10))


def test_rewatching_a_node_marks_it_heard_without_sampling_the_gap() -> None:
    detector = PhiAccrualDetector()
    last = _beat(detector, [1.0] * 5)
    before = detector.intervals("n1")
    detector.watch("n1", last + 50.0)  # e.g. the watcher itself restarted
    assert detector.intervals("n1") == before
    assert detector.is_available("n1", last + 50.0)
    assert detector.phi("n1", last + 51.0) == pytest.approx(1.0 / math.log(10))
    detector.watch("n1", last)  # an earlier time never rewinds it
    assert detector.phi("n1", last + 51.0) == pytest.approx(1.0 / math.log(10))


def test_max_interval_caps_samples() -> None:
    detector = PhiAccrualDetector(max_interval=2.0)
    last = _beat(detector, [1.0] * 5 + [600.0])  # the first beat after a long outage
    assert detector.intervals("n1")[-1] == 2.0
    uncapped = PhiAccrualDetector()
    uncapped_last = _beat(uncapped, [1.0] * 5 + [600.0])
    assert uncapped.intervals("n1")[-1] == 600.0
    assert _time_to_detect(detector, last) < _time_to_detect(uncapped, uncapped_last) / 10


def test_nodes_keep_separate_histories() -> None:
    detector = PhiAccrualDetector()
    fast = _beat(detector, [0.5] * 20, node="fast")
    slow = _beat(detector, [4.0] * 20, node="slow")
    assert detector.watched() == ["fast", "slow"]
    assert _time_to_detect(detector, fast, "fast") < _time_to_detect(detector, slow, "slow")


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"threshold": 0}, "threshold"),
        ({"threshold": -1.0}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": float("inf")}, "threshold"),
        ({"threshold": "8"}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"model": "weibull"}, "model must be one of 'exponential', 'normal'"),
        ({"model": "Normal"}, "model"),
        ({"window": 1}, "window must be >= 2"),
        ({"window": 0}, "window"),
        ({"window": 10.0}, "window must be an integer"),
        ({"window": True}, "window"),
        ({"first_interval": 0.0}, "first_interval"),
        ({"first_interval": -1}, "first_interval"),
        ({"first_interval": float("inf")}, "first_interval"),
        ({"min_std_deviation": 0}, "min_std_deviation"),
        ({"min_std_deviation": None}, "min_std_deviation"),
        ({"acceptable_pause": -0.1}, "acceptable_pause"),
        ({"acceptable_pause": float("nan")}, "acceptable_pause"),
        ({"max_interval": 0}, "max_interval"),
        ({"max_interval": 0.5}, "max_interval .* must be >= first_interval"),
        ({"max_interval": "2"}, "max_interval"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PhiAccrualDetector(**params)  # type: ignore[arg-type]


def test_good_parameters_are_kept() -> None:
    detector = PhiAccrualDetector(
        threshold=5,
        model="normal",
        window=2,
        first_interval=0.2,
        min_std_deviation=0.05,
        acceptable_pause=0,
        max_interval=0.2,
    )
    assert detector.threshold == 5.0
    assert isinstance(detector.threshold, float)
    assert (detector.model, detector.window, detector.max_interval) == ("normal", 2, 0.2)
    assert "model='normal'" in repr(detector)


def test_registers_under_phi_accrual() -> None:
    registry = ComponentRegistry()
    phi_accrual.dtk_register_components(registry)
    assert registry.names("failure_detector") == ["phi-accrual"]
    assert isinstance(
        registry.create("failure_detector", "phi-accrual", model="normal"), PhiAccrualDetector
    )
