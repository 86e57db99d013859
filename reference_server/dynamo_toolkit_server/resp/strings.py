"""String commands: GET, SET [NX|XX] [GET] [KEEPTTL], STRLEN, APPEND, INCR, DECR,
INCRBY, DECRBY, MGET, MSET.

SET stores the argument bytes as a ``bytes`` value. GET returns ``bytes``
values as they are and ``str`` values (written through another API) as UTF-8;
lists are a wrong type, and so are other values (``WRONGTYPE ... read it with
DTK.GETV``; MGET answers nil for them). A plain SET is
:meth:`~dynamo_toolkit_server.service.StoreService.overwrite`; NX, XX, GET,
APPEND and INCR are read-modify-writes through
:meth:`~dynamo_toolkit_server.service.StoreService.update`. MSET writes each
key independently: it is not atomic. SET's EX/PX/EXAT/PXAT are refused (keys
do not expire); KEEPTTL is accepted (there is nothing to keep).
"""

from __future__ import annotations

from typing import Any

from dynamo_toolkit_server.errors import WrongTypeError
from dynamo_toolkit_server.resp.connection import NO_EXPIRY
from dynamo_toolkit_server.resp.errors import CommandError, arity_error
from dynamo_toolkit_server.resp.protocol import OK, Command, integer
from dynamo_toolkit_server.resp.session import (
    ALL_KEYS,
    INT64_MAX,
    INT64_MIN,
    ONE_KEY,
    READ,
    WRITE,
    CommandSpec,
    Session,
    gather,
    parse_int,
)
from dynamo_toolkit_server.service import KEEP

__all__ = ["SPECS"]


def _as_string(value: Any) -> bytes | None:
    """A string value as bytes (None if absent); WrongTypeError for anything else."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise WrongTypeError(foreign=not isinstance(value, list))


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
            raise CommandError(f"ERR {upper.decode()} {NO_EXPIRY}")
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
        if not INT64_MIN <= number <= INT64_MAX:
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
    if delta == INT64_MIN:
        raise CommandError("ERR decrement would overflow")
    return await _incr_by(s, args[1], -delta)


async def _mget(s: Session, args: Command) -> bytes:
    keys = list(dict.fromkeys(args[1:]))
    results = await gather(s.service.read_one(key, r=s.r) for key in keys)
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
    await gather(s.service.overwrite(k, v, r=s.r, w=s.w) for k, v in pairs.items())
    return OK


#: The commands of this group.
SPECS = (
    CommandSpec("get", 2, READ, coroutine=_get, keys=ONE_KEY),
    CommandSpec("set", -3, WRITE, coroutine=_set, keys=ONE_KEY),
    CommandSpec("strlen", 2, READ, coroutine=_strlen, keys=ONE_KEY),
    CommandSpec("append", 3, WRITE, coroutine=_append, keys=ONE_KEY),
    CommandSpec("incr", 2, WRITE, coroutine=_incr, keys=ONE_KEY),
    CommandSpec("decr", 2, WRITE, coroutine=_decr, keys=ONE_KEY),
    CommandSpec("incrby", 3, WRITE, coroutine=_incrby, keys=ONE_KEY),
    CommandSpec("decrby", 3, WRITE, coroutine=_decrby, keys=ONE_KEY),
    CommandSpec("mget", -2, READ, coroutine=_mget, keys=ALL_KEYS),
    CommandSpec("mset", -3, WRITE, coroutine=_mset, keys=(1, -1, 2)),
)
