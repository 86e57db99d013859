"""The reference server's command line, added to ``dtk`` as a plugin.

``dtk serve``, ``dtk cluster up|status|down|run|join|leave|remove|keep|replace|
plan|commit``, ``dtk repair`` and ``dtk get|put|del``. The server registers
this module under the ``dynamo_toolkit`` entry-point group; its
``dtk_cli_commands`` hook adds the commands.

The key and admin commands are clients: they talk to the nodes through
:class:`~dynamo_toolkit_server.client.Client`, so over the native protocol to
the nodes' :class:`~dynamo_toolkit_server.service.StoreService`, like any
other client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.hookspecs import hookimpl

__all__ = ["dtk_cli_commands"]

DEFAULT_DIR = ".dtk-cluster"
DEFAULT_BASE_PORT = 7100


class _LevelType(click.ParamType):  # type: ignore[type-arg]
    """A replica count or a consistency level name (``2``, ``LOCAL_QUORUM``)."""

    name = "count|level"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from dynamo_toolkit.consistency import ConsistencyLevel, parse_level

        try:
            level = parse_level(value)
        except DynamoError as exc:
            self.fail(str(exc), param, ctx)
        return level.value if isinstance(level, ConsistencyLevel) else level


_LEVEL = _LevelType()


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command()
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="node.toml"
)
@click.option("--id", "node_id", help="Node id (without --config: a one-node store).")
@click.option("--peer", default="127.0.0.1:7100", show_default=True, help="Node-to-node address.")
@click.option("--resp", default="127.0.0.1:7101", show_default=True, help="Redis protocol address.")
@click.option("--http", default="127.0.0.1:7102", show_default=True, help="HTTP address.")
@click.option("--native", default="127.0.0.1:7103", show_default=True, help="Native address.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Storage directory.")
@click.option(
    "--storage", default=None, help="Storage engine name (default rocksdb, durability none)."
)
@click.option(
    "--unauthenticated-network",
    is_flag=True,
    help="Allow addresses beyond loopback although HTTP, native and peer ports have no auth.",
)
@click.option(
    "--datacenter",
    default=None,
    help="This node's datacenter (without --config; with it, its [[members]] entry says).",
)
@click.option("--rack", default=None, help="This node's rack (without --config, as --datacenter).")
def serve(
    config_path: str | None,
    node_id: str | None,
    peer: str,
    resp: str,
    http: str,
    native: str,
    data_dir: str | None,
    storage: str | None,
    unauthenticated_network: bool,
    datacenter: str | None,
    rack: str | None,
) -> None:
    """Run one node in the foreground (SIGTERM or Ctrl-C stops it cleanly)."""
    from dynamo_toolkit_server.local_cluster import check_label
    from dynamo_toolkit_server.serve import run_node
    from dynamo_toolkit_server.settings import NodeSettings

    try:
        if config_path is not None and (datacenter is not None or rack is not None):
            raise click.UsageError(
                "--datacenter and --rack apply without --config; with a config file, set "
                "datacenter and rack in this node's [[members]] entry"
            )
        if config_path is not None:
            with open(config_path, "rb") as handle:
                data: dict[str, Any] = tomllib.load(handle)
        else:
            name = node_id or "n1"
            data = {
                "node": {
                    "id": name,
                    "peer": peer,
                    "resp": resp,
                    "http": http,
                    "native": native,
                    "data_dir": data_dir or f"./{name}-data",
                },
                "store": {"n": 1, "r": 1, "w": 1},
            }
            if datacenter is not None or rack is not None:
                member = {"id": name, "address": peer}
                if datacenter is not None:
                    member["datacenter"] = check_label("datacenter", datacenter)
                if rack is not None:
                    member["rack"] = check_label("rack", rack)
                data["members"] = [member]
        if storage is not None:
            data["storage_engine"] = storage
        if unauthenticated_network:
            data.setdefault("node", {})["unauthenticated_network"] = True
        settings = NodeSettings.from_dict(data)
    except (DynamoError, OSError, tomllib.TOMLDecodeError) as exc:
        raise _fail(exc) from exc
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_node(settings)


@click.group()
def cluster() -> None:
    """Run a local cluster of node processes in one directory."""


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"dtk_{param.name}"] = value
    return value


def _dir_option(function: Any) -> Any:
    """``--dir``, and the credentials of the commands that talk to its nodes."""
    options = [
        click.option(
            "--dir",
            "directory",
            default=DEFAULT_DIR,
            show_default=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="Cluster directory.",
        ),
        click.option(
            "--user",
            expose_value=False,
            callback=_remember,
            help="Log in as USER (default: $DTK_USER, else the credentials file).",
        ),
        click.option(
            "--password",
            expose_value=False,
            callback=_remember,
            help="USER's password; '-' reads it from stdin (default: $DTK_PASSWORD, else "
            "the credentials file).",
        ),
        click.option(
            "--credentials",
            expose_value=False,
            callback=_remember,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Credentials file (default: $DTK_CREDENTIALS, else DIR/credentials.toml).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _credentials(directory: Path) -> Any:
    """The credentials this command was given (flags, environment, file)."""
    from dynamo_toolkit_server.credentials import resolve_credentials

    meta = click.get_current_context().meta
    password: str | None = meta.get("dtk_password")
    if password == "-":
        password = sys.stdin.readline().rstrip("\n")
    try:
        return resolve_credentials(
            meta.get("dtk_user"), password, meta.get("dtk_credentials"), directory
        )
    except DynamoError as exc:
        raise _fail(exc) from exc


def _connect(directory: Path, addresses: list[str], timeout: float = 2.0) -> Any:
    """A client of ``addresses`` logged in with this command's credentials."""
    from dynamo_toolkit_server.client import Client

    return Client(addresses, timeout=timeout, **_credentials(directory).client_options())


