"""The store service: every data and admin operation a front-end offers, in one place.

RESP, HTTP, the native protocol (and through it the Python client and the
``dtk get|put|del`` commands) parse a request, call one :class:`StoreService`
method, and format its typed answer; none of them talks to the node itself.
Errors are the kernel's and :class:`~dynamo_toolkit_server.errors.WrongTypeError`;
:mod:`dynamo_toolkit_server.errors` says what each one means for a client.

Plain reads need one answer even when siblings exist: :meth:`StoreService.read_one`
gives the newest sibling by write timestamp (for lists: the merge of all
siblings, see :func:`merge_lists`) and says whether siblings were folded.
Sibling-aware clients use :meth:`StoreService.get` / :meth:`StoreService.put`
with contexts instead.

Redis-style commands that overwrite (SET, LPUSH, ...) are read-modify-write:
they read the key, then write with the context they read, so the new version
supersedes every sibling the read saw.

Lists follow Redis: a push of ``[a, b]`` on the left leaves ``b`` first, ranges
are inclusive and count negative indices from the end, and removing the last
item deletes the key. ``strings_only`` list operations are the Redis ones:
they also refuse lists holding anything but strings (written through another
API) with a ``foreign`` :class:`WrongTypeError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import attrs

from dynamo_toolkit.anti_entropy_exchange import ExchangeStats
from dynamo_toolkit.config import validate_quorum
from dynamo_toolkit.consistency import LevelSpec, canonical_level
from dynamo_toolkit.membership_state import MemberStatus, Plan
from dynamo_toolkit.node import Node, NodeStats
from dynamo_toolkit.results import GetResult, PutResult
from dynamo_toolkit.values import Key, encode_key, key_position
from dynamo_toolkit_server.errors import WrongTypeError
from dynamo_toolkit_server.membership_report import membership_report

__all__ = [
    "KEEP",
    "Deletion",
    "MemberAction",
    "NodeStatus",
    "PendingHints",
    "Quorums",
    "ReadOne",
    "StoreService",
    "WrongTypeError",
    "as_list",
    "list_range",
    "merge_lists",
]


#: Returned by an :meth:`StoreService.update` change function: write nothing.
KEEP: Any = object()


@attrs.frozen
class ReadOne:
    """A plain read: one ``value`` (``None`` if absent), how many siblings were
    folded into it (1 when there was no conflict), and the full ``result``."""

    value: Any
    siblings: int
    result: GetResult

    @property
    def context(self) -> bytes:
        """The context covering every version read (computed on demand)."""
        return self.result.context


@attrs.frozen
class Deletion:
    """A delete: the tombstone's ``context`` (the read's, if nothing was
    deleted), how many replicas ``acknowledged`` it, and whether a value was
    ``deleted`` (a delete without context of an absent key writes nothing)."""

    context: bytes
    acknowledged: int
    deleted: bool


@attrs.frozen
class Quorums:
    """The store's replica count ``n`` and default read and write quorums."""

    n: int
    r: int | str
    w: int | str


@attrs.frozen
class NodeStatus:
    """A node as status pages show it (a snapshot; cheap enough to poll)."""

    node_id: str
    running: bool
    #: Members in the node's own order.
    members: tuple[str, ...]
    quorums: Quorums
    max_pair_bytes: int
    stats: NodeStats
    datacenter: str = ""
    rack: str = ""

    def summary(self) -> dict[str, Any]:
        """The fields every status answer shares: node, its place, running, members, N, R, W."""
        return {
            "node": self.node_id,
            "datacenter": self.datacenter,
            "rack": self.rack,
            "running": self.running,
            "members": sorted(self.members),
            "n": self.quorums.n,
            "r": self.quorums.r,
            "w": self.quorums.w,
        }


@attrs.frozen
class PendingHints:
    """Writes held for unreachable replicas: the ``total``, and per owner."""

    total: int
    by_owner: dict[str, int]


class MemberAction(enum.Enum):
    """A membership change an operator stages for the next commit."""

    LEAVE = "leave"
    REMOVE = "remove"
    KEEP = "keep"


