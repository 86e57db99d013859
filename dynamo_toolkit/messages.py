"""Messages nodes exchange: frozen values, the same over every transport.

The set is closed: :data:`Message` names every request a node answers and
:data:`Reply` every answer it gives, so a handler can ``match`` on them and
have mypy check that no kind is forgotten (see :meth:`Node.handle
<dynamo_toolkit.node.Node.handle>`). :mod:`dynamo_toolkit.message_codec` gives each a
wire form.
"""

from __future__ import annotations

from typing import TypeAlias, TypeGuard

import attrs

from dynamo_toolkit.versioning import VectorClock, Version

__all__ = [
    "Ack",
    "CollectTombstones",
    "ForwardedWrite",
    "ForwardedWriteReply",
    "Gossip",
    "Heartbeat",
    "Message",
    "Ping",
    "PingAck",
    "PingReq",
    "RangeQuery",
    "RangeReply",
    "RecordsQuery",
    "RecordsReply",
    "ReplicaMessage",
    "ReplicaRead",
    "ReplicaReadReply",
    "ReplicaWrite",
    "Reply",
    "TreeQuery",
    "TreeReply",
    "is_message",
]


@attrs.frozen
class ReplicaWrite:
    """Coordinator -> replica: reconcile ``versions`` into the stored sibling set.

    With ``hint_for``, the receiver is a stand-in (sloppy quorum): it holds the
    write as a hint for that owner and hands it over when the owner is back.
    """

    key: bytes
    position: int
    versions: tuple[Version, ...]
    hint_for: str | None = None


@attrs.frozen
class Ack:
    """Replica -> coordinator: the write is stored."""


@attrs.frozen
class ReplicaRead:
    """Coordinator -> replica: send the versions you hold for ``key``.

    With ``hint_for``, a stand-in answers with what it holds for that owner.
    """

    key: bytes
    hint_for: str | None = None


@attrs.frozen
class ReplicaReadReply:
    """Replica -> coordinator: the stored sibling set (empty if none)."""

    versions: tuple[Version, ...]


@attrs.frozen
class Heartbeat:
    """One-way evidence of life, sent every heartbeat interval."""

    sent_at: float


@attrs.frozen
class Ping:
    """An active detector's direct probe; ``suspects`` are ``(member, incarnation)``."""

    suspects: tuple[tuple[str, int], ...] = ()


@attrs.frozen
class PingAck:
    """The answer to a probe: the probed member's current incarnation."""

    incarnation: int


@attrs.frozen
class PingReq:
    """Ask the receiver to probe ``target`` on the sender's behalf (SWIM's indirect probe)."""

    target: str
    timeout: float


@attrs.frozen
class TreeQuery:
    """Anti-entropy: ask a replica about its digest of ``partition``.

    ``level`` -1 asks for the root hash; a level below the digest's depth asks
    for the children hashes of the nodes ``indices``; the depth itself asks
    for the items of the leaves ``indices``.
    """

    partition: int
    level: int
    indices: tuple[int, ...] = ()


@attrs.frozen
class TreeReply:
    """The answer to a :class:`TreeQuery`: root ``[hash]``, lists of child hashes,
    or ``{key: record_hash}`` maps, one per index asked."""

    depth: int
    items: tuple[object, ...]


@attrs.frozen
class RecordsQuery:
    """Anti-entropy: send the records of ``keys``."""

    keys: tuple[bytes, ...]


@attrs.frozen
class RecordsReply:
    """``(key, position, versions)`` for each key asked that the replica holds."""

    records: tuple[tuple[bytes, int, tuple[Version, ...]], ...]


@attrs.frozen
class CollectTombstones:
    """Remove these tombstoned records (``(key, position, record_hash)``) if unchanged:
    every replica of the partition was seen to hold exactly them."""

    entries: tuple[tuple[bytes, int, bytes], ...]


@attrs.frozen
class Gossip:
    """A member's view of the cluster (push); the reply is the merged view (pull)."""

    state: tuple[object, ...]


@attrs.frozen
class RangeQuery:
    """Handoff: records with positions in ``[start, last]`` after ``(after_position, after_key)``.

    ``last`` is inclusive (2**64 itself does not fit msgpack's integers);
    ``after_key`` is ``None`` for the first page.
    """

    start: int
    last: int
    after_position: int
    after_key: bytes | None
    limit: int


@attrs.frozen
class RangeReply:
    """A page of ``(key, position, versions)`` in position order; ``more`` unless the last."""

    records: tuple[tuple[bytes, int, tuple[Version, ...]], ...]
    more: bool


@attrs.frozen
class ForwardedWrite:
    """Non-replica node -> a replica: coordinate this write for me (Dynamo §4.5).

    ``value`` is the encoded value (``None`` for a delete); ``context`` the
    client's opaque context; ``w`` and ``n`` the request's own, if any.
    ``write_id`` names this forwarding (the sender's id and a counter): a
    replica that receives the same id twice (a duplicated or retried message)
    coordinates the write once and answers both alike. ``""`` opts out.
    ``level`` is the request's consistency level by name, if it has one of
    its own (then ``w`` is ``None``); a node that predates levels ignores it
    and writes at the store's W.
    """

    key: bytes
    value: bytes | None
    context: bytes | None
    w: int | None
    n: int | None
    write_id: str = ""
    level: str = ""


@attrs.frozen
class ForwardedWriteReply:
    """The replica's answer: the new version's clock and acknowledgements, or
    why its quorum failed (``error`` with the counts of the failed attempt)."""

    clock: VectorClock | None
    acknowledged: int
    error: str | None = None
    required: int = 0
    contacted: int = 0


#: Requests one replica's storage answers (see ``Node.handle_replica_message``).
ReplicaMessage: TypeAlias = (
    ReplicaWrite | ReplicaRead | TreeQuery | RecordsQuery | CollectTombstones
)

#: Every message a node is sent: requests, probes, gossip and one-way heartbeats.
Message: TypeAlias = (
    ReplicaMessage | Heartbeat | Ping | PingReq | Gossip | RangeQuery | ForwardedWrite
)

#: Every answer a node gives to a :data:`Message` (a heartbeat gets ``None``).
Reply: TypeAlias = (
    Ack
    | ReplicaReadReply
    | PingAck
    | TreeReply
    | RecordsReply
    | Gossip
    | RangeReply
    | ForwardedWriteReply
)

# isinstance() takes a union directly, but a tuple keeps the check cheap on the
# hot path and independent of how the alias is spelled.
_MESSAGE_TYPES: tuple[type, ...] = (
    ReplicaWrite,
    ReplicaRead,
    TreeQuery,
    RecordsQuery,
    CollectTombstones,
    Heartbeat,
    Ping,
    PingReq,
    Gossip,
    RangeQuery,
    ForwardedWrite,
)


def is_message(value: object) -> TypeGuard[Message]:
    """Whether ``value`` is one of the requests a node answers (a :data:`Message`)."""
    return isinstance(value, _MESSAGE_TYPES)
