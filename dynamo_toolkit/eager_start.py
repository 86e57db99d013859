"""Run a coroutine eagerly: its first steps run now, in the caller's frame.

``asyncio`` schedules every task's first step on a later loop turn, so a
request that could finish at once (a read answered from the local replica)
still pays for a task, a callback handle and a trip through the event loop.
:func:`start_eagerly` runs the coroutine immediately instead and only falls
back on the loop when the coroutine actually waits for a future; this is what
Python 3.12's eager task factory does, for Python 3.11.

Limits, by design: the coroutine does not run inside a task of its own, so it
must not rely on ``asyncio.current_task()`` (``asyncio.timeout`` does: await
``Transport.request_future``, which runs a request in a task when it must,
rather than ``Transport.request``), and cancelling the returned future does
not interrupt it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["start_eagerly"]

T = TypeVar("T")


def start_eagerly(
    coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop | None = None
) -> asyncio.Future[T]:
    """Run ``coro`` until it first waits; return a future of its result.

    The future is already done when the coroutine finished without waiting,
    so callers can test ``done()`` and take the result on the spot.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()
    _Driver(coro, result, loop).step()
    return result


class _Driver:
    """Advances one coroutine each time the future it awaits completes."""

    __slots__ = ("coro", "loop", "result")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        result: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.coro = coro
        self.result = result
        self.loop = loop

    def step(self, _awaited: object = None) -> None:
        """Run the coroutine up to its next wait (or its end)."""
        try:
            awaited = self.coro.send(None)
        except StopIteration as stop:
            if not self.result.done():
                self.result.set_result(stop.value)
            return
        except asyncio.CancelledError:
            self.result.cancel()
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the caller gets the coroutine's error
            if not self.result.done():
                self.result.set_exception(exc)
            return
        if awaited is None:  # a bare yield (``asyncio.sleep(0)``): resume next turn
            self.loop.call_soon(self.step)
        elif getattr(awaited, "_asyncio_future_blocking", False):
            # The protocol of asyncio futures: the awaiter clears the flag and
            # resumes the coroutine once the future is done (as ``Task`` does).
            awaited._asyncio_future_blocking = False
            awaited.add_done_callback(self.step)
        else:
            self.coro.close()
            self.result.set_exception(
                RuntimeError(f"eagerly run coroutine yielded {awaited!r}, not a future")
            )
