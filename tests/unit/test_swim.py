"""Behaviour specific to the ``swim`` failure detector (Das, Gupta, Motivala, DSN 2002).

The probe loop runs against a fake :class:`~dynamo_toolkit.interfaces.Prober`
on virtual time (``run_virtual``): each fake peer is itself a
:class:`SwimDetector`, so its acks come from the real :meth:`~SwimDetector.on_ping`
and refutations happen as they would between nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces import ActiveFailureDetector, Prober
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit_plugins.failure_detection.swim import SwimDetector

T0 = 10_000.0  # far from 0, as in the conformance suite
RTT = 0.01  # round trip of an answered probe, in virtual seconds

Trace = list[tuple[float, str, str, str]]


class FakeProber(Prober):
    """Peers that answer direct pings, only indirect ones, or nothing.

    ``reach[peer]`` is ``"direct"`` (acks pings and ping_reqs), ``"indirect"``
    (the link from here is broken: direct pings time out, helpers reach it)
    or ``"dead"``. Every call is traced as ``(time, kind, via, target)``.
    """

    def __init__(self, reach: dict[str, str], node_id: str = "me") -> None:
        self.node_id = node_id
        self.reach = reach
        self.peers = {name: SwimDetector(node_id=name) for name in reach}
        self.trace: Trace = []
        self.pinged_with: list[tuple[str, tuple[tuple[str, int], ...]]] = []

    def members(self) -> list[str]:
        return sorted(self.reach)

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def _ack(self, target: str, source: str, suspects: list[tuple[str, int]]) -> int:
        return self.peers[target].on_ping(source, suspects, self.monotonic())

    async def ping(
        self, target: str, timeout: float, suspects: list[tuple[str, int]]
    ) -> int | None:
        self.trace.append((self.monotonic(), "ping", "", target))
        self.pinged_with.append((target, tuple(suspects)))
        if self.reach[target] == "direct":
            await asyncio.sleep(RTT)
            return self._ack(target, self.node_id, suspects)
        if self.reach[target] == "refused":
            raise ConnectionRefusedError(target)
        await asyncio.sleep(timeout)
        return None

    async def ping_req(self, via: str, target: str, timeout: float) -> int | None:
        self.trace.append((self.monotonic(), "ping_req", via, target))
        if self.reach[via] == "direct" and self.reach[target] in ("direct", "indirect"):
            await asyncio.sleep(2 * RTT)
            return self._ack(target, via, [])  # a helper's ping names no suspects
        await asyncio.sleep(timeout + RTT)
        return None


def drive(
    detector: SwimDetector,
    prober: FakeProber,
    seconds: float,
    observe: Callable[[float], None] = lambda now: None,
    poll: float = 0.05,
) -> None:
    """Run ``detector`` against ``prober`` for ``seconds`` of virtual time, observing every poll."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(detector.run(prober))
        try:
            while loop.time() < seconds:
                await asyncio.sleep(poll)
                observe(loop.time())
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    run_virtual(scenario())


def peers(count: int, **special: str) -> dict[str, str]:
    reach = {f"n{i}": "direct" for i in range(count)}
    reach.update(special)
    return reach


# -- the probe loop ------------------------------------------------------------------------


def test_dead_member_is_suspected_after_a_failed_probe_then_down() -> None:
    reach = peers(4, dead="dead")
    n = len(reach)
    detector = SwimDetector()
    prober = FakeProber(reach)
    timeout = detector.effective_suspicion_timeout()
    assert timeout == 4.0  # memberlist: 4 · max(1, log10(6)) · 1 s
    suspected_at: list[float] = []
    down_at: list[float] = []

    def observe(now: float) -> None:
        if not suspected_at and detector.suspects():
            suspected_at.append(now)
        if not down_at and not detector.is_available("dead", now):
            down_at.append(now)
        for name in reach:
            if name != "dead":
                assert detector.is_available(name, now), f"{name} down at {now}"

    drive(detector, prober, 30.0, observe)
    assert detector.suspects() == [("dead", 0)]
    # Suspected only once a direct ping and the indirect ones all failed.
    first_probe = min(t for t, kind, _, target in prober.trace if target == "dead")
    helpers = {via for _, kind, via, target in prober.trace if kind == "ping_req"}
    assert helpers
    assert "dead" not in helpers
    assert first_probe < suspected_at[0] <= first_probe + detector.probe_interval + 0.05
    # Every member is probed in the first round, so detection is within n periods
    # plus the suspicion timeout; and not before the suspicion timeout has run.
    assert down_at[0] <= n * detector.probe_interval + timeout
    assert down_at[0] - suspected_at[0] >= timeout - 0.05
    # Down members are still probed (they may come back) and stay down meanwhile.
    assert sum(1 for _, kind, _, target in prober.trace if kind == "ping" and target == "dead") > 3
    assert not detector.is_available("dead", 30.0)


