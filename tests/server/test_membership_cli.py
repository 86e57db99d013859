"""Join, leave and replace on a real local cluster, through dtk as a user runs them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from testsupport.live import dtk, free_base, gone, redis_client

pytestmark = pytest.mark.live  # real node processes

KEYS = [f"member-key-{i}" for i in range(120)]


def _read_all(address: str) -> None:
    client = redis_client(address)
    try:
        for index, key in enumerate(KEYS):
            assert client.get(key) == str(index).encode(), key
    finally:
        client.close()


def test_join_leave_and_replace(tmp_path: Path) -> None:
    base = free_base(6)
    up = ["cluster", "up", "--nodes", "3", "--dir", str(tmp_path), "--base-port", str(base)]
    nodes = json.loads(dtk(*up, "--json").stdout)["nodes"]
    try:
        client = redis_client(nodes[0]["resp"])
        for index, key in enumerate(KEYS):
            client.set(key, str(index))
        client.close()

        joined = dtk("cluster", "join", "--dir", str(tmp_path)).stdout
        assert "started n4 (joining)" in joined
        assert "owners: n1, n2, n3 -> n1, n2, n3, n4" in joined
        plan = json.loads(dtk("cluster", "plan", "--dir", str(tmp_path), "--json").stdout)
        assert set(plan["gained_fraction"]) == {"n4"}
        # With N=3, a fourth node takes a replica of about 3/4 of the key space.
        assert 0.5 < plan["gained_fraction"]["n4"] < 0.95
        committed = dtk("cluster", "commit", "--dir", str(tmp_path)).stdout
        assert "committed epoch 2" in committed
        assert "handoff done" in committed
        # A whole-cluster restart after the join: every node comes back with the
        # committed view and reaches the node that joined.
        dtk("cluster", "down", "--dir", str(tmp_path))
        dtk("cluster", "up", "--dir", str(tmp_path))
        status = json.loads(dtk("cluster", "status", "--dir", str(tmp_path), "--json").stdout)
        assert all(n["running"] for n in status["nodes"])
        n4 = next(n for n in status["nodes"] if n["name"] == "n4")
        _read_all(n4["resp"])
        n1 = next(n for n in status["nodes"] if n["name"] == "n1")
        strict = redis_client(n1["resp"])
        strict.execute_command("DTK.CONSISTENCY", 3, 3)  # every replica, n4 included
        for key in KEYS[:20]:
            assert strict.set(key, "again")
        strict.close()
        client = redis_client(n4["resp"])
        for index, key in enumerate(KEYS[:20]):
            client.set(key, str(index))
        client.close()

        left = dtk("cluster", "leave", "n1", "--dir", str(tmp_path)).stdout
        assert "owners: n1, n2, n3, n4 -> n2, n3, n4" in left
        committed = dtk("cluster", "commit", "--dir", str(tmp_path)).stdout
        assert "handed off and stopped: n1" in committed
        _read_all(n4["resp"])

        # n3 dies; n5 replaces it, rebuilt from the survivors.
        n3 = next(n for n in status["nodes"] if n["name"] == "n3")
        os.kill(n3["pid"], signal.SIGKILL)
        replaced = dtk("cluster", "replace", "n3", "n5", "--dir", str(tmp_path)).stdout
        assert "staged: n3 removes" in replaced
        assert "-> n2, n4, n5" in replaced
        dtk("cluster", "commit", "--dir", str(tmp_path))
        status = json.loads(dtk("cluster", "status", "--dir", str(tmp_path), "--json").stdout)
        n5 = next(n for n in status["nodes"] if n["name"] == "n5")
        _read_all(n5["resp"])
        text = dtk("cluster", "status", "--dir", str(tmp_path)).stdout
        assert "n1   left" in text
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
    for node in nodes:
        assert gone(node["pid"])
