"""Failure-detector quality of service on virtual time (the engines of suite ``detectors``).

The figures follow Chen, Toueg and Aguilera, "On the Quality of Service of
Failure Detectors" (IEEE Trans. Computers, 2002): a detector watched by an
observer is judged by its *detection time* (from a crash until the observer
suspects for good), its *mistake rate* (how often it starts suspecting a live
member) and its *query accuracy* (the fraction of time a live member is
trusted; this module reports the complement, the fraction suspected).

Two engines produce them, both seeded and on virtual time:

* :func:`run_passive` for detectors fed by heartbeats (``timeout``,
  ``phi-accrual``). Every member sends a heartbeat to every other member each
  ``heartbeat_interval`` (as the node's heartbeat loop does), each one lost
  with probability ``loss`` or delayed by a draw from the delay distribution.
  Pairs of members share nothing in this model, so one member is followed
  (the one that crashes) and each of the ``n - 1`` others observes it through
  its own stream, fed to a real detector instance in a discrete-event loop in
  plain Python: no event loop, no network objects. All settings of all
  passive detectors see the same streams (common random numbers).
* :func:`run_swim` for the active ``swim`` detector: ``n`` members, each a
  real :class:`~dynamo_toolkit_plugins.failure_detection.swim.SwimDetector`
  run with a :class:`~dynamo_toolkit.interfaces.Prober` over the real
  ``simulated`` transport on :func:`~dynamo_toolkit.testing.run_virtual`'s
  loop, answering probes as :class:`~dynamo_toolkit.node.Node` does. Only
  probe traffic flows (no heartbeats, gossip or data).

Both engines read the detectors through their public interface only:
``is_available(node, now)`` at the instants their state can change (every
message in, every probe's end), and a bisection on ``now`` to find when a
suspicion began. That relies on one property the built-in detectors have:
with no new evidence, suspicion only grows with time.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dynamo_toolkit.errors import ConfigurationError, TransportError
from dynamo_toolkit.interfaces import ActiveFailureDetector, FailureDetector, Prober
from dynamo_toolkit.messages import Heartbeat, Ping, PingAck, PingReq
from dynamo_toolkit.probe_responder import ProbeResponder
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_lab.traffic import ObservableNetwork, frame_bytes, observable
from dynamo_toolkit_lab.wars import (
    Distribution,
    Exponential,
    Pareto,
    Sampler,
    Shifted,
    percentile,
    preset,
)

if TYPE_CHECKING:
    from dynamo_toolkit_plugins.transport.simulated import Packet

__all__ = [
    "DELAY_PRESETS",
    "Measurement",
    "Normal",
    "ProbeGaps",
    "Scenario",
    "Setting",
    "delay_preset",
    "onset",
    "run_passive",
    "run_swim",
    "validate_passive",
]

#: Frame kinds of the ``tcp`` transport (``[kind, request_id, body]``), used to
#: count the bytes a message would take there.

# Suspicion onsets are located to within this many seconds: far below any
# delay or timeout of interest, and reached in ~30 halvings.
_RESOLUTION = 1e-6


@dataclass(frozen=True)
class Normal:
    """Normal delay (ms) with mean ``mean`` and standard deviation ``sd``, clipped at 0.

    Not a network fit: it makes heartbeat inter-arrival times normal, the
    model under which phi accrual's threshold is a mistake probability.
    """

    mean_ms: float
    sd_ms: float

    def __post_init__(self) -> None:
        if self.mean_ms < 0 or self.sd_ms < 0:
            raise ValueError(f"need mean, sd >= 0, got {self.mean_ms}, {self.sd_ms}")

    def sampler(self, rng: random.Random) -> Sampler:
        """Draws from ``rng``."""
        draw, mean, sd = rng.normalvariate, self.mean_ms, self.sd_ms
        return lambda: max(0.0, draw(mean, sd))

    def mean(self) -> float:
        """The mean (ignoring the clip, which moves it by < 1e-4 when mean >= 4 sd)."""
        return self.mean_ms

    def to_json(self) -> dict[str, Any]:
        """``{"type": "normal", "mean": .., "sd": ..}``."""
        return {"type": "normal", "mean": self.mean_ms, "sd": self.sd_ms}


#: Delay presets: name -> (description, distribution of one-way delays in ms).
DELAY_PRESETS: dict[str, tuple[str, Distribution]] = {
    "lan": ("0.5 ms + Exp(mean 0.5 ms)", Shifted(Exponential(2.0), 0.5)),
    "congested": ("1 ms + Exp(mean 50 ms)", Shifted(Exponential(0.02), 1.0)),
    "pareto": ("Pareto(xm 1 ms, alpha 1.2)", Pareto(1.0, 1.2)),
    "normal": ("Normal(400 ms, 100 ms) clipped at 0", Normal(400.0, 100.0)),
    "LNKD-SSD": ("PBS LNKD-SSD write leg", preset("LNKD-SSD").w),
    "LNKD-DISK": ("PBS LNKD-DISK write leg", preset("LNKD-DISK").w),
    "YMMR": ("PBS YMMR write leg", preset("YMMR").w),
}


def delay_preset(name: str) -> tuple[str, str, Distribution]:
    """``(canonical name, description, distribution)`` of a preset (case-insensitive)."""
    for key, (text, dist) in DELAY_PRESETS.items():
        if key.lower() == name.lower():
            return key, text, dist
    raise KeyError(f"unknown delay preset {name!r}; presets: {', '.join(DELAY_PRESETS)}")


@dataclass(frozen=True)
class Scenario:
    """What every detector faces: cluster size, network, and the run's phases.

    Times are seconds. Each trial runs ``warmup`` (not measured), then
    ``duration`` in which mistakes are counted, then one member crashes and
    the run goes on until every other member suspects it, or ``max_wait``.
    """

    members: int
    delay: Distribution
    loss: float
    heartbeat_interval: float = 0.5
    warmup: float = 30.0
    duration: float = 300.0
    max_wait: float = 3600.0

    @property
    def crash_at(self) -> float:
        """When the followed member crashes."""
        return self.warmup + self.duration


@dataclass(frozen=True)
class Setting:
    """One detector with one set of parameters; ``knob`` names the swept one."""

    detector: str
    label: str
    knob: str
    value: float
    params: dict[str, Any]


@dataclass(frozen=True)
class ProbeGaps:
    """How many SWIM protocol periods pass before a member is probed (SWIM §3.1).

    From every live member's direct probes in the measured window, sampled at
    regular instants: ``periods`` is the number of whole periods, counting the
    one in which the probe is sent, from an instant to the next probe.
    """

    samples: int
    mean_periods: float
    p_within_one: float


@dataclass
class Measurement:
    """The quality of service of one :class:`Setting`, summed over trials."""

    setting: Setting
    members: int
    detections: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    first_suspected: list[float] = field(default_factory=list)
    undetected: int = 0
    missed_trials: int = 0
    mistakes: int = 0
    suspected: float = 0.0
    exposure: float = 0.0
    heartbeats: int = 0
    messages: int = 0
    bytes: int = 0
    member_seconds: float = 0.0
    probe_gaps: list[ProbeGaps] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON row (see the suite's documentation for the fields).

        Observers that had not detected the crash when the run ended count as
        infinitely slow: a quantile that falls among them, and the mean, are
        ``None``.
        """
        ordered = sorted(self.detections) + [math.inf] * self.undetected
        observations = len(ordered)
        hours = self.exposure / 3600.0
        row: dict[str, Any] = {
            "detector": self.setting.detector,
            "label": self.setting.label,
            "knob": self.setting.knob,
            "value": self.setting.value,
            "params": dict(self.setting.params),
            "members": self.members,
            "trials": len(self.first) + self.missed_trials,
            "observations": observations,
            "detected_fraction": len(self.detections) / observations if observations else None,
            "detection_mean_s": None if self.undetected else _finite(_mean(ordered)),
            "detection_p50_s": _finite(percentile(ordered, 0.5)),
            "detection_p99_s": _finite(percentile(ordered, 0.99)),
            "detection_max_s": _finite(ordered[-1]) if ordered else None,
            "first_detection_mean_s": None if self.missed_trials else _finite(_mean(self.first)),
            "mistakes": self.mistakes,
            "pair_hours": hours,
            "mistakes_per_pair_hour": self.mistakes / hours if hours else None,
            "suspected_fraction": self.suspected / self.exposure if self.exposure else None,
            "mistake_duration_mean_s": self.suspected / self.mistakes if self.mistakes else None,
            "msgs_per_member_s": self.messages / self.member_seconds,
            "bytes_per_member_s": self.bytes / self.member_seconds,
        }
        if self.heartbeats:
            row["mistakes_per_heartbeat"] = self.mistakes / self.heartbeats
        if self.first_suspected:
            row["first_suspected_mean_s"] = _mean(self.first_suspected)
        if self.probe_gaps:
            samples = sum(g.samples for g in self.probe_gaps)
            row["probe_gap_samples"] = samples
            row["probe_gap_mean_periods"] = _finite(
                math.fsum(g.mean_periods * g.samples for g in self.probe_gaps if g.samples)
                / samples
                if samples
                else math.nan
            )
            row["probed_within_one_period"] = _finite(
                math.fsum(g.p_within_one * g.samples for g in self.probe_gaps if g.samples)
                / samples
                if samples
                else math.nan
            )
        return row


