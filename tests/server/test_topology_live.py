"""A local cluster in two datacenters, through dtk as a user runs it: labels everywhere."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from dynamo_toolkit_server.credentials import http_get, resolve_credentials
from testsupport.live import cluster_status, dtk, free_base, gone, wait_until

pytestmark = pytest.mark.live  # real node processes


def _get(directory: Path, address: str, path: str) -> bytes:
    return http_get(address, path, resolve_credentials(directory=directory), timeout=5.0)


def _health(directory: Path, address: str) -> dict[str, Any]:
    return json.loads(_get(directory, address, "/health"))  # type: ignore[no-any-return]


def _views_list(directory: Path, expected: dict[str, tuple[str, str]]) -> bool:
    """Every running node's membership view shows every expected member's place."""
    for row in cluster_status(directory):
        if not row["running"]:
            continue
        try:
            members = _health(directory, row["http"])["membership"]["members"]
        except OSError:
            return False
        seen = {m["id"]: (m["datacenter"], m["rack"]) for m in members}
        if any(seen.get(name) != place for name, place in expected.items()):
            return False
    return True


def test_two_datacenters_labelled_in_status_health_metrics_and_gossip(tmp_path: Path) -> None:
    base = free_base(4)
    up = [
        "cluster", "up", "--dir", str(tmp_path), "--base-port", str(base),
        "--datacenters", "dc1:2,dc2:1", "--racks", "2", "--auth", "--json",
    ]  # fmt: skip
    pids: list[int] = []
    try:
        nodes = json.loads(dtk(*up).stdout)["nodes"]
        pids = [node["pid"] for node in nodes]
        expected = {"n1": ("dc1", "r1"), "n2": ("dc1", "r2"), "n3": ("dc2", "r1")}
        assert {n["name"]: (n["datacenter"], n["rack"]) for n in nodes} == expected

        status = cluster_status(tmp_path)
        assert {n["name"]: (n["datacenter"], n["rack"]) for n in status} == expected
        assert all(n["healthy"] for n in status)  # credentials of DIR/credentials.toml
        text = dtk("cluster", "status", "--dir", str(tmp_path)).stdout
        assert "dc=dc2 rack=r1" in text

        for row in status:
            health = _health(tmp_path, row["http"])
            assert (health["datacenter"], health["rack"]) == expected[row["name"]]
            metrics = _get(tmp_path, row["http"], "/metrics").decode()
            dc, rack = expected[row["name"]]
            line = f'dtk_node_info{{datacenter="{dc}",node="{row["name"]}",rack="{rack}"}} 1.0'
            assert line in metrics

        # Gossip: each node's view shows every member's datacenter and rack.
        assert wait_until(lambda: _views_list(tmp_path, expected), timeout=30)

        # A repeat with another topology is refused, naming it.
        again = dtk("cluster", "up", "--dir", str(tmp_path), "--datacenters", "dc1:3", check=False)
        assert again.returncode != 0
        assert "--datacenters dc1:3 (the cluster has dc1:2,dc2:1)" in again.stderr

        joined = dtk("cluster", "join", "--datacenter", "dc2", "--dir", str(tmp_path)).stdout
        assert "started n4 (joining, in dc2 rack r2)" in joined
        pids += [n["pid"] for n in cluster_status(tmp_path) if n["name"] == "n4"]
        expected["n4"] = ("dc2", "r2")
        n4 = next(n for n in cluster_status(tmp_path) if n["name"] == "n4")
        assert (n4["datacenter"], n4["rack"]) == ("dc2", "r2")
        assert _health(tmp_path, n4["http"])["datacenter"] == "dc2"
        assert wait_until(lambda: _views_list(tmp_path, expected), timeout=30)
        committed = dtk("cluster", "commit", "--dir", str(tmp_path)).stdout
        assert "handoff done" in committed

        # n2 dies; n5 replaces it in its datacenter and rack.
        os.kill(pids[1], signal.SIGKILL)
        assert wait_until(lambda: gone(pids[1]), timeout=10)
        dtk("cluster", "replace", "n2", "n5", "--dir", str(tmp_path))
        n5 = next(n for n in cluster_status(tmp_path) if n["name"] == "n5")
        pids.append(n5["pid"])
        assert (n5["datacenter"], n5["rack"]) == ("dc1", "r2")
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
        for pid in pids:  # belt and braces: no process may outlive the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid in pids:
        assert gone(pid)
