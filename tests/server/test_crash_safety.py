"""Every node killed with SIGKILL mid-load: synced writes survive, files stay sound."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from testsupport.live import Writer, dtk, free_base, gone, redis_client, wait_until

pytestmark = pytest.mark.live  # real node processes

ACKNOWLEDGED = 100  # writes acknowledged before every node is killed


# "default": no storage options at all, as a new user starts a cluster. The
# group rows (and sqlitedict, which buffers too) acknowledge after the flush
# that covers a write (group commit).
@pytest.mark.parametrize(
    ("engine", "durability"),
    [
        ("default", None),
        ("sqlite", "sync"),
        ("lmdb", "sync"),
        ("rocksdb", "sync"),
        ("sqlite", "group"),
        ("lmdb", "group"),
        ("rocksdb", "group"),
        ("sqlitedict", None),
    ],
)
def test_all_nodes_killed_lose_no_acknowledged_write(
    tmp_path: Path, engine: str, durability: str | None
) -> None:
    base = free_base(3)
    up = ["cluster", "up", "--nodes", "3", "--dir", str(tmp_path), "--base-port", str(base)]
    if engine != "default":
        up += ["--storage", engine]
    if durability is not None:
        up += ["--durability", durability]
    nodes = json.loads(dtk(*up, "--json").stdout)["nodes"]
    writer = Writer([nodes[0]["resp"], nodes[1]["resp"]])
    try:
        writer.start()
        # Kill mid-load once enough writes were acknowledged (a count, not a
        # time: a loaded machine acknowledges fewer per second).
        assert wait_until(lambda: len(writer.acknowledged) >= ACKNOWLEDGED, timeout=60)
        for node in nodes:
            os.kill(node["pid"], signal.SIGKILL)
        for node in nodes:
            while not gone(node["pid"]):
                time.sleep(0.02)  # waiting for the kernel to end the processes
    finally:
        writer.stop()
    acknowledged = dict(writer.acknowledged)
    assert len(acknowledged) >= ACKNOWLEDGED
    try:
        # Restarting opens every engine file: a corrupt one would fail here.
        back = json.loads(dtk("cluster", "up", "--dir", str(tmp_path), "--json").stdout)
        assert all(node["running"] for node in back["nodes"])
        client = redis_client(back["nodes"][2]["resp"])
        missing = [k for k, v in acknowledged.items() if client.get(k) != v.encode()]
        client.close()
        assert not missing, (engine, len(missing), missing[:5])
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