def _finite(value: float) -> float | None:
    """``value``, or ``None`` for NaN and infinities (which JSON cannot carry)."""
    return value if math.isfinite(value) else None


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def onset(available: Callable[[float], bool], lo: float, hi: float) -> float:
    """The first instant in ``(lo, hi]`` at which ``available`` turns false.

    ``available`` must be monotone on ``[lo, hi]`` (true, then false) and
    false at ``hi``; ``lo`` itself is returned if it is already false there.
    """
    if not available(lo):
        return lo
    while hi - lo > _RESOLUTION:
        mid = (lo + hi) / 2
        if available(mid):
            lo = mid
        else:
            hi = mid
    return hi


# -- passive detectors: heartbeat streams ---------------------------------------------


def run_passive(
    scenario: Scenario,
    settings: Sequence[Setting],
    registry: ComponentRegistry,
    trials: int,
    seed: int,
    advance: Callable[[], None] = lambda: None,
) -> list[Measurement]:
    """Measure heartbeat-fed detectors; see the module docstring.

    ``advance`` is called once per observer stream (for a progress bar).
    """
    results = [Measurement(setting, scenario.members) for setting in settings]
    n = scenario.members
    interval = scenario.heartbeat_interval
    warmup, crash = scenario.warmup, scenario.crash_at
    beat_bytes = frame_bytes("msg", 0, Heartbeat(0.0))
    target = "crashing"
    for trial in range(trials):
        rng = random.Random(f"{seed}/passive/{trial}")
        delay = scenario.delay.sampler(rng)
        draw = rng.random
        phase = rng.uniform(0.0, interval)
        sends = [phase + k * interval for k in range(math.ceil((crash - phase) / interval))]
        firsts = [math.inf] * len(settings)
        for _observer in range(n - 1):
            arrivals: list[float] = []
            for sent in sends:
                # Both draws for every message, so loss does not shift later delays.
                lost = draw() < scenario.loss
                arrival = sent + delay() / 1000.0
                if not lost:
                    arrivals.append(arrival)
            arrivals.sort()
            in_window = bisect.bisect_left(arrivals, crash) - bisect.bisect_left(arrivals, warmup)
            for index, setting in enumerate(settings):
                detector: FailureDetector = registry.create(
                    "failure_detector", setting.detector, **setting.params
                )
                detection = _follow(detector, target, arrivals, scenario, results[index])
                results[index].heartbeats += in_window
                if detection is None:
                    results[index].undetected += 1
                else:
                    results[index].detections.append(detection)
                    firsts[index] = min(firsts[index], detection)
            advance()
        for index, result in enumerate(results):
            if math.isfinite(firsts[index]):
                result.first.append(firsts[index])
            else:
                result.missed_trials += 1
            result.exposure += (n - 1) * (crash - warmup)
            # Every member sends n - 1 heartbeats per interval; the followed one
            # is typical, so its sends give the per-member rate.
            result.messages += len(sends) * (n - 1)
            result.bytes += len(sends) * (n - 1) * beat_bytes
            result.member_seconds += crash
    return results


