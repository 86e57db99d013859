"""The ``Clock`` interface: every component asks it for time, never ``time.time()``."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["Clock"]


class Clock(ABC):
    """A source of time and of sleeping.

    The same node code runs with :class:`~dynamo_toolkit.clock.SystemClock` on
    real sockets and with :class:`~dynamo_toolkit.testing.VirtualClock` in
    simulation, where time jumps ahead whenever every task is waiting.
    """

    @abstractmethod
    def now(self) -> float:
        """Wall-clock seconds since the epoch (version timestamps, LWW, pruning)."""

    @abstractmethod
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (timeouts, failure detection)."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
