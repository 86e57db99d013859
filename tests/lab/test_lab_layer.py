"""The lab is a layer above the rest: nothing below imports it, and ``dtk`` loads it lazily."""

from __future__ import annotations

import json
import subprocess
import sys

import click

from dynamo_toolkit_lab.plugin import SUITES, bench

_LOADED = (
    "import json, sys; "
    "print(json.dumps(sorted(m for m in sys.modules if m.startswith('dynamo_toolkit_lab'))))"
)


def _lab_modules_after(code: str) -> list[str]:
    """The lab modules a fresh interpreter holds after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{_LOADED}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_kernel_loads_no_lab_module() -> None:
    assert _lab_modules_after("import dynamo_toolkit, dynamo_toolkit.in_process_cluster") == []


def test_dtk_cluster_help_loads_only_the_lab_plugin_shim() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from dynamo_toolkit.cli import run\n"
        "sys.argv = ['dtk', 'cluster', '--help']\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    run()"
    )
    assert _lab_modules_after(code) == ["dynamo_toolkit_lab", "dynamo_toolkit_lab.plugin"]


def test_bench_lists_every_suite_and_mounts_each() -> None:
    context = click.Context(bench)
    assert bench.list_commands(context) == sorted(SUITES)
    for name in SUITES:
        command = bench.get_command(context, name)
        assert command is not None
        assert command.name == name
    assert bench.get_command(context, "no-such-suite") is None
