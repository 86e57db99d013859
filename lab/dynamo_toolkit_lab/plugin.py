"""The lab's plugin: adds ``dtk bench``, loading a suite only when it is asked for.

The lab registers like any outside plugin (the ``dynamo_toolkit`` entry-point
group). ``dtk`` loads every plugin at start, so this module stays small: the
suites, which import the in-process cluster, numpy-free statistics and
matplotlib, are imported by :class:`BenchGroup` only when ``dtk bench`` runs.
"""

from __future__ import annotations

import importlib

import click

from dynamo_toolkit.hookspecs import hookimpl

__all__ = ["SUITES", "BenchGroup", "bench", "dtk_cli_commands"]

#: ``dtk bench`` sub-command -> the lab module whose ``command`` runs it.
SUITES = {
    "anti-entropy": "anti_entropy",
    "datacenters": "datacenters",
    "detectors": "detectors",
    "partitioners": "partitioners",
    "resolvers": "resolvers",
    "staleness": "staleness",
    "ycsb": "ycsb",
}


class BenchGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every suite's name, without importing any suite."""
        return sorted(SUITES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the suite ``cmd_name`` and return its click command."""
        module = SUITES.get(cmd_name)
        if module is None:
            return None
        command = importlib.import_module(f"dynamo_toolkit_lab.{module}").command
        assert isinstance(command, click.Command)
        return command


@click.group(cls=BenchGroup)
def bench() -> None:
    """Compare strategies on the same work (the strategy lab): one suite per component."""


@hookimpl
def dtk_cli_commands(cli: click.Group) -> None:
    """Add ``dtk bench`` to the command line."""
    cli.add_command(bench)
