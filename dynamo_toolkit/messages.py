"""Messages nodes exchange: frozen values, the same over every transport."""

from __future__ import annotations

import attrs

from dynamo_toolkit.versioning import Version

__all__ = ["Ack", "Heartbeat", "ReplicaRead", "ReplicaReadReply", "ReplicaWrite"]


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
