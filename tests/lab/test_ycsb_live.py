"""``dtk bench ycsb --target``: a tiny YCSB run against real node processes on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynamo_toolkit_lab.ycsb_workloads import FIELD_COUNT, FIELD_LENGTH, key_name, record_write
from dynamo_toolkit_server.client import Client
from testsupport.live import dtk, free_base

pytestmark = pytest.mark.live  # real node processes


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A 3-node cluster (N=3, R=W=2, memory engine); yields the native addresses."""
    directory = tmp_path_factory.mktemp("ycsb-cluster")
    base = free_base(3)
    up = ["cluster", "up", "--nodes", "3", "--dir", str(directory), "--base-port", str(base)]
    nodes = json.loads(dtk(*up, "--storage", "memory", "--json").stdout)["nodes"]
    try:
        yield [node["native"] for node in nodes]
    finally:
        dtk("cluster", "down", "--dir", str(directory), check=False)
        for node in nodes:  # no process may outlive the tests
            with contextlib.suppress(ProcessLookupError):
                os.kill(node["pid"], signal.SIGKILL)


def test_workloads_run_against_a_real_cluster(native: list[str]) -> None:
    target = ",".join(native)
    out = dtk(
        "bench", "ycsb", "--target", target, "--workloads", "A,E",
        "--configs", "n3r2w2,n3r1w1", "--records", "40", "--operations", "30",
        "--clients", "3", "--json",
    )  # fmt: skip
    payload: dict[str, Any] = json.loads(out.stdout)
    assert payload["target"] == native
    assert payload["latency"] == "real"
    assert payload["nodes"] is None
    results = payload["results"]
    assert [(r["workload"], r["r"], r["w"]) for r in results] == [
        ("A", 2, 2),
        ("E", 2, 2),
        ("A", 1, 1),
        ("E", 1, 1),
    ]
    for r in results:
        assert r["load"]["operations"] == 40
        assert r["load"]["errors"] == 0
        run = r["run"]
        assert run["operations"] == 30
        assert run["quorum_failures"] == 0
        assert run["errors"] == 0
        assert run["seconds"] > 0
        assert run["throughput"] > 0
        assert run["latency_ms"]["all"]["p50"] > 0
        if r["workload"] == "E":
            assert set(run["mix"]) <= {"scan", "insert"}
            assert run["reads"] > 30
        if r["r"] + r["w"] > r["n"]:
            # Three nodes, N=3: every coordinator is a replica; strict quorums
            # read every acknowledged write.
            assert run["stale_reads"] == 0
    # Each run wrote fresh keys, as records of ten 100-byte fields.
    prefixes = {r["key_prefix"] for r in results}
    assert len(prefixes) == len(results)
    with Client(native) as client:
        read = client.get(key_name(0, results[0]["key_prefix"]))
    (record,) = read.values
    assert sorted(record) == [f"field{i}" for i in range(FIELD_COUNT)]
    assert all(len(field) == FIELD_LENGTH for field in record.values())
    assert record_write(record) is not None


def test_a_configuration_with_another_n_is_refused(native: list[str]) -> None:
    out = dtk(
        "bench", "ycsb", "--target", ",".join(native), "--configs", "n2r1w1",
        "--records", "5", "--operations", "5", check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "stores N=3" in out.stderr


def test_an_unreachable_target_is_reported(tmp_path: Path) -> None:
    port = free_base(1)
    out = dtk(
        "bench", "ycsb", "--target", f"127.0.0.1:{port}", "--records", "5",
        "--operations", "5", "--timeout", "1", check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "cannot reach the cluster" in out.stderr
