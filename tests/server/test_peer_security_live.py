"""A rogue node cannot join a cluster whose peers authenticate: real ``dtk serve`` processes.

Three nodes share a cluster secret (or certificates of one CA); a fourth,
started with ``join = true`` and the three as seeds, has a wrong secret (or
a certificate of another CA). It never shows up in the cluster's
membership, the cluster's nodes count its attempts in
``dtk_peer_auth_failures_total``, and data written before it came is read
back unchanged.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynamo_toolkit_server.tls import client_context, make_local_pki, write_cluster_secret
from testsupport.live import free_base, gone, wait_until

pytestmark = pytest.mark.live  # real node processes

NAMES = ("n1", "n2", "n3")
KEYS = {f"peer-sec-{i}": f"value-{i}" for i in range(20)}


class Node:
    """One ``dtk serve`` process started from a node.toml written here."""

    def __init__(self, home: Path, name: str, peer: str, http: str) -> None:
        self.name, self.peer, self.http = name, peer, http
        self.dir = home / name
        self.dir.mkdir(parents=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.ca: Path | None = None  # set when the client ports may speak TLS
        self.client: tuple[Path, Path] | None = None
        self.tls: bool | None = None  # whether the HTTP port speaks TLS, once known

    def write_config(self, members: list[Node], security: dict[str, str], join: bool) -> None:
        lines = [
            "[node]",
            f'id = "{self.name}"',
            f'data_dir = "{self.dir / "data"}"',
            f'peer = "{self.peer}"',
            f'http = "{self.http}"',
            'resp = ""',
            'native = ""',
            f"join = {'true' if join else 'false'}",
            "",
            "[security]",
            *(f'{key} = "{value}"' for key, value in security.items()),
            "",
            "[store]",
            "n = 3",
            "r = 2",
            "w = 2",
            "",
            "[storage_engine]",
            'name = "memory"',
        ]
        for member in members:
            lines += ["", "[[members]]", f'id = "{member.name}"', f'address = "{member.peer}"']
        (self.dir / "node.toml").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        with open(self.dir / "node.log", "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dynamo_toolkit_server.serve", str(self.dir / "node.toml")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.dir / "node.log").read_text()
            pytest.fail(f"{self.name} exited {self.process.returncode}:\n{log}")
        return (self.dir / "data" / "ready.json").exists()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """An HTTP request; over TLS when the port speaks it (client-port TLS is optional)."""
        host, port = self.http.rsplit(":", 1)
        if self.tls is None:  # find out once: a plain port fails the TLS handshake
            self.tls = False
            if self.ca is not None:
                with contextlib.suppress(ssl.SSLError, OSError):
                    self.tls = self._https(host, int(port), 2.0, "GET", "/health", None)[0] > 0
        if self.tls:
            return self._https(host, int(port), 10.0, method, path, body)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request(method, path, body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _https(
        self, host: str, port: int, timeout: float, method: str, path: str, body: bytes | None
    ) -> tuple[int, bytes]:
        context = client_context(self.ca, *(self.client or (None, None)))
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        try:
            connection.request(method, path, body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def peer_auth_failures(self) -> float:
        _, text = self.request("GET", "/metrics")
        found = re.search(rb"^dtk_peer_auth_failures_total (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def membership(self) -> str:
        status, body = self.request("GET", "/health")
        assert status == 200, body
        return json.dumps(json.loads(body)["membership"])


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[Node]]:
    base = free_base(4)
    made = [
        Node(tmp_path, name, f"127.0.0.1:{base + i * 10}", f"127.0.0.1:{base + i * 10 + 2}")
        for i, name in enumerate([*NAMES, "rogue"])
    ]
    try:
        yield made
    finally:
        for node in made:
            node.stop()
        for node in made:
            if node.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    node.process.kill()
                assert gone(node.process.pid)


def _security(tmp_path: Path, mode: str, names: list[str], tag: str) -> dict[str, dict[str, str]]:
    """Each node's [security] table: one secret, or one CA, per ``tag``."""
    if mode == "secret":
        secret = tmp_path / f"{tag}.secret"
        write_cluster_secret(secret)
        return {name: {"cluster_secret_file": str(secret)} for name in names}
    pki = make_local_pki(tmp_path / f"{tag}-pki", names)
    return {
        name: {"tls_cert": str(cert), "tls_key": str(key), "tls_ca": str(pki.ca_cert)}
        for name, (cert, key) in pki.nodes.items()
    }


@pytest.mark.parametrize("mode", ["secret", "tls"])
def test_a_rogue_node_cannot_join(tmp_path: Path, nodes: list[Node], mode: str) -> None:
    cluster, rogue = nodes[:3], nodes[3]
    security = _security(tmp_path, mode, list(NAMES), "cluster")
    security.update(_security(tmp_path, mode, ["rogue"], "rogue"))
    for node in nodes:
        node.write_config(cluster, security[node.name], join=node is rogue)
        if mode == "tls":
            node.ca = Path(security[node.name]["tls_ca"])
    for node in cluster:
        node.start()
    assert wait_until(lambda: all(node.ready() for node in cluster), 60)

    def stored(key: str, value: str) -> bool:
        return cluster[0].request("PUT", f"/kv/{key}", value.encode())[0] == 204

    # The first writes wait for the nodes to reach each other (authenticated).
    assert wait_until(lambda: stored("first", "ok"), 30)
    for key, value in KEYS.items():
        assert stored(key, value)
    before = sum(node.peer_auth_failures() for node in cluster)
    assert before == 0

    rogue.start()
    assert wait_until(rogue.ready, 60)
    # Its gossip and join requests are refused, and counted, by the seeds.
    assert wait_until(lambda: sum(node.peer_auth_failures() for node in cluster) >= 3, 30)
    for node in cluster:
        assert "rogue" not in node.membership()
    for key, value in KEYS.items():
        status, body = cluster[1].request("GET", f"/kv/{key}")
        assert (status, body) == (200, value.encode()), key
    assert rogue.process is not None
    assert rogue.process.poll() is None
    assert "rogue" in rogue.membership()  # it only knows itself
