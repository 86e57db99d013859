"""Consistency levels: how many replicas, and from which datacenters, must answer.

Pure logic, no I/O. A request asks for a numeric count (R or W) or a named
level; :func:`requirement` turns it, given how a key's replicas spread over
datacenters and the coordinator's own datacenter, into a
:class:`Requirement` that a coordinator checks replies against. The names
and meanings are Cassandra's:

================  ==========================================================
level             replies needed
================  ==========================================================
``ONE``/``TWO``/  1, 2 or 3 from any datacenter
``THREE``
``QUORUM``        a majority of all replicas: ``floor(N / 2) + 1``
``ALL``           every replica
``LOCAL_ONE``     1 from the coordinator's datacenter
``LOCAL_QUORUM``  a majority of the coordinator's datacenter's replicas
``EACH_QUORUM``   a majority of each datacenter's replicas
================  ==========================================================

A level no replica set can meet (``LOCAL_QUORUM`` where the local
datacenter holds no replica, ``THREE`` with N=2) is refused before any
replica is asked, with a message that names the level and the datacenter.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

from dynamo_toolkit.errors import ConfigurationError

__all__ = ["ConsistencyLevel", "Requirement", "parse_level", "requirement"]


class ConsistencyLevel(enum.Enum):
    """A named consistency level (see the module's table)."""

    ONE = "ONE"
    TWO = "TWO"
    THREE = "THREE"
    QUORUM = "QUORUM"
    ALL = "ALL"
    LOCAL_ONE = "LOCAL_ONE"
    LOCAL_QUORUM = "LOCAL_QUORUM"
    EACH_QUORUM = "EACH_QUORUM"

    @property
    def local(self) -> bool:
        """True for the levels only the coordinator's datacenter answers."""
        return self in (ConsistencyLevel.LOCAL_ONE, ConsistencyLevel.LOCAL_QUORUM)


_COUNTS = {ConsistencyLevel.ONE: 1, ConsistencyLevel.TWO: 2, ConsistencyLevel.THREE: 3}


def parse_level(text: str | int) -> ConsistencyLevel | int:
    """A level by name (any case, ``-`` or ``_``) or a positive count; else a clear error."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 1:
            raise ConfigurationError(f"a replica count must be at least 1, got {text}")
        return text
    if isinstance(text, str):
        name = text.strip().upper().replace("-", "_")
        if name.isdigit():
            return parse_level(int(name))
        try:
            return ConsistencyLevel(name)
        except ValueError:
            pass
    names = ", ".join(level.value for level in ConsistencyLevel)
    raise ConfigurationError(f"unknown consistency level {text!r}: a count or one of {names}")


def _majority(replicas: int) -> int:
    return replicas // 2 + 1


@attrs.frozen
class Requirement:
    """What a set of replies must hold: ``total`` replies, counting only the
    datacenters in ``counted`` (all when ``None``), and at least
    ``per_datacenter[dc]`` from each datacenter listed there."""

    level: ConsistencyLevel | int
    total: int
    per_datacenter: Mapping[str, int] = attrs.field(factory=dict)
    counted: frozenset[str] | None = None

    def _counts(self, replies: Mapping[str, int]) -> int:
        return sum(n for dc, n in replies.items() if self.counted is None or dc in self.counted)

    def met(self, replies: Mapping[str, int]) -> bool:
        """Whether ``replies`` (successful replies per datacenter) meet the level."""
        if self._counts(replies) < self.total:
            return False
        return all(replies.get(dc, 0) >= need for dc, need in self.per_datacenter.items())

    def shortfall(self, replies: Mapping[str, int]) -> dict[str, tuple[int, int]]:
        """Each datacenter short of its minimum: ``(answered, needed)``.

        The key ``"*"`` (or the counted datacenters) stands for the total.
        """
        short = {
            dc: (replies.get(dc, 0), need)
            for dc, need in sorted(self.per_datacenter.items())
            if replies.get(dc, 0) < need
        }
        counted = self._counts(replies)
        if counted < self.total and not short:
            scope = ",".join(sorted(self.counted)) if self.counted is not None else "*"
            short[scope] = (counted, self.total)
        return short

    def describe(self, replies: Mapping[str, int]) -> str:
        """Why ``replies`` fall short, naming the level and the datacenters short."""
        name = self.level.value if isinstance(self.level, ConsistencyLevel) else str(self.level)
        parts = []
        for dc, (got, need) in self.shortfall(replies).items():
            where = "in all" if dc == "*" else f"in {dc or 'the unnamed datacenter'}"
            parts.append(f"{got} of {need} {where}")
        return f"{name} not reached: " + ("; ".join(parts) if parts else "met")


def _by_datacenter(replicas: Mapping[str, int] | Iterable[str]) -> dict[str, int]:
    if isinstance(replicas, Mapping):
        return {dc: int(n) for dc, n in replicas.items() if n > 0}
    counts: dict[str, int] = {}
    for dc in replicas:
        counts[dc] = counts.get(dc, 0) + 1
    return counts


def requirement(
    level: ConsistencyLevel | int | str,
    replicas: Mapping[str, int] | Iterable[str],
    local_datacenter: str = "",
) -> Requirement:
    """The :class:`Requirement` of ``level`` for a key's replicas.

    ``replicas`` is the count of the key's replicas per datacenter, or the
    datacenter of each replica. ``local_datacenter`` is the coordinator's.
    A level the replicas cannot meet raises :class:`ConfigurationError`.
    """
    parsed = parse_level(level) if isinstance(level, str) else level
    by_dc = _by_datacenter(replicas)
    n = sum(by_dc.values())
    if isinstance(parsed, int):
        if parsed > n:
            raise ConfigurationError(f"{parsed} replies asked of a key with {n} replicas")
        return Requirement(parsed, parsed)
    if parsed in _COUNTS:
        count = _COUNTS[parsed]
        if count > n:
            raise ConfigurationError(f"{parsed.value} needs {count} replicas; the key has {n}")
        return Requirement(parsed, count)
    if parsed is ConsistencyLevel.QUORUM:
        return Requirement(parsed, _majority(n))
    if parsed is ConsistencyLevel.ALL:
        return Requirement(parsed, n)
    if parsed is ConsistencyLevel.EACH_QUORUM:
        minimums = {dc: _majority(count) for dc, count in by_dc.items()}
        return Requirement(parsed, sum(minimums.values()), minimums)
    local = by_dc.get(local_datacenter, 0)
    if local == 0:
        where = local_datacenter or "the unnamed datacenter"
        raise ConfigurationError(
            f"{parsed.value}: the coordinator's datacenter {where} holds none of the key's "
            f"replicas (they are in {', '.join(sorted(by_dc)) or 'no datacenter'})"
        )
    needed = 1 if parsed is ConsistencyLevel.LOCAL_ONE else _majority(local)
    return Requirement(parsed, needed, counted=frozenset({local_datacenter}))
