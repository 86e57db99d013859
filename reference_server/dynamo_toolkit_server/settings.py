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
    unauthenticated_network = false  # true: allow ports beyond loopback without authentication

    [[members]]
    id = "n1"
    address = "127.0.0.1:7100"

    [store]                       # and component sections: see StoreConfig
    n = 3
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit_plugins.transport.tcp import parse_address
from dynamo_toolkit_server.client_limit import DEFAULT_MAX_CLIENTS

__all__ = ["DEFAULT_STORAGE_ENGINE", "NodeSettings"]

#: A node process's storage when its config names none: RocksDB committing
#: every write to its log before the node acknowledges it, without an fsync.
#: A killed process (or every one, kill -9) loses nothing acknowledged; a power
#: loss or OS crash may lose the last writes the OS had not written back, and
#: RocksDB recovers to a consistent point (durability "sync" closes that too).
DEFAULT_STORAGE_ENGINE: dict[str, str] = {"name": "rocksdb", "durability": "none"}

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
    "unauthenticated_network",
    "max_clients",
}


def _is_loopback(address: str) -> bool:
    """True for a ``host:port`` on the loopback interface (127.0.0.0/8, ::1, localhost)."""
    host, _ = parse_address(address)
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def _address_or_empty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value:
        parse_address(value)


@attrs.frozen
class NodeSettings:
    """Everything one node process needs to start.

    Each field documents its ``[node]`` setting in its ``metadata``
    (``"doc"``, and ``"key"`` where the file's name differs): the server's
    configuration page renders its table from them. ``members`` and ``store``
    come from other sections (``"key": None``).
    """

    node_id: str = attrs.field(
        metadata={
            "key": "id",
            "doc": "This node's id. It must be one of the ``[[members]]`` unless ``join`` is true.",
        }
    )
    data_dir: Path = attrs.field(
        metadata={
            "default": '"./<id>"',
            "doc": "Directory of the storage and hint files, the saved cluster view and "
            "``ready.json``; created if missing. A relative path is relative to the "
            "working directory.",
        }
    )
    peer: str = attrs.field(
        validator=_address_or_empty,
        metadata={"doc": "``host:port`` the ``tcp`` transport listens on for the other nodes."},
    )
    members: tuple[NodeInfo, ...] = attrs.field(
        metadata={"key": None, "doc": "The ``[[members]]`` tables (or this node alone)."}
    )
    store: StoreConfig = attrs.field(
        factory=StoreConfig,
        metadata={"key": None, "doc": "The ``[store]`` table and the component sections."},
    )
    resp: str = attrs.field(
        default="",
        validator=_address_or_empty,
        metadata={"doc": '``host:port`` of the Redis-protocol server; ``""`` runs none.'},
    )
    http: str = attrs.field(
        default="",
        validator=_address_or_empty,
        metadata={
            "doc": '``host:port`` of the HTTP API, ``/health`` and ``/metrics``; ``""`` runs '
            "none. ``dtk cluster status`` needs it to report health."
        },
    )
    native: str = attrs.field(
        default="",
        validator=_address_or_empty,
        metadata={
            "doc": '``host:port`` of the msgpack protocol of the Python client; ``""`` '
            "runs none. ``dtk get|put|del`` and the ``dtk cluster`` membership commands "
            "need it."
        },
    )
    password: str = attrs.field(
        default="",
        metadata={
            "doc": 'Password of the RESP ``default`` user; ``""`` means none. HTTP and the '
            "native protocol have no authentication."
        },
    )
    flush_interval: float = attrs.field(
        default=0.2,
        metadata={
            "unit": "seconds",
            "doc": "Time between the node's own flushes of the storage engine, for its "
            "background writes (read repair, handoff). Client writes to an engine that "
            'buffers (``sqlitedict``, or ``durability = "group"``) do not wait for it: '
            "each is acknowledged after the flush that covers it (group commit). Must be "
            "positive.",
        },
    )
    join: bool = attrs.field(
        default=False,
        metadata={
            "doc": "Start as a new node that joins a running cluster, using the "
            "``[[members]]`` as seeds; it owns data only after a ``dtk cluster commit``."
        },
    )
    max_clients: int = attrs.field(
        default=DEFAULT_MAX_CLIENTS,
        metadata={
            "doc": "Client connections the node keeps open at once, RESP, HTTP and native "
            "together (Redis's ``maxclients``). One more is told why in its protocol "
            "(``-ERR max number of clients reached``, HTTP 503, a native error frame) and "
            "disconnected; ``dtk_clients_refused_total`` counts them.",
        },
    )
    unauthenticated_network: bool = attrs.field(
        default=False,
        metadata={
            "doc": "Allow ``peer``, ``resp``, ``http`` or ``native`` on an address beyond "
            "loopback. The peer port, HTTP and the native protocol do not authenticate "
            "yet, so anyone who reaches them can read, write and change the membership; "
            "by default a node refuses to listen where others could. Set it only on a "
            "network you trust (a private network, a firewall, a tunnel).",
        },
    )

    def __attrs_post_init__(self) -> None:
        ids = [m.node_id for m in self.members]
        if self.node_id not in ids and not self.join:
            raise ConfigurationError(f"node {self.node_id!r} is not among the members {ids}")
        if len(set(ids)) != len(ids):
            raise ConfigurationError(f"member ids must be unique, got {ids}")
        if self.flush_interval <= 0:
            raise ConfigurationError("flush_interval must be positive")
        if type(self.max_clients) is not int or self.max_clients < 1:
            raise ConfigurationError(
                f"max_clients must be a positive integer, got {self.max_clients!r}"
            )
        exposed = [
            f"{name} = {address}"
            for name in ("peer", "resp", "http", "native")
            if (address := getattr(self, name)) and not _is_loopback(address)
        ]
        if exposed and not self.unauthenticated_network:
            raise ConfigurationError(
                f"{', '.join(exposed)}: beyond loopback, and the peer port, HTTP and the "
                "native protocol do not authenticate yet; bind to 127.0.0.1, or set "
                "unauthenticated_network = true in [node] (dtk serve: "
                "--unauthenticated-network) on a network you trust"
            )

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
        store_part.setdefault("storage_engine", dict(DEFAULT_STORAGE_ENGINE))
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
            unauthenticated_network=bool(node.get("unauthenticated_network", False)),
            max_clients=node.get("max_clients", DEFAULT_MAX_CLIENTS),
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
