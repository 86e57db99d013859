"""What nodes gossip: the members, their status, and the committed owners. Pure.

Each member record carries an ``incarnation``; merging two views keeps, per
member, the record with the higher incarnation (ties broken by status rank,
then by content), so merge is commutative, associative and idempotent and
every node that has seen the same records holds the same view. The
``committed`` owners (with an ``epoch``) are what a plan/commit decided; the
ownership table is derived from them alone, so all nodes that have seen the
same commit agree on who owns what.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from dynamo_toolkit.interfaces import OwnershipTable, Partitioner
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.values import POSITION_SPACE

__all__ = ["ClusterState", "Member", "MemberStatus", "Move", "Plan", "plan_moves"]


class MemberStatus(enum.Enum):
    """Where a member is in its life; later values win merges at equal incarnation."""

    JOINING = "joining"
    UP = "up"
    LEAVING = "leaving"
    REMOVED = "removed"

    @property
    def rank(self) -> int:
        """Merge precedence."""
        return list(MemberStatus).index(self)


@attrs.frozen
class Member:
    """One member as gossiped: identity, status, and how far it has handed off."""

    info: NodeInfo
    status: MemberStatus = MemberStatus.UP
    incarnation: int = 0
    ready_epoch: int = 0  # highest committed epoch whose data this member holds

    @property
    def node_id(self) -> str:
        """The member's id."""
        return self.info.node_id

    def _precedence(self) -> tuple[int, int, int, str]:
        return (self.incarnation, self.status.rank, self.ready_epoch, repr(self.info))

    def to_wire(self) -> list[Any]:
        """Plain msgpack-able form."""
        i = self.info
        return [
            i.node_id,
            i.address,
            i.datacenter,
            i.rack,
            i.capacity,
            self.status.value,
            self.incarnation,
            self.ready_epoch,
        ]

    @classmethod
    def from_wire(cls, data: Sequence[Any]) -> Member:
        """Inverse of :meth:`to_wire`."""
        node_id, address, dc, rack, capacity, status, incarnation, ready = data
        info = NodeInfo(node_id, address, dc, rack, float(capacity))
        return cls(info, MemberStatus(status), int(incarnation), int(ready))


@attrs.frozen
class ClusterState:
    """A node's view of the cluster."""

    members: Mapping[str, Member] = attrs.field(factory=dict)
    epoch: int = 0
    owners: tuple[str, ...] = ()

    @classmethod
    def initial(cls, infos: Iterable[NodeInfo]) -> ClusterState:
        """A cluster whose members all own data from the start (epoch 1)."""
        members = {i.node_id: Member(i, MemberStatus.UP, 0, 1) for i in infos}
        return cls(members, 1, tuple(sorted(members)))

    def merge(self, other: ClusterState) -> ClusterState:
        """The view that knows what either knows."""
        members = dict(self.members)
        for node_id, theirs in other.members.items():
            mine = members.get(node_id)
            if mine is None or theirs._precedence() > mine._precedence():
                members[node_id] = theirs
        if (other.epoch, other.owners) > (self.epoch, self.owners):
            epoch, owners = other.epoch, other.owners
        else:
            epoch, owners = self.epoch, self.owners
        return ClusterState(members, epoch, owners)

    def with_member(self, member: Member) -> ClusterState:
        """This view with ``member``'s record replaced (callers bump its incarnation)."""
        return attrs.evolve(self, members={**self.members, member.node_id: member})

    def update_member(self, node_id: str, **changes: Any) -> ClusterState:
        """Change a member's record, bumping its incarnation so the change wins merges."""
        current = self.members[node_id]
        changed = attrs.evolve(current, incarnation=current.incarnation + 1, **changes)
        return self.with_member(changed)

    def proposed_owners(self) -> tuple[str, ...]:
        """Who would own data after a commit: owners and joiners, minus leavers and removed."""
        keep = {MemberStatus.UP, MemberStatus.JOINING}
        return tuple(sorted(m.node_id for m in self.members.values() if m.status in keep))

    def commit(self) -> ClusterState:
        """Commit the staged changes: the proposed owners, under a new epoch."""
        owners = self.proposed_owners()
        if not owners:
            raise ValueError("a commit would leave no owner")
        return attrs.evolve(self, epoch=self.epoch + 1, owners=owners)

    def owner_infos(self, owners: Sequence[str] | None = None) -> list[NodeInfo]:
        """The :class:`NodeInfo` of ``owners`` (default: the committed ones)."""
        return [self.members[o].info for o in (owners if owners is not None else self.owners)]

    def all_ready(self, epoch: int) -> bool:
        """Every committed owner of ``epoch`` holds its data (handoff finished)."""
        return epoch == self.epoch and all(
            self.members[o].ready_epoch >= epoch for o in self.owners if o in self.members
        )

    def to_wire(self) -> list[Any]:
        """Plain msgpack-able form."""
        return [
            [m.to_wire() for _, m in sorted(self.members.items())],
            self.epoch,
            list(self.owners),
        ]

    @classmethod
    def from_wire(cls, data: Sequence[Any]) -> ClusterState:
        """Inverse of :meth:`to_wire`."""
        members_data, epoch, owners = data
        members = {m.node_id: m for m in (Member.from_wire(item) for item in members_data)}
        return cls(members, int(epoch), tuple(str(o) for o in owners))


