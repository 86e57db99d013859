"""Properties of the ``network-topology`` replicator, on ``ring`` tables."""

from __future__ import annotations

import random

import pytest

from dynamo_toolkit.components import build_components
from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces import DatacenterPlacement, Placement
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.values import POSITION_SPACE
from dynamo_toolkit_plugins.partitioning.ring import RingPartitioner, RingTable
from dynamo_toolkit_plugins.replication.network_topology import (
    NetworkTopologyReplicator,
    pick_rack_distinct,
)
from dynamo_toolkit_plugins.replication.preference_list import PreferenceListReplicator

FACTORS = {"dc1": 3, "dc2": 2}
_RNG = random.Random(7)
POSITIONS = [_RNG.getrandbits(64) for _ in range(2000)]


def topology(dc1: int = 6, dc2: int = 4, racks1: int = 3, racks2: int = 2) -> dict[str, NodeInfo]:
    """``dc1`` nodes over ``racks1`` racks and ``dc2`` nodes over ``racks2`` racks."""
    members = {}
    for dc, count, racks in (("dc1", dc1, racks1), ("dc2", dc2, racks2)):
        for i in range(count):
            node_id = f"{dc}-n{i}"
            members[node_id] = NodeInfo(node_id, datacenter=dc, rack=f"r{i % racks}")
    return members


def ring_of(members: dict[str, NodeInfo]) -> RingTable:
    return RingPartitioner(64).assign(list(members.values()))


def by_dc(placement: Placement, members: dict[str, NodeInfo], dc: str) -> list[str]:
    return [x for x in placement.replicas if members[x].datacenter == dc]


def test_each_datacenter_gets_its_factor_on_distinct_racks() -> None:
    members = topology()
    table = ring_of(members)
    replicator = NetworkTopologyReplicator(FACTORS)
    for position in POSITIONS[:500]:
        placement = replicator.place(table, position, 5, members)
        for dc, factor in FACTORS.items():
            local = by_dc(placement, members, dc)
            assert len(local) == factor
            assert len({members[x].rack for x in local}) == factor
        # Replicas are listed in walk order; the rest are the fallbacks.
        walk = list(dict.fromkeys(table.walk(position)))
        assert list(placement.replicas) == [x for x in walk if x in placement.replicas]
        assert set(placement.replicas) | set(placement.fallbacks) == set(members)


def test_too_few_racks_shares_racks_after_using_them_all() -> None:
    members = topology(racks1=2)
    table = ring_of(members)
    replicator = NetworkTopologyReplicator(FACTORS)
    for position in POSITIONS[:300]:
        local = by_dc(replicator.place(table, position, 5, members), members, "dc1")
        assert len(local) == 3
        assert {members[x].rack for x in local} == {"r0", "r1"}
    report = dict((p.datacenter, p) for p in replicator.datacenter_placement(5, members))
    assert report["dc1"] == DatacenterPlacement("dc1", 3, 3, 2)
    assert not report["dc1"].rack_distinct
    assert "too few racks" in report["dc1"].describe()
    assert report["dc2"].rack_distinct


def test_pick_rack_distinct_is_cassandras_two_passes() -> None:
    racks = {"a": "r1", "b": "r1", "c": "r2", "d": "r2", "e": "r3"}
    assert pick_rack_distinct(list("abcde"), racks, 3) == ["a", "c", "e"]
    assert pick_rack_distinct(list("abcde"), racks, 4) == ["a", "c", "e", "b"]
    assert pick_rack_distinct(list("ab"), racks, 3) == ["a", "b"]


def test_a_datacenter_short_of_nodes_places_what_it_can_and_says_so() -> None:
    members = topology(dc2=1, racks2=1)
    table = ring_of(members)
    replicator = NetworkTopologyReplicator(FACTORS)
    for position in POSITIONS[:200]:
        placement = replicator.place(table, position, 5, members)
        # No other datacenter makes up for the missing replica.
        assert len(by_dc(placement, members, "dc1")) == 3
        assert by_dc(placement, members, "dc2") == ["dc2-n0"]
        assert len(placement.replicas) == 4
    report = replicator.datacenter_placement(5, members)
    assert report == (
        DatacenterPlacement("dc1", 3, 3, 3),
        DatacenterPlacement("dc2", 2, 1, 1),
    )
    assert report[1].short == 1
    assert report[1].describe() == "dc2: 1 of 2 replicas (1 short: too few nodes), on 1 rack"


def test_a_datacenter_not_named_holds_no_replica_and_a_named_empty_one_is_reported() -> None:
    members = topology()
    members["dc3-n0"] = NodeInfo("dc3-n0", datacenter="dc3")
    replicator = NetworkTopologyReplicator({"dc1": 2, "dc2": 1, "dc9": 1})
    table = ring_of(members)
    for position in POSITIONS[:100]:
        placement = replicator.place(table, position, 4, members)
        assert "dc3-n0" in placement.fallbacks
        assert len(placement.replicas) == 3
    report = {p.datacenter: p for p in replicator.datacenter_placement(4, members)}
    assert report["dc3"].wanted == 0
    assert report["dc9"].short == 1


def test_deterministic_whatever_the_order_of_members() -> None:
    members = topology()
    shuffled = dict(sorted(members.items(), reverse=True))
    table = ring_of(members)
    first, second = NetworkTopologyReplicator(FACTORS), NetworkTopologyReplicator(dict(FACTORS))
    for position in POSITIONS[:300]:
        placement = first.place(table, position, 5, members)
        assert placement == second.place(table, position, 5, shuffled)
        assert placement == first.place(ring_of(shuffled), position, 5, members)


