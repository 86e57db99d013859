"""Connection and server commands: answered at once, without waiting for replicas.

PING, ECHO, QUIT, AUTH [user] pass, HELLO [2|3 [AUTH user pass] [SETNAME name]],
ACL WHOAMI|USERS, CLIENT SETNAME|GETNAME|ID|INFO|LIST|SETINFO|HELP, SELECT 0,
INFO [section ...],
CONFIG GET, DTK.CONSISTENCY [LEVEL | R W]; and the commands refused with their reason
(expiry, transactions). COMMAND, which describes the table, is in
:mod:`.registry`.

Differences from Redis: HELLO's map says ``server: dynamo-toolkit``
(``version`` is the Redis version whose protocol is spoken, 7.0.0; INFO's
``dtk_version`` is ours); users, with roles rather than ACL rules, come from
the node's ``[[users]]`` (``AUTH <password>`` logs in as the user called
``default``; with no users every client is ``default`` with every right), and
ACL answers only WHOAMI and, for admins, USERS; CLIENT LIST is for admins
(it shows every client's address); CONFIG GET knows a
handful of parameters and CONFIG SET is refused; ``SELECT 0`` is accepted, any
other index refused.

``DTK.CONSISTENCY [LEVEL | R W]`` sets this connection's read and write
quorums: each a count (``1 <= R, W <= N``) or a consistency level by name
(``ONE``, ``TWO``, ``THREE``, ``QUORUM``, ``ALL``, ``LOCAL_ONE``,
``LOCAL_QUORUM``, ``EACH_QUORUM``); one argument sets both. With no argument
it answers the map ``n``, ``r``, ``w`` in effect (a level as its name).
"""

from __future__ import annotations

import fnmatch
import os
import platform
import time

from dynamo_toolkit import __version__ as dtk_version
from dynamo_toolkit_server.auth import Role
from dynamo_toolkit_server.resp.errors import CommandError, arity_error
from dynamo_toolkit_server.resp.protocol import (
    EMPTY_ARRAY,
    OK,
    PONG,
    Command,
    array,
    bulk,
    encoder_for,
    integer,
    simple,
)
from dynamo_toolkit_server.resp.session import (
    CONNECTION,
    REDIS_VERSION,
    WRITE,
    CommandSpec,
    ServerContext,
    Session,
    SyncHandler,
    parse_int,
)

__all__ = ["CONNECTION_SPECS", "NO_EXPIRY", "REFUSED", "SERVER_SPECS"]

_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."

#: Why commands and options that set an expiry are refused.
NO_EXPIRY = "is not supported: keys do not expire in dynamo-toolkit"
_NO_TRANSACTIONS = (
    "is not supported: dynamo-toolkit has no transactions (use a pipeline without MULTI)"
)


def _valid_name(name: bytes) -> bool:
    # Redis refuses spaces, newlines and anything outside printable ASCII.
    return all(33 <= c <= 126 for c in name)


def _ping(s: Session, args: Command) -> bytes:
    return PONG if len(args) == 1 else s.enc.bulk(args[1])


def _echo(s: Session, args: Command) -> bytes:
    return bulk(args[1])


def _quit(s: Session, args: Command) -> bytes:
    s.quit = True
    return OK


async def _auth(s: Session, args: Command) -> bytes:
    ctx = s.context
    if len(args) == 2:
        if not ctx.authenticator.enabled:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the "
                "default user. Are you sure your configuration is correct?"
            )
        user, password = b"default", args[1]
    else:
        user, password = args[1], args[2]
    if not await ctx.log_in(s, user, password):
        raise CommandError(_WRONGPASS)
    return OK


