"""Store configuration: N, R, W and limits, plus one named component per interface.

From a dict or a TOML file of this shape (every part optional)::

    [store]
    n = 3
    r = 2
    w = 2
    max_pair_bytes = 10240

    [partitioner]
    name = "ring"
    vnodes_per_capacity = 64

    [storage_engine]
    name = "sqlitedict"

A component section may also be just its name: ``storage_engine = "memory"``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dynamo_toolkit.consistency import (
    ConsistencyLevel,
    LevelSpec,
    canonical_level,
    level_count,
    parse_level,
)
from dynamo_toolkit.errors import ConfigurationError, InvalidQuorumError
from dynamo_toolkit.registry import INTERFACES
from dynamo_toolkit.values import DEFAULT_MAX_PAIR_BYTES

__all__ = [
    "DEFAULT_COMPONENTS",
    "READ_FANOUTS",
    "ComponentChoice",
    "StoreConfig",
    "validate_quorum",
]

#: The component each interface uses when configuration does not say.
DEFAULT_COMPONENTS: dict[str, str] = {
    "partitioner": "ring",
    "replicator": "preference-list",
    "conflict_resolver": "dvv",
    "failure_detector": "timeout",
    "anti_entropy": "merkle",
    "storage_engine": "memory",
    "transport": "memory",
}


@attrs.frozen
class ComponentChoice:
    """A component picked by ``name``, with keyword ``params`` for its factory."""

    name: str
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)


def validate_quorum(n: int, r: LevelSpec, w: LevelSpec) -> None:
    """Check ``1 <= R, W <= N`` (and N >= 1); raise :class:`InvalidQuorumError` otherwise.

    R and W may also be consistency levels (:mod:`dynamo_toolkit.consistency`),
    by name: any level is valid, but ``TWO``/``THREE`` need that many replicas.
    Whether a key's replicas can meet a datacenter level is known per request.
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise InvalidQuorumError(f"N must be an integer, got {n!r}")
    if n < 1:
        raise InvalidQuorumError(f"N must be at least 1, got {n}")
    for label, value in (("R", r), ("W", w)):
        if isinstance(value, bool) or not isinstance(value, int | str | ConsistencyLevel):
            raise InvalidQuorumError(
                f"{label} must be an integer or a consistency level, got {value!r}"
            )
        if isinstance(value, int):
            if not 1 <= value <= n:
                raise InvalidQuorumError(
                    f"{label} must satisfy 1 <= {label} <= N={n}, got {label}={value}"
                )
            continue
        try:
            level = value if isinstance(value, ConsistencyLevel) else parse_level(value)
        except ConfigurationError as exc:
            raise InvalidQuorumError(f"{label}: {exc}") from exc
        count = level if isinstance(level, int) else level_count(level)
        if count is not None and not 1 <= count <= n:
            raise InvalidQuorumError(
                f"{label} must satisfy 1 <= {label} <= N={n}, got {label}={value}"
            )


def _level_setting(value: Any) -> Any:
    """A level name in any case (or a count as text) as the setting keeps it."""
    if isinstance(value, str | ConsistencyLevel):
        try:
            return canonical_level(value)
        except ConfigurationError:
            return value  # validate_quorum says what is wrong with it
    return value


def _default_components() -> dict[str, ComponentChoice]:
    return {interface: ComponentChoice(name) for interface, name in DEFAULT_COMPONENTS.items()}


#: Whom a read asks: every replica, or R of them (see :class:`StoreConfig`).
READ_FANOUTS = ("all", "quorum")