def _start(
    directory: Path,
    nodes: int,
    base_port: int,
    n: int | None,
    r: int | str | None,
    w: int | str | None,
    config_path: str | None,
    storage: str | None,
    durability: str | None,
    auth: bool,
    tls: bool,
    datacenters: str | None,
    racks: int | None,
    wan_rtt: float | None,
) -> list[dict[str, Any]]:
    from dynamo_toolkit_server.local_cluster import (
        PLAN_FILE,
        conflicting_settings,
        parse_datacenters,
        plan_cluster,
        read_plan,
        start_cluster,
    )

    if (directory / PLAN_FILE).exists():
        # An existing cluster restarts as planned: settings that differ from its
        # own are refused rather than silently ignored.
        context = click.get_current_context()
        given = {
            name: value
            for name, value in context.params.items()
            if context.get_parameter_source(name) is ParameterSource.COMMANDLINE
            and name not in ("directory", "as_json")
        }
        conflicts = conflicting_settings(read_plan(directory), given)
        if conflicts:
            raise click.ClickException(
                f"{directory} already holds a cluster made with other settings: "
                f"{'; '.join(conflicts)}. Restart it as it is with: dtk cluster up --dir "
                f"{directory}, or use another --dir for a new cluster"
            )
        return start_cluster(directory)
    topology = parse_datacenters(datacenters) if datacenters is not None else None
    if topology is not None:
        context = click.get_current_context()
        if context.get_parameter_source("nodes") is not ParameterSource.COMMANDLINE:
            nodes = sum(count for _, count in topology)  # --nodes defaults to their sum
    config: dict[str, Any] = {}
    if config_path is not None:
        with open(config_path, "rb") as handle:
            config = tomllib.load(handle)
    plan = plan_cluster(
        nodes,
        base_port,
        n=n,
        r=r,
        w=w,
        config=config,
        storage=storage,
        durability=durability,
        auth=auth,
        tls=tls,
        datacenters=topology,
        racks=racks,
        wan_rtt=wan_rtt,
    )
    return start_cluster(directory, plan)


