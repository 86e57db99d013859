"""The ``dtk`` command line, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from dynamo_toolkit import __version__
from dynamo_toolkit.cli import main
from dynamo_toolkit.registry import INTERFACES


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output
    assert __version__ != "0.0.0"


def test_plugins_json_lists_all_seven_interfaces() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert list(payload["components"]) == list(INTERFACES)
    assert "ring" in payload["components"]["partitioner"]
    assert {"vector-clock", "lww"} <= set(payload["components"]["conflict_resolver"])
    for plugin in payload["plugins"]:
        assert plugin["version"]
        # Every plugin provides components, except the server and the lab, which add commands.
        assert plugin["components"] or plugin["name"] in ("reference-server", "strategy-lab")


def test_plugins_table() -> None:
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0
    assert "preference-list" in result.output
    assert "sqlitedict" in result.output


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import shutil; print(shutil.which('dtk') or '')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dtk = out or f"{sys.prefix}/bin/dtk"
    done = subprocess.run([dtk, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert __version__ in done.stdout


def test_demo_narrates_a_cluster() -> None:
    result = CliRunner().invoke(main, ["demo", "--nodes", "5", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "siblings" in result.output
    assert "R=W=2 still works" in result.output
    assert "quorum not reached" in result.output
