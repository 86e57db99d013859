"""The stateful owner of a node's cluster view: gossip, commits and handoff.

Around the pure :class:`~dynamo_toolkit.membership_state.ClusterState`, it

* gossips: every ``gossip_interval`` it swaps views with one random member
  (push-pull), so a change reaches all n members in O(log n) rounds;
* stages and commits changes (join, leave, remove) as a plan, as Riak does;
* hands data over when a commit changes owners: the node keeps serving with
  the old table while it pulls, range by range and throttled, the data it
  gains from the old replicas; it then announces itself ready; once every
  owner of the new epoch is ready, every node switches to the new table and
  runs one anti-entropy pass over what it gained to catch writes that landed
  during the move. A node that restarts mid-way simply pulls again (pulls are
  idempotent merges).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Sequence
from typing import Any

import attrs

from dynamo_toolkit._protocols import MembershipContext
from dynamo_toolkit.errors import ConfigurationError, DynamoError, TransportError
from dynamo_toolkit.interfaces import OwnershipTable
from dynamo_toolkit.membership_state import (
    ClusterState,
    Member,
    MemberStatus,
    Move,
    Plan,
    plan_moves,
    table_for,
)
from dynamo_toolkit.messages import Gossip, RangeQuery, RangeReply
from dynamo_toolkit.node_info import NodeInfo

__all__ = ["HandoffProgress", "MembershipManager"]

log = logging.getLogger(__name__)

PAGE = 512  # records per handoff page
STATE_FILE = "cluster_state.json"
MAX_PULL_RETRIES = 5  # handoff rounds a range may fail before it is left to anti-entropy


@attrs.define
class HandoffProgress:
    """How far this node is in receiving the data of the latest commit."""

    epoch: int = 0
    ranges_total: int = 0
    ranges_done: int = 0
    keys_received: int = 0
    fraction_total: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain form for status pages."""
        return attrs.asdict(self)


