"""RESP error replies: a command's own errors, and the store's by kind.

Redis's messages where Redis has one (unknown command, wrong number of
arguments, WRONGTYPE, NOAUTH, WRONGPASS, syntax error, not an integer). Store
errors: a missed quorum answers ``-QUORUM <message>`` (a distinct error code, as
``NOAUTH`` or ``WRONGTYPE`` are, so clients can tell it apart and retry); every
other store error (pair too large, invalid context, invalid quorum, node
stopped) answers ``-ERR <message>``.
"""

from __future__ import annotations

import logging

from dynamo_toolkit_server.errors import ErrorKind, describe
from dynamo_toolkit_server.resp.protocol import error

__all__ = ["NOT_INTEGER", "CommandError", "arity_error", "error_reply"]

log = logging.getLogger(__name__)

#: Redis's answer to an argument that should be a 64-bit integer.
NOT_INTEGER = "ERR value is not an integer or out of range"

#: The error code of each store error kind; kinds not listed answer ``ERR``.
_CODES = {
    ErrorKind.QUORUM: "QUORUM",
    ErrorKind.WRONG_TYPE: "WRONGTYPE",
    ErrorKind.AUTH: "NOAUTH",
    ErrorKind.PERMISSION: "NOPERM",
    ErrorKind.INTERNAL: "ERR internal error:",
}


class CommandError(Exception):
    """A command failed; ``reply`` is the error line without its ``-`` (``ERR ...``)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def arity_error(name: str) -> CommandError:
    """Redis's wrong-number-of-arguments error for ``name`` (``client|setname`` style)."""
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


def error_reply(exc: Exception) -> bytes:
    """The error reply for an exception a handler raised."""
    if isinstance(exc, CommandError):
        return error(exc.reply)
    details = describe(exc)
    if details.kind is ErrorKind.INTERNAL:
        log.exception("RESP command failed unexpectedly", exc_info=exc)
    return error(f"{_CODES.get(details.kind, 'ERR')} {details.message}")
