"""An asyncio event loop on virtual time.

Time stands still while any task can run and jumps straight to the next timer
when every task waits, so a simulation of minutes of heartbeats and timeouts
takes milliseconds, and the same seed gives the same run. All node code runs
on it unchanged: ``asyncio.sleep``, ``asyncio.timeout`` and ``loop.call_later``
simply see virtual seconds.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from dynamo_toolkit.interfaces.clock import Clock

__all__ = ["VIRTUAL_EPOCH", "VirtualClock", "VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")

#: Wall time (seconds since the epoch) at virtual time zero: 2026-01-01 UTC,
#: so timestamps look plausible and never depend on when the test runs.
VIRTUAL_EPOCH = 1_767_225_600.0


class DeadlockError(RuntimeError):
    """Every task waits and no timer is pending: the simulation can never progress."""


class _VirtualSelector(selectors.BaseSelector):
    """A selector with no real I/O: "waiting" advances the loop's virtual time."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._keys.pop(fd)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise DeadlockError("every task is waiting and no timer is scheduled")
        if timeout > 0:
            self._loop.advance(timeout)
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._keys

    def close(self) -> None:
        self._keys.clear()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is virtual (starts at 0.0).

    It performs no socket I/O: only in-process transports work on it.
    """

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        """Virtual seconds since the loop was created."""
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (the loop does this itself when idle)."""
        if seconds < 0:
            raise ValueError("time cannot go back")
        self._virtual_now += seconds


class VirtualClock(Clock):
    """The :class:`~dynamo_toolkit.interfaces.Clock` of a :class:`VirtualTimeLoop`."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop

    def now(self) -> float:
        """Virtual wall time: :data:`VIRTUAL_EPOCH` plus the loop's time."""
        return VIRTUAL_EPOCH + self._loop.time()

    def monotonic(self) -> float:
        """The loop's virtual time."""
        return self._loop.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep in virtual time (returns at once in real time)."""
        await asyncio.sleep(seconds)


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`, then close it.

    Tasks still pending at the end are cancelled, so nothing leaks between runs.
    """
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


__all__ += ["DeadlockError"]