class MembershipManager:
    """A node's membership: its gossip, its plans and its handoffs.

    It sees the node only through :class:`~dynamo_toolkit._protocols.MembershipContext`.
    """

    def __init__(
        self,
        node: MembershipContext,
        members: Sequence[NodeInfo],
        *,
        joining: bool = False,
        seeds: Sequence[NodeInfo] = (),
    ) -> None:
        self.node = node
        me = node.info
        if joining:
            records = {s.node_id: Member(s) for s in seeds if s.node_id != me.node_id}
            records[me.node_id] = Member(me, MemberStatus.JOINING)
            owners = tuple(sorted(r for r in records if r != me.node_id)) or (me.node_id,)
            # Until gossip brings the committed view, route with the seeds as owners.
            self.state = ClusterState(records, 0, owners)
        else:
            self.state = ClusterState.initial(members)
        self.serving_epoch = self.state.epoch
        # The view survives restarts: a node that rejoins after a commit must
        # not fall back to the membership it was first configured with.
        self._saved = node.data_dir / STATE_FILE if node.data_dir is not None else None
        if self._saved is not None and self._saved.exists():
            saved = json.loads(self._saved.read_text())
            self.state = ClusterState.from_wire(saved["state"])
            self.serving_epoch = int(saved["serving_epoch"])
        self.progress = HandoffProgress(epoch=self.state.epoch)
        self._rng = random.Random(me.node_id)
        self._transition: asyncio.Task[None] | None = None
        self._failed_pulls = 0
        self._gossip_task: asyncio.Task[None] | None = None
        self._wire_of: ClusterState | None = None
        self._wire_form: tuple[Any, ...] = ()

    # -- views -------------------------------------------------------------------

    def table(self) -> OwnershipTable:
        """The table of the committed owners in this view."""
        return table_for(self.node.partitioner, self.state)

    def serving_table(self) -> OwnershipTable:
        """The table of the epoch this node serves (the committed one unless mid-handoff)."""
        if self._saved is not None and self.serving_epoch != self.state.epoch:
            saved = json.loads(self._saved.read_text())
            if "serving_owners" in saved:
                owners = [self.state.members[o].info for o in saved["serving_owners"]]
                return self.node.partitioner.assign(owners)
        return self.table()

    def _save(self) -> None:
        if self._saved is None:
            return
        document = {
            "state": self.state.to_wire(),
            "serving_epoch": self.serving_epoch,
            "serving_owners": list(self.node.table.nodes),
        }
        temporary = self._saved.with_suffix(".tmp")
        temporary.write_text(json.dumps(document))
        temporary.replace(self._saved)

    def wire(self) -> tuple[Any, ...]:
        """This view in gossip form, built once per view (views are immutable).

        In steady state every member holds the same view, so a gossip round
        only has to notice that the peer's view equals this one: comparing the
        plain wire forms costs far less than decoding and merging them, which
        at 1000 members dominated a simulated cluster's run time.
        """
        if self._wire_of is not self.state:
            self._wire_form = tuple(self.state.to_wire())
            self._wire_of = self.state
        return self._wire_form

    def live_members(self) -> dict[str, NodeInfo]:
        """Every member not removed, by id."""
        return {
            node_id: member.info
            for node_id, member in self.state.members.items()
            if member.status is not MemberStatus.REMOVED
        }

    def is_owner(self) -> bool:
        """Whether this node owns data in the table it serves with."""
        return self.node.node_id in self.node.table.nodes

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start gossiping (and finish any handoff a restart interrupted)."""
        self._gossip_task = asyncio.get_running_loop().create_task(self._gossip())
        self._maybe_transition()

    async def stop(self) -> None:
        """Stop gossip and any handoff in progress."""
        for task in (self._gossip_task, self._transition):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._gossip_task = self._transition = None

    # -- gossip ------------------------------------------------------------------

    async def _gossip(self) -> None:
        while True:
            await self.node.clock.sleep(self.node.config.gossip_interval)
            peers = [p for p in sorted(self.live_members()) if p != self.node.node_id]
            if not peers:
                continue
            now = self.node.clock.monotonic()
            # Prefer members the detector believes up; try anyone if none are.
            alive = [p for p in peers if self.node.is_available(p, now)] or peers
            await self.exchange_with(self._rng.choice(alive))

    async def exchange_with(self, peer: str) -> bool:
        """One push-pull gossip round with ``peer``; False if it did not answer."""
        transport = self.node.transport
        if transport is None:
            return False
        try:
            reply = await transport.request(
                peer, Gossip(self.wire()), self.node.config.request_timeout
            )
        except TransportError:
            return False
        if isinstance(reply, Gossip) and reply.state != self.wire():
            self.apply(ClusterState.from_wire(reply.state))
        return True

    def on_gossip(self, message: Gossip) -> Gossip:
        """A peer's push: merge it, answer with the merged view."""
        if message.state != self.wire():  # an identical view changes nothing
            self.apply(ClusterState.from_wire(message.state))
        return Gossip(self.wire())

    def apply(self, incoming: ClusterState) -> None:
        """Merge ``incoming`` into this view and act on what changed."""
        merged = self.state.merge(incoming)
        if merged == self.state:
            return
        me = self.node.node_id
        mine = merged.members.get(me)
        heard = incoming.members.get(me)
        if mine is not None and heard is not None and heard.incarnation > mine.incarnation:
            mine = heard
        if mine is not None and mine.node_id == me and mine != merged.members[me]:
            merged = merged.with_member(mine)
        self.state = merged
        self.node.members_changed()
        self._save()
        self._maybe_transition()

    # -- staging and committing ----------------------------------------------------

    def stage(self, node_id: str, status: MemberStatus) -> None:
        """Stage a change of ``node_id``'s status for the next commit.

        ``LEAVING`` or ``REMOVED`` take it out; ``UP`` undoes a staged leave.
        """
        if node_id not in self.state.members:
            raise ConfigurationError(
                f"no member {node_id!r}; members: {', '.join(sorted(self.state.members))}"
            )
        self.apply(self.state.update_member(node_id, status=status))

    def plan(self) -> Plan:
        """What committing the staged changes would move."""
        proposed = self.state.proposed_owners()
        if not proposed:
            raise ConfigurationError("the staged changes would leave no owner")
        before = self.table()
        after = self.node.partitioner.assign(self.state.owner_infos(proposed))
        moves = plan_moves(before, after, self._replicas)
        return Plan(self.state.epoch + 1, self.state.owners, proposed, tuple(moves))

    def commit(self) -> Plan:
        """Commit the staged changes; gossip spreads the new epoch."""
        plan = self.plan()
        if plan.owners_after == plan.owners_before:
            raise ConfigurationError("nothing staged: the owners would not change")
        if len(plan.owners_after) < self.node.config.n:
            raise ConfigurationError(
                f"the staged changes leave {len(plan.owners_after)} owner(s), fewer than "
                f"N={self.node.config.n}: add nodes first"
            )
        self.apply(self.state.commit())
        return plan

    def _replicas(self, table: OwnershipTable, position: int) -> tuple[str, ...]:
        members = {**self.live_members(), **{i.node_id: i for i in self.state.owner_infos()}}
        return self.node.replicator.place(table, position, self.node.config.n, members).replicas

    # -- handoff -------------------------------------------------------------------

    def _maybe_transition(self) -> None:
        if self.state.epoch <= self.serving_epoch or self.state.epoch == 0:
            return
        if self._transition is not None and not self._transition.done():
            return
        if self.node.transport is None:
            return  # not started: start() calls again
        self._transition = asyncio.get_running_loop().create_task(self._handoff())

    async def _handoff(self) -> None:
        while self.state.epoch > self.serving_epoch:
            try:
                await self._handoff_round()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep trying: a stuck handoff blocks every node
                log.exception("%s: handoff round failed; retrying", self.node.node_id)
                await self.node.clock.sleep(self.node.config.gossip_interval)

    async def _handoff_round(self) -> None:
        if self.state.epoch > self.serving_epoch:
            epoch = self.state.epoch
            target = self.table()
            me = self.node.node_id
            gained = [
                move
                for move in plan_moves(self.node.table, target, self._replicas)
                if me in move.gained
            ]
            if self.progress.epoch != epoch:
                self._failed_pulls = 0  # retries are counted per commit
            self.progress = HandoffProgress(
                epoch, len(gained), 0, 0, sum(move.fraction for move in gained)
            )
            for move in gained:
                if self.state.epoch != epoch:
                    return  # a newer commit arrived: start over against it
                await self._pull(move)
                self.progress.ranges_done += 1
            if self.state.epoch != epoch:
                return
            if self.state.members[me].ready_epoch < epoch:
                self.apply(self.state.update_member(me, ready_epoch=epoch))
            while not self.state.all_ready(epoch) and self.state.epoch == epoch:
                await self.node.clock.sleep(self.node.config.gossip_interval)
            if self.state.epoch != epoch:
                return
            lost = [
                move
                for move in plan_moves(self.node.table, target, self._replicas)
                if me in move.before and me not in move.after
            ]
            self._switch(epoch, target)
            mine = self.state.members[me]
            if mine.status is MemberStatus.JOINING and me in self.state.owners:
                self.apply(self.state.update_member(me, status=MemberStatus.UP))
            # Writes that reached the old replicas while we pulled: catch up.
            for move in gained:
                for partition in self._partitions_in(move):
                    with contextlib.suppress(DynamoError):
                        await self.node.repair_partition(partition)
            # Ranges this node no longer replicates: drop them, so stale copies
            # cannot come back should it own them again one day.
            for move in lost:
                self.node.store.drop_range(move.start, move.end)

    async def _pull(self, move: Move) -> None:
        """Copy one range from a replica that held it, page by page."""
        transport = self.node.transport
        assert transport is not None
        now = self.node.clock.monotonic()
        # Old replicas the detector believes up first: a dead one costs a timeout.
        sources = sorted(
            (s for s in move.before if s != self.node.node_id),
            key=lambda s: not self.node.is_available(s, now),
        )
        after_position, after_key = move.start, None
        while sources:
            source = sources[0]
            query = RangeQuery(move.start, move.end - 1, after_position, after_key, PAGE)
            try:
                reply = await transport.request(source, query, self.node.config.request_timeout)
            except DynamoError:
                sources.pop(0)  # try the next old replica, from where we are
                continue
            assert isinstance(reply, RangeReply)
            for key, position, versions in reply.records:
                self.node.store.apply(key, position, versions)
                self.progress.keys_received += 1
                after_position, after_key = position, key
            if not reply.more:
                return
            # The throttle: a pause per full page keeps a big move from
            # crowding out client requests on either side.
            await self.node.clock.sleep(self.node.config.anti_entropy_pause)
        self._failed_pulls += 1
        if self._failed_pulls <= MAX_PULL_RETRIES:
            raise DynamoError(f"no old replica could send range {move.start}-{move.end}")
        # Every old replica stayed unreachable: go on rather than block the
        # whole cluster's switch; anti-entropy fills the range once one is back.
        log.warning("%s: giving up on range %s for now", self.node.node_id, move)

    def answer_range(self, query: RangeQuery) -> RangeReply:
        """Serve a page of a range to a node taking it over."""
        records = []
        for key, position, versions in self.node.store.scan(query.after_position, query.last + 1):
            if query.after_key is not None and (position, key) <= (
                query.after_position,
                query.after_key,
            ):
                continue
            records.append((key, position, versions))
            if len(records) > query.limit:
                break
        more = len(records) > query.limit
        return RangeReply(tuple(records[: query.limit]), more)

    def _partitions_in(self, move: Move) -> list[int]:
        table = self.node.table
        return [p for p in table.partitions() if move.start <= p < move.end] or [
            table.partition_of(move.start)
        ]

    def _switch(self, epoch: int, target: OwnershipTable) -> None:
        log.info("%s: serving epoch %d with owners %s", self.node.node_id, epoch, target.nodes)
        self.node.use_table(target)
        self.serving_epoch = epoch
        self._save()
