"""An in-process cluster: K nodes in one Python process, for tests and notebooks.

::

    async with await Cluster.start(nodes=5, config={"store": {"n": 3, "r": 2, "w": 2}}) as c:
        await c.put("cart:42", ["apple"])
        print((await c.get("cart:42")).values)

Use the ``memory`` transport for speed or ``simulated`` (seeded loss, delay,
duplication, partitions); on :func:`dynamo_toolkit.testing.run_virtual`'s loop
the simulated network runs on virtual time, deterministically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dynamo_toolkit.closing import AsyncClosing
from dynamo_toolkit.components import build_components
from dynamo_toolkit.config import ComponentChoice, StoreConfig
from dynamo_toolkit.consistency import LevelSpec
from dynamo_toolkit.errors import ConfigurationError, DynamoError, NodeUnavailableError
from dynamo_toolkit.interfaces import Network
from dynamo_toolkit.membership_state import MemberStatus, Plan
from dynamo_toolkit.node import Node
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import PluginHost, load_plugins
from dynamo_toolkit.results import GetResult, PutResult
from dynamo_toolkit.values import Key, encode_key, key_position

__all__ = ["Cluster"]


def _members(nodes: int | Sequence[NodeInfo | str]) -> list[NodeInfo]:
    if isinstance(nodes, int):
        if nodes < 1:
            raise ConfigurationError(f"a cluster needs at least one node, got {nodes}")
        return [NodeInfo(f"n{i}") for i in range(1, nodes + 1)]
    members = [node if isinstance(node, NodeInfo) else NodeInfo(node) for node in nodes]
    ids = [member.node_id for member in members]
    if not members or len(set(ids)) != len(ids):
        raise ConfigurationError(f"node ids must be unique and non-empty, got {ids}")
    return members


class Cluster(AsyncClosing):
    """Nodes sharing one network, driven from a test or a notebook."""

    def __init__(self, nodes: Sequence[Node], network: Network, config: StoreConfig) -> None:
        self.nodes = {node.node_id: node for node in nodes}
        self.network = network
        self.config = config

    @classmethod
    async def start(
        cls,
        nodes: int | Sequence[NodeInfo | str] = 5,
        config: StoreConfig | Mapping[str, Any] | None = None,
        *,
        transport: str | None = None,
        seed: int = 0,
        data_dir: str | Path | None = None,
        host: PluginHost | None = None,
        **network_params: Any,
    ) -> Cluster:
        """Build and start a cluster.

        ``nodes``: a count (ids ``n1``..``nK``) or node ids / :class:`NodeInfo`.
        ``config``: a :class:`StoreConfig` or its dict form. ``transport``
        overrides the configured one (``"memory"`` or ``"simulated"``);
        ``network_params`` go to the transport's factory along with ``seed``
        (for ``simulated``: ``drop``, ``duplicate``, ``min_delay``, ``max_delay``,
        ``wan``).
        ``data_dir``: parent directory for disk engines (each node gets a subdirectory).
        """
        if config is None:
            config = StoreConfig()
        elif not isinstance(config, StoreConfig):
            config = StoreConfig.from_dict(config)
        if transport is not None or network_params:
            choice = config.component("transport")
            name = transport or choice.name
            params = {**choice.params, **network_params} if name == choice.name else network_params
            config = config.with_components(transport=ComponentChoice(name, params))
        host = host or load_plugins()
        members = _members(nodes)
        if config.n > len(members):
            raise ConfigurationError(
                f"N={config.n} needs at least {config.n} nodes, the cluster has {len(members)}"
            )
        choice = config.component("transport")
        network = host.registry.create(
            "transport", choice.name, seed=seed, members=members, **choice.params
        )
        base = Path(data_dir) if data_dir is not None else None
        table = None
        built = []
        for member in members:
            node_dir = base / member.node_id if base is not None else None
            node = Node(
                member,
                members,
                config,
                host=host,
                network=network,
                components=build_components(
                    config, host.registry, node_id=member.node_id, data_dir=node_dir
                ),
                data_dir=node_dir,
                table=table,
            )
            table = node.table  # same membership, same table: build it once
            built.append(node)
        cluster = cls(built, network, config)
        for node in built:
            await node.start()
        return cluster

    # -- nodes -------------------------------------------------------------------

    def node(self, node_id: str) -> Node:
        """The node called ``node_id``."""
        try:
            return self.nodes[node_id]
        except KeyError:
            raise ConfigurationError(
                f"no node {node_id!r}; nodes: {', '.join(self.nodes)}"
            ) from None

    def running(self) -> list[Node]:
        """The nodes currently running."""
        return [node for node in self.nodes.values() if node.running]

    def replicas(self, key: Key) -> tuple[str, ...]:
        """The preference list of ``key`` (N node ids), as a running node sees it."""
        viewer = next(iter(self.running()), None) or next(iter(self.nodes.values()))
        return viewer.placement(key_position(encode_key(key))).replicas

    async def stop_node(self, node_id: str) -> None:
        """Stop a node (its storage survives for :meth:`restart_node`)."""
        await self.node(node_id).stop()

    async def restart_node(self, node_id: str) -> None:
        """Start a stopped node again, with the data it had."""
        await self.node(node_id).start()

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network into ``groups`` (needs a transport that supports it)."""
        self.network.partition(*groups)

    def heal(self) -> None:
        """Undo :meth:`partition`."""
        self.network.heal()

    # -- membership changes ------------------------------------------------------

    async def add_node(self, node: NodeInfo | str, *, seed: str | None = None) -> Node:
        """Start a new node that joins through gossip (staged: :meth:`commit` makes it an owner)."""
        info = node if isinstance(node, NodeInfo) else NodeInfo(node)
        if info.node_id in self.nodes:
            raise ConfigurationError(f"node {info.node_id!r} already exists")
        template = next(iter(self.nodes.values()))
        seeds = [self.node(seed).info] if seed is not None else [n.info for n in self.running()]
        node_dir = template.data_dir.parent / info.node_id if template.data_dir else None
        joiner = Node(
            info,
            [],
            self.config,
            host=template.host,
            network=self.network,
            components=build_components(
                self.config, template.host.registry, node_id=info.node_id, data_dir=node_dir
            ),
            data_dir=node_dir,
            joining=True,
            seeds=seeds,
        )
        self.nodes[info.node_id] = joiner
        await joiner.start()
        await joiner.membership.exchange_with(seeds[0].node_id)
        return joiner

    def stage_leave(self, node_id: str, *, via: str | None = None) -> None:
        """Stage ``node_id`` to leave (it hands its data off once committed)."""
        self._admin(via).membership.stage(node_id, MemberStatus.LEAVING)

    def stage_remove(self, node_id: str, *, via: str | None = None) -> None:
        """Stage a dead ``node_id`` for removal (its data is rebuilt from survivors)."""
        self._admin(via).membership.stage(node_id, MemberStatus.REMOVED)

    def plan(self, *, via: str | None = None) -> Plan:
        """What committing the staged changes would move."""
        return self._admin(via).membership.plan()

    def commit(self, *, via: str | None = None) -> Plan:
        """Commit the staged changes; nodes hand data over, then switch tables."""
        return self._admin(via).membership.commit()

    def _admin(self, via: str | None) -> Node:
        if via is not None:
            return self.node(via)
        for node in self.running():
            return node
        raise NodeUnavailableError("no node of the cluster is running")

    async def wait_for_handoff(self, timeout: float = 600.0) -> None:
        """Wait (on the cluster's clock) until every running node serves the latest epoch."""
        clock = self._admin(None).clock
        deadline = clock.monotonic() + timeout
        while True:
            running = self.running()
            epoch = max(n.membership.state.epoch for n in running)
            if all(n.membership.serving_epoch == epoch for n in running):
                await self.settle()
                return
            if clock.monotonic() > deadline:
                raise DynamoError(f"handoff to epoch {epoch} not finished after {timeout} s")
            await clock.sleep(self.config.gossip_interval)

    async def settle(self) -> None:
        """Wait for every node's background work (late replies, read repair)."""
        for node in self.nodes.values():
            await node.settle()

    async def close(self) -> None:
        """Stop every node and close its storage."""
        for node in self.nodes.values():
            await node.close()
        await self.network.close()

    # -- client API ----------------------------------------------------------------

    def coordinator_for(self, key: Key) -> Node:
        """The node a partition-aware client would ask: the first running replica."""
        for node_id in self.replicas(key):
            node = self.nodes[node_id]
            if node.running:
                return node
        for node in self.nodes.values():
            if node.running:
                return node
        raise NodeUnavailableError("no node of the cluster is running")

    def _via(self, key: Key, via: str | None) -> Node:
        return self.node(via) if via is not None else self.coordinator_for(key)

    async def get(
        self, key: Key, *, r: LevelSpec | None = None, via: str | None = None
    ) -> GetResult:
        """Read ``key``, coordinated by ``via`` (default: first running replica)."""
        return await self._via(key, via).get(key, r=r)

    async def put(
        self,
        key: Key,
        value: object,
        context: bytes | None = None,
        *,
        w: LevelSpec | None = None,
        via: str | None = None,
    ) -> PutResult:
        """Write ``key``, coordinated by ``via`` (default: first running replica)."""
        return await self._via(key, via).put(key, value, context, w=w)

    async def delete(
        self,
        key: Key,
        context: bytes | None = None,
        *,
        w: LevelSpec | None = None,
        via: str | None = None,
    ) -> PutResult:
        """Delete ``key`` (a tombstone), coordinated by ``via``."""
        return await self._via(key, via).delete(key, context, w=w)