def _acl(s: Session, args: Command) -> bytes:
    sub = args[1].upper()
    if sub == b"WHOAMI" and len(args) == 2:
        return bulk(s.user.encode())
    if sub == b"USERS" and len(args) == 2:
        if s.role < Role.ADMIN:
            raise CommandError(
                f"NOPERM User {s.user} has no permissions to run the 'acl|users' command"
            )
        names = sorted(s.context.authenticator.users) or ["default"]
        return array([bulk(name.encode()) for name in names])
    if sub in (b"WHOAMI", b"USERS"):
        raise arity_error(f"acl|{sub.decode().lower()}")
    text = args[1].decode("utf-8", "replace")
    raise CommandError(
        f"ERR ACL {text} is not supported: users and roles come from the node's "
        "[[users]] (ACL WHOAMI and ACL USERS work)"
    )


async def _hello(s: Session, args: Command) -> bytes:
    protocol = s.protocol
    position = 1
    if len(args) > 1:
        protocol = parse_int(args[1], "ERR Protocol version is not an integer or out of range")
        if protocol not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
        position = 2
    credentials: tuple[bytes, bytes] | None = None
    name: bytes | None = None
    while position < len(args):
        option = args[position].upper()
        if option == b"AUTH" and position + 2 < len(args):
            credentials = (args[position + 1], args[position + 2])
            position += 3
        elif option == b"SETNAME" and position + 1 < len(args):
            name = args[position + 1]
            position += 2
        else:
            text = args[position].decode("utf-8", "replace")
            raise CommandError(f"ERR Syntax error in HELLO option '{text}'")
    if credentials is not None:
        if not await s.context.log_in(s, *credentials):
            raise CommandError(_WRONGPASS)
    elif not s.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise "
            "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
            "client and select the RESP protocol version at the same time"
        )
    if name is not None:
        _set_name(s, name)
    s.enc = enc = encoder_for(protocol)
    return enc.map(
        [
            (bulk(b"server"), bulk(b"dynamo-toolkit")),
            (bulk(b"version"), bulk(REDIS_VERSION.encode())),
            (bulk(b"proto"), integer(protocol)),
            (bulk(b"id"), integer(s.client_id)),
            (bulk(b"mode"), bulk(b"standalone")),
            (bulk(b"role"), bulk(b"master")),
            (bulk(b"modules"), EMPTY_ARRAY),
        ]
    )


def _set_name(s: Session, name: bytes) -> None:
    if not _valid_name(name):
        raise CommandError(
            "ERR Client names cannot contain spaces, newlines or special characters."
        )
    s.name = name or None


_CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST",
    "    Return information about client connections.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Set client library name or version.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
]

# Subcommand -> exact argument count including "CLIENT" and the subcommand.
_CLIENT_ARITY = {
    b"SETNAME": 3,
    b"GETNAME": 2,
    b"ID": 2,
    b"INFO": 2,
    b"LIST": 2,
    b"SETINFO": 4,
    b"HELP": 2,
}


def _client(s: Session, args: Command) -> bytes:
    sub = args[1].upper()
    expected = _CLIENT_ARITY.get(sub)
    if expected is None:
        text = args[1].decode("utf-8", "replace")
        raise CommandError(f"ERR unknown subcommand '{text}'. Try CLIENT HELP.")
    if len(args) != expected:
        raise arity_error(f"client|{sub.decode().lower()}")
    if sub == b"SETNAME":
        _set_name(s, args[2])
        return OK
    if sub == b"GETNAME":
        return s.enc.bulk(s.name)
    if sub == b"ID":
        return integer(s.client_id)
    if sub == b"INFO":
        return bulk(s.info_line().encode())
    if sub == b"LIST":
        if s.role < Role.ADMIN:
            raise CommandError(
                f"NOPERM User {s.user} has no permissions to run the 'client|list' command"
            )
        sessions = s.context.sessions.values()
        return bulk("".join(other.info_line() for other in sessions).encode())
    if sub == b"SETINFO":
        attribute = args[2].upper()
        if attribute not in (b"LIB-NAME", b"LIB-VER"):
            text = args[2].decode("utf-8", "replace")
            raise CommandError(f"ERR Unrecognized option '{text}'")
        if not _valid_name(args[3]):
            label = attribute.decode().lower()
            raise CommandError(
                f"ERR {label} cannot contain spaces, newlines or special characters."
            )
        if attribute == b"LIB-NAME":
            s.lib_name = args[3]
        else:
            s.lib_ver = args[3]
        return OK
    return array([simple(line) for line in _CLIENT_HELP])


