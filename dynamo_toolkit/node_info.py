"""Who is in the cluster: one :class:`NodeInfo` per physical node."""

from __future__ import annotations

import attrs

__all__ = ["NodeInfo"]


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def _non_empty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


@attrs.frozen
class NodeInfo:
    """A physical node as the membership knows it.

    ``capacity`` is a relative weight: a node of capacity 2 gets twice the
    virtual nodes (and so about twice the data) of a node of capacity 1.
    ``datacenter`` and ``rack`` let replicators spread replicas; empty means
    "not declared".
    """

    node_id: str = attrs.field(validator=_non_empty)
    address: str = ""
    datacenter: str = ""
    rack: str = ""
    capacity: float = attrs.field(default=1.0, validator=_positive)
