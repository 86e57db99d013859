"""The Redis command table of a node: every group's commands, looked up and run.

The command groups, each in its own module:

* :mod:`.connection`: PING, ECHO, HELLO, AUTH, CLIENT, QUIT; SELECT, INFO,
  CONFIG GET, DTK.CONSISTENCY; and the refused EXPIRE, PEXPIRE, EXPIREAT,
  PEXPIREAT, SETEX, PSETEX, MULTI, EXEC, DISCARD, WATCH (answered with the
  reason rather than "unknown command").
* :mod:`.strings`: GET, SET, STRLEN, APPEND, INCR, DECR, INCRBY, DECRBY, MGET, MSET.
* :mod:`.keys`: DEL, EXISTS, TYPE, TTL, PTTL.
* :mod:`.lists`: LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN, LINDEX, LSET.
* :mod:`.siblings`: DTK.GETV, DTK.PUTV, DTK.DELV.
* COMMAND [COUNT|DOCS|INFO|LIST], here: it describes this table (COMMAND DOCS
  answers an empty map).

Anything else is an unknown command. With users configured, every command
but AUTH, HELLO and QUIT answers ``-NOAUTH Authentication required.`` until the
client logs in, and a command beyond the user's role (a write for a ``read``
user, CONFIG for a non-``admin``) answers ``-NOPERM``. Data commands go through the node's
:class:`~dynamo_toolkit_server.service.StoreService`; errors become replies as
:mod:`.errors` says.

How Redis data maps onto a Dynamo-style store
---------------------------------------------
* **Siblings.** Plain reads (GET, STRLEN, LRANGE, TYPE, ...) answer
  :meth:`~dynamo_toolkit_server.service.StoreService.read_one`: the newest
  sibling by write timestamp, or for lists the merge of all siblings. Every
  write (SET, APPEND, LPUSH, DEL, ...) reads first and writes with the context
  it read, so it supersedes every sibling the read saw. Sibling-aware clients
  use the DTK.* commands.
* **No atomicity across a read and its write.** NX, XX, GET, APPEND, INCR and
  the list commands check a quorum read, then write; concurrent writers through
  other coordinators can still make siblings (which the next plain write
  collapses). MSET and DEL of several keys are independent writes, not atomic.
  MULTI, EXEC, DISCARD and WATCH are refused: there are no transactions.
* **No expiry.** Keys never expire: SET's EX/PX/EXAT/PXAT, SETEX, PSETEX and
  the EXPIRE family answer ``ERR <option> is not supported: keys do not expire
  in dynamo-toolkit``.
* **One database.** ``SELECT 0`` is accepted, any other index refused.
"""

from __future__ import annotations

from dynamo_toolkit_server.resp import connection, keys, lists, siblings, strings
from dynamo_toolkit_server.resp.errors import CommandError, arity_error, error_reply
from dynamo_toolkit_server.resp.protocol import (
    EMPTY_ARRAY,
    Command,
    array,
    bulk,
    error,
    integer,
    simple,
)
from dynamo_toolkit_server.resp.session import CommandSpec, Session

__all__ = ["COMMANDS", "check", "lookup", "noperm", "run_async", "run_sync", "unknown_command"]

_NOAUTH = error("NOAUTH Authentication required.")


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


#: Every command, by lower-case name, in COMMAND's order.
COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        *connection.CONNECTION_SPECS,
        CommandSpec("command", -1, (), handler=_command),
        *connection.SERVER_SPECS,
        *strings.SPECS,
        *keys.SPECS,
        *lists.SPECS,
        *siblings.SPECS,
        *connection.REFUSED,
    )
}

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
    if session.role < spec.role:
        return noperm(session, spec.name)
    return None


def noperm(session: Session, command: str) -> bytes:
    """Redis's reply to a command beyond the user's permissions."""
    return error(f"NOPERM User {session.user} has no permissions to run the '{command}' command")


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