def _follow(
    detector: FailureDetector,
    target: str,
    arrivals: Sequence[float],
    scenario: Scenario,
    result: Measurement,
) -> float | None:
    """Feed one observer's detector; count its mistakes; return its detection time."""
    available = detector.is_available
    warmup, crash = scenario.warmup, scenario.crash_at

    def mistake(start: float, end: float) -> None:
        # Suspected from ``start`` while alive until ``end``: counted if it
        # began in the measured window, and only the time the member lived.
        if warmup <= start < crash:
            result.mistakes += 1
            result.suspected += min(end, crash) - start

    detector.watch(target, 0.0)
    previous = 0.0
    for arrival in arrivals:
        if not available(target, arrival):
            mistake(onset(lambda t: available(target, t), previous, arrival), arrival)
        detector.heartbeat(target, arrival)
        previous = arrival
    # No more evidence: the suspicion that starts now is the final one.
    hi = max(previous, crash)
    step = scenario.heartbeat_interval
    while available(target, hi):
        if hi > crash + scenario.max_wait:
            return None
        hi += step
        step *= 2
    start = onset(lambda t: available(target, t), previous, hi)
    if start < crash:
        mistake(start, crash)
    if start > crash + scenario.max_wait:
        return None
    return max(0.0, start - crash)