def _cluster_options(function: Any) -> Any:
    options = [
        click.option(
            "--nodes",
            default=3,
            show_default=True,
            help="Number of nodes (with --datacenters: their sum, if given at all).",
        ),
        click.option(
            "--datacenters",
            metavar="NAME:NODES,...",
            default=None,
            help="Place the nodes in datacenters, e.g. dc1:3,dc2:3 (nodes n1.. in order).",
        ),
        click.option(
            "--racks",
            type=int,
            default=None,
            help="Racks per datacenter, r1.. assigned round-robin (default 1; needs "
            "--datacenters).",
        ),
        click.option(
            "--wan-rtt",
            type=float,
            default=None,
            help="Round-trip milliseconds between datacenters, added by the delayed "
            "transport (needs --datacenters; default none).",
        ),
        click.option("--base-port", default=DEFAULT_BASE_PORT, show_default=True),
        click.option("--n", type=int, help="Replicas per key (default min(3, nodes))."),
        click.option(
            "--r",
            type=_LEVEL,
            help="Read quorum: a count or a level such as LOCAL_QUORUM (default min(2, N); "
            "LOCAL_QUORUM with --datacenters).",
        ),
        click.option(
            "--w",
            type=_LEVEL,
            help="Write quorum: a count or a level (default min(2, N); LOCAL_QUORUM with "
            "--datacenters).",
        ),
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False)),
        click.option(
            "--storage", default=None, help="Storage engine (default rocksdb, durability none)."
        ),
        click.option(
            "--durability",
            type=click.Choice(["sync", "group", "none"]),
            default=None,
            help="Durability mode of the engine (engines that have modes: sqlite, lmdb, rocksdb).",
        ),
        click.option(
            "--auth",
            is_flag=True,
            default=False,
            help="Clients log in: make an admin user, its password saved 0600 in "
            "DIR/credentials.toml (dtk commands with --dir use it).",
        ),
        click.option(
            "--tls",
            is_flag=True,
            default=False,
            help="Client and peer ports speak TLS: make a local CA and node certificates "
            "in DIR/tls.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return _dir_option(function)


def _dtk_command() -> str:
    """How to run ``dtk`` from another shell: its path when it is not on PATH."""
    beside = Path(sys.executable).with_name("dtk")
    if beside.exists() and shutil.which("dtk") != str(beside):
        return str(beside)  # e.g. make run's virtual environment, not activated
    return "dtk"


def _print_nodes(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        keys = ("name", "pid", "datacenter", "rack", "resp", "http", "native")
        click.echo(json.dumps({"nodes": [{k: row[k] for k in keys} | _extra(row) for row in rows]}))
        return
    for row in rows:
        state = "up" if row["running"] else "left" if row.get("gone") else "down"
        health = "healthy" if row["healthy"] else "unhealthy" if row["running"] else "-"
        hints = row["hints_pending"] if row["hints_pending"] is not None else "-"
        place = f"dc={row['datacenter'] or '-'} rack={row['rack'] or '-'}"
        click.echo(
            f"{row['name']:<4} {state:<5} {health:<9} {place:<16} pid={row['pid'] or '-':<8} "
            f"hints={hints:<6} resp={row['resp']} http={row['http']} native={row['native']}"
        )


def _extra(row: dict[str, Any]) -> dict[str, Any]:
    return {"running": row["running"], "healthy": row["healthy"], "hints": row["hints_pending"]}


@cluster.command()
@_cluster_options
@click.option("--json", "as_json", is_flag=True, help="Print the nodes as JSON.")
def up(directory: Path, as_json: bool, **options: Any) -> None:
    """Start the cluster in the background (restarting stopped nodes with their data)."""
    try:
        rows = _start(directory, **options)
    except (DynamoError, OSError) as exc:
        raise _fail(exc) from exc
    _print_nodes(rows, as_json)
    if not as_json:
        _print_login(directory, rows[0])


@cluster.command()
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the nodes as JSON.")
def status(directory: Path, as_json: bool) -> None:
    """Show each node: running, healthy, addresses."""
    try:
        _print_nodes(_status(directory), as_json)
    except DynamoError as exc:
        raise _fail(exc) from exc


@cluster.command()
@_dir_option
def down(directory: Path) -> None:
    """Stop every node cleanly (SIGTERM; SIGKILL after 15 s)."""
    from dynamo_toolkit_server.local_cluster import stop_cluster

    try:
        stopped = stop_cluster(directory)
    except DynamoError as exc:
        raise _fail(exc) from exc
    click.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@cluster.command()
@_cluster_options
def run(directory: Path, **options: Any) -> None:
    """Start the cluster in the foreground; Ctrl-C stops every node."""
    from dynamo_toolkit_server.local_cluster import stop_cluster

    try:
        rows = _start(directory, **options)
    except (DynamoError, OSError) as exc:
        raise _fail(exc) from exc
    _print_nodes(rows, False)
    first = rows[0]
    host, port = first["resp"].rsplit(":", 1)
    addresses = ", ".join(repr(row["native"]) for row in rows)
    if _print_login(directory, first):
        click.echo("Ctrl-C stops every node.")
    else:
        click.echo(
            f"""
Connect with:
  redis-cli -h {host} -p {port}
  curl -X PUT --data hello http://{first["http"]}/kv/greeting; curl http://{first["http"]}/kv/greeting
  {sys.executable} -c "from dynamo_toolkit_server.client import Client; \\
c = Client([{addresses}]); c.put('k', ['a', 'b']); print(c.get('k').values)"
  {_dtk_command()} get k --dir {directory}
Status: {_dtk_command()} cluster status --dir {directory}     Ctrl-C stops every node.
"""
        )
    # Blocked signals are queued for sigwait instead of raising mid-print.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        stopped = stop_cluster(directory)
        click.echo(f"\nstopped: {', '.join(stopped)}")


def _print_login(directory: Path, first: dict[str, Any]) -> bool:
    """How to connect to a cluster with credentials or TLS; whether it has either."""
    from dynamo_toolkit_server.credentials import CREDENTIALS_FILE

    path = directory / CREDENTIALS_FILE
    if not path.exists():
        return False
    creds = _credentials(directory)
    host, port = first["resp"].rsplit(":", 1)
    redis_cli = f"redis-cli -h {host} -p {port}"
    curl = "curl"
    redis_py = f"redis.Redis({host!r}, {port}"
    client = "Client([...]"
    lines = []
    if creds.tls:
        lines.append(f"Ports speak TLS; the nodes' CA certificate is {creds.ca}")
        redis_cli += f" --tls --cacert {creds.ca}"
        curl += f" --cacert {creds.ca}"
        redis_py += f", ssl=True, ssl_ca_certs={str(creds.ca)!r}"
        client += f", tls=ssl.create_default_context(cafile={str(creds.ca)!r})"
    if creds.password is not None:
        # The password stays in the file: these lines read it from there.
        secret = f"$(sed -n 's/^password = \"\\(.*\\)\"$/\\1/p' {path})"
        lines.append(f"Clients log in as {creds.user!r}; the password is in {path} (mode 0600):")
        lines.append(f"  export DTK_PASSWORD={secret}")
        # REDISCLI_AUTH keeps the password out of the process list.
        redis_cli = f'REDISCLI_AUTH="$DTK_PASSWORD" {redis_cli} --user {creds.user}'
        curl += f' -u "{creds.user}:$DTK_PASSWORD"'
        redis_py += f', username={creds.user!r}, password=os.environ["DTK_PASSWORD"]'
        client += f', user={creds.user!r}, password=os.environ["DTK_PASSWORD"]'
    click.echo(
        "\n"
        + "\n".join(lines)
        + f"""
Connect with:
  {redis_cli}
  {curl} {creds.scheme}://{first["http"]}/kv/greeting
  {_dtk_command()} get greeting --dir {directory}      (reads {CREDENTIALS_FILE})
Python: {redis_py})   {client})
Status: {_dtk_command()} cluster status --dir {directory}"""
    )
    return True


def _client(directory: Path, node: tuple[str, ...]) -> Any:
    from dynamo_toolkit_server.local_cluster import read_plan

    addresses = list(node) or [n.native for n in read_plan(directory).nodes]
    return _connect(directory, addresses)


def _key_command(function: Any) -> Any:
    function = click.option(
        "--node",
        multiple=True,
        help="Native address host:port (repeatable); default: --dir's nodes.",
    )(function)
    return _dir_option(function)


@click.command("get")
@click.argument("key")
@click.option("--r", type=_LEVEL, help="A count or a level (e.g. LOCAL_QUORUM).")
@_key_command
def get_command(key: str, r: int | str | None, directory: Path, node: tuple[str, ...]) -> None:
    """Print KEY's value (one line per sibling)."""
    try:
        with _client(directory, node) as client:
            result = client.get(key, r=r)
    except DynamoError as exc:
        raise _fail(exc) from exc
    except Exception as exc:  # the client's own errors
        raise _fail(exc) from exc
    if not result.values:
        raise click.ClickException(f"{key}: not found")
    for value in result.values:
        click.echo(value.decode(errors="replace") if isinstance(value, bytes) else value)


@click.command("put")
@click.argument("key")
@click.argument("value")
@click.option("--w", type=_LEVEL, help="A count or a level (e.g. LOCAL_QUORUM).")
@_key_command
def put_command(
    key: str, value: str, w: int | str | None, directory: Path, node: tuple[str, ...]
) -> None:
    """Set KEY to VALUE (superseding every version a read sees)."""
    try:
        with _client(directory, node) as client:
            context = client.get(key).context
            client.put(key, value, context=context, w=w)
    except Exception as exc:
        raise _fail(exc) from exc
    click.echo("OK")


@click.command("del")
@click.argument("key")
@click.option("--w", type=_LEVEL, help="A count or a level (e.g. LOCAL_QUORUM).")
@_key_command
def del_command(key: str, w: int | str | None, directory: Path, node: tuple[str, ...]) -> None:
    """Delete KEY (a versioned tombstone)."""
    try:
        with _client(directory, node) as client:
            # Without a context the node reads the key and tombstones every
            # sibling it sees (the service's delete without context).
            client.delete(key, w=w)
    except Exception as exc:
        raise _fail(exc) from exc
    click.echo("OK")


def _admin_client(directory: Path, avoid: tuple[str, ...] = ()) -> Any:
    """A client of the running nodes of ``directory`` (not those in ``avoid``)."""
    rows = [r for r in _status(directory) if r["running"] and r["name"] not in avoid]
    if not rows:
        raise click.ClickException(f"no running node in {directory}")
    return _connect(directory, [row["native"] for row in rows], timeout=30.0)


def _status(directory: Path) -> list[dict[str, Any]]:
    from dynamo_toolkit_server.local_cluster import cluster_status

    return cluster_status(directory, _credentials(directory))


def _print_plan(plan: dict[str, Any], keys_per_node: dict[str, int]) -> None:
    total_copies = sum(keys_per_node.values())
    owners = len(plan["owners_before"]) or 1
    click.echo(f"epoch {plan['epoch'] - 1} -> {plan['epoch']}")
    click.echo(f"owners: {', '.join(plan['owners_before'])} -> {', '.join(plan['owners_after'])}")
    click.echo(
        f"{len(plan['moves'])} ranges change replicas, "
        f"{plan['moved_fraction']:.1%} of the key space"
    )
    for node, fraction in sorted(plan["gained_fraction"].items()):
        # Copies a node receives: its share of the key space times the keys
        # per replica set (all stored copies over the owners' count, times N/N).
        estimate = fraction * total_copies / max(1, min(owners, 3)) if total_copies else 0
        click.echo(f"  {node} receives {fraction:.1%} of the key space (~{estimate:,.0f} keys)")
    if plan.get("placement"):
        click.echo("replicas per datacenter after the commit:")
        for line in plan["placement"]:
            click.echo(f"  {line}")


def _stored_keys(directory: Path) -> dict[str, int]:
    from dynamo_toolkit_server.credentials import http_get

    credentials = _credentials(directory)
    counts = {}
    for row in _status(directory):
        if not row["running"]:
            continue
        try:
            metrics = http_get(row["http"], "/metrics", credentials)
        except OSError:
            continue
        for line in metrics.decode().splitlines():
            if line.startswith("dtk_stored_keys "):
                counts[row["name"]] = int(float(line.split()[1]))
    return counts


@cluster.command("join")
@_dir_option
@click.option("--nodes", "count", default=1, show_default=True, help="How many nodes to add.")
@click.option("--name", "names", multiple=True, help="Name(s) of the new node(s).")
@click.option(
    "--datacenter",
    default=None,
    help="Datacenter of the new node(s) (default: the one with the fewest nodes).",
)
@click.option("--rack", default=None, help="Rack of the new node(s) (default: the least used one).")
def join_command(
    directory: Path,
    count: int,
    names: tuple[str, ...],
    datacenter: str | None,
    rack: str | None,
) -> None:
    """Start new node(s) that join the cluster (staged: then plan and commit)."""
    from dynamo_toolkit_server.local_cluster import add_nodes, next_names

    try:
        chosen = list(names) or next_names(directory, count)
        add_nodes(directory, chosen, datacenter=datacenter, rack=rack)
        _wait_known(directory, chosen)
        with _admin_client(directory) as client:
            plan = client.admin("cluster_plan")
    except (DynamoError, OSError) as exc:
        raise _fail(exc) from exc
    click.echo(f"started {', '.join(chosen)} (joining{_placed(directory, chosen)}). Staged plan:")
    _print_plan(plan, _stored_keys(directory))
    click.echo(f"commit with: dtk cluster commit --dir {directory}")


def _placed(directory: Path, names: list[str]) -> str:
    """``", in dc2 rack r1"`` for nodes placed in a datacenter, else ``""``."""
    from dynamo_toolkit_server.local_cluster import read_plan

    places = {(n.datacenter, n.rack) for n in read_plan(directory).nodes if n.name in names}
    return "".join(f", in {dc} rack {rack}" for dc, rack in sorted(places) if dc)


def _wait_known(directory: Path, names: list[str], timeout: float = 30.0) -> None:
    """Wait until every running node's view lists ``names`` (gossip takes a few rounds)."""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = []
        for row in _status(directory):
            if row["running"]:
                with contextlib.suppress(Exception), _admin_client_for(directory, row) as client:
                    views.append(set(client.admin("cluster_state")["proposed_owners"]))
        if views and all(set(names) <= view for view in views):
            return
        time.sleep(0.2)  # polling other processes
    raise click.ClickException(f"{', '.join(names)} not known to every node after {timeout} s")


def _stage(directory: Path, node: str, action: str) -> None:
    try:
        with _admin_client(directory, avoid=(node,) if action == "remove" else ()) as client:
            client.admin("cluster_stage", node=node, action=action)
            plan = client.admin("cluster_plan")
    except Exception as exc:
        raise _fail(exc) from exc
    click.echo(f"staged: {node} {action}s. Plan:")
    _print_plan(plan, _stored_keys(directory))
    click.echo(f"commit with: dtk cluster commit --dir {directory}")


@cluster.command("leave")
@click.argument("node")
@_dir_option
def leave_command(node: str, directory: Path) -> None:
    """Stage NODE to leave: it hands its data off after the commit, then stops."""
    _stage(directory, node, "leave")


@cluster.command("remove")
@click.argument("node")
@_dir_option
def remove_command(node: str, directory: Path) -> None:
    """Stage a dead NODE for removal: its data is rebuilt from the survivors."""
    _stage(directory, node, "remove")


@cluster.command("keep")
@click.argument("node")
@_dir_option
def keep_command(node: str, directory: Path) -> None:
    """Undo a staged leave or remove of NODE (before the commit)."""
    _stage(directory, node, "keep")


@cluster.command("replace")
@click.argument("dead")
@click.argument("new")
@_dir_option
@click.option("--datacenter", default=None, help="NEW's datacenter (default: DEAD's).")
@click.option("--rack", default=None, help="NEW's rack (default: DEAD's).")
def replace_command(
    dead: str, new: str, directory: Path, datacenter: str | None, rack: str | None
) -> None:
    """Start NEW and stage DEAD's removal; one commit rebuilds DEAD's share elsewhere.

    NEW takes DEAD's datacenter and rack unless told otherwise.
    """
    from dynamo_toolkit_server.local_cluster import add_nodes, read_plan

    try:
        old = next((n for n in read_plan(directory).nodes if n.name == dead), None)
        if old is not None and old.datacenter and datacenter is None:
            datacenter = old.datacenter
            rack = rack if rack is not None else old.rack or None
        add_nodes(directory, [new], datacenter=datacenter, rack=rack)
    except (DynamoError, OSError) as exc:
        raise _fail(exc) from exc
    _wait_known(directory, [new])
    _stage(directory, dead, "remove")


@cluster.command("plan")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(directory: Path, as_json: bool) -> None:
    """Show what committing the staged changes would move."""
    try:
        with _admin_client(directory) as client:
            plan = client.admin("cluster_plan")
    except Exception as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps(plan))
    else:
        _print_plan(plan, _stored_keys(directory))


@cluster.command("commit")
@_dir_option
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the handoff.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for handoff.")
def commit_command(directory: Path, wait: bool, timeout: float) -> None:
    """Commit the staged changes; follow the data handoff with a progress bar."""
    from rich.progress import Progress

    from dynamo_toolkit_server.local_cluster import mark_gone, stop_cluster

    try:
        with _admin_client(directory) as client:
            plan = client.admin("cluster_commit")
    except Exception as exc:
        raise _fail(exc) from exc
    click.echo(f"committed epoch {plan['epoch']}: owners {', '.join(plan['owners_after'])}")
    if not wait:
        return
    started = time.monotonic()
    with Progress(transient=False) as progress:
        bar = progress.add_task("handoff", total=None)
        while True:
            reports = []
            for row in _status(directory):
                if row["running"]:
                    with (
                        contextlib.suppress(Exception),
                        _admin_client_for(directory, row) as client,
                    ):
                        reports.append(client.admin("cluster_state"))
            total = sum(r["handoff"]["ranges_total"] for r in reports)
            done = sum(r["handoff"]["ranges_done"] for r in reports)
            progress.update(bar, total=max(total, 1), completed=done)
            if reports and all(r["serving_epoch"] >= plan["epoch"] for r in reports):
                progress.update(bar, total=max(total, 1), completed=max(total, 1))
                break
            if time.monotonic() - started > timeout:
                raise click.ClickException(f"handoff not finished after {timeout} s")
            time.sleep(0.2)  # polling other processes
    left = [n for n in plan["owners_before"] if n not in plan["owners_after"]]
    if left:
        stop_cluster(directory, only=left)
        mark_gone(directory, left)
        click.echo(f"handed off and stopped: {', '.join(left)}")
    click.echo(f"handoff done in {time.monotonic() - started:.1f} s")


def _admin_client_for(directory: Path, row: dict[str, Any]) -> Any:
    return _connect(directory, [row["native"]], timeout=10.0)


@click.command("repair")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def repair_command(directory: Path, as_json: bool) -> None:
    """Run a full anti-entropy pass on every running node; report what it did."""
    try:
        rows = [row for row in _status(directory) if row["running"]]
    except DynamoError as exc:
        raise _fail(exc) from exc
    reports = {}
    for row in rows:
        try:
            with _connect(directory, [row["native"]], timeout=600.0) as client:
                reports[row["name"]] = client.repair()
        except Exception as exc:
            raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps({"nodes": reports}))
        return
    for name, report in reports.items():
        click.echo(
            f"{name}: {report['partitions']} partitions, {report['keys_compared']} keys "
            f"compared, {report['keys_repaired']} repaired, "
            f"{report['tombstones_collected']} tombstones collected, "
            f"{report['peers_unreachable']} peer exchanges skipped (unreachable)"
        )


