"""The ``dvv`` conflict resolver: dotted version vectors (Preguiça et al., 2010).

The problem it solves. Under ``vector-clock`` the actor of a clock is the
coordinating node (Dynamo §4.4). Two clients that read the same context and
write through the same replica get clocks ``{n1: 4}`` and ``{n1: 5}``: the
second *looks* as if it saw the first, and replaces it. The first update is
lost, although nobody saw it. Riak's older fix (keep both, merge the clocks)
does not lose updates but cannot tell later which siblings a context saw, so
siblings pile up ("sibling explosion").

Dotted version vectors separate the *dot* of a version, the one event that
created it (the coordinator's id and a counter), from its *causal past* (the
context the client read). A version is obsolete exactly when another version's
past covers its dot. A write therefore supersedes the siblings its context
saw, and only those; every truly concurrent sibling survives.

How the dot is carried. A :class:`~dynamo_toolkit.versioning.Version` holds
one :class:`~dynamo_toolkit.versioning.VectorClock` and no other metadata.
Contexts are merges of those clocks, and the conformance suite compares them
as plain vector clocks. So the dot has to live inside a plain clock entry, and
it must not make the clock *look* as if it covered events it did not see. A
dot ``(n1, 5)`` stored as the entry ``n1: 5`` would claim ``n1``'s events 1 to
4 as well. That is harmless when the context already covers them (the dot is
*contiguous* with the past) and is the false dominance above when it does not.

The resolver gives each coordinator *branches*: extra clock entries named
``n1\x1f1``, ``n1\x1f2``, ... beside the plain ``n1`` (branch 0). The dot's
counter is one past every counter the coordinator has used for the key on any
branch, so ``(node, counter)`` names one write, as in the paper. The dot goes
on the lowest *free* branch, and a new branch is opened only when none is
free. A branch is free when

* the client's context covers its newest dot: the new dot continues a chain
  in which every dot covers the one before it; or
* a version the coordinator holds, other than the one that made the newest
  dot, has that dot in its past: the new dot skips dots that another write
  has already seen. A version the new clock seems to cover without having
  seen it is then in that other write's past, so nothing is lost.

Then a clock that seems to cover a version either has it in its past or
covers a version that another write already saw. ``reconcile`` is ordinary
vector-clock reconciliation over these entries, and once every replica has
every write the survivors are exactly the writes no other write saw: no lost
update and no false sibling (``tests/unit/test_dvv.py`` checks both over
generated histories). Without concurrency through one coordinator only branch
0 is used, and the clocks are exactly ``vector-clock``'s.

The cost is metadata. A branch entry, once created, stays in every descendant
clock, because a clock must descend the context it was written with. A new
branch is opened only when the newest dot of every branch is a sibling the
coordinator still holds that no other write saw, so a coordinator has at most
as many branches as the most of its own concurrent siblings it ever held for
the key at once (one more per write stamped at the very instant of the dot it
follows, see ``_seen_elsewhere``). A key's clock has one entry per coordinator and branch.
Published DVVs have one entry per replica. The difference buys compatibility
with the kernel's plain vector clocks and contexts, and
``dtk bench resolvers`` measures it.

Blind writes. A write without a context (every RESP ``SET``, an HTTP
``PUT`` without one, the kernel's ``put`` without one) saw nothing, so under
the rule above it supersedes nothing: repeated blind writes to a key would
keep every value as a sibling, and every request on the key would pay for
them. ``blind_writes`` chooses what such a write supersedes:

``"supersede"`` (the default)
    The versions the coordinating replica holds for the key: the write is
    made as if its context were the merge of their clocks (see
    :meth:`DottedVersionVectorResolver.blind_write_context`). This is what a
    Redis or Cassandra user expects of ``SET``. Repeated blind writes keep
    one version, and a value the coordinator held is replaced, by request.
    Versions the coordinator did not hold yet (written through another
    replica and not yet arrived) still survive as siblings. Writes with a
    context are untouched by this choice.
``"sibling"``
    Nothing: the blind write is concurrent with everything stored, as the
    paper's rule says. No value is ever replaced without having been read,
    and siblings grow by one per blind write until a write with a context
    supersedes them.

What it needs: the coordinator must be a replica of the key. Its local
versions then tell it every dot and branch it has already used for the key.
:meth:`Cluster.coordinator_for <dynamo_toolkit.in_process_cluster.Cluster.coordinator_for>`
and partition-aware clients route writes that way, and the kernel forwards
writes a non-replica receives to a replica (``forward_writes``, on by
default), as Riak forwards every put, for the same reason. Without it, a
coordinator that holds no copy of the key (``local`` empty) can only continue
from the context. Its dot may then repeat
one it issued earlier for the key, and updates can be lost as under
``vector-clock``. There is no pruning: branches cannot be dropped without
losing exactly the information that prevents lost updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import ConflictResolver
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.versioning import VectorClock, Version
from dynamo_toolkit_plugins.resolution.vector_clock import VectorClockResolver

__all__ = [
    "BLIND_WRITES",
    "BRANCH_SEPARATOR",
    "DottedVersionVectorResolver",
    "branch_entry",
    "dtk_register_components",
    "split_entry",
]

#: Separates a node id from a branch number in a clock entry's actor name.
#: A control character (ASCII unit separator), so no real node id contains it.
BRANCH_SEPARATOR = "\x1f"

#: The ``blind_writes`` choices: what a write without a context supersedes.
BLIND_WRITES = ("supersede", "sibling")


def branch_entry(actor: str, branch: int) -> str:
    """The clock-entry name of ``actor``'s ``branch`` (branch 0 is ``actor`` itself)."""
    return actor if branch == 0 else f"{actor}{BRANCH_SEPARATOR}{branch}"


