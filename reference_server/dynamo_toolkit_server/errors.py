"""The errors a front-end reports, in one place: their kinds and their details.

The service raises the kernel's errors (:mod:`dynamo_toolkit.errors`) and
:class:`WrongTypeError`. :func:`describe` turns any exception into an
:class:`ErrorDetails`: its :class:`ErrorKind`, the name and message clients
see, and the facts to act on (``answered``/``required`` of a missed quorum,
the sizes of a pair over the limit). Each protocol then maps the kind to its
wire form with one small table (RESP error prefix, HTTP status, native error
map), so the details are read from the exceptions here and nowhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from dynamo_toolkit.errors import (
    ConfigurationError,
    DynamoError,
    InvalidContextError,
    PairTooLargeError,
    QuorumNotReachedError,
    TransportError,
    UnsupportedKeyTypeError,
    UnsupportedValueTypeError,
)

__all__ = [
    "INTERNAL_ERROR",
    "AuthenticationFailedError",
    "ErrorDetails",
    "ErrorKind",
    "PermissionDeniedError",
    "WrongTypeError",
    "describe",
]

#: The name reported for exceptions outside :class:`DynamoError` (server bugs).
INTERNAL_ERROR = "InternalError"

_WRONG_KIND = "Operation against a key holding the wrong kind of value"
# Only Redis-shaped reads raise this one (see StoreService's strings_only), so
# it may point at the RESP command that reads any value.
_FOREIGN = (
    "Operation against a key holding a value that is neither a string nor a list of "
    "strings (written through another API); read it with DTK.GETV"
)


class WrongTypeError(DynamoError, TypeError):
    """A list operation on a non-list value, or a string one on a list (Redis WRONGTYPE).

    ``foreign`` says the value is neither a string nor a list of strings: it
    was written through another API (a dict, a number, a list of numbers).
    """

    def __init__(self, message: str | None = None, *, foreign: bool = False) -> None:
        super().__init__(message or (_FOREIGN if foreign else _WRONG_KIND))
        self.foreign = foreign


class AuthenticationFailedError(DynamoError):
    """No credentials where the node asks for them, or wrong ones."""


class PermissionDeniedError(DynamoError):
    """The user's role does not allow the operation."""


class ErrorKind(enum.Enum):
    """What went wrong, as far as a client's next move is concerned."""

    #: Fewer replicas answered than R or W: retry, perhaps elsewhere.
    QUORUM = "quorum"
    #: Key plus value over the store's pair limit.
    TOO_LARGE = "too_large"
    #: The value at the key is not of the kind the operation works on.
    WRONG_TYPE = "wrong_type"
    #: The request itself is bad: key or value type, context, quorum, config.
    INVALID = "invalid"
    #: The node could not reach, or is not, a running replica.
    UNAVAILABLE = "unavailable"
    #: The client has not logged in, or gave wrong credentials.
    AUTH = "auth"
    #: The user's role does not allow the operation.
    PERMISSION = "permission"
    #: Any other store error.
    STORE = "store"
    #: Not a store error: a bug or surprise on the server.
    INTERNAL = "internal"


@attrs.frozen
class ErrorDetails:
    """An error as clients see it: ``kind``, ``name`` (the error class's name,
    or ``InternalError``), ``message`` and ``fields`` (the facts to act on)."""

    kind: ErrorKind
    name: str
    message: str
    fields: Mapping[str, Any] = attrs.field(factory=dict)


# Checked in order: the first class an exception is an instance of gives its kind.
_KINDS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ErrorKind], ...] = (
    (QuorumNotReachedError, ErrorKind.QUORUM),
    (PairTooLargeError, ErrorKind.TOO_LARGE),
    (WrongTypeError, ErrorKind.WRONG_TYPE),
    (
        (
            UnsupportedKeyTypeError,
            UnsupportedValueTypeError,
            InvalidContextError,
            ConfigurationError,
        ),
        ErrorKind.INVALID,
    ),
    (TransportError, ErrorKind.UNAVAILABLE),
    (AuthenticationFailedError, ErrorKind.AUTH),
    (PermissionDeniedError, ErrorKind.PERMISSION),
    (DynamoError, ErrorKind.STORE),
)


def describe(exc: BaseException) -> ErrorDetails:
    """The kind, name, message and details of ``exc``."""
    if not isinstance(exc, DynamoError):
        return ErrorDetails(ErrorKind.INTERNAL, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
    kind = next(kind for classes, kind in _KINDS if isinstance(exc, classes))
    fields: dict[str, Any] = {}
    if isinstance(exc, QuorumNotReachedError):
        fields = {
            "operation": exc.operation,
            "answered": exc.answered,
            "required": exc.required,
            "contacted": exc.contacted,
        }
        if exc.level:
            fields["level"] = exc.level
            fields["shortfall"] = {dc: list(counts) for dc, counts in exc.shortfall.items()}
    elif isinstance(exc, PairTooLargeError):
        fields = {"key_bytes": exc.key_bytes, "value_bytes": exc.value_bytes, "limit": exc.limit}
    return ErrorDetails(kind, type(exc).__name__, str(exc), fields)
