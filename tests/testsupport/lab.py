"""Running a strategy-lab suite's click command from a test, as ``--json``."""

from __future__ import annotations

import json
from typing import Any

import click
from click.testing import CliRunner


def run_suite(command: click.Command, *args: str) -> dict[str, Any]:
    """The suite's JSON output for ``args``; fails the test if the command fails."""
    result = CliRunner().invoke(command, ["--json", *args])
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload
