"""The ``Transport`` interface: messages between nodes."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dynamo_toolkit.node_info import NodeInfo

__all__ = ["Handler", "Network", "Transport"]

#: A node's message handler: ``await handler(sender_id, message)`` returns the
#: reply of a request (ignored for one-way messages).
Handler = Callable[[str, object], Coroutine[Any, Any, object]]


class Transport(ABC):
    """One node's endpoint: request/response and one-way messages to peers.

    Messages are the kernel's frozen message objects
    (:mod:`dynamo_toolkit.messages`); a transport may pass them as they are
    (in-process) or encode them (over sockets).
    """

    node_id: str

    @property
    @abstractmethod
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""

    @abstractmethod
    async def start(self, handler: Handler) -> None:
        """Begin delivering incoming messages to ``handler``."""

    @abstractmethod
    async def request(self, dest: str, message: object, timeout: float) -> object:
        """Send ``message`` to ``dest`` and return its reply.

        Raises :class:`~dynamo_toolkit.errors.TransportError` when no reply
        comes within ``timeout`` seconds or ``dest`` cannot be reached, and
        :class:`~dynamo_toolkit.errors.NodeUnavailableError` when ``dest`` is
        known to be stopped.
        """

    def request_future(self, dest: str, message: object, timeout: float) -> asyncio.Future[object]:
        """Like :meth:`request`, but return a future of the reply at once.

        The future must complete within ``timeout`` seconds (with the reply or
        a :class:`~dynamo_toolkit.errors.TransportError`): the coordinator
        relies on it instead of timing every request itself. The default runs
        :meth:`request` in a task; a transport may do better.
        """
        return asyncio.ensure_future(self.request(dest, message, timeout))

    @abstractmethod
    def send(self, dest: str, message: object) -> None:
        """Send a one-way message; loss is silent."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving; pending requests to this node fail."""


class Network(ABC):
    """A transport plugin's factory: hands out one endpoint per node."""

    @abstractmethod
    def endpoint(self, node_id: str) -> Transport:
        """Return the (not yet started) endpoint of ``node_id``."""

    def add_members(self, members: Iterable[NodeInfo]) -> None:  # noqa: B027 - optional hook
        """Learn members that joined after the network was built (their addresses).

        A node calls it with every member it learns of, known ones included,
        so it must be idempotent. The default does nothing: in-process
        networks find endpoints by node id; a socket transport records each
        member's :attr:`~dynamo_toolkit.node_info.NodeInfo.address`.
        """

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut the network into ``groups``: messages between groups are lost.

        Nodes named in no group form one more group together. Optional:
        networks that cannot simulate faults raise ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot partition the network")

    def heal(self) -> None:
        """Undo :meth:`partition`: every node reaches every other again."""
        raise NotImplementedError(f"{type(self).__name__} cannot partition the network")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release shared resources once every endpoint is stopped."""