# -- suspicions of live members, looked at only when they can change ------------------


class _Ledger:
    """Observers' open suspicions of live members, and the mistakes they add up to.

    :meth:`sync` must be called right before and right after every change of
    an observer's opinion of a member (a message from it, a probe's end):
    between two such calls the detector's state does not change, so a
    suspicion that began in between is found by bisection on that state.
    """

    def __init__(self, warmup: float, result: Measurement) -> None:
        self.warmup = warmup
        self.result = result
        self.crashed: str | None = None
        self.open: dict[tuple[str, str], float] = {}

    def sync(self, observer: str, detector: FailureDetector, node: str, now: float) -> None:
        """Bring the record of ``observer``'s opinion of ``node`` up to date at ``now``."""
        if self.crashed in (node, observer):
            return  # the victim's pairs were settled at the crash
        key = (observer, node)
        if not detector.is_available(node, now):
            if key not in self.open:
                # Bisection from 0: with the state unchanged since the last
                # sync, the detector's verdict over earlier times is monotone.
                self.open[key] = onset(lambda t: detector.is_available(node, t), 0.0, now)
        elif key in self.open:
            self.close(key, now)

    def close(self, key: tuple[str, str], end: float) -> None:
        """The suspicion of ``key`` ended at ``end``: a mistake, if it began when measured."""
        start = self.open.pop(key)
        if start >= self.warmup:
            self.result.mistakes += 1
            self.result.suspected += end - start

    def crash(self, victim: str, detectors: dict[str, FailureDetector], now: float) -> None:
        """``victim`` crashes at ``now``: its pairs, brought up to date, end here."""
        for observer, detector in detectors.items():
            if observer != victim:
                self.sync(observer, detector, victim, now)
                self.sync(victim, detectors[victim], observer, now)
        self.crashed = victim
        for key in [key for key in self.open if victim in key]:
            self.close(key, now)

    def finish(self, detectors: dict[str, FailureDetector], now: float) -> None:
        """The run ends at ``now``: look at every pair once more, close what is open."""
        for observer, detector in detectors.items():
            for node in detectors:
                if node != observer:
                    self.sync(observer, detector, node, now)
        for key in list(self.open):
            self.close(key, now)


