"""The Redis command table of a node, and its handlers.

Every handler takes the connection's :class:`Session` and the command as sent
(``args[0]`` is the name) and returns the encoded reply. Connection commands are
plain functions (answered without a task switch); data commands are coroutines
that go through the node's :class:`~dynamo_toolkit_server.operations.StoreService`.

The command table
-----------------
* Connection: PING, ECHO, HELLO [2|3 [AUTH user pass] [SETNAME name]], AUTH,
  CLIENT SETNAME|GETNAME|ID|INFO|LIST|SETINFO|HELP, COMMAND [COUNT|DOCS|INFO|LIST],
  SELECT 0, INFO [section ...], CONFIG GET, QUIT.
* Strings: GET, SET [NX|XX] [GET] [KEEPTTL], STRLEN, APPEND, INCR, DECR, INCRBY,
  DECRBY, MGET, MSET.
* Keys: DEL, EXISTS, TYPE, TTL, PTTL.
* Lists: LPUSH, RPUSH, LPOP [count], RPOP [count], LRANGE, LLEN, LINDEX, LSET.
* Ours: DTK.CONSISTENCY, DTK.GETV, DTK.PUTV, DTK.DELV (below).
* Refused with the reason: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, SETEX, PSETEX,
  MULTI, EXEC, DISCARD, WATCH. Anything else is an unknown command.

With a password configured, every command but AUTH, HELLO and QUIT answers
``-NOAUTH Authentication required.`` until the client authenticates.

How Redis data maps onto a Dynamo-style store
---------------------------------------------
* **Strings.** SET stores the argument bytes as a ``bytes`` value. GET returns
  ``bytes`` values as they are and ``str`` values (written through another API)
  as UTF-8.
* **Lists.** A Redis list is a ``list`` value; items pushed here are ``bytes``,
  ``str`` items are returned as UTF-8. LPUSH, LPOP, LSET... are read-modify-write
  (see :meth:`StoreService.update_list`); popping the last item deletes the key.
* **Other values** (dicts, numbers, lists of non-strings, written through another
  API): GET, list commands and MGET treat them as a wrong type (``WRONGTYPE ...
  read it with DTK.GETV``; MGET answers nil), TYPE answers ``dtk-value``.
* **Siblings.** Plain reads (GET, STRLEN, LRANGE, TYPE, ...) answer
  :meth:`StoreService.read_one`: the newest sibling by write timestamp, or for
  lists the merge of all siblings. Every write (SET, APPEND, LPUSH, DEL, ...)
  reads first and writes with the context it read, so it supersedes every
  sibling the read saw. Sibling-aware clients use the DTK.* commands below.
* **No atomicity across a read and its write.** NX, XX, GET, APPEND, INCR and
  the list commands check a quorum read, then write; concurrent writers through
  other coordinators can still make siblings (which the next plain write
  collapses). MSET and DEL of several keys are independent writes, not atomic.
  MULTI, EXEC, DISCARD and WATCH are refused: there are no transactions.
* **No expiry.** Keys never expire: SET's EX/PX/EXAT/PXAT, SETEX, PSETEX and
  the EXPIRE family answer ``ERR <option> is not supported: keys do not expire
  in dynamo-toolkit``; KEEPTTL is accepted (there is nothing to keep); TTL/PTTL
  answer -1 (or -2 for a missing key).
* **One database.** ``SELECT 0`` is accepted, any other index refused.

Our own commands
----------------
``DTK.CONSISTENCY [R W]``
    Set this connection's read and write quorums (``1 <= R, W <= N``), or with
    no argument answer the map ``n``, ``r``, ``w`` in effect.
``DTK.GETV key``
    ``[context, [value, ...]]``: the opaque context (bulk) and every live
    sibling. Values are shown in RESP form: bytes and str as bulk strings,
    lists as arrays, dicts as maps, numbers, booleans and None as themselves.
``DTK.PUTV key context value``
    Write the bytes ``value`` superseding what ``context`` covers (``""``: no
    context: a blind write, which supersedes only this node's own earlier
    writes and is a sibling of the others); answers the new version's context.
``DTK.DELV key context``
    Write a tombstone superseding what ``context`` covers; answers its context.

Errors
------
Redis's messages where Redis has one (unknown command, wrong number of
arguments, WRONGTYPE, NOAUTH, WRONGPASS, syntax error, not an integer). Store
errors: a missed quorum answers ``-QUORUM <message>`` (a distinct error code, as
``NOAUTH`` or ``WRONGTYPE`` are, so clients can tell it apart and retry); every
other store error (pair too large, invalid context, invalid quorum, node
stopped) answers ``-ERR <message>``.

Differences from Redis in the connection commands: HELLO's map says
``server: dynamo-toolkit`` (``version`` is the Redis version whose protocol is
spoken, 7.0.0; INFO's ``dtk_version`` is ours); the only user is ``default``;
COMMAND DOCS answers an empty map; CONFIG GET knows a handful of parameters and
CONFIG SET is refused.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hmac
import itertools
import logging
import os
import platform
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from dynamo_toolkit import __version__ as dtk_version
from dynamo_toolkit.config import validate_quorum
from dynamo_toolkit.errors import DynamoError, QuorumNotReachedError
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.operations import KEEP, StoreService, WrongTypeError
from dynamo_toolkit_server.resp.protocol import (
    EMPTY_ARRAY,
    OK,
    PONG,
    RESP2,
    Command,
    Resp2Encoder,
    array,
    bulk,
    encoder_for,
    error,
    integer,
    simple,
)

__all__ = [
    "COMMANDS",
    "REDIS_VERSION",
    "WRONGTYPE_OTHER",
    "AsyncHandler",
    "CommandError",
    "CommandSpec",
    "ServerContext",
    "Session",
    "SyncHandler",
    "arity_error",
    "check",
    "error_reply",
    "lookup",
    "parse_int",
    "run_async",
    "run_sync",
    "unknown_command",
]

log = logging.getLogger(__name__)

#: The Redis version whose protocol and commands we follow (for clients that check).
REDIS_VERSION = "7.0.0"

_INT64 = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})\Z")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

#: The WRONGTYPE message for values that are neither strings nor lists of strings.
WRONGTYPE_OTHER = (
    "Operation against a key holding a value that is neither a string nor a list of "
    "strings (written through another API); read it with DTK.GETV"
)
_NOAUTH = error("NOAUTH Authentication required.")
_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
_NOT_INTEGER = "ERR value is not an integer or out of range"


class CommandError(Exception):
    """A command failed; ``reply`` is the error line without its ``-`` (``ERR ...``)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def arity_error(name: str) -> CommandError:
    """Redis's wrong-number-of-arguments error for ``name`` (``client|setname`` style)."""
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


