"""Transport ``memory``: in-process delivery with no loss and no delay.

Handlers run in their own task, so a caller's timeout or cancellation never
interrupts the receiving node half-way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dynamo_toolkit.errors import NodeUnavailableError, TransportError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import Handler, Transport
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.transport.in_process import InProcessNetwork

__all__ = ["MemoryNetwork", "MemoryTransport", "RemoteError"]


class RemoteError(TransportError):
    """The destination's handler raised; the message carries its error."""


class MemoryNetwork(InProcessNetwork["MemoryTransport"]):
    """All endpoints of one in-process cluster; requests across a partition fail at
    once, as a refused connection would. ``seed`` and ``members`` are unused."""

    def __init__(self, seed: int = 0, members: Sequence[NodeInfo] = ()) -> None:
        super().__init__(lambda node_id: MemoryTransport(self, node_id))


class MemoryTransport(Transport):
    """One node's endpoint on a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, node_id: str) -> None:
        self.node_id = node_id
        self._network = network
        self._handler: Handler | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._handler is not None

    async def start(self, handler: Handler) -> None:
        """Begin delivering messages to ``handler``."""
        self._handler = handler

    def _spawn(self, source: str, message: object) -> asyncio.Task[object]:
        assert self._handler is not None
        task = asyncio.get_running_loop().create_task(self._handler(source, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _peer(self, dest: str) -> MemoryTransport:
        peer = self._network.running(dest)
        if peer is None or not self.running:
            raise NodeUnavailableError(f"node {dest!r} is not running")
        if not self._network.reachable(self.node_id, dest):
            raise TransportError(f"node {dest!r} is unreachable from {self.node_id!r} (partition)")
        return peer

    async def request(self, dest: str, message: object, timeout: float) -> object:
        """Deliver ``message`` to ``dest``'s handler and return its reply."""
        task = self._peer(dest)._spawn(self.node_id, message)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(task)
        except TimeoutError:
            raise TransportError(f"no reply from {dest!r} within {timeout} s") from None
        except (TransportError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise RemoteError(f"{dest!r} failed: {type(exc).__name__}: {exc}") from exc

    def send(self, dest: str, message: object) -> None:
        """Deliver a one-way message; silently dropped if ``dest`` is unreachable."""
        try:
            peer = self._peer(dest)
        except TransportError:
            return
        task = peer._spawn(self.node_id, message)
        task.add_done_callback(_consume_exception)

    async def stop(self) -> None:
        """Stop receiving and wait for handlers already running to finish."""
        self._handler = None
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _consume_exception(task: asyncio.Task[object]) -> None:
    # One-way messages have no one to report to; retrieving the exception keeps
    # asyncio from logging "exception was never retrieved".
    if not task.cancelled():
        task.exception()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``memory`` transport."""
    registry.add_transport("memory", MemoryNetwork)