def _latency(delay: Distribution) -> Callable[[random.Random], float]:
    """The simulated network's ``latency(rng)``: seconds, drawn from ``delay`` (ms)."""
    samplers: dict[int, Sampler] = {}

    def latency(rng: random.Random) -> float:
        sampler = samplers.get(id(rng))
        if sampler is None:
            sampler = samplers[id(rng)] = delay.sampler(rng)
        return sampler() / 1000.0

    return latency


def _count_traffic(
    network: ObservableNetwork, result: Measurement, since: float, until: Callable[[], float]
) -> None:
    """Count the messages and bytes ``network`` carries from ``since`` until ``until()``."""
    loop = asyncio.get_running_loop()

    def observe(source: str, dest: str, packet: Packet) -> None:
        if since <= loop.time() < until():
            result.messages += 1
            result.bytes += frame_bytes(packet.kind, packet.request_id, packet.body)

    network.add_observer(observe)


# -- SWIM: the real detector over the simulated network ---------------------------------


class _Member:
    """One SWIM member: a detector, an endpoint, and the node's own probe responder."""

    def __init__(self, harness: _SwimHarness, node_id: str, detector: ActiveFailureDetector):
        self.harness = harness
        self.node_id = node_id
        self.detector = detector
        self.transport: Any = None
        self.task: asyncio.Task[None] | None = None
        self.target: str | None = None  # the member its current probe is about
        self.probes = ProbeResponder(lambda: detector, harness.now, self._ping, self._heard_from)

    def _heard_from(self, node: str) -> None:
        """As :meth:`Node.heard_from`, with the harness's ledger kept around it."""
        self.harness.sync(self, node)
        self.detector.heartbeat(node, self.harness.now())
        self.harness.sync(self, node)

    async def _ping(self, target: str, timeout: float) -> object:
        # A timeout travels back to the asker as an error, as from a node.
        return await self.transport.request(target, Ping(), timeout)

    async def handle(self, source: str, message: object) -> object:
        """As :meth:`Node.handle`: any message is evidence of life, then answer probes."""
        self._heard_from(source)
        if isinstance(message, Ping | PingReq):
            ack = await self.probes.answer(source, message)
            self.harness.sync(self, source)
            return ack
        raise TypeError(f"unexpected message {type(message).__name__}")


class _LabProber(Prober):
    """What :class:`Node`'s prober does, plus the harness's look at the detector."""

    def __init__(self, member: _Member, others: list[str]) -> None:
        self.member = member
        self.node_id = member.node_id
        self._others = others

    def members(self) -> list[str]:
        # A period starts: the previous one's verdict is in.
        self._sync()
        return self._others

    def monotonic(self) -> float:
        return self.member.harness.now()

    async def sleep(self, seconds: float) -> None:
        self._sync()
        await asyncio.sleep(seconds)
        self._sync()

    def _sync(self) -> None:
        if self.member.target is not None:
            self.member.harness.sync(self.member, self.member.target)

    async def _ask(self, dest: str, message: object, timeout: float) -> int | None:
        try:
            reply = await self.member.transport.request(dest, message, timeout)
        except TransportError:
            return None
        finally:
            self._sync()
        return reply.incarnation if isinstance(reply, PingAck) else None

    async def ping(
        self, target: str, timeout: float, suspects: list[tuple[str, int]]
    ) -> int | None:
        self._sync()
        self.member.target = target
        self.member.harness.probed(target)
        return await self._ask(target, Ping(tuple(suspects)), timeout)

    async def ping_req(self, via: str, target: str, timeout: float) -> int | None:
        # The helper itself waits ``timeout`` for the target: allow it that long too.
        return await self._ask(via, PingReq(target, timeout), 2 * timeout)


