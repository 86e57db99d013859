"""Conformance suite for :class:`~dynamo_toolkit.interfaces.Clock` implementations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from dynamo_toolkit.interfaces import Clock

__all__ = ["ClockSuite"]

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


class ClockSuite:
    """Checks any clock.

    Fixtures to provide: ``make_clock``, a zero-argument callable returning the
    clock (called inside the running loop). Optional: ``run`` (default
    ``asyncio.run``), and ``tolerance`` (seconds a sleep may overshoot, default 0.5).
    """

    @pytest.fixture
    def run(self) -> Runner:
        """How the suite runs its coroutines."""
        return asyncio.run

    @pytest.fixture
    def tolerance(self) -> float:
        """How far past its deadline a sleep may wake."""
        return 0.5

    def test_now_is_epoch_seconds(self, make_clock: Callable[[], Clock], run: Runner) -> None:
        """``now()`` is wall-clock seconds since the epoch, not milliseconds."""

        async def scenario() -> float:
            return make_clock().now()

        # After 2020-01-01 and before 2100: seconds, not milliseconds.
        assert 1_577_836_800 < run(scenario()) < 4_102_444_800

    def test_monotonic_never_goes_back(self, make_clock: Callable[[], Clock], run: Runner) -> None:
        """``monotonic()`` never decreases."""

        async def scenario() -> list[float]:
            clock = make_clock()
            readings = []
            for _ in range(100):
                readings.append(clock.monotonic())
                await asyncio.sleep(0)
            return readings

        readings = run(scenario())
        assert readings == sorted(readings)

    def test_sleep_waits_at_least_its_time(
        self, make_clock: Callable[[], Clock], run: Runner, tolerance: float
    ) -> None:
        """``sleep(s)`` waits at least ``s``, and not much longer."""

        async def scenario() -> tuple[float, float]:
            clock = make_clock()
            start_mono, start_wall = clock.monotonic(), clock.now()
            await clock.sleep(0.05)
            return clock.monotonic() - start_mono, clock.now() - start_wall

        slept, wall = run(scenario())
        assert 0.05 <= slept + 1e-9 <= 0.05 + tolerance
        assert wall >= 0.04
