"""Transport ``delayed``: a WAN between real processes on one machine.

A *wrapper*, as the ``compressed`` and ``cached`` storage engines are: it
sends nothing itself but builds the transport it wraps (``inner``, ``tcp`` by
default) through the component registry, and holds each message back by the
one-way delay of the link between the sender's and the receiver's datacenters
before handing it on. The links are the WAN model of the ``simulated``
transport (:mod:`dynamo_toolkit_plugins.transport.wan`), so one table
describes the same WAN in simulation and between processes::

    [transport]
    name = "delayed"
    inner = "tcp"                      # or a table: {name = "tcp", connect_timeout = 2.0}

    [[transport.wan.links]]
    between = ["dc1", "dc2"]
    latency = "lognormal"
    median_ms = 40
    p99_ms = 120
    loss = 0.001

Every other key of the section (``addresses``, ``cluster_secret``, the TLS
contexts a node process adds) goes to the inner transport.

Delays are the event loop's timers (``loop.call_later`` for one-way
messages, an ``asyncio`` sleep for requests), never the wall clock: on a
:class:`~dynamo_toolkit.virtual_time.VirtualTimeLoop` over an in-process inner
transport they are virtual. A request waits the outbound delay before it is
sent and the return leg's delay after its reply arrives, all within its
timeout. A lost message (the link's ``loss``) or one across a cut link
(:meth:`DelayedNetwork.cut`) is never sent: a request then fails when its
timeout runs out, as it would on a real network. One-way messages with
different delays may overtake each other. Traffic with no delay (inside a
datacenter when the model has no ``local`` link) goes straight to the inner
transport; the inner transport itself is unchanged.

Delays are drawn from ``random.Random(seed)`` (a node process passes 0), so
a given process draws the same sequence each run.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dynamo_toolkit.errors import ConfigurationError, TransportError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import Handler, Network, Transport
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.inner_spec import split_inner_spec
from dynamo_toolkit_plugins.transport.wan import WanModel, WanState

__all__ = ["DelayedNetwork", "DelayedTransport", "InnerNetworkSpec"]

#: What ``inner`` may be: a registered transport name, a table ``{name = ..., params...}``
#: or an already built :class:`~dynamo_toolkit.interfaces.Network`.
InnerNetworkSpec = str | Mapping[str, Any] | Network


def _build_inner(
    inner: InnerNetworkSpec,
    *,
    seed: int,
    members: Sequence[NodeInfo],
    registry: ComponentRegistry | None,
    params: Mapping[str, Any],
) -> Network:
    if isinstance(inner, Network):
        return inner
    name, own = split_inner_spec(
        inner, owner='transport "delayed"', kind="a transport", example="tcp"
    )
    if name == "delayed":
        raise ConfigurationError('transport "delayed" cannot wrap itself')
    if registry is None:
        raise ConfigurationError(
            f'transport "delayed" needs the component registry to build inner transport '
            f"{name!r} (build it through ComponentRegistry.create, or pass a Network)"
        )
    return registry.create("transport", name, seed=seed, members=members, **params, **own)


class DelayedNetwork(Network):
    """Wraps another transport's network; delays messages by their datacenter link.

    ``wan`` is a :class:`~.wan.WanModel` or its TOML table; ``inner`` the
    wrapped transport (:data:`InnerNetworkSpec`); other keyword parameters go
    to the inner transport's factory.
    """

    def __init__(
        self,
        seed: int = 0,
        members: Sequence[NodeInfo] = (),
        *,
        registry: ComponentRegistry | None = None,
        inner: InnerNetworkSpec = "tcp",
        wan: WanModel | Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        self.inner = _build_inner(
            inner, seed=seed, members=members, registry=registry, params=params
        )
        self.wan = WanState(
            WanModel() if wan is None else WanModel.from_config(wan), random.Random(seed), members
        )

    def __repr__(self) -> str:
        return f"DelayedNetwork(inner={self.inner!r})"

    def endpoint(self, node_id: str) -> DelayedTransport:
        """The inner transport's endpoint of ``node_id``, wrapped."""
        return DelayedTransport(self, self.inner.endpoint(node_id))

    def add_members(self, members: Iterable[NodeInfo]) -> None:
        """Learn new members' datacenters; the inner network learns them too."""
        members = list(members)
        self.wan.learn(members)
        self.inner.add_members(members)

    def cut(self, dc_a: str, dc_b: str | None = None) -> None:
        """Cut the link between two datacenters (or ``dc_a`` from all others); see the module."""
        self.wan.cut(dc_a, dc_b)

    def restore(self, dc_a: str | None = None, dc_b: str | None = None) -> None:
        """Undo :meth:`cut`: one link, every cut involving ``dc_a``, or every cut."""
        self.wan.restore(dc_a, dc_b)

    def partition(self, *groups: Iterable[str]) -> None:
        """The inner network's partition."""
        self.inner.partition(*groups)

    def heal(self) -> None:
        """The inner network's heal."""
        self.inner.heal()

    async def close(self) -> None:
        """Close the inner network."""
        await self.inner.close()

    def leg(self, source: str, dest: str) -> float | None:
        """Draw one message's delay in seconds; ``None`` when it is lost or the link is cut."""
        lost, delay = self.wan.draw(source, dest)
        if lost or self.wan.is_cut(source, dest):
            return None
        return delay or 0.0


class DelayedTransport(Transport):
    """One node's endpoint: the inner endpoint behind the WAN delays."""

    def __init__(self, network: DelayedNetwork, inner: Transport) -> None:
        self.node_id = inner.node_id
        self.inner = inner
        self._network = network

    @property
    def running(self) -> bool:
        """The inner endpoint's state."""
        return self.inner.running

    async def start(self, handler: Handler) -> None:
        """Start the inner endpoint (incoming messages are not delayed again)."""
        await self.inner.start(handler)

    async def request(self, dest: str, message: object, timeout: float) -> object:
        """Wait the outbound leg, send through the inner endpoint, wait the return leg."""
        out = self._network.leg(self.node_id, dest)
        if out == 0.0:  # no delay out: no timer, no timeout of our own
            reply = await self.inner.request(dest, message, timeout)
            back = self._network.leg(dest, self.node_id)
            if back:
                await asyncio.sleep(back)
            return reply
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                if out is None:  # lost on the way, or the link is cut
                    await asyncio.sleep(timeout)
                await asyncio.sleep(out or 0.0)
                reply = await self.inner.request(dest, message, max(deadline - loop.time(), 0.0))
                back = self._network.leg(dest, self.node_id)
                if back is None:  # the reply is lost: the timeout runs out
                    await asyncio.sleep(timeout)
                await asyncio.sleep(back or 0.0)
                return reply
        except TimeoutError:
            raise TransportError(f"no reply from {dest!r} within {timeout} s") from None

    def send(self, dest: str, message: object) -> None:
        """Hand a one-way message to the inner endpoint once its delay has passed."""
        delay = self._network.leg(self.node_id, dest)
        if delay is None or not self.running:
            return
        if delay == 0.0:
            self.inner.send(dest, message)
            return
        asyncio.get_running_loop().call_later(delay, self._send_now, dest, message)

    def _send_now(self, dest: str, message: object) -> None:
        if self.running:  # one-way messages held back when the node stopped are lost
            self.inner.send(dest, message)

    async def stop(self) -> None:
        """Stop the inner endpoint."""
        await self.inner.stop()


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``delayed`` transport wrapper."""
    registry.add_transport("delayed", DelayedNetwork)