@attrs.frozen
class Move:
    """A range of positions whose replica set changes: who gains it, from whom."""

    start: int
    end: int
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def gained(self) -> tuple[str, ...]:
        """Nodes that must receive the range's data."""
        return tuple(n for n in self.after if n not in self.before)

    @property
    def fraction(self) -> float:
        """Share of the whole key space the range covers."""
        return (self.end - self.start) / POSITION_SPACE


def plan_moves(
    before: OwnershipTable,
    after: OwnershipTable,
    replicas: Any,
) -> list[Move]:
    """Ranges whose replicas differ between two tables.

    ``replicas(table, position)`` gives a position's replica ids under a table.
    Both tables' partition boundaries are merged, so every range has one
    replica set on each side.
    """
    bounds = sorted(set(before.partitions()) | set(after.partitions()) | {0})
    moves = []
    for index, start in enumerate(bounds):
        end = bounds[index + 1] if index + 1 < len(bounds) else POSITION_SPACE
        old, new = tuple(replicas(before, start)), tuple(replicas(after, start))
        if set(old) != set(new):
            moves.append(Move(start, end, old, new))
    return moves


def table_for(partitioner: Partitioner, state: ClusterState) -> OwnershipTable:
    """The ownership table of ``state``'s committed owners."""
    return partitioner.assign(state.owner_infos())


__all__ += ["table_for"]


@attrs.frozen
class Plan:
    """What a commit would do: owners before and after, and the ranges that move."""

    epoch: int
    owners_before: tuple[str, ...]
    owners_after: tuple[str, ...]
    moves: tuple[Move, ...]

    @property
    def moved_fraction(self) -> float:
        """Share of the key space whose replica set changes."""
        return sum(move.fraction for move in self.moves)

    def gained_fraction(self) -> dict[str, float]:
        """Per node, the share of the key space it must receive."""
        gained: dict[str, float] = {}
        for move in self.moves:
            for node in move.gained:
                gained[node] = gained.get(node, 0.0) + move.fraction
        return gained

    def to_json(self) -> dict[str, Any]:
        """Plain form for ``dtk cluster plan --json``."""
        return {
            "epoch": self.epoch,
            "owners_before": list(self.owners_before),
            "owners_after": list(self.owners_after),
            "moved_fraction": self.moved_fraction,
            "gained_fraction": self.gained_fraction(),
            "moves": [
                # Inclusive bounds: 2**64 itself does not fit msgpack's integers.
                {"first": m.start, "last": m.end - 1, "from": list(m.before), "to": list(m.after)}
                for m in self.moves
            ],
        }
