"""Real node processes killed, paused and joined while a client writes (loopback only)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from testsupport.live import Writer, cluster_status, dtk, free_base, gone, redis_client, wait_until

pytestmark = pytest.mark.live  # real node processes


# About 45 s here (80 s before tombstone collection had its index, and 110 s
# then on a slower machine of the same kind): ample headroom over either.
@pytest.mark.timeout(360)
def test_kill_pause_and_join_under_load(tmp_path: Path) -> None:
    base = free_base(6)
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
        assert wait_until(lambda: all(n["hints"] == 0 for n in cluster_status(tmp_path)), 30)
        # Anti-entropy: a first pass may repair, a second finds nothing to do.
        dtk("repair", "--dir", str(tmp_path))
        second = json.loads(dtk("repair", "--dir", str(tmp_path), "--json").stdout)["nodes"]
        assert sum(r["keys_repaired"] for r in second.values()) == 0
        assert all(r["peers_unreachable"] == 0 for r in second.values())
        # Every acknowledged write reads back, through every node.
        for node in cluster_status(tmp_path):
            client = redis_client(node["resp"])
            missing = [k for k, v in acknowledged.items() if client.get(k) != v.encode()]
            client.close()
            assert not missing, (node["name"], len(missing), missing[:5])
        moved = plan["gained_fraction"]
        print(f"join moved {sum(moved.values()):.1%} of the key space to {list(moved)}")
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
    for node in nodes:
        assert gone(node["pid"])