def test_member_reachable_only_indirectly_is_never_declared_down() -> None:
    prober = FakeProber(peers(5, cut="indirect"))
    detector = SwimDetector()

    def observe(now: float) -> None:
        assert detector.is_available("cut", now), f"cut declared down at {now}"
        assert detector.suspects() == []

    drive(detector, prober, 120.0, observe)
    rescued = [t for t, kind, _, target in prober.trace if kind == "ping_req" and target == "cut"]
    assert len(rescued) >= 3 * 20  # k = 3 helpers each round of 6 periods


def test_without_indirect_checks_the_same_member_is_declared_down() -> None:
    """The contrast: with k = 0 nothing vouches for the member behind the broken link."""
    prober = FakeProber(peers(5, cut="indirect"))
    detector = SwimDetector(indirect_checks=0)
    drive(detector, prober, 30.0)
    assert not detector.is_available("cut", 30.0)
    assert not any(kind == "ping_req" for _, kind, _, _ in prober.trace)


def test_suspected_member_refutes_with_a_higher_incarnation_and_is_cleared() -> None:
    reach = peers(3, flaky="dead")
    prober = FakeProber(reach)
    detector = SwimDetector(suspicion_timeout=30.0)  # long: it must be the refutation that clears
    suspected: list[float] = []
    cleared: list[float] = []

    def observe(now: float) -> None:
        if detector.suspects() and not suspected:
            suspected.append(now)
            reach["flaky"] = "direct"  # it comes back before being declared down
        if suspected and not cleared and not detector.suspects():
            cleared.append(now)
            assert detector.suspicion("flaky", now) == 0.0

    drive(detector, prober, 20.0, observe)
    assert suspected
    assert cleared
    # The next ping told it of the suspicion; it answered with a higher incarnation.
    told = [s for target, s in prober.pinged_with if target == "flaky" and s]
    assert told[0] == (("flaky", 0),)
    assert prober.peers["flaky"].incarnation == 1
    assert detector.incarnation_of("flaky") == 1
    assert cleared[0] - suspected[0] <= 2 * len(reach) * detector.probe_interval
    assert detector.is_available("flaky", 20.0)


def test_any_ack_clears_a_suspicion_even_at_the_same_incarnation() -> None:
    """A relayed ack carries no refutation, but it is first-hand evidence of life."""
    detector = SwimDetector(node_id="me")
    detector.watch("a", T0)
    detector._suspect("a", T0 + 1.0, T0 + 2.0)
    assert detector.suspects() == [("a", 0)]
    detector._alive("a", 0, T0 + 2.5)
    assert detector.suspects() == []
    assert detector.incarnation_of("a") == 0


def test_suspected_member_back_only_indirectly_is_cleared_by_a_relayed_ack() -> None:
    """Helpers' pings carry no suspicions, so no refutation: the relayed ack alone clears it."""
    reach = peers(3, far="dead")
    prober = FakeProber(reach)
    detector = SwimDetector(suspicion_timeout=30.0)
    suspected: list[float] = []

    def observe(now: float) -> None:
        if detector.suspects() and not suspected:
            suspected.append(now)
            reach["far"] = "indirect"

    drive(detector, prober, 20.0, observe)
    assert suspected
    assert detector.suspects() == []
    assert prober.peers["far"].incarnation == 0  # never told, never refuted
    assert detector.is_available("far", 20.0)


def test_transport_errors_count_as_failed_probes() -> None:
    prober = FakeProber(peers(3, gone="refused"))
    detector = SwimDetector()
    drive(detector, prober, 20.0)
    assert not detector.is_available("gone", 20.0)
    assert detector.is_available("n0", 20.0)


def test_probe_order_covers_every_member_each_round_and_reshuffles() -> None:
    reach = peers(7)
    prober = FakeProber(reach)
    detector = SwimDetector()
    drive(detector, prober, 7 * 6 - 0.5)
    targets = [target for _, kind, _, target in prober.trace if kind == "ping"]
    assert len(targets) == 7 * 6
    rounds = [targets[i : i + 7] for i in range(0, len(targets), 7)]
    for order in rounds:
        assert sorted(order) == sorted(reach)
    assert len({tuple(order) for order in rounds}) > 1  # reshuffled, not one fixed order
    # One probe per protocol period, on schedule.
    times = [t for t, kind, _, _ in prober.trace if kind == "ping"]
    assert times == pytest.approx([float(i) for i in range(len(times))])


def test_new_member_joins_the_current_round() -> None:
    reach = peers(6)
    prober = FakeProber(reach)
    detector = SwimDetector()

    def observe(now: float) -> None:
        if 2.9 < now < 3.0:
            reach["late"] = "direct"
            prober.peers["late"] = SwimDetector(node_id="late")

    drive(detector, prober, 10.5, observe)
    first = min(t for t, _, _, target in prober.trace if target == "late")
    assert first <= 3 + 4  # within what was left of the round, plus itself
    assert detector.is_available("late", 10.5)


def test_same_seed_same_trace_other_seed_other_trace() -> None:
    def trace(seed: int) -> Trace:
        prober = FakeProber(peers(8, dead="dead", cut="indirect"))
        drive(SwimDetector(seed=seed), prober, 40.0)
        return prober.trace

    assert trace(7) == trace(7)
    assert trace(7) != trace(8)


