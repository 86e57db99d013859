"""The ``timeout`` failure detector: a node is down once silent for ``timeout`` seconds.

Dynamo's nodes form a local view of peers from whatever traffic they see
(§4.8.3); this is the simplest such view. It is pure: every method takes the
current time, so it behaves identically under a virtual clock.
"""

from __future__ import annotations

import math

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces import FailureDetector
from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["TimeoutDetector", "dtk_register_components"]


class TimeoutDetector(FailureDetector):
    """Heartbeat timeout: available while ``now - last_heard <= timeout``.

    :meth:`suspicion` is the silence measured in timeouts, ``(now - last) /
    timeout``: it grows continuously and exceeds 1 exactly when the node is
    considered unavailable.
    """

    def __init__(self, timeout: float = 2.0) -> None:
        # bool is a number to Python, but never a sensible timeout.
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ConfigurationError(f"timeout must be a number of seconds, got {timeout!r}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a finite number > 0, got {timeout!r}")
        self.timeout = float(timeout)
        self._last_heard: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"TimeoutDetector(timeout={self.timeout})"

    def watch(self, node: str, now: float) -> None:
        """Start watching ``node`` as if just heard from (an earlier ``now`` never rewinds it)."""
        self.heartbeat(node, now)

    def heartbeat(self, node: str, now: float) -> None:
        """Record that ``node`` was alive at ``now``; stale (older) evidence is ignored."""
        last = self._last_heard.get(node)
        # Messages can be delivered out of order: an old one proves nothing new.
        if last is None or now > last:
            self._last_heard[node] = now

    def _silence(self, node: str, now: float) -> float:
        last = self._last_heard.get(node)
        if last is None:
            return 0.0
        # Clamp: a caller whose "now" lags the last heartbeat has heard it recently.
        return max(0.0, now - last)

    def is_available(self, node: str, now: float) -> bool:
        """True unless ``node`` is watched and has been silent longer than ``timeout``."""
        return self._silence(node, now) <= self.timeout

    def suspicion(self, node: str, now: float) -> float:
        """Silence in units of ``timeout``: 0 when just heard (or unknown), > 1 when down."""
        return self._silence(node, now) / self.timeout

    def forget(self, node: str) -> None:
        """Stop watching ``node``; it counts as unknown (available) afterwards."""
        self._last_heard.pop(node, None)

    def watched(self) -> list[str]:
        """Sorted names of the nodes being watched (for diagnostics)."""
        return sorted(self._last_heard)


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``timeout`` failure detector."""
    registry.add_failure_detector("timeout", TimeoutDetector)
