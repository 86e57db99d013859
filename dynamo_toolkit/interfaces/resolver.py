"""The ``ConflictResolver`` interface: new versions and reconciliation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

from dynamo_toolkit.versioning import VectorClock, Version

__all__ = ["ConflictResolver"]


class ConflictResolver(ABC):
    """Decides the clock of a new write and which versions survive together.

    ``reconcile`` is applied by replicas when a write lands and by the
    coordinator when replies meet; it must be commutative, associative and
    idempotent over sets of versions, so that replicas converge whatever order
    writes arrive in.
    """

    @abstractmethod
    def new_version(
        self,
        context: VectorClock,
        actor: str,
        value: bytes | None,
        timestamp: float,
        local: Sequence[Version] = (),
    ) -> Version:
        """Create the version a coordinator ``actor`` writes.

        ``context`` is the clock the client read (empty for a blind write);
        ``local`` the versions the coordinator holds for the key, if it is a
        replica; ``value`` ``None`` writes a tombstone.
        """

    def blind_write_context(self, local: Sequence[Version]) -> VectorClock:
        """The context a write made without one (a *blind* write) is taken to have read.

        ``local`` holds the versions the coordinator holds for the key (empty
        when it is not a replica). The coordinator passes the answer to
        :meth:`new_version` as the context. This default, an empty clock, makes
        a blind write concurrent with every version it does not happen to
        descend; a resolver may instead let it supersede what the coordinator
        holds, as a Redis ``SET`` would. Pure: no I/O.
        """
        return VectorClock()

    @abstractmethod
    def reconcile(self, versions: Iterable[Version]) -> tuple[Version, ...]:
        """Return the versions that survive together, in a canonical order."""