def test_healthy_members_of_a_large_cluster_are_not_condemned_by_silence() -> None:
    """Rounds of 40 periods are far longer than the passive 5.5 s of silence.

    While the loop runs, the silence grace covers the rotation, so only probes condemn.
    """
    reach = peers(40)
    prober = FakeProber(reach)
    detector = SwimDetector()
    for name in reach:
        detector.watch(name, 0.0)

    def observe(now: float) -> None:
        for name in reach:
            assert detector.is_available(name, now), f"{name} down at {now}"

    drive(detector, prober, 200.0, observe, poll=0.5)
    # Once the loop stops, the passive bound applies again.
    assert not all(detector.is_available(name, 200.0 + 5.6) for name in reach)


def test_run_learns_node_id_and_rejects_another() -> None:
    detector = SwimDetector()
    assert detector.on_ping("n0", [("me", 0)], T0) == 0  # own id unknown: nothing to refute
    drive(detector, FakeProber(peers(2)), 0.1)
    assert detector.node_id == "me"
    assert detector.on_ping("n0", [("me", 0)], T0) == 1

    other = SwimDetector(node_id="someone-else")
    with pytest.raises(ConfigurationError, match="someone-else"):
        drive(other, FakeProber(peers(2)), 0.1)


# -- pure methods ------------------------------------------------------------------------


def test_on_ping_refutes_a_suspicion_of_itself() -> None:
    detector = SwimDetector(node_id="me")
    assert detector.incarnation == 0
    assert detector.on_ping("a", [], T0) == 0
    assert detector.on_ping("a", [("b", 5)], T0) == 0  # others' suspicions are not ours
    assert detector.on_ping("a", [("me", 0)], T0) == 1
    assert detector.on_ping("a", [("me", 0)], T0) == 1  # an old suspicion is already refuted
    assert detector.on_ping("b", [("me", 4)], T0) == 5
    assert detector.incarnation == 5
    # The prober is recorded alive, like any sender.
    assert detector.watched() == ["a", "b"]
    assert detector.suspicion("a", T0) == 0.0


def test_heartbeat_clears_a_suspicion_but_stale_evidence_does_not() -> None:
    detector = SwimDetector(suspicion_timeout=2.0)
    detector.watch("a", T0)
    detector._suspect("a", T0 + 1.0, T0 + 1.5)  # a probe from T0 + 1 failed
    assert detector.is_available("a", T0 + 3.4)
    assert not detector.is_available("a", T0 + 3.5)
    detector.heartbeat("a", T0 + 0.5)  # sent before the probe: proves nothing now
    assert not detector.is_available("a", T0 + 3.5)
    detector.heartbeat("a", T0 + 3.6)
    assert detector.is_available("a", T0 + 3.6)
    assert detector.suspects() == []


def test_heard_during_the_probe_is_not_suspected() -> None:
    detector = SwimDetector()
    detector.heartbeat("a", T0 + 1.2)
    detector._suspect("a", T0 + 1.0, T0 + 2.0)
    assert detector.suspects() == []


def test_passive_bound_is_probe_interval_plus_timeout_plus_suspicion_timeout() -> None:
    detector = SwimDetector(probe_interval=2.0, probe_timeout=0.5, suspicion_timeout=3.0)
    detector.watch("a", T0)
    assert detector.silence_grace() == 2.5
    assert detector.suspicion("a", T0 + 2.5) == 0.0  # not yet overdue
    assert detector.suspicion("a", T0 + 4.0) == pytest.approx(0.5)
    assert detector.is_available("a", T0 + 5.49)
    assert not detector.is_available("a", T0 + 5.5)


def test_default_suspicion_timeout_scales_with_cluster_size() -> None:
    detector = SwimDetector()
    assert detector.effective_suspicion_timeout() == 4.0
    for i in range(99):
        detector.watch(f"n{i}", T0)
    assert detector.effective_suspicion_timeout() == pytest.approx(8.0)  # log10(100) = 2
    assert SwimDetector(suspicion_timeout=1.5).effective_suspicion_timeout() == 1.5
    assert SwimDetector(suspicion_multiplier=5).effective_suspicion_timeout() == 5.0


@pytest.mark.parametrize(
    "params",
    [
        {"probe_interval": 0},
        {"probe_interval": True},
        {"probe_timeout": 1.0},  # leaves no time for indirect probes
        {"probe_timeout": float("nan")},
        {"indirect_checks": -1},
        {"indirect_checks": 1.5},
        {"suspicion_timeout": 0},
        {"suspicion_multiplier": -4},
        {"seed": "x"},
        {"node_id": 3},
    ],
)
def test_bad_parameters_are_configuration_errors(params: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SwimDetector(**params)  # type: ignore[arg-type]


def test_swim_is_registered_by_its_plugin() -> None:
    host = load_plugins()
    spec = host.registry.get("failure_detector", "swim")
    assert spec.plugin == "swim"
    assert "Das, Gupta, Motivala" in spec.description
    detector = host.registry.create("failure_detector", "swim", seed=3)
    assert isinstance(detector, ActiveFailureDetector)
    with pytest.raises(ConfigurationError):
        host.registry.create("failure_detector", "swim", colour="red")
