"""What TLS costs on a client port: dtk and Redis, each with and without TLS, same run.

Starts Debian's redis-server and a one-node dtk cluster (N=1, memory engine),
each once in plain TCP and once with TLS (certificates from a local CA made
by :func:`dynamo_toolkit_server.tls.make_local_pki`), and drives each with
``redis-benchmark`` (SET and GET, 50 clients, unpipelined and pipelined 16;
``--tls --cacert`` for the TLS runs). Writes ``docs/benchmarks/tls_cost.json``
and ``docs/benchmarks/tls_cost_table.inc``. The comparable figures are ratios
from the same run: each server's TLS throughput over its own plain
throughput, and dtk's over Redis's. Server CPU per request is measured too.

Run: ``.venv/bin/python benchmarks/tls_cost.py`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "reference_server"))

from dynamo_toolkit_server.local_cluster import plan_cluster, start_cluster, stop_cluster  # noqa: E402
from dynamo_toolkit_server.tls import make_local_pki  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "bench_reference_server", Path(__file__).with_name("reference_server.py")
)
assert _spec is not None
assert _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

TESTS = ("SET", "GET")
MODES = {"unpipelined": 1, "pipelined16": 16}


def _run(port: int, pids: list[int], args: argparse.Namespace, tls: tuple[str, ...]) -> Any:
    """``{mode: {test: figures}}``, each figure the median of ``--repeat`` runs."""
    out: dict[str, dict[str, Any]] = {}
    for mode, pipeline in MODES.items():
        out[mode] = {}
        for test in TESTS:
            runs = [
                bench.redis_benchmark(
                    port, test.lower(), args.requests, args.clients, pipeline, pids, tls
                )[test]
                for _ in range(args.repeat)
            ]
            out[mode][test] = bench._median_figures(runs)
    return out


def _start_redis(port: int, tls: tuple[Path, Path, Path] | None) -> subprocess.Popen[bytes]:
    command = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    ping = ["redis-cli"]
    if tls is None:
        command += ["--port", str(port)]
    else:
        cert, key, ca = tls
        command += ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
        command += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        command += ["--tls-ca-cert-file", str(ca)]
        ping += ["--tls", "--cacert", str(ca)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # another process: nothing to await
        done = subprocess.run([*ping, "-p", str(port), "PING"], capture_output=True, text=True)
        if done.stdout.strip() == "PONG":
            return server
        time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


def _redis(port: int, args: argparse.Namespace, tls: tuple[Path, Path, Path] | None) -> Any:
    server = _start_redis(port, tls)
    options = ("--tls", "--cacert", str(tls[2])) if tls else ()
    try:
        return _run(port, [server.pid], args, options)
    finally:
        server.terminate()
        server.wait(10)


def _dtk(args: argparse.Namespace, tls: bool) -> Any:
    with tempfile.TemporaryDirectory(prefix="dtk-tls-bench-") as tmp:
        directory = Path(tmp)
        plan = plan_cluster(1, bench.free_base(10), n=1, r=1, w=1, storage="memory", tls=tls)
        rows = start_cluster(directory, plan)
        try:
            port = int(rows[0]["resp"].rsplit(":", 1)[1])
            options = ("--tls", "--cacert", str(directory / "tls" / "ca.crt")) if tls else ()
            return _run(port, [int(rows[0]["pid"])], args, options)
        finally:
            stop_cluster(directory)


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return None if mine is None or not theirs else mine / theirs


def table(results: dict[str, Any]) -> str:
    """An rst table: ops/s and CPU per request, plain and TLS, and the ratios."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - server",
        "     - mode",
        "     - test",
        "     - plain ops/s",
        "     - TLS ops/s",
        "     - TLS / plain",
        "     - plain CPU µs/req",
        "     - TLS CPU µs/req",
        "     - TLS ops/s vs Redis TLS",
    ]
    for server in ("redis", "dtk"):
        for mode in MODES:
            for test in TESTS:
                plain = results[f"{server}_plain"][mode][test]
                tls = results[f"{server}_tls"][mode][test]
                vs_redis = _ratio(tls["rps"], results["redis_tls"][mode][test]["rps"])
                cost = _ratio(tls["rps"], plain["rps"])
                lines += [
                    f"   * - {server}",
                    f"     - {mode}",
                    f"     - {test}",
                    f"     - {plain['rps']:,.0f}" if plain["rps"] else "     - n/a",
                    f"     - {tls['rps']:,.0f}" if tls["rps"] else "     - n/a",
                    f"     - {cost:.2f}x" if cost is not None else "     - n/a",
                    f"     - {plain.get('cpu_us') or 0:.1f}",
                    f"     - {tls.get('cpu_us') or 0:.1f}",
                    f"     - {vs_redis:.2f}x" if vs_redis is not None else "     - n/a",
                ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="Runs per test (medians).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    for tool in ("redis-server", "redis-benchmark", "redis-cli"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install redis-server")
    results: dict[str, Any] = {
        "machine": bench.machine(),
        "requests": args.requests,
        "clients": args.clients,
        "repeat": args.repeat,
    }
    with tempfile.TemporaryDirectory(prefix="redis-tls-") as tmp:
        pki = make_local_pki(Path(tmp), ["redis"])
        cert, key = pki.nodes["redis"]
        port = bench.free_base(1)
        results["redis_plain"] = _redis(port, args, None)
        results["redis_tls"] = _redis(port, args, (cert, key, pki.ca_cert))
    results["dtk_plain"] = _dtk(args, tls=False)
    results["dtk_tls"] = _dtk(args, tls=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tls_cost.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "tls_cost_table.inc").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
