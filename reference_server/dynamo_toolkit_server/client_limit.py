"""A node's limits on its clients, shared by its RESP, HTTP and native servers.

:class:`ClientLimit` caps the open client connections (``max_clients``): a
client past the cap is told why in its own protocol (RESP ``-ERR max number
of clients reached``, HTTP 503, a native error frame) and disconnected; the
node keeps serving the others, and counts the refusal.

It also carries the per-connection :class:`ConnectionLimits` (idle and
slow-client timeouts, request, output and pipeline sizes) every front-end
applies, and counts what they cost clients: connections closed and requests
refused, by protocol and reason, which the node's metrics expose as
``dtk_clients_closed_total`` and ``dtk_requests_refused_total``.
"""

from __future__ import annotations

import math

import attrs

from dynamo_toolkit.errors import ConfigurationError

__all__ = [
    "CLOSE_REASONS",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_MAX_PIPELINED",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_SLOW_CLIENT_TIMEOUT",
    "ClientLimit",
    "ConnectionLimits",
]

#: Redis's own default ``maxclients``.
DEFAULT_MAX_CLIENTS = 10_000

#: Seconds a connection may sit idle. Redis's ``timeout`` defaults to never;
#: a node that caps its clients must not let forgotten connections hold the
#: places, and every pool we know of (redis-py, the Python client) reconnects.
DEFAULT_IDLE_TIMEOUT = 300.0

#: Seconds a client may leave its replies unread (output over the transport's
#: high-water mark, so the node stopped running its commands) before it goes.
DEFAULT_SLOW_CLIENT_TIMEOUT = 60.0

#: Replies one connection may have waiting to be sent (Redis's
#: ``client-output-buffer-limit`` hard limit); one read's replies can overshoot
#: the high-water mark before backpressure applies.
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024

#: Largest request: a RESP command (and each of its bulk strings), a native
#: frame, an HTTP body. Redis allows 512 MiB bulks; pairs here are at most a
#: few KiB, so a smaller bound limits what one client makes a node buffer.
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024

#: Requests one connection may have read and not yet answered. Reading stops
#: well below it (backpressure), so a client reading its replies only meets
#: it when one read brings more requests than that.
DEFAULT_MAX_PIPELINED = 65_536

#: The ``reason`` labels of ``dtk_clients_closed_total``.
CLOSE_REASONS = ("idle", "slow", "too_large")


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(
            f"{attribute.name} must be a number of seconds >= 0 (0: never), got {value!r}"
        )


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ConfigurationError(f"{attribute.name} must be a positive integer, got {value!r}")


def _size_or_zero(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise ConfigurationError(
            f"{attribute.name} must be an integer number of bytes >= 0 (0: no limit), got {value!r}"
        )


@attrs.frozen
class ConnectionLimits:
    """What one client connection may do before the node refuses or drops it.

    See the ``[node]`` settings of the same names for what each means.
    """

    idle_timeout: float = attrs.field(default=DEFAULT_IDLE_TIMEOUT, validator=_non_negative)
    slow_client_timeout: float = attrs.field(
        default=DEFAULT_SLOW_CLIENT_TIMEOUT, validator=_non_negative
    )
    max_output_bytes: int = attrs.field(default=DEFAULT_MAX_OUTPUT_BYTES, validator=_size_or_zero)
    max_request_bytes: int = attrs.field(default=DEFAULT_MAX_REQUEST_BYTES, validator=_positive_int)
    max_pipelined: int = attrs.field(default=DEFAULT_MAX_PIPELINED, validator=_positive_int)

    @property
    def pipeline_message(self) -> str:
        """What a request refused by ``max_pipelined`` is told."""
        return f"max pipelined requests reached ({self.max_pipelined})"


class ClientLimit:
    """Admits client connections up to ``maximum`` open at once, across front-ends.

    ``limits`` are the per-connection limits every front-end applies; the
    counts of what they refused are kept here, for the node's metrics.
    """

    def __init__(
        self, maximum: int = DEFAULT_MAX_CLIENTS, limits: ConnectionLimits | None = None
    ) -> None:
        if type(maximum) is not int or maximum < 1:
            raise ConfigurationError(f"max_clients must be a positive integer, got {maximum!r}")
        self.maximum = maximum
        self.limits = limits if limits is not None else ConnectionLimits()
        #: Connections admitted and not yet closed.
        self.open = 0
        #: Connections turned away since the node started.
        self.refused = 0
        #: Connections the node closed for a limit, by ``(protocol, reason)``.
        self.closed: dict[tuple[str, str], int] = {}
        #: Requests refused for a limit (their connection kept), by ``(protocol, reason)``.
        self.requests_refused: dict[tuple[str, str], int] = {}

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

    def count_closed(self, protocol: str, reason: str) -> None:
        """Count a connection closed for ``reason`` (one of :data:`CLOSE_REASONS`)."""
        key = (protocol, reason)
        self.closed[key] = self.closed.get(key, 0) + 1

    def count_refused(self, protocol: str, reason: str, requests: int = 1) -> None:
        """Count requests refused for ``reason`` on a connection that stays open."""
        key = (protocol, reason)
        self.requests_refused[key] = self.requests_refused.get(key, 0) + requests
