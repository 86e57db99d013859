"""The real clock: wall time from the OS, timeouts from the running event loop."""

from __future__ import annotations

import asyncio
import time

from dynamo_toolkit.interfaces.clock import Clock

__all__ = ["SystemClock", "clock_for_running_loop"]


class SystemClock(Clock):
    """Time as the operating system tells it."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``.

        Not the running loop's ``time()``: finding the running loop costs a
        ``getpid`` system call on Python 3.11, several times per request, and
        nothing compares these readings with the loop's own timers.
        """
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


def clock_for_running_loop() -> Clock:
    """The clock that matches the running loop: virtual on a virtual-time loop."""
    from dynamo_toolkit.virtual_time import VirtualClock, VirtualTimeLoop

    loop = asyncio.get_running_loop()
    if isinstance(loop, VirtualTimeLoop):
        return VirtualClock(loop)
    return SystemClock()
