"""Real node processes on loopback, driven as a user would: dtk, redis-py, redis-cli."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from testsupport.live import DTK, dtk, free_base, gone, redis_client

pytestmark = pytest.mark.live  # real node processes


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Any]]]:
    directory = tmp_path_factory.mktemp("cluster")
    base = free_base(3)
    out = dtk(
        "cluster", "up", "--nodes", "3", "--dir", str(directory), "--base-port", str(base), "--json"
    )
    nodes = json.loads(out.stdout)["nodes"]
    try:
        yield directory, nodes
    finally:
        dtk("cluster", "down", "--dir", str(directory), check=False)
        for node in nodes:  # belt and braces: no process may outlive the tests
            with contextlib.suppress(ProcessLookupError):
                os.kill(node["pid"], signal.SIGKILL)


def test_up_reports_every_node(cluster_dir: tuple[Path, list[Any]]) -> None:
    _, nodes = cluster_dir
    assert [n["name"] for n in nodes] == ["n1", "n2", "n3"]
    for node in nodes:
        assert node["pid"] > 0
        for key in ("resp", "http", "native"):
            assert node[key].startswith("127.0.0.1:")


def test_write_through_one_node_read_through_another(cluster_dir: tuple[Path, list[Any]]) -> None:
    _, nodes = cluster_dir
    first, second, third = (redis_client(n["resp"]) for n in nodes)
    assert first.set("greeting", "hello") is True
    assert second.get("greeting") == b"hello"
    third.rpush("queue", "a", "b", "c")
    assert first.lrange("queue", 0, -1) == [b"a", b"b", b"c"]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        second.lpush("greeting", "x")
    for client in (first, second, third):
        client.close()


@pytest.mark.skipif(
    shutil.which("redis-cli") is None, reason="redis-cli (Debian redis-tools) not installed"
)
def test_redis_cli_talks_to_a_node(cluster_dir: tuple[Path, list[Any]]) -> None:
    _, nodes = cluster_dir
    host, port = nodes[0]["resp"].rsplit(":", 1)
    cli = ["redis-cli", "-h", host, "-p", port]
    assert (
        subprocess.run(
            [*cli, "SET", "cli-key", "cli value"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        == "OK"
    )
    host2, port2 = nodes[1]["resp"].rsplit(":", 1)
    got = subprocess.run(
        ["redis-cli", "-h", host2, "-p", port2, "GET", "cli-key"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert got.stdout.strip() == "cli value"
    unknown = subprocess.run([*cli, "NOSUCH"], capture_output=True, text=True, timeout=30)
    assert "unknown command" in unknown.stdout


def test_dtk_get_put_del(cluster_dir: tuple[Path, list[Any]]) -> None:
    directory, _ = cluster_dir
    assert dtk("put", "shell-key", "shell value", "--dir", str(directory)).stdout.strip() == "OK"
    assert dtk("get", "shell-key", "--dir", str(directory)).stdout.strip() == "shell value"
    dtk("del", "shell-key", "--dir", str(directory))
    missing = dtk("get", "shell-key", "--dir", str(directory), check=False)
    assert missing.returncode != 0
    assert "not found" in missing.stderr


def test_kill_one_node_and_bring_it_back(cluster_dir: tuple[Path, list[Any]]) -> None:
    directory, nodes = cluster_dir
    victim, survivor = nodes[0], nodes[1]
    client = redis_client(survivor["resp"])
    client.set("before", "1")
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not gone(victim["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for another process to die: no event to await
    # R=W=2 through the two survivors, before and after their detectors notice.
    for round_ in range(5):
        assert client.set(f"during-{round_}", str(round_)) is True
        assert client.get(f"during-{round_}") == str(round_).encode()
        assert client.get("before") == b"1"
    status = json.loads(dtk("cluster", "status", "--dir", str(directory), "--json").stdout)["nodes"]
    assert [n["running"] for n in status] == [False, True, True]
    restarted = json.loads(dtk("cluster", "up", "--dir", str(directory), "--json").stdout)["nodes"]
    assert all(n["running"] for n in restarted)
    back = redis_client(restarted[0]["resp"])
    assert back.get("during-4") == b"4"
    assert back.get("before") == b"1"
    nodes[0]["pid"] = restarted[0]["pid"]
    back.close()
    client.close()
    # The restarted node missed the writes made while it was down (3 nodes,
    # N=3: no stand-in took them); anti-entropy brings them over.
    first = json.loads(dtk("repair", "--dir", str(directory), "--json").stdout)["nodes"]
    assert sum(report["keys_repaired"] for report in first.values()) >= 1
    assert all(report["partitions"] > 0 for report in first.values())
    second = json.loads(dtk("repair", "--dir", str(directory), "--json").stdout)["nodes"]
    assert sum(report["keys_repaired"] for report in second.values()) == 0
    text = dtk("repair", "--dir", str(directory)).stdout
    assert "keys compared" in text
    assert "0 repaired" in text


def test_down_leaves_no_process(tmp_path: Path) -> None:
    base = free_base(2)
    out = dtk(
        "cluster", "up", "--nodes", "2", "--dir", str(tmp_path), "--base-port", str(base), "--json"
    )
    pids = [n["pid"] for n in json.loads(out.stdout)["nodes"]]
    assert "stopped: n1, n2" in dtk("cluster", "down", "--dir", str(tmp_path)).stdout
    for pid in pids:
        assert gone(pid), f"node process {pid} still runs"
    # Graceful stop: each node logged that it flushed and closed its storage.
    for name in ("n1", "n2"):
        log = (tmp_path / name / "node.log").read_text()
        assert "ready" in log
        assert "stopped cleanly" in log


def test_data_survives_a_full_restart(tmp_path: Path) -> None:
    base = free_base(2)
    up = ["cluster", "up", "--nodes", "2", "--dir", str(tmp_path), "--base-port", str(base)]
    nodes = json.loads(dtk(*up, "--json").stdout)["nodes"]
    try:
        client = redis_client(nodes[0]["resp"])
        client.set("durable", "yes")
        client.rpush("durable-list", "a", "b")
        client.close()
        dtk("cluster", "down", "--dir", str(tmp_path))
        # Every node stopped: what comes back can only come from their disks.
        up_again = dtk("cluster", "up", "--dir", str(tmp_path), "--json")
        nodes = json.loads(up_again.stdout)["nodes"]
        client = redis_client(nodes[1]["resp"])
        assert client.get("durable") == b"yes"
        assert client.lrange("durable-list", 0, -1) == [b"a", b"b"]
        client.close()
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path))


def test_busy_port_is_a_clear_error_and_leaves_no_plan(tmp_path: Path) -> None:
    base = free_base(1)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 1))  # the node's RESP port
        squatter.listen()
        up = ["cluster", "up", "--nodes", "1", "--dir", str(tmp_path), "--base-port", str(base)]
        failed = dtk(*up, check=False)
    assert failed.returncode != 0
    assert "already in use" in failed.stderr
    assert "--base-port" in failed.stderr
    assert not (tmp_path / "cluster.json").exists()


def test_settings_for_an_existing_cluster_are_refused(
    cluster_dir: tuple[Path, list[Any]],
) -> None:
    directory, _ = cluster_dir
    again = dtk("cluster", "up", "--dir", str(directory), "--nodes", "5", "--w", "3", check=False)
    assert again.returncode != 0
    assert "already holds a cluster made with other settings" in again.stderr
    assert "--nodes 5 (the cluster has 3)" in again.stderr
    assert "--w 3 (the cluster has 2)" in again.stderr


def test_repeating_the_creating_command_restarts_the_cluster(
    cluster_dir: tuple[Path, list[Any]],
) -> None:
    directory, nodes = cluster_dir
    base = nodes[0]["resp"].rsplit(":", 1)[1]
    same = ["--nodes", "3", "--base-port", str(int(base) - 1), "--w", "2", "--json"]
    again = dtk("cluster", "up", "--dir", str(directory), *same)
    assert [node["pid"] for node in json.loads(again.stdout)["nodes"]] == [
        node["pid"] for node in nodes
    ]


def test_conflicting_settings_names_only_what_differs() -> None:
    from dynamo_toolkit_server.local_cluster import conflicting_settings, plan_cluster

    plan = plan_cluster(3, 7100, storage="lmdb", durability="group", auth=True)
    same = {"nodes": 3, "base_port": 7100, "n": 3, "r": 2, "w": 2, "storage": "lmdb"}
    assert conflicting_settings(plan, same | {"durability": "group", "auth": True}) == []
    conflicts = conflicting_settings(
        plan, {"r": 1, "durability": "sync", "auth": False, "config_path": "x.toml"}
    )
    assert conflicts == [
        "--r 1 (the cluster has 2)",
        "--durability sync (the cluster has group)",
        "--auth (the cluster was made with it)",
        "--config",
    ]


def _lines_until(stream: Any, marker: str, limit: int = 200) -> list[str]:
    """Lines read from ``stream`` up to the one containing ``marker``."""
    lines: list[str] = []
    for _ in range(limit):
        line = stream.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never printed; got: {lines}")


def test_cluster_run_prints_commands_that_work_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    """`make run`'s job: the connect lines it prints run as printed; SIGINT stops every node."""
    base = free_base(2)
    run = subprocess.Popen(
        [*DTK, "cluster", "run", "--nodes", "2", "--dir", str(tmp_path), "--base-port", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = _lines_until(run.stdout, "Ctrl-C stops every node")
        python = next(i for i, line in enumerate(printed) if '-c "from dynamo_toolkit' in line)
        # The Python line continues on the next one (a shell line continuation).
        snippet = (printed[python] + "\n" + printed[python + 1]).strip()
        done = subprocess.run(["sh", "-c", snippet], capture_output=True, text=True, timeout=60)
        assert (done.stdout, done.stderr) == ("(['a', 'b'],)\n", "")
        get_line = next(line.strip() for line in printed if " get k --dir " in line)
        got = subprocess.run(["sh", "-c", get_line], capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, got.stderr
        assert "a" in got.stdout, got.stderr
        cli = next(line.strip() for line in printed if line.strip().startswith("redis-cli"))
        pong = subprocess.run(["sh", "-c", cli + " PING"], capture_output=True, text=True)
        if shutil.which("redis-cli"):
            assert pong.stdout.strip() == "PONG"
        pids = [
            n["pid"]
            for n in json.loads(dtk("cluster", "status", "--dir", str(tmp_path), "--json").stdout)[
                "nodes"
            ]
        ]
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 0
        assert "stopped: n1, n2" in out
        assert all(gone(pid) for pid in pids)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
