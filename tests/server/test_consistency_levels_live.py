"""Consistency levels with real node processes: LOCAL_QUORUM through the loss of dc2."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import redis

from testsupport.live import dtk, free_base, gone, redis_client

pytestmark = pytest.mark.live  # real node processes


def test_local_quorum_serves_while_each_quorum_is_refused(tmp_path: Path) -> None:
    base = free_base(6)
    up = ["cluster", "up", "--datacenters", "dc1:3,dc2:3"]
    nodes = json.loads(dtk(*up, "--dir", str(tmp_path), "--base-port", str(base), "--json").stdout)[
        "nodes"
    ]
    dc1, dc2 = nodes[:3], nodes[3:]
    try:
        client = redis_client(dc1[0]["resp"])
        assert client.execute_command("DTK.CONSISTENCY", "ONE", "EACH_QUORUM") == b"OK"
        assert client.set("before", "v0")
        assert client.execute_command("DTK.CONSISTENCY", "LOCAL_QUORUM") == b"OK"
        for node in dc2:
            os.kill(node["pid"], signal.SIGKILL)
        for node in dc2:
            while not gone(node["pid"]):
                time.sleep(0.02)
        assert client.set("during", "v1")
        assert client.get("during") == b"v1"
        assert client.get("before") == b"v0"
        assert client.execute_command("DTK.CONSISTENCY", "LOCAL_QUORUM", "EACH_QUORUM") == b"OK"
        started = time.monotonic()
        with pytest.raises(
            redis.ResponseError, match=r"EACH_QUORUM not reached: \d of 2 in dc2"
        ) as refused:
            client.set("refused", "v2")
        assert "in dc1" not in str(refused.value)  # dc1 was never the problem
        assert time.monotonic() - started < 5.0
        client.close()

        back = json.loads(dtk("cluster", "up", "--dir", str(tmp_path), "--json").stdout)
        assert all(node["running"] for node in back["nodes"])
        client = redis_client(dc1[0]["resp"])
        assert client.execute_command("DTK.CONSISTENCY", "LOCAL_QUORUM", "EACH_QUORUM") == b"OK"
        deadline = time.monotonic() + 30
        while True:  # until dc1's failure detectors see dc2 up again
            try:
                assert client.set("after", "v3")
                break
            except redis.ResponseError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        remote = redis_client(back["nodes"][3]["resp"])
        assert remote.execute_command("DTK.CONSISTENCY", "LOCAL_QUORUM") == b"OK"
        assert remote.get("after") == b"v3"
        remote.close()
        client.close()
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