def _new_password(from_stdin: bool) -> tuple[str, bool]:
    """A password from stdin, or a generated one; and whether it was generated."""
    from dynamo_toolkit_server.auth import generate_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password, False
    return generate_password(), True


@click.group("user")
def user_group() -> None:
    """Users of the client ports: hash a password for a node's [[users]]."""


@user_group.command("hash")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def hash_command(password_stdin: bool) -> None:
    """Print the password_hash of a password (prompted for, or from stdin)."""
    from dynamo_toolkit_server.auth import hash_password

    if password_stdin:
        password, _ = _new_password(True)
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    click.echo(hash_password(password))


@cluster.group("user")
def cluster_user() -> None:
    """Users of a local cluster's client ports."""


@cluster_user.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["read", "readwrite", "admin"]),
    required=True,
    help="What the user may do.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin (else one is made)."
)
@_dir_option
def user_add_command(name: str, role: str, password_stdin: bool, directory: Path) -> None:
    """Add user NAME to every node's config (nodes read it when they restart)."""
    from dynamo_toolkit_server.auth import hash_password
    from dynamo_toolkit_server.local_cluster import add_user

    password, generated = _new_password(password_stdin)
    try:
        add_user(directory, name, role, hash_password(password))
    except DynamoError as exc:
        raise _fail(exc) from exc
    if generated:
        # Shown once, never stored: the nodes keep only its hash.
        click.echo(f"password of {name}: {password}")
    click.echo(
        f"added {name} ({role}); restart the nodes to apply: dtk cluster down --dir "
        f"{directory} && dtk cluster up --dir {directory}"
    )


@hookimpl
def dtk_cli_commands(cli: click.Group) -> None:
    """Add the reference server's commands to ``dtk``."""
    commands = (serve, cluster, user_group, get_command, put_command, del_command, repair_command)
    for command in commands:
        cli.add_command(command)
