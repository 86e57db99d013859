"""Reference server against Redis on the same machine, in the same run.

Starts Debian's redis-server and local dtk clusters (1 node with N=1; 3 nodes
with N=3, R=2, W=2), drives each with redis-benchmark (SET, GET, LPUSH,
LRANGE_100; 50 clients; unpipelined and pipelined 16) through one node, and
the 3-node cluster also with the clients spread over its nodes (SET, GET),
measures the Python client's own throughput, and writes:

* ``docs/benchmarks/reference_server.json``: every figure;
* ``docs/benchmarks/reference_server_table.inc``: the table the docs include;
* ``docs/_static/bench_reference_server.png``: ratios to Redis, as bars.

Run: ``.venv/bin/python benchmarks/reference_server.py`` (needs redis-server
and redis-benchmark: ``apt-get install redis-server``; plots need matplotlib:
``pip install -e '.[bench]'``). Figures are machine-dependent; only the ratios
to Redis from the same run are comparable across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "reference_server"))

from dynamo_toolkit_server.local_cluster import plan_cluster, start_cluster, stop_cluster  # noqa: E402

TESTS = ("SET", "GET", "LPUSH", "LRANGE_100")
# A list is one value: every LPUSH rewrites it, and it must stay under the
# 10 KiB pair limit, so list tests push at most this many 3-byte items.
LIST_REQUESTS = 1000
# Runs per test; the figures are medians.
REPEAT = 3
# The mode with clients spread over every node (unpipelined, strings only:
# list commands on one key through several coordinators make siblings).
SPREAD = "unpipelined_spread"
THREE_NODES = "dtk_3nodes_n3r2w2"
QUORUM_READS = "dtk_3nodes_n3r2w2_quorum_reads"
FLOOR = "python_floor"
#: Every target measured besides Redis, with its label in the plot.
TARGETS = {
    FLOOR: "floor: uvloop + RESP parser, no store",
    "dtk_1node_n1": "1 node, N=1",
    THREE_NODES: "3 nodes, N=3 R=2 W=2",
    QUORUM_READS: "3 nodes, N=3 R=2 W=2, read_fanout = quorum",
}


def free_base(ports: int) -> int:
    """A base port with ``ports`` free ports after it on 127.0.0.1."""
    from dynamo_toolkit_server.local_cluster import free_base_port

    return free_base_port(ports, start=20000, step=200)


def machine() -> dict[str, Any]:
    """The CPU, Python, Redis and package versions, recorded with every result."""
    import ssl
    from importlib.metadata import version

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    packages = ("dynamo-toolkit", "uvloop", "msgpack", "attrs", "cryptography", "rocksdict")
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "redis_server": redis_version[2].removeprefix("v=") if len(redis_version) > 2 else "",
        "packages": {name: version(name) for name in packages},
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes ``pids`` have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def _benchmark_command(
    port: int,
    tests: str,
    requests: int,
    clients: int,
    pipeline: int = 1,
    options: tuple[str, ...] = (),
) -> list[str]:
    """The ``redis-benchmark`` command line (random keys out of 10,000, CSV output).

    ``options`` go before the others, e.g. ``("--tls", "--cacert", "ca.crt")``.
    """
    return [
        "redis-benchmark", *options, "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
        "-n", str(requests), "-r", "10000", "-P", str(pipeline), "-t", tests, "--csv",
    ]  # fmt: skip


def _figures(row: dict[str, str]) -> dict[str, float | None]:
    """ops/s, p50 and p99 of one CSV row of ``redis-benchmark``."""
    rps = float(row["rps"])
    return {
        # A run too short for redis-benchmark's clock reports "inf": no figure.
        "rps": rps if math.isfinite(rps) else None,
        "p50_ms": float(row["p50_latency_ms"]),
        "p99_ms": float(row["p99_latency_ms"]),
    }


def redis_benchmark(
    port: int,
    tests: str,
    requests: int,
    clients: int,
    pipeline: int,
    pids: list[int],
    options: tuple[str, ...] = (),
) -> dict[str, dict[str, float]]:
    """Run redis-benchmark; ``{TEST: {"rps", "p50_ms", "p99_ms", "cpu_us"}}``.

    ``cpu_us`` is the CPU time the server processes ``pids`` spent per request
    (one test per call, so the figure is that test's): unlike ops/s it does
    not depend on what else the machine runs at the same time.
    """
    before = cpu_seconds(pids)
    command = _benchmark_command(port, tests, requests, clients, pipeline, options)
    out = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True).stdout
    results: dict[str, dict[str, Any]] = {
        row["test"].split(" ")[0]: _figures(row) for row in csv.DictReader(io.StringIO(out))
    }
    if len(results) == 1:
        (figures,) = results.values()
        figures["cpu_us"] = (cpu_seconds(pids) - before) / requests * 1e6
    return results


def redis_benchmark_spread(
    ports: list[int], test: str, requests: int, clients: int, pids: list[int]
) -> dict[str, float]:
    """One ``redis-benchmark`` per port at once, clients and requests split evenly.

    How a cluster is used: clients spread over the nodes, each node
    coordinating its share. ops/s is the sum over the runs; p50 the mean,
    p99 the worst; ``cpu_us`` every server process's CPU per request.
    """
    before = cpu_seconds(pids)
    share = requests // len(ports)
    each = max(1, clients // len(ports))
    runs = [
        subprocess.Popen(
            _benchmark_command(port, test, share, each), stdout=subprocess.PIPE, text=True
        )
        for port in ports
    ]
    rows = []
    for run in runs:
        out, _ = run.communicate(timeout=900)
        if run.returncode:
            raise RuntimeError(f"redis-benchmark failed: {run.args!r}")
        rows.append(_figures(next(csv.DictReader(io.StringIO(out)))))
    return {
        "rps": sum(row["rps"] or 0.0 for row in rows),
        "p50_ms": sum(row["p50_ms"] or 0.0 for row in rows) / len(rows),
        "p99_ms": max(row["p99_ms"] or 0.0 for row in rows),
        "cpu_us": (cpu_seconds(pids) - before) / (share * len(ports)) * 1e6,
    }


def drive(
    port: int, requests: int, clients: int, pids: list[int], repeat: int = REPEAT
) -> dict[str, dict[str, dict[str, float]]]:
    """Every test, unpipelined and pipelined 16; server CPU per request for SET and GET.

    Each test runs ``repeat`` times; every figure is the median of its runs
    (a list test lasts milliseconds against Redis: one run is noisy).
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for pipeline in (1, 16):
        label = "unpipelined" if pipeline == 1 else "pipelined16"
        runs: list[dict[str, dict[str, float]]] = []
        for _ in range(repeat):
            figures = redis_benchmark(port, "set", requests, clients, pipeline, pids)
            figures |= redis_benchmark(port, "get", requests, clients, pipeline, pids)
            # LRANGE_100 starts with LPUSHes of its own: no per-test CPU figure for lists.
            figures |= redis_benchmark(
                port, "lpush,lrange_100", LIST_REQUESTS, clients, pipeline, pids
            )
            runs.append(figures)
            # Each run pushes onto one list: start it empty, under the pair limit.
            subprocess.run(
                ["redis-cli", "-p", str(port), "DEL", "mylist"], capture_output=True, check=False
            )
        out[label] = {
            test: _median_figures([run[test] for run in runs]) for test in TESTS if test in runs[0]
        }
    return out


def _median_figures(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over ``runs`` (figures a run lacks are left out)."""
    medians: dict[str, Any] = {}
    for name in runs[0]:
        values = [run[name] for run in runs if run.get(name) is not None]
        medians[name] = statistics.median(values) if values else None
    medians["runs"] = len(runs)
    return medians


def _answering(server: subprocess.Popen[bytes], port: int, name: str) -> subprocess.Popen[bytes]:
    """``server`` once it answers PING on ``port`` (killed if not within 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ping = subprocess.run(
            ["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True
        )
        if ping.stdout.strip() == "PONG":
            return server
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"{name} did not start")


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """Redis with persistence off, as a cache-like baseline."""
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return _answering(server, port, "redis-server")


def start_floor(port: int) -> subprocess.Popen[bytes]:
    """The floor server (``resp_floor.py``): parses every command, stores nothing."""
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("resp_floor.py")), str(port)],
        stdout=subprocess.DEVNULL,
    )
    return _answering(server, port, "the floor server")


