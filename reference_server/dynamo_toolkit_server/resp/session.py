"""What every RESP command handler works with: the connection's session, the
server's shared context, the command's spec, and argument parsing.

Every handler takes the connection's :class:`Session` and the command as sent
(``args[0]`` is the name) and returns the encoded reply. Connection commands are
plain functions (answered without a task switch); data commands are coroutines
that go through the node's :class:`~dynamo_toolkit_server.service.StoreService`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from dynamo_toolkit_server.auth import Authenticator, Role, User
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.resp.errors import NOT_INTEGER, CommandError
from dynamo_toolkit_server.resp.protocol import RESP2, Command, Resp2Encoder
from dynamo_toolkit_server.service import StoreService

__all__ = [
    "ALL_KEYS",
    "CONNECTION",
    "INT64_MAX",
    "INT64_MIN",
    "ONE_KEY",
    "READ",
    "REDIS_VERSION",
    "WRITE",
    "AsyncHandler",
    "CommandSpec",
    "ServerContext",
    "Session",
    "SyncHandler",
    "gather",
    "parse_int",
]

#: The Redis version whose protocol and commands we follow (for clients that check).
REDIS_VERSION = "7.0.0"

_INT64 = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})\Z")
#: The range of Redis integers (signed 64 bits).
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

#: COMMAND INFO flags of connection commands, reads and writes.
CONNECTION = ("fast",)
READ = ("readonly",)
WRITE = ("write",)
#: COMMAND INFO key positions (first, last, step): one key, or every argument.
ONE_KEY = (1, 1, 1)
ALL_KEYS = (1, -1, 1)


class ServerContext:
    """What every connection of one RESP server shares: the service, settings, counters."""

    def __init__(
        self,
        service: StoreService,
        *,
        authenticator: Authenticator | None = None,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.service = service
        self.authenticator = authenticator or Authenticator()
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

    async def log_in(self, session: Session, user: bytes, password: bytes) -> bool:
        """Log ``session`` in as ``user`` if ``password`` is theirs."""
        if not self.authenticator.enabled:
            # Like Redis's "nopass" default user: any password logs in as default.
            return user == b"default"
        name = user.decode("utf-8", "replace")
        found = await self.authenticator.authenticate(name, password)
        if found is None:
            if self.metrics is not None:
                self.metrics.auth_failed("resp")
            return False
        session.log_in(found)
        return True


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
        "role",
        "service",
        "user",
        "w",
    )

    def __init__(self, context: ServerContext, addr: str = "", laddr: str = "") -> None:
        self.context = context
        self.service = context.service
        self.client_id = context.next_client_id()
        self.addr = addr
        self.laddr = laddr
        self.enc: Resp2Encoder = RESP2
        # With no users configured every client is the all-powerful "default".
        self.authenticated = not context.authenticator.enabled
        self.user = "default"
        self.role = Role.ADMIN if self.authenticated else Role.READ
        self.name: bytes | None = None
        self.lib_name = b""
        self.lib_ver = b""
        # None: the store's configured quorum; else a count or a level's name.
        self.r: int | str | None = None
        self.w: int | str | None = None
        self.quit = False
        self.created = time.monotonic()
        self.last_command = "NULL"

    def log_in(self, user: User) -> None:
        """From now on this connection acts as ``user``."""
        self.authenticated = True
        self.user = user.name
        self.role = user.role

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
            f"user={self.user} resp={self.protocol} "
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
    #: The least role that may run it: writes need readwrite, ``admin`` flags admin.
    role: Role = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "no_auth", "no-auth" in self.flags)
        role = Role.READ
        if "write" in self.flags:
            role = Role.READWRITE
        if "admin" in self.flags:
            role = Role.ADMIN
        object.__setattr__(self, "role", role)


def parse_int(arg: bytes, message: str = NOT_INTEGER) -> int:
    """A signed 64-bit decimal integer written as Redis writes them, or CommandError."""
    if _INT64.match(arg) is None:
        raise CommandError(message)
    value = int(arg)
    if not INT64_MIN <= value <= INT64_MAX:
        raise CommandError(message)
    return value


async def gather(coros: Iterable[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run concurrently; wait for all, then raise the first error if any."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
