"""A local cluster of node processes in one directory (``dtk cluster ...``).

Layout of ``DIR``: ``cluster.json`` (the plan: nodes, ports, store settings)
and one subdirectory per node holding its ``node.toml``, ``node.log``,
``node.pid``, its storage files and, while it serves, ``ready.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import ConfigurationError, DynamoError
from dynamo_toolkit_server.auth import generate_password, hash_password
from dynamo_toolkit_server.credentials import (
    CREDENTIALS_FILE,
    Credentials,
    http_get,
    resolve_credentials,
    write_credentials,
)
from dynamo_toolkit_server.serve import READY_FILE
from dynamo_toolkit_server.settings import DEFAULT_STORAGE_ENGINE
from dynamo_toolkit_server.tls import make_local_pki, write_cluster_secret

__all__ = [
    "ClusterPlan",
    "NodePlan",
    "cluster_status",
    "plan_cluster",
    "start_cluster",
    "stop_cluster",
]

PLAN_FILE = "cluster.json"
PORTS_PER_NODE = 10  # peer, resp, http, native at offsets 0..3; room to grow
DURABLE_ENGINES = ("sqlite", "lmdb", "rocksdb")  # the engines with durability modes


@attrs.frozen
class NodePlan:
    """One node's name, addresses and place (empty: not declared)."""

    name: str
    peer: str
    resp: str
    http: str
    native: str
    datacenter: str = ""
    rack: str = ""


@attrs.frozen
class ClusterPlan:
    """What ``cluster.json`` records."""

    nodes: tuple[NodePlan, ...]
    store: Mapping[str, Any]
    #: Clients log in: the ``[[users]]`` of every node (name, role, password_hash).
    auth: bool = False
    users: tuple[Mapping[str, str], ...] = ()
    #: Client and peer ports speak TLS, with certificates of a CA in ``DIR/tls``.
    tls: bool = False
    #: Peers prove ``DIR/cluster.secret`` (clusters made before it existed: no).
    cluster_secret: bool = True
    #: Nodes that left or were removed: never restarted.
    gone: tuple[str, ...] = ()
    #: Nodes started after the first ``up``: they join through the others.
    joined: tuple[str, ...] = ()
    #: ``--datacenters`` as first created: (name, node count) pairs; empty: none.
    datacenters: tuple[tuple[str, int], ...] = ()
    #: ``--racks`` per datacenter as first created (0 without ``--datacenters``).
    racks: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain form for ``cluster.json``."""
        return {
            "nodes": [attrs.asdict(node) for node in self.nodes],
            "store": dict(self.store),
            "auth": self.auth,
            "users": [dict(user) for user in self.users],
            "tls": self.tls,
            "cluster_secret": self.cluster_secret,
            "gone": list(self.gone),
            "joined": list(self.joined),
            "datacenters": [[name, count] for name, count in self.datacenters],
            "racks": self.racks,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClusterPlan:
        """Inverse of :meth:`to_json`."""
        return cls(
            tuple(NodePlan(**node) for node in data["nodes"]),
            data["store"],
            bool(data.get("auth", False)),
            tuple(data.get("users", ())),
            bool(data.get("tls", False)),
            bool(data.get("cluster_secret", False)),
            tuple(data.get("gone", ())),
            tuple(data.get("joined", ())),
            tuple((str(name), int(count)) for name, count in data.get("datacenters", ())),
            int(data.get("racks", 0)),
        )


class ClusterError(DynamoError):
    """A local cluster operation failed; the message says what to do."""


__all__ += ["ClusterError"]


_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


def check_label(kind: str, value: str) -> str:
    """``value`` if it is a valid datacenter or rack name (a letter, then letters,
    digits, ``-`` or ``_``); else a :class:`ConfigurationError` naming ``kind``."""
    if not _LABEL.match(value):
        raise ConfigurationError(
            f"{kind} name {value!r} must start with a letter and hold only letters, "
            "digits, '-' and '_'"
        )
    return value


def parse_datacenters(spec: str) -> tuple[tuple[str, int], ...]:
    """``"dc1:3,dc2:3"`` as ``(("dc1", 3), ("dc2", 3))``; clear errors for bad specs."""
    pairs: list[tuple[str, int]] = []
    for part in spec.split(","):
        part = part.strip()
        name, colon, count = part.partition(":")
        if not colon or not name or not count:
            raise ConfigurationError(
                f"--datacenters: {part!r} is not NAME:NODES (e.g. dc1:3,dc2:3)"
            )
        try:
            check_label("datacenter", name.strip())
        except ConfigurationError as exc:
            raise ConfigurationError(f"--datacenters: {exc}") from None
        try:
            number = int(count)
        except ValueError:
            raise ConfigurationError(
                f"--datacenters: {part!r}: the node count {count!r} is not a whole number"
            ) from None
        if number < 1:
            raise ConfigurationError(f"--datacenters: {part!r}: a datacenter needs a node or more")
        pairs.append((name.strip(), number))
    names = [name for name, _ in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(f"--datacenters: {', '.join(duplicates)} named more than once")
    return tuple(pairs)


def format_datacenters(datacenters: Sequence[tuple[str, int]]) -> str:
    """Inverse of :func:`parse_datacenters`."""
    return ",".join(f"{name}:{count}" for name, count in datacenters)


def rack_name(index: int, racks: int) -> str:
    """The rack of a datacenter's ``index``-th node (from 0): ``r1``, ``r2``... round-robin."""
    return f"r{index % racks + 1}"


