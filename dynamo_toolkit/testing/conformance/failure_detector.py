"""Conformance suite for :class:`~dynamo_toolkit.interfaces.FailureDetector`.

Detectors are pure (time is passed in), so the suite drives them with
explicit timestamps: no sleeping, no wall clock.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dynamo_toolkit.interfaces import FailureDetector

__all__ = ["FailureDetectorSuite", "MakeDetector"]

#: What the ``make_detector`` fixture returns: builds a fresh detector per call.
MakeDetector = Callable[[], FailureDetector]

# Far from zero, so a detector that confuses "time 0" with "never heard" fails.
_T0 = 10_000.0
# Beats before going silent, so adaptive (e.g. phi accrual) detectors have a history.
_WARMUP_BEATS = 100
_SAMPLES = 200


class FailureDetectorSuite:
    """Subclass and provide the fixture ``make_detector``: a zero-argument
    callable returning a fresh :class:`~dynamo_toolkit.interfaces.FailureDetector`.

    Override ``detection_bound`` (seconds of silence after which a node must be
    unavailable; default 30) and ``heartbeat_interval`` (seconds between
    regular heartbeats, which must never make a node unavailable; default 0.5)
    to match the detector's configuration.
    """

    @pytest.fixture
    def detection_bound(self) -> float:
        """Seconds of silence within which a node must be declared unavailable."""
        return 30.0

    @pytest.fixture
    def heartbeat_interval(self) -> float:
        """Seconds between regular heartbeats of a healthy node."""
        return 0.5

    @pytest.fixture
    def detector(self, make_detector: MakeDetector) -> FailureDetector:
        """A fresh detector built with ``make_detector``."""
        return make_detector()

    @staticmethod
    def _beat(detector: FailureDetector, node: str, interval: float, beats: int) -> float:
        """Watch ``node`` at ``_T0`` then heartbeat it regularly; return the last beat time."""
        detector.watch(node, _T0)
        now = _T0
        for _ in range(beats):
            now += interval
            detector.heartbeat(node, now)
        return now

    @staticmethod
    def _silence_times(last: float, bound: float) -> list[float]:
        """Increasing times from just after ``last`` to ``10 * bound`` later."""
        step = bound / _SAMPLES
        return [last + step * i for i in range(1, 10 * _SAMPLES + 1)]

    def test_unknown_nodes_are_available(self, detector: FailureDetector) -> None:
        """A node never watched nor heard from is available and not suspected."""
        for now in (0.0, _T0, _T0 * 1000):
            assert detector.is_available("stranger", now)
            assert detector.suspicion("stranger", now) == 0.0

    def test_regular_heartbeats_keep_a_node_available(
        self, detector: FailureDetector, heartbeat_interval: float
    ) -> None:
        """1000 heartbeats at the regular interval: never unavailable, even just before a beat."""
        detector.watch("n1", _T0)
        now = _T0
        for beat in range(1000):
            now += heartbeat_interval
            assert detector.is_available("n1", now), f"down just before beat {beat}"
            detector.heartbeat("n1", now)
            assert detector.is_available("n1", now), f"down just after beat {beat}"

    def test_silent_node_goes_down_within_bound_and_stays_down(
        self, detector: FailureDetector, heartbeat_interval: float, detection_bound: float
    ) -> None:
        """Once heartbeats stop, the node is unavailable within the bound, for good."""
        last = self._beat(detector, "n1", heartbeat_interval, _WARMUP_BEATS)
        assert detector.is_available("n1", last)
        assert not detector.is_available("n1", last + detection_bound)
        down_since: float | None = None
        for now in self._silence_times(last, detection_bound):
            available = detector.is_available("n1", now)
            if down_since is None and not available:
                down_since = now
            elif down_since is not None:
                assert not available, f"came back at {now - last}s of silence without a beat"
        assert down_since is not None
        assert down_since - last <= detection_bound
        assert not detector.is_available("n1", last + 1000 * detection_bound)

    def test_watched_but_never_heard_node_goes_down(
        self, detector: FailureDetector, detection_bound: float
    ) -> None:
        """Watching counts as hearing once: silence afterwards is detected too."""
        detector.watch("n1", _T0)
        assert detector.is_available("n1", _T0)
        assert not detector.is_available("n1", _T0 + detection_bound)

    def test_heartbeat_after_being_down_brings_node_back(
        self, detector: FailureDetector, heartbeat_interval: float, detection_bound: float
    ) -> None:
        """A node declared down is available again as soon as it is heard from."""
        last = self._beat(detector, "n1", heartbeat_interval, _WARMUP_BEATS)
        down = last + detection_bound
        assert not detector.is_available("n1", down)
        back = down + heartbeat_interval
        detector.heartbeat("n1", back)
        assert detector.is_available("n1", back)
        assert detector.is_available("n1", back + heartbeat_interval / 2)

    def test_stale_heartbeat_is_ignored(
        self, detector: FailureDetector, heartbeat_interval: float, detection_bound: float
    ) -> None:
        """Evidence older than what was already heard (a late message) changes nothing.

        It neither revives a node that has since gone silent, nor makes a
        healthy node look silent since that old time.
        """
        last = self._beat(detector, "n1", heartbeat_interval, _WARMUP_BEATS)
        detector.heartbeat("n1", last - detection_bound)
        assert detector.is_available("n1", last + heartbeat_interval)
        down = last + detection_bound
        detector.heartbeat("n1", last - heartbeat_interval)
        assert not detector.is_available("n1", down)

    def test_forget(
        self, detector: FailureDetector, heartbeat_interval: float, detection_bound: float
    ) -> None:
        """A forgotten node is unknown again: available and unsuspected."""
        last = self._beat(detector, "n1", heartbeat_interval, _WARMUP_BEATS)
        down = last + detection_bound
        assert not detector.is_available("n1", down)
        detector.forget("n1")
        assert detector.is_available("n1", down)
        assert detector.suspicion("n1", down) == 0.0
        detector.forget("n1")  # forgetting twice, or an unknown node, is harmless
        detector.forget("never-seen")
        # Watching it again starts afresh.
        detector.watch("n1", down)
        assert detector.is_available("n1", down)
        assert not detector.is_available("n1", down + detection_bound)

    def test_suspicion_grows_monotonically_while_silent(
        self, detector: FailureDetector, heartbeat_interval: float, detection_bound: float
    ) -> None:
        """Suspicion never decreases during silence, and ends higher than it started."""
        last = self._beat(detector, "n1", heartbeat_interval, _WARMUP_BEATS)
        start = detector.suspicion("n1", last)
        assert start >= 0.0
        previous = start
        for now in self._silence_times(last, detection_bound):
            current = detector.suspicion("n1", now)
            assert current >= previous, f"suspicion fell at {now - last}s of silence"
            previous = current
        assert detector.suspicion("n1", last + detection_bound) > start

    def test_suspicion_drops_after_a_heartbeat(
        self, detector: FailureDetector, heartbeat_interval: float, detection_bound: float
    ) -> None:
        """Hearing from a suspected node lowers its suspicion."""
        last = self._beat(detector, "n1", heartbeat_interval, _WARMUP_BEATS)
        down = last + detection_bound
        suspected = detector.suspicion("n1", down)
        detector.heartbeat("n1", down)
        assert detector.suspicion("n1", down) < suspected

    def test_nodes_are_independent(
        self, detector: FailureDetector, heartbeat_interval: float, detection_bound: float
    ) -> None:
        """One node's silence (or being forgotten) does not affect another's status."""
        detector.watch("alive", _T0)
        detector.watch("silent", _T0)
        now = _T0
        for _ in range(_WARMUP_BEATS):
            now += heartbeat_interval
            detector.heartbeat("alive", now)
            detector.heartbeat("silent", now)
        silent_since = now
        while now < silent_since + detection_bound:
            now += heartbeat_interval
            assert detector.is_available("alive", now)
            detector.heartbeat("alive", now)
        assert detector.is_available("alive", now)
        assert not detector.is_available("silent", silent_since + detection_bound)
        assert detector.is_available("stranger", now)
        detector.forget("silent")
        assert detector.is_available("alive", now)
        assert detector.is_available("silent", now)
