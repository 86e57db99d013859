"""Datacenters and racks of a local cluster's nodes: specs, plan, node.toml, reports."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit_server.cli import serve
from dynamo_toolkit_server.local_cluster import (
    ClusterError,
    ClusterPlan,
    conflicting_settings,
    format_datacenters,
    node_toml,
    parse_datacenters,
    place_new_node,
    plan_cluster,
)
from dynamo_toolkit_server.membership_report import membership_report
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.settings import NodeSettings


def test_datacenter_specs_parse() -> None:
    assert parse_datacenters("dc1:3,dc2:3") == (("dc1", 3), ("dc2", 3))
    assert parse_datacenters(" east-1:2 , west_2:1 ") == (("east-1", 2), ("west_2", 1))
    assert format_datacenters(parse_datacenters("dc1:3,dc2:1")) == "dc1:3,dc2:1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dc1", "'dc1' is not NAME:NODES"),
        ("dc1:", "is not NAME:NODES"),
        (":3", "is not NAME:NODES"),
        ("dc1:0", "'dc1:0': a datacenter needs a node or more"),
        ("dc1:-2", "a datacenter needs a node or more"),
        ("dc1:x", "the node count 'x' is not a whole number"),
        ("dc1:2,dc1:3", "dc1 named more than once"),
        ("1dc:2", "datacenter name '1dc' must start with a letter"),
        ("dc 1:2", "datacenter name 'dc 1' must start with a letter"),
        ("dc1:2,", "'' is not NAME:NODES"),
    ],
)
def test_bad_datacenter_specs_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        parse_datacenters(spec)


def test_plan_places_nodes_in_datacenters_with_racks_round_robin() -> None:
    plan = plan_cluster(7, 7100, datacenters=parse_datacenters("dc1:4,dc2:3"), racks=2)
    places = [(node.name, node.datacenter, node.rack) for node in plan.nodes]
    assert places == [
        ("n1", "dc1", "r1"),
        ("n2", "dc1", "r2"),
        ("n3", "dc1", "r1"),
        ("n4", "dc1", "r2"),
        ("n5", "dc2", "r1"),
        ("n6", "dc2", "r2"),
        ("n7", "dc2", "r1"),
    ]
    assert plan.datacenters == (("dc1", 4), ("dc2", 3))
    assert plan.racks == 2


def test_plan_without_datacenters_is_unchanged() -> None:
    plan = plan_cluster(3, 7100)
    assert {(node.datacenter, node.rack) for node in plan.nodes} == {("", "")}
    assert plan.datacenters == ()
    assert plan.racks == 0
    # No labels in node.toml: the preference list sees the same undeclared nodes.
    assert "datacenter" not in node_toml(plan, plan.nodes[0], Path("/tmp/x/n1"))
    assert "rack" not in node_toml(plan, plan.nodes[0], Path("/tmp/x/n1"))


def test_one_rack_by_default() -> None:
    plan = plan_cluster(3, 7100, datacenters=parse_datacenters("dc1:2,dc2:1"))
    assert [node.rack for node in plan.nodes] == ["r1", "r1", "r1"]
    assert plan.racks == 1


@pytest.mark.parametrize(
    ("nodes", "datacenters", "racks", "message"),
    [
        (5, "dc1:3,dc2:3", None, "--nodes 5 differs from the 6 node"),
        (3, None, 2, "--racks needs --datacenters"),
        (2, "dc1:2", 0, "--racks must be 1 or more"),
        (1, "dc1:1", None, "N=3 per datacenter needs at least 3 nodes in each; dc1 \\(1\\)"),
    ],
)
def test_inconsistent_topology_is_refused(
    nodes: int, datacenters: str | None, racks: int | None, message: str
) -> None:
    topology = parse_datacenters(datacenters) if datacenters else None
    with pytest.raises(ConfigurationError, match=message):
        plan_cluster(nodes, 7100, datacenters=topology, racks=racks, n=None if nodes > 1 else 3)


def test_plan_round_trips_through_cluster_json() -> None:
    plan = plan_cluster(3, 7100, datacenters=parse_datacenters("dc1:2,dc2:1"), racks=2)
    again = ClusterPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan
    assert again.nodes[2].datacenter == "dc2"


def test_cluster_json_from_before_topology_loads_as_before() -> None:
    old = plan_cluster(3, 7100).to_json()
    del old["datacenters"], old["racks"]
    for node in old["nodes"]:
        del node["datacenter"], node["rack"]
    plan = ClusterPlan.from_json(old)
    assert plan == plan_cluster(3, 7100)
    assert plan.nodes[0].datacenter == ""
    assert plan.racks == 0


def test_node_toml_members_carry_datacenter_and_rack(tmp_path: Path) -> None:
    plan = plan_cluster(3, 7100, datacenters=parse_datacenters("dc1:2,dc2:1"), racks=2)
    text = node_toml(plan, plan.nodes[1], tmp_path / "n2")
    members = tomllib.loads(text)["members"]
    assert [(m["id"], m["datacenter"], m["rack"]) for m in members] == [
        ("n1", "dc1", "r1"),
        ("n2", "dc1", "r2"),
        ("n3", "dc2", "r1"),
    ]
    settings = NodeSettings.from_dict(tomllib.loads(text))
    assert (settings.info.datacenter, settings.info.rack) == ("dc1", "r2")


def test_conflicting_settings_include_the_topology() -> None:
    plan = plan_cluster(3, 7100, datacenters=parse_datacenters("dc1:2,dc2:1"), racks=2)
    assert conflicting_settings(plan, {"datacenters": "dc1:2, dc2:1", "racks": 2}) == []
    assert conflicting_settings(plan, {"datacenters": "dc1:3,dc2:1", "racks": 1}) == [
        "--datacenters dc1:3,dc2:1 (the cluster has dc1:2,dc2:1)",
        "--racks 1 (the cluster has 2)",
    ]
    plain = plan_cluster(3, 7100)
    assert conflicting_settings(plain, {"datacenters": "dc1:3"}) == [
        "--datacenters dc1:3 (the cluster has none)"
    ]


def test_a_new_node_goes_where_asked_or_where_fewest_are() -> None:
    plan = plan_cluster(3, 7100, datacenters=parse_datacenters("dc1:2,dc2:1"), racks=2)
    assert place_new_node(plan) == ("dc2", "r2")  # dc2 has fewer nodes; r2 is empty there
    assert place_new_node(plan, "dc2") == ("dc2", "r2")
    assert place_new_node(plan, "dc1") == ("dc1", "r1")  # r1 and r2 tie: the first
    assert place_new_node(plan, "dc2", "r1") == ("dc2", "r1")
    assert place_new_node(plan, "dc3") == ("dc3", "r1")  # a new datacenter
    with pytest.raises(ClusterError, match="--rack needs --datacenter"):
        place_new_node(plan, None, "r1")
    with pytest.raises(ConfigurationError, match="rack name 'r 1'"):
        place_new_node(plan, "dc1", "r 1")
    plain = plan_cluster(3, 7100)
    assert place_new_node(plain) == ("", "")
    with pytest.raises(ClusterError, match="made without --datacenters"):
        place_new_node(plain, "dc1")


def test_health_membership_and_metrics_carry_the_labels() -> None:
    async def scenario() -> None:
        infos = [
            NodeInfo("n1", datacenter="dc1", rack="r1"),
            NodeInfo("n2", datacenter="dc1", rack="r2"),
            NodeInfo("n3", datacenter="dc2", rack="r1"),
        ]
        cluster = await Cluster.start(infos, {"store": {"n": 3}}, transport="memory")
        try:
            node = cluster.node("n3")
            report = membership_report(node)
            assert (report["datacenter"], report["rack"]) == ("dc2", "r1")
            assert [(m["id"], m["datacenter"], m["rack"]) for m in report["members"]] == [
                ("n1", "dc1", "r1"),
                ("n2", "dc1", "r2"),
                ("n3", "dc2", "r1"),
            ]
            text = NodeMetrics(node).render().decode()
            assert 'dtk_node_info{datacenter="dc2",node="n3",rack="r1"} 1.0' in text
            # Only the info metric carries the labels.
            labelled = [line for line in text.splitlines() if 'datacenter="' in line]
            assert len(labelled) == 1
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_serve_datacenter_flags_are_refused_with_a_config(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[node]\nid = "n1"\npeer = "127.0.0.1:7100"\n')
    result = CliRunner().invoke(serve, ["--config", str(config), "--datacenter", "dc1"])
    assert result.exit_code != 0
    assert "with a config file, set datacenter and rack in this node's [[members]]" in (
        result.output
    )
    result = CliRunner().invoke(serve, ["--datacenter", "1dc"])
    assert result.exit_code != 0
    assert "datacenter name '1dc' must start with a letter" in result.output


def test_datacenters_get_replicas_in_each_through_network_topology() -> None:
    plan = plan_cluster(5, 20000, datacenters=[("dc1", 3), ("dc2", 2)])
    assert plan.store["replicator"] == {
        "name": "network-topology",
        "replicas": {"dc1": 3, "dc2": 2},
    }
    # N is the sum of the factors; R and W stay inside the coordinator's datacenter.
    assert plan.store["store"] == {"n": 5, "r": "LOCAL_QUORUM", "w": "LOCAL_QUORUM"}
    per_two = plan_cluster(6, 20000, n=2, datacenters=[("dc1", 3), ("dc2", 3)])
    assert per_two.store["replicator"]["replicas"] == {"dc1": 2, "dc2": 2}
    assert per_two.store["store"]["n"] == 4
    # --n is per datacenter: repeating it is no conflict.
    assert conflicting_settings(per_two, {"n": 2}) == []
    # A replicator of the config's own is kept.
    custom = plan_cluster(
        3, 20000, datacenters=[("dc1", 3)], config={"replicator": "preference-list"}
    )
    assert custom.store["replicator"] == "preference-list"


def test_wan_rtt_puts_half_of_it_each_way_between_datacenters() -> None:
    plan = plan_cluster(3, 20000, datacenters=[("dc1", 2), ("dc2", 1)], wan_rtt=80)
    assert plan.store["transport"] == {
        "name": "delayed",
        "inner": "tcp",
        "wan": {"default": {"latency": "constant", "ms": 40.0}},
    }
    assert conflicting_settings(plan, {"wan_rtt": 80.0}) == []
    assert conflicting_settings(plan, {"wan_rtt": 20.0}) == [
        "--wan-rtt 20.0 (the cluster has 80.0)"
    ]
    with pytest.raises(ConfigurationError, match="--wan-rtt needs --datacenters"):
        plan_cluster(3, 20000, wan_rtt=80)
    with pytest.raises(ConfigurationError, match="positive"):
        plan_cluster(3, 20000, datacenters=[("dc1", 3)], wan_rtt=0)