class ServerContext:
    """What every connection of one RESP server shares: the node, settings, counters."""

    def __init__(
        self,
        service: StoreService,
        *,
        password: str | None = None,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.service = service
        self.password = password.encode() if password is not None else None
        self.metrics = metrics
        self.port = 0
        self.started = time.monotonic()
        self.run_id = os.urandom(20).hex()
        self.sessions: dict[int, Session] = {}
        self.total_connections = 0
        self.total_commands = 0
        self._ids = itertools.count(1)

    def next_client_id(self) -> int:
        """A new client id, unique within this server."""
        return next(self._ids)

    def check_credentials(self, user: bytes, password: bytes) -> bool:
        """Whether ``user``/``password`` log in (the only user is ``default``)."""
        if user != b"default":
            return False
        if self.password is None:
            return True  # like Redis's "nopass" default user: any password
        return hmac.compare_digest(password, self.password)


class Session:
    """One client connection's state: protocol version, auth, name, quorums."""

    __slots__ = (
        "addr",
        "authenticated",
        "client_id",
        "context",
        "created",
        "enc",
        "laddr",
        "last_command",
        "lib_name",
        "lib_ver",
        "name",
        "quit",
        "r",
        "service",
        "w",
    )

    def __init__(self, context: ServerContext, addr: str = "", laddr: str = "") -> None:
        self.context = context
        self.service = context.service
        self.client_id = context.next_client_id()
        self.addr = addr
        self.laddr = laddr
        self.enc: Resp2Encoder = RESP2
        self.authenticated = context.password is None
        self.name: bytes | None = None
        self.lib_name = b""
        self.lib_ver = b""
        self.r: int | None = None  # None: the store's configured quorum
        self.w: int | None = None
        self.quit = False
        self.created = time.monotonic()
        self.last_command = "NULL"

    @property
    def protocol(self) -> int:
        """2 or 3 (HELLO switches it)."""
        return self.enc.protocol

    def info_line(self) -> str:
        """This client as CLIENT INFO / CLIENT LIST describe it."""
        now = time.monotonic()
        name = (self.name or b"").decode("utf-8", "replace")
        return (
            f"id={self.client_id} addr={self.addr} laddr={self.laddr} name={name} "
            f"age={int(now - self.created)} flags=N db=0 cmd={self.last_command} "
            f"user=default resp={self.protocol} "
            f"lib-name={self.lib_name.decode('utf-8', 'replace')} "
            f"lib-ver={self.lib_ver.decode('utf-8', 'replace')}\n"
        )


#: A connection command: answers at once.
SyncHandler = Callable[[Session, Command], bytes]
#: A data command: waits for the store.
AsyncHandler = Callable[[Session, Command], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command: Redis-style ``arity`` (exact if positive, minimum if negative,
    counting the name), an optional ``max_args``, and one handler kind."""

    name: str
    arity: int
    flags: tuple[str, ...] = ()
    handler: SyncHandler | None = None
    coroutine: AsyncHandler | None = None
    max_args: int | None = None
    keys: tuple[int, int, int] = (0, 0, 0)  # first key, last key, step (COMMAND INFO)
    no_auth: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "no_auth", "no-auth" in self.flags)


# -- helpers -----------------------------------------------------------------------


def parse_int(arg: bytes, message: str = _NOT_INTEGER) -> int:
    """A signed 64-bit decimal integer written as Redis writes them, or CommandError."""
    if _INT64.match(arg) is None:
        raise CommandError(message)
    value = int(arg)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise CommandError(message)
    return value


def _as_string(value: Any) -> bytes | None:
    """A string value as bytes (None if absent); WrongTypeError for anything else."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):
        raise WrongTypeError()
    raise WrongTypeError(WRONGTYPE_OTHER)


_ITEM_TYPES = frozenset((bytes, str))


def _check_items(items: list[Any]) -> None:
    # Joining succeeds only if every item is bytes (the usual list): the
    # fastest check at C speed. Then by exact type; subclasses take the walk.
    try:
        b"".join(items)
        return
    except TypeError:
        pass
    if set(map(type, items)) <= _ITEM_TYPES:
        return
    for item in items:
        if not isinstance(item, bytes | str):
            raise WrongTypeError(WRONGTYPE_OTHER)


def _as_list(value: Any) -> list[Any]:
    """A list value ([] if absent); WrongTypeError for anything else."""
    if value is None:
        return []
    if isinstance(value, list):
        _check_items(value)
        return value
    if isinstance(value, bytes | str):
        raise WrongTypeError()
    raise WrongTypeError(WRONGTYPE_OTHER)


def _item(item: bytes | str) -> bytes:
    return item if isinstance(item, bytes) else item.encode()


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bytes | str):
        return "string"
    if isinstance(value, list) and all(isinstance(i, bytes | str) for i in value):
        return "list"
    return "dtk-value"


def _render(value: Any, enc: Resp2Encoder) -> bytes:
    """Any stored value in its natural RESP form (for DTK.GETV)."""
    if isinstance(value, bytes):
        return bulk(value)
    if isinstance(value, str):
        return bulk(value.encode())
    if value is None:
        return enc.null
    if isinstance(value, bool):
        return enc.boolean(value)
    if isinstance(value, int):
        return integer(value)
    if isinstance(value, float):
        return enc.double(value)
    if isinstance(value, list | tuple):
        return array([_render(v, enc) for v in value])
    if isinstance(value, dict):
        return enc.map([(_render(k, enc), _render(v, enc)) for k, v in value.items()])
    return bulk(repr(value).encode())


async def _gather(coros: Iterable[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run concurrently; wait for all, then raise the first error if any."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def _index(index: int, length: int) -> int:
    return index + length if index < 0 else index


def _valid_name(name: bytes) -> bool:
    # Redis refuses spaces, newlines and anything outside printable ASCII.
    return all(33 <= c <= 126 for c in name)


# -- connection commands (synchronous) ----------------------------------------------


def _ping(s: Session, args: Command) -> bytes:
    return PONG if len(args) == 1 else s.enc.bulk(args[1])


def _echo(s: Session, args: Command) -> bytes:
    return bulk(args[1])


def _quit(s: Session, args: Command) -> bytes:
    s.quit = True
    return OK


def _auth(s: Session, args: Command) -> bytes:
    ctx = s.context
    if len(args) == 2:
        if ctx.password is None:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the "
                "default user. Are you sure your configuration is correct?"
            )
        user, password = b"default", args[1]
    else:
        user, password = args[1], args[2]
    if not ctx.check_credentials(user, password):
        raise CommandError(_WRONGPASS)
    s.authenticated = True
    return OK


def _hello(s: Session, args: Command) -> bytes:
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
        if not s.context.check_credentials(*credentials):
            raise CommandError(_WRONGPASS)
        s.authenticated = True
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


def _command_entry(spec: CommandSpec) -> bytes:
    first, last, step = spec.keys
    return array(
        [
            bulk(spec.name.encode()),
            integer(spec.arity),
            array([simple(flag) for flag in spec.flags]),
            integer(first),
            integer(last),
            integer(step),
            EMPTY_ARRAY,
            EMPTY_ARRAY,
            EMPTY_ARRAY,
            EMPTY_ARRAY,
        ]
    )


def _command(s: Session, args: Command) -> bytes:
    if len(args) == 1:
        return array([_command_entry(spec) for spec in COMMANDS.values()])
    sub = args[1].upper()
    if sub == b"COUNT" and len(args) == 2:
        return integer(len(COMMANDS))
    if sub == b"DOCS":
        return s.enc.map([])  # enough for redis-cli, which then has no hints
    if sub == b"LIST" and len(args) == 2:
        return array([bulk(name.encode()) for name in COMMANDS])
    if sub == b"INFO":
        names = [arg.decode("utf-8", "replace").lower() for arg in args[2:]]
        specs = [COMMANDS.get(name) for name in names] if names else list(COMMANDS.values())
        return array([s.enc.null if spec is None else _command_entry(spec) for spec in specs])
    if sub in (b"COUNT", b"LIST"):
        raise arity_error(f"command|{sub.decode().lower()}")
    text = args[1].decode("utf-8", "replace")
    raise CommandError(f"ERR unknown subcommand '{text}'. Try COMMAND HELP.")


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
    node = ctx.service.node
    cfg = node.config
    stats = node.stats
    now = time.monotonic()
    uptime = int(now - ctx.started)
    try:
        local_keys = len(node.engine)
    except Exception:  # a closed engine must not break INFO
        local_keys = 0
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
            f"dtk_node_id:{node.node_id}",
            f"dtk_members:{','.join(node.members)}",
            f"dtk_n:{cfg.n}",
            f"dtk_r:{cfg.r}",
            f"dtk_w:{cfg.w}",
            f"dtk_max_pair_bytes:{cfg.max_pair_bytes}",
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


def _consistency(s: Session, args: Command) -> bytes:
    cfg = s.service.node.config
    if len(args) == 1:
        return s.enc.map(
            [
                (bulk(b"n"), integer(cfg.n)),
                (bulk(b"r"), integer(cfg.r if s.r is None else s.r)),
                (bulk(b"w"), integer(cfg.w if s.w is None else s.w)),
            ]
        )
    if len(args) != 3:
        raise arity_error("dtk.consistency")
    r, w = parse_int(args[1]), parse_int(args[2])
    validate_quorum(cfg.n, r, w)
    s.r, s.w = r, w
    return OK


def _refuse(reason: str) -> SyncHandler:
    def refuse(s: Session, args: Command) -> bytes:
        raise CommandError(f"ERR {args[0].decode('utf-8', 'replace').upper()} {reason}")

    return refuse


_NO_EXPIRY = "is not supported: keys do not expire in dynamo-toolkit"
_NO_TRANSACTIONS = (
    "is not supported: dynamo-toolkit has no transactions (use a pipeline without MULTI)"
)


# -- strings -------------------------------------------------------------------------


async def _get(s: Session, args: Command) -> bytes:
    current = await s.service.read_one(args[1], r=s.r)
    return s.enc.bulk(_as_string(current.value))


async def _set(s: Session, args: Command) -> bytes:
    nx = xx = want_old = False
    for option in args[3:]:
        upper = option.upper()
        if upper == b"NX" and not xx:
            nx = True
        elif upper == b"XX" and not nx:
            xx = True
        elif upper == b"GET":
            want_old = True
        elif upper == b"KEEPTTL":
            pass  # keys never expire, so the TTL is kept by definition
        elif upper in (b"EX", b"PX", b"EXAT", b"PXAT"):
            raise CommandError(f"ERR {upper.decode()} {_NO_EXPIRY}")
        else:
            raise CommandError("ERR syntax error")
    key, value = args[1], args[2]
    service = s.service
    if not (nx or xx or want_old):
        await service.overwrite(key, value, r=s.r, w=s.w)
        return OK

    def conditional(current: Any) -> tuple[Any, bytes]:
        old = _as_string(current) if want_old else None
        exists = current is not None
        if (nx and exists) or (xx and not exists):
            return KEEP, s.enc.bulk(old) if want_old else s.enc.null
        return value, s.enc.bulk(old) if want_old else OK

    reply: bytes = await service.update(key, conditional, r=s.r, w=s.w)
    return reply


async def _strlen(s: Session, args: Command) -> bytes:
    current = await s.service.read_one(args[1], r=s.r)
    value = _as_string(current.value)
    return integer(0 if value is None else len(value))


async def _append(s: Session, args: Command) -> bytes:

    def append(current: Any) -> tuple[bytes, int]:
        new = (_as_string(current) or b"") + args[2]
        return new, len(new)

    return integer(await s.service.update(args[1], append, r=s.r, w=s.w))


async def _incr_by(s: Session, key: bytes, delta: int) -> bytes:

    def increment(current: Any) -> tuple[bytes, int]:
        old = _as_string(current)
        number = (0 if old is None else parse_int(old)) + delta
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise CommandError("ERR increment or decrement would overflow")
        return b"%d" % number, number

    return integer(await s.service.update(key, increment, r=s.r, w=s.w))


async def _incr(s: Session, args: Command) -> bytes:
    return await _incr_by(s, args[1], 1)


async def _decr(s: Session, args: Command) -> bytes:
    return await _incr_by(s, args[1], -1)


async def _incrby(s: Session, args: Command) -> bytes:
    return await _incr_by(s, args[1], parse_int(args[2]))


async def _decrby(s: Session, args: Command) -> bytes:
    delta = parse_int(args[2])
    if delta == _INT64_MIN:
        raise CommandError("ERR decrement would overflow")
    return await _incr_by(s, args[1], -delta)


# -- keys ----------------------------------------------------------------------------


async def _del(s: Session, args: Command) -> bytes:
    service = s.service
    if len(args) == 2:
        return integer(int(await service.remove(args[1], r=s.r, w=s.w)))
    keys = list(dict.fromkeys(args[1:]))  # DEL k k deletes (and counts) k once
    removed = await _gather(service.remove(key, r=s.r, w=s.w) for key in keys)
    return integer(sum(removed))


async def _exists(s: Session, args: Command) -> bytes:
    keys = list(dict.fromkeys(args[1:]))
    results = await _gather(s.service.get(key, r=s.r) for key in keys)
    found = {key: result.found for key, result in zip(keys, results, strict=True)}
    return integer(sum(found[key] for key in args[1:]))  # Redis counts repeats


async def _type(s: Session, args: Command) -> bytes:
    current = await s.service.read_one(args[1], r=s.r)
    return simple(_kind(current.value))


async def _ttl(s: Session, args: Command) -> bytes:
    found = (await s.service.get(args[1], r=s.r)).found
    return b":-1\r\n" if found else b":-2\r\n"


async def _mget(s: Session, args: Command) -> bytes:
    keys = list(dict.fromkeys(args[1:]))
    results = await _gather(s.service.read_one(key, r=s.r) for key in keys)
    values: dict[bytes, bytes | None] = {}
    for key, result in zip(keys, results, strict=True):
        value = result.value
        if isinstance(value, bytes):
            values[key] = value
        elif isinstance(value, str):
            values[key] = value.encode()
        else:
            values[key] = None  # absent or not a string: nil, as Redis answers
    return s.enc.bulk_array([values[key] for key in args[1:]])


async def _mset(s: Session, args: Command) -> bytes:
    if len(args) % 2 == 0:
        raise arity_error("mset")
    pairs = dict(zip(args[1::2], args[2::2], strict=True))  # a repeated key: last wins
    await _gather(s.service.overwrite(k, v, r=s.r, w=s.w) for k, v in pairs.items())
    return OK


# -- lists ---------------------------------------------------------------------------


async def _push(s: Session, args: Command, left: bool) -> bytes:
    items = args[2:]

    def change(current: list[Any]) -> tuple[list[Any], int]:
        _check_items(current)
        new = items[::-1] + current if left else current + items
        return new, len(new)

    return integer(await s.service.update_list(args[1], change, r=s.r, w=s.w))


async def _lpush(s: Session, args: Command) -> bytes:
    return await _push(s, args, left=True)


async def _rpush(s: Session, args: Command) -> bytes:
    return await _push(s, args, left=False)


async def _pop(s: Session, args: Command, left: bool) -> bytes:
    count: int | None = None
    if len(args) == 3:
        count = parse_int(args[2], "ERR value is out of range, must be positive")
        if count < 0:
            raise CommandError("ERR value is out of range, must be positive")

    def change(current: list[Any]) -> tuple[list[Any] | None, Any]:
        _check_items(current)
        if not current:
            return None, None
        if count is None:
            return current, current.pop(0 if left else -1)
        if count == 0:
            return None, []
        if left:
            return current[count:], current[:count]
        return current[: max(len(current) - count, 0)], current[-count:][::-1]

    answer = await s.service.update_list(args[1], change, r=s.r, w=s.w)
    if count is None:
        return s.enc.bulk(None if answer is None else _item(answer))
    if answer is None:
        return s.enc.null_array
    return s.enc.bulk_array([_item(item) for item in answer])


async def _lpop(s: Session, args: Command) -> bytes:
    return await _pop(s, args, left=True)


async def _rpop(s: Session, args: Command) -> bytes:
    return await _pop(s, args, left=False)


#: LRANGE replies by (encoded list, start, stop): a hot list read again
#: unchanged costs a dict lookup instead of decoding and re-encoding it.
# An OrderedDict: a plain dict's oldest-key deletion slows with every deletion.
_RANGE_REPLIES: OrderedDict[tuple[bytes, int, int], bytes] = OrderedDict()
_RANGE_REPLIES_MAX = 256


async def _lrange(s: Session, args: Command) -> bytes:
    start, stop = parse_int(args[2]), parse_int(args[3])
    result = await s.service.get(args[1], r=s.r)
    live = [v.value for v in result.versions if v.value is not None]
    memo = (live[0], start, stop) if len(live) == 1 else None
    if memo is not None and (reply := _RANGE_REPLIES.get(memo)) is not None:
        return reply
    items = _as_list(s.service.read_one_of(result).value)
    length = len(items)
    first = max(_index(start, length), 0)
    last = min(_index(stop, length), length - 1)
    reply = (
        EMPTY_ARRAY
        if first > last
        else s.enc.bulk_array([_item(item) for item in items[first : last + 1]])
    )
    if memo is not None:
        if len(_RANGE_REPLIES) >= _RANGE_REPLIES_MAX:
            _RANGE_REPLIES.popitem(last=False)
        _RANGE_REPLIES[memo] = reply
    return reply


async def _llen(s: Session, args: Command) -> bytes:
    return integer(len(_as_list((await s.service.read_one(args[1], r=s.r)).value)))


async def _lindex(s: Session, args: Command) -> bytes:
    index = parse_int(args[2])
    items = _as_list((await s.service.read_one(args[1], r=s.r)).value)
    index = _index(index, len(items))
    return s.enc.bulk(_item(items[index]) if 0 <= index < len(items) else None)


async def _lset(s: Session, args: Command) -> bytes:
    index, element = parse_int(args[2]), args[3]

    def change(current: list[Any]) -> tuple[list[Any], bytes]:
        _check_items(current)
        if not current:
            raise CommandError("ERR no such key")
        position = _index(index, len(current))
        if not 0 <= position < len(current):
            raise CommandError("ERR index out of range")
        current[position] = element
        return current, OK

    result: bytes = await s.service.update_list(args[1], change, r=s.r, w=s.w)
    return result


# -- sibling-aware commands ----------------------------------------------------------


async def _getv(s: Session, args: Command) -> bytes:
    result = await s.service.get(args[1], r=s.r)
    enc = s.enc
    return array([bulk(result.context), array([_render(v, enc) for v in result.values])])


async def _putv(s: Session, args: Command) -> bytes:
    result = await s.service.put(args[1], args[3], args[2] or None, w=s.w)
    return bulk(result.context)


async def _delv(s: Session, args: Command) -> bytes:
    result = await s.service.delete(args[1], args[2] or None, w=s.w)
    return bulk(result.context)


# -- the table -----------------------------------------------------------------------

_CONN = ("fast",)
_R = ("readonly",)
_W = ("write",)
_ONE_KEY = (1, 1, 1)
_ALL_KEYS = (1, -1, 1)


def _specs() -> list[CommandSpec]:
    refuse_expiry = _refuse(_NO_EXPIRY)
    refuse_tx = _refuse(_NO_TRANSACTIONS)
    return [
        # connection
        CommandSpec("ping", -1, _CONN, handler=_ping, max_args=2),
        CommandSpec("echo", 2, _CONN, handler=_echo),
        CommandSpec("quit", -1, ("fast", "no-auth"), handler=_quit),
        CommandSpec("auth", -2, ("fast", "no-auth"), handler=_auth, max_args=3),
        CommandSpec("hello", -1, ("fast", "no-auth"), handler=_hello),
        CommandSpec("client", -2, (), handler=_client),
        CommandSpec("command", -1, (), handler=_command),
        CommandSpec("select", 2, _CONN, handler=_select),
        CommandSpec("info", -1, (), handler=_info),
        CommandSpec("config", -2, (), handler=_config),
        CommandSpec("dtk.consistency", -1, _CONN, handler=_consistency, max_args=3),
        # strings
        CommandSpec("get", 2, _R, coroutine=_get, keys=_ONE_KEY),
        CommandSpec("set", -3, _W, coroutine=_set, keys=_ONE_KEY),
        CommandSpec("strlen", 2, _R, coroutine=_strlen, keys=_ONE_KEY),
        CommandSpec("append", 3, _W, coroutine=_append, keys=_ONE_KEY),
        CommandSpec("incr", 2, _W, coroutine=_incr, keys=_ONE_KEY),
        CommandSpec("decr", 2, _W, coroutine=_decr, keys=_ONE_KEY),
        CommandSpec("incrby", 3, _W, coroutine=_incrby, keys=_ONE_KEY),
        CommandSpec("decrby", 3, _W, coroutine=_decrby, keys=_ONE_KEY),
        CommandSpec("mget", -2, _R, coroutine=_mget, keys=_ALL_KEYS),
        CommandSpec("mset", -3, _W, coroutine=_mset, keys=(1, -1, 2)),
        # keys
        CommandSpec("del", -2, _W, coroutine=_del, keys=_ALL_KEYS),
        CommandSpec("exists", -2, _R, coroutine=_exists, keys=_ALL_KEYS),
        CommandSpec("type", 2, _R, coroutine=_type, keys=_ONE_KEY),
        CommandSpec("ttl", 2, _R, coroutine=_ttl, keys=_ONE_KEY),
        CommandSpec("pttl", 2, _R, coroutine=_ttl, keys=_ONE_KEY),
        # lists
        CommandSpec("lpush", -3, _W, coroutine=_lpush, keys=_ONE_KEY),
        CommandSpec("rpush", -3, _W, coroutine=_rpush, keys=_ONE_KEY),
        CommandSpec("lpop", -2, _W, coroutine=_lpop, max_args=3, keys=_ONE_KEY),
        CommandSpec("rpop", -2, _W, coroutine=_rpop, max_args=3, keys=_ONE_KEY),
        CommandSpec("lrange", 4, _R, coroutine=_lrange, keys=_ONE_KEY),
        CommandSpec("llen", 2, _R, coroutine=_llen, keys=_ONE_KEY),
        CommandSpec("lindex", 3, _R, coroutine=_lindex, keys=_ONE_KEY),
        CommandSpec("lset", 4, _W, coroutine=_lset, keys=_ONE_KEY),
        # ours
        CommandSpec("dtk.getv", 2, _R, coroutine=_getv, keys=_ONE_KEY),
        CommandSpec("dtk.putv", 4, _W, coroutine=_putv, keys=_ONE_KEY),
        CommandSpec("dtk.delv", 3, _W, coroutine=_delv, keys=_ONE_KEY),
        # refused, with the reason rather than "unknown command"
        CommandSpec("expire", -3, _W, handler=refuse_expiry),
        CommandSpec("pexpire", -3, _W, handler=refuse_expiry),
        CommandSpec("expireat", -3, _W, handler=refuse_expiry),
        CommandSpec("pexpireat", -3, _W, handler=refuse_expiry),
        CommandSpec("setex", 4, _W, handler=refuse_expiry),
        CommandSpec("psetex", 4, _W, handler=refuse_expiry),
        CommandSpec("multi", 1, (), handler=refuse_tx),
        CommandSpec("exec", 1, (), handler=refuse_tx),
        CommandSpec("discard", 1, (), handler=refuse_tx),
        CommandSpec("watch", -2, (), handler=refuse_tx),
    ]


#: Every command, by lower-case name.
COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in _specs()}

# Lookup by the name as sent: exact upper- and lower-case spellings hit directly,
# anything else is upper-cased once.
_BY_NAME: dict[bytes, CommandSpec] = {}
for _spec in COMMANDS.values():
    _BY_NAME[_spec.name.upper().encode()] = _spec
    _BY_NAME[_spec.name.encode()] = _spec


def lookup(name: bytes) -> CommandSpec | None:
    """The command called ``name`` (any letter case), or None."""
    spec = _BY_NAME.get(name)
    if spec is None:
        spec = _BY_NAME.get(name.upper())
    return spec


def check(spec: CommandSpec, session: Session, args: Command) -> bytes | None:
    """The error reply if ``args`` may not run now (arity, NOAUTH), else None."""
    count = len(args)
    arity = spec.arity
    if (
        (arity > 0 and count != arity)
        or count < -arity
        or (spec.max_args is not None and count > spec.max_args)
    ):
        return error(f"ERR wrong number of arguments for '{spec.name}' command")
    if not session.authenticated and not spec.no_auth:
        return _NOAUTH
    return None


def unknown_command(args: Command) -> bytes:
    """Redis's unknown-command error, quoting the arguments up to about 128 bytes."""
    shown = b""
    for arg in args[1:]:
        if len(shown) >= 128:
            break
        shown += b"'" + arg[: 128 - len(shown)] + b"' "
    return error(
        b"ERR unknown command '" + args[0][:128] + b"', with args beginning with: " + shown
    )


def error_reply(exc: Exception) -> bytes:
    """The error reply for an exception a handler raised (see the module docstring)."""
    if isinstance(exc, CommandError):
        return error(exc.reply)
    if isinstance(exc, WrongTypeError):
        return error(f"WRONGTYPE {exc}")
    if isinstance(exc, QuorumNotReachedError):
        return error(f"QUORUM {exc}")
    if isinstance(exc, DynamoError):
        return error(f"ERR {exc}")
    log.exception("RESP command failed unexpectedly", exc_info=exc)
    return error(f"ERR internal error: {type(exc).__name__}: {exc}")


def run_sync(spec: CommandSpec, session: Session, args: Command) -> bytes:
    """Run a synchronous command; errors become error replies."""
    assert spec.handler is not None
    session.last_command = spec.name
    try:
        return spec.handler(session, args)
    except Exception as exc:
        return error_reply(exc)


async def run_async(spec: CommandSpec, session: Session, args: Command) -> bytes:
    """Run a command (of either kind); errors become error replies."""
    session.last_command = spec.name
    try:
        if spec.coroutine is not None:
            return await spec.coroutine(session, args)
        assert spec.handler is not None
        return spec.handler(session, args)
    except Exception as exc:
        return error_reply(exc)
