"""List commands: LPUSH, RPUSH, LPOP [count], RPOP [count], LRANGE, LLEN, LINDEX, LSET.

A Redis list is a ``list`` value; items pushed here are ``bytes``, ``str``
items are returned as UTF-8. Every command is one
:class:`~dynamo_toolkit_server.service.StoreService` list operation with
``strings_only``: lists of anything but strings (written through another API)
are a wrong type. Pushes, pops and LSET are read-modify-writes (see
:meth:`~dynamo_toolkit_server.service.StoreService.update_list`); popping the
last item deletes the key.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dynamo_toolkit_server.resp.errors import CommandError
from dynamo_toolkit_server.resp.protocol import EMPTY_ARRAY, OK, Command, integer
from dynamo_toolkit_server.resp.session import (
    ONE_KEY,
    READ,
    WRITE,
    CommandSpec,
    Session,
    parse_int,
)

__all__ = ["SPECS"]

_NOT_POSITIVE = "ERR value is out of range, must be positive"


def _item(item: bytes | str) -> bytes:
    return item if isinstance(item, bytes) else item.encode()


async def _push(s: Session, args: Command, left: bool) -> bytes:
    length = await s.service.push(args[1], args[2:], left=left, r=s.r, w=s.w, strings_only=True)
    return integer(length)


async def _lpush(s: Session, args: Command) -> bytes:
    return await _push(s, args, left=True)


async def _rpush(s: Session, args: Command) -> bytes:
    return await _push(s, args, left=False)


async def _pop(s: Session, args: Command, left: bool) -> bytes:
    count: int | None = None
    if len(args) == 3:
        count = parse_int(args[2], _NOT_POSITIVE)
        if count < 0:
            raise CommandError(_NOT_POSITIVE)
    popped = await s.service.pop(args[1], count, left=left, r=s.r, w=s.w, strings_only=True)
    if count is None:
        return s.enc.bulk(None if popped is None else _item(popped[0]))
    if popped is None:
        return s.enc.null_array
    return s.enc.bulk_array([_item(item) for item in popped])


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
    service = s.service
    result = await service.get(args[1], r=s.r)
    live = [v.value for v in result.versions if v.value is not None]
    memo = (live[0], start, stop) if len(live) == 1 else None
    if memo is not None and (reply := _RANGE_REPLIES.get(memo)) is not None:
        return reply
    items = service.list_slice_of(result, start, stop, strings_only=True)
    reply = s.enc.bulk_array([_item(item) for item in items]) if items else EMPTY_ARRAY
    if memo is not None:
        if len(_RANGE_REPLIES) >= _RANGE_REPLIES_MAX:
            _RANGE_REPLIES.popitem(last=False)
        _RANGE_REPLIES[memo] = reply
    return reply


async def _llen(s: Session, args: Command) -> bytes:
    return integer(await s.service.list_length(args[1], r=s.r, strings_only=True))


async def _lindex(s: Session, args: Command) -> bytes:
    index = parse_int(args[2])
    items = await s.service.read_list(args[1], r=s.r, strings_only=True)
    if index < 0:
        index += len(items)
    return s.enc.bulk(_item(items[index]) if 0 <= index < len(items) else None)


async def _lset(s: Session, args: Command) -> bytes:
    index, element = parse_int(args[2]), args[3]

    def change(current: list[Any]) -> tuple[list[Any], bytes]:
        if not current:
            raise CommandError("ERR no such key")
        position = index + len(current) if index < 0 else index
        if not 0 <= position < len(current):
            raise CommandError("ERR index out of range")
        current[position] = element
        return current, OK

    reply: bytes = await s.service.update_list(args[1], change, r=s.r, w=s.w, strings_only=True)
    return reply


#: The commands of this group.
SPECS = (
    CommandSpec("lpush", -3, WRITE, coroutine=_lpush, keys=ONE_KEY),
    CommandSpec("rpush", -3, WRITE, coroutine=_rpush, keys=ONE_KEY),
    CommandSpec("lpop", -2, WRITE, coroutine=_lpop, max_args=3, keys=ONE_KEY),
    CommandSpec("rpop", -2, WRITE, coroutine=_rpop, max_args=3, keys=ONE_KEY),
    CommandSpec("lrange", 4, READ, coroutine=_lrange, keys=ONE_KEY),
    CommandSpec("llen", 2, READ, coroutine=_llen, keys=ONE_KEY),
    CommandSpec("lindex", 3, READ, coroutine=_lindex, keys=ONE_KEY),
    CommandSpec("lset", 4, WRITE, coroutine=_lset, keys=ONE_KEY),
)