def _select(s: Session, args: Command) -> bytes:
    if parse_int(args[1]) != 0:
        raise CommandError("ERR DB index is out of range")
    return OK


_CONFIG = {
    "appendonly": "no",
    "databases": "1",
    "maxmemory": "0",
    "save": "",
}


def _config(s: Session, args: Command) -> bytes:
    sub = args[1].upper()
    if sub == b"GET":
        if len(args) < 3:
            raise arity_error("config|get")
        patterns = [arg.decode("utf-8", "replace").lower() for arg in args[2:]]
        pairs = [
            (bulk(name.encode()), bulk(value.encode()))
            for name, value in _CONFIG.items()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        ]
        return s.enc.map(pairs)
    if sub in (b"SET", b"RESETSTAT", b"REWRITE"):
        raise CommandError(f"ERR CONFIG {sub.decode()} is not supported by dynamo-toolkit")
    text = args[1].decode("utf-8", "replace")
    raise CommandError(f"ERR unknown subcommand '{text}'. Try CONFIG HELP.")


def _info_sections(ctx: ServerContext) -> dict[str, list[str]]:
    service = ctx.service
    status = service.status()
    quorums = status.quorums
    stats = status.stats
    now = time.monotonic()
    uptime = int(now - ctx.started)
    local_keys = service.local_keys()
    return {
        "server": [
            f"redis_version:{REDIS_VERSION}",
            f"dtk_version:{dtk_version}",
            "redis_mode:standalone",
            f"os:{platform.system()} {platform.release()} {platform.machine()}",
            "arch_bits:64",
            f"process_id:{os.getpid()}",
            f"run_id:{ctx.run_id}",
            f"tcp_port:{ctx.port}",
            f"server_time_usec:{int(time.time() * 1_000_000)}",
            f"uptime_in_seconds:{uptime}",
            f"uptime_in_days:{uptime // 86400}",
        ],
        "clients": [f"connected_clients:{len(ctx.sessions)}"],
        "stats": [
            f"total_connections_received:{ctx.total_connections}",
            f"total_commands_processed:{ctx.total_commands}",
        ],
        "replication": ["role:master", "connected_slaves:0"],
        "dynamo": [
            f"dtk_node_id:{status.node_id}",
            f"dtk_datacenter:{status.datacenter}",
            f"dtk_rack:{status.rack}",
            f"dtk_members:{','.join(status.members)}",
            f"dtk_n:{quorums.n}",
            f"dtk_r:{quorums.r}",
            f"dtk_w:{quorums.w}",
            f"dtk_max_pair_bytes:{status.max_pair_bytes}",
            f"dtk_coordinated_reads:{stats.reads}",
            f"dtk_coordinated_writes:{stats.writes}",
            f"dtk_quorum_failures:{stats.quorum_failures}",
            f"dtk_read_repairs:{stats.read_repairs}",
            f"dtk_replica_reads:{stats.replica_reads}",
            f"dtk_replica_writes:{stats.replica_writes}",
        ],
        # Keys held by this node's replica share, not the whole cluster's.
        "keyspace": [f"db0:keys={local_keys},expires=0,avg_ttl=0"] if local_keys else [],
    }