@attrs.frozen
class StoreConfig:
    """Everything that defines a store; one value shared by all its nodes.

    Each setting carries its documentation in its field's ``metadata``:
    ``"doc"`` (reST) and, for quantities, ``"unit"``. :doc:`configuration`
    renders the ``[store]`` table from them, so the two cannot drift apart.
    ``components`` is not a ``[store]`` setting (``"key": None``): it holds
    the component sections.
    """

    n: int = attrs.field(
        default=3, metadata={"doc": "Replicas per key (the length of the preference list)."}
    )
    r: int | str = attrs.field(
        default=2,
        converter=_level_setting,
        metadata={
            "doc": "Successful replica replies a read waits for: a count, or a "
            "consistency level by name (``ONE``, ``TWO``, ``THREE``, ``QUORUM``, "
            "``ALL``, ``LOCAL_ONE``, ``LOCAL_QUORUM``, ``EACH_QUORUM``; see "
            ":mod:`dynamo_toolkit.consistency`)."
        },
    )
    w: int | str = attrs.field(
        default=2,
        converter=_level_setting,
        metadata={
            "doc": "Acknowledgements a write (or delete) waits for: a count or a "
            "consistency level by name (as ``r``). The coordinator's "
            "own copy counts when it is a replica."
        },
    )
    max_pair_bytes: int = attrs.field(
        default=DEFAULT_MAX_PAIR_BYTES,
        metadata={
            "unit": "bytes",
            "doc": "Limit on the stored key's bytes plus the msgpack-encoded value's bytes, "
            "checked by the coordinator before anything is sent.",
        },
    )
    request_timeout: float = attrs.field(
        default=1.0,
        metadata={
            "unit": "seconds",
            "doc": "How long a coordinator waits for R or W replies: the limit of each "
            "replica request (a forwarded write waits twice as long). Gossip, anti-entropy "
            "and handoff requests use it too.",
        },
    )
    heartbeat_interval: float = attrs.field(
        default=0.5,
        metadata={"unit": "seconds", "doc": "Time between the heartbeats a node sends each peer."},
    )
    sloppy_quorum: bool = attrs.field(
        default=True,
        metadata={
            "doc": "When the failure detector reports an owner down, the next healthy node "
            "of the preference walk takes its reads and writes, holding the writes as "
            "hints for it (Dynamo §4.6)."
        },
    )
    hinted_writes_count: bool = attrs.field(
        default=True,
        metadata={
            "doc": "Whether a stand-in's acknowledgement (or read reply) counts toward W "
            "(or R). The paper's sloppy quorum counts it."
        },
    )
    forward_writes: bool = attrs.field(
        default=True,
        metadata={
            "doc": "A node that is not a replica of a key hands writes of it to a replica "
            "to coordinate (Dynamo §4.5). Off, it coordinates them itself, and its clocks "
            "can then repeat one already stored (see :ref:`write-path`)."
        },
    )
    read_fanout: str = attrs.field(
        default="all",
        metadata={
            "doc": 'Whom a read asks. ``"all"``: every replica, answering after R replies '
            '(Dynamo §4.5). ``"quorum"``: R replicas, its own copy first, and one more for '
            "each that fails (see :ref:`read-path`)."
        },
    )
    hint_max_count: int = attrs.field(
        default=100_000,
        metadata={"doc": "Hints one node holds for all others; beyond it a stand-in refuses."},
    )
    hint_max_bytes: int = attrs.field(
        default=64 * 1024 * 1024,
        metadata={
            "unit": "bytes",
            "doc": "Bytes of hints one node holds; beyond it a stand-in refuses.",
        },
    )
    decoded_cache_bytes: int = attrs.field(
        default=64 * 1024 * 1024,
        metadata={
            "unit": "bytes",
            "doc": "Memory for the node's cache of decoded sibling sets (hot keys are not "
            "unpacked on every request). Entries are charged their packed size plus an "
            "estimate of Python's overhead; the oldest go first. 0 turns the cache off.",
        },
    )
    hint_max_age: float = attrs.field(
        default=3 * 3600.0,
        metadata={
            "unit": "seconds",
            "doc": "How long a hint is kept. Older ones are dropped, and the owner then "
            "catches up through read repair and anti-entropy.",
        },
    )
    hint_delivery_interval: float = attrs.field(
        default=1.0,
        metadata={"unit": "seconds", "doc": "Time between hinted-handoff rounds."},
    )
    anti_entropy_interval: float = attrs.field(
        default=60.0,
        metadata={
            "unit": "seconds",
            "doc": "Time between a node's anti-entropy passes over its partitions.",
        },
    )
    gossip_interval: float = attrs.field(
        default=1.0,
        metadata={
            "unit": "seconds",
            "doc": "Time between a node's gossip rounds: each round exchanges the cluster "
            "view with one random peer, preferring peers the failure detector reports up. "
            "A node in a data handoff also checks this often whether the others are done.",
        },
    )
    anti_entropy_pause: float = attrs.field(
        default=0.05,
        metadata={
            "unit": "seconds",
            "doc": "Pause between two partition exchanges of an anti-entropy pass, and "
            "between two pages of a handoff transfer (the rate limit).",
        },
    )
    tombstone_grace: float = attrs.field(
        default=86_400.0,
        metadata={
            "unit": "seconds",
            "doc": "Age a tombstone must reach before it may be collected (and only once "
            "every replica of its partition was seen to hold it).",
        },
    )
    components: Mapping[str, ComponentChoice] = attrs.field(
        factory=_default_components,
        metadata={
            "key": None,
            "doc": "One :class:`ComponentChoice` per interface: the component sections.",
        },
    )

    def __attrs_post_init__(self) -> None:
        validate_quorum(self.n, self.r, self.w)
        if type(self.max_pair_bytes) is not int:
            raise ConfigurationError(
                f"max_pair_bytes must be an integer, got {self.max_pair_bytes!r}"
            )
        for name in ("sloppy_quorum", "hinted_writes_count", "forward_writes"):
            if type(getattr(self, name)) is not bool:
                raise ConfigurationError(f"{name} must be true or false")
        if self.read_fanout not in READ_FANOUTS:
            raise ConfigurationError(
                f"read_fanout must be one of {', '.join(READ_FANOUTS)}, got {self.read_fanout!r}"
            )
        for name in ("hint_max_count", "hint_max_bytes", "decoded_cache_bytes"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must be a non-negative integer")
        for name in (
            "request_timeout",
            "heartbeat_interval",
            "hint_max_age",
            "hint_delivery_interval",
            "anti_entropy_interval",
            "gossip_interval",
            "anti_entropy_pause",
            "tombstone_grace",
        ):
            value = getattr(self, name)
            if type(value) not in (int, float) or value <= 0:
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds, got {value!r}"
                )
        if self.max_pair_bytes < 1:
            raise ConfigurationError(f"max_pair_bytes must be positive, got {self.max_pair_bytes}")
        if self.sloppy_quorum and self.hint_max_age >= self.tombstone_grace:
            # A hint carries a write made before a later delete; delivered after
            # that delete's tombstone was collected, it would bring the key back.
            raise ConfigurationError(
                f"hint_max_age ({self.hint_max_age} s) must be shorter than tombstone_grace "
                f"({self.tombstone_grace} s): a hint delivered after a tombstone was "
                "collected would resurrect the deleted key"
            )
        missing = set(INTERFACES) - set(self.components)
        unknown = set(self.components) - set(INTERFACES)
        if missing or unknown:
            raise ConfigurationError(
                f"components must name exactly the interfaces {list(INTERFACES)}; "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )

    def component(self, interface: str) -> ComponentChoice:
        """The choice for ``interface``."""
        return self.components[interface]

    def with_components(self, **names: str | ComponentChoice) -> StoreConfig:
        """A copy with some components replaced: ``cfg.with_components(storage_engine="x")``."""
        merged = dict(self.components)
        for interface, choice in names.items():
            if interface not in INTERFACES:
                raise ConfigurationError(_unknown_section(interface))
            merged[interface] = (
                choice if isinstance(choice, ComponentChoice) else ComponentChoice(choice)
            )
        return attrs.evolve(self, components=merged)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreConfig:
        """Build from the dict form described in the module docstring."""
        store_fields = {f.name for f in attrs.fields(cls)} - {"components"}
        store = dict(data.get("store", {}))
        bad = set(store) - store_fields
        if bad:
            raise ConfigurationError(
                f"unknown [store] setting(s) {sorted(bad)}; known: {sorted(store_fields)}"
            )
        components = _default_components()
        for section, value in data.items():
            if section == "store":
                continue
            if section not in INTERFACES:
                raise ConfigurationError(_unknown_section(section))
            if isinstance(value, str):
                components[section] = ComponentChoice(value)
            elif isinstance(value, Mapping):
                params = dict(value)
                name = params.pop("name", DEFAULT_COMPONENTS[section])
                if not isinstance(name, str):
                    raise ConfigurationError(f"[{section}] name must be a string")
                components[section] = ComponentChoice(name, params)
            else:
                raise ConfigurationError(f"[{section}] must be a name or a table")
        try:
            return cls(**store, components=components)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from exc

    @classmethod
    def from_toml(cls, path: str | Path) -> StoreConfig:
        """Read a TOML file (see the module docstring)."""
        with open(path, "rb") as handle:
            try:
                data = tomllib.load(handle)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(f"{path}: {exc}") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Inverse of :meth:`from_dict`."""
        store = {f.name: getattr(self, f.name) for f in attrs.fields(StoreConfig)}
        del store["components"]
        out: dict[str, Any] = {"store": store}
        for interface, choice in self.components.items():
            out[interface] = {"name": choice.name, **choice.params}
        return out


def _unknown_section(section: str) -> str:
    return f"unknown configuration section {section!r}; sections: store, {', '.join(INTERFACES)}"
