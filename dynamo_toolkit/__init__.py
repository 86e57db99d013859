"""dynamo-toolkit: the components of a Dynamo-style key-value store, as plugins.

What a user imports is re-exported here, so ``from dynamo_toolkit import
Cluster, StoreConfig, run_virtual`` is the whole of most programs. The
modules behind these names are the layer's internals: their layout may
change between versions, these names stay. The seven component interfaces
are in :mod:`dynamo_toolkit.interfaces`, the conformance suites in
:mod:`dynamo_toolkit.testing`, the hook specifications in
:mod:`dynamo_toolkit.hookspecs`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dynamo-toolkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

# __version__ comes first: modules below import it (the command line does).
from dynamo_toolkit.config import ComponentChoice, StoreConfig
from dynamo_toolkit.errors import (
    ConfigurationError,
    DynamoError,
    InvalidContextError,
    InvalidQuorumError,
    NodeUnavailableError,
    PairTooLargeError,
    QuorumNotReachedError,
    TransportError,
    UnknownComponentError,
    UnsupportedKeyTypeError,
    UnsupportedValueTypeError,
)
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.node import Node
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import PluginHost, load_plugins
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit.results import GetResult, PutResult
from dynamo_toolkit.versioning import VectorClock, Version
from dynamo_toolkit.virtual_time import VirtualTimeLoop, run_virtual

__all__ = [
    "Cluster",
    "ComponentChoice",
    "ComponentRegistry",
    "ConfigurationError",
    "DynamoError",
    "GetResult",
    "InvalidContextError",
    "InvalidQuorumError",
    "Node",
    "NodeInfo",
    "NodeUnavailableError",
    "PairTooLargeError",
    "PluginHost",
    "PutResult",
    "QuorumNotReachedError",
    "StoreConfig",
    "TransportError",
    "UnknownComponentError",
    "UnsupportedKeyTypeError",
    "UnsupportedValueTypeError",
    "VectorClock",
    "Version",
    "VirtualTimeLoop",
    "__version__",
    "hookimpl",
    "load_plugins",
    "run_virtual",
]
