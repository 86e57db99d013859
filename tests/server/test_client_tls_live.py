"""TLS on the client ports of a real cluster (dtk cluster up --tls) with redis-cli and redis-py."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from dynamo_toolkit_server.client import Client, ConnectionFailed
from dynamo_toolkit_server.tls import make_local_pki
from testsupport.live import dtk, free_base

pytestmark = pytest.mark.live  # real node processes


def test_redis_cli_redis_py_curl_and_the_client_speak_tls(tmp_path: Path) -> None:
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed (apt-get install redis-tools)")
    base = free_base(3)
    cluster = tmp_path / "cluster"
    up = ["cluster", "up", "--nodes", "3", "--tls", "--auth", "--dir", str(cluster)]
    nodes = json.loads(dtk(*up, "--base-port", str(base), "--json").stdout)["nodes"]
    try:
        ca = cluster / "tls" / "ca.crt"
        password = tomllib.loads((cluster / "credentials.toml").read_text())["password"]
        host, port = nodes[0]["resp"].rsplit(":", 1)
        cli = ["redis-cli", "-h", host, "-p", port, "--user", "admin", "--pass", password]
        done = subprocess.run(
            [*cli, "--tls", "--cacert", str(ca), "SET", "greeting", "hello"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.stdout.strip() == "OK", done.stderr
        # Without TLS the port answers nothing a client could use.
        plain = subprocess.run(
            [*cli, "GET", "greeting"], capture_output=True, text=True, timeout=30
        )
        assert "hello" not in plain.stdout

        host2, port2 = nodes[1]["resp"].rsplit(":", 1)
        secure = redis.Redis(
            host2,
            int(port2),
            ssl=True,
            ssl_ca_certs=str(ca),
            username="admin",
            password=password,
            socket_timeout=10,
        )
        assert secure.get("greeting") == b"hello"
        secure.close()

        # A client trusting another CA refuses the nodes' certificates.
        other = make_local_pki(tmp_path / "other", ["x"])
        impostor = redis.Redis(
            host2, int(port2), ssl=True, ssl_ca_certs=str(other.ca_cert), socket_timeout=10
        )
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            impostor.ping()
        impostor.close()

        # HTTPS, as curl --cacert does it.
        request = urllib.request.Request(f"https://{nodes[2]['http']}/kv/greeting")
        request.add_header("Authorization", _basic("admin", password))
        context = ssl.create_default_context(cafile=str(ca))
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:
            assert reply.read() == b"hello"
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(
                request, timeout=10, context=ssl.create_default_context(cafile=str(other.ca_cert))
            )

        # The Python client and dtk, with the cluster directory's credentials.
        tls = ssl.create_default_context(cafile=str(ca))
        with Client([nodes[2]["native"]], user="admin", password=password, tls=tls) as client:
            assert client.get("greeting").values == (b"hello",)
        wrong = ssl.create_default_context(cafile=str(other.ca_cert))
        with (
            Client([nodes[2]["native"]], user="admin", password=password, tls=wrong) as client,
            pytest.raises(ConnectionFailed, match="certificate verify failed"),
        ):
            client.get("greeting")
        assert dtk("get", "greeting", "--dir", str(cluster)).stdout.strip() == "hello"
    finally:
        dtk("cluster", "down", "--dir", str(cluster), check=False)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
