"""Group commit: acknowledge a buffered write after the flush that covers it.

An engine that buffers writes (``buffers_writes``: ``group`` durability,
``sqlitedict``) makes them durable only when it is flushed. Acknowledging
before that flush lets a crash lose what was acknowledged; flushing after
every write costs one sync per write. Here every write waits for the next
flush, and every write that arrives before that flush starts (in the same
turn of the event loop) shares it: one sync per batch of concurrent writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["GroupCommit"]


class GroupCommit:
    """Shares flushes of one engine among the writes waiting for them.

    ``flush`` makes every write made so far durable; it runs on the event
    loop's thread, as the engines require.
    """

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._next: asyncio.Future[None] | None = None
        #: Flushes run, and writes they covered (for metrics and tests).
        self.flushes = 0
        self.writes = 0

    def after_flush(self) -> asyncio.Future[None]:
        """A future done once a flush that starts after this call has returned."""
        self.writes += 1
        upcoming = self._next
        if upcoming is None:
            loop = asyncio.get_running_loop()
            upcoming = self._next = loop.create_future()
            # Soon, not now: writes handled in this turn of the loop join it.
            loop.call_soon(self._run)
        return upcoming

    def _run(self) -> None:
        upcoming, self._next = self._next, None
        if upcoming is None:  # pragma: no cover - scheduled only with a future
            return
        self.flushes += 1
        try:
            self._flush()
        except Exception as exc:  # the writers learn their write is not durable
            if not upcoming.done():
                upcoming.set_exception(exc)
                upcoming.exception()  # a writer that gave up will not ask
            return
        if not upcoming.done():
            upcoming.set_result(None)
