"""The ``FailureDetector`` interface: is that node reachable now, from here."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["ActiveFailureDetector", "FailureDetector", "Prober"]


class FailureDetector(ABC):
    """Local, per-node opinion about peers, fed with evidence of life.

    Time is passed in (``now``, monotonic seconds from the node's
    :class:`~dynamo_toolkit.interfaces.Clock`), so detectors are pure and run
    the same in simulation and for real.
    """

    #: True for detectors that model heartbeat *inter-arrival times* (phi
    #: accrual): the node then feeds them periodic heartbeats only, since
    #: bursts of ordinary traffic would distort the intervals they learn.
    heartbeats_only: bool = False

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


class Prober(ABC):
    """What a node offers an active detector: members, time, and probes.

    Probes travel as kernel messages over the node's transport; suspicions
    ride on pings (SWIM's piggybacking), so a suspected member learns of it
    and can refute it with a higher incarnation.
    """

    #: The id of the node this prober probes from.
    node_id: str

    @abstractmethod
    def members(self) -> list[str]:
        """The other members, sorted."""

    @abstractmethod
    def monotonic(self) -> float:
        """The node's monotonic clock, in seconds."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait on the node's clock."""

    @abstractmethod
    async def ping(
        self, target: str, timeout: float, suspects: list[tuple[str, int]]
    ) -> int | None:
        """Probe ``target`` directly; its incarnation if it acked in time, else None.

        ``suspects`` are ``(member, incarnation)`` pairs this node suspects,
        told to the target (which refutes a suspicion of itself).
        """

    @abstractmethod
    async def ping_req(self, via: str, target: str, timeout: float) -> int | None:
        """Ask ``via`` to probe ``target``; the target's incarnation if acked, else None."""


class ActiveFailureDetector(FailureDetector):
    """A detector that probes instead of (or besides) listening to heartbeats.

    The node runs :meth:`run` while it serves and answers probes from peers
    with :meth:`on_ping`.
    """

    @abstractmethod
    async def run(self, prober: Prober) -> None:
        """Probe members forever (the node cancels it on stop)."""

    @abstractmethod
    def on_ping(self, source: str, suspects: list[tuple[str, int]], now: float) -> int:
        """A peer probed this node; return this node's incarnation for the ack.

        If ``suspects`` names this node, raise the incarnation above the one
        suspected (the refutation), so the prober clears its suspicion.
        """
