"""Replicator ``preference-list``: the first N distinct nodes of the walk (Dynamo §4.3).

When nodes declare a datacenter or rack, replicas are spread greedily: after
the owner, each pick prefers (in walk order) a node of an unused datacenter,
then a node of an unused ``(datacenter, rack)``, then any node. Nodes that
declare nothing share one "undeclared" datacenter and rack, so a cluster
without topology gets exactly the plain Dynamo preference list.
"""

from __future__ import annotations

from collections.abc import Mapping

from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces.partitioner import OwnershipTable
from dynamo_toolkit.interfaces.replicator import Placement, Replicator
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["PreferenceListReplicator", "distinct_walk", "dtk_register_components"]


def distinct_walk(table: OwnershipTable, position: int) -> list[str]:
    """The distinct physical nodes of ``table.walk(position)``, in first-seen order."""
    wanted = len(table.nodes)
    seen: dict[str, None] = {}
    for node_id in table.walk(position):
        seen.setdefault(node_id)
        # A ring walk is len(tokens) long; stop as soon as every node has appeared.
        if len(seen) == wanted:
            break
    return list(seen)


class PreferenceListReplicator(Replicator):
    """Dynamo's preference list, spread over datacenters and racks when declared."""

    def place(
        self,
        table: OwnershipTable,
        position: int,
        n: int,
        members: Mapping[str, NodeInfo],
    ) -> Placement:
        """Replicas: N distinct nodes from the walk, topology-aware; fallbacks: the rest."""
        if n < 1:
            raise ValueError(f"the replication factor n must be at least 1, got {n}")
        ordered = distinct_walk(table, position)
        if n >= len(ordered):
            return Placement(tuple(ordered))

        def site(node_id: str) -> tuple[str, str]:
            info = members.get(node_id)
            return (info.datacenter, info.rack) if info is not None else ("", "")

        chosen = [ordered[0]]
        remaining = ordered[1:]
        used_dcs = {site(ordered[0])[0]}
        used_sites = {site(ordered[0])}
        while len(chosen) < n:
            pick = next((x for x in remaining if site(x)[0] not in used_dcs), None)
            if pick is None:
                pick = next((x for x in remaining if site(x) not in used_sites), remaining[0])
            remaining.remove(pick)
            chosen.append(pick)
            used_dcs.add(site(pick)[0])
            used_sites.add(site(pick))
        # ``remaining`` kept walk order, so fallbacks are tried nearest-first.
        return Placement(tuple(chosen), tuple(remaining))

    def __repr__(self) -> str:
        return "PreferenceListReplicator()"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``preference-list`` replicator."""
    registry.add_replicator("preference-list", PreferenceListReplicator)