def test_n_must_equal_the_sum_of_the_factors() -> None:
    replicator = NetworkTopologyReplicator(FACTORS)
    replicator.check_n(5)
    with pytest.raises(ConfigurationError, match=r"n = 3 .*dc1 = 3, dc2 = 2.* sum to 5"):
        replicator.check_n(3)
    members = topology()
    with pytest.raises(ValueError, match="sum to 5"):
        replicator.place(ring_of(members), 0, 4, members)
    config = StoreConfig.from_dict(
        {"store": {"n": 3}, "replicator": {"name": "network-topology", "replicas": FACTORS}}
    )
    with pytest.raises(ConfigurationError, match="set n = 5"):
        build_components(config, load_plugins().registry, node_id="n1")


@pytest.mark.parametrize(
    "replicas",
    [["dc1"], {"dc1": -1}, {"dc1": 1.5}, {"dc1": True}, {"dc1": 0, "dc2": 0}, {1: 2}],
)
def test_bad_factors_are_refused(replicas: object) -> None:
    with pytest.raises(ConfigurationError, match="network-topology"):
        NetworkTopologyReplicator(replicas)  # type: ignore[arg-type]


def _replica_sets(members: dict[str, NodeInfo], dc: str) -> list[frozenset[str]]:
    table = ring_of(members)
    replicator = NetworkTopologyReplicator(FACTORS)
    return [
        frozenset(by_dc(replicator.place(table, p, 5, members), members, dc)) for p in POSITIONS
    ]


def _moved(before: list[frozenset[str]], after: list[frozenset[str]]) -> float:
    return sum(a != b for a, b in zip(before, after, strict=True)) / len(before)


# Theory for dc1 (factor 3, 6 nodes). On one rack the replicas are the first
# 3 dc1 nodes of the walk: a 7th node is among them for 3/7 of the keys.
# On 3 racks of 2 (as many racks as replicas) each rack holds exactly one
# replica, its first node in the walk: a newcomer on a rack of (now) 3 takes
# 1/3 of the keys.
@pytest.mark.parametrize(("racks", "expected"), [(1, 3 / 7), (3, 1 / 3)])
def test_a_join_moves_only_its_share_and_nothing_in_the_other_datacenter(
    racks: int, expected: float
) -> None:
    members = topology(racks1=racks)
    grown = dict(members)
    grown["dc1-new"] = NodeInfo("dc1-new", datacenter="dc1", rack="r0")
    # dc2 keeps every replica: its nodes meet each walk in the same order.
    assert _moved(_replica_sets(members, "dc2"), _replica_sets(grown, "dc2")) == 0
    before, after = _replica_sets(members, "dc1"), _replica_sets(grown, "dc1")
    assert _moved(before, after) == pytest.approx(expected, abs=0.06)
    # Each moved key moves one replica: the newcomer in, one old replica out.
    for old, new in zip(before, after, strict=True):
        if old != new:
            assert "dc1-new" in new
            assert len(old - new) == 1


# A leaver held 3/6 of dc1's keys on one rack, 1/2 (its rack's share) on 3 racks of 2.
@pytest.mark.parametrize(("racks", "expected"), [(1, 3 / 6), (3, 1 / 2)])
def test_a_leave_moves_only_the_leavers_replicas(racks: int, expected: float) -> None:
    members = topology(racks1=racks)
    shrunk = {k: v for k, v in members.items() if k != "dc1-n5"}
    assert _moved(_replica_sets(members, "dc2"), _replica_sets(shrunk, "dc2")) == 0
    before, after = _replica_sets(members, "dc1"), _replica_sets(shrunk, "dc1")
    assert _moved(before, after) == pytest.approx(expected, abs=0.06)
    for old, new in zip(before, after, strict=True):
        assert (old != new) == ("dc1-n5" in old)


def test_standins_come_from_the_down_replicas_datacenter_first() -> None:
    members = topology()
    table = ring_of(members)
    replicator = NetworkTopologyReplicator(FACTORS)
    for position in POSITIONS[:200]:
        placement = replicator.place(table, position, 5, members)
        for replica in placement.replicas:
            dc = members[replica].datacenter
            order = replicator.standins(placement, replica, members)
            assert sorted(order) == sorted(placement.fallbacks)
            local = sum(members[x].datacenter == dc for x in placement.fallbacks)
            assert {members[x].datacenter for x in order[:local]} == {dc}
            # Walk order is kept inside each group.
            assert list(order[:local]) == [
                x for x in placement.fallbacks if members[x].datacenter == dc
            ]


def test_without_factors_n_is_spread_over_the_datacenters() -> None:
    members = topology(dc2=1, racks2=1)
    table = ring_of(members)
    replicator = NetworkTopologyReplicator()
    for position in POSITIONS[:200]:
        placement = replicator.place(table, position, 4, members)
        # dc2 has one node, so dc1 takes the share dc2 cannot.
        assert len(by_dc(placement, members, "dc1")) == 3
        assert len(by_dc(placement, members, "dc2")) == 1
    assert replicator.datacenter_placement(4, members) == (
        DatacenterPlacement("dc1", 3, 3, 3),
        DatacenterPlacement("dc2", 1, 1, 1),
    )


def test_other_replicators_keep_the_defaults() -> None:
    members = topology()
    replicator = PreferenceListReplicator()
    placement = replicator.place(ring_of(members), POSITION_SPACE // 3, 3, members)
    assert replicator.standins(placement, placement.replicas[0], members) == placement.fallbacks
    assert replicator.datacenter_placement(3, members) == ()
    replicator.check_n(17)
