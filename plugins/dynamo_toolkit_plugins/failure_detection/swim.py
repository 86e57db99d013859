"""The ``swim`` failure detector: probe members round-robin, suspect before condemning.

SWIM's failure detector (Das, Gupta and Motivala, "SWIM: Scalable
Weakly-consistent Infection-style Process Group Membership Protocol",
DSN 2002, §3.1 and §4), with the suspicion subprotocol (§4.2) and the
round-robin probe order (§4.3), as hashicorp/memberlist implements it:

* Every protocol period (``probe_interval``) the node pings one member,
  taken from a shuffled round-robin: a member is probed once per round and
  the order is reshuffled each round, so a failed member is probed within
  ``2n - 1`` periods at worst (the paper's time-bounded completeness).
* No ack within ``probe_timeout``: ``indirect_checks`` other members,
  chosen at random, are asked to ping it (``ping_req``), and the node waits
  for their relayed acks until the end of the period. Indirect probes keep a
  member that one path cannot reach (a congested link) from being suspected.
* Still no ack: the member is *suspected*. It becomes *down* once suspected
  for ``suspicion_timeout`` without being heard from. The node's pings carry
  its suspicions, so a suspected member learns of them and refutes them by
  raising its *incarnation* number (:meth:`SwimDetector.on_ping`).

Defaults are memberlist's LAN configuration (``DefaultLANConfig``): probe
interval 1 s, probe timeout 500 ms, 3 indirect checks, suspicion multiplier 4,
and its suspicion timeout ``multiplier · max(1, log10(n)) · probe_interval``
for a cluster of ``n`` nodes. Lifeguard's refinements (HashiCorp, 2017:
shrinking the timeout as independent suspicions arrive, local health
awareness) are not implemented; neither is SWIM's gossip of suspicions: as
the other detectors of this toolkit, this one forms a local opinion only
(Dynamo §4.8.3).

The detector also works passively, without :meth:`~SwimDetector.run`: a
member silent for longer than a probe would take to fail
(``probe_interval + probe_timeout``) counts as suspected from then on, and is
down ``suspicion_timeout`` later. So it stays meaningful when no probes can be
sent, and passes the same heartbeat-driven conformance suite as ``timeout``.
Every method that reads or records state takes the current monotonic time;
:meth:`~SwimDetector.run` reads it from the :class:`~dynamo_toolkit.interfaces.Prober`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import Any, NamedTuple

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import ActiveFailureDetector, Prober
from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["SwimDetector", "dtk_register_components"]

log = logging.getLogger(__name__)


def _check_number(name: str, value: object, *, minimum: float, inclusive: bool) -> float:
    """``value`` as a float, if it is a finite real number above ``minimum``."""
    # bool is a number to Python, but never a sensible duration or multiplier.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    ok = value >= minimum if inclusive else value > minimum
    if not math.isfinite(value) or not ok:
        bound = ">=" if inclusive else ">"
        raise ConfigurationError(f"{name} must be a finite number {bound} {minimum}, got {value!r}")
    return float(value)


def _check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value!r}")
    return value


class _Suspicion(NamedTuple):
    """A failed probe: when it started and ended, and the terms it was raised on."""

    probe_start: float  # evidence from this time on refutes it
    since: float  # when the probe failed: the suspicion timeout runs from here
    incarnation: int  # the member's incarnation when suspected (told to it on pings)
    timeout: float  # fixed when raised, as memberlist does, however the cluster grows


class _Member:
    """What the detector knows of one member."""

    __slots__ = ("heard", "incarnation", "suspect")

    def __init__(self) -> None:
        # None: only ever probed, never heard from; silence then proves nothing.
        self.heard: float | None = None
        self.incarnation = 0
        self.suspect: _Suspicion | None = None


class SwimDetector(ActiveFailureDetector):
    """SWIM (Das, Gupta, Motivala, DSN 2002): round-robin probes, indirect probes, suspicion.

    Parameters (durations in seconds; defaults are hashicorp/memberlist's LAN
    configuration):

    ``probe_interval`` (1.0)
        The protocol period: one member is probed per period.
    ``probe_timeout`` (0.5)
        How long to wait for a direct ack before asking for indirect probes;
        must be shorter than ``probe_interval``, whose remainder is left for
        them.
    ``indirect_checks`` (3)
        Members asked to probe an unresponsive member (SWIM's ``k``); 0
        disables indirect probing.
    ``suspicion_timeout`` (None)
        How long a member stays suspected before it is down. ``None`` scales
        it with the cluster as memberlist does:
        ``suspicion_multiplier · max(1, log10(n)) · probe_interval``, where
        ``n`` counts this node and every member it knows (4 s below 10 nodes).
    ``suspicion_multiplier`` (4)
        memberlist's ``SuspicionMult``; used only when ``suspicion_timeout``
        is ``None``.
    ``seed`` (0)
        Seeds the random probe order and choice of indirect helpers, so a run
        is reproducible.
    ``node_id`` (None)
        This node's id, needed to recognise a suspicion of itself in
        :meth:`on_ping`; learnt from the prober when :meth:`run` starts.

    A member is unavailable once suspected for ``suspicion_timeout``: either
    explicitly, by a failed probe, or implicitly, by silence. A member not
    heard from (no ack, no message) for longer than the *silence grace*
    counts as suspected since the grace ran out. The grace is
    ``probe_interval + probe_timeout`` (the time one probe takes to fail)
    while :meth:`run` is not running, so without probes a member silent for
    ``probe_interval + probe_timeout + suspicion_timeout`` (5.5 s by default)
    is down. While :meth:`run` runs, the grace widens to the longest a healthy
    member can go unprobed, the two most recent rounds of the rotation
    (``2n`` periods for ``n`` members), so that only probes condemn; the
    silence rule is then a backstop in case the probe loop stalls.

    :meth:`suspicion` is the time suspected in units of the suspicion timeout
    (the larger of the explicit and the implicit suspicion): 0 for a member
    not suspected, ``>= 1`` exactly when it is down.
    """

    def __init__(
        self,
        probe_interval: float = 1.0,
        probe_timeout: float = 0.5,
        indirect_checks: int = 3,
        suspicion_timeout: float | None = None,
        suspicion_multiplier: float = 4,
        seed: int = 0,
        node_id: str | None = None,
    ) -> None:
        self.probe_interval = _check_number(
            "probe_interval", probe_interval, minimum=0.0, inclusive=False
        )
        self.probe_timeout = _check_number(
            "probe_timeout", probe_timeout, minimum=0.0, inclusive=False
        )
        if self.probe_timeout >= self.probe_interval:
            # SWIM fits the indirect probes in the rest of the period.
            raise ConfigurationError(
                f"probe_timeout ({probe_timeout!r}) must be shorter than "
                f"probe_interval ({probe_interval!r})"
            )
        self.indirect_checks = _check_int("indirect_checks", indirect_checks, minimum=0)
        self.suspicion_timeout: float | None = None
        if suspicion_timeout is not None:
            self.suspicion_timeout = _check_number(
                "suspicion_timeout", suspicion_timeout, minimum=0.0, inclusive=False
            )
        self.suspicion_multiplier = _check_number(
            "suspicion_multiplier", suspicion_multiplier, minimum=0.0, inclusive=False
        )
        self.seed = _check_int("seed", seed)
        if node_id is not None and not isinstance(node_id, str):
            raise ConfigurationError(f"node_id must be a string, got {node_id!r}")
        self.node_id = node_id
        self._rng = random.Random(self.seed)
        self._members: dict[str, _Member] = {}
        self._incarnation = 0
        # The probe loop's state: how many run() calls are active, the members
        # left to probe this round, every member in the rotation, the sizes of
        # the previous and the current round, and the prober's member count.
        self._running = 0
        self._round: list[str] = []
        self._rotation: set[str] = set()
        self._round_sizes = (0, 0)
        self._members_seen = 0

    def __repr__(self) -> str:
        return (
            f"SwimDetector(probe_interval={self.probe_interval}, "
            f"probe_timeout={self.probe_timeout}, indirect_checks={self.indirect_checks}, "
            f"suspicion_timeout={self.suspicion_timeout}, "
            f"suspicion_multiplier={self.suspicion_multiplier}, seed={self.seed}, "
            f"node_id={self.node_id!r})"
        )

    # -- evidence ----------------------------------------------------------

    def watch(self, node: str, now: float) -> None:
        """Start watching ``node`` as if just heard from (see :meth:`heartbeat`)."""
        self._alive(node, None, now)

    def heartbeat(self, node: str, now: float) -> None:
        """Record that ``node`` was alive at ``now``: any message is evidence of life.

        It counts as an ack with an unchanged incarnation: it clears a
        suspicion raised by a probe that started no later than ``now``, and
        restarts the silence. Stale evidence (older than what was already
        heard, or than the probe that raised the suspicion) changes nothing.
        """
        self._alive(node, None, now)

    def on_ping(self, source: str, suspects: list[tuple[str, int]], now: float) -> int:
        """``source`` probed this node: record it alive, refute suspicions, return the incarnation.

        If ``suspects`` holds ``(this node, inc)`` with ``inc`` at least this
        node's incarnation, the incarnation becomes ``inc + 1`` (SWIM §4.2:
        only the member itself may raise it, and a higher one overrides the
        suspicion). Before this node's id is known (neither given nor learnt
        from :meth:`run`) no suspicion can be recognised as its own; the
        current incarnation is still returned.
        """
        self._alive(source, None, now)
        if self.node_id is not None:
            for member, incarnation in suspects:
                if member == self.node_id and incarnation >= self._incarnation:
                    self._incarnation = incarnation + 1
        return self._incarnation

    def _alive(self, node: str, incarnation: int | None, now: float) -> None:
        member = self._members.get(node)
        if member is None:
            member = self._members[node] = _Member()
        # Messages can be delivered out of order: an old one proves nothing new.
        if member.heard is None or now > member.heard:
            member.heard = now
        if incarnation is not None and incarnation > member.incarnation:
            member.incarnation = incarnation
        # Any ack, whatever its incarnation, clears the suspicion: it is
        # first-hand evidence that the member is alive, not a rumour that
        # incarnations must order. An ack relayed by a ping_req helper carries
        # the unchanged incarnation (ping_req tells the target no suspicions),
        # so requiring a higher one would condemn a suspected member that is
        # now reachable only through helpers. Only evidence from before the
        # failed probe is ignored.
        if member.suspect is not None and now >= member.suspect.probe_start:
            member.suspect = None

    def _suspect(self, node: str, probe_start: float, now: float) -> None:
        member = self._members.get(node)
        if member is None:
            member = self._members[node] = _Member()
        if member.heard is not None and member.heard >= probe_start:
            return  # heard from while the probe ran: it was alive after all
        if member.suspect is None:  # a later failed probe does not restart the clock
            member.suspect = _Suspicion(
                probe_start, now, member.incarnation, self.effective_suspicion_timeout()
            )

    # -- opinion -----------------------------------------------------------

    def effective_suspicion_timeout(self) -> float:
        """The suspicion timeout a suspicion raised now would get.

        ``suspicion_timeout`` if given, else memberlist's
        ``suspicion_multiplier · max(1, log10(n)) · probe_interval`` with ``n``
        this node plus the members known (watched, heard, or probed).
        """
        if self.suspicion_timeout is not None:
            return self.suspicion_timeout
        n = 1 + max(len(self._members), self._members_seen)
        return self.suspicion_multiplier * max(1.0, math.log10(n)) * self.probe_interval

    def silence_grace(self) -> float:
        """Seconds of silence after which a member counts as suspected (see the class doc)."""
        grace = self.probe_interval + self.probe_timeout
        if self._running:
            # A member probed first in one round and last in the next goes
            # unprobed for nearly both rounds, and its ack may come as late
            # as the end of its period.
            grace = max(grace, sum(self._round_sizes) * self.probe_interval)
        return grace

    def suspicion(self, node: str, now: float) -> float:
        """Time suspected in suspicion timeouts: 0 when not suspected, ``>= 1`` when down."""
        member = self._members.get(node)
        if member is None:
            return 0.0
        explicit = implicit = 0.0
        if member.suspect is not None:
            # Clamp: a caller whose "now" lags the suspicion has not waited yet.
            explicit = max(0.0, now - member.suspect.since) / member.suspect.timeout
        if member.heard is not None:
            overdue = now - member.heard - self.silence_grace()
            implicit = max(0.0, overdue) / self.effective_suspicion_timeout()
        return max(explicit, implicit)

    def is_available(self, node: str, now: float) -> bool:
        """False once ``node`` has been suspected for the suspicion timeout; unknown ones never."""
        return self.suspicion(node, now) < 1.0

    def forget(self, node: str) -> None:
        """Stop watching ``node``; it counts as unknown (available) afterwards."""
        self._members.pop(node, None)

    @property
    def incarnation(self) -> int:
        """This node's incarnation number, raised by :meth:`on_ping` to refute suspicions."""
        return self._incarnation

    def incarnation_of(self, node: str) -> int:
        """The highest incarnation ``node`` has acked with (0 if none, or unknown)."""
        member = self._members.get(node)
        return member.incarnation if member is not None else 0

    def suspects(self) -> list[tuple[str, int]]:
        """Sorted ``(member, incarnation)`` pairs of the members a probe failed for.

        Down members stay listed (and probed) until heard from, so one that
        recovers learns of the suspicion and refutes it.
        """
        return sorted(
            (node, member.suspect.incarnation)
            for node, member in self._members.items()
            if member.suspect is not None
        )

    def watched(self) -> list[str]:
        """Sorted names of the members known to the detector (for diagnostics)."""
        return sorted(self._members)

    # -- probing -----------------------------------------------------------

    async def run(self, prober: Prober) -> None:
        """Probe one member per ``probe_interval``, for ever (SWIM §3.1).

        Periods start on a fixed schedule from the first; a period that
        overruns (a prober slower than its timeouts) starts the next at once
        rather than bursting to catch up. The node cancels the task to stop it.
        """
        if self.node_id is None:
            self.node_id = prober.node_id
            # Every node is configured with the same seed: mix in the node id so
            # their probe orders are independent yet still reproducible.
            self._rng = random.Random(f"{self.seed}:{self.node_id}")
        elif self.node_id != prober.node_id:
            raise ConfigurationError(
                f"detector configured for node {self.node_id!r} but run by node {prober.node_id!r}"
            )
        self._running += 1
        try:
            start = prober.monotonic()
            while True:
                deadline = start + self.probe_interval
                await self._protocol_period(prober, deadline)
                now = prober.monotonic()
                if now < deadline:
                    await prober.sleep(deadline - now)
                    start = deadline
                else:
                    start = now
        finally:
            self._running -= 1

    async def _protocol_period(self, prober: Prober, deadline: float) -> None:
        members = prober.members()
        self._members_seen = len(members)
        target = self._next_target(members)
        if target is None:
            return
        start = prober.monotonic()
        incarnation = await self._ping(prober, target)
        if incarnation is None:
            incarnation = await self._indirect(prober, members, target, deadline)
        now = prober.monotonic()
        if incarnation is None:
            self._suspect(target, start, now)
        else:
            self._alive(target, incarnation, now)

    def _next_target(self, members: list[str]) -> str | None:
        """The next member of the shuffled round-robin (SWIM §4.3), or None if alone."""
        current = set(members)
        self._round = [node for node in self._round if node in current]
        self._rotation &= current  # one that leaves and rejoins is new again
        if not self._round:
            # A new round: every member once, in a fresh random order.
            self._round = list(members)
            self._rng.shuffle(self._round)
            self._rotation = set(members)
            self._round_sizes = (self._round_sizes[1], len(self._round))
        # Newcomers join the current round at a random place (as memberlist
        # inserts new nodes), so they are probed without waiting for a round.
        for node in members:
            if node not in self._rotation:
                self._rotation.add(node)
                self._round.insert(self._rng.randint(0, len(self._round)), node)
                self._round_sizes = (self._round_sizes[0], self._round_sizes[1] + 1)
        return self._round.pop(0) if self._round else None

    async def _ping(self, prober: Prober, target: str) -> int | None:
        try:
            return await prober.ping(target, self.probe_timeout, self.suspects())
        except OSError as error:
            # A transport failure is a probe without an ack; anything else is
            # a bug and propagates.
            log.debug("ping to %s failed: %s", target, error)
            return None

    async def _ping_req(self, prober: Prober, via: str, target: str) -> int | None:
        try:
            # The helper waits probe_timeout for the target, as in memberlist.
            return await prober.ping_req(via, target, self.probe_timeout)
        except OSError as error:
            log.debug("ping_req to %s via %s failed: %s", target, via, error)
            return None

    async def _indirect(
        self, prober: Prober, members: list[str], target: str, deadline: float
    ) -> int | None:
        """Ask up to ``indirect_checks`` helpers to probe ``target``; the first ack wins.

        Waits until ``deadline`` (the end of the period) at most, on the
        prober's clock; stops early once one helper relays an ack or all
        have given up.
        """
        now = prober.monotonic()
        # Helpers are members believed alive: one suspected would probably
        # waste the request (memberlist picks only alive nodes too).
        suspected = {node for node, _ in self.suspects()}
        candidates = [
            node
            for node in members
            if node != target and node not in suspected and self.is_available(node, now)
        ]
        helpers = self._rng.sample(candidates, min(self.indirect_checks, len(candidates)))
        if not helpers or now >= deadline:
            return None
        requests = [asyncio.ensure_future(self._ping_req(prober, via, target)) for via in helpers]
        timer = asyncio.ensure_future(prober.sleep(deadline - now))
        pending: set[asyncio.Future[Any]] = {timer, *requests}
        try:
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                # In helper order, so simultaneous acks resolve deterministically.
                for request in requests:
                    if request in done and request.result() is not None:
                        return request.result()
                if timer in done or pending == {timer}:
                    return None
        finally:
            for task in (timer, *requests):
                task.cancel()
            await asyncio.gather(timer, *requests, return_exceptions=True)


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``swim`` failure detector."""
    registry.add_failure_detector("swim", SwimDetector)
