"""Properties of the ``preference-list`` replicator, on ``ring`` tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.values import POSITION_SPACE
from dynamo_toolkit_plugins.partitioning.ring import RingPartitioner, RingTable
from dynamo_toolkit_plugins.replication.preference_list import (
    PreferenceListReplicator,
    distinct_walk,
)

positions = st.integers(0, POSITION_SPACE - 1)
replication = st.integers(1, 8)


@st.composite
def clusters(draw: st.DrawFn, topology: bool) -> dict[str, NodeInfo]:
    """Up to 12 nodes; with ``topology``, each in one of 3 datacenters and 2 racks."""
    count = draw(st.integers(1, 12))
    members = {}
    for i in range(count):
        dc = draw(st.sampled_from(["dc-a", "dc-b", "dc-c"])) if topology else ""
        rack = draw(st.sampled_from(["r1", "r2"])) if topology else ""
        members[f"node-{i}"] = NodeInfo(f"node-{i}", datacenter=dc, rack=rack)
    return members


def ring_of(members: dict[str, NodeInfo]) -> RingTable:
    # Few vnodes keep runs of one datacenter on the ring, where spreading matters.
    return RingPartitioner(4).assign(list(members.values()))


@given(members=clusters(topology=False), position=positions, n=replication)
def test_without_topology_it_is_the_dynamo_preference_list(
    members: dict[str, NodeInfo], position: int, n: int
) -> None:
    table = ring_of(members)
    walk = distinct_walk(table, position)
    placement = PreferenceListReplicator().place(table, position, n, members)
    assert list(placement.replicas) == walk[:n]
    assert list(placement.fallbacks) == walk[n:]


@given(members=clusters(topology=True), position=positions, n=replication)
def test_replicas_spread_over_datacenters_then_racks(
    members: dict[str, NodeInfo], position: int, n: int
) -> None:
    table = ring_of(members)
    walk = distinct_walk(table, position)
    placement = PreferenceListReplicator().place(table, position, n, members)
    replicas = placement.replicas
    assert replicas[0] == walk[0]
    assert len(replicas) == min(n, len(members)) == len(set(replicas))
    # Greedy spreading uses a new datacenter while one is left, then a new rack.
    all_dcs = {m.datacenter for m in members.values()}
    all_sites = {(m.datacenter, m.rack) for m in members.values()}
    assert len({members[r].datacenter for r in replicas}) == min(n, len(all_dcs))
    assert len({(members[r].datacenter, members[r].rack) for r in replicas}) == min(
        n, len(all_sites)
    )
    assert list(placement.fallbacks) == [x for x in walk if x not in replicas]


def _handmade_ring() -> tuple[RingTable, dict[str, NodeInfo]]:
    # Walk from position 0: a1 a2 a3 b1 b2 c1.
    layout = [("a1", "A", "r1"), ("a2", "A", "r2"), ("a3", "A", "r1")]
    layout += [("b1", "B", "r1"), ("b2", "B", "r1"), ("c1", "C", "r1")]
    members = {name: NodeInfo(name, datacenter=dc, rack=rack) for name, dc, rack in layout}
    table = RingTable.from_tokens([(10 * (i + 1), name) for i, (name, _, _) in enumerate(layout)])
    return table, members


@pytest.mark.parametrize(
    ("n", "replicas", "fallbacks"),
    [
        (1, ("a1",), ("a2", "a3", "b1", "b2", "c1")),
        (2, ("a1", "b1"), ("a2", "a3", "b2", "c1")),
        (3, ("a1", "b1", "c1"), ("a2", "a3", "b2")),
        (4, ("a1", "b1", "c1", "a2"), ("a3", "b2")),  # a2 is the only new rack
        (5, ("a1", "b1", "c1", "a2", "a3"), ("b2",)),  # nothing new: walk order
        (9, ("a1", "a2", "a3", "b1", "b2", "c1"), ()),
    ],
)
def test_greedy_order_on_a_handmade_ring(
    n: int, replicas: tuple[str, ...], fallbacks: tuple[str, ...]
) -> None:
    table, members = _handmade_ring()
    placement = PreferenceListReplicator().place(table, 0, n, members)
    assert (placement.replicas, placement.fallbacks) == (replicas, fallbacks)


def test_nodes_missing_from_members_count_as_undeclared() -> None:
    table, members = _handmade_ring()
    del members["b1"]  # now "undeclared": a datacenter of its own ("")
    placement = PreferenceListReplicator().place(table, 0, 3, members)
    assert placement.replicas == ("a1", "b1", "b2")


def test_n_below_one_is_rejected() -> None:
    table, members = _handmade_ring()
    with pytest.raises(ValueError, match="at least 1"):
        PreferenceListReplicator().place(table, 0, 0, members)


def test_registered_through_the_plugin_host() -> None:
    replicator = load_plugins().registry.create("replicator", "preference-list")
    assert isinstance(replicator, PreferenceListReplicator)
