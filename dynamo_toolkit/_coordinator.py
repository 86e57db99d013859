"""The write and read paths (Dynamo §4.5): any node coordinates any request.

The coordinator asks the N replicas of a key in parallel and answers after W
(or R) of them reply; replies that arrive later still land (writes) or feed
read repair (reads).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from dynamo_toolkit._protocols import CoordinatorContext
from dynamo_toolkit.config import validate_quorum
from dynamo_toolkit.consistency import (
    ConsistencyLevel,
    LevelSpec,
    Requirement,
    parse_level,
    requirement,
)
from dynamo_toolkit.errors import (
    ConfigurationError,
    DynamoError,
    NodeUnavailableError,
    QuorumNotReachedError,
)
from dynamo_toolkit.interfaces import Placement
from dynamo_toolkit.messages import (
    ForwardedWrite,
    ForwardedWriteReply,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaWrite,
)
from dynamo_toolkit.results import GetResult, PutResult
from dynamo_toolkit.values import (
    Key,
    check_pair_size,
    encode_key,
    encode_value,
    key_position,
)
from dynamo_toolkit.versioning import Version, decode_context

__all__ = ["FORWARDED_IDS_KEPT", "Coordinator"]

#: Forwarded-write ids a replica remembers, to answer a duplicate without
#: coordinating the write again (a duplicate arrives within a request timeout).
FORWARDED_IDS_KEPT = 4096

#: Builds a replica's request, given the owner it stands in for (or None).
_MakeRequest = Callable[[str | None], ReplicaRead | ReplicaWrite]


def _level_error(
    operation: str,
    level: Requirement,
    replies: dict[str, int],
    answered: int,
    contacted: int,
    reason: str,
) -> QuorumNotReachedError:
    """The error of a request short of a named level: it names the level and
    each datacenter short, with the replies counted there."""
    name = level.level.value if isinstance(level.level, ConsistencyLevel) else str(level.level)
    return QuorumNotReachedError(
        operation,
        answered,
        level.total,
        contacted,
        reason,
        level=name,
        shortfall=level.shortfall(replies),
        summary=level.describe(replies),
    )


class _ByDatacenter:
    """Replies counted per datacenter, for a level that counts them so
    (``LOCAL_*``, ``EACH_QUORUM``).

    A reply counts for the datacenter of the node that gave it (a stand-in
    counts where it is, not where the owner it stands in for is: a
    ``LOCAL_QUORUM`` reply really came from the local datacenter).
    ``possible`` is, per datacenter, the replies still possible (counted so
    far plus those outstanding): once it cannot meet the level, waiting longer
    is pointless and the request fails at once.
    """

    __slots__ = ("datacenters", "possible", "replies", "requirement")

    def __init__(
        self, level: Requirement, datacenters: dict[str, str], possible: dict[str, int]
    ) -> None:
        self.requirement = level
        self.datacenters = datacenters
        self.possible = possible
        self.replies: dict[str, int] = {}

    def counted(self, node: str) -> None:
        dc = self.datacenters.get(node, "")
        self.replies[dc] = self.replies.get(dc, 0) + 1

    def lost(self, node: str) -> None:
        dc = self.datacenters.get(node, "")
        self.possible[dc] = self.possible.get(dc, 0) - 1

    def met(self) -> bool:
        return self.requirement.met(self.replies)

    def hopeless(self) -> bool:
        return not self.requirement.met(self.possible)

    def beyond_reach(self) -> dict[str, int]:
        """Replies per datacenter as an error shows them: a datacenter that could
        still have met its minimum when the request gave up (another could not)
        shows as met, so the error names only those that fell short."""
        level = self.requirement
        replies = dict(self.replies)
        short = level.shortfall(self.possible)
        for dc, need in level.per_datacenter.items():
            if dc not in short:
                replies[dc] = max(replies.get(dc, 0), need)
        return replies


class _Quorum:
    """Collects replica replies until ``needed`` count or all have answered.

    Keyed by the node asked; ``owners`` maps a stand-in to the owner it stands
    in for (sloppy quorum). A stand-in's reply counts toward the quorum only
    if ``count_hinted``. No future is made unless someone must wait: a request
    answered entirely by the local replica never touches the event loop.
    """

    def __init__(
        self,
        contacted: int,
        needed: int,
        owners: dict[str, str],
        count_hinted: bool,
        spares: list[tuple[str, str | None]] | None = None,
    ) -> None:
        self.contacted = contacted
        self.needed = needed
        self.owners = owners
        self.count_hinted = count_hinted
        self.counted = 0
        self.replies: dict[str, object] = {}
        self.errors: dict[str, str] = {}
        self._reached: asyncio.Future[None] | None = None
        self._on_finished: Callable[[], None] | None = None
        # Nodes held back (read_fanout "quorum"), asked one by one while the
        # replies still possible could not reach ``needed`` without them. No
        # callback is kept here: a quorum referring to a closure that refers
        # back to it would be a cycle per request for the cyclic GC.
        self.spares: list[tuple[str, str | None]] = spares or []
        self.asked: list[str] = []
        # Only for a level counted per datacenter; None keeps counts plain.
        self.by_dc: _ByDatacenter | None = None

    @property
    def is_reached(self) -> bool:
        """Enough counted replies, or nothing more to wait for."""
        by_dc = self.by_dc
        if by_dc is None:
            return self.counted >= self.needed or self.is_finished
        return by_dc.met() or self.is_finished or by_dc.hopeless()

    @property
    def outstanding(self) -> int:
        """Nodes asked that have not replied or failed yet."""
        return self.contacted - len(self.replies) - len(self.errors)

    @property
    def is_finished(self) -> bool:
        """Every contacted node replied or failed, and no spare is to be asked."""
        if len(self.replies) + len(self.errors) < self.contacted:
            return False
        return not (self.spares and self.counted < self.needed)

    def wants_spare(self) -> bool:
        """True while the replies still possible cannot reach ``needed`` without a spare."""
        return bool(self.spares) and self.counted + self.outstanding < self.needed

    def record(self, node: str, reply: object | None, error: str | None) -> None:
        """Note one node's reply (or error) and wake whoever waits."""
        if error is None:
            self.replies[node] = reply
            if self.count_hinted or node not in self.owners:
                self.counted += 1
                if self.by_dc is not None:
                    self.by_dc.counted(node)
        else:
            self.errors[node] = error
            if self.by_dc is not None and (self.count_hinted or node not in self.owners):
                self.by_dc.lost(node)
        if self._reached is not None and self.is_reached and not self._reached.done():
            self._reached.set_result(None)
        if self.is_finished and self._on_finished is not None:
            callback, self._on_finished = self._on_finished, None
            callback()

    async def wait_reached(self) -> None:
        """Wait until enough replies, or until every node asked has replied or failed.

        No timer of its own: transports complete every request within its
        timeout (a reply, an error, or a timeout error), so this always ends.
        """
        if self.is_reached:
            return
        self._reached = asyncio.get_running_loop().create_future()
        await self._reached

    def when_finished(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every node asked has replied or failed."""
        if self.is_finished:
            callback()
        else:
            self._on_finished = callback


class Coordinator:
    """Runs reads and writes on behalf of clients, for one node.

    It sees the node only through :class:`~dynamo_toolkit._protocols.CoordinatorContext`.
    """

    def __init__(self, node: CoordinatorContext) -> None:
        self.node = node
        self._forwardings = 0
        # Forwarded writes coordinated lately, by write id: a duplicate of one
        # (the network delivered it twice, or it was retried) gets the same
        # answer instead of a second version, which would be a sibling.
        self._forwarded: OrderedDict[str, asyncio.Future[ForwardedWriteReply]] = OrderedDict()

    # -- public API --------------------------------------------------------

    async def get(self, key: Key, *, r: LevelSpec | None = None, n: int | None = None) -> GetResult:
        """Read ``key`` from R of its N replicas; siblings come with one covering context.

        R is a count or a consistency level (:mod:`dynamo_toolkit.consistency`).
        The store's ``read_fanout`` says whom it asks: all N (``"all"``), or
        R, its own copy first, and another replica for each that fails
        (``"quorum"``). A level counted per datacenter (``LOCAL_*``,
        ``EACH_QUORUM``) asks all N and answers once its datacenters have;
        under ``"quorum"``, a ``LOCAL_*`` read asks only as many of the local
        datacenter's replicas as it needs (another for each that fails), and
        no remote one.
        """
        cfg = self.node.config
        if n is not None or r is not None:  # the store's own values were checked at start
            n = cfg.n if n is None else n
            r = cfg.r if r is None else r
            validate_quorum(n, r, 1)
        else:
            n, r = cfg.n, cfg.r
        stored_key = encode_key(key)
        position = key_position(stored_key)
        placement = self.node.placement(position, n)
        targets = self._targets(placement)
        quorum = await self._fan_out(
            targets,
            lambda owner: ReplicaRead(stored_key, owner),
            r if isinstance(r, int) else self._requirement(r, placement, "read"),
            "read",
            ask_only_needed=cfg.read_fanout == "quorum",
        )
        self.node.stats.reads += 1

        answers = [r.versions for r in quorum.replies.values() if isinstance(r, ReplicaReadReply)]
        # A replica's stored set is reconciled already, so one answer, or
        # answers that agree (the common case), need no work.
        first = answers[0] if answers else ()
        agree = all(answer == first for answer in answers)
        siblings = first if agree else self._reconcile(answers)
        # Repair once every replica has answered or failed, off the client's path
        # (a sole replica cannot be stale against itself).
        if len(targets) > 1:
            quorum.when_finished(lambda: self._repair(stored_key, position, quorum))
        return self._result(stored_key, siblings, len(quorum.replies))

    async def put(
        self,
        key: Key,
        value: object,
        context: bytes | None = None,
        *,
        w: LevelSpec | None = None,
        n: int | None = None,
        supersede_local: bool = False,
    ) -> PutResult:
        """Write ``value``; ``context`` (from ``get``) says which versions it supersedes.

        Without a context (``None`` or ``b""``) the resolver decides
        (:meth:`~dynamo_toolkit.interfaces.ConflictResolver.blind_write_context`):
        under the default ``dvv`` the write supersedes the versions its
        coordinating replica holds, and only versions it does not hold yet
        stay siblings.

        With ``supersede_local``, a coordinator that is a replica of the key also
        supersedes every version it holds itself (Redis-style overwrite without
        a read round trip); versions only other replicas hold stay siblings.

        A node that is not a replica of the key hands the write to the first
        replica its failure detector reports up, which coordinates it (Dynamo
        §4.5), unless ``forward_writes`` is off. The new version's clock gets
        its counter from a node that holds the key's versions, so it can
        never repeat (and look older than) one already stored. With no
        replica up (or none accepting a connection), this node coordinates
        itself (sloppy quorum). A forward that times out is a failed write:
        the replica may have stored it, and coordinating again elsewhere
        could store it twice.
        """
        stored_key = encode_key(key)
        encoded = encode_value(value)
        check_pair_size(stored_key, encoded, self.node.config.max_pair_bytes)
        return await self._write(stored_key, encoded, context, w, n, supersede_local)

    async def delete(
        self,
        key: Key,
        context: bytes | None = None,
        *,
        w: LevelSpec | None = None,
        n: int | None = None,
        supersede_local: bool = False,
    ) -> PutResult:
        """Write a tombstone superseding the versions ``context`` covers (see :meth:`put`)."""
        return await self._write(encode_key(key), None, context, w, n, supersede_local)

    # -- internals -----------------------------------------------------------

    async def _write(
        self,
        key: bytes,
        value: bytes | None,
        context: bytes | None,
        w: LevelSpec | None,
        n: int | None,
        supersede_local: bool = False,
    ) -> PutResult:
        cfg = self.node.config
        if n is not None or w is not None:
            n = cfg.n if n is None else n
            w = cfg.w if w is None else w
            validate_quorum(n, 1, w)
        else:
            n, w = cfg.n, cfg.w
        if isinstance(w, str):
            w = parse_level(w)
        position = key_position(key)
        placement = self.node.placement(position, n)
        me = self.node.node_id
        if me not in placement.replicas and cfg.forward_writes:
            forwarded = await self._forward(key, value, context, w, n, placement)
            if forwarded is not None:
                return forwarded
        local = self.node.store.read(key) if me in placement.replicas else ()
        # No context (None or b""; a read of an absent key gives a non-empty
        # one): the resolver says what such a blind write supersedes.
        base = decode_context(context) if context else self.node.resolver.blind_write_context(local)
        if supersede_local:
            for held in local:
                base = base.merge(held.clock)
        version = self.node.resolver.new_version(base, me, value, self.node.clock.now(), local)
        versions = (version,)
        quorum = await self._fan_out(
            self._targets(placement),
            lambda owner: ReplicaWrite(key, position, versions, owner),
            w if isinstance(w, int) else self._requirement(w, placement, "write"),
            "write",
        )
        self.node.stats.writes += 1
        return PutResult(key, version.clock, quorum.counted)

    async def _forward(
        self,
        key: bytes,
        value: bytes | None,
        context: bytes | None,
        w: int | ConsistencyLevel,
        n: int,
        placement: Placement,
    ) -> PutResult | None:
        """Have a live replica coordinate the write; None if none could be reached.

        With a ``LOCAL_*`` level, only a replica in this node's datacenter may
        coordinate it: "local" is the datacenter of the node the client asked,
        and a replica there means the same datacenter by it.
        """
        node = self.node
        transport = node.transport
        if transport is None or not node.running:
            return None
        now = node.clock.monotonic()
        cfg = node.config
        level = ""
        local_dc: str | None = None
        if isinstance(w, int):
            custom_w = None if w == cfg.w else w
        else:
            custom_w = None
            level = "" if w.value == cfg.w else w.value
            if w.local:
                local_dc = node.datacenter_of(node.node_id)
        custom_n = None if n == cfg.n else n
        self._forwardings += 1
        write_id = f"{node.node_id}/{self._forwardings}"
        message = ForwardedWrite(key, value, context, custom_w, custom_n, write_id, level)
        required = w if isinstance(w, int) else 0
        level_name = "" if isinstance(w, int) else w.value
        for replica in placement.replicas:
            if not node.is_available(replica, now):
                continue
            if local_dc is not None and node.datacenter_of(replica) != local_dc:
                continue
            try:
                # The replica waits up to a request timeout for its own quorum.
                # request_future: this may run eagerly, outside any task.
                reply = await transport.request_future(replica, message, 2 * cfg.request_timeout)
            except NodeUnavailableError:
                continue  # never delivered: the next replica may take it
            except DynamoError as exc:
                # Delivered or not, nobody knows: coordinating it again elsewhere
                # could store it twice (as two siblings), so the client is told.
                node.stats.quorum_failures += 1
                raise QuorumNotReachedError(
                    "write",
                    0,
                    required,
                    n,
                    f"forwarded to {replica}, outcome unknown: {exc}",
                    level=level_name,
                ) from exc
            node.heard_from(replica)
            if not isinstance(reply, ForwardedWriteReply):
                continue
            node.stats.forwarded_writes += 1
            if reply.error is not None or reply.clock is None:
                node.stats.quorum_failures += 1
                raise QuorumNotReachedError(
                    "write",
                    reply.acknowledged,
                    reply.required,
                    reply.contacted,
                    f"coordinated by {replica}: {reply.error}",
                    level=level_name,
                )
            return PutResult(key, reply.clock, reply.acknowledged)
        return None

    async def coordinate_forwarded(self, message: ForwardedWrite) -> ForwardedWriteReply:
        """Coordinate a write another node forwarded here (this node is a replica).

        A write id seen lately is not coordinated again: its first answer
        (awaited if still in progress) is the answer.
        """
        if not message.write_id:
            return await self._coordinate_forwarded(message)
        earlier = self._forwarded.get(message.write_id)
        if earlier is not None:
            return await asyncio.shield(earlier)
        answer: asyncio.Future[ForwardedWriteReply] = asyncio.get_running_loop().create_future()
        self._forwarded[message.write_id] = answer
        if len(self._forwarded) > FORWARDED_IDS_KEPT:
            self._forwarded.popitem(last=False)
        try:
            reply = await self._coordinate_forwarded(message)
        except asyncio.CancelledError:
            answer.cancel()
            raise
        except Exception as exc:
            answer.set_exception(exc)
            answer.exception()  # retrieved here: a duplicate may never ask
            raise
        answer.set_result(reply)
        return reply

    async def _coordinate_forwarded(self, message: ForwardedWrite) -> ForwardedWriteReply:
        try:
            result = await self._write(
                message.key, message.value, message.context, message.level or message.w, message.n
            )
        except QuorumNotReachedError as exc:
            return ForwardedWriteReply(None, exc.answered, str(exc), exc.required, exc.contacted)
        return ForwardedWriteReply(result.clock, result.acknowledged)

    def _targets(self, placement: Placement) -> list[tuple[str, str | None]]:
        """Whom to ask: ``(node, owner it stands in for or None)`` per replica.

        With a sloppy quorum (Dynamo §4.6), an owner the failure detector
        reports down is replaced by the first healthy node of the replicator's
        stand-in order for it (:meth:`Replicator.standins`), which takes a
        hint naming the owner; with no healthy fallback left, the owner is
        asked anyway.
        """
        node = self.node
        replicas = placement.replicas
        if not node.config.sloppy_quorum or not placement.fallbacks:
            return [(replica, None) for replica in replicas]
        now = node.clock.monotonic()
        me = node.node_id
        down = {r for r in replicas if r != me and not node.is_available(r, now)}
        if not down:
            return [(replica, None) for replica in replicas]
        # The replicator orders the candidates per replica (e.g. same datacenter
        # first); each healthy node stands in for one replica at most.
        taken: set[str] = set()
        targets: list[tuple[str, str | None]] = []
        for replica in replicas:
            standin = None
            if replica in down:
                candidates = node.standins(placement, replica)
                standin = next(
                    (
                        f
                        for f in candidates
                        if f not in taken and (f == me or node.is_available(f, now))
                    ),
                    None,
                )
            if standin is not None:
                taken.add(standin)
                targets.append((standin, replica))
            else:
                targets.append((replica, None))
        return targets

    def _requirement(
        self, level: str | ConsistencyLevel, placement: Placement, operation: str
    ) -> int | Requirement:
        """What a named level needs of ``placement``'s replicas (a count as text: the count).

        A level the key's replicas cannot meet at all (``LOCAL_QUORUM`` where
        this node's datacenter holds none of them) fails before anyone is asked.
        """
        parsed = parse_level(level) if isinstance(level, str) else level
        if isinstance(parsed, int):
            return parsed
        node = self.node
        try:
            return requirement(
                parsed,
                [node.datacenter_of(replica) for replica in placement.replicas],
                node.datacenter_of(node.node_id),
            )
        except ConfigurationError as exc:
            node.stats.quorum_failures += 1
            raise QuorumNotReachedError(
                operation,
                0,
                0,
                len(placement.replicas),
                str(exc),
                level=parsed.value,
                summary=f"{parsed.value} not reached",
            ) from exc

    async def _fan_out(
        self,
        targets: Sequence[tuple[str, str | None]],
        make: _MakeRequest,
        needed: int | Requirement,
        operation: str,
        ask_only_needed: bool = False,
    ) -> _Quorum:
        """Ask ``targets`` and wait until ``needed`` count (or none can).

        ``needed`` is a count, or a level's :class:`Requirement`: one that is
        a plain count (``ONE`` .. ``ALL``, ``QUORUM``) is counted as numbers
        are, one counted per datacenter by :meth:`_fan_out_by_datacenter`.
        With ``ask_only_needed``, only ``needed`` of them are asked at first
        (this node, then those the failure detector reports up, in
        preference order); each failure brings in the next.
        """
        node = self.node
        if not node.running:
            raise NodeUnavailableError(f"node {node.node_id!r} is stopped")
        level: Requirement | None = None
        scope = ""  # the datacenter a LOCAL_* level's replies are counted in
        if not isinstance(needed, int):
            level = needed
            if level.per_datacenter_counts:
                if not (ask_only_needed and level.counted is not None and not level.per_datacenter):
                    return await self._fan_out_by_datacenter(targets, make, level, operation)
                # A LOCAL_* read asking only as many as needed asks only its
                # datacenter's replicas: a count among them, nothing remote.
                (scope,) = level.counted
                targets = [t for t in targets if node.datacenter_of(t[0]) == scope]
            needed = level.total
        contacted = len(targets)
        if contacted == 1 and needed == 1 and targets[0] == (node.node_id, None):
            quorum, flushed = self._ask_only_self(make, operation)
            if flushed is not None:
                try:
                    await flushed
                except Exception as exc:
                    node.stats.quorum_failures += 1
                    raise QuorumNotReachedError(
                        operation, 0, 1, 1, f"{node.node_id}: flush failed: {exc}"
                    ) from exc
            return quorum
        if contacted < needed:
            node.stats.quorum_failures += 1
            reason = f"only {contacted} nodes hold the key"
            if level is not None:
                raise _level_error(operation, level, {scope: contacted}, 0, contacted, reason)
            raise QuorumNotReachedError(operation, 0, needed, contacted, reason)
        now = node.clock.monotonic()
        me = node.node_id
        down = [t for t, _ in targets if t != me and not node.is_available(t, now)]
        owners = {target: owner for target, owner in targets if owner is not None}
        count_hinted = node.config.hinted_writes_count
        countable = contacted - len(down) - (0 if count_hinted else len(owners))
        if countable < needed:
            node.stats.quorum_failures += 1
            reason = (
                f"failure detector reports {', '.join(down)} down"
                if down
                else f"{len(owners)} stand-in(s) do not count toward the quorum"
            )
            if level is not None:
                raise _level_error(operation, level, {scope: countable}, 0, contacted, reason)
            raise QuorumNotReachedError(operation, 0, needed, contacted, reason)
        timeout = node.config.request_timeout
        first: Sequence[tuple[str, str | None]] = targets
        spares: list[tuple[str, str | None]] = []
        if ask_only_needed and needed < contacted:
            # Stable sort: this node, then those up, then those reported down.
            ordered = sorted(targets, key=lambda t: 0 if t[0] == me else 2 if t[0] in down else 1)
            first, spares = ordered[:needed], ordered[needed:]
        quorum = _Quorum(len(first), needed, owners, count_hinted, spares)
        for target, owner in first:
            self._ask(quorum, make, target, owner)
        await quorum.wait_reached()
        if quorum.counted < needed:
            node.stats.quorum_failures += 1
            silent = [t for t in quorum.asked if t not in quorum.replies and t not in quorum.errors]
            reasons = [f"{t}: {e}" for t, e in sorted(quorum.errors.items())]
            if silent:
                reasons.append(f"no reply from {', '.join(silent)} within {timeout} s")
            if level is not None:
                raise _level_error(
                    operation,
                    level,
                    {scope: quorum.counted},
                    quorum.counted,
                    quorum.contacted,
                    "; ".join(reasons),
                )
            raise QuorumNotReachedError(
                operation, quorum.counted, needed, quorum.contacted, "; ".join(reasons)
            )
        if owners:
            node.stats.hinted_requests += 1
        return quorum

    async def _fan_out_by_datacenter(
        self,
        targets: Sequence[tuple[str, str | None]],
        make: _MakeRequest,
        level: Requirement,
        operation: str,
    ) -> _Quorum:
        """Ask every target; answer once ``level`` is met per datacenter.

        Everyone is asked (a write reaches every replica, remote ones too),
        but a ``LOCAL_*`` level only counts, and so only waits for, the local
        datacenter. The request fails before anyone is asked if the replicas
        the failure detector reports up cannot meet the level, and as soon as
        those still to answer cannot.
        """
        node = self.node
        now = node.clock.monotonic()
        me = node.node_id
        contacted = len(targets)
        down = [t for t, _ in targets if t != me and not node.is_available(t, now)]
        owners = {target: owner for target, owner in targets if owner is not None}
        count_hinted = node.config.hinted_writes_count
        datacenters = {target: node.datacenter_of(target) for target, _ in targets}
        possible: dict[str, int] = {}
        up: dict[str, int] = {}
        for target, owner in targets:
            if owner is not None and not count_hinted:
                continue
            dc = datacenters[target]
            possible[dc] = possible.get(dc, 0) + 1
            if target not in down:
                up[dc] = up.get(dc, 0) + 1
        if not level.met(up):
            node.stats.quorum_failures += 1
            reason = (
                f"failure detector reports {', '.join(sorted(down))} down"
                if down
                else f"{len(owners)} stand-in(s) do not count toward the quorum"
            )
            raise _level_error(operation, level, up, 0, contacted, reason)
        quorum = _Quorum(contacted, level.total, owners, count_hinted)
        by_dc = quorum.by_dc = _ByDatacenter(level, datacenters, possible)
        for target, owner in targets:
            self._ask(quorum, make, target, owner)
        await quorum.wait_reached()
        if not by_dc.met():
            node.stats.quorum_failures += 1
            silent = [t for t in quorum.asked if t not in quorum.replies and t not in quorum.errors]
            reasons = [f"{t}: {e}" for t, e in sorted(quorum.errors.items())]
            if silent and quorum.is_finished:
                timeout = node.config.request_timeout
                reasons.append(f"no reply from {', '.join(silent)} within {timeout} s")
            raise _level_error(
                operation,
                level,
                by_dc.beyond_reach(),
                quorum.counted,
                contacted,
                "; ".join(reasons),
            )
        if owners:
            node.stats.hinted_requests += 1
        return quorum

    def _ask_only_self(
        self, make: _MakeRequest, operation: str
    ) -> tuple[_Quorum, asyncio.Future[None] | None]:
        """A quorum of one that is this node (N=1): its own answer, or a quorum error.

        The same outcome as the general path, without its bookkeeping for
        remote replicas (nobody to find down, no stand-ins, nothing to wait for
        but, for a write to an engine that buffers, the flush returned with it).
        """
        node = self.node
        me = node.node_id
        quorum = _Quorum(1, 1, {}, True)
        quorum.asked.append(me)
        message = make(None)
        try:
            quorum.replies[me] = node.handle_replica_message(message)
        except DynamoError as exc:
            node.stats.quorum_failures += 1
            raise QuorumNotReachedError(operation, 0, 1, 1, f"{me}: {exc}") from exc
        quorum.counted = 1
        return quorum, node.durable_after(message)

    def _ask(
        self,
        quorum: _Quorum,
        make: _MakeRequest,
        target: str,
        owner: str | None,
    ) -> None:
        """Send one replica its request (the local one answers at once)."""
        node = self.node
        quorum.asked.append(target)
        message = make(owner)
        if target == node.node_id:
            # The local replica answers synchronously: no task, no message.
            try:
                answer = node.handle_replica_message(message)
            except DynamoError as exc:
                quorum.record(target, None, str(exc))
            else:
                flushed = node.durable_after(message)
                if flushed is not None:  # its acknowledgement waits for the flush
                    flushed.add_done_callback(
                        partial(self._on_local_flush, target, quorum, make, answer)
                    )
                    return
                quorum.record(target, answer, None)
            if quorum.spares:
                self._ask_spares(quorum, make)
        else:
            assert node.transport is not None
            reply = node.transport.request_future(target, message, node.config.request_timeout)
            node.track(reply)
            reply.add_done_callback(partial(self._on_reply, target, quorum, make))

    def _on_local_flush(
        self,
        target: str,
        quorum: _Quorum,
        make: _MakeRequest,
        reply: object,
        flushed: asyncio.Future[None],
    ) -> None:
        if flushed.cancelled():
            quorum.record(target, None, "flush cancelled")
        elif (error := flushed.exception()) is not None:
            quorum.record(target, None, f"flush failed: {error}")
        else:
            quorum.record(target, reply, None)
        if quorum.spares:
            self._ask_spares(quorum, make)

    def _ask_spares(self, quorum: _Quorum, make: _MakeRequest) -> None:
        while quorum.wants_spare():
            target, owner = quorum.spares.pop(0)
            quorum.contacted += 1
            self._ask(quorum, make, target, owner)

    def _on_reply(
        self,
        replica: str,
        quorum: _Quorum,
        make: _MakeRequest,
        reply: asyncio.Future[object],
    ) -> None:
        self._record_reply(replica, quorum, reply)
        if quorum.spares:
            self._ask_spares(quorum, make)

    def _record_reply(self, replica: str, quorum: _Quorum, reply: asyncio.Future[object]) -> None:
        if reply.cancelled():
            quorum.record(replica, None, "request cancelled")
            return
        error = reply.exception()
        if error is None:
            self.node.heard_from(replica)
            quorum.record(replica, reply.result(), None)
        elif isinstance(error, DynamoError):
            quorum.record(replica, None, str(error))
        else:  # a transport bug: count it as a failed replica, keep serving
            quorum.record(replica, None, f"{type(error).__name__}: {error}")

    def _reconcile(self, sets: Any) -> tuple[Version, ...]:
        versions = [version for versions in sets for version in versions]
        return self.node.resolver.reconcile(versions)

    def _result(self, key: bytes, siblings: tuple[Version, ...], replies: int) -> GetResult:
        return GetResult(key, siblings, replies)

    def _repair(self, key: bytes, position: int, quorum: _Quorum) -> None:
        node = self.node
        if not node.running:
            return
        replies = {
            replica: reply.versions
            for replica, reply in quorum.replies.items()
            if isinstance(reply, ReplicaReadReply)
        }
        sets = list(replies.values())
        if all(versions == sets[0] for versions in sets):
            return  # every replica answered the same set: nothing is stale
        merged = self._reconcile(sets)
        stale = [r for r, versions in replies.items() if set(versions) != set(merged)]
        if not merged or not stale:
            return
        for replica in stale:
            node.stats.read_repairs += 1
            repair = ReplicaWrite(key, position, merged, quorum.owners.get(replica))
            if replica == node.node_id:
                with contextlib.suppress(DynamoError):  # e.g. a full hint store
                    node.handle_replica_message(repair)
            else:
                node.spawn(node.request_quietly(replica, repair))
