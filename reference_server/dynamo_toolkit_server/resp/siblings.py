"""Sibling-aware commands: DTK.GETV, DTK.PUTV, DTK.DELV.

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
"""

from __future__ import annotations

from typing import Any

from dynamo_toolkit_server.resp.protocol import Command, Resp2Encoder, array, bulk, integer
from dynamo_toolkit_server.resp.session import ONE_KEY, READ, WRITE, CommandSpec, Session

__all__ = ["SPECS"]


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


#: The commands of this group.
SPECS = (
    CommandSpec("dtk.getv", 2, READ, coroutine=_getv, keys=ONE_KEY),
    CommandSpec("dtk.putv", 4, WRITE, coroutine=_putv, keys=ONE_KEY),
    CommandSpec("dtk.delv", 3, WRITE, coroutine=_delv, keys=ONE_KEY),
)
