"""Every error the kernel raises, rooted at :class:`DynamoError`.

Each error carries the facts a user needs to act on it (sizes, counts, the
list of available names) both as attributes and in its message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "ConfigurationError",
    "DynamoError",
    "InvalidContextError",
    "InvalidQuorumError",
    "NodeUnavailableError",
    "PairTooLargeError",
    "QuorumNotReachedError",
    "TransportError",
    "UnknownComponentError",
    "UnsupportedKeyTypeError",
    "UnsupportedValueTypeError",
]


class DynamoError(Exception):
    """Base class of every error raised by dynamo-toolkit."""


class ConfigurationError(DynamoError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class UnknownComponentError(ConfigurationError):
    """Configuration names a component that no plugin provides."""

    def __init__(self, interface: str, name: str, available: Iterable[str]) -> None:
        self.interface = interface
        self.name = name
        self.available = sorted(available)
        listing = ", ".join(self.available) or "(none registered)"
        super().__init__(f"unknown {interface} {name!r}; available: {listing}")


class InvalidQuorumError(ConfigurationError):
    """N, R or W is out of range (the rule is 1 <= R, W <= N)."""


class UnsupportedKeyTypeError(DynamoError, TypeError):
    """A key is neither ``str`` nor ``bytes``."""

    def __init__(self, key_type: type) -> None:
        self.key_type = key_type
        super().__init__(
            f"unsupported key type {key_type.__name__!r}: keys must be str (UTF-8) or bytes"
        )


class UnsupportedValueTypeError(DynamoError, TypeError):
    """A value (or something nested in it) cannot be encoded with msgpack."""

    def __init__(self, value_type: type, path: str = "value") -> None:
        self.value_type = value_type
        self.path = path
        super().__init__(
            f"unsupported value type {value_type.__name__!r} at {path}: values must be str, "
            "bytes, lists of them, or other msgpack-serialisable objects "
            "(int, float, bool, None, list, tuple, dict)"
        )


class PairTooLargeError(DynamoError, ValueError):
    """A key and its encoded value together exceed the configured limit."""

    def __init__(self, key_bytes: int, value_bytes: int, limit: int) -> None:
        self.key_bytes = key_bytes
        self.value_bytes = value_bytes
        self.size = key_bytes + value_bytes
        self.limit = limit
        super().__init__(
            f"pair of {self.size} bytes (key {key_bytes} + encoded value {value_bytes}) "
            f"exceeds the limit of {limit} bytes"
        )


class InvalidContextError(DynamoError, ValueError):
    """A context passed to ``put`` or ``delete`` was not produced by ``get``."""


class QuorumNotReachedError(DynamoError):
    """Fewer than the required replicas answered in time.

    ``answered`` replicas replied (successfully) out of ``contacted``;
    ``required`` were needed (R for reads, W for writes; for a consistency
    level, its total). For a named level, ``level`` is its name and
    ``shortfall`` maps each datacenter short (``"*"``: all of them) to
    ``(answered, needed)`` there (refused before anyone was asked: the
    replicas reported up there, not answers); the message starts with the level.
    """

    def __init__(
        self,
        operation: str,
        answered: int,
        required: int,
        contacted: int,
        reason: str = "",
        *,
        level: str = "",
        shortfall: Mapping[str, tuple[int, int]] | None = None,
        summary: str = "",
    ) -> None:
        self.operation = operation
        self.answered = answered
        self.required = required
        self.contacted = contacted
        self.level = level
        self.shortfall = dict(shortfall or {})
        detail = f": {reason}" if reason else ""
        counts = f"{answered} of {contacted} replicas answered, {required} required"
        if summary:
            super().__init__(f"{operation} {summary}; {counts}{detail}")
        else:
            super().__init__(f"{operation} quorum not reached: {counts}{detail}")


class TransportError(DynamoError):
    """A message could not be delivered or answered."""


class NodeUnavailableError(TransportError):
    """The destination node is stopped or unknown to the transport."""
