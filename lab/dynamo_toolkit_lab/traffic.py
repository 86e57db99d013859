"""The simulated network's traffic, as suites see it: observing it and sizing it.

Suites run on the ``simulated`` transport and watch it through its public
observer API (:meth:`~dynamo_toolkit_plugins.transport.simulated.SimulatedNetwork.add_observer`);
:func:`frame_bytes` says what a packet would cost on the real (``tcp``) wire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgpack

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.message_codec import encode_message

if TYPE_CHECKING:
    from dynamo_toolkit_plugins.transport.simulated import PacketObserver

__all__ = ["ObservableNetwork", "frame_bytes", "observable"]

# The tcp transport's frame kinds, by the simulated network's packet kinds.
_FRAME_KIND = {"req": 0, "rep": 1, "err": 2, "msg": 3}


@runtime_checkable
class ObservableNetwork(Protocol):
    """A network that shows its packets to observers (the ``simulated`` one)."""

    def add_observer(self, observer: PacketObserver) -> Callable[[], None]:
        """Call ``observer(source, dest, packet)`` for every packet; returns its remover."""
        ...


def observable(network: object) -> ObservableNetwork:
    """``network`` as an :class:`ObservableNetwork`, or a clear error if it is not one."""
    if not isinstance(network, ObservableNetwork):
        raise ConfigurationError(
            f"this suite observes the simulated network; got {type(network).__name__}"
        )
    return network


def frame_bytes(kind: str, request_id: int, body: object) -> int:
    """Bytes of a message framed as the ``tcp`` transport frames it (msgpack)."""
    wire: object = body if kind == "err" else encode_message(body)
    return len(msgpack.packb([_FRAME_KIND[kind], request_id, wire], use_bin_type=True))