def _info(s: Session, args: Command) -> bytes:
    sections = _info_sections(s.context)
    wanted = {arg.decode("utf-8", "replace").lower() for arg in args[1:]}
    if wanted & {"all", "everything", "default"} or not wanted:
        wanted = set(sections)
    if "dtk" in wanted:
        wanted.add("dynamo")
    parts = [
        f"# {title.capitalize()}\r\n" + "".join(line + "\r\n" for line in lines)
        for title, lines in sections.items()
        if title in wanted
    ]
    return bulk("\r\n".join(parts).encode())


def _quorum_reply(value: int | str) -> bytes:
    return integer(value) if isinstance(value, int) else bulk(value.encode())


def _quorum_arg(arg: bytes) -> int | str:
    """A count (as RESP integers are parsed) or a level's name, checked by the service."""
    if arg[:1].isdigit() or arg[:1] in (b"-", b"+"):
        return parse_int(arg)
    return arg.decode("utf-8", "replace")


def _consistency(s: Session, args: Command) -> bytes:
    if len(args) == 1:
        quorums = s.service.quorums()
        return s.enc.map(
            [
                (bulk(b"n"), integer(quorums.n)),
                (bulk(b"r"), _quorum_reply(quorums.r if s.r is None else s.r)),
                (bulk(b"w"), _quorum_reply(quorums.w if s.w is None else s.w)),
            ]
        )
    if len(args) == 2:
        r = w = _quorum_arg(args[1])
    elif len(args) == 3:
        r, w = _quorum_arg(args[1]), _quorum_arg(args[2])
    else:
        raise arity_error("dtk.consistency")
    s.r, s.w = s.service.check_quorums(r, w)
    return OK


def _refuse(reason: str) -> SyncHandler:
    def refuse(s: Session, args: Command) -> bytes:
        raise CommandError(f"ERR {args[0].decode('utf-8', 'replace').upper()} {reason}")

    return refuse


_REFUSE_EXPIRY = _refuse(NO_EXPIRY)
_REFUSE_TRANSACTION = _refuse(_NO_TRANSACTIONS)
_NO_AUTH = ("fast", "no-auth")

#: Connection commands.
CONNECTION_SPECS = (
    CommandSpec("ping", -1, CONNECTION, handler=_ping, max_args=2),
    CommandSpec("echo", 2, CONNECTION, handler=_echo),
    CommandSpec("quit", -1, _NO_AUTH, handler=_quit),
    CommandSpec("auth", -2, _NO_AUTH, coroutine=_auth, max_args=3),
    CommandSpec("hello", -1, _NO_AUTH, coroutine=_hello),
    CommandSpec("acl", -2, (), handler=_acl),
    CommandSpec("client", -2, (), handler=_client),
)

#: Server commands (but COMMAND: see the module docstring).
SERVER_SPECS = (
    CommandSpec("select", 2, CONNECTION, handler=_select),
    CommandSpec("info", -1, (), handler=_info),
    CommandSpec("config", -2, (), handler=_config),
    CommandSpec("dtk.consistency", -1, CONNECTION, handler=_consistency, max_args=3),
)

#: Refused with the reason rather than "unknown command".
REFUSED = (
    CommandSpec("expire", -3, WRITE, handler=_REFUSE_EXPIRY),
    CommandSpec("pexpire", -3, WRITE, handler=_REFUSE_EXPIRY),
    CommandSpec("expireat", -3, WRITE, handler=_REFUSE_EXPIRY),
    CommandSpec("pexpireat", -3, WRITE, handler=_REFUSE_EXPIRY),
    CommandSpec("setex", 4, WRITE, handler=_REFUSE_EXPIRY),
    CommandSpec("psetex", 4, WRITE, handler=_REFUSE_EXPIRY),
    CommandSpec("multi", 1, (), handler=_REFUSE_TRANSACTION),
    CommandSpec("exec", 1, (), handler=_REFUSE_TRANSACTION),
    CommandSpec("discard", 1, (), handler=_REFUSE_TRANSACTION),
    CommandSpec("watch", -2, (), handler=_REFUSE_TRANSACTION),
)
