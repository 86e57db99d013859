"""A node process's settings: who it is, where it listens, who its peers are.

From a TOML file (what ``dtk cluster up`` writes for each node)::

    [node]
    id = "n1"
    data_dir = "/var/lib/dtk/n1"
    peer = "127.0.0.1:7100"      # node-to-node transport (tcp)
    resp = "127.0.0.1:7101"      # Redis protocol; "" disables
    http = "127.0.0.1:7102"      # HTTP API, /health, /metrics; "" disables
    native = "127.0.0.1:7103"    # msgpack protocol for the Python client; "" disables
    flush_interval = 0.2         # seconds between storage flushes (group commit)
    join = false                 # true: join a running cluster through [[members]] as seeds
    unauthenticated_network = false  # true: allow ports beyond loopback without authentication
    idle_timeout = 300           # client limits: see the NodeSettings fields

    [security]                    # optional: see SecuritySettings
    cluster_secret_file = "cluster.secret"
    tls_cert = "n1.crt"
    tls_key = "n1.key"
    tls_ca = "ca.crt"

    [[users]]                     # optional: clients then log in
    name = "admin"
    role = "admin"                # read, readwrite or admin
    password_hash = "scrypt$14$8$1$..."   # dtk user hash

    [[members]]
    id = "n1"
    address = "127.0.0.1:7100"

    [store]                       # and component sections: see StoreConfig
    n = 3
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit_plugins.transport.tcp import parse_address
from dynamo_toolkit_server.auth import Role, User
from dynamo_toolkit_server.client_limit import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_PIPELINED,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_SLOW_CLIENT_TIMEOUT,
    ConnectionLimits,
)

__all__ = ["DEFAULT_STORAGE_ENGINE", "NodeSettings", "SecuritySettings"]

#: A node process's storage when its config names none: RocksDB committing
#: every write to its log before the node acknowledges it, without an fsync.
#: A killed process (or every one, kill -9) loses nothing acknowledged; a power
#: loss or OS crash may lose the last writes the OS had not written back, and
#: RocksDB recovers to a consistent point (durability "sync" closes that too).
DEFAULT_STORAGE_ENGINE: dict[str, str] = {"name": "rocksdb", "durability": "none"}

_SECURITY_KEYS = {
    "cluster_secret_file",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_client_certs",
    "peer_tls",
}
_USER_KEYS = {"name", "role", "password_hash"}
#: What client ports ask of a client's certificate (``[security] tls_client_certs``).
CLIENT_CERT_MODES = ("none", "optional", "required")

_NODE_KEYS = {
    "id",
    "data_dir",
    "peer",
    "resp",
    "http",
    "native",
    "flush_interval",
    "join",
    "unauthenticated_network",
    "max_clients",
    # client limits (one block; see ConnectionLimits)
    "idle_timeout",
    "slow_client_timeout",
    "max_output_bytes",
    "max_request_bytes",
    "max_pipelined",
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


def _optional_path(value: object) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | Path):
        raise ConfigurationError(f"expected a file path, got {value!r}")
    return Path(value)


@attrs.frozen
class SecuritySettings:
    """Who may talk to a node: users of the client ports, the cluster secret, TLS.

    From the ``[security]`` table and the ``[[users]]`` tables. Relative paths
    are relative to the working directory, as ``data_dir`` is. Nothing here is
    a secret in itself: users carry password hashes, and the cluster secret
    and TLS keys stay in their own files (readable by the node's user only).
    """

    users: tuple[User, ...] = attrs.field(
        default=(),
        metadata={
            "key": None,
            "doc": "The ``[[users]]`` tables: ``name``, ``role`` (``read``, ``readwrite`` "
            "or ``admin``) and ``password_hash`` (``dtk user hash`` prints one). With "
            "users, every client port asks clients to log in.",
        },
    )
    cluster_secret_file: Path | None = attrs.field(
        default=None,
        converter=_optional_path,
        metadata={
            "default": '""',
            "doc": "File holding the secret every node of the cluster shares (``dtk "
            "cluster up`` writes one). Before any gossip, replica request, hint or "
            "handoff, each end of a peer connection proves it knows the secret "
            "(challenge-response; the secret never crosses the wire); a process that "
            'cannot is disconnected and counted. ``""``: peers are not authenticated.',
        },
    )
    tls_cert: Path | None = attrs.field(
        default=None,
        converter=_optional_path,
        metadata={
            "default": '""',
            "doc": "This node's certificate (PEM). With ``tls_key``, every client port "
            "speaks TLS only.",
        },
    )
    tls_key: Path | None = attrs.field(
        default=None,
        converter=_optional_path,
        metadata={"default": '""', "doc": "The private key of ``tls_cert`` (PEM)."},
    )
    tls_ca: Path | None = attrs.field(
        default=None,
        converter=_optional_path,
        metadata={
            "default": '""',
            "doc": "Certificate authority (PEM) that signed the nodes' certificates and, "
            "with ``tls_client_certs``, the clients'. Needed for ``peer_tls``.",
        },
    )
    tls_client_certs: str = attrs.field(
        default="none",
        metadata={
            "doc": "Whether client ports ask for a client certificate signed by "
            '``tls_ca``: ``"none"``, ``"optional"`` (checked when sent) or '
            '``"required"``.'
        },
    )
    peer_tls: bool = attrs.field(
        default=True,
        metadata={
            "doc": "With ``tls_cert``: the peer port speaks mutual TLS too, each node "
            "checking the other's certificate against ``tls_ca``.",
        },
    )

    def __attrs_post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError("[security] tls_cert and tls_key go together")
        if self.tls_client_certs not in CLIENT_CERT_MODES:
            raise ConfigurationError(
                f"[security] tls_client_certs must be one of {', '.join(CLIENT_CERT_MODES)}, "
                f"got {self.tls_client_certs!r}"
            )
        if self.tls_client_certs != "none" and self.tls_ca is None:
            raise ConfigurationError("[security] tls_client_certs needs tls_ca to check them")
        if self.tls and self.peer_tls and self.tls_ca is None:
            raise ConfigurationError(
                "[security] peer_tls needs tls_ca to check the other nodes' certificates "
                "(or set peer_tls = false)"
            )
        names = [user.name for user in self.users]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"[[users]] names must be unique, got {names}")

    @property
    def tls(self) -> bool:
        """True when the client ports speak TLS."""
        return self.tls_cert is not None

    @property
    def peers_authenticated(self) -> bool:
        """True when a peer must prove it belongs (secret or mutual TLS)."""
        return self.cluster_secret_file is not None or (self.tls and self.peer_tls)

    @classmethod
    def from_dict(
        cls, section: Mapping[str, Any], users: Sequence[Mapping[str, Any]] = ()
    ) -> SecuritySettings:
        """Build from the ``[security]`` table and the ``[[users]]`` tables."""
        unknown = set(section) - _SECURITY_KEYS
        if unknown:
            raise ConfigurationError(f"unknown [security] setting(s) {sorted(unknown)}")
        records = []
        for entry in users:
            extra = set(entry) - _USER_KEYS
            missing = _USER_KEYS - set(entry)
            if extra or missing:
                raise ConfigurationError(
                    "a [[users]] table has name, role and password_hash"
                    + (f"; unknown {sorted(extra)}" if extra else "")
                    + (f"; missing {sorted(missing)}" if missing else "")
                )
            records.append(
                User(
                    str(entry["name"]), Role.parse(str(entry["role"])), str(entry["password_hash"])
                )
            )
        peer_tls = section.get("peer_tls", True)
        if not isinstance(peer_tls, bool):
            raise ConfigurationError(f"[security] peer_tls must be true or false, got {peer_tls!r}")
        return cls(
            users=tuple(records),
            cluster_secret_file=section.get("cluster_secret_file"),
            tls_cert=section.get("tls_cert"),
            tls_key=section.get("tls_key"),
            tls_ca=section.get("tls_ca"),
            tls_client_certs=str(section.get("tls_client_certs", "none")),
            peer_tls=peer_tls,
        )


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
    security: SecuritySettings = attrs.field(
        factory=SecuritySettings,
        metadata={"key": None, "doc": "The ``[security]`` and ``[[users]]`` tables."},
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
    # -- client limits: checked together by ConnectionLimits (see limits below) --
    idle_timeout: float = attrs.field(
        default=DEFAULT_IDLE_TIMEOUT,
        metadata={
            "unit": "seconds",
            "doc": "A client connection with no request in flight that sends nothing for "
            "this long is closed (Redis's ``timeout``; HTTP's keep-alive). ``0``: never. "
            "RESP and HTTP close silently, as Redis does; connection pools reconnect. "
            'Counted in ``dtk_clients_closed_total{reason="idle"}``.',
        },
    )
    slow_client_timeout: float = attrs.field(
        default=DEFAULT_SLOW_CLIENT_TIMEOUT,
        metadata={
            "unit": "seconds",
            "doc": "A client that leaves its replies unread (the node holds more than the "
            "socket's 64 KiB high-water mark for it and stopped running its commands) for "
            "this long is disconnected; so is an HTTP client that takes longer to send a "
            "request it has begun, or to take its answer. ``0``: never. Counted in "
            '``dtk_clients_closed_total{reason="slow"}``.',
        },
    )
    max_output_bytes: int = attrs.field(
        default=DEFAULT_MAX_OUTPUT_BYTES,
        metadata={
            "unit": "bytes",
            "doc": "Replies one RESP or native connection may have waiting to be sent "
            "(Redis's ``client-output-buffer-limit`` hard limit). A client that is not "
            "reading and goes past it is disconnected at once, its replies dropped; "
            '``0``: no limit. Counted in ``dtk_clients_closed_total{reason="slow"}``.',
        },
    )
    max_request_bytes: int = attrs.field(
        default=DEFAULT_MAX_REQUEST_BYTES,
        metadata={
            "unit": "bytes",
            "doc": "Largest request: a RESP command and each of its bulk strings "
            "(Redis's ``proto-max-bulk-len``), a native frame, an HTTP body (``413``). "
            "The client is told why and disconnected, since the rest of its stream can "
            'no longer be framed; counted in ``dtk_clients_closed_total{reason="too_large"}``. '
            "Stored pairs are further limited by ``max_pair_bytes``.",
        },
    )
    max_pipelined: int = attrs.field(
        default=DEFAULT_MAX_PIPELINED,
        metadata={
            "doc": "Requests one RESP or native connection may have read and not yet "
            "answered. The node stops reading a connection at 4096 queued RESP commands "
            "(256 native requests), or at ``max_pipelined`` if lower, until it catches "
            "up; requests that already arrived past the cap are each refused "
            "(``-ERR max pipelined requests reached (N)``, a native ``TooManyRequests`` "
            'error) and counted in ``dtk_requests_refused_total{reason="pipeline"}``; '
            "the connection stays open.",
        },
    )
    unauthenticated_network: bool = attrs.field(
        default=False,
        metadata={
            "doc": "Allow a port on an address beyond loopback although nothing "
            "authenticates who connects to it: a client port with no ``[[users]]``, the "
            "peer port with neither a cluster secret nor peer TLS. Anyone who reaches "
            "such a port can read, write and change the membership, so by default a "
            "node refuses to listen where others could. Set it only on a network you "
            "trust (a private network, a firewall, a tunnel).",
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
        self.limits  # noqa: B018 - checks the client limits, with their errors
        if not self.unauthenticated_network:
            self._refuse_open_ports()

    def _refuse_open_ports(self) -> None:
        """No port beyond loopback that lets anyone in."""
        open_ports = []
        if self.peer and not _is_loopback(self.peer) and not self.security.peers_authenticated:
            open_ports.append(f"peer = {self.peer} (no [security] cluster_secret_file or peer TLS)")
        if not self.security.users:
            open_ports += [
                f"{name} = {address} (no [[users]])"
                for name in ("resp", "http", "native")
                if (address := getattr(self, name)) and not _is_loopback(address)
            ]
        if open_ports:
            raise ConfigurationError(
                f"{'; '.join(open_ports)}: beyond loopback, anyone who reaches these ports "
                "could read, write and change the cluster. Configure authentication "
                "(docs: security), bind to 127.0.0.1, or set unauthenticated_network = "
                "true in [node] (dtk serve: --unauthenticated-network) on a network you "
                "trust"
            )

    @property
    def limits(self) -> ConnectionLimits:
        """The per-connection client limits every front-end applies."""
        return ConnectionLimits(
            idle_timeout=self.idle_timeout,
            slow_client_timeout=self.slow_client_timeout,
            max_output_bytes=self.max_output_bytes,
            max_request_bytes=self.max_request_bytes,
            max_pipelined=self.max_pipelined,
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
        if "password" in unknown:
            raise ConfigurationError(
                "[node] password is replaced by [[users]] tables with hashed passwords "
                "(dtk user hash prints one; docs: security)"
            )
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
        store_part = {
            k: v for k, v in data.items() if k not in ("node", "members", "security", "users")
        }
        # A node process keeps its data on disk unless told otherwise.
        store_part.setdefault("storage_engine", dict(DEFAULT_STORAGE_ENGINE))
        store = StoreConfig.from_dict(store_part)
        # A node process talks over sockets: tcp, or the delayed wrapper
        # (a WAN between processes on one machine) around it.
        if store.component("transport").name not in ("tcp", "delayed"):
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
            security=SecuritySettings.from_dict(data.get("security", {}), data.get("users", [])),
            flush_interval=float(node.get("flush_interval", 0.2)),
            join=bool(node.get("join", False)),
            unauthenticated_network=bool(node.get("unauthenticated_network", False)),
            max_clients=node.get("max_clients", DEFAULT_MAX_CLIENTS),
            idle_timeout=node.get("idle_timeout", DEFAULT_IDLE_TIMEOUT),
            slow_client_timeout=node.get("slow_client_timeout", DEFAULT_SLOW_CLIENT_TIMEOUT),
            max_output_bytes=node.get("max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES),
            max_request_bytes=node.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES),
            max_pipelined=node.get("max_pipelined", DEFAULT_MAX_PIPELINED),
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
