"""The ``dtk`` command line."""

from __future__ import annotations

import json

import click

from dynamo_toolkit import __version__
from dynamo_toolkit.errors import DynamoError
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.registry import INTERFACES

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dtk")
def main() -> None:
    """dynamo-toolkit: assemble, run and study Dynamo-style key-value stores."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Emit JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List every plugin, its version and the components it provides."""
    host = load_plugins()
    infos = host.plugins()
    if as_json:
        payload = {
            "plugins": [info.to_json() for info in infos],
            "components": host.registry.components(),
        }
        click.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dynamo-toolkit plugins")
    for column in ("plugin", "version", "interface", "components"):
        table.add_column(column)
    for info in infos:
        for interface, names in info.components.items() or {"-": []}.items():
            table.add_row(
                info.name,
                f"{info.distribution or '?'} {info.version or ''}".strip(),
                interface,
                ", ".join(names),
            )
    Console().print(table)
    click.echo("interfaces: " + ", ".join(INTERFACES))


@main.command()
@click.option("--nodes", default=5, show_default=True, help="Nodes in the in-process cluster.")
@click.option("--seed", default=7, show_default=True, help="Seed of the simulated network.")
def demo(nodes: int, seed: int) -> None:
    """Run an in-process cluster on the simulated network and narrate what happens."""
    from dynamo_toolkit._demo import run_demo

    try:
        run_demo(nodes=nodes, seed=seed, echo=click.echo)
    except DynamoError as exc:
        raise click.ClickException(str(exc)) from exc


def run() -> None:
    """The ``dtk`` console script: plugins may add commands before it runs."""
    try:
        host = load_plugins()
    except DynamoError as exc:  # a broken plugin must not hide the built-in commands
        click.echo(f"warning: plugins not loaded: {exc}", err=True)
    else:
        host.hook.dtk_cli_commands(cli=main)
    main()


if __name__ == "__main__":  # pragma: no cover
    run()