def _topology(
    nodes: int, datacenters: Sequence[tuple[str, int]] | None, racks: int | None
) -> list[tuple[str, str]]:
    """Each node's ``(datacenter, rack)``: empty labels without ``datacenters``."""
    if not datacenters:
        if racks is not None:
            raise ConfigurationError("--racks needs --datacenters (e.g. --datacenters dc1:6)")
        return [("", "")] * nodes
    racks = 1 if racks is None else racks
    if racks < 1:
        raise ConfigurationError(f"--racks must be 1 or more, got {racks}")
    total = sum(count for _, count in datacenters)
    if nodes != total:
        raise ConfigurationError(
            f"--nodes {nodes} differs from the {total} node(s) of --datacenters "
            f"{format_datacenters(datacenters)}; give one or the other"
        )
    return [(name, rack_name(i, racks)) for name, count in datacenters for i in range(count)]


def plan_cluster(
    nodes: int,
    base_port: int,
    *,
    n: int | None = None,
    r: int | str | None = None,
    w: int | str | None = None,
    config: Mapping[str, Any] | None = None,
    storage: str | None = None,
    durability: str | None = None,
    auth: bool = False,
    tls: bool = False,
    host: str = "127.0.0.1",
    datacenters: Sequence[tuple[str, int]] | None = None,
    racks: int | None = None,
    wan_rtt: float | None = None,
) -> ClusterPlan:
    """Choose ports and store settings; N, R, W default to 3, 2, 2 capped by the node count.

    With ``datacenters`` (``(name, count)`` pairs whose counts add up to
    ``nodes``) the nodes ``n1``... are placed in them in order, on ``racks``
    racks per datacenter (``r1``, ``r2``... round-robin; default 1), and
    unless ``config`` names a replicator, each datacenter holds ``n``
    (default 3, capped by its nodes) replicas of every key through the
    ``network-topology`` replicator: the store's N is their sum, and R and W
    default to ``LOCAL_QUORUM``. ``wan_rtt`` (ms) puts that round trip
    between datacenters with the ``delayed`` transport.
    """
    if nodes < 1:
        raise ConfigurationError("a cluster needs at least one node")
    places = _topology(nodes, datacenters, racks)
    if not 1024 <= base_port <= 65535 - nodes * PORTS_PER_NODE:
        raise ConfigurationError(f"base port {base_port} leaves no room for {nodes} nodes")
    store: dict[str, Any] = {
        k: dict(v) if isinstance(v, Mapping) else v for k, v in (config or {}).items()
    }
    section = dict(store.get("store", {}))
    if datacenters and "replicator" not in store:
        # Replicas in every datacenter: N (default 3) per datacenter, capped by
        # its nodes, as Cassandra's NetworkTopologyStrategy; the store's N is
        # their sum, and R and W default to a majority of it.
        given = n if n is not None else section.get("n")
        small = [f"{name} ({count})" for name, count in datacenters if given and count < given]
        if small:
            raise ConfigurationError(
                f"N={given} per datacenter needs at least {given} nodes in each; "
                f"{', '.join(small)} has fewer"
            )
        factors = {name: min(given or 3, count) for name, count in datacenters}
        store["replicator"] = {"name": "network-topology", "replicas": factors}
        n_value = sum(factors.values())
        # A majority inside the coordinator's own datacenter: reads see the
        # writes made there, and losing another datacenter stops nothing.
        section["r"] = r if r is not None else section.get("r", "LOCAL_QUORUM")
        section["w"] = w if w is not None else section.get("w", "LOCAL_QUORUM")
    else:
        n_value = n if n is not None else section.get("n", min(3, nodes))
        section["r"] = r if r is not None else section.get("r", min(2, n_value))
        section["w"] = w if w is not None else section.get("w", min(2, n_value))
    section["n"] = n_value
    if section["n"] > nodes:
        raise ConfigurationError(
            f"N={section['n']} needs at least {section['n']} nodes, got {nodes}"
        )
    store["store"] = section
    if storage is not None:
        store["storage_engine"] = storage
    store.setdefault("storage_engine", dict(DEFAULT_STORAGE_ENGINE))
    if durability is not None:
        engine = store["storage_engine"]
        section = {"name": engine} if isinstance(engine, str) else dict(engine)
        if section["name"] not in DURABLE_ENGINES:
            raise ConfigurationError(
                f"--durability applies to the engines {', '.join(DURABLE_ENGINES)}, "
                f"not {section['name']!r} (for a wrapper, set it on its inner engine "
                "in --config)"
            )
        section["durability"] = durability
        store["storage_engine"] = section
    store["transport"] = "tcp"
    if wan_rtt is not None:
        if not datacenters:
            raise ConfigurationError("--wan-rtt needs --datacenters (a WAN joins datacenters)")
        if not wan_rtt > 0:
            raise ConfigurationError(f"--wan-rtt must be a positive number of ms, got {wan_rtt}")
        # Half the round trip each way between datacenters, none inside one.
        store["transport"] = {
            "name": "delayed",
            "inner": "tcp",
            "wan": {"default": {"latency": "constant", "ms": wan_rtt / 2}},
        }
    StoreConfig.from_dict(store)  # validate now, not in every node's log
    plans = []
    for index in range(nodes):
        port = base_port + index * PORTS_PER_NODE
        plans.append(
            NodePlan(
                f"n{index + 1}",
                f"{host}:{port}",
                f"{host}:{port + 1}",
                f"{host}:{port + 2}",
                f"{host}:{port + 3}",
                *places[index],
            )
        )
    return ClusterPlan(
        tuple(plans),
        store,
        auth,
        tls=tls,
        datacenters=tuple(datacenters or ()),
        racks=(1 if racks is None else racks) if datacenters else 0,
    )


