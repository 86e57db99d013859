"""A node process's settings: who it is, where it listens, who its peers are.

From a TOML file (what ``dtk cluster up`` writes for each node)::

    [node]
    id = "n1"
    data_dir = "/var/lib/dtk/n1"
    peer = "127.0.0.1:7100"      # node-to-node transport (tcp)
    resp = "127.0.0.1:7101"      # Redis protocol; "" disables
    http = "127.0.0.1:7102"      # HTTP API, /health, /metrics; "" disables
    native = "127.0.0.1:7103"    # msgpack protocol for the Python client; "" disables
    password = ""                # RESP AUTH password; "" means none
    flush_interval = 0.2         # seconds between storage flushes (group commit)
    join = false                 # true: join a running cluster through [[members]] as seeds

    [[members]]
    id = "n1"
    address = "127.0.0.1:7100"

    [store]                       # and component sections: see StoreConfig
    n = 3
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.membership import NodeInfo
from dynamo_toolkit_plugins.transport.tcp import parse_address

__all__ = ["NodeSettings"]

_NODE_KEYS = {
    "id",
    "data_dir",
    "peer",
    "resp",
    "http",
    "native",
    "password",
    "flush_interval",
    "join",
}


def _address_or_empty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value:
        parse_address(value)


@attrs.frozen
class NodeSettings:
    """Everything one node process needs to start."""

    node_id: str
    data_dir: Path
    peer: str = attrs.field(validator=_address_or_empty)
    members: tuple[NodeInfo, ...]
    store: StoreConfig = attrs.field(factory=StoreConfig)
    resp: str = attrs.field(default="", validator=_address_or_empty)
    http: str = attrs.field(default="", validator=_address_or_empty)
    native: str = attrs.field(default="", validator=_address_or_empty)
    password: str = ""
    flush_interval: float = 0.2
    join: bool = False

    def __attrs_post_init__(self) -> None:
        ids = [m.node_id for m in self.members]
        if self.node_id not in ids and not self.join:
            raise ConfigurationError(f"node {self.node_id!r} is not among the members {ids}")
        if len(set(ids)) != len(ids):
            raise ConfigurationError(f"member ids must be unique, got {ids}")
        if self.flush_interval <= 0:
            raise ConfigurationError("flush_interval must be positive")

    @property
    def info(self) -> NodeInfo:
        """This node's membership record."""
        for member in self.members:
            if member.node_id == self.node_id:
                return member
        return NodeInfo(self.node_id, address=self.peer)

    @property
    def seeds(self) -> list[NodeInfo]:
        """The members a joining node first gossips with."""
        return [m for m in self.members if m.node_id != self.node_id]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeSettings:
        """Build from the TOML shape in the module docstring."""
        node = dict(data.get("node", {}))
        unknown = set(node) - _NODE_KEYS
        if unknown:
            raise ConfigurationError(f"unknown [node] setting(s) {sorted(unknown)}")
        if "id" not in node or "peer" not in node:
            raise ConfigurationError("[node] needs at least id and peer")
        members = []
        for entry in data.get("members", []):
            entry = dict(entry)
            try:
                members.append(
                    NodeInfo(
                        node_id=entry.pop("id"),
                        address=entry.pop("address"),
                        datacenter=entry.pop("datacenter", ""),
                        rack=entry.pop("rack", ""),
                        capacity=float(entry.pop("capacity", 1.0)),
                    )
                )
            except KeyError as exc:
                raise ConfigurationError(f"[[members]] entry lacks {exc}") from None
            if entry:
                raise ConfigurationError(f"unknown [[members]] setting(s) {sorted(entry)}")
        if not members:
            members = [NodeInfo(node["id"], address=node["peer"])]
        store_part = {k: v for k, v in data.items() if k not in ("node", "members")}
        # A node process keeps its data on disk unless told otherwise.
        store_part.setdefault("storage_engine", "sqlitedict")
        store = StoreConfig.from_dict(store_part)
        if store.component("transport").name != "tcp":
            store = store.with_components(transport="tcp")
        return cls(
            node_id=node["id"],
            data_dir=Path(node.get("data_dir", f"./{node['id']}")),
            peer=node["peer"],
            members=tuple(members),
            store=store,
            resp=node.get("resp", ""),
            http=node.get("http", ""),
            native=node.get("native", ""),
            password=node.get("password", ""),
            flush_interval=float(node.get("flush_interval", 0.2)),
            join=bool(node.get("join", False)),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> NodeSettings:
        """Read a node's TOML file."""
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"{path}: {exc}") from exc
        return cls.from_dict(data)
