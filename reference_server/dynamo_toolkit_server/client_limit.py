"""A node's cap on open client connections, shared by its RESP, HTTP and native servers.

A client past the cap is told why in its own protocol (RESP ``-ERR max number
of clients reached``, HTTP 503, a native error frame) and disconnected; the
node keeps serving the others, and counts the refusal.
"""

from __future__ import annotations

from dynamo_toolkit.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_CLIENTS", "ClientLimit"]

#: Redis's own default ``maxclients``.
DEFAULT_MAX_CLIENTS = 10_000


class ClientLimit:
    """Admits client connections up to ``maximum`` open at once, across front-ends."""

    def __init__(self, maximum: int = DEFAULT_MAX_CLIENTS) -> None:
        if type(maximum) is not int or maximum < 1:
            raise ConfigurationError(f"max_clients must be a positive integer, got {maximum!r}")
        self.maximum = maximum
        #: Connections admitted and not yet closed.
        self.open = 0
        #: Connections turned away since the node started.
        self.refused = 0

    @property
    def message(self) -> str:
        """What a refused client is told."""
        return f"max number of clients reached ({self.maximum})"

    def admit(self) -> bool:
        """Take a place for a new connection; False (and counted) when none is left."""
        if self.open >= self.maximum:
            self.refused += 1
            return False
        self.open += 1
        return True

    def release(self) -> None:
        """Give back the place of a connection that closed."""
        self.open -= 1
