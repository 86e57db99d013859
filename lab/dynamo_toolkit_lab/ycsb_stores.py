"""What the ``ycsb`` suite needs of a store, and the two stores it drives.

:class:`Store` is the protocol; one implementation wraps the in-process
cluster (simulated runs), the other the reference server's client (runs
against a real cluster with ``--target``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dynamo_toolkit.errors import DynamoError, QuorumNotReachedError

if TYPE_CHECKING:
    from dynamo_toolkit.in_process_cluster import Cluster
    from dynamo_toolkit.node import Node

__all__ = ["ClientStore", "ClusterStore", "QuorumFailure", "Read", "Store", "StoreFailure"]


# -- what a store must offer -----------------------------------------------------


class QuorumFailure(Exception):
    """The store could not gather R (or W) replies."""


class StoreFailure(Exception):
    """Any other failed request (timeout, unreachable node, refused request)."""


@dataclass(frozen=True)
class Read:
    """A get: the live sibling values and the context covering them."""

    values: tuple[Any, ...]
    context: bytes


class Store(Protocol):
    """The two operations a workload needs; failures raise :class:`QuorumFailure` or
    :class:`StoreFailure`."""

    async def get(self, key: str) -> Read:
        """Read ``key``."""
        ...

    async def put(self, key: str, value: object, context: bytes | None) -> bytes:
        """Write ``value`` superseding what ``context`` covers; the new context."""
        ...


class ClusterStore:
    """The in-process cluster as a :class:`Store`.

    ``routing="any"``: a load balancer sends each request to a node chosen at
    random (seeded); ``"replica"``: a partition-aware client sends it to the
    key's first running replica (Dynamo §4.5's two options). The client is
    not a node, so its hop to the coordinator and back is a virtual sleep of
    one one-way delay each way, drawn by ``hop`` (request, reply).
    """

    def __init__(
        self,
        cluster: Cluster,
        routing: str,
        rng: random.Random,
        hop: tuple[Callable[[], float], Callable[[], float]],
    ) -> None:
        self.cluster = cluster
        self.routing = routing
        self.rng = rng
        self.hop_in, self.hop_out = hop
        self.nodes = list(cluster.nodes.values())

    def _node(self, key: str) -> Node:
        if self.routing == "replica":
            return self.cluster.coordinator_for(key)
        return self.nodes[self.rng.randrange(len(self.nodes))]

    async def get(self, key: str) -> Read:
        node = self._node(key)
        await asyncio.sleep(self.hop_in())
        try:
            result = await node.get(key)
        except QuorumNotReachedError as exc:
            raise QuorumFailure(str(exc)) from exc
        except DynamoError as exc:
            raise StoreFailure(str(exc)) from exc
        finally:
            await asyncio.sleep(self.hop_out())
        return Read(result.values, result.context)

    async def put(self, key: str, value: object, context: bytes | None) -> bytes:
        node = self._node(key)
        await asyncio.sleep(self.hop_in())
        try:
            result = await node.put(key, value, context)
        except QuorumNotReachedError as exc:
            raise QuorumFailure(str(exc)) from exc
        except DynamoError as exc:
            raise StoreFailure(str(exc)) from exc
        finally:
            await asyncio.sleep(self.hop_out())
        return result.context


class ClientStore:
    """A reference-server cluster, through one native-protocol client, as a :class:`Store`."""

    def __init__(self, client: Any) -> None:
        from dynamo_toolkit_server.client import ClientError, QuorumError

        self.client = client
        self._quorum_error = QuorumError
        self._client_error = ClientError

    async def get(self, key: str) -> Read:
        try:
            result = await self.client.get(key)
        except self._quorum_error as exc:
            raise QuorumFailure(str(exc)) from exc
        except self._client_error as exc:
            raise StoreFailure(str(exc)) from exc
        return Read(tuple(result.values), result.context)

    async def put(self, key: str, value: object, context: bytes | None) -> bytes:
        try:
            context_out: bytes = await self.client.put(key, value, context)
        except self._quorum_error as exc:
            raise QuorumFailure(str(exc)) from exc
        except self._client_error as exc:
            raise StoreFailure(str(exc)) from exc
        return context_out