class _SwimHarness:
    """Members, the network, and the bookkeeping of suspicions of live members."""

    def __init__(
        self,
        scenario: Scenario,
        setting: Setting,
        registry: ComponentRegistry,
        seed: int,
        result: Measurement,
    ) -> None:
        self.scenario = scenario
        self.setting = setting
        self.registry = registry
        self.seed = seed
        self.result = result
        self.loop = asyncio.get_running_loop()
        self.ledger = _Ledger(scenario.warmup, result)
        self.probes: dict[str, list[float]] = {}
        self.members: list[_Member] = []

    @property
    def crashed(self) -> str | None:
        """The member that crashed, once it has."""
        return self.ledger.crashed

    def now(self) -> float:
        return self.loop.time()

    def probed(self, target: str) -> None:
        self.probes.setdefault(target, []).append(self.now())

    def sync(self, member: _Member, node: str) -> None:
        """Bring the record of ``member``'s opinion of ``node`` up to date (:class:`_Ledger`)."""
        self.ledger.sync(member.node_id, member.detector, node, self.now())

    def _swim_detector(self, setting: Setting) -> ActiveFailureDetector:
        detector = self.registry.create(
            "failure_detector", "swim", seed=self.seed, **setting.params
        )
        if not isinstance(detector, ActiveFailureDetector):
            raise ConfigurationError(
                "the 'swim' detector registered is not an active (probing) one"
            )
        return detector

    async def run(self, crash: str) -> None:
        scenario, setting = self.scenario, self.setting
        rng = random.Random(f"{self.seed}/swim-net")
        network = self.registry.create(
            "transport",
            "simulated",
            seed=rng.getrandbits(32),
            drop=scenario.loss,
            latency=_latency(scenario.delay),
        )
        _count_traffic(observable(network), self.result, scenario.warmup, lambda: scenario.crash_at)
        self.result.member_seconds += scenario.members * scenario.duration
        ids = [f"m{i:04d}" for i in range(scenario.members)]
        self.members = members = [
            _Member(self, node_id, self._swim_detector(setting)) for node_id in ids
        ]
        detectors: dict[str, FailureDetector] = {m.node_id: m.detector for m in members}
        for member in members:
            member.transport = network.endpoint(member.node_id)
            await member.transport.start(member.handle)
            for other in ids:
                if other != member.node_id:
                    member.detector.watch(other, 0.0)
        period = float(setting.params.get("probe_interval", 1.0))
        for member in members:
            others = [node for node in ids if node != member.node_id]
            member.task = self.loop.create_task(
                self._start(member, _LabProber(member, others), rng.uniform(0.0, period))
            )
        await asyncio.sleep(scenario.crash_at)
        victim = next(m for m in members if m.node_id == crash)
        self.ledger.crash(crash, detectors, scenario.crash_at)
        assert victim.task is not None
        victim.task.cancel()
        await victim.transport.stop()
        observers = [m for m in members if m is not victim]
        deadline = scenario.crash_at + scenario.max_wait
        while self.now() < deadline:
            await asyncio.sleep(period)
            now = self.now()
            if all(not m.detector.is_available(crash, now) for m in observers):
                break
        end = self.now()
        self.ledger.finish({m.node_id: m.detector for m in observers}, end)
        self._detections(observers, crash, end)
        # Observers watch n - 2 live members until the end and the victim
        # until the crash; the victim watched n - 1 members until then.
        n = len(ids)
        self.result.exposure += (n - 1) * (
            (n - 2) * (end - scenario.warmup) + 2 * (scenario.crash_at - scenario.warmup)
        )
        self.result.probe_gaps.append(self._probe_gaps(period))
        for member in members:
            if member.task is not None:
                member.task.cancel()
        await asyncio.gather(*(m.task for m in members if m.task), return_exceptions=True)
        for member in observers:
            await member.transport.stop()

    async def _start(self, member: _Member, prober: _LabProber, phase: float) -> None:
        # Nodes do not start in lockstep: each begins its periods at a random phase.
        await asyncio.sleep(phase)
        await member.detector.run(prober)

    def _detections(self, observers: list[_Member], crash: str, end: float) -> None:
        result = self.result
        crash_at = self.scenario.crash_at
        times: list[float] = []
        suspected: list[float] = []
        for member in observers:
            detector = member.detector
            if detector.is_available(crash, end):
                result.undetected += 1
                continue
            times.append(_down_since(detector, crash, crash_at, end) - crash_at)
            suspected.append(_suspected_since(detector, crash, crash_at, end) - crash_at)
        result.detections.extend(times)
        if not times:
            result.missed_trials += 1
            return
        result.first.append(min(times))
        result.first_suspected.append(min(suspected))

    def _probe_gaps(self, period: float) -> ProbeGaps:
        """Periods from regular instants to the next direct probe, over live members."""
        warmup, crash_at = self.scenario.warmup, self.scenario.crash_at
        horizon = crash_at - 20 * period  # P(no probe for 20 periods) ~ e^-20
        step = period / 4
        instants = [warmup + k * step for k in range(int((horizon - warmup) / step))]
        total = within = samples = 0
        for node, times in self.probes.items():
            if node == self.crashed:
                continue
            for instant in instants:
                index = bisect.bisect_left(times, instant)
                if index == len(times) or times[index] >= crash_at:
                    continue
                periods = math.floor((times[index] - instant) / period) + 1
                total += periods
                within += periods == 1
                samples += 1
        if not samples:
            return ProbeGaps(0, math.nan, math.nan)
        return ProbeGaps(samples, total / samples, within / samples)


