"""Losing a whole datacenter under write load, with real node processes."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from testsupport.live import Writer, dtk, free_base, gone, redis_client, wait_until

pytestmark = pytest.mark.live  # real node processes

#: Writes acknowledged before dc2 goes, and again while it is gone.
BEFORE, DURING = 150, 150


def _stored_keys(http: str) -> int:
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("dtk_stored_keys "):
                return int(float(line.split()[1]))
    raise AssertionError("no dtk_stored_keys")


def test_a_datacenter_lost_under_load_comes_back_with_every_write(tmp_path: Path) -> None:
    base = free_base(6)
    # Default settings: three copies in each datacenter, LOCAL_QUORUM reads
    # and writes, which dc1 alone can answer.
    up = ["cluster", "up", "--datacenters", "dc1:3,dc2:3"]
    nodes = json.loads(dtk(*up, "--dir", str(tmp_path), "--base-port", str(base), "--json").stdout)[
        "nodes"
    ]
    dc1, dc2 = nodes[:3], nodes[3:]
    writer = Writer([node["resp"] for node in dc1])
    try:
        writer.start()
        assert wait_until(lambda: len(writer.acknowledged) >= BEFORE, timeout=60)
        for node in dc2:
            os.kill(node["pid"], signal.SIGKILL)
        for node in dc2:
            while not gone(node["pid"]):
                time.sleep(0.02)  # waiting for the kernel to end the processes
        # dc1 keeps acknowledging writes while all of dc2 is gone ...
        during = len(writer.acknowledged)
        assert wait_until(lambda: len(writer.acknowledged) >= during + DURING, timeout=60)
        # ... and a write that needs both datacenters is refused, naming dc2.
        each = redis_client(dc1[0]["resp"])
        each.execute_command("DTK.CONSISTENCY", "EACH_QUORUM")
        with pytest.raises(redis.ResponseError, match=r"EACH_QUORUM not reached: .* in dc2"):
            each.set("needs-both", "x")
        each.close()
    finally:
        writer.stop()
    acknowledged = dict(writer.acknowledged)
    try:
        back = json.loads(dtk("cluster", "up", "--dir", str(tmp_path), "--json").stdout)
        assert all(node["running"] for node in back["nodes"])
        dtk("repair", "--dir", str(tmp_path))
        # Every node holds a copy of every key again (N = 6 on 6 nodes) ...
        for node in back["nodes"]:
            assert _stored_keys(node["http"]) >= len(acknowledged), node["name"]
        # ... and every acknowledged write reads back through either datacenter.
        for node in (back["nodes"][0], back["nodes"][3]):
            client = redis_client(node["resp"])
            missing = [k for k, v in acknowledged.items() if client.get(k) != v.encode()]
            client.close()
            assert not missing, (node["name"], len(missing), missing[:5])
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
