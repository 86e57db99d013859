"""Answering SWIM probes: what a member says to a ``Ping`` and does with a ``PingReq``.

Pure of I/O: the responder is handed how to read the clock, how to ping a
target and whom to tell that a member answered. The node uses it, and so
does the strategy lab's SWIM simulation, so both answer probes alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.interfaces import ActiveFailureDetector, FailureDetector
from dynamo_toolkit.messages import Ping, PingAck, PingReq

__all__ = ["ProbeResponder"]

#: ``ping(target, timeout)``: send ``Ping()`` to ``target``, return its reply.
PingSender = Callable[[str, float], Awaitable[object]]


class ProbeResponder:
    """Answers probes for one member.

    A ``Ping`` is answered with the member's incarnation as its detector
    reports it (an active detector also learns the suspicions the ping
    carries); a passive detector answers incarnation 0. A ``PingReq`` asks
    this member to probe ``target`` itself and relay the answer: evidence
    that ``target`` lives is reported through ``heard_from``. ``detector``
    returns the member's detector, read at each probe: a test or the lab
    may wrap the one a node started with.
    """

    def __init__(
        self,
        detector: Callable[[], FailureDetector],
        monotonic: Callable[[], float],
        ping: PingSender,
        heard_from: Callable[[str], None],
    ) -> None:
        self._detector = detector
        self._monotonic = monotonic
        self._ping = ping
        self._heard_from = heard_from

    async def answer(self, source: str, message: Ping | PingReq) -> PingAck:
        """The reply to ``message`` from ``source``."""
        if isinstance(message, Ping):
            detector = self._detector()
            if isinstance(detector, ActiveFailureDetector):
                suspects = list(message.suspects)
                return PingAck(detector.on_ping(source, suspects, self._monotonic()))
            return PingAck(0)
        reply = await self._ping(message.target, message.timeout)
        self._heard_from(message.target)
        if not isinstance(reply, PingAck):
            raise DynamoError(f"{message.target} answered a ping with {type(reply).__name__}")
        return reply