_STAGED_STATUS = {
    MemberAction.LEAVE: MemberStatus.LEAVING,
    MemberAction.REMOVE: MemberStatus.REMOVED,
    MemberAction.KEEP: MemberStatus.UP,
}


def list_range(items: list[Any], start: int, stop: int) -> list[Any]:
    """``items[start..stop]`` with Redis LRANGE rules: inclusive, negative from the end."""
    length = len(items)
    if start < 0:
        start = max(length + start, 0)
    if stop < 0:
        stop = length + stop
    if start >= length or start > stop:
        return []
    return items[start : min(stop, length - 1) + 1]


_STRING_TYPES = frozenset((bytes, str))


def _check_string_items(items: list[Any]) -> None:
    """Refuse a list holding anything but strings (a ``foreign`` wrong type)."""
    # Joining succeeds only if every item is bytes (the usual list): the
    # fastest check at C speed. Then by exact type; subclasses take the walk.
    try:
        b"".join(items)
        return
    except TypeError:
        pass
    if set(map(type, items)) <= _STRING_TYPES:
        return
    for item in items:
        if not isinstance(item, bytes | str):
            raise WrongTypeError(foreign=True)


def as_list(value: Any, *, strings_only: bool = False) -> list[Any]:
    """``value`` read as a list (``[]`` if absent); :class:`WrongTypeError` if it is none.

    With ``strings_only`` (Redis), values that are neither strings nor lists of
    strings are refused as ``foreign``.
    """
    if value is None:
        return []
    if isinstance(value, list):
        if strings_only:
            _check_string_items(value)
        return value
    if strings_only and not isinstance(value, bytes | str):
        raise WrongTypeError(foreign=True)
    raise WrongTypeError()


def merge_lists(siblings: Sequence[list[Any]]) -> list[Any]:
    """Merge concurrent versions of a list.

    The result keeps the order of the longest sibling and appends, in sibling
    order, items the others added that it lacks (compared with multiplicity);
    so concurrent pushes all survive. Concurrent pops may resurrect an item:
    list merges cannot tell a pop from a push that never happened.
    """
    if not siblings:
        return []
    base = max(siblings, key=len)
    merged = list(base)
    for other in siblings:
        if other is base:
            continue
        remaining = list(merged)
        for item in other:
            if item in remaining:
                remaining.remove(item)
            else:
                merged.append(item)
    return merged


def _newest(result: GetResult) -> Any:
    live = [v for v in result.versions if v.value is not None]
    newest = max(range(len(live)), key=lambda i: (live[i].timestamp, i))
    return result.values[newest]


#: A queued read-modify-write: its change function and its caller's future.
_Queued = tuple[Callable[[Any], tuple[Any, Any]], "asyncio.Future[Any]"]


