"""Building the plugin host: hook specs, entry points, then the registry.

Built in a function, never at import time, so tests and notebooks can build as
many independent hosts as they like.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from dynamo_toolkit import hookspecs
from dynamo_toolkit.hookspecs import PROJECT_NAME
from dynamo_toolkit.registry import INTERFACES, ComponentRegistry

__all__ = ["PluginHost", "PluginInfo", "load_plugins"]


@attrs.frozen
class PluginInfo:
    """What ``dtk plugins`` reports about one plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    components: dict[str, list[str]]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "components": self.components,
        }


@attrs.define
class PluginHost:
    """A pluggy manager with the kernel's hook specs, and the filled registry."""

    manager: pluggy.PluginManager
    registry: ComponentRegistry

    @property
    def hook(self) -> Any:
        """The manager's hook relay (``host.hook.dtk_node_started(node=...)``)."""
        return self.manager.hook

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin, with its distribution version and components."""
        dists = {
            id(plugin): (dist.project_name, dist.version)
            for plugin, dist in self.manager.list_plugin_distinfo()
        }
        infos = []
        for name, plugin in self.manager.list_name_plugin():
            if plugin is None:  # blocked
                continue
            components: dict[str, list[str]] = {}
            for spec in self.registry:
                if spec.plugin == name:
                    components.setdefault(spec.interface, []).append(spec.name)
            dist_name, version = dists.get(id(plugin), (None, None))
            module = getattr(plugin, "__name__", type(plugin).__name__)
            infos.append(PluginInfo(name, module, dist_name, version, components))
        return sorted(infos, key=lambda info: info.name)


def load_plugins(
    *,
    entry_points: bool = True,
    extra: Iterable[tuple[str, object]] = (),
    blocked: Iterable[str] = (),
) -> PluginHost:
    """Build a plugin host.

    Loads every plugin of the ``dynamo_toolkit`` entry-point group (ours
    included) unless ``entry_points`` is false, then registers ``extra``
    ``(name, plugin)`` pairs the same way; names in ``blocked`` are skipped.
    Each plugin's ``dtk_register_components`` is then called with the
    registry, one plugin at a time so that every component is attributed.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for name in blocked:
        manager.set_blocked(name)
    if entry_points:
        manager.load_setuptools_entrypoints(PROJECT_NAME)
    for name, plugin in extra:
        manager.register(plugin, name=name)
    # An implementation of a hook we do not define is a typo: fail now, loudly.
    manager.check_pending()

    registry = ComponentRegistry()
    caller = manager.hook.dtk_register_components
    for impl in reversed(caller.get_hookimpls()):
        registry.current_plugin = impl.plugin_name
        impl.function(registry=registry)
    registry.current_plugin = "(direct)"
    return PluginHost(manager, registry)


def interface_names() -> list[str]:
    """The snake_case interface names, in documentation order."""
    return list(INTERFACES)


__all__ += ["interface_names"]