def _down_since(detector: FailureDetector, node: str, lo: float, hi: float) -> float:
    """When ``detector`` began to hold ``node`` unavailable (it does at ``hi``)."""
    return onset(lambda t: detector.is_available(node, t), lo, hi)


def _suspected_since(detector: FailureDetector, node: str, lo: float, hi: float) -> float:
    """When ``detector``'s suspicion of ``node`` began to exceed 0 (it does at ``hi``)."""
    return onset(lambda t: detector.suspicion(node, t) <= 0.0, lo, hi)


def run_swim(
    scenario: Scenario,
    setting: Setting,
    registry: ComponentRegistry,
    trials: int,
    seed: int,
    advance: Callable[[], None] = lambda: None,
) -> Measurement:
    """Measure ``swim`` with ``setting`` on ``scenario``; see the module docstring."""
    from dynamo_toolkit.virtual_time import run_virtual

    result = Measurement(setting, scenario.members)
    for trial in range(trials):
        trial_seed = random.Random(f"{seed}/swim/{trial}").getrandbits(32)
        victim = f"m{random.Random(trial_seed).randrange(scenario.members):04d}"

        async def scenario_run(trial_seed: int = trial_seed, victim: str = victim) -> None:
            harness = _SwimHarness(scenario, setting, registry, trial_seed, result)
            await harness.run(victim)

        run_virtual(scenario_run())
        advance()
    return result


# -- the heartbeat model against real nodes -----------------------------------------------


class _Recorder(FailureDetector):
    """A node's own detector, unchanged, telling a ledger whenever evidence arrives."""

    def __init__(self, inner: FailureDetector, owner: str, ledger: _Ledger) -> None:
        self.inner = inner
        self.owner = owner
        self.ledger = ledger
        self.heartbeats_only = inner.heartbeats_only

    def watch(self, node: str, now: float) -> None:
        """Delegated, between two looks at the opinion it may change."""
        self.ledger.sync(self.owner, self.inner, node, now)
        self.inner.watch(node, now)
        self.ledger.sync(self.owner, self.inner, node, now)

    def heartbeat(self, node: str, now: float) -> None:
        """Delegated, between two looks at the opinion it may change."""
        self.ledger.sync(self.owner, self.inner, node, now)
        self.inner.heartbeat(node, now)
        self.ledger.sync(self.owner, self.inner, node, now)

    def is_available(self, node: str, now: float) -> bool:
        """Delegated."""
        return self.inner.is_available(node, now)

    def suspicion(self, node: str, now: float) -> float:
        """Delegated."""
        return self.inner.suspicion(node, now)

    def forget(self, node: str) -> None:
        """Delegated."""
        self.inner.forget(node)