class StoreService:
    """A node's client-facing operations, shared by every protocol front-end."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._locks: dict[bytes, tuple[asyncio.Lock, list[int]]] = {}
        # Read-modify-writes waiting for their key's batch, by (key, r, w).
        self._queues: dict[tuple[bytes, LevelSpec | None, LevelSpec | None], list[_Queued]] = {}
        self._runners: set[asyncio.Future[None]] = set()

    async def get(self, key: Key, *, r: LevelSpec | None = None) -> GetResult:
        """Read all siblings and their covering context."""
        return await self.node.get(key, r=r)

    async def put(
        self, key: Key, value: object, context: bytes | None = None, *, w: LevelSpec | None = None
    ) -> PutResult:
        """Write ``value`` superseding what ``context`` covers."""
        return await self.node.put(key, value, context, w=w)

    async def delete(
        self, key: Key, context: bytes | None = None, *, w: LevelSpec | None = None
    ) -> PutResult:
        """Write a tombstone superseding what ``context`` covers."""
        return await self.node.delete(key, context, w=w)

    async def read_one(self, key: Key, *, r: LevelSpec | None = None) -> ReadOne:
        """One value for clients that cannot handle siblings (see module docstring)."""
        return self.read_one_of(await self.node.get(key, r=r))

    @staticmethod
    def read_one_of(result: GetResult) -> ReadOne:
        """The :meth:`read_one` answer for a read already made."""
        if not result.values:
            return ReadOne(None, 0, result)
        if len(result.values) == 1:
            return ReadOne(result.values[0], 1, result)
        if all(isinstance(v, list) for v in result.values):
            return ReadOne(merge_lists(result.values), len(result.values), result)
        return ReadOne(_newest(result), len(result.values), result)

    async def overwrite(
        self, key: Key, value: object, *, r: LevelSpec | None = None, w: LevelSpec | None = None
    ) -> PutResult:
        """Redis SET semantics: supersede the versions this node knows of.

        On a replica of the key, its local versions give the context (no
        network round trip); elsewhere a read with R gives it. Versions the
        context misses (written elsewhere, not yet here) stay as siblings, and
        a plain read shows the newest.
        """
        placement = self.node.placement(key_position(encode_key(key)))
        if self.node.node_id in placement.replicas:
            return await self.node.put(key, value, None, w=w, supersede_local=True)
        context = (await self.node.get(key, r=r)).context
        return await self.node.put(key, value, context, w=w)

    async def remove(
        self, key: Key, *, r: LevelSpec | None = None, w: LevelSpec | None = None
    ) -> bool:
        """Redis DEL semantics: tombstone the key if it exists; True if it did."""
        return (await self.delete_versions(key, None, r=r, w=w)).deleted

    async def delete_versions(
        self,
        key: Key,
        context: bytes | None = None,
        *,
        r: LevelSpec | None = None,
        w: LevelSpec | None = None,
    ) -> Deletion:
        """Delete what ``context`` covers or, without one, every sibling a read sees.

        A context-less tombstone would only become one more sibling, so
        without a context the key is read first (with ``r``); an absent key is
        then left alone.
        """
        if context is None:
            current = await self.node.get(key, r=r)
            if not current.values:
                return Deletion(current.context, 0, False)
            context = current.context
        result = await self.node.delete(key, context, w=w)
        return Deletion(result.context, result.acknowledged, True)

    @contextlib.asynccontextmanager
    async def key_lock(self, key: Key) -> AsyncIterator[None]:
        """Serialise read-modify-writes of ``key`` coordinated by this node.

        Without it, two concurrent updates through one node read the same
        context and the node's vector-clock entry orders them: the first
        write would be silently superseded. Updates through different nodes
        still race, and become siblings (which :meth:`read_one` folds).
        """
        stored = encode_key(key)
        entry = self._locks.get(stored)
        if entry is None:
            entry = self._locks[stored] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[stored]

    async def update(
        self,
        key: Key,
        change: Callable[[Any], tuple[Any, Any]],
        *,
        r: LevelSpec | None = None,
        w: LevelSpec | None = None,
    ) -> Any:
        """Read-modify-write one value, serialised per key on this node.

        ``change(current)`` gets the current value (``None`` if absent;
        siblings folded as :meth:`read_one` does) and returns
        ``(new_value, answer)``: :data:`KEEP` writes nothing, ``None`` deletes.
        Returns ``answer``; an exception ``change`` raises reaches this caller
        only, and its change is not applied.

        Updates of one key that arrive while one is in flight are applied
        together, in arrival order, by one read and one write (a group
        commit): a hot key costs a quorum round per batch, not per update.
        Each caller still gets the answer its own change computed. If the
        batch's write fails, every caller of the batch gets that error.
        """
        group = (encode_key(key), r, w)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(group)
        if queue is not None:
            queue.append((change, future))
        else:
            # A task, not this caller: it starts on the next loop turn, so the
            # updates arriving in this one join its first batch. Run at once,
            # each push to a hot list on one node would rewrite the list by
            # itself (measured in process: 75 us per push instead of 14).
            self._queues[group] = [(change, future)]
            runner = asyncio.ensure_future(self._apply_queued(key, group))
            self._runners.add(runner)
            runner.add_done_callback(self._runners.discard)
        return await future

    async def _apply_queued(
        self, key: Key, group: tuple[bytes, LevelSpec | None, LevelSpec | None]
    ) -> None:
        """Apply the queued changes of ``group`` batch by batch until none is left."""
        queue = self._queues[group]
        _, r, w = group
        try:
            async with self.key_lock(key):
                while queue:
                    batch = queue[:]
                    queue.clear()
                    await self._apply_batch(key, batch, r, w)
        except BaseException:
            for _, future in queue:
                future.cancel()
            raise
        finally:
            del self._queues[group]

    async def _apply_batch(
        self, key: Key, batch: list[_Queued], r: LevelSpec | None, w: LevelSpec | None
    ) -> None:
        """One read, every change of ``batch`` in order, at most one write."""
        try:
            current = await self.read_one(key, r=r)
            value = current.value
            wrote = False
            outcomes: list[tuple[asyncio.Future[Any], Any, bool]] = []
            for change, future in batch:
                if future.done():  # its caller has gone: apply nothing for it
                    continue
                try:
                    new, answer = change(value)
                except Exception as exc:  # that caller's error; the value stays
                    outcomes.append((future, exc, True))
                    continue
                if new is not KEEP:
                    value, wrote = new, True
                outcomes.append((future, answer, False))
            if wrote:
                if value is not None:
                    await self.node.put(key, value, current.context, w=w)
                elif current.value is not None:
                    await self.node.delete(key, current.context, w=w)
        except Exception as exc:  # the batch failed: each of its callers hears so
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for future, outcome, failed in outcomes:
            if future.done():
                continue
            if failed:
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def update_list(
        self,
        key: Key,
        change: Callable[[list[Any]], tuple[list[Any] | None, Any]],
        *,
        r: LevelSpec | None = None,
        w: LevelSpec | None = None,
        strings_only: bool = False,
    ) -> Any:
        """Read-modify-write a list (see :meth:`update`).

        ``change(current)`` gets the current list (``[]`` if absent; siblings
        merged) and returns ``(new_list_or_None, answer)``; ``None`` means no
        write. An empty new list deletes the key, as Redis does. Raises
        :class:`WrongTypeError` if the key holds a non-list (or, with
        ``strings_only``, a list of anything but strings).
        """

        def on_list(value: Any) -> tuple[Any, Any]:
            if value is not None and not isinstance(value, list):
                raise WrongTypeError()
            current = list(value or [])
            if strings_only:
                _check_string_items(current)
            new, answer = change(current)
            if new is None:
                return KEEP, answer
            return (new or None), answer

        return await self.update(key, on_list, r=r, w=w)

    # -- lists -------------------------------------------------------------------------

    async def push(
        self,
        key: Key,
        items: Sequence[Any],
        *,
        left: bool,
        r: LevelSpec | None = None,
        w: LevelSpec | None = None,
        strings_only: bool = False,
    ) -> int:
        """LPUSH (``left``) or RPUSH ``items``; the list's new length."""
        pushed = list(items)

        def change(current: list[Any]) -> tuple[list[Any], int]:
            # Redis pushes one by one, so a left push of a, b leaves b at the head.
            new = pushed[::-1] + current if left else current + pushed
            return new, len(new)

        length: int = await self.update_list(key, change, r=r, w=w, strings_only=strings_only)
        return length

    async def pop(
        self,
        key: Key,
        count: int | None = None,
        *,
        left: bool,
        r: LevelSpec | None = None,
        w: LevelSpec | None = None,
        strings_only: bool = False,
    ) -> list[Any] | None:
        """LPOP (``left``) or RPOP up to ``count`` items (one if ``None``).

        Returns the items in the order popped, or ``None`` if the key held no
        list (or an empty one). ``count`` must not be negative.
        """
        taken = 1 if count is None else count

        def change(current: list[Any]) -> tuple[list[Any] | None, list[Any] | None]:
            if not current:
                return None, None
            if taken == 0:
                return None, []
            if left:
                return current[taken:], current[:taken]
            return current[: max(len(current) - taken, 0)], current[-taken:][::-1]

        popped: list[Any] | None = await self.update_list(
            key, change, r=r, w=w, strings_only=strings_only
        )
        return popped

    async def read_list(
        self, key: Key, *, r: LevelSpec | None = None, strings_only: bool = False
    ) -> list[Any]:
        """The list at ``key`` as a plain read sees it (``[]`` if absent)."""
        return as_list((await self.read_one(key, r=r)).value, strings_only=strings_only)

    async def list_length(
        self, key: Key, *, r: LevelSpec | None = None, strings_only: bool = False
    ) -> int:
        """LLEN: the length of the list at ``key`` (0 if absent)."""
        return len(await self.read_list(key, r=r, strings_only=strings_only))

    async def list_slice(
        self,
        key: Key,
        start: int,
        stop: int,
        *,
        r: LevelSpec | None = None,
        strings_only: bool = False,
    ) -> list[Any]:
        """LRANGE: items ``start..stop`` of the list at ``key`` (see :func:`list_range`)."""
        return self.list_slice_of(await self.get(key, r=r), start, stop, strings_only=strings_only)

    @staticmethod
    def list_slice_of(
        result: GetResult, start: int, stop: int, *, strings_only: bool = False
    ) -> list[Any]:
        """The :meth:`list_slice` answer for a read already made.

        For front-ends that cache answers by the encoded version they read.
        """
        value = StoreService.read_one_of(result).value
        return list_range(as_list(value, strings_only=strings_only), start, stop)

    # -- status and administration --------------------------------------------------

    def quorums(self) -> Quorums:
        """The store's N and default R and W."""
        config = self.node.config
        return Quorums(config.n, config.r, config.w)

    def check_quorums(self, r: LevelSpec, w: LevelSpec) -> tuple[int | str, int | str]:
        """Refuse ``r``/``w`` outside ``1..N`` or naming no consistency level
        (an ``InvalidQuorumError``); else both as counts or canonical level names."""
        validate_quorum(self.node.config.n, r, w)
        return canonical_level(r), canonical_level(w)

    def status(self) -> NodeStatus:
        """Who this node is, its settings and its counters."""
        node = self.node
        config = node.config
        return NodeStatus(
            node_id=node.node_id,
            running=node.running,
            members=tuple(node.members),
            quorums=Quorums(config.n, config.r, config.w),
            max_pair_bytes=config.max_pair_bytes,
            stats=attrs.evolve(node.stats),
            datacenter=node.info.datacenter,
            rack=node.info.rack,
        )

    def pending_hints(self) -> PendingHints:
        """Hints this node holds for other replicas (reads its hint store: not free)."""
        hints = self.node.hints
        return PendingHints(len(hints), hints.counts())

    def local_keys(self) -> int:
        """Keys held by this node's replicas (not the whole cluster's); 0 if unknown."""
        try:
            return len(self.node.engine)
        except Exception:  # a closed engine must not break a status page
            return 0

    def membership(self) -> dict[str, Any]:
        """This node's view of the membership (see :func:`membership_report`)."""
        return membership_report(self.node)

    def stage(self, node_id: str, action: MemberAction) -> dict[str, Any]:
        """Stage ``action`` on member ``node_id``; the membership view after it."""
        self.node.membership.stage(node_id, _STAGED_STATUS[action])
        return self.membership()

    def plan(self) -> Plan:
        """What committing the staged membership changes would move."""
        return self.node.membership.plan()

    def placement(self, plan: Plan) -> list[str]:
        """Per datacenter, the replicas per key the replicator wants and can place
        once ``plan`` is committed (empty for replicators with no such promise)."""
        state = self.node.membership.state
        owners = {info.node_id: info for info in state.owner_infos(plan.owners_after)}
        report = self.node.replicator.datacenter_placement(self.node.config.n, owners)
        return [datacenter.describe() for datacenter in report]

    def commit(self) -> Plan:
        """Commit the staged membership changes; the plan committed."""
        return self.node.membership.commit()

    async def repair(self) -> ExchangeStats:
        """A full anti-entropy pass with every peer; what it did."""
        return await self.node.repair_all()
