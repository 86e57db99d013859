"""Helpers shared by test modules (importable because pytest puts ``tests/`` on the path).

Test modules import helpers from here, never from one another.
"""

import asyncio
from collections.abc import Callable

__all__ = ["eventually"]


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the running loop until it holds; fail after ``timeout`` s.

    For state that changes without an event to await (a connection count).
    """
    async with asyncio.timeout(timeout):
        # Polling is the point here: the state has no event to wait on.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