def split_entry(name: str) -> tuple[str, int]:
    """Inverse of :func:`branch_entry`: ``(node id, branch)`` of a clock-entry name."""
    actor, separator, branch = name.rpartition(BRANCH_SEPARATOR)
    if not separator or not branch.isdigit():
        return name, 0
    return actor, int(branch)


def _branch_tips(actor: str, clocks: Iterable[VectorClock]) -> dict[int, int]:
    """The highest counter on each of ``actor``'s branches across ``clocks``."""
    tips: dict[int, int] = {}
    for clock in clocks:
        for entry in clock.entries:
            owner, branch = split_entry(entry.actor)
            if owner == actor and entry.counter > tips.get(branch, 0):
                tips[branch] = entry.counter
    return tips


def _seen_elsewhere(name: str, tip: int, local: Sequence[Version]) -> bool:
    """True if a local version other than the one that made dot ``tip`` on ``name`` saw it.

    A version's own entry carries the version's own timestamp, so a version
    whose entry ``name`` is ``tip`` with another timestamp is a descendant. A
    descendant written at the very same instant is taken for the dot's own
    version, which only keeps a branch in use: the safe side.
    """
    for version in local:
        for entry in version.clock.entries:
            if entry.actor == name:
                if entry.counter == tip and entry.timestamp != version.timestamp:
                    return True
                break
    return False


class DottedVersionVectorResolver(ConflictResolver):
    """Dotted version vectors on per-coordinator branches (see the module docstring).

    A write supersedes exactly the versions its context saw. Concurrent writes
    through one coordinator become siblings instead of replacing one another.
    ``blind_writes`` says what a write without a context supersedes:
    ``"supersede"`` (default) the versions its coordinator holds,
    ``"sibling"`` nothing. Clocks are never pruned.
    """

    def __init__(self, blind_writes: str = "supersede") -> None:
        if blind_writes not in BLIND_WRITES:
            raise ConfigurationError(
                f"blind_writes must be one of {', '.join(BLIND_WRITES)}, got {blind_writes!r}"
            )
        self.blind_writes = blind_writes
        # Reconciliation over exact clocks is plain vector-clock reconciliation.
        self._reconciler = VectorClockResolver(prune=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(blind_writes={self.blind_writes!r})"

    def blind_write_context(self, local: Sequence[Version]) -> VectorClock:
        """The merge of the ``local`` clocks (``"supersede"``), or an empty clock (``"sibling"``).

        A merge of clocks the coordinator holds covers every dot it has
        issued for the key on every branch, so the blind write's dot goes on
        branch 0: a blind write never opens a branch.
        """
        clock = VectorClock()
        if self.blind_writes == "supersede":
            for version in local:
                clock = clock.merge(version.clock)
        return clock

    def new_version(
        self,
        context: VectorClock,
        actor: str,
        value: bytes | None,
        timestamp: float,
        local: Sequence[Version] = (),
    ) -> Version:
        """The version of a write by ``actor``: its dot is added to ``context``.

        The dot goes on the lowest branch of ``actor`` whose latest dot (known
        from ``context`` and the ``local`` versions) the context covers, or on a
        new branch if the context covers none.
        """
        if BRANCH_SEPARATOR in actor:
            raise ValueError(f"node id {actor!r} contains the dvv branch separator \\x1f")
        seen = _branch_tips(actor, (context,))
        tips = _branch_tips(actor, (context, *(version.clock for version in local)))
        # A branch can take the dot if the client saw its newest dot (the
        # branch stays a chain), or if another write already saw that dot: the
        # dots the new one skips are then in that write's past, never lost.
        # Branch 0 is free when never used.
        free = [
            branch
            for branch, tip in tips.items()
            if seen.get(branch, 0) >= tip
            or _seen_elsewhere(branch_entry(actor, branch), tip, local)
        ]
        if 0 not in tips:
            free.append(0)
        # Otherwise the lowest branch number not in use yet.
        branch = min(free) if free else min(set(range(len(tips) + 1)) - set(tips))
        counter = max(tips.values(), default=0) + 1
        clock = context.increment(branch_entry(actor, branch), timestamp, at_least=counter - 1)
        return Version(clock, value, timestamp)

    def reconcile(self, versions: Iterable[Version]) -> tuple[Version, ...]:
        """Survivors: versions whose dot no other version covers, deduplicated, sorted."""
        return self._reconciler.reconcile(versions)


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``dvv`` conflict resolver."""
    registry.add_conflict_resolver("dvv", DottedVersionVectorResolver)
