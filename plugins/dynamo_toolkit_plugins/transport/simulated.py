"""Transport ``simulated``: a seeded, lossy, slow network for deterministic tests.

Every message is delayed (uniform between ``min_delay`` and ``max_delay``
seconds, or by a ``latency(rng)`` callable), and may be dropped (probability
``drop``) or delivered twice (``duplicate``); partitions cut groups of nodes
apart. One ``random.Random(seed)`` drives every choice, and delivery uses the
event loop's timers, so on a :class:`~dynamo_toolkit.testing.VirtualTimeLoop`
the same seed replays the same run exactly, faster than real time.
A stopped node behaves like a crashed machine: messages to it vanish and
requests time out.

The network can be watched: :meth:`SimulatedNetwork.add_observer` registers a
callable that sees every :class:`Packet` handed to the network (source,
destination, kind, request id, message), before its loss, duplication and
delay are drawn. The strategy lab counts bytes and round trips this way and
steers per-leg latency models; a test can record traffic. Observers must not
send messages themselves.

A WAN can be laid over it (``wan``, a :class:`~.wan.WanModel` or its TOML
table, see :mod:`dynamo_toolkit_plugins.transport.wan`): each message between
two datacenters (the members' :attr:`~dynamo_toolkit.node_info.NodeInfo.datacenter`)
then takes its link's latency distribution and loss, drawn from the same
seeded generator, and :meth:`SimulatedNetwork.cut` /
:meth:`SimulatedNetwork.restore` cut and restore the links between whole
datacenters at run time, on top of the node partitions.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from dynamo_toolkit.errors import ConfigurationError, TransportError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import Handler, Transport
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.transport.in_process import InProcessNetwork
from dynamo_toolkit_plugins.transport.wan import WanModel, WanState

__all__ = [
    "NetworkStats",
    "Packet",
    "PacketObserver",
    "SimulatedNetwork",
    "SimulatedTransport",
]

Latency = Callable[[random.Random], float]


@attrs.define
class NetworkStats:
    """Counters of what the network did with the messages it was given."""

    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0


@attrs.frozen
class Packet:
    """One message on the simulated wire, as observers see it.

    ``kind`` is ``"req"`` (a request; ``request_id`` pairs it with its
    answer), ``"rep"`` (the reply), ``"err"`` (the handler failed; ``body``
    is the error text) or ``"msg"`` (one-way; ``request_id`` is 0). ``body``
    is the message object itself, as the sender passed it (a message class of
    :mod:`dynamo_toolkit.messages`), not its encoding.
    """

    kind: str
    request_id: int
    body: object


#: ``observer(source, dest, packet)``, called for every packet handed to the network.
PacketObserver = Callable[[str, str, Packet], None]


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return value


class SimulatedNetwork(InProcessNetwork["SimulatedTransport"]):
    """The shared medium of a simulated cluster: any id may join.

    ``members`` (and later :meth:`add_members`) tell the network each node's
    datacenter, which only the WAN model and :meth:`cut` use; a node it was
    never told of is in datacenter "". ``wan`` replaces ``min_delay`` ..
    ``max_delay`` and ``latency`` for the pairs of datacenters it names;
    giving both ``wan`` and ``latency`` is an error.
    """

    def __init__(
        self,
        seed: int = 0,
        members: Sequence[NodeInfo] = (),
        drop: float = 0.0,
        duplicate: float = 0.0,
        min_delay: float = 0.0005,
        max_delay: float = 0.002,
        latency: Latency | None = None,
        wan: WanModel | Mapping[str, Any] | None = None,
    ) -> None:
        if not 0 <= min_delay <= max_delay:
            raise ValueError(f"need 0 <= min_delay <= max_delay, got {min_delay}, {max_delay}")
        model = WanModel() if wan is None else WanModel.from_config(wan)
        if latency is not None and not model.empty:
            raise ConfigurationError(
                "give the simulated network a latency callable or a wan, not both"
            )
        self.seed = seed
        self.drop = _probability("drop", drop)
        self.duplicate = _probability("duplicate", duplicate)
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.latency = latency
        self.stats = NetworkStats()
        self._rng = random.Random(seed)
        self.wan = WanState(model, self._rng, members)
        self._slowness: dict[str, float] = {}
        self._observers: list[PacketObserver] = []
        super().__init__(lambda node_id: SimulatedTransport(self, node_id))

    def add_members(self, members: Iterable[NodeInfo]) -> None:
        """Learn the datacenters of members that joined later."""
        self.wan.learn(members)

    # -- faults (partition and heal come from InProcessNetwork) ----------------

    def cut(self, dc_a: str, dc_b: str | None = None) -> None:
        """Cut the link between datacenters ``dc_a`` and ``dc_b`` (both ways).

        With one argument, cut ``dc_a`` from every other datacenter. Messages
        across a cut link are lost, those in flight included; traffic inside
        each datacenter goes on. Node partitions apply as well.
        """
        self.wan.cut(dc_a, dc_b)

    def restore(self, dc_a: str | None = None, dc_b: str | None = None) -> None:
        """Undo :meth:`cut`: one link, every cut involving ``dc_a``, or every cut."""
        self.wan.restore(dc_a, dc_b)

    def reachable(self, source: str, dest: str) -> bool:
        """Whether the node partition and the datacenter links let ``source`` reach ``dest``."""
        return super().reachable(source, dest) and not self.wan.is_cut(source, dest)

    def slow_down(self, node_id: str, extra_delay: float) -> None:
        """Add ``extra_delay`` seconds to every message to or from ``node_id`` (0 undoes)."""
        if extra_delay < 0:
            raise ValueError("extra_delay must not be negative")
        self._slowness[node_id] = extra_delay

    # -- observation ------------------------------------------------------------

    def add_observer(self, observer: PacketObserver) -> Callable[[], None]:
        """Call ``observer(source, dest, packet)`` for every packet sent from now on.

        It runs inside the sender's call, before the network draws the
        packet's fate and delay, so an observer may set what a ``latency``
        callable draws for this very packet; it sees packets that are then
        lost too. Returns a function that removes the observer.
        """
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    # -- delivery -------------------------------------------------------------

    def _delay(self, source: str, dest: str, wan_delay: float | None) -> float:
        if wan_delay is not None:
            base = wan_delay
        elif self.latency is not None:
            base = self.latency(self._rng)
        else:
            base = self._rng.uniform(self.min_delay, self.max_delay)
        return base + self._slowness.get(source, 0.0) + self._slowness.get(dest, 0.0)

    def transmit(self, source: str, dest: str, packet: Packet) -> None:
        """Put ``packet`` on the wire: tell the observers, decide loss, duplication, delay."""
        for observer in self._observers:
            observer(source, dest, packet)
        self.stats.sent += 1
        # Draw every random number whatever the outcome, so that one fault more
        # or less does not shift all later draws.
        lost = self._rng.random() < self.drop
        twice = self._rng.random() < self.duplicate
        # With a WAN: the link's loss, then one delay per copy (the second copy
        # of a duplicate draws its own, as without one).
        lost_on_link, wan_delay = self.wan.draw(source, dest)
        if lost or lost_on_link or not self.reachable(source, dest):
            self.stats.dropped += 1
            return
        loop = asyncio.get_running_loop()
        copies = 2 if twice else 1
        self.stats.duplicated += copies - 1
        for copy in range(copies):
            if copy:
                wan_delay = self.wan.draw(source, dest)[1]
            loop.call_later(
                self._delay(source, dest, wan_delay), self._arrive, source, dest, packet
            )

    def _arrive(self, source: str, dest: str, packet: Packet) -> None:
        endpoint = self._endpoints.get(dest)
        # Checked again on arrival: a partition or crash can happen in flight.
        if endpoint is None or not endpoint.running or not self.reachable(source, dest):
            self.stats.dropped += 1
            return
        self.stats.delivered += 1
        endpoint.receive(source, packet)


class SimulatedTransport(Transport):
    """One node's endpoint on a :class:`SimulatedNetwork`."""

    def __init__(self, network: SimulatedNetwork, node_id: str) -> None:
        self.node_id = node_id
        self._network = network
        self._handler: Handler | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[object]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._handler is not None

    async def start(self, handler: Handler) -> None:
        """Begin delivering messages to ``handler``."""
        self._handler = handler

    async def request(self, dest: str, message: object, timeout: float) -> object:
        """Send ``message`` and wait up to ``timeout`` seconds for the reply."""
        if not self.running:
            raise TransportError(f"{self.node_id!r} is stopped")
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._network.transmit(self.node_id, dest, Packet("req", request_id, message))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TransportError(f"no reply from {dest!r} within {timeout} s") from None
        finally:
            self._pending.pop(request_id, None)

    def send(self, dest: str, message: object) -> None:
        """Send a one-way message."""
        if self.running:
            self._network.transmit(self.node_id, dest, Packet("msg", 0, message))

    def receive(self, source: str, packet: Packet) -> None:
        """Called by the network when ``packet`` arrives."""
        if packet.kind in ("rep", "err"):
            future = self._pending.get(packet.request_id)
            if future is None or future.done():
                return  # late or duplicated reply
            if packet.kind == "rep":
                future.set_result(packet.body)
            else:
                future.set_exception(TransportError(f"{source!r} failed: {packet.body}"))
            return
        task = asyncio.get_running_loop().create_task(self._handle(source, packet))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, source: str, packet: Packet) -> None:
        assert self._handler is not None
        try:
            reply = await self._handler(source, packet.body)
        except Exception as exc:  # the error travels back like a reply
            if packet.kind == "req":
                error = Packet("err", packet.request_id, f"{type(exc).__name__}: {exc}")
                self._network.transmit(self.node_id, source, error)
            return
        if packet.kind == "req" and self.running:
            self._network.transmit(self.node_id, source, Packet("rep", packet.request_id, reply))

    async def stop(self) -> None:
        """Crash-stop: drop everything in flight, fail pending requests."""
        self._handler = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransportError(f"{self.node_id!r} stopped"))
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``simulated`` transport."""
    registry.add_transport("simulated", SimulatedNetwork)
