"""Replicator ``network-topology``: a replication factor per datacenter.

Named after Cassandra's ``NetworkTopologyStrategy``. Configured with
``replicas = {dc1 = 3, dc2 = 2}``, every key gets 3 replicas in ``dc1`` and 2
in ``dc2``, and none in a datacenter the table does not name. The store's N
must be the sum (5 here): a node refuses to start otherwise, with an error
naming both numbers. Keeping N explicit means ``[store] n``, R and W read the
same whatever the replicator, and a typo in one of the two is caught rather
than silently "fixed".

Inside each datacenter the replicas are found by walking the ring from the
key's position and keeping that datacenter's nodes, Cassandra's way: a first
pass takes nodes of racks not used yet, then, if the datacenter has fewer
racks than replicas, the skipped nodes fill up the rest in walk order. So a
datacenter with at least as many racks as replicas never puts two replicas of
a key on one rack.

A datacenter with fewer nodes than its factor holds what it can (each of its
nodes) and the key has fewer than N replicas: the other datacenters do not
make up for it, since that would silently break the per-datacenter promise.
:meth:`NetworkTopologyReplicator.datacenter_placement` says, per datacenter,
how many replicas are wanted, how many are placed and on how many racks.

Movement: a datacenter's replicas of a key depend only on the order in which
the walk meets *that datacenter's* nodes, which tokens of other datacenters do
not change. A node joining or leaving one datacenter therefore moves no
replica in any other, and inside its own it moves the share a ring walk moves
(about ``factor / nodes`` of the keys when it joins).

Stand-ins: when a replica is down, the sloppy quorum tries the non-replica
nodes of the replica's own datacenter first (nearest in the walk first), then
the others, so a hint usually stays inside the datacenter.

Without ``replicas`` (the default), N is spread as evenly as possible over the
datacenters the members declare (a datacenter with too few nodes gives its
share to the others; which datacenters get the one extra replica when N does
not divide evenly follows the walk, so it varies from key to key). Members
that declare nothing share one datacenter, so an undeclared cluster gets N
replicas on the walk, rack-distinct where racks are declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces.partitioner import OwnershipTable
from dynamo_toolkit.interfaces.replicator import DatacenterPlacement, Placement, Replicator
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.replication.preference_list import distinct_walk

__all__ = ["NetworkTopologyReplicator", "dtk_register_components", "pick_rack_distinct"]


def pick_rack_distinct(nodes: Sequence[str], racks: Mapping[str, str], count: int) -> list[str]:
    """``count`` of ``nodes`` (in walk order): unseen racks first, then the rest in order."""
    if count <= 0:
        return []
    if count >= len(nodes):
        return list(nodes)
    chosen: list[str] = []
    seen: set[str] = set()
    for node_id in nodes:
        if racks[node_id] not in seen:
            seen.add(racks[node_id])
            chosen.append(node_id)
            if len(chosen) == count:
                return chosen
    picked = set(chosen)
    for node_id in nodes:
        if node_id not in picked:
            chosen.append(node_id)
            if len(chosen) == count:
                break
    return chosen


def _spread(n: int, order: Iterable[str], capacity: Mapping[str, int]) -> dict[str, int]:
    """``n`` shared out one at a time over ``order``, round-robin, never above a capacity."""
    quota = dict.fromkeys(order, 0)
    left = n
    while left:
        room = [dc for dc in quota if quota[dc] < capacity[dc]]
        if not room:
            break
        for dc in room[:left]:
            quota[dc] += 1
        left -= min(left, len(room))
    return quota


def _site(members: Mapping[str, NodeInfo], node_id: str) -> tuple[str, str]:
    info = members.get(node_id)
    return (info.datacenter, info.rack) if info is not None else ("", "")


class NetworkTopologyReplicator(Replicator):
    """A replication factor per datacenter, rack-distinct inside each one."""

    def __init__(self, replicas: Mapping[str, int] | None = None) -> None:
        if replicas is None:
            replicas = {}
        if not isinstance(replicas, Mapping):
            raise ConfigurationError(
                f"network-topology replicas must be a table of datacenter = count, got {replicas!r}"
            )
        for dc, count in replicas.items():
            if not isinstance(dc, str):
                raise ConfigurationError(
                    f"network-topology datacenter names must be strings: {dc!r}"
                )
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConfigurationError(
                    f"network-topology replicas for {dc!r} must be a non-negative integer, "
                    f"got {count!r}"
                )
        if replicas and sum(replicas.values()) < 1:
            raise ConfigurationError("network-topology replicas must sum to at least 1")
        self.replicas: dict[str, int] = dict(sorted(replicas.items()))

    @property
    def total(self) -> int | None:
        """The sum of the per-datacenter factors (``None`` when derived from N)."""
        return sum(self.replicas.values()) if self.replicas else None

    def check_n(self, n: int) -> None:
        """The store's N must be the sum of the per-datacenter factors."""
        total = self.total
        if total is not None and n != total:
            raise ConfigurationError(self._mismatch(n, total, "[store] n"))

    def _mismatch(self, n: int, total: int, what: str) -> str:
        factors = ", ".join(f"{dc} = {count}" for dc, count in self.replicas.items())
        return (
            f"{what} = {n} but the network-topology replicator's replicas "
            f"{{{factors}}} sum to {total}: set n = {total}"
        )

    def _quotas(self, n: int, dc_order: Sequence[str], sizes: Mapping[str, int]) -> dict[str, int]:
        if self.replicas:
            return dict(self.replicas)
        return _spread(n, dc_order, sizes)

    def place(
        self,
        table: OwnershipTable,
        position: int,
        n: int,
        members: Mapping[str, NodeInfo],
    ) -> Placement:
        """Replicas: each datacenter's factor, rack-distinct, in walk order; fallbacks: the rest."""
        if n < 1:
            raise ValueError(f"the replication factor n must be at least 1, got {n}")
        total = self.total
        if total is not None and n != total:
            raise ValueError(self._mismatch(n, total, "n"))
        ordered = distinct_walk(table, position)
        by_dc: dict[str, list[str]] = {}
        racks: dict[str, str] = {}
        for node_id in ordered:
            dc, rack = _site(members, node_id)
            by_dc.setdefault(dc, []).append(node_id)
            racks[node_id] = rack
        quotas = self._quotas(n, list(by_dc), {dc: len(ids) for dc, ids in by_dc.items()})
        chosen: set[str] = set()
        for dc, nodes in by_dc.items():
            chosen.update(pick_rack_distinct(nodes, racks, quotas.get(dc, 0)))
        return Placement(
            tuple(x for x in ordered if x in chosen),
            tuple(x for x in ordered if x not in chosen),
        )

    def standins(
        self, placement: Placement, replica: str, members: Mapping[str, NodeInfo]
    ) -> tuple[str, ...]:
        """Fallbacks of ``replica``'s datacenter first, then the others (walk order in each)."""
        dc = _site(members, replica)[0]
        local = tuple(f for f in placement.fallbacks if _site(members, f)[0] == dc)
        return local + tuple(f for f in placement.fallbacks if _site(members, f)[0] != dc)

    def datacenter_placement(
        self, n: int, members: Mapping[str, NodeInfo]
    ) -> tuple[DatacenterPlacement, ...]:
        """Per datacenter (sorted by name): replicas wanted, placed, and racks spanned.

        Without ``replicas``, the split of N is the one a key gets when its
        walk meets the datacenters in name order.
        """
        nodes: dict[str, int] = {}
        racks: dict[str, set[str]] = {}
        for info in members.values():
            nodes[info.datacenter] = nodes.get(info.datacenter, 0) + 1
            racks.setdefault(info.datacenter, set()).add(info.rack)
        wanted = dict(self.replicas) if self.replicas else _spread(n, sorted(nodes), nodes)
        report = []
        for dc in sorted(set(wanted) | set(nodes)):
            want = wanted.get(dc, 0)
            placed = min(want, nodes.get(dc, 0))
            report.append(
                DatacenterPlacement(dc, want, placed, min(placed, len(racks.get(dc, ()))))
            )
        return tuple(report)

    def __repr__(self) -> str:
        return f"NetworkTopologyReplicator(replicas={self.replicas!r})"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``network-topology`` replicator."""
    registry.add_replicator("network-topology", NetworkTopologyReplicator)