def client_throughput(
    addresses: list[str], seconds: float = 3.0, concurrency: int = 50
) -> dict[str, float]:
    """The Python client's own throughput: async (concurrent) and sync (sequential)."""
    from dynamo_toolkit_server.client import AsyncClient, Client

    async def run_async() -> float:
        client = AsyncClient(addresses)
        done = 0
        stop = time.perf_counter() + seconds

        async def worker(index: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < stop:
                key = f"py:{index}:{i % 100}"
                await client.put(key, b"x" * 100)
                await client.get(key)
                done += 2
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
        await client.close()
        return done / elapsed

    async_rate = asyncio.run(run_async())
    with Client(addresses) as client:
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            client.put(f"sync:{done % 100}", b"x" * 100)
            client.get(f"sync:{done % 100}")
            done += 2
        sync_rate = done / (time.perf_counter() - start)
    return {"async_ops_per_s": async_rate, "sync_ops_per_s": sync_rate}


def run_cluster(
    nodes: int,
    n: int,
    requests: int,
    clients: int,
    store: dict[str, Any] | None = None,
    spread: bool = False,
    repeat: int = REPEAT,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Benchmark one local cluster through its first node's RESP port.

    ``store`` adds store settings; with ``spread``, SET and GET are also run
    with the clients spread over every node.
    """
    with tempfile.TemporaryDirectory(prefix="dtk-bench-") as tmp:
        directory = Path(tmp)
        plan = plan_cluster(
            nodes,
            free_base(nodes * 10),
            n=n,
            r=min(2, n),
            w=min(2, n),
            config={"store": store or {}},
            storage="memory",
        )
        rows = start_cluster(directory, plan)
        try:
            port = int(rows[0]["resp"].rsplit(":", 1)[1])
            pids = [int(row["pid"]) for row in rows]
            figures = drive(port, requests, clients, pids, repeat)
            if spread:
                ports = [int(row["resp"].rsplit(":", 1)[1]) for row in rows]
                figures[SPREAD] = {
                    test: _median_figures(
                        [
                            redis_benchmark_spread(ports, test.lower(), requests, clients, pids)
                            for _ in range(repeat)
                        ]
                    )
                    for test in ("SET", "GET")
                }
            python = client_throughput([row["native"] for row in rows])
        finally:
            stop_cluster(directory)
    return figures, python


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return None if mine is None or not theirs else mine / theirs


def ratios(target: dict[str, Any], redis: dict[str, Any]) -> dict[str, Any]:
    """Each figure divided by Redis's (throughput: higher is better; latency: lower)."""
    return {
        mode: {
            test: {
                "rps": _ratio(target[mode][test]["rps"], redis[base][test]["rps"]),
                "p99_ms": _ratio(target[mode][test]["p99_ms"], redis[base][test]["p99_ms"]),
            }
            for test in target[mode]
        }
        for mode in target
        # Spread clients are compared with Redis's unpipelined run.
        for base in [mode.removesuffix("_spread")]
    }


def table(results: dict[str, Any]) -> str:
    """An rst table of every figure and its ratio to Redis."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - target",
        "     - mode",
        "     - test",
        "     - ops/s",
        "     - p50 ms",
        "     - p99 ms",
        "     - ops/s vs Redis",
        "     - server CPU µs/request",
    ]
    for target in ("redis", *TARGETS):
        for mode, tests in results.get(target, {}).items():
            for test, figures in tests.items():
                ratio = (
                    results["ratios"].get(target, {}).get(mode, {}).get(test, {}).get("rps", 1.0)
                )
                lines += [
                    f"   * - {target}",
                    f"     - {mode}",
                    f"     - {test}",
                    f"     - {figures['rps']:,.0f}"
                    if figures["rps"]
                    else "     - too fast to time",
                    f"     - {figures['p50_ms']:.3f}",
                    f"     - {figures['p99_ms']:.3f}",
                    f"     - {ratio:.2f}x" if ratio is not None else "     - n/a",
                    f"     - {figures['cpu_us']:.1f}" if "cpu_us" in figures else "     -",
                ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Bars: ops/s of each dtk target as a fraction of Redis, per test and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    for axis, mode in zip(axes, ("unpipelined", "pipelined16"), strict=True):
        bars = [(t, mode, label) for t, label in TARGETS.items() if t in results["ratios"]]
        if mode == "unpipelined" and SPREAD in results["ratios"][THREE_NODES]:
            bars.append((THREE_NODES, SPREAD, "3 nodes, clients spread over them"))
        width = 0.8 / len(bars)
        for offset, (target, bar_mode, label) in enumerate(bars):
            figures = results["ratios"][target][bar_mode]
            values = [(figures.get(t) or {}).get("rps") or 0.0 for t in TESTS]
            xs = [i + (offset - (len(bars) - 1) / 2) * width for i in range(len(TESTS))]
            # The floor is a reference, not a dtk target: grey.
            color = "tab:gray" if target == FLOOR else None
            axis.bar(xs, values, width, label=label if axis is axes[0] else None, color=color)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.axhline(0.8, color="tab:blue", linestyle="--", linewidth=0.8)
        axis.axhline(0.4, color="tab:orange", linestyle="--", linewidth=0.8)
        axis.set_xticks(range(len(TESTS)), TESTS)
        axis.set_title(mode)
    axes[0].set_ylabel("ops/s relative to Redis (same run)")
    fig.legend(loc="lower center", ncol=3, fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)


def main() -> None:
    """Run everything and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--repeat", type=int, default=REPEAT, help="Runs per test; figures are medians."
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument(
        "--from-json", action="store_true", help="Only redraw the table and plot from --out."
    )
    args = parser.parse_args()
    if args.from_json:
        write_outputs(json.loads((args.out / "reference_server.json").read_text()), args.out)
        return
    for tool in ("redis-server", "redis-benchmark", "redis-cli"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install redis-server")

    results: dict[str, Any] = {
        "machine": machine(),
        "requests": args.requests,
        "list_requests": LIST_REQUESTS,
        "clients": args.clients,
        "repeat": args.repeat,
    }
    port = free_base(1)
    redis = start_redis(port)
    try:
        results["redis"] = drive(port, args.requests, args.clients, [redis.pid], args.repeat)
    finally:
        redis.terminate()
        redis.wait(10)
    floor = start_floor(port)
    try:
        results[FLOOR] = drive(port, args.requests, args.clients, [floor.pid], args.repeat)
    finally:
        floor.terminate()
        floor.wait(10)
    results["dtk_1node_n1"], results["python_client_1node"] = run_cluster(
        1, 1, args.requests, args.clients, repeat=args.repeat
    )
    results[THREE_NODES], results["python_client_3nodes"] = run_cluster(
        3, 3, args.requests, args.clients, spread=True, repeat=args.repeat
    )
    results[QUORUM_READS], results["python_client_3nodes_quorum_reads"] = run_cluster(
        3, 3, args.requests, args.clients, store={"read_fanout": "quorum"}, repeat=args.repeat
    )
    results["ratios"] = {
        target: ratios(results[target], results["redis"]) for target in TARGETS if target in results
    }
    write_outputs(results, args.out)
    print(json.dumps(results["ratios"], indent=2))


def write_outputs(results: dict[str, Any], out: Path) -> None:
    """The JSON, the docs table and the plot."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference_server.json").write_text(json.dumps(results, indent=2))
    (out / "reference_server_table.inc").write_text(table(results))
    # The docs take the plot from _static; a trial run elsewhere keeps it with its JSON.
    static = ROOT / "docs" / "_static"
    plot_dir = static if out.resolve() == (ROOT / "docs" / "benchmarks").resolve() else out
    try:
        plot(results, plot_dir / "bench_reference_server.png")
    except ImportError:
        print("matplotlib not installed: no plot (pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
