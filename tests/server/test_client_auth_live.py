"""Users and roles on every client port of real node processes (dtk cluster up --auth)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from dynamo_toolkit_server.client import AuthenticationFailed, Client, PermissionDenied
from testsupport.live import DTK, dtk, free_base, redis_client

pytestmark = pytest.mark.live  # real node processes


def _add_user(directory: Path, name: str, role: str, password: str) -> None:
    command = [*DTK, "cluster", "user", "add", name, "--role", role, "--password-stdin"]
    done = subprocess.run(
        [*command, "--dir", str(directory)],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout


def _http(address: str, method: str, path: str, user: str = "", password: str = "") -> int:
    request = urllib.request.Request(f"http://{address}{path}", method=method)
    if method == "PUT":
        request.data = b"value"
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_every_client_port_asks_who_you_are_and_what_you_may_do(tmp_path: Path) -> None:
    base = free_base(3)
    up = ["cluster", "up", "--nodes", "3", "--auth", "--dir", str(tmp_path)]
    dtk(*up, "--base-port", str(base), "--json")
    try:
        credentials = tmp_path / "credentials.toml"
        assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
        admin_password = tomllib.loads(credentials.read_text())["password"]
        for node_toml in tmp_path.glob("n*/node.toml"):
            assert admin_password not in node_toml.read_text()  # only its hash
        _add_user(tmp_path, "reader", "read", "r-pass")
        _add_user(tmp_path, "writer", "readwrite", "w-pass")
        dtk("cluster", "down", "--dir", str(tmp_path))
        nodes = json.loads(dtk("cluster", "up", "--dir", str(tmp_path), "--json").stdout)["nodes"]

        # dtk commands with --dir log in with the directory's credentials file.
        assert dtk("put", "k", "v0", "--dir", str(tmp_path)).stdout.strip() == "OK"
        status = json.loads(dtk("cluster", "status", "--dir", str(tmp_path), "--json").stdout)
        assert all(row["healthy"] for row in status["nodes"])

        for node in nodes:
            # RESP: nothing without AUTH; a wrong password is refused.
            anonymous = redis_client(node["resp"])
            with pytest.raises(redis.AuthenticationError):
                anonymous.get("k")
            anonymous.close()
            with pytest.raises(redis.AuthenticationError):
                redis_client(node["resp"], username="writer", password="nope").ping()
            # HTTP: 401 without or with wrong credentials; a bare /health says only ok.
            assert _http(node["http"], "GET", "/kv/k") == 401
            assert _http(node["http"], "GET", "/kv/k", "writer", "nope") == 401
            assert _http(node["http"], "GET", "/metrics") == 401
            assert _http(node["http"], "GET", "/health") == 200
            # Native: a client without credentials, or with wrong ones, is refused.
            with Client([node["native"]]) as nobody, pytest.raises(AuthenticationFailed):
                nobody.get("k")
            with (
                Client([node["native"]], user="writer", password="nope") as wrong,
                pytest.raises(AuthenticationFailed),
            ):
                wrong.get("k")

        first = nodes[0]
        # A read user reads, and cannot write on any port.
        reader = redis_client(first["resp"], username="reader", password="r-pass")
        assert reader.get("k") == b"v0"
        with pytest.raises(redis.exceptions.NoPermissionError):
            reader.set("k", "x")
        reader.close()
        assert _http(first["http"], "GET", "/kv/k", "reader", "r-pass") == 200
        assert _http(first["http"], "PUT", "/kv/k", "reader", "r-pass") == 403
        with Client([first["native"]], user="reader", password="r-pass") as native_reader:
            assert native_reader.get("k").values == ("v0",)
            with pytest.raises(PermissionDenied):
                native_reader.put("k", "x")
        # A readwrite user writes, and cannot stage or commit a membership change.
        writer = redis_client(first["resp"], username="writer", password="w-pass")
        assert writer.set("k", "v1")
        writer.close()
        assert _http(first["http"], "PUT", "/kv/k", "writer", "w-pass") == 204
        with Client([first["native"]], user="writer", password="w-pass") as native_writer:
            for op, args in (("cluster_stage", {"node": "n3", "action": "leave"}), ("repair", {})):
                with pytest.raises(PermissionDenied, match="needs admin"):
                    native_writer.admin(op, **args)
            with pytest.raises(PermissionDenied):
                native_writer.admin("cluster_commit")
        as_writer = ["--user", "writer", "--password", "w-pass"]
        refused = dtk("cluster", "leave", "n3", "--dir", str(tmp_path), *as_writer, check=False)
        assert refused.returncode != 0
        assert "needs admin" in refused.stderr
        plan = json.loads(dtk("cluster", "plan", "--dir", str(tmp_path), "--json").stdout)
        assert plan["moves"] == []  # nothing was staged
        assert "w-pass" not in refused.stdout + refused.stderr

        # The refusals were counted where they happened.
        metrics = urllib.request.Request(f"http://{first['http']}/metrics")
        token = base64.b64encode(f"admin:{admin_password}".encode()).decode()
        metrics.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(metrics, timeout=10) as reply:
            text = reply.read().decode()
        for protocol in ("resp", "http", "native"):
            assert f'dtk_auth_failures_total{{protocol="{protocol}"}}' in text
            assert f'dtk_permission_denied_total{{protocol="{protocol}"}}' in text
        assert dtk("get", "k", "--dir", str(tmp_path)).stdout.strip() == "value"
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
