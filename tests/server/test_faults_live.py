"""Real node processes killed, paused and joined while a client writes (loopback only)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from test_local_cluster import _free_base, _gone, _redis, dtk


class Writer(threading.Thread):
    """Writes fresh keys through the given nodes until stopped; remembers acks."""

    def __init__(self, addresses: list[str]) -> None:
        super().__init__(daemon=True)
        self.clients = [_redis(address) for address in addresses]
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


def _status(directory: Path) -> list[dict[str, Any]]:
    out = dtk("cluster", "status", "--dir", str(directory), "--json").stdout
    return list(json.loads(out)["nodes"])


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)  # polling other processes
    return False


# About 80 s here and 110 s on a slower machine of the same kind: three times that.
@pytest.mark.timeout(360)
def test_kill_pause_and_join_under_load(tmp_path: Path) -> None:
    base = _free_base(6)
    up = ["cluster", "up", "--nodes", "4", "--dir", str(tmp_path), "--base-port", str(base)]
    nodes = json.loads(dtk(*up, "--json").stdout)["nodes"]
    writer = Writer([nodes[0]["resp"], nodes[1]["resp"]])
    try:
        writer.start()
        time.sleep(1.0)  # let the load run before the first fault
        victim, sleeper = nodes[3], nodes[2]
        os.kill(victim["pid"], signal.SIGKILL)
        time.sleep(4.0)  # the failure detectors notice; stand-ins take writes
        os.kill(sleeper["pid"], signal.SIGSTOP)  # a hung node: sockets open, no answers
        time.sleep(3.0)
        os.kill(sleeper["pid"], signal.SIGCONT)
        restarted = json.loads(dtk("cluster", "up", "--dir", str(tmp_path), "--json").stdout)
        assert all(n["running"] for n in restarted["nodes"])
        # Join a fifth node while the load goes on; the commit reports its time.
        dtk("cluster", "join", "--dir", str(tmp_path))
        plan = json.loads(dtk("cluster", "plan", "--dir", str(tmp_path), "--json").stdout)
        committed = dtk("cluster", "commit", "--dir", str(tmp_path)).stdout
        assert "handoff done in" in committed
        time.sleep(1.0)
    finally:
        writer.stop()
    try:
        acknowledged = dict(writer.acknowledged)
        assert len(acknowledged) > 200, (len(acknowledged), writer.failures)
        # Hints drain once everyone is back.
        assert _wait(lambda: all(n["hints"] == 0 for n in _status(tmp_path)), 30)
        # Anti-entropy: a first pass may repair, a second finds nothing to do.
        dtk("repair", "--dir", str(tmp_path))
        second = json.loads(dtk("repair", "--dir", str(tmp_path), "--json").stdout)["nodes"]
        assert sum(r["keys_repaired"] for r in second.values()) == 0
        assert all(r["peers_unreachable"] == 0 for r in second.values())
        # Every acknowledged write reads back, through every node.
        for node in _status(tmp_path):
            client = _redis(node["resp"])
            missing = [k for k, v in acknowledged.items() if client.get(k) != v.encode()]
            client.close()
            assert not missing, (node["name"], len(missing), missing[:5])
        moved = plan["gained_fraction"]
        print(f"join moved {sum(moved.values()):.1%} of the key space to {list(moved)}")
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
    for node in nodes:
        assert _gone(node["pid"])
