"""The transports and clocks of the kernel and built-ins pass their suites."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from dynamo_toolkit.clock import SystemClock, clock_for_running_loop
from dynamo_toolkit.interfaces import Clock, Network
from dynamo_toolkit.plugin_manager import load_plugins
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit.testing.conformance.clock import ClockSuite, Runner
from dynamo_toolkit.testing.conformance.transport import TransportSuite

HOST = load_plugins()


class TestMemoryTransport(TransportSuite):
    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        return lambda: HOST.registry.create("transport", "memory", seed=0)


class TestSimulatedTransportVirtualTime(TransportSuite):
    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        return lambda: HOST.registry.create("transport", "simulated", seed=3)

    @pytest.fixture
    def run(self) -> Runner:
        return run_virtual


class TestSimulatedTransportRealTime(TransportSuite):
    """The simulated network also works on an ordinary loop (delays are real)."""

    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        return lambda: HOST.registry.create("transport", "simulated", seed=3, max_delay=0.001)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestTcpTransport(TransportSuite):
    """Real sockets on loopback."""

    @pytest.fixture
    def make_network(self) -> Callable[[], Network]:
        addresses = {name: f"127.0.0.1:{_free_port()}" for name in ("a", "b")}
        return lambda: HOST.registry.create("transport", "tcp", seed=1, addresses=addresses)


class TestSystemClock(ClockSuite):
    @pytest.fixture
    def make_clock(self) -> Callable[[], Clock]:
        return SystemClock


class TestVirtualClock(ClockSuite):
    @pytest.fixture
    def make_clock(self) -> Callable[[], Clock]:
        return clock_for_running_loop

    @pytest.fixture
    def run(self) -> Runner:
        return run_virtual

    @pytest.fixture
    def tolerance(self) -> float:
        return 1e-9  # virtual time wakes exactly on time
