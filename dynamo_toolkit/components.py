"""A node's pluggable components, built from configuration outside the node.

:func:`build_components` turns a :class:`~dynamo_toolkit.config.StoreConfig`
and a :class:`~dynamo_toolkit.registry.ComponentRegistry` into a
:class:`NodeComponents`, which :class:`~dynamo_toolkit.node.Node` is handed.
Building them here rather than inside the node lets a test or an embedding
program build (or swap) any of them first; the node only wires them together.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from dynamo_toolkit._hints import HintLimits, HintStore
from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.interfaces import (
    AntiEntropy,
    ConflictResolver,
    FailureDetector,
    Partitioner,
    Replicator,
    StorageEngine,
)
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.replica_store import ReplicaStore

__all__ = ["NodeComponents", "build_components"]


@attrs.frozen
class NodeComponents:
    """The components one node runs with.

    ``store`` wraps ``engine`` with ``resolver``; ``hints`` keeps hinted
    writes in an engine of its own.
    """

    partitioner: Partitioner
    replicator: Replicator
    resolver: ConflictResolver
    detector: FailureDetector
    anti_entropy: AntiEntropy
    engine: StorageEngine
    store: ReplicaStore
    hints: HintStore


def build_components(
    config: StoreConfig,
    registry: ComponentRegistry,
    *,
    node_id: str,
    data_dir: Path | None = None,
) -> NodeComponents:
    """Build the components ``config`` names, through ``registry``, for node ``node_id``.

    Storage engines get ``node_id`` and ``data_dir`` (``None``: volatile).
    """

    def params(interface: str) -> tuple[str, dict[str, object]]:
        choice = config.component(interface)
        return choice.name, dict(choice.params)

    name, extra = params("partitioner")
    partitioner = registry.create("partitioner", name, **extra)
    name, extra = params("replicator")
    replicator = registry.create("replicator", name, **extra)
    replicator.check_n(config.n)
    name, extra = params("conflict_resolver")
    resolver = registry.create("conflict_resolver", name, **extra)
    name, extra = params("failure_detector")
    detector = registry.create("failure_detector", name, **extra)
    name, extra = params("anti_entropy")
    anti_entropy = registry.create("anti_entropy", name, **extra)
    name, extra = params("storage_engine")
    engine = registry.create("storage_engine", name, node_id=node_id, data_dir=data_dir, **extra)
    # Hints live in an engine of their own: as durable as the data, and
    # never mixed with it.
    hint_engine = registry.create(
        "storage_engine", name, node_id=f"{node_id}-hints", data_dir=data_dir, **extra
    )
    limits = HintLimits(config.hint_max_count, config.hint_max_bytes, config.hint_max_age)
    return NodeComponents(
        partitioner=partitioner,
        replicator=replicator,
        resolver=resolver,
        detector=detector,
        anti_entropy=anti_entropy,
        engine=engine,
        store=ReplicaStore(engine, resolver, config.decoded_cache_bytes),
        hints=HintStore(hint_engine, resolver, limits),
    )
