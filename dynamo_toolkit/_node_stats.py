"""Counters a node keeps about its own work."""

from __future__ import annotations

import attrs

__all__ = ["NodeStats"]


@attrs.define
class NodeStats:
    """Counters a node keeps about its own work."""

    reads: int = 0
    writes: int = 0
    quorum_failures: int = 0
    read_repairs: int = 0
    replica_writes: int = 0
    replica_reads: int = 0
    hinted_requests: int = 0
    forwarded_writes: int = 0  # writes handed to a replica to coordinate