def validate_passive(
    scenario: Scenario,
    settings: Sequence[Setting],
    trials: int,
    seed: int,
    advance: Callable[[], None] = lambda: None,
) -> list[Measurement]:
    """The same measurements on real nodes: an in-process :class:`~dynamo_toolkit.Cluster`.

    Every node runs the whole kernel (heartbeat loop, gossip, anti-entropy,
    hinted handoff) with the setting's detector, over the ``simulated``
    transport with the scenario's delays and loss, on virtual time. The
    node's detector is wrapped so that the mistakes can be counted as in the
    model; the message counts are all the traffic between nodes.
    """
    from dynamo_toolkit.virtual_time import run_virtual

    results = []
    for setting in settings:
        result = Measurement(setting, scenario.members)
        for trial in range(trials):
            trial_seed = random.Random(f"{seed}/cluster/{trial}").getrandbits(32)
            run_virtual(_cluster_trial(scenario, setting, trial_seed, result))
            advance()
        results.append(result)
    return results


async def _cluster_trial(
    scenario: Scenario, setting: Setting, seed: int, result: Measurement
) -> None:
    from dynamo_toolkit.in_process_cluster import Cluster

    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    config = {
        "store": {"heartbeat_interval": scenario.heartbeat_interval},
        "failure_detector": {"name": setting.detector, **setting.params},
    }
    ledger = _Ledger(scenario.warmup, result)
    # Nodes start their heartbeat loops together at 0: crash at a random
    # point of the heartbeat interval, as the model's random phase does.
    crash_at = scenario.crash_at + rng.uniform(0.0, scenario.heartbeat_interval)
    async with await Cluster.start(
        scenario.members,
        config,
        transport="simulated",
        seed=rng.getrandbits(32),
        drop=scenario.loss,
        latency=_latency(scenario.delay),
    ) as cluster:
        for node in cluster.nodes.values():
            node.detector = _Recorder(node.detector, node.node_id, ledger)
        _count_traffic(observable(cluster.network), result, scenario.warmup, lambda: crash_at)
        await asyncio.sleep(crash_at - loop.time())
        victim = rng.choice(sorted(cluster.nodes))
        inner = {node_id: _inner(node.detector) for node_id, node in cluster.nodes.items()}
        ledger.crash(victim, inner, crash_at)
        await cluster.stop_node(victim)
        stopped = loop.time()
        result.member_seconds += scenario.members * (crash_at - scenario.warmup)
        observers = {node_id: d for node_id, d in inner.items() if node_id != victim}
        deadline = crash_at + scenario.max_wait
        while loop.time() < deadline:
            await asyncio.sleep(scenario.heartbeat_interval / 4)
            if not any(d.is_available(victim, loop.time()) for d in observers.values()):
                break
        end = loop.time()
        ledger.finish(observers, end)
        n = scenario.members
        result.exposure += (n - 1) * (
            (n - 2) * (end - scenario.warmup) + 2 * (crash_at - scenario.warmup)
        )
        times = []
        for detector in observers.values():
            if detector.is_available(victim, end):
                result.undetected += 1
            else:
                # The victim is silent from ``stopped`` on: the final state holds.
                times.append(max(0.0, _down_since(detector, victim, stopped, end) - crash_at))
        result.detections.extend(times)
        if times:
            result.first.append(min(times))
        else:
            result.missed_trials += 1


def _inner(detector: FailureDetector) -> FailureDetector:
    return detector.inner if isinstance(detector, _Recorder) else detector
