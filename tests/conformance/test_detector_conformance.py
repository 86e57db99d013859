"""The ``phi-accrual`` failure detector passes the failure detector suite, in both models.

Built through the plugin system, exactly as configuration would build it, so a
broken entry point or registration fails here too.

How the detection bounds are derived. The binding case is the suite's
"watched but never heard" test: the window then holds only the two seed
samples, ``first_interval ∓ first_interval / 4`` (mean ``first_interval``,
standard deviation ``first_interval / 4``); the suite's 100 warm-up beats at
0.5 s only shorten the mean, so detection comes sooner after them.

* exponential: φ = t / (mean · ln 10) reaches 8 at t = 8 · ln 10 · mean
  = 18.42 s for the default ``first_interval`` of 1 s (9.39 s after the
  warm-up, mean 0.51 s).
* normal: φ = log10(1 + e^z), z = y · (1.5976 + 0.070566 · y²),
  y = (t - mean) / std. φ = 8 needs z ≈ 8 · ln 10 = 18.42, so y ≈ 5.23 and
  t = 1 + 5.23 · 0.25 = 2.31 s (1.03 s after the warm-up, where the std is
  at its 0.1 s floor: 0.51 + 5.23 · 0.1).

Each bound is that worst case plus a margin of over 1 %: the suite samples
silence in steps of bound / 200, and the first sample past the detection
time must still fall within the bound despite rounding.
"""

from __future__ import annotations

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces import FailureDetector
from dynamo_toolkit.plugin_host import PluginHost, load_plugins
from dynamo_toolkit.testing.conformance.failure_detector import (
    FailureDetectorSuite,
    MakeDetector,
)


@pytest.fixture(scope="module")
def host() -> PluginHost:
    """One plugin host, loaded from the entry points, for the whole module."""
    return load_plugins()


def _phi(host: PluginHost, **params: object) -> MakeDetector:
    def make() -> FailureDetector:
        detector = host.registry.create("failure_detector", "phi-accrual", **params)
        assert isinstance(detector, FailureDetector)
        return detector

    return make


class TestPhiAccrualExponential(FailureDetectorSuite):
    """``phi-accrual`` at its defaults (exponential model, Cassandra-like), 0.5 s beats."""

    @pytest.fixture
    def detection_bound(self) -> float:
        return 18.7  # 8 · ln 10 · 1 s = 18.42 s, see the module docstring

    @pytest.fixture
    def make_detector(self, host: PluginHost) -> MakeDetector:
        return _phi(host)


class TestPhiAccrualNormal(FailureDetectorSuite):
    """``phi-accrual`` with the normal model (Akka-like) and otherwise defaults, 0.5 s beats."""

    @pytest.fixture
    def detection_bound(self) -> float:
        return 2.35  # 1 s + 5.23 · 0.25 s = 2.31 s, see the module docstring

    @pytest.fixture
    def make_detector(self, host: PluginHost) -> MakeDetector:
        return _phi(host, model="normal")


class TestPhiAccrualAkkaDefaults(FailureDetectorSuite):
    """The normal model with Akka's own defaults: 3 s acceptable pause, 1 s heartbeats."""

    @pytest.fixture
    def heartbeat_interval(self) -> float:
        return 1.0

    @pytest.fixture
    def detection_bound(self) -> float:
        # Seed only: mean 1 s + 3 s pause, std 0.25 s: 4 + 5.23 · 0.25 = 5.31 s.
        return 5.4

    @pytest.fixture
    def make_detector(self, host: PluginHost) -> MakeDetector:
        return _phi(host, model="normal", acceptable_pause=3.0)


class TestPhiAccrualSmallWindow(FailureDetectorSuite):
    """A 10-sample window with fast 0.1 s heartbeats: the seeds are soon pushed out."""

    @pytest.fixture
    def heartbeat_interval(self) -> float:
        return 0.1

    @pytest.fixture
    def detection_bound(self) -> float:
        return 1.9  # seed only: 8 · ln 10 · 0.1 s = 1.84 s

    @pytest.fixture
    def make_detector(self, host: PluginHost) -> MakeDetector:
        return _phi(host, window=10, first_interval=0.1, max_interval=0.5)


# -- what the suite cannot know: registration and parameters ---------------------------------


def test_phi_accrual_is_registered_by_its_plugin(host: PluginHost) -> None:
    spec = host.registry.get("failure_detector", "phi-accrual")
    assert spec.plugin == "phi-accrual"
    assert "Hayashibara" in spec.description  # taken from the class docstring
    assert "phi-accrual" in host.registry.names("failure_detector")


@pytest.mark.parametrize(
    "params",
    [{"threshold": 0}, {"model": "weibull"}, {"window": 1}, {"colour": "red"}],
)
def test_bad_parameters_are_configuration_errors(
    host: PluginHost, params: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        host.registry.create("failure_detector", "phi-accrual", **params)


class TestSwim(FailureDetectorSuite):
    """``swim`` at its defaults (memberlist LAN), passive: heartbeats only, no probe loop.

    Without probes a member counts as suspected once silent for a probe's
    worth (probe interval 1 s + probe timeout 0.5 s) and is down a suspicion
    timeout later: 4 · max(1, log10(n)) · 1 s = 4 s, as the suite never
    watches more than 9 nodes. Silence of 1 + 0.5 + 4 = 5.5 s, plus a margin
    of over 1 % for the suite's sampling steps.
    """

    @pytest.fixture
    def detection_bound(self) -> float:
        return 5.6

    @pytest.fixture
    def make_detector(self, host: PluginHost) -> MakeDetector:
        def make() -> FailureDetector:
            detector = host.registry.create("failure_detector", "swim")
            assert isinstance(detector, FailureDetector)
            return detector

        return make
