"""A node is composed: components built outside it, parts that see it through protocols."""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import pytest

from dynamo_toolkit._repair import RepairScheduler
from dynamo_toolkit.anti_entropy_exchange import answer_tree_query
from dynamo_toolkit.clock import SystemClock
from dynamo_toolkit.components import NodeComponents, build_components
from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.interfaces import Clock, OwnershipTable, Placement
from dynamo_toolkit.messages import Ack, Heartbeat, ReplicaRead, ReplicaReadReply, TreeQuery
from dynamo_toolkit.node import Node
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.replica_store import ReplicaStore
from dynamo_toolkit.testing import run_virtual

HOST = load_plugins()
KERNEL = Path(__file__).resolve().parents[2] / "dynamo_toolkit"
MEMBERS = [NodeInfo("n1"), NodeInfo("n2"), NodeInfo("n3")]


@pytest.mark.parametrize(
    "module",
    ["_coordinator", "_membership_manager", "anti_entropy_exchange", "_hint_delivery", "_repair"],
)
def test_parts_do_not_import_the_node(module: str) -> None:
    """The parts depend on protocols, not on Node (not even for type checking)."""
    tree = ast.parse((KERNEL / f"{module}.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "dynamo_toolkit.node" not in imported


def test_build_components_follows_the_config() -> None:
    config = StoreConfig.from_dict(
        {"conflict_resolver": {"name": "lww"}, "anti_entropy": "full-exchange"}
    )
    built = build_components(config, HOST.registry, node_id="n1")
    assert type(built.resolver).__name__ == "LastWriteWinsResolver"
    assert type(built.anti_entropy).__name__ == "FullExchangeAntiEntropy"
    assert built.store.engine is built.engine
    assert built.hints.engine is not built.engine  # hints never mix with data


def test_node_runs_with_the_components_it_is_handed() -> None:
    config = StoreConfig()
    built = build_components(config, HOST.registry, node_id="n1")
    detector = HOST.registry.create("failure_detector", "timeout", timeout=42.0)
    swapped = attrs.evolve(built, detector=detector)
    network = HOST.registry.create("transport", "memory", members=MEMBERS)
    node = Node(MEMBERS[0], MEMBERS, config, host=HOST, network=network, components=swapped)
    assert node.detector is detector
    assert node.store is built.store
    assert node.hints is built.hints


def test_node_answers_only_the_messages_of_the_closed_set() -> None:
    async def scenario() -> None:
        config = StoreConfig.from_dict({"store": {"n": 1, "r": 1, "w": 1}})
        network = HOST.registry.create("transport", "memory", members=MEMBERS[:1])
        parts = build_components(config, HOST.registry, node_id="n1")
        node = Node(MEMBERS[0], MEMBERS[:1], config, host=HOST, network=network, components=parts)
        assert await node.handle("n2", Heartbeat(1.0)) is None
        assert await node.handle("n2", ReplicaRead(b"k")) == ReplicaReadReply(())
        with pytest.raises(DynamoError, match="unexpected message Ack"):
            await node.handle("n2", Ack())  # a reply is no request
        with pytest.raises(DynamoError, match="unexpected message str"):
            await node.handle("n2", "hello")

    run_virtual(scenario())


# -- the parts run against small fakes of their protocols ----------------------------


@attrs.define
class _Replica:
    """Just enough of a node for answering tree queries and scheduling repairs."""

    node_id: str
    store: ReplicaStore
    table: OwnershipTable
    config: StoreConfig = attrs.field(factory=StoreConfig)
    clock: Clock = attrs.field(factory=SystemClock)
    transport: None = None

    def placement(self, position: int, n: int | None = None) -> Placement:
        return Placement((self.node_id,), ())

    def is_available(self, node_id: str, now: float | None = None) -> bool:
        return True


def _replica(components: NodeComponents) -> _Replica:
    table = components.partitioner.assign(MEMBERS[:1])
    components.store.attach_digests(components.anti_entropy, table.partition_of)
    return _Replica("n1", components.store, table)


def test_tree_queries_need_only_the_store() -> None:
    replica = _replica(build_components(StoreConfig(), HOST.registry, node_id="n1"))
    reply = answer_tree_query(replica, TreeQuery(0, -1))
    assert len(reply.items) == 1


def test_repairs_of_a_sole_replica_need_no_network() -> None:
    async def scenario() -> None:
        replica = _replica(build_components(StoreConfig(), HOST.registry, node_id="n1"))
        scheduler = RepairScheduler(replica)
        total = await scheduler.repair_all()
        assert total.partitions == len(scheduler.my_partitions()) > 0
        assert total.peers_unreachable == 0
        assert total.round_trips == 0
        assert scheduler.stats == total

    run_virtual(scenario())
