"""Users, roles and passwords: who may read, write and run the cluster.

Pure logic, no I/O: the front-ends (RESP, HTTP, native) ask one
:class:`Authenticator` whether a name and password log in, and
:func:`allowed` whether the user's role covers an operation.

Passwords are kept only as scrypt hashes (``hashlib.scrypt``, a memory-hard
function from the standard library), written as
``scrypt$<log2 n>$<r>$<p>$<salt, base64>$<hash, base64>``. Checking one costs
tens of milliseconds on purpose, which would make every HTTP request (Basic
auth sends the password each time) that much slower: a successful check is
remembered under a keyed hash of the password (a key drawn at start, never
stored), so the plain password is not kept in memory either.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable

import attrs

from dynamo_toolkit.errors import ConfigurationError

__all__ = [
    "ANYONE",
    "LOCKED",
    "Authenticator",
    "Role",
    "User",
    "allowed",
    "generate_password",
    "hash_password",
    "verify_password",
]

#: scrypt cost: n = 2**14, r = 8, p = 1 uses 16 MiB and a few tens of ms per check
#: (the parameters OWASP lists for scrypt), recorded in each hash so they can grow.
_LOG2_N, _R, _P = 14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32
#: Most remembered successful logins; beyond it the oldest is forgotten.
_REMEMBERED = 1024
#: Password checks running at once (each on a worker thread).
_CHECKERS = 2


class Role(enum.IntEnum):
    """What a user may do; each role includes the ones below it."""

    READ = 1  #: read values, list keys, see the cluster's state and metrics
    READWRITE = 2  #: and write and delete values
    ADMIN = 3  #: and change the membership, repair, read or change the config

    @classmethod
    def parse(cls, text: str) -> Role:
        """``"read"``, ``"readwrite"`` or ``"admin"``; a clear error otherwise."""
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(role.name.lower() for role in cls)
            raise ConfigurationError(f"unknown role {text!r}: expected one of {names}") from None

    @property
    def label(self) -> str:
        """The role as the config file writes it."""
        return self.name.lower()


def allowed(role: Role, needed: Role) -> bool:
    """Whether ``role`` may do what needs ``needed``."""
    return role >= needed


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The scrypt hash of ``password`` as the config file keeps it (a new salt each time)."""
    if not password:
        raise ConfigurationError("a password cannot be empty")
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=1 << _LOG2_N, r=_R, p=_P, dklen=_HASH_BYTES
    )
    return f"scrypt${_LOG2_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    parts = encoded.split("$")
    try:
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
        if not (1 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16 and salt and digest):
            raise ValueError
    except ValueError:
        raise ConfigurationError(
            "a password_hash is 'scrypt$<log2 n>$<r>$<p>$<salt>$<hash>' as "
            "'dtk user hash' prints it"
        ) from None
    return log2_n, r, p, salt, digest


def verify_password(password: bytes, encoded: str) -> bool:
    """Whether ``password`` matches the hash ``encoded`` (constant-time compare).

    ``encoded`` may be :data:`LOCKED`, which no password matches.
    """
    if encoded == LOCKED:
        return False
    log2_n, r, p, salt, digest = _parse_hash(encoded)
    candidate = hashlib.scrypt(
        password, salt=salt, n=1 << log2_n, r=r, p=p, dklen=len(digest), maxmem=1 << 28
    )
    return hmac.compare_digest(candidate, digest)


def generate_password() -> str:
    """A random password of 128 bits, URL-safe (for ``dtk cluster up --auth``)."""
    return secrets.token_urlsafe(16)


@attrs.frozen
class User:
    """A user as configured: a name, a role and the hash of a password.

    ``repr`` leaves the hash out: a user may be logged.
    """

    name: str
    role: Role
    password_hash: str = attrs.field(repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.name or not self.name.isprintable() or " " in self.name:
            raise ConfigurationError(f"bad user name {self.name!r}: printable, no spaces")
        if self.password_hash != LOCKED:
            _parse_hash(self.password_hash)


#: A password hash no password matches (a user who cannot log in).
LOCKED = "!"
#: Who every client is when a node has no users: ``default``, with every right.
ANYONE = User("default", Role.ADMIN, LOCKED)


class Authenticator:
    """Checks names and passwords against the configured users.

    With no users, :attr:`enabled` is false and every client is treated as
    an ``admin`` (a node then listens on loopback only; see the settings).
    """

    def __init__(self, users: Iterable[User] = ()) -> None:
        self.users = {user.name: user for user in users}
        self._key = os.urandom(32)
        self._remembered: dict[tuple[str, bytes], User] = {}
        self._checkers = asyncio.Semaphore(_CHECKERS)
        #: Failed logins since start (``dtk_auth_failures_total``).
        self.failures = 0

    @property
    def enabled(self) -> bool:
        """True when users are configured: clients must log in."""
        return bool(self.users)

    async def authenticate(self, name: str, password: bytes) -> User | None:
        """The user ``name`` if ``password`` is theirs, else ``None`` (and counted).

        A password not checked before is hashed on a worker thread (scrypt
        releases the GIL): the event loop keeps serving other clients, and at
        most :data:`_CHECKERS` checks run at once, so a flood of wrong
        passwords costs the node two threads, not its loop.
        """
        user = self.users.get(name)
        token = (name, hmac.digest(self._key, password, "sha256"))
        if user is not None and self._remembered.get(token) is user:
            return user
        # An unknown name costs what a wrong password costs: timing tells no names.
        encoded = user.password_hash if user is not None else _dummy_hash()
        async with self._checkers:
            loop = asyncio.get_running_loop()
            matches = await loop.run_in_executor(None, verify_password, password, encoded)
        if user is None or not matches:
            self.failures += 1
            return None
        if len(self._remembered) >= _REMEMBERED:
            self._remembered.pop(next(iter(self._remembered)))
        self._remembered[token] = user
        return user


@functools.cache
def _dummy_hash() -> str:
    """The hash checked for unknown names, so they cost what a wrong password costs."""
    return hash_password("not a password", salt=b"\0" * _SALT_BYTES)
