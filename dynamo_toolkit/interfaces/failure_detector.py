"""The ``FailureDetector`` interface: is that node reachable now, from here."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["FailureDetector"]


class FailureDetector(ABC):
    """Local, per-node opinion about peers, fed with evidence of life.

    Time is passed in (``now``, monotonic seconds from the node's
    :class:`~dynamo_toolkit.interfaces.Clock`), so detectors are pure and run
    the same in simulation and for real.
    """

    @abstractmethod
    def watch(self, node: str, now: float) -> None:
        """Start watching ``node`` as if it had just been heard from."""

    @abstractmethod
    def heartbeat(self, node: str, now: float) -> None:
        """Record evidence that ``node`` was alive at ``now`` (any message counts)."""

    @abstractmethod
    def is_available(self, node: str, now: float) -> bool:
        """True if ``node`` should be considered reachable at ``now``.

        Nodes never watched nor heard from count as available.
        """

    @abstractmethod
    def suspicion(self, node: str, now: float) -> float:
        """How suspect ``node`` is at ``now``: 0 for not at all, growing with doubt."""

    @abstractmethod
    def forget(self, node: str) -> None:
        """Stop watching ``node`` (it left the cluster)."""
