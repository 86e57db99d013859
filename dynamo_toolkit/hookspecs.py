"""The hooks a dynamo-toolkit plugin may implement.

Every hook is prefixed ``dtk_``. Plugins are modules (or objects) found through
the ``dynamo_toolkit`` entry-point group; decorate implementations with
:data:`hookimpl`. The built-in strategies are plugins of exactly this kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from dynamo_toolkit.node import Node
    from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

#: The pluggy project name, which is also the entry-point group.
PROJECT_NAME = "dynamo_toolkit"

#: Marks a hook specification (kernel only).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------


@hookspec
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the components this plugin provides.

    Called once per plugin when the plugin host is built, before any store is
    assembled. Call ``registry.add_<interface>(name, factory)`` for each
    component, for example ``registry.add_storage_engine("mydisk", MyDisk)``.
    A name already taken by another plugin is an error unless
    ``replace=True`` is passed. Return value ignored.
    """


# ---------------------------------------------------------------------------
# Node lifecycle
# ---------------------------------------------------------------------------


@hookspec
def dtk_node_started(node: Node) -> None:
    """Called after ``node`` has started and accepts messages.

    Every implementation is called, in LIFO registration order; return value
    ignored. Use it to attach metrics, background tasks or logging.
    """


@hookspec
def dtk_node_stopping(node: Node) -> None:
    """Called when ``node`` begins to stop, before its transport and storage close.

    Every implementation is called; return value ignored. The node can still
    read its storage here but no longer coordinates requests.
    """


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


@hookspec
def dtk_cli_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``dtk`` command line.

    Called once when ``dtk`` starts, with its top-level :class:`click.Group`;
    call ``cli.add_command(...)``. Every implementation is called; return value
    ignored. The reference server adds ``dtk serve`` and ``dtk cluster`` this way.
    """
