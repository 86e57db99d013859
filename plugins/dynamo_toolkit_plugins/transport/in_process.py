"""What the in-process networks share: their endpoints and their partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from dynamo_toolkit.errors import TransportError
from dynamo_toolkit.interfaces import Network, Transport

__all__ = ["InProcessNetwork"]

E = TypeVar("E", bound=Transport)


def _running(endpoint: Transport | None) -> bool:
    return endpoint is not None and endpoint.running


class InProcessNetwork(Network, Generic[E]):
    """Endpoints by node id, one running at a time, and a partition map."""

    def __init__(self, make_endpoint: Callable[[str], E]) -> None:
        self._make_endpoint = make_endpoint
        self._endpoints: dict[str, E] = {}
        self._group_of: dict[str, int] = {}

    def endpoint(self, node_id: str) -> E:
        """A new endpoint for ``node_id`` (replacing a stopped one on restart)."""
        if _running(self._endpoints.get(node_id)):
            raise TransportError(f"node {node_id!r} already has a running endpoint")
        endpoint = self._make_endpoint(node_id)
        self._endpoints[node_id] = endpoint
        return endpoint

    def running(self, node_id: str) -> E | None:
        """The running endpoint of ``node_id``, if any."""
        endpoint = self._endpoints.get(node_id)
        return endpoint if _running(endpoint) else None

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut the network into ``groups`` (nodes named in no group share one)."""
        self._group_of = {node: index for index, group in enumerate(groups) for node in group}

    def heal(self) -> None:
        """Every node reaches every other again."""
        self._group_of = {}

    def reachable(self, source: str, dest: str) -> bool:
        """Whether the current partition lets ``source`` reach ``dest``."""
        return self._group_of.get(source, -1) == self._group_of.get(dest, -1)
