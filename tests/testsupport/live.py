"""Real node processes on loopback: start ``dtk``, find ports, talk to nodes, wait."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

__all__ = [
    "DTK",
    "Writer",
    "cluster_status",
    "dtk",
    "free_base",
    "gone",
    "redis_client",
    "wait_until",
]

DTK = [sys.executable, "-m", "dynamo_toolkit.cli"]


def free_base(nodes: int) -> int:
    """A base port whose node ports (10 per node) are all free on 127.0.0.1.

    The search starts at a place that depends on this process, so two test
    runs on one machine rarely pick the same range at the same moment.
    """
    from dynamo_toolkit_server.local_cluster import ephemeral_ports

    # Below the ephemeral range: a client's connection cannot take a node's
    # port between a kill and the restart.
    ephemeral = ephemeral_ports()
    top = min(ephemeral.start, 65536) - nodes * 10
    start = 10000 + (os.getpid() % 200) * 100
    for base in list(range(start, top, 100)) + list(range(10000, start, 100)):
        ports = [base + i * 10 + k for i in range(nodes) for k in range(4)]
        ok = True
        for port in ports:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie awaiting its reaper counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def dtk(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``dtk`` as a user would; with ``check``, fail the test showing what it printed."""
    done = subprocess.run([*DTK, *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        pytest.fail(
            f"dtk {' '.join(args)} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def redis_client(address: str, **options: Any) -> redis.Redis:
    host, port = address.rsplit(":", 1)
    return redis.Redis(host=host, port=int(port), socket_timeout=10, **options)


def cluster_status(directory: Path) -> list[dict[str, Any]]:
    """``dtk cluster status --json``'s node rows."""
    out = dtk("cluster", "status", "--dir", str(directory), "--json").stdout
    return list(json.loads(out)["nodes"])


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; whether it held.

    For state in other processes, which offer no event to await.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Writer(threading.Thread):
    """Writes fresh keys through the given nodes until stopped; remembers acks."""

    def __init__(self, addresses: list[str]) -> None:
        super().__init__(daemon=True)
        self.clients = [redis_client(address) for address in addresses]
        self.acknowledged: dict[str, str] = {}
        self.failures = 0
        self.halt = threading.Event()

    def run(self) -> None:
        sequence = 0
        while not self.halt.is_set():
            sequence += 1
            key, value = f"live-{sequence}", str(sequence)
            client = self.clients[sequence % len(self.clients)]
            try:
                if client.set(key, value):
                    self.acknowledged[key] = value
            except (redis.RedisError, OSError):
                self.failures += 1
            time.sleep(0.002)  # a steady, modest load; not a wait for anything

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)
        for client in self.clients:
            client.close()
