"""Real network faults between node processes, each in its own Linux network namespace.

Four nodes and a client sit on a bridge in namespaces of their own (see
``testsupport/netns.py``); the tests cut a node's link, or make it lossy, and drive the
cluster from the client namespace as a user would. Needs root and iproute2;
skipped otherwise. Nothing is configured in the root namespace, and every
namespace and process is removed at the end, whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

if sys.platform != "linux" or os.geteuid() != 0:
    pytest.skip("network namespaces need root on Linux", allow_module_level=True)
if shutil.which("ip") is None:
    pytest.skip("iproute2 (ip) is not installed", allow_module_level=True)

from testsupport import netns
from testsupport.netns import Lab, LabError, Nodes

pytestmark = pytest.mark.live  # real node processes

NODES = ("n1", "n2", "n3", "n4")
CLIENT = "client"
DRIVER = netns.__file__  # also run as a script, inside the client namespace
DETECTOR_TIMEOUT = 1.0
REQUEST_TIMEOUT = 1.0
STORE: dict[str, Any] = {
    "store": {
        "n": 3,
        "r": 2,
        "w": 2,
        "request_timeout": REQUEST_TIMEOUT,
        "heartbeat_interval": 0.2,
        "hint_delivery_interval": 0.5,
        "anti_entropy_interval": 3600.0,  # repair runs only when a test asks
    },
    "failure_detector": {"name": "timeout", "timeout": DETECTOR_TIMEOUT},
    "storage_engine": "memory",
    "transport": "tcp",
}
#: After a cut, requests may fail only this long: the detector's timeout, one
#: request timeout already under way when it fires, and a second of slack.
DETECTION_WINDOW = DETECTOR_TIMEOUT + REQUEST_TIMEOUT + 1.0

Env = tuple[Lab, Nodes]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    lab = Lab(f"dtkt-{os.getpid()}-", [*NODES, CLIENT])
    nodes: Nodes | None = None
    try:
        try:
            lab.build()
        except LabError as exc:
            pytest.skip(f"cannot create network namespaces: {exc}")
        nodes = Nodes(lab, tmp_path_factory.mktemp("netns"))
        nodes.start(NODES, STORE)
        nodes.wait_ready(timeout=30)
        yield lab, nodes
    finally:
        killed = nodes.stop() if nodes is not None else []
        failures = lab.destroy()
    assert not failures, f"namespaces left behind: {failures}"
    assert nodes is not None
    assert all(p.returncode is not None for p in nodes.processes.values())
    assert not killed, f"{killed} ignored SIGTERM and had to be killed"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.prefix not in listed


def native(lab: Lab, name: str) -> str:
    return lab.members[name].endpoint("native")


def http(lab: Lab, name: str) -> str:
    return lab.members[name].endpoint("http")


def drive(env: Env, ops: Sequence[dict[str, Any]], timeout: float = 60) -> list[dict[str, Any]]:
    """Run ``ops`` with the client driver inside the client namespace; one result each."""
    lab, nodes = env
    argv = lab.exec_argv(CLIENT, [sys.executable, DRIVER, json.dumps(list(ops))])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    logs = "\n".join(f"--- {name}\n{nodes.log(name)}" for name in NODES)
    assert done.returncode == 0, f"driver failed:\n{done.stderr}\n{logs}"
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def test_write_through_one_node_read_through_another(env: Env) -> None:
    lab, _ = env
    put, read, read_all, *health = drive(
        env,
        [
            {"op": "put", "via": native(lab, "n1"), "key": "base", "value": "hello"},
            {"op": "get", "via": native(lab, "n2"), "key": "base"},
            {"op": "get", "via": native(lab, "n4"), "key": "base", "r": 3},
            *({"op": "health", "via": http(lab, name)} for name in NODES),
        ],
    )
    assert put["ok"], put
    assert read["ok"], read
    assert read["values"] == ["hello"], read
    assert read_all["ok"], read_all
    assert read_all["values"] == ["hello"], read_all
    assert [h["health"]["node"] for h in health] == list(NODES)
    assert all(h["health"]["status"] == "ok" and h["health"]["hints_pending"] == 0 for h in health)


def test_cut_node_gets_its_hints_and_converges(env: Env) -> None:
    lab, _ = env
    survivors = [native(lab, name) for name in ("n1", "n2", "n3")]
    keys = [(f"cut-{i}", f"during-{i}") for i in range(20)]
    during: list[dict[str, Any]] = []
    ops: list[dict[str, Any]] = [
        {"op": "until_hinted", "via": survivors, "prefix": "warm", "deadline": 10.0, "pace": 0.05}
    ]
    for i, (key, value) in enumerate(keys):
        ops.append({"op": "put", "via": survivors[i % 3], "key": key, "value": value})
        ops.append({"op": "get", "via": survivors[(i + 1) % 3], "key": key})
    ops += [{"op": "health", "via": http(lab, name)} for name in ("n1", "n2", "n3")]
    ops.append({"op": "health", "via": http(lab, "n4"), "timeout": 1.0})

    cut = time.monotonic()
    lab.set_link("n4", up=False)
    try:
        during = drive(env, ops)
    finally:
        lab.set_link("n4", up=True)
    restored = time.monotonic()

    warm, *rest, unreachable = during
    assert not unreachable["ok"], f"n4 still answers across the cut: {unreachable}"
    # Until every survivor's detector reports n4 down, requests may fail (or
    # read stale); not after the detection window.
    assert warm["ok"], warm
    assert warm["not_hinted"] == [], warm
    late = [
        a
        for a in warm["attempts"]
        if not (a["put"]["ok"] and a["get"]["ok"] and a["get"]["values"] == [a["value"]])
        and a["put"]["at"] - cut > DETECTION_WINDOW
    ]
    assert not late, f"requests still failing {DETECTION_WINDOW} s after the cut: {late}"
    assert all(a["put"]["ok"] and a["get"]["ok"] for a in warm["attempts"][-3:])
    # Once it is noticed, every write and read at W=R=2 succeeds through any survivor.
    main, health = rest[: 2 * len(keys)], rest[2 * len(keys) :]
    for (key, value), put, read in zip(keys, main[0::2], main[1::2], strict=True):
        assert put["ok"], (key, put)
        assert read["ok"], (key, read)
        assert read["values"] == [value], (key, read)
    held = [h["health"]["hints_by_owner"] for h in health]
    assert sum(owners.get("n4", 0) for owners in held) > 0, held
    assert all(set(owners) <= {"n4"} for owners in held), held

    # Link back up: the stand-ins hand their hints over.
    (cleared,) = drive(
        env, [{"op": "until_hints_clear", "via": [http(lab, n) for n in NODES], "deadline": 20.0}]
    )
    assert cleared["ok"], cleared
    handoff = time.monotonic() - restored

    # Anti-entropy converges: once a pass on every node reaches all its peers,
    # the next pass finds nothing left to repair.
    (repair,) = drive(
        env, [{"op": "repair_rounds", "via": [native(lab, n) for n in NODES], "max_rounds": 5}]
    )
    assert repair["ok"], repair
    *_, converging, second = repair["rounds"]
    assert all(r["peers_unreachable"] == 0 for r in converging), repair["rounds"]
    assert all(r["partitions"] > 0 and r["peers_unreachable"] == 0 for r in second), second
    assert sum(r["keys_compared"] for r in second) > 0, second
    assert sum(r["keys_repaired"] for r in second) == 0, second

    # Every value written during the cut is on all three replicas (R=3), read
    # through every node, the one that was cut off included.
    written = keys + [(a["key"], a["value"]) for a in warm["attempts"] if a["put"]["ok"]]
    everyone = [native(lab, name) for name in NODES]
    reads = drive(
        env,
        [
            {"op": "get", "via": everyone[i % 4], "key": key, "r": 3}
            for i, (key, _) in enumerate(written)
        ],
    )
    for (key, value), read in zip(written, reads, strict=True):
        assert read["ok"], (key, read)
        assert read["values"] == [value], (key, read)
    print(
        f"cut held {restored - cut:.1f} s ({len(warm['attempts'])} warm-up writes), "
        f"handoff {handoff:.1f} s after restore; {len(repair['rounds'])} repair passes, "
        f"the first repaired {sum(r['keys_repaired'] for r in repair['rounds'][0])} keys"
    )


def test_writes_succeed_through_packet_loss(env: Env) -> None:
    lab, _ = env
    if shutil.which("tc") is None:
        pytest.skip("tc (iproute2) is not installed")
    try:
        lab.add_loss("n2", 30)
    except LabError:
        lab.clear_loss("n2")
        pytest.skip("tc netem unavailable on this kernel (sch_netem)")
    coordinators = [native(lab, name) for name in ("n1", "n3", "n4")]
    keys = [(f"lossy-{i}", f"value-{i}") for i in range(10)]
    try:
        ops: list[dict[str, Any]] = []
        for i, (key, value) in enumerate(keys):
            via, reader = coordinators[i % 3], coordinators[(i + 1) % 3]
            ops.append({"op": "put", "via": via, "key": key, "value": value, "tries": 3})
            ops.append({"op": "get", "via": reader, "key": key, "timeout": 10.0})
        results = drive(env, ops, timeout=120)
    finally:
        lab.clear_loss("n2")
    for (key, value), put, read in zip(keys, results[0::2], results[1::2], strict=True):
        assert put["ok"], (key, put)
        assert read["ok"], (key, read)
        assert read["values"] == [value], (key, read)
    # Leave the cluster as found: whatever was hinted for n2 is handed back.
    (cleared,) = drive(
        env, [{"op": "until_hints_clear", "via": [http(lab, n) for n in NODES], "deadline": 20.0}]
    )
    assert cleared["ok"], cleared
