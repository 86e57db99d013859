"""The component registry: which names each interface can be built from."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Final, Literal, overload

import attrs

from dynamo_toolkit.errors import ConfigurationError, UnknownComponentError
from dynamo_toolkit.interfaces import (
    AntiEntropy,
    ConflictResolver,
    FailureDetector,
    Network,
    Partitioner,
    Replicator,
    StorageEngine,
)

__all__ = ["INTERFACES", "ComponentRegistry", "ComponentSpec"]

#: Interface names (snake_case, as in configuration and ``dtk plugins --json``)
#: and the type each factory must return. A transport plugin returns a
#: :class:`~dynamo_toolkit.interfaces.Network` that hands out per-node endpoints.
INTERFACES: Final[dict[str, type]] = {
    "partitioner": Partitioner,
    "replicator": Replicator,
    "conflict_resolver": ConflictResolver,
    "failure_detector": FailureDetector,
    "anti_entropy": AntiEntropy,
    "storage_engine": StorageEngine,
    "transport": Network,
}

Factory = Callable[..., Any]


def _wants_registry(spec: ComponentSpec) -> bool:
    try:
        return "registry" in inspect.signature(spec.factory).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


@attrs.frozen
class ComponentSpec:
    """One registered component: interface, name, factory and providing plugin."""

    interface: str
    name: str
    factory: Factory
    plugin: str
    description: str = ""
    replaces: bool = False


class ComponentRegistry:
    """Holds every component the loaded plugins provide.

    Plugins fill it from their ``dtk_register_components`` hook; configuration
    then picks one component per interface by name.
    """

    def __init__(self) -> None:
        self._specs: dict[str, dict[str, ComponentSpec]] = {name: {} for name in INTERFACES}
        self.current_plugin = "(direct)"

    # -- registration -----------------------------------------------------

    def add(
        self,
        interface: str,
        name: str,
        factory: Factory,
        *,
        description: str = "",
        replace: bool = False,
    ) -> None:
        """Register ``factory`` as component ``name`` of ``interface``."""
        if interface not in self._specs:
            raise ConfigurationError(
                f"unknown interface {interface!r}; interfaces: {', '.join(INTERFACES)}"
            )
        if not name:
            raise ConfigurationError("component name must not be empty")
        existing = self._specs[interface].get(name)
        if existing is not None:
            # Replacement must not depend on plugin load order: a replacing
            # component wins over a plain one whichever registers first.
            if existing.replaces and not replace:
                return
            if existing.replaces or not replace:
                raise ConfigurationError(
                    f"{interface} {name!r} from plugin {self.current_plugin!r} is already "
                    f"registered by plugin {existing.plugin!r}"
                    + ("" if existing.replaces else " (pass replace=True to override)")
                )
        if not description:
            lines = (factory.__doc__ or "").strip().splitlines()
            description = lines[0] if lines else ""
        self._specs[interface][name] = ComponentSpec(
            interface, name, factory, self.current_plugin, description, replace
        )

    def add_partitioner(self, name: str, factory: Factory, **options: Any) -> None:
        """Register a :class:`~dynamo_toolkit.interfaces.Partitioner` factory."""
        self.add("partitioner", name, factory, **options)

    def add_replicator(self, name: str, factory: Factory, **options: Any) -> None:
        """Register a :class:`~dynamo_toolkit.interfaces.Replicator` factory."""
        self.add("replicator", name, factory, **options)

    def add_conflict_resolver(self, name: str, factory: Factory, **options: Any) -> None:
        """Register a :class:`~dynamo_toolkit.interfaces.ConflictResolver` factory."""
        self.add("conflict_resolver", name, factory, **options)

    def add_failure_detector(self, name: str, factory: Factory, **options: Any) -> None:
        """Register a :class:`~dynamo_toolkit.interfaces.FailureDetector` factory."""
        self.add("failure_detector", name, factory, **options)

    def add_anti_entropy(self, name: str, factory: Factory, **options: Any) -> None:
        """Register an :class:`~dynamo_toolkit.interfaces.AntiEntropy` factory."""
        self.add("anti_entropy", name, factory, **options)

    def add_storage_engine(self, name: str, factory: Factory, **options: Any) -> None:
        """Register a :class:`~dynamo_toolkit.interfaces.StorageEngine` factory.

        The factory is called as ``factory(node_id=..., data_dir=..., **params)``;
        ``data_dir`` is a ``pathlib.Path`` or ``None`` for volatile stores. A
        wrapper engine (compression, caching) that declares a ``registry``
        parameter also gets this registry, to build the engine it wraps.
        """
        self.add("storage_engine", name, factory, **options)

    def add_transport(self, name: str, factory: Factory, **options: Any) -> None:
        """Register a transport: a factory returning a :class:`~dynamo_toolkit.interfaces.Network`.

        The factory is called as ``factory(seed=..., members=..., **params)``, where
        ``members`` is the sequence of :class:`~dynamo_toolkit.node_info.NodeInfo`
        known at start (a socket transport finds addresses there). A wrapper
        transport (``delayed``) that declares a ``registry`` parameter also gets
        this registry, to build the transport it wraps.
        """
        self.add("transport", name, factory, **options)

    # -- lookup -------------------------------------------------------------

    def names(self, interface: str) -> list[str]:
        """Sorted names registered for ``interface``."""
        return sorted(self._specs[interface])

    def get(self, interface: str, name: str) -> ComponentSpec:
        """Return the spec of ``name``; unknown names list the available ones."""
        try:
            return self._specs[interface][name]
        except KeyError:
            if interface not in self._specs:
                raise ConfigurationError(f"unknown interface {interface!r}") from None
            raise UnknownComponentError(interface, name, self._specs[interface]) from None

    # One overload per interface name, so a caller naming the interface gets
    # its type (a Partitioner, not Any); a name only known at run time gets
    # ``object``, to be narrowed by the caller.
    @overload
    def create(
        self, interface: Literal["partitioner"], name: str, **kwargs: Any
    ) -> Partitioner: ...
    @overload
    def create(self, interface: Literal["replicator"], name: str, **kwargs: Any) -> Replicator: ...
    @overload
    def create(
        self, interface: Literal["conflict_resolver"], name: str, **kwargs: Any
    ) -> ConflictResolver: ...
    @overload
    def create(
        self, interface: Literal["failure_detector"], name: str, **kwargs: Any
    ) -> FailureDetector: ...
    @overload
    def create(
        self, interface: Literal["anti_entropy"], name: str, **kwargs: Any
    ) -> AntiEntropy: ...
    @overload
    def create(
        self, interface: Literal["storage_engine"], name: str, **kwargs: Any
    ) -> StorageEngine: ...
    @overload
    def create(self, interface: Literal["transport"], name: str, **kwargs: Any) -> Network: ...
    @overload
    def create(self, interface: str, name: str, **kwargs: Any) -> object: ...

    def create(self, interface: str, name: str, **kwargs: Any) -> object:
        """Build component ``name`` of ``interface`` and check what the factory returned.

        The result is an instance of the interface's class (``INTERFACES``),
        and typed as such when ``interface`` is written out: ``create("partitioner",
        "ring")`` is a :class:`~dynamo_toolkit.interfaces.Partitioner` to mypy.
        """
        spec = self.get(interface, name)
        if (
            interface in ("storage_engine", "transport")
            and "registry" not in kwargs
            and _wants_registry(spec)
        ):
            kwargs["registry"] = self
        try:
            component = spec.factory(**kwargs)
        except TypeError as exc:
            raise ConfigurationError(f"cannot build {interface} {name!r}: {exc}") from exc
        expected = INTERFACES[interface]
        if not isinstance(component, expected):
            raise ConfigurationError(
                f"{interface} {name!r} from plugin {spec.plugin!r} built a "
                f"{type(component).__name__}, not a {expected.__name__}"
            )
        return component

    def __iter__(self) -> Iterator[ComponentSpec]:
        for interface in INTERFACES:
            yield from (self._specs[interface][n] for n in sorted(self._specs[interface]))

    def components(self) -> dict[str, list[str]]:
        """``{interface: [names...]}`` for every interface, as ``dtk plugins --json`` shows."""
        return {interface: self.names(interface) for interface in INTERFACES}