# -- files ---------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):  # an inline table, e.g. a wrapper's inner engine
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigurationError(f"cannot write {type(value).__name__} to TOML")


SECRET_FILE = "cluster.secret"
TLS_DIR = "tls"


def _security_section(plan: ClusterPlan, node: NodePlan, directory: Path) -> dict[str, str]:
    """``[security]`` of ``node``: the cluster secret and TLS files under ``directory``."""
    section = {}
    if plan.cluster_secret:
        section["cluster_secret_file"] = str(directory / SECRET_FILE)
    if plan.tls:
        tls = directory / TLS_DIR
        section["tls_cert"] = str(tls / f"{node.name}.crt")
        section["tls_key"] = str(tls / f"{node.name}.key")
        section["tls_ca"] = str(tls / "ca.crt")
    return section


def node_toml(plan: ClusterPlan, node: NodePlan, data_dir: Path) -> str:
    """The ``node.toml`` of ``node``."""
    lines = ["[node]"]
    fields = {
        "id": node.name,
        "data_dir": str(data_dir),
        "peer": node.peer,
        "resp": node.resp,
        "http": node.http,
        "native": node.native,
        "join": node.name in plan.joined,
    }
    lines += [f"{key} = {_toml_value(value)}" for key, value in fields.items()]
    security = _security_section(plan, node, data_dir.parent)
    if security:
        lines += ["", "[security]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in security.items()]
    for user in plan.users:
        lines += ["", "[[users]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in user.items()]
    # The first nodes list each other (their starting membership); a node that
    # joined later lists them as its seeds. After a change, each node restarts
    # from the view it saved (cluster_state.json), not from this list.
    if node.name in plan.joined:
        members = [m for m in plan.nodes if m.name not in plan.gone]
    else:
        members = [m for m in plan.nodes if m.name not in plan.joined]
    for member in members:
        lines += ["", "[[members]]", f"id = {_toml_value(member.name)}"]
        lines.append(f"address = {_toml_value(member.peer)}")
        if member.datacenter:
            lines.append(f"datacenter = {_toml_value(member.datacenter)}")
        if member.rack:
            lines.append(f"rack = {_toml_value(member.rack)}")
    for section, value in plan.store.items():
        if isinstance(value, str):
            lines += ["", f"[{section}]", f"name = {_toml_value(value)}"]
        else:
            lines += ["", f"[{section}]"]
            lines += [f"{key} = {_toml_value(item)}" for key, item in value.items()]
    return "\n".join(lines) + "\n"


def write_plan(directory: Path, plan: ClusterPlan) -> None:
    """Create ``directory`` with ``cluster.json`` and every node's ``node.toml``.

    The cluster secret and the nodes' certificates are made when missing
    (never replaced: a node that joins later gets its certificate from the
    same CA).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if plan.cluster_secret:
        write_cluster_secret(directory / SECRET_FILE)
    if plan.tls:
        make_local_pki(directory / TLS_DIR, [node.name for node in plan.nodes])
    (directory / PLAN_FILE).write_text(json.dumps(plan.to_json(), indent=2))
    for node in plan.nodes:
        node_dir = directory / node.name
        node_dir.mkdir(exist_ok=True)
        (node_dir / "node.toml").write_text(node_toml(plan, node, node_dir.resolve()))


def _wan_rtt(plan: ClusterPlan) -> float | None:
    """The ``--wan-rtt`` a cluster was made with, if any."""
    transport = plan.store.get("transport")
    if isinstance(transport, Mapping) and transport.get("name") == "delayed":
        return float(transport["wan"]["default"]["ms"]) * 2
    return None


def _n_given(plan: ClusterPlan) -> Any:
    """The ``--n`` a cluster was made with: per datacenter with ``--datacenters``."""
    replicator = plan.store.get("replicator")
    if plan.datacenters and isinstance(replicator, Mapping) and replicator.get("replicas"):
        return max(replicator["replicas"].values())
    return plan.store.get("store", {}).get("n")


def conflicting_settings(plan: ClusterPlan, given: Mapping[str, Any]) -> list[str]:
    """The settings in ``given`` that ``plan`` does not already have, as flags to show.

    ``given`` holds what ``dtk cluster up`` was told on the command line, by
    its parameter names (``nodes``, ``base_port``, ``n``, ``r``, ``w``,
    ``storage``, ``durability``, ``auth``, ``config_path``, ``datacenters``
    as its spec string, ``racks``). Repeating a
    cluster's own settings is no conflict, so the command that created a
    cluster also restarts it. A settings file always conflicts: an existing
    cluster keeps the settings it was made with.
    """
    section = plan.store.get("store", {})
    engine = plan.store.get("storage_engine", DEFAULT_STORAGE_ENGINE)
    first_peer_port = int(plan.nodes[0].peer.rsplit(":", 1)[1])
    current: dict[str, Any] = {
        "nodes": len(plan.nodes) - len(plan.joined),  # as first created
        "base_port": first_peer_port,
        "n": _n_given(plan),
        "r": section.get("r"),
        "w": section.get("w"),
        "storage": engine if isinstance(engine, str) else engine.get("name"),
        "durability": None if isinstance(engine, str) else engine.get("durability"),
        "auth": plan.auth,
        "tls": plan.tls,
        "wan_rtt": _wan_rtt(plan),
        "datacenters": format_datacenters(plan.datacenters) or None,
        "racks": plan.racks or None,
    }
    conflicts = []
    for name, value in given.items():
        if name == "datacenters" and isinstance(value, str):
            value = format_datacenters(parse_datacenters(value))  # as recorded
        flag = "--" + name.removesuffix("_path").replace("_", "-")
        if name not in current:
            conflicts.append(flag)
        elif value != current[name]:
            if isinstance(value, bool):
                made = "without" if value else "with"
                conflicts.append(f"{flag} (the cluster was made {made} it)")
            else:
                has = current[name]
                if has is None and name in ("datacenters", "racks"):
                    has = "none"
                conflicts.append(f"{flag} {value} (the cluster has {has})")
    return conflicts


def read_plan(directory: Path) -> ClusterPlan:
    """Read ``cluster.json``; a clear error when ``directory`` holds no cluster."""
    try:
        return ClusterPlan.from_json(json.loads((directory / PLAN_FILE).read_text()))
    except FileNotFoundError:
        raise ClusterError(
            f"{directory} holds no cluster; create one with: dtk cluster up --dir {directory}"
        ) from None


# -- processes -------------------------------------------------------------------


def _pid_of(node_dir: Path) -> int | None:
    try:
        pid = int((node_dir / "node.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _port_free(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (Linux; else its default).

    A node listening in this range can find its port taken by some client's
    connection after a restart, so planned ports keep out of it.
    """
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_base_port(ports: int, start: int = 20000, step: int = 200) -> int:
    """A base port with ``ports`` consecutive free ports on 127.0.0.1 (benchmarks, tools).

    Outside the ephemeral range, where a client connection could take a
    node's port between its stop and its restart.
    """
    ephemeral = ephemeral_ports()
    for base in range(start, 65536 - ports, step):
        if base + ports > ephemeral.start and base < ephemeral.stop:
            continue
        if all(_port_free(f"127.0.0.1:{port}") for port in range(base, base + ports)):
            return base
    raise ClusterError("no free port range on 127.0.0.1")


def _launch(directory: Path, node: NodePlan) -> int:
    node_dir = directory / node.name
    busy = [a for a in (node.peer, node.resp, node.http, node.native) if not _port_free(a)]
    if busy:
        raise ClusterError(
            f"{node.name}: address(es) {', '.join(busy)} already in use; "
            "stop what uses them or choose another --base-port"
        )
    with contextlib.suppress(FileNotFoundError):
        (node_dir / READY_FILE).unlink()
    log = open(node_dir / "node.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "dynamo_toolkit_server.serve", str(node_dir / "node.toml")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal must not hit background nodes
        )
    finally:
        log.close()
    (node_dir / "node.pid").write_text(str(child.pid))
    return child.pid


def _log_tail(node_dir: Path, lines: int = 15) -> str:
    try:
        return "\n".join((node_dir / "node.log").read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _wait_ready(directory: Path, names: Sequence[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(names)
    while waiting:
        for name in list(waiting):
            node_dir = directory / name
            if (node_dir / READY_FILE).exists():
                waiting.remove(name)
            elif _pid_of(node_dir) is None:
                raise ClusterError(
                    f"{name} exited during start; its log ends:\n{_log_tail(node_dir)}"
                )
        if waiting and time.monotonic() > deadline:
            raise ClusterError(f"{', '.join(waiting)} not ready after {timeout} s")
        if waiting:
            time.sleep(0.05)  # polling another process's start-up: nothing to await here


def _with_credentials(directory: Path, plan: ClusterPlan) -> ClusterPlan:
    """Make an ``admin`` user for a new cluster with ``auth``; save its password 0600.

    The nodes keep only the password's hash; the password itself goes to the
    cluster directory's ``credentials.toml``, which ``dtk`` commands given
    ``--dir`` read. With ``tls`` the file also says where the CA is.
    """
    values: dict[str, Any] = {}
    if plan.tls:
        values |= {"tls": True, "ca": f"{TLS_DIR}/ca.crt"}
    if plan.auth and not plan.users:
        password = generate_password()
        user = {"name": "admin", "role": "admin", "password_hash": hash_password(password)}
        values |= {"user": "admin", "password": password}
        plan = attrs.evolve(plan, users=(user,))
    if values:
        directory.mkdir(parents=True, exist_ok=True)
        write_credentials(directory / CREDENTIALS_FILE, values)
    return plan


def start_cluster(
    directory: Path, plan: ClusterPlan | None = None, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Start every node of ``directory`` that is not running (writing ``plan`` first if new).

    Returns the status of every node once all are ready.
    """
    fresh = plan is not None and not (directory / PLAN_FILE).exists()
    if fresh:
        assert plan is not None
        plan = _with_credentials(directory, plan)
        write_plan(directory, plan)
    current = read_plan(directory)
    if plan is not None and not fresh and plan != current:
        raise ClusterError(
            f"{directory} already holds a cluster of {len(current.nodes)} node(s) planned "
            "differently; run `dtk cluster up --dir DIR` without settings to restart it, "
            "or use a new --dir"
        )
    started: list[str] = []
    try:
        for node in current.nodes:
            if node.name in current.gone:
                continue
            if _pid_of(directory / node.name) is None:
                _launch(directory, node)
                started.append(node.name)
        _wait_ready(directory, started, timeout)
    except ClusterError:
        stop_cluster(directory, only=started)
        if fresh:  # a first start that failed leaves no plan to trip over later
            (directory / PLAN_FILE).unlink(missing_ok=True)
        raise
    return cluster_status(directory)


def _health(address: str, credentials: Credentials) -> dict[str, Any] | None:
    try:
        return json.loads(http_get(address, "/health", credentials, timeout=1.0))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def cluster_status(directory: Path, credentials: Credentials | None = None) -> list[dict[str, Any]]:
    """One dict per node: name, pid, running, healthy, datacenter, rack, addresses.

    ``credentials`` default to those of the cluster directory, if any.
    """
    plan = read_plan(directory)
    creds = credentials or resolve_credentials(directory=directory)
    rows = []
    for node in plan.nodes:
        pid = _pid_of(directory / node.name)
        health = _health(node.http, creds) if pid is not None else None
        rows.append(
            {
                "name": node.name,
                "pid": pid,
                "running": pid is not None,
                "healthy": bool(health and health.get("status") == "ok"),
                "hints_pending": health.get("hints_pending", 0) if health else None,
                "gone": node.name in plan.gone,
                "datacenter": node.datacenter,
                "rack": node.rack,
                "resp": node.resp,
                "http": node.http,
                "native": node.native,
                "peer": node.peer,
            }
        )
    return rows


def stop_cluster(
    directory: Path, only: Sequence[str] | None = None, timeout: float = 15.0
) -> list[str]:
    """SIGTERM every running node (or those in ``only``), SIGKILL after ``timeout``."""
    plan = read_plan(directory)
    targets = {}
    for node in plan.nodes:
        if only is not None and node.name not in only:
            continue
        pid = _pid_of(directory / node.name)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            targets[node.name] = pid
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in targets.values()) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for other processes to exit
    for pid in targets.values():
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for name in targets:
        with contextlib.suppress(FileNotFoundError):
            (directory / name / "node.pid").unlink()
    return sorted(targets)


def place_new_node(
    plan: ClusterPlan, datacenter: str | None = None, rack: str | None = None
) -> tuple[str, str]:
    """Where a node joining ``plan`` goes: ``(datacenter, rack)``.

    A cluster made without ``--datacenters`` places nothing (empty labels) and
    refuses either. Otherwise the default datacenter is the one with the
    fewest nodes (not gone; the first on a tie), and the default rack the
    least used of its racks ``r1``... (``plan.racks`` of them, or those in use).
    """
    if not plan.datacenters:
        if datacenter or rack:
            raise ClusterError(
                "this cluster was made without --datacenters: its nodes declare no "
                "datacenter or rack (make a new one with dtk cluster up --datacenters ...)"
            )
        return "", ""
    if rack is not None and datacenter is None:
        raise ClusterError("--rack needs --datacenter")
    present = [node for node in plan.nodes if node.name not in plan.gone]
    if datacenter is None:
        counts = {name: 0 for name, _ in plan.datacenters}
        for node in present:
            counts[node.datacenter] = counts.get(node.datacenter, 0) + 1
        datacenter = min(counts, key=lambda name: counts[name])
    check_label("datacenter", datacenter)
    if rack is None:
        used = {f"r{i + 1}": 0 for i in range(plan.racks)}
        for node in present:
            if node.datacenter == datacenter and node.rack:
                used[node.rack] = used.get(node.rack, 0) + 1
        rack = min(used, key=lambda name: used[name]) if used else "r1"
    check_label("rack", rack)
    return datacenter, rack


def add_nodes(
    directory: Path,
    names: list[str],
    timeout: float = 30.0,
    *,
    datacenter: str | None = None,
    rack: str | None = None,
) -> list[str]:
    """Plan, configure and start new nodes that join the cluster of ``directory``.

    Each goes to ``datacenter`` and ``rack``, or where :func:`place_new_node`
    puts it.
    """
    plan = read_plan(directory)
    taken = {node.name for node in plan.nodes}
    clash = [name for name in names if name in taken]
    if clash:
        raise ClusterError(f"node name(s) {', '.join(clash)} already used in {directory}")
    host, port = plan.nodes[0].peer.rsplit(":", 1)
    base = int(port)
    added: list[NodePlan] = []
    for offset, name in enumerate(names):
        slot = base + (len(plan.nodes) + offset) * PORTS_PER_NODE
        so_far = attrs.evolve(plan, nodes=(*plan.nodes, *added))
        added.append(
            NodePlan(
                name,
                f"{host}:{slot}",
                f"{host}:{slot + 1}",
                f"{host}:{slot + 2}",
                f"{host}:{slot + 3}",
                *place_new_node(so_far, datacenter, rack),
            )
        )
    grown = attrs.evolve(plan, nodes=(*plan.nodes, *added), joined=(*plan.joined, *names))
    write_plan(directory, grown)
    for node in added:
        _launch(directory, node)
    try:
        _wait_ready(directory, names, timeout)
    except ClusterError:
        stop_cluster(directory, only=names)
        write_plan(directory, plan)
        raise
    return names


def add_user(directory: Path, name: str, role: str, password_hash: str) -> None:
    """Add (or replace) a user in every node's config; nodes read it when they restart."""
    from dynamo_toolkit_server.auth import Role, User

    User(name, Role.parse(role), password_hash)  # check before writing anything
    plan = read_plan(directory)
    users = [user for user in plan.users if user["name"] != name]
    users.append({"name": name, "role": Role.parse(role).label, "password_hash": password_hash})
    write_plan(directory, attrs.evolve(plan, auth=True, users=tuple(users)))


def mark_gone(directory: Path, names: list[str]) -> None:
    """Record that ``names`` left the cluster: ``up`` will not restart them."""
    plan = read_plan(directory)
    gone = tuple(sorted({*plan.gone, *names}))
    (directory / PLAN_FILE).write_text(
        json.dumps(attrs.evolve(plan, gone=gone).to_json(), indent=2)
    )


def next_names(directory: Path, count: int) -> list[str]:
    """Free node names ``nK`` after the highest one used."""
    used = [int(n.name[1:]) for n in read_plan(directory).nodes if n.name[1:].isdigit()]
    start = max(used, default=0) + 1
    return [f"n{start + i}" for i in range(count)]


__all__ += [
    "add_nodes",
    "add_user",
    "check_label",
    "ephemeral_ports",
    "format_datacenters",
    "free_base_port",
    "mark_gone",
    "next_names",
    "parse_datacenters",
    "place_new_node",
    "rack_name",
]
