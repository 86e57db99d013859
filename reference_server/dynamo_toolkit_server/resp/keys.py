"""Key commands: DEL, EXISTS, TYPE, TTL, PTTL.

DEL is :meth:`~dynamo_toolkit_server.service.StoreService.remove`: it reads
the key and tombstones every sibling the read saw. DEL of several keys deletes
each independently (not atomically). Keys never expire: TTL and PTTL answer -1,
or -2 for a missing key. TYPE answers ``string``, ``list``, ``none``, or
``dtk-value`` for values written through another API.
"""

from __future__ import annotations

from typing import Any

from dynamo_toolkit_server.resp.protocol import Command, integer, simple
from dynamo_toolkit_server.resp.session import (
    ALL_KEYS,
    ONE_KEY,
    READ,
    WRITE,
    CommandSpec,
    Session,
    gather,
)

__all__ = ["SPECS"]


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bytes | str):
        return "string"
    if isinstance(value, list) and all(isinstance(i, bytes | str) for i in value):
        return "list"
    return "dtk-value"


async def _del(s: Session, args: Command) -> bytes:
    service = s.service
    if len(args) == 2:
        return integer(int(await service.remove(args[1], r=s.r, w=s.w)))
    keys = list(dict.fromkeys(args[1:]))  # DEL k k deletes (and counts) k once
    removed = await gather(service.remove(key, r=s.r, w=s.w) for key in keys)
    return integer(sum(removed))


async def _exists(s: Session, args: Command) -> bytes:
    keys = list(dict.fromkeys(args[1:]))
    results = await gather(s.service.get(key, r=s.r) for key in keys)
    found = {key: result.found for key, result in zip(keys, results, strict=True)}
    return integer(sum(found[key] for key in args[1:]))  # Redis counts repeats


async def _type(s: Session, args: Command) -> bytes:
    current = await s.service.read_one(args[1], r=s.r)
    return simple(_kind(current.value))


async def _ttl(s: Session, args: Command) -> bytes:
    found = (await s.service.get(args[1], r=s.r)).found
    return b":-1\r\n" if found else b":-2\r\n"


#: The commands of this group.
SPECS = (
    CommandSpec("del", -2, WRITE, coroutine=_del, keys=ALL_KEYS),
    CommandSpec("exists", -2, READ, coroutine=_exists, keys=ALL_KEYS),
    CommandSpec("type", 2, READ, coroutine=_type, keys=ONE_KEY),
    CommandSpec("ttl", 2, READ, coroutine=_ttl, keys=ONE_KEY),
    CommandSpec("pttl", 2, READ, coroutine=_ttl, keys=ONE_KEY),
)
