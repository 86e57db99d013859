"""The ``lww`` conflict resolver: last write wins, one version per key.

Clocks are still maintained (and pruned) so contexts keep working, but
reconciliation never keeps siblings: the greatest version by a total order
(timestamp, then clock, then tombstone-ness, then value bytes) wins, so every
replica picks the same winner whatever order versions arrive in. Concurrent
writes are silently lost, the usual price of LWW.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.versioning import VectorClock, Version
from dynamo_toolkit_plugins.resolution.vector_clock import VectorClockResolver

__all__ = ["LastWriteWinsResolver", "dtk_register_components", "lww_key"]


def lww_key(version: Version) -> tuple[float, list[list[object]], bool, bytes]:
    """The total order LWW picks the greatest of.

    On an exact timestamp tie the clock's wire form decides, then a tombstone
    beats a value (a delete wins a perfect tie), then the value bytes.
    """
    value = version.value
    return (version.timestamp, version.clock.to_wire(), value is None, value or b"")


class LastWriteWinsResolver(VectorClockResolver):
    """Keeps only the version with the latest timestamp (ties broken deterministically).

    A write made with a context is stamped later than every write that context
    saw (even if the coordinator's wall clock lags behind the one that wrote
    them), so a read-modify-write never loses to what it read. Clocks are
    made and pruned as by :class:`VectorClockResolver`, whose parameters it takes.
    """

    def new_version(
        self,
        context: VectorClock,
        actor: str,
        value: bytes | None,
        timestamp: float,
        local: Sequence[Version] = (),
    ) -> Version:
        """Version of a write by ``actor``, stamped after everything ``context`` saw."""
        # Clock entries carry the timestamps of the writes that advanced them;
        # pruning drops the oldest first, so the latest one is always still there.
        seen = max((entry.timestamp for entry in context.entries), default=-math.inf)
        if seen >= timestamp:
            timestamp = math.nextafter(seen, math.inf)
        return super().new_version(context, actor, value, timestamp, local)

    def reconcile(self, versions: Iterable[Version]) -> tuple[Version, ...]:
        """The single greatest version by :func:`lww_key`, or ``()`` for no versions."""
        winner = max(versions, key=lww_key, default=None)
        return () if winner is None else (winner,)


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``lww`` conflict resolver."""
    registry.add_conflict_resolver("lww", LastWriteWinsResolver)
